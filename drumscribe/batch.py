"""Batch transcription: several files and folders in, one .mid (and the other per-file outputs) per file out.

`drumscribe transcribe IN... [-o OUTDIR]` plans every input to its outputs (a folder is walked for audio; each file
becomes OUTDIR/<path relative to its IN>.mid, or <file>.mid beside it without -o), skips the files whose outputs
are all there and newer than the input (unless --force), and transcribes the rest in worker processes (--jobs N)
or as Ray tasks (--ray ADDRESS), each file through the very function a single file goes through: the CLI hands it
in as `per_file` (a function of a per-file copy of the parsed arguments), so this module knows none of its
options and never imports drumscribe/cli.py. One bad file never stops the batch: it is listed in failures.csv and
the run ends with exit 1.

Per-file path options (--events, --plot, --audition, --score) take a suffix in a batch ('.csv', '.png', '.flac',
'.musicxml'): the output is written beside each .mid with that suffix in place of '.mid'. A file path there names
one file for many inputs, which cannot work: one line says so.

Ray is imported only for --ray. Heavy modules (tqdm, soundfile) are imported inside the functions.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ._common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SILENT, DrumscribeError, one_line

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".w64")
"""What a folder input is searched for (case-insensitive); a file named on the command line is tried whatever it
is called."""

FAILURES_CSV = "failures.csv"
"""Written in OUTDIR (or the one folder input without -o): one row per file that failed (path, reason)."""

PROGRESS_MIN_DURATION_S = 30.0
"""A batch with more audio than this gets a progress bar even when stderr is not a terminal (as one file does)."""

MAX_ONNX_THREADS = 4
"""A worker's ONNX Runtime threads: the --jobs cores shared out among the workers, at most this many."""


@dataclass(frozen=True)
class Job:
    """One input file and the outputs it is to be transcribed to: option ('--output', '--events', ...) -> path."""

    input: Path
    outputs: dict = field(default_factory=dict)

    @property
    def mid(self) -> Path:
        return self.outputs["--output"]


def is_suffix(value: str) -> bool:
    """'.csv', '.events.csv': a suffix for outputs beside each .mid, not a path (no folder part)."""
    return (len(value) > 1 and value.startswith(".") and value not in ("..",) and "/" not in value
            and os.sep not in value)


def beside(mid: Path, suffix: str) -> Path:
    """The output with `suffix` next to `mid`: song.mid and '.csv' give song.csv."""
    return mid.with_name(mid.stem + suffix)


def single_outputs(audio: str, output: str | None, options: dict) -> dict:
    """The outputs of one file input: -o as given, or the input's name with .mid beside it; a suffix option
    ('--events .csv') is written beside the .mid, a path option as given (today's meaning)."""
    mid = output if output is not None else str(Path(audio).with_suffix(".mid"))
    return {"--output": mid, **{flag: str(beside(Path(mid), value)) if is_suffix(value) else value
                                for flag, value in options.items()}}


# ---------------------------------------------------------------------------------------------------------------
# plan


def _walk(folder: Path, skip: Path | None) -> list:
    """Audio files under `folder` (sorted, recursively; hidden files and folders left out, symlinked folders not
    followed), leaving out the folder `skip` (an OUTDIR inside the input)."""
    found = []
    for root, dirs, files in os.walk(folder, onerror=None, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip is None or (here / d).resolve() != skip))
        found += [here / f for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_SUFFIXES and (here / f).is_file()]
    return found


