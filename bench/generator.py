"""The one-shot generator's acceptance figures (issue 35), from the shipped model (or --model):

    python bench/generator.py [--data DIR] [--n 16] [--model PATH] [--plots]

1. 16 generated kicks, snares and closed hi-hats (seeds 0-15): the share the shipped one-shot classifier
   (models/weights/oneshot.pt, torch) calls as asked (goal >= 0.90); their mean spectral centroids (goal: kick <
   snare < hi-hat); the share of same-class pairs that are not near-copies (waveform correlation < 0.95, goal >= 0.90),
   and for scale the same measure between two renders of the very same knobs (Griffin-Lim's random phase alone).
2. Not copies: the distance (mean absolute difference of the model's log spectrograms) from each generated sound to
   its nearest training sample, against the typical distance between two takes of one drum (the median, over
   training samples with another velocity layer of the same kit instrument, of the distance to the nearest such
   take; a layer that is the same recording, only louder or filtered, is not another take). Goal: >= 0.90 of the
   generated sounds farther than the takes of their class. For scale, the same measure of the model's own copies
   (its decoding of training samples' knobs) and of real one-shots of the held-out kits (never trained on).
3. --like real snare hits cut from the MDB dev drum stems (/work/shared/data/mdb-dev, measurement only: an SD
   annotation with no other hit 60 ms before or 250 ms after): the class the encoder reads, and the share of 16
   variations (--spread 0.5) the classifier calls snare.
--plots writes docs/generator-sweep.png (each knob swept across its range, the others at the snare's mean) and
docs/generator-latent.png (the training samples' knobs by class, and generated ones).
DIR: the training one-shots ('drumscribe train render-oneshots --out DIR'; rendered into bench/cache/ when missing).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MDB = Path("/work/shared/data/mdb-dev")
CLASSES = ("kick", "snare", "hihat_closed")


def classifier():
    import torch

    from drumscribe.models.oneshot import DEFAULT_ONESHOT_MODEL_PATH
    from drumscribe.offline.sorting import SampleClassifier

    torch.set_num_threads(1)
    return SampleClassifier.from_file(DEFAULT_ONESHOT_MODEL_PATH)


def classify(clf, audio: np.ndarray, rate: int) -> str:
    import soxr

    target = clf.params.sample_rate_hz
    audio = soxr.resample(np.asarray(audio, np.float64), rate, target) if rate != target else audio
    return clf.classify_audio(audio).label


def training_data(folder: Path) -> Path:
    if any(folder.glob("*/*.flac")):
        return folder
    from drumscribe.offline.oneshots import ONESHOT_HELD_OUT_KITS, ONESHOT_TRAIN_KITS, export_folders
    from drumscribe.realtime.kits import HYDROGEN_KIT_DIRS

    print(f"rendering the training one-shots into {folder} (once)", flush=True)
    installed = []
    for spec in ONESHOT_TRAIN_KITS:
        kind, _, rest = spec.partition(":")
        path = rest.removesuffix(":core").rsplit(":", 2)[0] if kind == "sf2" else rest
        if (any((d / rest / "drumkit.xml").is_file() for d in HYDROGEN_KIT_DIRS) if kind == "hydrogen"
                else Path(path).exists()):
            installed.append(spec)
        else:
            print(f"  not installed: {spec}")
    # one call for all the kits, as 'drumscribe train render-oneshots': a sample that one soundfont's drum sets
    # share is written once
    export_folders(installed, folder, held_out=ONESHOT_HELD_OUT_KITS)
    return folder


def held_out_specs(params) -> dict:
    """{class: model spectrograms} of the held-out kits' one-shots (offline.oneshots.ONESHOT_HELD_OUT_KITS, never
    trained on), cut to 1 s as generate's sounds are; a one-shot within 0.002 of one already kept (the same sample
    in another drum set of the font) is left out. Empty when the kits are not installed."""
    import logging

    import soxr

    from drumscribe.offline.generator import log_spectrogram, spectrogram_distance
    from drumscribe.offline.oneshots import ONESHOT_HELD_OUT_KITS, kit_oneshots
    from drumscribe.realtime import SAMPLE_RATE_HZ

    logging.getLogger("drumscribe.offline.oneshots").setLevel(logging.ERROR)
    out: dict = {}
    seen: dict = {}
    for spec in ONESHOT_HELD_OUT_KITS:
        try:
            shots = kit_oneshots(spec, seen=seen)
        except (ValueError, OSError):
            continue
        for shot in shots:
            if shot.label not in CLASSES:
                continue
            audio = soxr.resample(np.asarray(shot.audio, np.float64), SAMPLE_RATE_HZ, params.sample_rate_hz)
            spec_ = log_spectrogram(audio[: params.sample_rate_hz], params)
            kept = out.setdefault(shot.label, [])
            if not kept or spectrogram_distance(spec_, np.stack(kept)).min() >= 0.002:
                kept.append(spec_)
    return {c: np.stack(v) for c, v in out.items()}


def mdb_snares(limit: int = 8):
    """Up to `limit` isolated snare hits (one a song) cut from the MDB dev drum stems: (name, audio, rate)."""
    import soundfile as sf

    out = []
    for ann in sorted((MDB / "class_pp").glob("*.txt")):
        stem = MDB / "drum_only" / f"{ann.stem}.flac"
        if not stem.is_file():
            continue
        rows = [line.split() for line in ann.read_text().splitlines() if line.strip()]
        times = np.array([float(r[0]) for r in rows])
        for t, (_, label) in zip(times, rows):
            if label != "SD":
                continue
            others = times[(times != t)]
            if np.any((others > t - 0.06) & (others < t + 0.25)):
                continue
            info = sf.info(str(stem))
            start = max(0, int((t - 0.005) * info.samplerate))
            nxt = others[others > t]
            end_s = min(t + 1.0, nxt.min() - 0.01) if len(nxt) else t + 1.0
            audio, rate = sf.read(str(stem), start=start, stop=int(end_s * info.samplerate), always_2d=True)
            out.append((f"{ann.stem}@{t:.3f}s", audio.mean(axis=1), rate))
            break
        if len(out) >= limit:
            break
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "cache" / "generator-oneshots")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--plots", action="store_true")
    args = ap.parse_args()

    from drumscribe.offline.generator import (
        load_generator,
        load_heads,
        load_training_set,
        log_spectrogram,
        spectral_centroid_hz,
        spectrogram_distance,
        typical_take_distance,
        waveform_correlation,
    )

    g = load_generator(args.model)
    clf = classifier()
    started = time.monotonic()

    # 1. classes, centroids, near-copies
    sounds = {c: [g.generate(c, seed=s)[0] for s in range(args.n)] for c in CLASSES}
    print(f"generated {args.n} each of {', '.join(CLASSES)} in {time.monotonic() - started:.1f} s")
    hits = total = 0
    centroids = {}
    for c in CLASSES:
        labels = [classify(clf, a, g.sample_rate_hz) for a in sounds[c]]
        ok = sum(lab == c for lab in labels)
        hits, total = hits + ok, total + len(labels)
        centroids[c] = [spectral_centroid_hz(a, g.sample_rate_hz) for a in sounds[c]]
        wrong = sorted({lab for lab in labels if lab != c})
        print(f"  {c:13s} classified as asked {ok}/{len(labels)}" + (f" (others: {', '.join(wrong)})" if wrong
                                                                          else "")
              + f"; centroid median {np.median(centroids[c]):.0f} Hz, mean {np.mean(centroids[c]):.0f} Hz")
    print(f"classified as asked: {hits}/{total} = {hits / total:.3f} (goal >= 0.90)")
    means = [np.mean(centroids[c]) for c in CLASSES]
    print(f"centroids kick < snare < hi-hat: {means[0] < means[1] < means[2]} "
          f"({' < '.join(f'{m:.0f}' for m in means)} Hz)")
    pairs = near = 0
    corr_all = []
    for c in CLASSES:
        for i in range(len(sounds[c])):
            for j in range(i + 1, len(sounds[c])):
                r = waveform_correlation(sounds[c][i], sounds[c][j])
                corr_all.append(r)
                pairs += 1
                near += r >= 0.95
    print(f"same-class pairs not near-copies (waveform correlation < 0.95): {pairs - near}/{pairs} = "
          f"{(pairs - near) / pairs:.3f} (goal >= 0.90); correlation median {np.median(corr_all):.3f}, "
          f"max {np.max(corr_all):.3f}")
    same = [waveform_correlation(g.generate(c, knobs=g.random_knobs(c, np.random.default_rng(s)), seed=1)[0],
                                 g.generate(c, knobs=g.random_knobs(c, np.random.default_rng(s)), seed=2)[0])
            for c in CLASSES for s in range(4)]
    print(f"  for scale: the same knobs rendered with two phase seeds correlate {np.median(same):.3f} (median of "
          f"{len(same)}), so waveform correlation mostly sees the phase; the spectrogram distances below see the "
          f"sound")
    gen_specs = {c: np.stack([log_spectrogram(a, g.params) for a in sounds[c]]) for c in CLASSES}
    for c in CLASSES:
        d = spectrogram_distance(gen_specs[c], gen_specs[c])
        iu = np.triu_indices(len(d), 1)
        print(f"  {c:13s} spectrogram distance between generated pairs: median {np.median(d[iu]):.4f}, "
              f"min {d[iu].min():.4f}")

    # 2. not copies of training samples
    data = training_data(args.data)
    specs, y, names = load_training_set(data, g.params)
    heads = load_heads(data, names)
    typical, n_takes = typical_take_distance(specs, names, heads)
    print(f"training set: {len(specs)} one-shots from {data}; typical distance between two takes of one drum "
          f"(median nearest other velocity layer of the same instrument, layers that are one recording left out, "
          f"{n_takes} samples): {typical:.4f}")
    held_out = held_out_specs(g.params)
    farther = farther_class = count = copies_far = copies_n = real_far = real_n = 0
    for c in CLASSES:
        sel = np.flatnonzero(y == g.classes.index(c))
        typical_c, n_c = typical_take_distance(specs[sel], names[sel], [heads[i] for i in sel])
        nearest = spectrogram_distance(gen_specs[c], specs).min(axis=1)
        farther += int((nearest > typical).sum())
        farther_class += int((nearest > typical_c).sum())
        count += len(nearest)
        # for scale, what the measure says of (a) the model's own copies: its decoding of training samples' knobs,
        # rendered as generate renders; (b) real one-shots of the held-out kits, never trained on
        picked = sel[np.linspace(0, len(sel) - 1, min(args.n, len(sel))).astype(int)]
        _, knobs = g.encode_spectrogram(specs[picked], c)
        copies = np.stack([log_spectrogram(g.generate(c, knobs=np.clip(k, *g.knob_range), seed=int(i))[0],
                                           g.params) for k, i in zip(knobs, picked)])
        copies_near = spectrogram_distance(copies, specs).min(axis=1)
        copies_far, copies_n = copies_far + int((copies_near > typical_c).sum()), copies_n + len(picked)
        real = held_out.get(c)
        real_line = ""
        if real is not None:
            real_near = spectrogram_distance(real, specs).min(axis=1)
            real_far, real_n = real_far + int((real_near > typical_c).sum()), real_n + len(real)
            real_line = (f"; held-out kits' real {c}s: {int((real_near > typical_c).sum())}/{len(real)} "
                         f"(median {np.median(real_near):.4f})")
        print(f"  {c:13s} two takes of a {c} ({n_c} samples): {typical_c:.4f}; generated: nearest training sample "
              f"median {np.median(nearest):.4f}, min {nearest.min():.4f}, farther than that "
              f"{int((nearest > typical_c).sum())}/{len(nearest)} (than all drums' takes: "
              f"{int((nearest > typical).sum())}/{len(nearest)}); the model's copies of training {c}s: "
              f"{int((copies_near > typical_c).sum())}/{len(picked)} (median {np.median(copies_near):.4f})"
              + real_line)
    print(f"generated sounds farther from every training sample than two takes of one drum: {farther_class}/{count} "
          f"= {farther_class / count:.3f} (takes of the same class; goal >= 0.90), {farther}/{count} = "
          f"{farther / count:.3f} (all drums' takes)")
    print(f"  for scale, by the same measure: the model's copies of training samples {copies_far}/{copies_n} = "
          f"{copies_far / copies_n:.3f}" + (f"; real one-shots of the held-out kits {real_far}/{real_n} = "
                                            f"{real_far / real_n:.3f}" if real_n else ""))

    # 3. --like real snare hits
    if (MDB / "class_pp").is_dir():
        snare_total = snare_ok = clear_ok = clear_total = 0
        for name, audio, rate in mdb_snares():
            drum, knobs = g.encode(audio, rate)
            rng = np.random.default_rng(0)
            labels = []
            for s in range(args.n):
                k = np.clip(knobs + 0.5 * rng.standard_normal(g.n_knobs), *g.knob_range)
                labels.append(classify(clf, g.generate(drum, knobs=k, seed=s)[0], g.sample_rate_hz))
            ok = sum(lab == "snare" for lab in labels)
            itself = classify(clf, audio, rate)
            snare_ok, snare_total = snare_ok + ok, snare_total + len(labels)
            if itself == "snare":
                clear_ok, clear_total = clear_ok + ok, clear_total + len(labels)
            print(f"  --like MDB snare {name}: the hit itself is classified {itself}, encoded "
                  f"as {drum}; variations classified snare {ok}/{len(labels)}")
        if snare_total:
            print(f"--like real snare hits give snares: {snare_ok}/{snare_total} = {snare_ok / snare_total:.3f}; "
                  f"of the hits the classifier itself calls snare: {clear_ok}/{clear_total}")
    else:
        print(f"--like real snares: skipped ({MDB} is not here)")

    if args.plots:
        plots(g, sounds, args.model)
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


def plots(g, sounds, model_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from drumscribe.offline.generator import GENERATOR_CLASSES, spectrogram_distance

    drum, steps = "snare", np.linspace(g.knob_range[0] * 0.8, g.knob_range[1] * 0.8, 7)
    fig, axes = plt.subplots(g.n_knobs, len(steps), figsize=(2 * len(steps), 1.9 * g.n_knobs), sharex=True,
                             sharey=True)
    jumps = []
    for k in range(g.n_knobs):
        row = []
        for j, v in enumerate(steps):
            knobs = g.class_mean[drum].copy()
            knobs[k] = v
            spec = g.decode_spectrogram(drum, knobs)
            row.append(spec)
            ax = axes[k, j]
            ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
                      extent=(0, g.max_length_s, 0, g.sample_rate_hz / 2000))
            if k == 0:
                ax.set_title(f"knob = {v:+.1f}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"knob {k + 1}\nkHz", fontsize=9)
        row = np.stack(row)
        step = [float(spectrogram_distance(row[i], row[i + 1:i + 2])[0]) for i in range(len(row) - 1)]
        jumps.append((k + 1, step, float(spectrogram_distance(row[0], row[-1:])[0])))
    fig.suptitle(f"{drum}: each knob swept, the others at the class mean (decoded log spectrograms, 0-"
                 f"{g.max_length_s:.2f} s)")
    fig.tight_layout()
    out = REPO / "docs" / "generator-sweep.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    for k, step, end in jumps:
        print(f"  sweep knob {k}: step distances {' '.join(f'{s:.4f}' for s in step)}; end to end {end:.4f}")
    print(f"wrote {out}")

    from drumscribe.models.generator import training_knobs

    knobs, classes, _ = training_knobs(model_path)
    pairs = [(0, 1), (2, 3)] if g.n_knobs >= 4 else [(0, 1)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 5.5))
    axes = np.atleast_1d(axes)
    colours = plt.get_cmap("tab10")
    for ax, (a, b) in zip(axes, pairs):
        for i, c in enumerate(GENERATOR_CLASSES):
            sel = classes == c
            ax.scatter(knobs[sel, a], knobs[sel, b], s=10, color=colours(i), alpha=0.6, label=f"{c} ({sel.sum()})")
        for i, c in enumerate(GENERATOR_CLASSES):
            if c in sounds:
                rng = np.random.default_rng(0)
                pts = np.stack([g.random_knobs(c, rng) for _ in range(16)])
                ax.scatter(pts[:, a], pts[:, b], s=40, marker="x", color=colours(i))
        ax.set_xlabel(f"knob {a + 1}")
        ax.set_ylabel(f"knob {b + 1}")
        ax.set_xlim(*g.knob_range)
        ax.set_ylim(*g.knob_range)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left", markerscale=1.5)
    fig.suptitle("The knobs (latent means) of the training one-shots by class; x: 16 drawn knobs each of kick, "
                 "snare, closed hi-hat")
    fig.tight_layout()
    out = REPO / "docs" / "generator-latent.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
