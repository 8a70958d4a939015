"""How near a drum mask (offline.unmix) brings a real song's spectrogram to its drums alone.

    python experiments/unmix.py runs/drummask.pt [--data ../shared/data/mdb-dev]

The MDB dev tracks come as a mix and as the drum stem it was summed from, so the stem is the truth the mask aims
at. Per song: the mean absolute difference between the log-mel (the hit classifier's input) of the mix and of the
stem, the same for the masked mix, and the masked mix's mean difference from the stem (below 0: it took out more
than the band). The stem is scaled to its level in the mix (least squares) first.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mask", type=Path, help="a drum mask checkpoint (drumscribe train unmix fit)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mdb-dev")
    args = parser.parse_args()
    if not (args.data / "mix").is_dir() or not (args.data / "drum_only").is_dir():
        parser.error(f"no MDB dev mixes and drum stems under {args.data}")

    import numpy as np

    from drumscribe.models.unmix import load_mask, numpy_weights
    from drumscribe.offline.dataset import masked
    from drumscribe.offline.tune_thresholds import TRACKS
    from drumscribe.realtime.features import log_mel
    from drumscribe.realtime.sources import decode_audio

    weights = numpy_weights(load_mask(args.mask)[0])
    print(f"{'song':<10}{'mix - stem':>12}{'masked - stem':>15}{'signed':>9}")
    for track in TRACKS:
        mix, stem = (decode_audio(args.data / kind / f"{track}.flac") for kind in ("mix", "drum_only"))
        n = min(len(mix), len(stem))
        mix, stem = mix[:n], stem[:n]
        stem = stem * float(np.dot(mix, stem) / np.dot(stem, stem))
        m, s = log_mel(mix), log_mel(stem)
        out = masked(m, weights)
        print(f"{track:<10}{np.abs(m - s).mean():>12.3f}{np.abs(out - s).mean():>15.3f}{(out - s).mean():>9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