def plan(inputs: list, outdir: str | None, options: dict) -> list:
    """Jobs for the inputs: each file input, and every audio file in each folder input. `options`: the per-file
    path options given (flag -> suffix). Raises DrumscribeError for what cannot work at all (a folder without
    audio, a path option where a suffix is needed, two inputs writing one output), before anything is written."""
    for flag, value in options.items():
        if not is_suffix(value):
            example = Path(value).suffix or ".csv"
            raise DrumscribeError(f"{flag} '{value}' names one file, but a batch (several inputs or a folder) writes "
                                  f"one per input: give a suffix such as '{example}', written beside each .mid")
    out = Path(outdir) if outdir is not None else None
    skip = out.resolve() if out is not None else None
    found = []  # (input, path relative to its IN)
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            files = _walk(path, skip)
            if not files:
                raise DrumscribeError(f"folder '{name}' holds no audio files ({', '.join(AUDIO_SUFFIXES)}), "
                                      f"expected at least one")
            found += [(f, f.relative_to(path)) for f in files]
        else:  # a file, or a name that is not there: that file fails in its turn, the others go on
            found.append((path, Path(path.name)))
    if out is not None:
        if out.exists() and not out.is_dir():
            raise DrumscribeError(f"-o '{outdir}' is a file; with several inputs or a folder, -o names a folder "
                                  f"(OUTDIR/<name>.mid)")
        if not out.exists() and out.suffix.lower() == ".mid":
            raise DrumscribeError(f"-o '{outdir}' ends in .mid, but with several inputs or a folder -o names a "
                                  f"folder (OUTDIR/<name>.mid); transcribe one file to name its .mid")
    jobs = []
    for path, rel in found:
        mid = (out / rel if out is not None else path).with_suffix(".mid")
        jobs.append(Job(path, {"--output": mid, **{flag: beside(mid, s) for flag, s in options.items()}}))
    # an output of one job that a folder walk found as an input (an --audition .wav beside its .mp3): not an input
    made_by = {p.resolve(): job.input for job in jobs for p in job.outputs.values()}
    jobs = [job for job in jobs if made_by.get(job.input.resolve(), job.input) == job.input
            or str(job.input) in inputs]
    _check_distinct(jobs)
    return jobs


def _check_distinct(jobs: list) -> None:
    inputs = {job.input.resolve(): job for job in jobs}
    seen = {}
    for job in jobs:
        for flag, path in job.outputs.items():
            key = path.resolve()
            if key in inputs:
                raise DrumscribeError(f"{flag} of '{job.input}' would be '{path}', which is an input; choose another "
                                      f"suffix or -o OUTDIR")
            if key in seen:
                other, other_flag = seen[key]
                raise DrumscribeError(f"'{other.input}' ({other_flag}) and '{job.input}' ({flag}) would both write "
                                      f"'{path}'; rename one, or transcribe them separately")
            seen[key] = (job, flag)


def is_done(job: Job) -> bool:
    """Every output is there and newer than the input (outputs are written atomically, so one that is there is
    whole)."""
    try:
        since = job.input.stat().st_mtime_ns
        return all(p.stat().st_mtime_ns >= since for p in job.outputs.values())
    except OSError:
        return False


def _duration_s(path: Path) -> float:
    """The input's length from its header (0 when it cannot be read: the file then fails in its worker)."""
    from drumscribe.realtime.sources import open_audio

    try:
        with open_audio(path) as f:  # quiet: the decoder's own notes about a damaged file go nowhere
            return f.frames / f.samplerate
    except Exception:
        return 0.0


# ---------------------------------------------------------------------------------------------------------------
# one file, in a worker


_initialised = False


def _init_worker(worker_init, threads: int, own_group: bool) -> None:
    """Once per worker process: its own process group (Ctrl-C at the terminal reaches the batch, which stops the
    workers, and never a worker mid-file, which would write the notes so far as if they were the file's), SIGTERM
    as SystemExit (the batch's stop: cleaned up as any error is), then the CLI's set-up (a model cache with
    `threads` ONNX threads)."""
    global _initialised
    if own_group:
        import signal

        with contextlib.suppress(OSError):
            os.setpgrp()
        signal.signal(signal.SIGTERM, _stop)
    if worker_init is not None:
        worker_init(threads)
    _initialised = True


def _stop(signum, frame):
    raise SystemExit(EXIT_INTERRUPTED)


def cached_loader(load, threads: int):
    """`load(path, *, threads)` loading each model once per process (per file version), with at most `threads`
    ONNX Runtime threads: the cores shared out among the workers. The loaded model holds no per-song state (the
    engine's stages, built anew for each file, do)."""
    load = getattr(load, "__wrapped__", load)  # set up twice: one cache, over the real loader
    limit = threads
    cache = {}

    def cached(path, *, threads: int = 1):
        threads = min(threads, limit)
        stat = os.stat(path) if os.path.exists(path) else None
        key = (str(Path(path).resolve()), stat and stat.st_mtime_ns, stat and stat.st_size, threads)
        if key not in cache:
            cache.clear()  # one model per worker
            cache[key] = load(path, threads=threads)
        return cache[key]

    cached.__wrapped__ = load
    return cached


