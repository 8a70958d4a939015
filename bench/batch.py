"""Batch transcription: wall time of `drumscribe transcribe FOLDER -o OUT --jobs 1` and `--jobs 2`, their ratio,
the throughput per core, and a rerun that must redo nothing.

    .venv/bin/python bench/batch.py [--data /work/shared/data/mdb-dev/mix] [--runs 1] [--jobs 1 2] [--ray ADDRESS]

The folder is built in a temporary directory (never in the repository): a symlink to each audio file of --data
(the 5 MDB dev mixes), a subfolder with one more (a sixth file), and a broken .wav. Each run must end with exit 1,
one .mid per audio file in the same tree and failures.csv naming the broken file; the script checks that. The goal
on the 2-core development machine is --jobs 2 >= 1.4x faster than --jobs 1. Close other heavy work first: the
figures are only as quiet as the machine.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = Path("/work/shared/data/mdb-dev/mix")
GOAL_RATIO = 1.4
SONG_S = 240.0  # the cost model's song: 4 minutes


def command() -> list:
    script = Path(sys.executable).parent / "drumscribe"
    if script.is_file():
        return [str(script)]
    found = shutil.which("drumscribe")
    return [found] if found else [sys.executable, "-m", "drumscribe"]


def build_tree(data: Path, root: Path) -> tuple:
    """root/in: a symlink per audio file of `data`, sub/ with one more, broken.wav. Returns (folder, n_audio,
    audio seconds)."""
    import soundfile as sf

    songs = sorted(p for p in data.iterdir() if p.suffix.lower() in (".flac", ".wav", ".mp3"))
    if not songs:
        raise SystemExit(f"bench/batch.py: no audio in '{data}'")
    folder = root / "in"
    (folder / "sub").mkdir(parents=True)
    for song in songs:
        os.symlink(song.resolve(), folder / song.name)
    os.symlink(songs[0].resolve(), folder / "sub" / f"copy_of_{songs[0].name}")
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE but nothing after\n" * 4)
    seconds = sum(sf.info(str(s)).duration for s in songs) + sf.info(str(songs[0])).duration
    return folder, len(songs) + 1, seconds


def check_output(out: Path, folder: Path, n_audio: int) -> str:
    mids = sorted(str(p.relative_to(out)) for p in out.rglob("*.mid"))
    rows = list(csv.reader((out / "failures.csv").open())) if (out / "failures.csv").is_file() else []
    problems = []
    if len(mids) != n_audio:
        problems.append(f"{len(mids)} .mid files, expected {n_audio}")
    if [r[0] for r in rows[1:]] != [str(folder / "broken.wav")]:
        problems.append(f"failures.csv lists {[r[0] for r in rows[1:]]}, expected the broken file")
    return "; ".join(problems)


def run(argv: list, *, one_core: bool = False) -> tuple:
    start = time.perf_counter()
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_core else None
    result = subprocess.run(argv, capture_output=True, text=True, preexec_fn=pin)
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of songs (default {DEFAULT_DATA})")
    parser.add_argument("--runs", type=int, default=1, help="runs of each --jobs value, alternating (median)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="the --jobs values (default 1 2)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="also time the batch through --ray ADDRESS (a running cluster, e.g. a local head: "
                             "ray start --head --node-ip-address=127.0.0.1 --port=6379 --num-cpus=2)")
    parser.add_argument("--one-core", action="store_true",
                        help="also time --jobs 1 pinned to one core with taskset (a check that --jobs 1 uses one "
                             "core: the two should take the same time)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"bench/batch.py: '{args.data}' is not a folder (the MDB dev mixes: --data DIR)")
    cores = len(os.sched_getaffinity(0))
    root = Path(tempfile.mkdtemp(prefix="drumscribe-batch-"))
    try:
        folder, n_audio, audio_s = build_tree(args.data, root)
        print(f"{n_audio} songs ({audio_s:.0f} s of audio, {n_audio - 1} from {args.data} and a copy in sub/) and "
              f"a broken .wav; {cores} cores; {' '.join(command())}")
        settings = [(jobs, False) for jobs in args.jobs] + ([(1, True)] if args.one_core else [])
        walls = {setting: [] for setting in settings}
        for i in range(args.runs):
            for jobs, one_core in settings:
                out = root / f"out-{jobs}-{one_core}-{i}"
                wall_s, result = run([*command(), "transcribe", str(folder), "-o", str(out), "--jobs", str(jobs),
                                      "--no-progress"], one_core=one_core)
                label = f"--jobs {jobs}" + (" on one core" if one_core else "")
                problem = check_output(out, folder, n_audio)
                if result.returncode != 1 or problem:
                    print(f"{label}: exit {result.returncode} (expected 1) {problem}\n{result.stderr[-2000:]}")
                    return 1
                walls[(jobs, one_core)].append(wall_s)
                print(f"{label}: {wall_s:6.2f} s wall, exit 1, {n_audio} .mid, failures.csv names broken.wav")
        # a rerun of the last output folder: nothing to redo
        wall_s, result = run([*command(), "transcribe", str(folder), "-o", str(out), "--jobs", str(args.jobs[-1]),
                              "--no-progress"])
        redone = [line for line in result.stdout.splitlines() if line.startswith("wrote ")]
        print(f"rerun: exit {result.returncode}, {len(redone)} files redone, {wall_s:.2f} s "
              f"({result.stdout.splitlines()[0] if result.stdout else ''})")
        if args.ray:
            out = root / "out-ray"
            wall_s, result = run([*command(), "transcribe", str(folder), "-o", str(out), "--ray", args.ray,
                                  "--no-progress"])
            problem = check_output(out, folder, n_audio)
            if result.returncode != 1 or problem:
                print(f"--ray {args.ray}: exit {result.returncode} (expected 1) {problem}\n{result.stderr[-2000:]}")
                return 1
            print(f"--ray {args.ray}: {wall_s:6.2f} s wall ({audio_s / wall_s:.1f} s of audio per s), exit 1, "
                  f"{n_audio} .mid, failures.csv names broken.wav")
        print()
        medians = {setting: statistics.median(w) for setting, w in walls.items()}
        for (jobs, one_core), wall in medians.items():
            used = 1 if one_core else min(jobs, cores)  # --jobs N uses N cores: N workers of one thread each
            per_core = audio_s / wall / used
            print(f"--jobs {jobs}{' on one core' if one_core else ''}: median {wall:.2f} s; {audio_s / wall:.1f} s "
                  f"of audio per s; per core {per_core:.1f} s/s = {per_core * 3600 / SONG_S:.0f} songs of 4 min per "
                  f"hour per core")
        if (1, False) in medians and (2, False) in medians:
            ratio = medians[(1, False)] / medians[(2, False)]
            verdict = "meets" if ratio >= GOAL_RATIO else "misses"
            print(f"ratio --jobs 1 / --jobs 2: {ratio:.2f}x ({verdict} the goal of {GOAL_RATIO}x)")
        if (1, True) in medians and (2, False) in medians:
            print(f"ratio --jobs 1 on one core / --jobs 2: {medians[(1, True)] / medians[(2, False)]:.2f}x (the "
                  f"same as the ratio above when --jobs 1 keeps to one core)")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
