"""Fit the per-drum loudness offsets that turn a hit's band level into a MIDI velocity, on training kits only.

    drumscribe train calibrate [--model models/weights/hitcnn.pt] [--grooves 6] [--kit SPEC ...]
        [--frames 8 --reduce sum] [--validate SPEC] [--write]

The decoder gives each hit the velocity of its loudness: the loudest of the first frames after the onset, in
the drum's band, in dB, plus a per-drum offset (`realtime.scorer._LOUDNESS_OFFSET_DB`), mapped linearly from
-60..-6 dB onto 1..127. A hi-hat puts far less energy in its band than a kick in its own, so without the offsets
every hi-hat would be quiet. This script renders grooves (peak at -6 dBFS, as the benchmarks) on kits of the
training set, transcribes them with the offsets at zero, and for every hit found as the drum that was played takes
the gap between the level its played velocity maps to and the level measured; the median gap per drum is its
offset. It prints the offsets and the Spearman correlation of played and transcribed velocity with them, on these
kits. The held-out kits (`offline.render.HELD_OUT_KITS`) are refused: they are for measuring, not fitting.

`--frames N --reduce max|sum` measure the level as the loudest of, or the energy over, N frames from the onset
frame (default: the checkpoint's measure, `realtime.scorer.velocity_measure`). `--validate SPEC` prints the
Spearman on grooves of that kit too, at the fitted offsets (the validation kit TimGM6mb; never the test kit).
`--write` stores the measure and its fitted offsets in the checkpoint (`extra["velocity"]`; the engine reads them
from there) and rewrites its ONNX bundle, each whole or not at all (models.cnn.save_checkpoint): an interrupted
run leaves the old checkpoint as it was.
"""
from __future__ import annotations

import numpy as np

FIT_KITS = (
    "hydrogen:The Black Pearl 1.0",
    "hydrogen:ForzeeStereo",
    "hydrogen:BJA_Pacific",
    "hydrogen:Millo_MultiLayered2",
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0",
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:8",
)


def measure(checkpoint, kits, grooves: int, seed: int = 3, frames: int | None = None,
            reduce: str | None = None) -> list:
    """(drum, played velocity, measured level in dB without offset) of every hit found as the drum played."""
    from drumscribe.realtime.engine import transcribe_array
    from drumscribe.realtime.features import log_mel
    from drumscribe.realtime.scorer import LoudnessMeter

    from .render import generate_pattern, load_kit, render_hits

    fp = checkpoint.feature_params
    # the checkpoint's loudness bands, with the offsets to fit at zero
    changes = {"offsets_db": {}, **({"frames": frames} if frames else {}), **({"reduce": reduce} if reduce else {})}
    meter = LoudnessMeter.for_checkpoint(checkpoint, **changes)
    n = meter.frames
    frames_after = checkpoint.model.config.frames_after
    index = {d: i for i, d in enumerate(checkpoint.labels)}
    rng = np.random.default_rng(seed)
    rows = []
    for spec in kits:
        kit = load_kit(spec)
        for _ in range(grooves):
            hits, duration = generate_pattern(rng, bars=8, style="groove", drums_available=kit.drums)
            audio = render_hits(hits, kit, duration_s=duration, rng=rng)
            audio = 0.5 * audio / (np.abs(audio).max() + 1e-9)
            found = transcribe_array(audio.astype(np.float64), checkpoint)
            mel = log_mel(audio.astype(np.float64), fp, checkpoint.mel_basis)
            mel = np.concatenate((mel, np.zeros((n + 8, mel.shape[1]))))
            for f in found:
                near = [h for h in hits if h.drum == f.drum and abs(h.time_s - f.onset_s) < 0.03]
                if near:
                    # the onset frame, back from onset_s as the decoder computed it
                    k = round(f.onset_s * fp.sample_rate_hz / fp.hop_samples - 1 + checkpoint.onset_offset_frames)
                    after = mel[k : k + min(n, 1 + frames_after)]
                    rows.append((f.drum, near[0].velocity, float(meter.levels_db(after)[index[f.drum]])))
    return rows


