"""How transcription holds up on band-limited audio: grooves on a training kit, transcribed as rendered and with
everything above a cut-off removed (a brick wall, as audio once sampled at 22.05 kHz or an mp3 encoder's low-pass
leaves it). A development experiment (a training kit, so no held-out figure).

Two of the five MDB dev drum stems (Rock, Shadows) have nothing above about 11 kHz and Beatles nothing above
16 kHz; their hi-hats and ride are where the shipped model fails.

    python experiments/bandwidth.py [--model PATH] [--kit SPEC] [--grooves N] [--cutoffs HZ ...]
    python experiments/bandwidth.py --recordings ../shared/data/mdb-dev/drum_only

Prints per cut-off the F (50 ms) of kick, snare, hi-hat, cymbals, F3 and F5, at the checkpoint's thresholds.
With --recordings, prints instead where each audio file of a folder stops: the top of its highest 1 kHz band within
60 dB of its loudest one (over the first 20 s).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="hit checkpoint (default: the shipped offline model)")
    parser.add_argument("--kit", default="sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0", help="a training kit")
    parser.add_argument("--grooves", type=int, default=4)
    parser.add_argument("--cutoffs", type=float, nargs="+", default=[0, 16000, 11000, 8000], metavar="HZ",
                        help="0: as rendered")
    parser.add_argument("--recordings", type=Path, metavar="DIR", help="print the band limit of each file in DIR")
    args = parser.parse_args()
    if args.recordings:
        return band_limits(args.recordings)

    import torch

    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline.evaluate import hits_to_classes, played_to_classes, pool, score
    from drumscribe.offline.render import HELD_OUT_KITS, brick_wall, generate_pattern, load_kit, render_hits
    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.engine import transcribe_array

    if args.kit in HELD_OUT_KITS:
        parser.error(f"kit '{args.kit}' is held out: this experiment is for development, on training kits")
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.model or DEFAULT_MODEL_PATH)
    kit = load_kit(args.kit)
    rng = np.random.default_rng(11)
    grooves = []
    for _ in range(args.grooves):
        hits, duration = generate_pattern(rng, bars=8, style="groove", drums_available=kit.drums)
        audio = render_hits(hits, kit, duration_s=duration, rng=rng)
        grooves.append((hits, 0.5 * audio / (np.abs(audio).max() + 1e-9)))
    print(f"model {args.model or DEFAULT_MODEL_PATH}, kit {args.kit}, {args.grooves} grooves")
    for cutoff in args.cutoffs:
        scores = []
        for hits, audio in grooves:
            heard = brick_wall(audio, cutoff, SAMPLE_RATE_HZ) if cutoff else audio
            found = transcribe_array(heard.astype(np.float64), checkpoint)
            scores.append(score(played_to_classes(hits), hits_to_classes(found)))
        total = pool(scores)
        name = f"below {cutoff / 1000:g} kHz" if cutoff else "as rendered"
        print(f"{name:>15s}: " + ", ".join(f"{c} {total[c]['f']:.3f}" for c in ("KD", "SD", "HH", "CY", "F3", "F5")))
    return 0


def band_limits(folder: Path) -> int:
    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.sources import decode_audio

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".flac", ".wav", ".mp3", ".ogg"))
    if not files:
        print(f"no audio files in {folder}", file=sys.stderr)
        return 2
    for path in files:
        audio = decode_audio(path)[: 20 * SAMPLE_RATE_HZ]
        power = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1.0 / SAMPLE_RATE_HZ)
        edges = np.arange(0, 22000, 1000)
        db = 10 * np.log10(np.array([power[(freqs >= lo) & (freqs < lo + 1000)].mean() for lo in edges]) + 1e-30)
        top = edges[np.flatnonzero(db >= db.max() - 60)[-1]] + 1000
        print(f"{path.name:<24} content up to {top / 1000:g} kHz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
