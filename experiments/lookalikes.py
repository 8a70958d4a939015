"""How alike the one-shot training kits' sounds are to the held-out kits' (offline/oneshots.py), recording by
recording: the normalised cross-correlation of each training sound with its most alike held-out sound.

    python experiments/lookalikes.py [SPEC ...]       # default: every kit of ONESHOT_TRAIN_KITS that is installed

Prints per kit the number of sounds, the highest correlation and how many reach LOOKALIKE_CORRELATION (the
same recording: `drumscribe train render-oneshots` leaves those out of training), then those pairs. A kit spec is
'hydrogen:<name>', 'sf2:<path>:<bank>:<preset>[:core]' or 'folder:<path>', e.g. a candidate kit:
    python experiments/lookalikes.py sf2:/usr/share/sounds/sf2/sf_GMbank.sf2:128:0
"""
from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv=None) -> int:
    from drumscribe.offline.oneshots import (
        LOOKALIKE_CORRELATION,
        ONESHOT_HELD_OUT_KITS,
        ONESHOT_TRAIN_KITS,
        closest_recordings,
        kit_oneshots,
    )

    logging.basicConfig(level=logging.ERROR)
    specs = (sys.argv[1:] if argv is None else argv) or list(ONESHOT_TRAIN_KITS)
    held = [shot for spec in ONESHOT_HELD_OUT_KITS for shot in kit_oneshots(spec, seen={})]
    print(f"{len(held)} held-out sounds ({', '.join(ONESHOT_HELD_OUT_KITS[:2])}, ...); "
          f"same recording at >= {LOOKALIKE_CORRELATION}")
    pairs, highest = [], 0.0
    for spec in specs:
        try:
            shots = kit_oneshots(spec, seen={})
        except (ValueError, OSError) as exc:
            print(f"{spec}: skipped ({exc})")
            continue
        if not shots:
            continue
        closest = closest_recordings(shots, held)
        peaks = [peak for _, peak in closest]
        same = [(shot, held[i], peak) for shot, (i, peak) in zip(shots, closest) if peak >= LOOKALIKE_CORRELATION]
        pairs += same
        highest = max([highest] + [p for p in peaks if p < LOOKALIKE_CORRELATION])
        print(f"{spec}: {len(shots)} sounds, highest {max(peaks):.3f}, {len(same)} the same recording")
    print(f"highest correlation of two different recordings: {highest:.3f}")
    for shot, twin, peak in pairs:
        print(f"  {peak:.3f}  {shot.kit} {shot.name} ({shot.label})  ~  {twin.kit} {twin.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
