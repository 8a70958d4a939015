"""Join one-shot checkpoints into one ensemble checkpoint (their class probabilities averaged).

    python experiments/join_oneshot_models.py OUT.pt A.pt B.pt [...]

The shipped one-shot model is such a join (docs/oneshots.md): the model trained on library productions only
(`git show e6fe130:models/weights/oneshot.pt > library.pt`) and one trained with the recorded-kit augmentation
(`drumscribe train folders data/oneshots --epochs 40 --augment-copies 8 -o recorded.pt`).
"""
from __future__ import annotations

import sys


def main(argv) -> int:
    from drumscribe.models.oneshot import CheckpointError, join_checkpoints

    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out, *paths = argv
    try:
        joined = join_checkpoints(paths, out, extra={"made_by": "experiments/join_oneshot_models.py"})
    except CheckpointError as exc:
        print(f"join_oneshot_models: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {joined.model.config.members} networks of {len(paths)} checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