def run_one(per_file, args) -> tuple:
    """Transcribe one file with `per_file(args)`; returns (ok, line): the line the file printed last, or the
    one-line reason it failed. Its own output is captured, not printed: the batch prints one line per file."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = per_file(args)
    except DrumscribeError as exc:
        return False, one_line(exc)
    except Exception as exc:  # a bug of ours on one file: the batch goes on
        return False, f"internal error ({type(exc).__name__}: {one_line(exc)})"
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    said = " ".join(err.getvalue().split())
    if code == EXIT_OK:
        return True, lines[-1] if lines else f"wrote '{args.output}'"
    if code == EXIT_SILENT:
        return True, said or f"'{args.audio}' is silent; wrote empty outputs"
    if code == EXIT_INTERRUPTED:  # what was written holds part of the file: marked stale, so a rerun redoes it
        for option in getattr(args, "batch_outputs", ()):
            with contextlib.suppress(OSError, TypeError):
                os.utime(getattr(args, option), ns=(0, 0))
        return False, "interrupted; its outputs hold part of the file (a rerun redoes it)"
    return False, said or f"exit {code}"


def _ray_task(per_file, worker_init, threads: int, cwd: str, args) -> tuple:
    if not _initialised:
        _init_worker(worker_init, threads, own_group=False)
    if os.path.isdir(cwd):  # relative --model or --drum-map paths, on a cluster whose nodes share the storage
        os.chdir(cwd)
    return run_one(per_file, args)


# ---------------------------------------------------------------------------------------------------------------
# the batch


def file_args(args, job: Job, dests: dict, *, absolute: bool = False) -> object:
    """A copy of the parsed arguments for one file: the input, -o and each per-file path option rewritten, no
    per-file progress bar. `dests`: option flag -> argparse dest."""
    one = copy.copy(args)
    path = (lambda p: str(Path(p).resolve())) if absolute else str
    one.audio = path(job.input)
    for flag, target in job.outputs.items():
        setattr(one, dests[flag], path(target))
    one.batch_outputs = [dests[flag] for flag in job.outputs]
    one.no_progress = True
    return one


def worker_threads(jobs: int, files: int) -> tuple:
    """(workers, ONNX threads per worker) for `--jobs` cores and this many files: --jobs N is N cores, N workers of
    one thread each, or with fewer files than N, one worker per file with the spare cores as threads."""
    workers = max(1, min(jobs, files))
    return workers, max(1, min(MAX_ONNX_THREADS, jobs // workers))


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Report:
    """One line per file on stdout, the progress bar over files and audio seconds on stderr, failures.csv."""

    def __init__(self, jobs: list, durations: dict, *, show_bar: bool, failures_path: Path | None):
        self.n = len(jobs)
        self.durations = durations
        self.done = 0
        self.failed = []  # (input, reason)
        self.succeeded = 0
        self.audio_s = 0.0
        self.failures_path = failures_path
        self.bar = None
        if show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=round(sum(durations.values()), 1), unit="s", file=sys.stderr, leave=False,
                            mininterval=0.5, desc=f"0/{self.n} files",
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
                                       "[{elapsed}<{remaining}]")

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def finished(self, job: Job, ok: bool, line: str) -> None:
        self.done += 1
        seconds = self.durations.get(job.input, 0.0)
        if ok:
            self.succeeded += 1
            self.audio_s += seconds
            self.say(line)
        else:
            self.failed.append((str(job.input), line))
            self.say(f"failed '{job.input}': {line}")
        if self.bar is not None:
            self.bar.set_description_str(f"{self.done}/{self.n} files", refresh=False)
            self.bar.update(seconds)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def write_failures(self) -> None:
        """failures.csv lists this run's failures (atomically); a run without any removes an old one."""
        if self.failures_path is None:
            return
        if not self.failed:
            with contextlib.suppress(FileNotFoundError):
                self.failures_path.unlink()
            return
        from drumscribe.realtime.sinks import atomic_output

        with atomic_output(self.failures_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "reason"])
            writer.writerows(sorted(self.failed))


def _names_input(reason: str, job: Job) -> bool:
    return str(job.input) in reason or str(job.input.resolve()) in reason or f"'{job.input.name}'" in reason


