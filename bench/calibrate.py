"""Kit calibration on a held-out kit: F over the individual drums of a groove, live and from the file, without and
with a profile made from a calibration take of the same kit (`drumscribe calibrate`).

    python bench/calibrate.py [--kit SPEC] [--seed N] [--tempo BPM] [--bars N] [--no-profile]

Renders (a) a calibration take: 8 strokes of each of kick, snare, hh_closed, hh_open, tom_low, tom_mid, tom_high,
crash, ride in turn (0.5 s apart, 2.5 s between drums), and (b) a groove from another seed, both on the kit
(offline.render; the held-out kits: offline.render.HELD_OUT_KITS). Prints, for the groove, per drum and pooled
(micro) F at 50 ms (mir_eval matching, offline.evaluate.score over the drums), live (`transcribe --live`: the live
model and stages, 128-sample blocks) and from the file (`transcribe`), without and with the profile.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from drumscribe.offline.calibration_check import (  # the take, the groove and the scoring
    SCORED,
    SEQUENCE,
    calibration_take,
    drum_f,
    pooled,
    render,
    transcribe,
)
from drumscribe.offline.render import HELD_OUT_KITS, generate_pattern, load_kit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kit", default=HELD_OUT_KITS[0], help=f"kit spec (default: {HELD_OUT_KITS[0]})")
    ap.add_argument("--seeds", default="7,8,9", help="the grooves' seeds, pooled (the take's is 1000 + the first)")
    ap.add_argument("--tempo", type=float, default=112.0)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--no-profile", action="store_true", help="only the figures without a profile")
    ap.add_argument("--save-profile", metavar="JSON", help="also write the profile here")
    args = ap.parse_args()

    from drumscribe._common import load_model
    from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH
    from drumscribe.realtime.profile import calibrate, profile_from_dict

    kit = load_kit(args.kit)
    file_model, live_model = load_model(str(DEFAULT_MODEL_PATH)), load_model(str(LIVE_MODEL_PATH))
    seeds = [int(x) for x in args.seeds.split(",")]
    grooves = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        hits, duration = generate_pattern(rng, bars=args.bars, tempo_bpm=args.tempo, style="groove",
                                          drums_available=kit.drums)
        grooves.append((hits, render(hits, kit, duration, rng)))
    counts = {d: sum(h.drum == d and h.labelled for hits, _ in grooves for h in hits) for d in SCORED}
    print(f"kit {args.kit}, groove seeds {args.seeds}, {args.bars} bars at {args.tempo:g} BPM: "
          + ", ".join(f"{d} {n}" for d, n in counts.items()))
    profile = None
    if not args.no_profile:
        take_rng = np.random.default_rng(seeds[0] + 1000)
        take_hits, take_duration = calibration_take(kit, take_rng)
        take = render(take_hits, kit, take_duration, take_rng)
        t0 = time.perf_counter()
        data = calibrate(take, [("hitcnn", file_model), ("hitcnn_live", live_model)], SEQUENCE, hits=8,
                         take_name="rendered")
        print(f"calibrated in {time.perf_counter() - t0:.1f} s "
              f"({', '.join(m['name'] + ': embedding ' + str(m['embedding']) for m in data['models'].values())})")
        profile = profile_from_dict(data, "rendered")
        if args.save_profile:
            import json

            Path(args.save_profile).write_text(json.dumps(data, indent=1))
    for live, model in ((True, live_model), (False, file_model)):
        for prof in (None, profile) if profile is not None else (None,):
            rows = pooled([drum_f(hits, transcribe(audio, model, live=live, profile=prof)) for hits, audio in grooves])
            print(f"{'live' if live else 'file'} {'profile' if prof is not None else 'none   '} "
                  f"F {rows['pooled']['f']:.3f}  "
                  + " ".join(f"{d} {r['f']:.2f}" for d, r in rows.items() if d != "pooled" and r["n_ref"]))


if __name__ == "__main__":
    main()
