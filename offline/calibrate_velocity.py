"""Fit the per-drum loudness offsets that turn a hit's band level into a MIDI velocity, on training kits only.

    python -m offline.calibrate_velocity [--model models/weights/hitcnn.pt] [--grooves 6] [--kit SPEC ...]

The classifier gives each hit the velocity of its loudness: the loudest of the first frames after the onset, in
the drum's band, in dB, plus a per-drum offset (`realtime.classifier._LOUDNESS_OFFSET_DB`), mapped linearly from
-60..-6 dB onto 1..127. A hi-hat puts far less energy in its band than a kick in its own, so without the offsets
every hi-hat would be quiet. This script renders grooves (peak at -6 dBFS, as the benchmarks) on kits of the
training set, transcribes them with the offsets at zero, and for every hit found as the drum that was played takes
the gap between the level its played velocity maps to and the level measured; the median gap per drum is its
offset. It prints the offsets and the Spearman correlation of played and transcribed velocity with them, on these
kits. The held-out kits (`offline.render.HELD_OUT_KITS`) are refused: they are for measuring, not fitting.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

FIT_KITS = (
    "hydrogen:The Black Pearl 1.0",
    "hydrogen:ForzeeStereo",
    "hydrogen:BJA_Pacific",
    "hydrogen:Millo_MultiLayered2",
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0",
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:8",
)


def measure(checkpoint, kits, grooves: int, seed: int = 3) -> list:
    """(drum, played velocity, measured level in dB without offset) of every hit found as the drum played."""
    from realtime.engine import OFFLINE, build_stages, transcribe_array
    from realtime.features import FeatureParams, log_mel

    from .render import generate_pattern, load_kit, render_hits

    fp = FeatureParams(**checkpoint.feature_params)
    classifier = build_stages(checkpoint, OFFLINE)[-1]  # its loudness bands, with the offsets to fit at zero
    classifier.offsets_db = np.zeros_like(classifier.offsets_db)
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
            mel = np.concatenate((mel, np.zeros((8, mel.shape[1]))))
            for f in found:
                near = [h for h in hits if h.drum == f.drum and abs(h.time_s - f.onset_s) < 0.03]
                if near:
                    # the onset frame, back from onset_s as the classifier computed it
                    k = round(f.onset_s * fp.sample_rate_hz / fp.hop_samples - 1 + checkpoint.onset_offset_frames)
                    after = mel[k : k + 5]
                    rows.append((f.drum, near[0].velocity, float(classifier.levels_db(after)[index[f.drum]])))
    return rows


def fit(rows: list) -> dict:
    from realtime.classifier import db_from_velocity

    by_drum = {}
    for drum, played, db in rows:
        by_drum.setdefault(drum, []).append(db_from_velocity(played) - db)
    return {d: round(float(np.median(g)), 1) for d, g in sorted(by_drum.items())}


def spearman(rows: list, offsets: dict) -> float:
    from scipy.stats import spearmanr

    from realtime.classifier import velocity_from_db

    played = np.array([r[1] for r in rows])
    got = velocity_from_db(np.array([r[2] + offsets.get(r[0], 0.0) for r in rows]))
    return float(spearmanr(played, got)[0])


def main(argv=None) -> int:
    from models import DEFAULT_MODEL_PATH

    from .render import HELD_OUT_KITS, available

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--grooves", type=int, default=6, help="grooves per kit (default %(default)s)")
    parser.add_argument("--kit", action="append", metavar="SPEC", help="a training kit to fit on (repeatable)")
    args = parser.parse_args(argv)
    kits = args.kit or [k for k in FIT_KITS if available(k)]
    held = [k for k in kits if k in HELD_OUT_KITS]
    if held:
        print(f"refusing to fit on held-out kit(s) {', '.join(held)}: they measure the result", file=sys.stderr)
        return 2
    import torch

    from models.cnn import load_checkpoint
    from realtime.classifier import _LOUDNESS_OFFSET_DB

    torch.set_num_threads(1)
    rows = measure(load_checkpoint(args.model), kits, args.grooves)
    offsets = fit(rows)
    print(f"{len(rows)} hits on {len(kits)} kits: {', '.join(kits)}")
    print(f"Spearman with the current offsets {spearman(rows, _LOUDNESS_OFFSET_DB):.3f}, "
          f"with the fitted ones {spearman(rows, offsets):.3f}")
    print("_LOUDNESS_OFFSET_DB = {" + ", ".join(f'"{d}": {v}' for d, v in offsets.items()) + "}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
