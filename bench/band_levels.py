"""The drums' level against the band in real mixes: what the training songs' spread (offline.songs.SONG_DRUMS_DB)
must cover. A level measurement of the MDB dev mixes and their drum stems; nothing is trained on them.

    .venv/bin/python bench/band_levels.py [--data ../shared/data/mdb-dev]

For each song with mix/<name>.flac and drum_only/<name>.flac: the median over 10-s windows of the drum stem's RMS
against the mix less the stem (offline.songs.drums_against_band_db), its 10th-90th percentiles and the stem's gain.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mdb-dev"


def main(argv=None) -> int:
    import soundfile as sf

    from drumscribe.offline.songs import SONG_DRUMS_DB, drums_against_band_db

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder with mix/ and drum_only/ audio")
    args = parser.parse_args(argv)
    mixes = sorted((args.data / "mix").glob("*.flac"))
    if not mixes:
        print(f"bench/band_levels.py: no mix/*.flac under '{args.data}'", file=sys.stderr)
        return 1
    for path in mixes:
        stem = args.data / "drum_only" / path.name
        if not stem.is_file():
            continue
        mix, sr = sf.read(path, always_2d=True)
        drums, _ = sf.read(stem, always_2d=True)
        gain, levels = drums_against_band_db(mix.mean(axis=1), drums.mean(axis=1), sample_rate_hz=sr)
        low, high = np.percentile(levels, [10, 90])
        print(f"{path.stem}: drums {np.median(levels):+.1f} dB against the band (10-s windows {low:+.1f} to "
              f"{high:+.1f}), stem gain {gain:.2f}")
    print(f"the training songs cover {SONG_DRUMS_DB[0]:+g} to {SONG_DRUMS_DB[1]:+g} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
