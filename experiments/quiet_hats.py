"""How the hi-hat holds up when it is quiet: grooves on a training kit with the hi-hat pulled down by 0, 10 and 20
dB, transcribed by a model. A development experiment (a training kit, so no held-out figure): it tells whether a
change helps the quiet hats that real recordings have (MDB's Rock plays its hats far softer than its snare).

    python experiments/quiet_hats.py [--model PATH] [--kit SPEC] [--grooves N]

Prints per cut the hi-hat F (50 ms) and F3, then for the hats played alone (no kick or snare within 30 ms) and
those played with one: how many get an onset within 50 ms, and how many get a hi-hat probability >= 0.5.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HATS = ("hh_closed", "hh_pedal", "hh_open")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="hit checkpoint (default: the shipped offline model)")
    parser.add_argument("--kit", default="sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0", help="a training kit")
    parser.add_argument("--grooves", type=int, default=3)
    parser.add_argument("--cuts", type=float, nargs="+", default=[0, 10, 20], metavar="DB")
    args = parser.parse_args()

    import torch

    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline.evaluate import hits_to_classes, played_to_classes, pool, score
    from drumscribe.offline.render import HELD_OUT_KITS, generate_pattern, load_kit, render_hits
    from drumscribe.offline.tune_thresholds import _candidates, decide

    if args.kit in HELD_OUT_KITS:
        parser.error(f"kit '{args.kit}' is held out: this experiment is for development, on training kits")
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.model or DEFAULT_MODEL_PATH)
    index = {d: i for i, d in enumerate(checkpoint.labels)}
    kit = load_kit(args.kit)
    print(f"model {args.model or DEFAULT_MODEL_PATH}, kit {args.kit}, {args.grooves} grooves per cut")
    for cut in args.cuts:
        rng = np.random.default_rng(5)
        scores, alone, together = [], [], []
        for _ in range(args.grooves):
            hits, duration = generate_pattern(rng, bars=8, style="groove", drums_available=kit.drums)
            audio = render_hits(hits, kit, duration_s=duration, rng=rng, drum_gain_db={d: -cut for d in HATS})
            audio = 0.5 * audio / (np.abs(audio).max() + 1e-9)
            found, refractory_s = _candidates(checkpoint, audio.astype(np.float64))
            emitted = decide(found, index, np.asarray(checkpoint.thresholds), refractory_s)
            scores.append(score(played_to_classes(hits), hits_to_classes(emitted)))
            others = np.array([h.time_s for h in hits if h.labelled and h.drum in ("kick", "snare")])
            for h in hits:
                if not (h.labelled and h.drum in HATS):
                    continue
                near = [f for f in found if abs(f.onset_s - h.time_s) <= 0.05]
                p = max([f.confidence for f in near if f.drum in HATS], default=0.0)
                with_other = len(others) > 0 and np.min(np.abs(others - h.time_s)) < 0.03
                (together if with_other else alone).append((bool(near), p >= 0.5))
        total = pool(scores)
        line = f"hats -{cut:g} dB: HH F {total['HH']['f']:.3f}, F3 {total['F3']['f']:.3f}"
        for name, rows in (("alone", alone), ("with kick/snare", together)):
            rows = np.array(rows, dtype=bool).reshape(-1, 2)
            line += (f" | {name} {len(rows)}: onset {rows[:, 0].mean():.2f}, p>=0.5 {rows[:, 1].mean():.2f}"
                     if len(rows) else f" | {name} 0")
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