def run_batch(args, inputs: list, *, per_file, worker_init, dests: dict) -> int:
    """Transcribe `inputs` (files and folders) as the CLI's `per_file(args)` does one file. `dests`: the per-file
    path options, flag -> argparse dest ('--output' -> 'output' among them); `worker_init(threads)` runs once in
    each worker process. Returns the exit code: 0 when every file succeeded (or was up to date), 1 when one
    failed, 130 when interrupted."""
    options = {flag: getattr(args, dest) for flag, dest in dests.items()
               if flag != "--output" and getattr(args, dest, None)}
    jobs = plan(inputs, args.output, options)
    workers = getattr(args, "jobs", None)
    if workers is not None and workers < 1:
        raise DrumscribeError(f"--jobs {workers} is not a number of worker processes (1 or more)")
    ray = _connect_ray(args.ray) if getattr(args, "ray", None) else None
    try:
        return _batch(args, inputs, jobs, per_file, worker_init, dests, workers, ray)
    finally:
        if ray is not None:
            ray.shutdown()


def _batch(args, inputs: list, jobs: list, per_file, worker_init, dests: dict, workers, ray) -> int:
    outdir = Path(args.output) if args.output is not None else (
        Path(inputs[0]) if len(inputs) == 1 and Path(inputs[0]).is_dir() else None)
    todo = jobs if getattr(args, "force", False) else [job for job in jobs if not is_done(job)]
    skipped = len(jobs) - len(todo)
    made = []  # the folders made for the outputs: removed again, when empty, if the batch stops on its options
    try:
        for folder in ([Path(args.output)] if args.output is not None else []) + [job.mid.parent for job in todo]:
            made += _make_folder(folder)
    except OSError as exc:
        _remove_empty(made)
        raise DrumscribeError(f"-o '{args.output}': cannot make the folder '{exc.filename}' "
                              f"({exc.strerror or exc})") from None
    durations = {job.input: _duration_s(job.input) for job in todo}
    # as for one file: on a terminal, or anywhere for more than PROGRESS_MIN_DURATION_S of audio
    show_bar = not args.no_progress and (sys.stderr.isatty() or sum(durations.values()) > PROGRESS_MIN_DURATION_S)
    report = _Report(todo, durations, show_bar=show_bar,
                     failures_path=outdir / FAILURES_CSV if outdir is not None else None)
    if skipped:
        report.say(f"skipped {skipped} of {len(jobs)} files: their outputs are complete and newer than the input "
                   f"(--force redoes them)")
    import time

    start = time.perf_counter()
    code = EXIT_OK
    try:
        if todo:
            if ray is not None:
                _run_ray(ray, todo, args, per_file, worker_init, dests, report)
            else:
                # longest first: the last file to finish is a short one, so no worker idles long at the end
                longest_first = sorted(todo, key=lambda job: -durations[job.input])
                _run_local(longest_first, args, per_file, worker_init, dests, workers or default_jobs(), report)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BaseException:  # the options are wrong for every file (or a bug): failures.csv stays as it was
        report.close()
        _remove_empty(made)
        raise
    report.close()
    if code != EXIT_INTERRUPTED or report.failed:  # an interrupted run with no failure yet keeps the old list
        report.write_failures()
    wall_s = time.perf_counter() - start
    speed = f"; {report.audio_s:.0f} s of audio in {wall_s:.1f} s ({report.audio_s / wall_s:.0f}x real time)" \
        if report.succeeded and wall_s > 0 else ""
    where = f" (listed in '{report.failures_path}')" if report.failures_path is not None else ""
    summary = (f"{report.succeeded} of {len(jobs)} files transcribed, {skipped} up to date, "
               f"{len(report.failed)} failed{where if report.failed else ''}{speed}")
    if code == EXIT_INTERRUPTED:
        left = len(todo) - report.done
        print(f"drumscribe transcribe: interrupted with {left} files left ({summary}); the same command resumes",
              file=sys.stderr)
        return code
    if report.failed:
        print(f"drumscribe transcribe: {summary}", file=sys.stderr)
        return EXIT_ERROR
    report.say(summary)
    return EXIT_OK


