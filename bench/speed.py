"""How long `drumscribe transcribe` takes on a 5-minute mp3: wall clock of the whole command, start-up included.

    .venv/bin/python bench/speed.py [--model PATH] [--runs 3] [--block-size 128]

The 5-minute song is examples/example.mp3 tiled (cached in bench/cache/, git-ignored). The goal is under 5 s on
the 2-core development machine. A 1-second file is timed too: that is the start-up (imports, model load).
Close other heavy work first; the figures are only as quiet as the machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / "cache"
GOAL_S = 5.0
SONG_S = 300.0


def five_minute_mp3() -> Path:
    path = CACHE / "five_minutes.mp3"
    if path.is_file():
        return path
    import numpy as np
    import soundfile as sf

    CACHE.mkdir(exist_ok=True)
    audio, rate = sf.read(str(REPO / "examples" / "example.mp3"), dtype="float32", always_2d=True)
    reps = int(np.ceil(SONG_S * rate / len(audio)))
    song = np.tile(audio, (reps, 1))[: int(SONG_S * rate)]
    tmp = path.with_suffix(".tmp.mp3")
    sf.write(str(tmp), song, rate, format="MP3")
    os.replace(tmp, path)
    return path


def one_second_wav() -> Path:
    path = CACHE / "one_second.wav"
    if not path.is_file():
        import soundfile as sf

        CACHE.mkdir(exist_ok=True)
        audio, rate = sf.read(str(REPO / "examples" / "example.mp3"), dtype="float32", frames=44100)
        sf.write(str(path), audio, rate)
    return path


def command() -> list:
    script = Path(sys.executable).parent / "drumscribe"
    if script.is_file():
        return [str(script)]
    found = shutil.which("drumscribe")
    return [found] if found else [sys.executable, "-m", "drumscribe"]


def time_run(cmd: list) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip().splitlines()[-1]}")
    return elapsed


def main(argv=None) -> int:
    from drumscribe.models import DEFAULT_MODEL_PATH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="checkpoint (default: the shipped model)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--block-size", type=int, default=128)
    args = parser.parse_args(argv)
    if not Path(args.model).is_file():
        print(f"bench: model '{args.model}' does not exist; pass --model PATH", file=sys.stderr)
        return 1

    song, short = five_minute_mp3(), one_second_wav()
    out = CACHE / "out.mid"
    base = [*command(), "transcribe", "--model", args.model, "--block-size", str(args.block_size),
            "--no-progress", "-o", str(out)]
    load = os.getloadavg()[0]
    print(f"drumscribe transcribe, {SONG_S / 60:.0f}-minute mp3, block size {args.block_size}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} before the runs")
    startup = [time_run([*base, str(short)]) for _ in range(args.runs)]
    print("  1 s file (start-up):  " + "  ".join(f"{t:.2f} s" for t in startup))
    runs = [time_run([*base, str(song)]) for _ in range(args.runs)]
    print(f"  {SONG_S:.0f} s file:         " + "  ".join(f"{t:.2f} s" for t in runs))
    best, median = min(runs), statistics.median(runs)
    print(f"  best {best:.2f} s, median {median:.2f} s: {SONG_S / median:.0f}x real time; "
          f"goal < {GOAL_S:.0f} s {'met' if median < GOAL_S else 'NOT met'} (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
