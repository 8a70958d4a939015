"""What every part of the `drumscribe` command shares: exit codes, the one user-facing error class, one-line
messages, and the option checks and loaders that more than one command runs. It imports none of the command's
modules (drumscribe/cli.py, audition_cli.py, live_cli.py, samples_cli.py), which all import it.

Heavy modules (numpy, torch) are imported inside the functions, so `drumscribe --help` stays instant.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1  # bad input: nothing was written
EXIT_USAGE = 2  # bad command line (argparse's code)
EXIT_SILENT = 3  # the audio is silent: empty but valid outputs were written
EXIT_INTERRUPTED = 130  # Ctrl-C: outputs hold everything found so far (none written when nothing was found)
EXIT_BROKEN_PIPE = 141  # stdout closed by its reader (128 + SIGPIPE, as other Unix tools)

MAX_BLOCK_SIZE_SAMPLES = 1 << 16
MAX_NOTE_LENGTH_MS = 10_000.0


class DrumscribeError(Exception):
    """A problem the user can fix. Commands raise it (or a subclass); `drumscribe.cli.main` alone catches it and
    prints `drumscribe COMMAND: MESSAGE` as one line, then exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def one_line(exc: BaseException) -> str:
    """An exception's message as one line (some libraries put a traceback-like story in theirs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def check_block_size(block_size: int) -> None:
    if not 1 <= block_size <= MAX_BLOCK_SIZE_SAMPLES:
        raise DrumscribeError(f"--block-size {block_size} is not in 1-{MAX_BLOCK_SIZE_SAMPLES} samples")


def load_drum_map(name: str):
    """The drum map of `--drum-map NAME` (a preset or a JSON file)."""
    from drumscribe.realtime.drums import DrumMapError
    from drumscribe.realtime.drums import load_drum_map as load

    try:
        return load(name)
    except DrumMapError as exc:
        raise DrumscribeError(f"--drum-map: {one_line(exc)}") from None


def file_threads() -> int:
    """ONNX Runtime threads for a file's network: on this project's 2-core machine, 2 took `bench/speed.py`'s
    median from 4.24 s to 3.14 s with the three-network model; at most 4, past which small batches only spin."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def load_model(path: str, *, threads: int = 1):
    """A checkpoint, every field checked (models/ and the engine's own check): its ONNX twin when one was written
    from this very file (no torch to import), else the .pt."""
    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.runtime import CheckpointError, load_bundle
    from drumscribe.realtime.engine import check_checkpoint

    if not Path(path).exists() and Path(path).resolve() == DEFAULT_MODEL_PATH.resolve():
        raise DrumscribeError(f"the shipped model '{path}' does not exist yet (not trained); pass --model PATH")
    try:
        bundle = load_bundle(path, threads=threads, check=check_checkpoint)
        if bundle is not None:
            return bundle
        import torch

        from drumscribe.models.cnn import load_checkpoint

        torch.set_num_threads(1)  # faster than several threads for these small batches, and polite
        return load_checkpoint(path, check=check_checkpoint)
    except CheckpointError as exc:
        raise DrumscribeError(f"--model: {one_line(exc)}") from None


def check_outputs(paths: dict, input_path: str | None = None) -> None:
    """Every output can be written, none is the input, no two are the same file: checked before any work."""
    from drumscribe.realtime.sinks import OutputPathError, check_writable

    seen = {}
    for option, path in paths.items():
        if path is None:
            continue
        resolved = Path(path).resolve()
        if input_path is not None and Path(input_path).exists() and resolved == Path(input_path).resolve():
            raise DrumscribeError(f"{option} '{path}' is the input file; choose another output path")
        if resolved in seen:
            raise DrumscribeError(f"{option} '{path}' is the same file as {seen[resolved]}")
        seen[resolved] = option
        try:
            check_writable(path)
        except OutputPathError as exc:
            raise DrumscribeError(f"{option}: {exc}") from None
