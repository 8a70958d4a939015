"""Tempo stability and accuracy of `drumscribe transcribe`: flac against 128 kbps mp3 on the MDB dev songs, and
grooves at known tempi rendered on the held-out kits.

    .venv/bin/python bench/tempo.py [--data ../shared/data/mdb-dev] [--grooves 15] [--design] [--no-mdb]

For every MDB dev mix and drum stem (<data>/{mix,drum_only}/*.flac) the flac is encoded to a 128 kbps mp3
(pedalboard's AudioFile, cached in bench/cache/tempo/, git-ignored); both go through the `drumscribe transcribe`
command (which decodes with soundfile), and the tempo and first downbeat written in each .mid are printed with
the tempo ratio mp3/flac. The goal (issue 33): every ratio within 2 %. Then grooves at known tempi
(offline.render.generate_pattern, style groove, seeds fixed) on each held-out kit (offline.render.HELD_OUT_KITS):
the tempo written against the one played, goal within 1 %. Nothing here tunes anything.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / "cache" / "tempo"
DRUMSCRIBE = REPO / ".venv" / "bin" / "drumscribe"
DESIGN_TEMPI = (66, 78, 91, 97, 104, 117, 126, 138, 149, 163, 178)
"""--design: the grooves looked at while the estimator was designed (seeds 100 * kit + i); the default set
(tempi drawn 60-189 BPM from seed 777, patterns from seeds 5000 + 100 * kit + i) was rendered after it."""


def mp3_of(flac: Path, kind: str) -> Path:
    """The flac encoded at 128 kbps (cached)."""
    out = CACHE / f"{kind}_{flac.stem}.mp3"
    if out.is_file():
        return out
    import soundfile as sf
    from pedalboard.io import AudioFile

    CACHE.mkdir(parents=True, exist_ok=True)
    audio, rate = sf.read(str(flac), dtype="float32", always_2d=True)
    tmp = out.with_suffix(".tmp.mp3")
    with AudioFile(str(tmp), "w", rate, audio.shape[1], quality=128) as f:
        f.write(audio.T)
    os.replace(tmp, out)
    return out


def resampled_of(flac: Path, kind: str) -> Path:
    """The flac resampled to 32 kHz (scipy's polyphase filter), as a 24-bit wav (cached)."""
    out = CACHE / f"{kind}_{flac.stem}_32k.wav"
    if out.is_file():
        return out
    import soundfile as sf
    from scipy.signal import resample_poly

    CACHE.mkdir(parents=True, exist_ok=True)
    audio, rate = sf.read(str(flac), dtype="float64", always_2d=True)
    if rate != 44100:
        sys.exit(f"bench/tempo.py: '{flac}' is {rate} Hz, expected 44100")
    tmp = out.with_suffix(".tmp.wav")
    sf.write(str(tmp), resample_poly(audio, 320, 441, axis=0), 32000, subtype="PCM_24", format="WAV")
    os.replace(tmp, out)
    return out


def written_grid(mid: Path) -> tuple:
    """(tempo from bar 1 on, seconds of bar 1, number of tempi from bar 1 on) as the .mid holds them."""
    import mido

    midi = mido.MidiFile(str(mid))
    events, now = [], 0
    for m in midi.tracks[0]:
        now += m.time
        events.append((now, m))
    tempi = [(t, m.tempo) for t, m in events if m.type == "set_tempo"]
    markers = [t for t, m in events if m.type == "marker" and m.text == "bar 1"]
    bar1_tick = markers[0] if markers else 0
    seconds, last_tick, tempo = 0.0, 0, tempi[0][1]
    for t, value in tempi:
        if t > bar1_tick:
            break
        seconds += (t - last_tick) * tempo / 1e6 / midi.ticks_per_beat
        last_tick, tempo = t, value
    seconds += (bar1_tick - last_tick) * tempo / 1e6 / midi.ticks_per_beat
    after = [v for t, v in tempi if t >= bar1_tick]
    return mido.tempo2bpm(after[0]), seconds, len(after)


def transcribe(audio: Path, out_dir: Path, *extra: str) -> tuple:
    mid = out_dir / (audio.name + ".mid")
    result = subprocess.run([str(DRUMSCRIBE), "transcribe", str(audio), "-o", str(mid), "--no-progress", *extra],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench/tempo.py: transcribe '{audio}' failed: {result.stderr.strip()}")
    return written_grid(mid)


def mdb(data: Path, out_dir: Path) -> bool:
    print("MDB dev: flac against its 128 kbps mp3 and against it resampled to 32 kHz (goal: tempo ratio within 2 %)")
    print(f"  {'track':<20}{'flac BPM':>10}{'bar 1 s':>9}{'mp3 BPM':>10}{'bar 1 s':>9}{'ratio':>8}"
          f"{'32k BPM':>10}{'ratio':>8}")
    worst = 0.0
    for kind in ("mix", "drum_only"):
        for flac in sorted((data / kind).glob("*.flac")):
            a_bpm, a_bar, _ = transcribe(flac, out_dir)
            b_bpm, b_bar, _ = transcribe(mp3_of(flac, kind), out_dir)
            c_bpm, _, _ = transcribe(resampled_of(flac, kind), out_dir)
            ratio, ratio_32k = b_bpm / a_bpm, c_bpm / a_bpm
            worst = max(worst, abs(ratio - 1))
            print(f"  {kind + '/' + flac.stem:<20}{a_bpm:>10.2f}{a_bar:>9.2f}{b_bpm:>10.2f}{b_bar:>9.2f}"
                  f"{ratio:>8.4f}{c_bpm:>10.2f}{ratio_32k:>8.4f}")
    print(f"  worst mp3 ratio off by {100 * worst:.2f} % -> {'within' if worst <= 0.02 else 'NOT within'} 2 %")
    return worst <= 0.02


def grooves(n: int, out_dir: Path, *, design: bool) -> bool:
    import numpy as np
    import soundfile as sf

    from drumscribe.offline.render import HELD_OUT_KITS, available, generate_pattern, load_kit, render_hits
    from drumscribe.realtime import SAMPLE_RATE_HZ

    which = "the design set" if design else "a set not used in the design"
    print(f"\nGrooves at known tempi on the held-out kits, {which} (goal: within 1 %)")
    within, total = 0, 0
    pick = np.random.default_rng(777)
    for k, spec in enumerate(HELD_OUT_KITS):
        if not available(spec):
            print(f"  {spec}: not installed, skipped")
            continue
        kit = load_kit(spec)
        row = []
        for i in range(min(n, len(DESIGN_TEMPI)) if design else n):
            tempo = DESIGN_TEMPI[i] if design else int(pick.integers(60, 190))
            rng = np.random.default_rng(100 * k + i if design else 5000 + 100 * k + i)
            hits, duration = generate_pattern(rng, bars=8, tempo_bpm=tempo, style="groove", drums_available=kit.drums)
            audio = render_hits(hits, kit, duration_s=duration, rng=rng)
            wav = out_dir / f"kit{k}_{i}_{tempo}.wav"
            sf.write(str(wav), (0.5 * audio / np.abs(audio).max()).astype(np.float32), SAMPLE_RATE_HZ)
            bpm, _, _ = transcribe(wav, out_dir)
            ok = abs(bpm / tempo - 1) <= 0.01
            within += ok
            total += 1
            row.append(f"{tempo}->{bpm:.1f}" + ("" if ok else f" (x{bpm / tempo:.2f})"))
        print(f"  {spec}:\n    " + ", ".join(row))
    print(f"  {within} of {total} within 1 %")
    return within == total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "mdb-dev",
                        help="the MDB dev folder (mix/, drum_only/)")
    parser.add_argument("--grooves", type=int, default=15, metavar="N", help="grooves per held-out kit (default 15)")
    parser.add_argument("--design", action="store_true",
                        help=f"the {len(DESIGN_TEMPI)} grooves per kit looked at while designing, not a fresh set")
    parser.add_argument("--no-mdb", action="store_true", help="only the rendered grooves")
    args = parser.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_mdb:
            if not (args.data / "mix").is_dir():
                sys.exit(f"bench/tempo.py: no MDB dev folder at '{args.data}' (--data)")
            ok &= mdb(args.data, Path(tmp))
        if args.grooves:
            ok &= grooves(args.grooves, Path(tmp), design=args.design)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
