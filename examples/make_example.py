"""Render examples/example.mp3: about 30 s of a band (drums on a Hydrogen kit, bass and chords from General MIDI
programs), with the true drum hits in examples/example_truth.csv (time_s,drum,velocity) and, for
`drumscribe evaluate`, examples/example.txt (MDB Drums format: time<TAB>CLASS).

    .venv/bin/python examples/make_example.py

The kit is one the model is never trained on (offline/render.py's HELD_OUT_KITS), so the demo shows
the model on sounds it has not heard. Deterministic for a given seed and package versions.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from drumscribe.offline.accompaniment import render_accompaniment
from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.drums import SCORE_CLASS
from drumscribe.realtime.kits import HYDROGEN_KIT_DIRS, load_hydrogen_kit

HERE = Path(__file__).resolve().parent

KIT = "ColomboAcousticDrumkit"  # GPL-2+, Debian hydrogen-drumkits; held out of training
MP3_RATE_HZ = 44100


def find_kit(name: str) -> Path:
    for directory in HYDROGEN_KIT_DIRS:
        if (directory / name / "drumkit.xml").is_file():
            return directory / name
    sys.exit(f"make_example: Hydrogen kit '{name}' is not installed (apt-get install hydrogen-drumkits)")


def simple_groove(rng, *, tempo_bpm: float, bars: int) -> list:
    """(time_s, drum, velocity): a rock groove with hats, a tom fill every fourth bar and crashes on the ones.
    Used when offline/render.py's generate_pattern is not there."""
    step = 60.0 / tempo_bpm / 4
    hits = []

    def add(s, drum, velocity):
        hits.append((max(0.0, s * step + rng.normal(0, 0.006)), drum, int(np.clip(rng.normal(velocity, 8), 1, 127))))

    for bar in range(bars):
        b = bar * 16
        fill = bar % 4 == 3
        if bar % 4 == 0:
            add(b, "crash", 115)
        for s in range(0, 12 if fill else 16, 2):
            add(b + s, "ride" if bar % 8 >= 4 else ("hh_open" if s == 14 else "hh_closed"), 85 if s % 4 == 0 else 65)
        for s in (0, 6, 10) if bar % 2 else (0, 10):
            add(b + s, "kick", 105)
        add(b + 4, "snare", 100)
        if not fill:
            add(b + 12, "snare", 100)
            if rng.random() < 0.5:
                add(b + 15, "snare", 45)  # a ghost note
        else:
            for s, drum in zip(range(12, 16), ("tom_high", "tom_mid", "tom_low", "tom_low")):
                add(b + s, drum, 95)
    add(bars * 16, "crash", 120)
    add(bars * 16, "kick", 110)
    return sorted(hits)


def render_drums(rng, kit, *, tempo_bpm: float, bars: int):
    """(audio, [(time_s, drum, velocity)]): offline/render.py's performance when available, else simple_groove."""
    try:
        from drumscribe.offline.render import generate_pattern, render_hits
    except ImportError:
        generate_pattern = None
    if generate_pattern is not None:
        hits, duration_s = generate_pattern(rng, bars=bars, tempo_bpm=tempo_bpm, style="groove",
                                            drums_available=kit.drums)
        audio = render_hits(hits, kit, duration_s=duration_s, rng=rng)
        return audio, [(h.time_s, h.drum, h.velocity) for h in hits if h.labelled and h.time_s < duration_s]
    events = simple_groove(rng, tempo_bpm=tempo_bpm, bars=bars)
    duration_s = bars * 4 * 60.0 / tempo_bpm + 2.0
    out = np.zeros(int(duration_s * SAMPLE_RATE_HZ))
    for t, drum, velocity in events:
        instruments = kit.instruments.get(drum)
        if not instruments:
            continue
        instrument = instruments[0]
        layer = instrument.layer_for(velocity / 127.0, rng)
        start = int(round(t * SAMPLE_RATE_HZ))
        sample = layer.audio[: len(out) - start] * (layer.gain * instrument.gain * velocity / 127.0)
        out[start : start + len(sample)] += sample
    return out, events


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=8)  # hats, kick, snare, toms and crashes
    parser.add_argument("--tempo-bpm", type=float, default=112.0)
    parser.add_argument("--bars", type=int, default=14, help="14 bars at 112 BPM: 30 s")
    parser.add_argument("--out", type=Path, default=HERE / "example.mp3")
    args = parser.parse_args(argv)

    import soundfile as sf
    import soxr

    rng = np.random.default_rng(args.seed)
    kit = load_hydrogen_kit(find_kit(KIT))
    drums, events = render_drums(rng, kit, tempo_bpm=args.tempo_bpm, bars=args.bars)
    band = render_accompaniment(rng, tempo_bpm=args.tempo_bpm, bars=args.bars, sample_rate_hz=SAMPLE_RATE_HZ)

    n = max(len(drums), len(band))
    mix = np.zeros(n)
    mix[: len(drums)] += drums / (np.abs(drums).max() + 1e-9) * 10 ** (-4 / 20)
    drum_rms = np.sqrt(np.mean(drums**2)) / (np.abs(drums).max() + 1e-9) * 10 ** (-4 / 20)
    band_rms = np.sqrt(np.mean(band.astype(np.float64) ** 2)) + 1e-12
    mix[: len(band)] += band * (drum_rms / band_rms) * 10 ** (-3 / 20)  # the band 3 dB under the drums
    fade = int(0.5 * SAMPLE_RATE_HZ)
    mix[-fade:] *= np.linspace(1.0, 0.0, fade)
    mix = mix / np.abs(mix).max() * 10 ** (-1 / 20)

    audio = soxr.resample(mix, SAMPLE_RATE_HZ, MP3_RATE_HZ).astype(np.float32)
    sf.write(str(args.out), audio, MP3_RATE_HZ, format="MP3")

    truth = args.out.with_name(args.out.stem + "_truth.csv")
    with truth.open("w") as f:
        f.write("time_s,drum,velocity\n")
        for t, drum, velocity in events:
            f.write(f"{t:.4f},{drum},{velocity}\n")
    mdb = args.out.with_suffix(".txt")
    mdb.write_text("".join(f"{t:.4f}\t{SCORE_CLASS[drum]}\n" for t, drum, _ in events))
    print(f"wrote {args.out} ({len(audio) / MP3_RATE_HZ:.1f} s, {args.out.stat().st_size // 1024} KiB), "
          f"{truth.name} and {mdb.name} ({len(events)} hits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
