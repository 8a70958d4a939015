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
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1].parent))

from drumscribe.offline.evaluate import score  # noqa: E402
from drumscribe.offline.render import HELD_OUT_KITS, Hit, generate_pattern, load_kit, render_hits  # noqa: E402

SEQUENCE = ("kick", "snare", "hh_closed", "hh_open", "tom_low", "tom_mid", "tom_high", "crash", "ride")
SCORED = SEQUENCE  # the individual drums the F pools


def calibration_take(kit, rng, *, hits: int = 8, spacing_s: float = 0.5, pause_s: float = 2.5):
    """(hits, duration) of a take: `hits` strokes of each drum of SEQUENCE in turn, velocities 70-115."""
    out, t = [], 0.5
    for drum in SEQUENCE:
        for _ in range(hits):
            out.append(Hit(t + rng.normal(0, 0.01), drum, int(rng.integers(70, 116))))
            t += spacing_s
        t += pause_s - spacing_s
    return out, t + 1.0


def render(hits, kit, duration, rng) -> np.ndarray:
    audio = render_hits(hits, kit, duration_s=duration, rng=rng)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float64)


def drum_f(played, found, drums=SCORED) -> dict:
    """Per drum F rows and 'pooled' (micro over the drums)."""
    ref = {d: np.sort([h.time_s for h in played if h.drum == d and h.labelled]) for d in drums}
    est = {d: np.sort([h.onset_s for h in found if h.drum == d]) for d in drums}
    rows = score(ref, est, classes=tuple(drums))
    rows = {d: rows[d] for d in drums if d in rows}
    tp = sum(r["tp"] for r in rows.values())
    n_ref = sum(r["n_ref"] for r in rows.values())
    n_est = sum(r["n_est"] for r in rows.values())
    f = 2 * tp / max(n_ref + n_est, 1)
    return {**rows, "pooled": {"f": f, "tp": tp, "n_ref": n_ref, "n_est": n_est}}


def transcribe(audio, checkpoint, *, live: bool, profile=None) -> list:
    from drumscribe.realtime import DEFAULT_BLOCK_SIZE_SAMPLES
    from drumscribe.realtime.engine import OFFLINE, Engine, build_stages
    from drumscribe.realtime.live import build_live_stages
    from drumscribe.realtime.sinks import CollectSink
    from drumscribe.realtime.sources import ArraySource

    stages = (build_live_stages(checkpoint, profile=profile) if live
              else build_stages(checkpoint, OFFLINE, profile=profile))
    collected = CollectSink()
    Engine(stages, [collected]).run(ArraySource(audio, block_size_samples=DEFAULT_BLOCK_SIZE_SAMPLES if live
                                                else 4096))
    return list(collected)


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


def pooled(tracks: list) -> dict:
    """drum_f rows summed over grooves (tp, n_ref, n_est), F recomputed: a micro average."""
    out = {}
    for rows in tracks:
        for name, r in rows.items():
            acc = out.setdefault(name, {"tp": 0, "n_ref": 0, "n_est": 0})
            for k in acc:
                acc[k] += r[k]
    for acc in out.values():
        acc["f"] = 2 * acc["tp"] / max(acc["n_ref"] + acc["n_est"], 1)
    return out


if __name__ == "__main__":
    main()
