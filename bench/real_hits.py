"""How `drumscribe sort` and `classify` do on real recorded drum hits: kicks, snares, closed and open hi-hats cut
from the MDB dev drum stems, each alone in time. For measurement only: the hits are cut into a temporary folder at
run time (never into the repo) and nothing here is ever trained on.

    python bench/real_hits.py [--model PATH] [--data DIR] [--misses] [--keep DIR]

A hit is a stroke of the annotations (DIR/midi_pp/<track>.mid, the corrected MDB Drums++ annotations; without it
DIR/subclass/<track>.txt) of a kick (GM 35/36, KD), snare (38/40, SD), closed hi-hat (42, CHH) or open hi-hat (46,
OHH) with no other annotated stroke from --alone-before-ms before it to --alone-after-ms after it. It is cut from
--pre-ms before its attack (the steepest rise of the energy within --refine-ms of the annotated time) to the next
stroke, at most --max-s long, and written as a 24-bit wav at the
stem's rate. Side sticks, ghost notes labelled apart, pedal hats, toms and cymbals are left out.

The real command line runs on them: `drumscribe sort IN OUT` (the default --min-confidence) and
`drumscribe classify --json`. Printed:
  right folder      share of the hits that `sort` filed in their class's folder; a hi-hat (closed or open) is
                    right in either hi-hat folder (the issue's measure: kick, snare, hi-hat), and the strict share
                    (closed in hihat_closed, open in hihat_open) beside it. `_unsure` counts as wrong.
  kick vs snare     the kicks and snares, each called by the larger of its kick and snare probabilities (classify)
  top class         classify's most likely class, hi-hat = closed + open (the six-class reading of
                    bench/oneshot_accuracy.py restricted to kick, snare, hi-hat truths)
  counts per class, the `_unsure` share, per track, and where each class's hits went.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path("/work/shared/data/mdb-dev")
CLASSES = ("kick", "snare", "hihat_closed", "hihat_open")
GM_CLASS = {35: "kick", 36: "kick", 38: "snare", 40: "snare", 42: "hihat_closed", 46: "hihat_open"}
SUBCLASS_CLASS = {"KD": "kick", "SD": "snare", "CHH": "hihat_closed", "OHH": "hihat_open"}
FOLDER = {"kick": "kick", "snare": "snare", "hihat_closed": "hihat", "hihat_open": "hihat"}  # the folders


def strokes_of(data: Path, track: str) -> list:
    """[(time_s, class or None)] of every annotated stroke of a track, in time order; None: a stroke of a drum
    that is not measured here (it still makes its neighbours not alone)."""
    midi = data / "midi_pp" / f"{track}.mid"
    out = []
    if midi.is_file():
        import mido

        now = 0.0
        for msg in mido.MidiFile(str(midi)):
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                out.append((now, GM_CLASS.get(msg.note)))
    else:
        for line in (data / "subclass" / f"{track}.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out.append((float(parts[0]), SUBCLASS_CLASS.get(parts[1])))
    return sorted(out, key=lambda s: s[0])


def attack_time(audio: np.ndarray, rate: int, t: float, refine_ms: float) -> float:
    """The time of the steepest rise of the 1-ms energy within refine_ms of the annotated time t (annotations are
    a few ms, on some tracks tens of ms, off the attack; a slicer cuts at the attack)."""
    if refine_ms <= 0:
        return t
    hop = max(1, rate // 1000)
    lo = max(0, int((t - refine_ms / 1000) * rate))
    window = audio[lo : int((t + refine_ms / 1000) * rate)]
    n = len(window) // hop
    if n < 3:
        return t
    energy = np.log((window[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-10)
    return (lo + (int(np.argmax(energy[2:] - energy[:-2])) + 1) * hop) / rate


def cut_hits(data: Path, out_dir: Path, args) -> list:
    """Write every lone hit of every track as out_dir/hit_NNNN.wav; returns [(file name, track, class, time_s)]."""
    import soundfile as sf

    hits = []
    for stem in sorted((data / "drum_only").glob("*.flac")):
        track = stem.stem
        if not (data / "midi_pp" / f"{track}.mid").is_file() and not (data / "subclass" / f"{track}.txt").is_file():
            continue
        audio, rate = sf.read(str(stem), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        strokes = strokes_of(data, track)
        times = np.array([t for t, _ in strokes])
        for i, (t, label) in enumerate(strokes):
            if label is None:
                continue
            others = np.delete(times, i)
            if np.any((others > t - args.alone_before_ms / 1000) & (others < t + args.alone_after_ms / 1000)):
                continue
            t = attack_time(audio, rate, t, args.refine_ms)
            later = others[others > t]
            end_s = min(t + args.max_s, later[0] if len(later) else np.inf)
            start = max(0, int(round((t - args.pre_ms / 1000) * rate)))
            piece = audio[start : int(round(end_s * rate))]
            if len(piece) < rate // 100:
                continue
            name = f"hit_{len(hits):04d}.wav"
            sf.write(str(out_dir / name), piece, rate, subtype="PCM_24")
            hits.append((name, track, label, t))
    return hits


def drumscribe(*argv) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("drumscribe")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "drumscribe"]
    return subprocess.run([*cmd, *argv], capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="one-shot checkpoint (default: the shipped model)")
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="folder with drum_only/<track>.flac and midi_pp/<track>.mid or subclass/<track>.txt")
    parser.add_argument("--alone-before-ms", type=float, default=50.0, help="no other stroke this long before a hit")
    parser.add_argument("--alone-after-ms", type=float, default=100.0, help="nor this long after it")
    parser.add_argument("--refine-ms", type=float, default=30.0,
                        help="cut at the steepest energy rise within this of the annotation (0: at the annotation)")
    parser.add_argument("--pre-ms", type=float, default=5.0, help="audio kept before the attack")
    parser.add_argument("--max-s", type=float, default=1.0, help="longest cut (else up to the next stroke)")
    parser.add_argument("--misses", action="store_true", help="list every hit sort filed in a wrong folder")
    parser.add_argument("--keep", metavar="DIR", help="cut the hits into DIR (a new folder) and keep them")
    args = parser.parse_args()

    data = Path(args.data)
    if not (data / "drum_only").is_dir():
        print(f"real_hits: --data '{data}' has no drum_only/ folder", file=sys.stderr)
        return 2
    model = ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory(prefix="drumscribe-real-hits-") as tmp:
        in_dir = Path(args.keep) if args.keep else Path(tmp) / "hits"
        in_dir.mkdir(parents=True, exist_ok=False)
        out_dir = Path(tmp) / "sorted"
        t0 = time.time()
        hits = cut_hits(data, in_dir, args)
        if not hits:
            print(f"real_hits: no lone kick, snare or hi-hat hit found under '{data}'", file=sys.stderr)
            return 1
        done = drumscribe("sort", str(in_dir), str(out_dir), *model)
        if done.returncode != 0:
            print(f"real_hits: drumscribe sort failed ({done.returncode}): {done.stderr.strip()}", file=sys.stderr)
            return 1
        with open(out_dir / "manifest.csv", newline="") as f:
            folder_of = {Path(row["source"]).name: Path(row["destination"]).parent.name for row in csv.DictReader(f)}
        done = drumscribe("classify", "--json", *model, *[str(in_dir / name) for name, *_ in hits])
        if done.returncode != 0:
            print(f"real_hits: drumscribe classify failed ({done.returncode}): {done.stderr.strip()}", file=sys.stderr)
            return 1
        probs_of = {Path(r["file"]).name: r["probabilities"] for r in json.loads(done.stdout)}
        seconds = time.time() - t0

    names = [h[0] for h in hits]
    truth = np.array([h[2] for h in hits])
    tracks = np.array([h[1] for h in hits])
    folders = np.array([folder_of.get(n, "(missing)") for n in names])
    if any(f == "(missing)" for f in folders):
        print(f"real_hits: {sum(folders == '(missing)')} hits have no manifest row", file=sys.stderr)
        return 1
    merged_folder = np.array(["hihat" if f.startswith("hihat_") else f for f in folders])
    right = merged_folder == np.array([FOLDER[t] for t in truth])
    strict = folders == truth

    def p(name, label):
        return probs_of[name].get(label, 0.0)

    ks = np.isin(truth, ("kick", "snare"))
    ks_right = np.array([(p(n, "kick") >= p(n, "snare")) == (t == "kick") for n, t in zip(names, truth)])
    six = ("kick", "snare", "hihat", "tom", "crash", "ride")
    top = []
    for n in names:
        scores = [p(n, "hihat_closed") + p(n, "hihat_open") if c == "hihat" else p(n, c) for c in six]
        top.append(six[int(np.argmax(scores))])
    top_right = np.array(top) == np.array([FOLDER[t] for t in truth])

    print(f"model: {args.model or 'the shipped model'}")
    print(f"real hits: {len(hits)} lone hits from {len(set(tracks))} tracks of '{data}' (alone from "
          f"{args.alone_before_ms:g} ms before to {args.alone_after_ms:g} ms after; cut {args.pre_ms:g} ms before "
          f"the attack (within {args.refine_ms:g} ms of the annotation), to the next stroke or {args.max_s:g} s); "
          f"{seconds:.0f} s")
    print("  " + ", ".join(f"{c} {int((truth == c).sum())}" for c in CLASSES))
    print()
    print(f"sort, right folder (kick, snare, hi-hat):   {right.mean():.3f}  ({right.sum()}/{len(right)})"
          f"   target >= 0.95")
    print(f"sort, right folder (closed and open apart): {strict.mean():.3f}  ({strict.sum()}/{len(strict)})")
    print(f"sort, share in _unsure:                     {(folders == '_unsure').mean():.3f}  "
          f"({(folders == '_unsure').sum()})")
    print(f"kick vs snare (classify):                   {ks_right[ks].mean():.3f}  ({ks_right[ks].sum()}/{ks.sum()})"
          f"   target >= 0.99")
    print(f"top class of six, hi-hat merged (classify): {top_right.mean():.3f}  ({top_right.sum()}/{len(top_right)})")
    print()
    print("per class: right folder, and where sort put them")
    for c in CLASSES:
        sel = truth == c
        if not sel.any():
            continue
        where = {f: int((folders[sel] == f).sum()) for f in sorted(set(folders[sel]))}
        print(f"  {c:<13} {right[sel].mean():.3f} ({sel.sum():>3})   "
              + ", ".join(f"{f} {k}" for f, k in sorted(where.items(), key=lambda kv: -kv[1])))
    print("per track: right folder, kick vs snare")
    for track in sorted(set(tracks)):
        sel = tracks == track
        sk = sel & ks
        print(f"  {track:<12} {right[sel].mean():.3f} ({sel.sum():>3})   "
              + (f"{ks_right[sk].mean():.3f} ({sk.sum():>3})" if sk.any() else "-"))
    if args.misses:
        print()
        print("misses (true -> folder; the three likeliest classes):")
        for h, f, ok in zip(hits, folders, right):
            if not ok:
                top3 = sorted(probs_of[h[0]].items(), key=lambda kv: -kv[1])[:3]
                print(f"  {h[1]:<10} {h[3]:8.3f} s  {h[2]:<12} -> {f:<12} ("
                      + ", ".join(f"{k} {v:.2f}" for k, v in top3) + ")")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    raise SystemExit(main())
