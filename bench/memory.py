"""Peak memory (RSS) of `drumscribe transcribe` against the length of the file (issue 29, item 11).

    python bench/memory.py                       # 30 s, 10 min, 60 min; .mid alone, with --events, with --plot
    python bench/memory.py --lengths 30s 10m     # a quick pass
    python bench/memory.py --skip-plot --runs 3  # the median of three runs per cell
    python bench/memory.py --plot-long           # also --plot on the longest input (slow: a big figure)

Inputs are real audio: examples/example.mp3 decoded and tiled to each length, written as FLAC (or mp3 with
--format mp3) into bench/cache/memory/ (git-ignored) and reused on later runs. Each measurement is its own child
process (`python -m drumscribe transcribe ...` from this checkout), and its peak RSS is the child's ru_maxrss from
os.wait4, so no two runs' peaks mix. The acceptance bar of the issue: the 60-minute peak within 1.3x the 30 s one,
with and without --events (--plot may add what the figure needs).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "example.mp3"
CACHE = REPO / "bench" / "cache" / "memory"
DEFAULT_LENGTHS = ("30s", "10m", "60m")
RATIO_BAR = 1.3
OUTPUTS = ("mid", "events", "plot")
CHUNK_S = 60.0  # inputs are written a minute at a time: the bench itself never holds an hour of audio


def parse_length(text: str) -> float:
    """'30s', '10m', '1h', '90' (seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"length {text!r} is not a number with s, m or h (e.g. 30s, 10m, 1h)")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"length {text!r} must be positive")
    return value


def label(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def make_input(seconds: float, fmt: str) -> Path:
    """examples/example.mp3 tiled to `seconds`, as FLAC or mp3 in the cache (made once, atomically)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"example_{seconds:g}s.{fmt}"
    if path.exists():
        return path
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(str(EXAMPLE), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    total = int(round(seconds * rate))
    chunk = int(CHUNK_S * rate)
    fd, tmp = tempfile.mkstemp(dir=CACHE, prefix=f".{path.name}.", suffix=f".{fmt}")
    os.close(fd)
    start = time.monotonic()
    try:
        if fmt == "flac":
            writer = sf.SoundFile(tmp, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16")
        else:
            from pedalboard.io import AudioFile

            writer = AudioFile(tmp, "w", samplerate=rate, num_channels=1, quality="V2")
        with writer:
            for first in range(0, total, chunk):
                n = min(chunk, total - first)
                index = (np.arange(first, first + n) % len(audio))
                block = audio[index]
                writer.write(block if fmt == "flac" else block[None, :])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"made {path.relative_to(REPO)} ({label(seconds)}, {path.stat().st_size / 1e6:.1f} MB, "
          f"{time.monotonic() - start:.0f} s)", file=sys.stderr)
    return path


def measure(audio: Path, outputs: str, workdir: Path) -> dict:
    """One `drumscribe transcribe` in a child process: its peak RSS (MB), wall time and exit code."""
    argv = [sys.executable, "-m", "drumscribe", "transcribe", str(audio), "-o", str(workdir / "out.mid"),
            "--no-progress"]
    if outputs == "events":
        argv += ["--events", str(workdir / "out.csv")]
    elif outputs == "plot":
        argv += ["--plot", str(workdir / "out.png")]
    start = time.monotonic()
    with open(workdir / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    peak_mb = usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)
    lines = (workdir / "stderr.txt").read_text(errors="replace").strip().splitlines()
    return {"peak_mb": peak_mb, "wall_s": wall, "code": proc.returncode, "error": lines[-1] if lines else ""}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", nargs="+", type=parse_length, default=[parse_length(x) for x in DEFAULT_LENGTHS],
                        metavar="LEN", help="input lengths, e.g. 30s 10m 60m (default: %(default)s seconds)")
    parser.add_argument("--runs", type=int, default=1, help="runs per cell; the table shows their median (default 1)")
    parser.add_argument("--skip-plot", action="store_true", help="do not measure --plot")
    parser.add_argument("--plot-long", action="store_true",
                        help="also measure --plot on inputs of 60 min and more (skipped by default: slow)")
    parser.add_argument("--format", choices=("flac", "mp3"), default="flac", help="input format (default flac)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    lengths = sorted(set(args.lengths))
    outputs = [o for o in OUTPUTS if not (o == "plot" and args.skip_plot)]

    print(f"drumscribe transcribe peak RSS, {args.format} inputs tiled from {EXAMPLE.name}; "
          f"{args.runs} run(s) per cell, median shown; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    inputs = {seconds: make_input(seconds, args.format) for seconds in lengths}
    results = {}
    header = f"{'input':>8} | " + " | ".join(f"{'-o .mid' if o == 'mid' else '--' + o:>18}" for o in outputs)
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="drumscribe-memory-") as tmp:
        for seconds in lengths:
            cells = []
            for output in outputs:
                if output == "plot" and seconds >= 3600 and not args.plot_long:
                    cells.append(f"{'(--plot-long)':>18}")
                    continue
                runs = [measure(inputs[seconds], output, Path(tmp)) for _ in range(args.runs)]
                failed = [r for r in runs if r["code"] != 0]
                if failed:
                    cells.append(f"{'exit ' + str(failed[0]['code']):>18}")
                    print(f"  {label(seconds)} {output}: exit {failed[0]['code']}: {failed[0]['error']}",
                          file=sys.stderr)
                    continue
                peak = statistics.median(r["peak_mb"] for r in runs)
                wall = statistics.median(r["wall_s"] for r in runs)
                results[(seconds, output)] = peak
                cells.append(f"{peak:>8.0f} MB {wall:>5.1f} s")
            print(f"{label(seconds):>8} | " + " | ".join(cells), flush=True)

    if len(lengths) > 1:
        short, long = lengths[0], lengths[-1]
        ratios = []
        for output in outputs:
            if (short, output) in results and (long, output) in results:
                ratio = results[(long, output)] / results[(short, output)]
                verdict = "" if output == "plot" else (" ok" if ratio <= RATIO_BAR else f" > {RATIO_BAR}")
                ratios.append(f"{output} {ratio:.2f}x{verdict}")
        if ratios:
            print(f"peak {label(long)} / {label(short)}: " + ", ".join(ratios)
                  + f"  (bar: <= {RATIO_BAR}x for .mid and --events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