def fit(rows: list) -> dict:
    from drumscribe.realtime.decoder import db_from_velocity

    by_drum = {}
    for drum, played, db in rows:
        by_drum.setdefault(drum, []).append(db_from_velocity(played) - db)
    return {d: round(float(np.median(g)), 1) for d, g in sorted(by_drum.items())}


def spearman(rows: list, offsets: dict) -> float:
    from scipy.stats import spearmanr

    from drumscribe.realtime.decoder import velocity_from_db

    played = np.array([r[1] for r in rows])
    got = velocity_from_db(np.array([r[2] + offsets.get(r[0], 0.0) for r in rows]))
    return float(spearmanr(played, got)[0])


def calibrate(args, parser) -> int:
    """`drumscribe train calibrate`, its options parsed: a bad one is `parser.error` (one line, exit 2), a checkpoint
    that cannot be read or written one line and exit 1."""
    from .render import HELD_OUT_KITS, available

    kits = args.kit or [k for k in FIT_KITS if available(k)]
    held = [k for k in kits if k in HELD_OUT_KITS]
    if held:
        parser.error(f"refusing to fit on held-out kit(s) {', '.join(held)}: they measure the result")
    if args.validate and args.validate != HELD_OUT_KITS[1]:
        parser.error(f"--validate {args.validate}: expected the validation kit {HELD_OUT_KITS[1]} (the test kit "
                     f"{HELD_OUT_KITS[0]} measures the result, and a training kit validates nothing)")
    if args.frames is not None and args.frames < 1:
        parser.error(f"--frames {args.frames} is not a positive number of frames")
    import torch

    from drumscribe.models.cnn import CheckpointError, load_checkpoint, save_checkpoint
    from drumscribe.realtime.scorer import velocity_measure

    torch.set_num_threads(1)
    try:
        checkpoint = load_checkpoint(args.model)
    except CheckpointError as exc:
        parser.exit(1, f"{parser.prog}: --model: {' '.join(str(exc).split())}\n")
    if args.write:  # refused now rather than after the grooves are measured
        from drumscribe.realtime.sinks import OutputPathError, check_writable

        try:
            check_writable(args.model)
        except OutputPathError as exc:
            parser.exit(1, f"{parser.prog}: --write: {' '.join(str(exc).split())}\n")
    frames, reduce, current = velocity_measure(checkpoint)
    frames, reduce = args.frames or frames, args.reduce or reduce
    rows = measure(checkpoint, kits, args.grooves, frames=frames, reduce=reduce)
    offsets = fit(rows)
    print(f"{len(rows)} hits on {len(kits)} kits: {', '.join(kits)}; level: {reduce} of {frames} frames")
    print(f"Spearman with the checkpoint's offsets {spearman(rows, current):.3f}, "
          f"with the fitted ones {spearman(rows, offsets):.3f}")
    if args.validate:
        held_rows = measure(checkpoint, [args.validate], args.grooves, seed=4, frames=frames, reduce=reduce)
        print(f"{args.validate}: Spearman {spearman(held_rows, offsets):.3f} over {len(held_rows)} hits")
    print("offsets_db = {" + ", ".join(f'"{d}": {v}' for d, v in offsets.items()) + "}")
    if args.write:
        from drumscribe.models.export import write_bundle
        from drumscribe.models.runtime import bundle_path

        shift = float(np.median([offsets[d] - current[d] for d in offsets if d in current])) if offsets else 0.0
        for drum in checkpoint.labels:  # a drum the grooves never found: its old offset, moved as the others moved
            offsets.setdefault(drum, round(current.get(drum, 0.0) + shift, 1))
        checkpoint.extra["velocity"] = {"frames": frames, "reduce": reduce, "offsets_db": offsets,
                                        "fitted_on": list(kits), "grooves_per_kit": args.grooves}
        save_checkpoint(args.model, checkpoint)
        print(f"wrote the velocity measure into {args.model}")
        if bundle_path(args.model).is_file():
            print(f"wrote {write_bundle(args.model)}")
    return 0
