"""Which kick, snare and hi-hat strokes the shipped decoding misses on the validation kit's tuning grooves.

    python experiments/validation_misses.py [--model PATH] [--grooves 6]

Renders the grooves `offline.tune_thresholds` tunes on (TimGM6mb, the validation kit; never the test kit), transcribes
them as `drumscribe transcribe` does, and prints per class how many played strokes were found (a hit of that class
within 50 ms) by velocity range, and the missed strokes by drum and by what else was struck within 30 ms.
"""
from __future__ import annotations

import argparse
import collections
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

VALIDATION_KIT = "sf2:/usr/share/sounds/sf2/TimGM6mb.sf2:128:0"
VELOCITY_RANGES = ((1, 40), (40, 70), (70, 100), (100, 128))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: the shipped one)")
    parser.add_argument("--grooves", type=int, default=6)
    args = parser.parse_args()

    import numpy as np
    import torch

    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline.render import generate_pattern, load_kit, render_hits
    from drumscribe.realtime.drums import SCORE_CLASS
    from drumscribe.realtime.engine import transcribe_array

    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.model or DEFAULT_MODEL_PATH)
    kit = load_kit(VALIDATION_KIT)
    rng = np.random.default_rng(5)  # the seed offline.tune_thresholds.collect_kit renders with
    strokes = []  # (class, drum, velocity, found, what else sounded with it)
    for _ in range(args.grooves):
        played, duration = generate_pattern(rng, bars=8, style="groove", drums_available=kit.drums)
        audio = render_hits(played, kit, duration_s=duration, rng=rng)
        audio = 0.5 * audio / (np.abs(audio).max() + 1e-9)
        found = transcribe_array(audio.astype(np.float64), checkpoint)
        for hit in played:
            label = SCORE_CLASS[hit.drum]
            if not hit.labelled or label not in ("KD", "SD", "HH"):
                continue
            ok = any(SCORE_CLASS[f.drum] == label and abs(f.onset_s - hit.time_s) < 0.05 for f in found)
            with_ = sorted({SCORE_CLASS[o.drum] for o in played if o is not hit and abs(o.time_s - hit.time_s) < 0.03})
            strokes.append((label, str(hit.drum), hit.velocity, ok, "+".join(with_) or "alone"))
    for label in ("KD", "SD", "HH"):
        mine = [s for s in strokes if s[0] == label]
        ranges = []
        for lo, hi in VELOCITY_RANGES:
            part = [s for s in mine if lo <= s[2] < hi]
            if part:
                ranges.append(f"velocity {lo}-{hi - 1}: {sum(s[3] for s in part)}/{len(part)}")
        missed = collections.Counter((s[1], s[4]) for s in mine if not s[3])
        print(f"{label} found {sum(s[3] for s in mine)}/{len(mine)}; " + ", ".join(ranges))
        print("   missed, by drum and what sounded with it: "
              + ", ".join(f"{drum} with {w} {n}" for (drum, w), n in missed.most_common(6)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
