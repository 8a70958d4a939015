"""What in a band hides the drums: MDB dev mixes split into the drum stem and the rest, transcribed with parts of
the band. A development diagnostic on the tuning tracks (their thresholds were tuned on them).

Four of the five dev mixes (Beatles, Country1, Punk, Shadows) are summed from the multitracks with the drums at
unit gain, so the band is exactly the mix minus the drum stem; Rock's is the released mix and is left out.

    python experiments/band_split.py [--model PATH] [--data DIR] [--split-hz HZ]

Prints per track, for the mix, the drums with only the band below --split-hz, with only the band above it, and
with the whole band 6 dB down: found/annotated/emitted hits of kick, snare and hi-hat, and F3 (50 ms).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

SUMMED = ("Beatles", "Country1", "Punk", "Shadows")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="hit checkpoint (default: the shipped offline model)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mdb-dev")
    parser.add_argument("--split-hz", type=float, default=150.0)
    args = parser.parse_args()
    if not (args.data / "mix").is_dir():
        parser.error(f"no MDB dev mixes under {args.data}")

    import torch
    from scipy.signal import butter, sosfiltfilt

    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline.evaluate import hits_to_classes, load_annotations, score
    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.engine import transcribe_array
    from drumscribe.realtime.sources import decode_audio

    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.model or DEFAULT_MODEL_PATH)
    low_pass = butter(4, args.split_hz, "low", fs=SAMPLE_RATE_HZ, output="sos")
    print(f"model {args.model or DEFAULT_MODEL_PATH}; found/annotated/emitted")
    for track in SUMMED:
        drums = decode_audio(args.data / "drum_only" / f"{track}.flac")
        mix = decode_audio(args.data / "mix" / f"{track}.flac")
        n = min(len(drums), len(mix))
        drums, mix = drums[:n], mix[:n]
        band = mix - drums
        low = sosfiltfilt(low_pass, band)
        rms = [float(np.sqrt(np.mean(x**2))) for x in (drums, band)]
        print(f"{track}: band {20 * np.log10(rms[1] / rms[0]):+.1f} dB RMS against the drums")
        reference = load_annotations(args.data / "class_pp" / f"{track}.txt")
        for name, audio in (("mix", mix), (f"drums + band below {args.split_hz:g} Hz", drums + low),
                            (f"drums + band above {args.split_hz:g} Hz", drums + band - low),
                            ("drums + band 6 dB down", drums + 0.5 * band)):
            s = score(reference, hits_to_classes(transcribe_array(audio, checkpoint)))
            counts = " ".join(f"{c} {s[c]['tp']}/{s[c]['n_ref']}/{s[c]['n_est']}" for c in ("KD", "SD", "HH"))
            print(f"  {name:<30} {counts}  F3 {s['F3']['f']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