def _make_folder(folder: Path) -> list:
    """Make `folder` and its missing parents; returns those it made, in the order made."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    missing.reverse()
    for path in missing:
        path.mkdir()
    return missing


def _remove_empty(folders: list) -> None:
    for folder in reversed(folders):  # the last made first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _stop_if_options_are_wrong(report: _Report, job: Job, ok: bool, reason: str) -> None:
    """A failure that does not name its file, before any file succeeded, is the options' (a bad --drum-map or
    --model): every file would fail so, so the batch stops with that one line."""
    if not ok and not report.succeeded and not _names_input(reason, job):
        raise DrumscribeError(reason)


def _run_local(todo: list, args, per_file, worker_init, dests: dict, workers: int, report: _Report) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    workers, threads = worker_threads(workers, len(todo))
    context = multiprocessing.get_context("spawn")  # no threads or locks of this process inherited
    pending = list(reversed(todo))  # popped from the end: in order
    tries = {}
    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                   initargs=(worker_init, threads, True))
        running = {}
        try:
            while pending or running:
                while pending and len(running) < 2 * workers and not _broken(pool):  # not 100,000 futures at once
                    job = pending.pop()
                    try:
                        future = pool.submit(run_one, per_file, file_args(args, job, dests))
                    except BrokenProcessPool:
                        pending.append(job)
                        break
                    running[future] = job
                if not running:
                    break  # the pool broke: a fresh one takes the rest
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    try:
                        ok, line = future.result()
                    except BrokenProcessPool:  # a worker died (a crash in a decoder, say): each file it held
                        tries[job.input] = tries.get(job.input, 0) + 1  # gets one more try in a fresh pool, then fails
                        if tries[job.input] < 2:
                            pending.append(job)
                            continue
                        ok, line = False, "the worker process transcribing it died (twice)"
                    _stop_if_options_are_wrong(report, job, ok, line)
                    report.finished(job, ok, line)
        except BaseException:
            _terminate(pool)
            raise
        pool.shutdown(wait=True, cancel_futures=True)


def _broken(pool) -> bool:
    return bool(getattr(pool, "_broken", False))


def _terminate(pool) -> None:
    """Stop the workers now (they are in their own process groups, so Ctrl-C did not reach them): SIGTERM makes a
    worker raise SystemExit (see _init_worker), so the file it was on is abandoned the way any error abandons it,
    its temporary files removed and the outputs already there untouched; no new file is started."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def _connect_ray(address: str):
    """Ray, connected to the cluster at `address` (imported only here); one line when it is missing or nothing
    answers there."""
    try:
        import ray
    except ImportError:
        raise DrumscribeError("--ray needs Ray, which is not installed: pip install 'drumscribe[cluster]' "
                              "(or pip install 'ray[default]')") from None
    import logging

    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=False)
    except Exception as exc:
        raise DrumscribeError(f"--ray {address}: cannot connect to the Ray cluster ({one_line(exc)})") from None
    return ray


def _run_ray(ray, todo: list, args, per_file, worker_init, dests: dict, report: _Report) -> None:
    """Each file a Ray task needing one CPU; a worker process keeps its model for the next file it gets."""
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
    cwd = os.getcwd()
    running = {task.remote(per_file, worker_init, 1, cwd, file_args(args, job, dests, absolute=True)): job
               for job in todo}
    try:
        while running:
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                job = running.pop(ref)
                try:
                    ok, line = ray.get(ref)
                except Exception as exc:  # the task's worker died
                    ok, line = False, f"the Ray task failed ({type(exc).__name__}: {one_line(exc)[:200]})"
                _stop_if_options_are_wrong(report, job, ok, line)
                report.finished(job, ok, line)
    except BaseException:
        for ref in running:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise


def _check_reachable(address: str) -> None:
    """Ray retries an address where nothing listens for ever (printing as it goes): a quick TCP connect first.
    'auto' (the cluster this machine started) is left to Ray, which says at once when there is none."""
    import socket

    if address == "auto":
        return
    where = address.split("://", 1)[-1]
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise DrumscribeError(f"--ray '{address}' is not an address; expected auto, HOST:PORT (127.0.0.1:6379) or "
                              f"ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
    except OSError as exc:
        raise DrumscribeError(f"--ray {address}: nothing answers at {host}:{port} ({exc.strerror or exc}); start a "
                              f"head there with 'ray start --head --port={port}'") from None
