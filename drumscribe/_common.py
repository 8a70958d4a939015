"""What every part of the `drumscribe` command shares: exit codes, the one user-facing error class, one-line
messages, the options more than one command takes (defined here once: the same name, default and help sentence in
every command; a default is always shown as "(default: X)"), the progress bar, and the option checks and loaders
that more than one command runs. It imports none of the command's modules (drumscribe/cli.py, audition_cli.py,
live_cli.py, samples_cli.py, train_cli.py), which all import it.

Heavy modules (numpy, torch) are imported inside the functions, so `drumscribe --help` stays instant.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1  # bad input: nothing was written
EXIT_USAGE = 2  # bad command line (argparse's code)
EXIT_SILENT = 3  # the audio is silent: empty but valid outputs were written
EXIT_INTERRUPTED = 130  # Ctrl-C: outputs hold everything found so far (none written when nothing was found)
EXIT_BROKEN_PIPE = 141  # stdout closed by its reader (128 + SIGPIPE, as other Unix tools)

MAX_BLOCK_SIZE_SAMPLES = 1 << 16
MAX_NOTE_LENGTH_MS = 10_000.0
DEFAULT_NOTE_LENGTH_MS = 50.0

PROGRESS_MIN_DURATION_S = 30.0
"""Audio longer than this gets a progress bar even when stderr is not a terminal (a log)."""


class DrumscribeError(Exception):
    """A problem the user can fix. Commands raise it (or a subclass); `drumscribe.cli.main` alone catches it and
    prints `drumscribe COMMAND: MESSAGE` as one line, then exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, but a command's help starts on its own line ('drumscribe --help' lists each command with its
    one-line help beside it): argparse measures the commands one indent short, so the longest names wrapped."""

    def add_argument(self, action):
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS and isinstance(action.choices, dict) and action.choices:
            longest = max(len(name) for name in action.choices) + self._current_indent + 2 * self._indent_increment
            self._action_max_length = max(self._action_max_length, longest)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too, and subcommands line up in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

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
    """A checkpoint (models.runtime.Checkpoint: typed settings and a Network), every field checked (models/ and the
    engine's own check): its ONNX twin when one was written from this very file (no torch to import), else the
    .pt."""
    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.runtime import CheckpointError, load_bundle
    from drumscribe.realtime.engine import check_checkpoint

    if not Path(path).exists() and Path(path).resolve() == DEFAULT_MODEL_PATH.resolve():
        raise DrumscribeError(f"the shipped model '{path}' does not exist yet (not trained); pass --model PATH")
    if not os.path.lexists(path):  # said before torch is looked for: without torch too, the missing file is the news
        raise DrumscribeError(f"--model: model file '{path}' does not exist")
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


# ---------------------------------------------------------------------------------------------------------------
# options more than one command takes: defined once, so their names, defaults and help read the same everywhere

TRANSCRIPTION_MODEL = "model checkpoint, a .pt file; its ONNX twin beside it is used when there is one"


def add_model_option(parser, *, default: str = "the shipped model", what: str = TRANSCRIPTION_MODEL) -> None:
    """`--model PATH`; None when not given: the command picks the shipped model it names in `default`."""
    parser.add_argument("--model", metavar="PATH", help=f"{what} (default: {default})")


def add_drum_map_option(parser, *, reading: bool = False) -> None:
    """`--drum-map NAME`: the map notes are written with, or (`reading`) the map a .mid was written with."""
    from drumscribe.realtime.drums import DEFAULT_DRUM_MAP

    what = ("the drum map the notes were written with: a name from 'drumscribe drum-maps' or a JSON file; GM notes "
            "it does not use (35, 40, ...) are understood too" if reading
            else "the drum map to write the notes with: a name from 'drumscribe drum-maps' or a JSON file")
    parser.add_argument("--drum-map", default=DEFAULT_DRUM_MAP, metavar="NAME",
                        help=f"{what} (default: {DEFAULT_DRUM_MAP})")


def add_block_size_option(parser) -> None:
    """`--block-size SAMPLES`: the engine's block, the same option in transcribe, evaluate and live."""
    from drumscribe.realtime import DEFAULT_BLOCK_SIZE_SAMPLES, SAMPLE_RATE_HZ

    ms = DEFAULT_BLOCK_SIZE_SAMPLES / SAMPLE_RATE_HZ * 1e3
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE_SAMPLES, metavar="SAMPLES",
                        help=f"samples per block the engine takes, as a live input delivers them, 1-"
                             f"{MAX_BLOCK_SIZE_SAMPLES} (default: {DEFAULT_BLOCK_SIZE_SAMPLES}, {ms:.1f} ms at "
                             f"{SAMPLE_RATE_HZ // 1000} kHz)")


def add_note_length_option(parser) -> None:
    parser.add_argument("--note-length-ms", type=float, default=DEFAULT_NOTE_LENGTH_MS, metavar="MS",
                        help=f"time from each note-on to its note-off, in ms, up to {MAX_NOTE_LENGTH_MS:g} "
                             f"(default: {DEFAULT_NOTE_LENGTH_MS:g})")


def add_events_option(parser) -> None:
    parser.add_argument("--events", metavar="CSV",
                        help="also write one CSV row per hit: onset_s,emitted_s,drum,midi_note,velocity,confidence")


def add_live_input_options(parser, *, prefix: str = "") -> None:
    """`--input`, `--input-channel`, `--sample-rate`: the live input, as `live` and `calibrate --live` take it;
    `prefix` heads each help (e.g. '--live: ')."""
    parser.add_argument("--input", metavar="DEVICE",
                        help=f"{prefix}audio input: index or name substring from 'drumscribe devices' (default: the "
                             f"system's)")
    parser.add_argument("--input-channel", type=int, default=1, metavar="N",
                        help=f"{prefix}the input channel the drums are on, from 1 (default: 1)")
    parser.add_argument("--sample-rate", type=int, metavar="HZ",
                        help=f"{prefix}input sample rate; other than 48000 is resampled (default: the device's)")


def add_no_progress_option(parser) -> None:
    """`--no-progress`, for every command that can show a progress bar (see `want_progress`)."""
    parser.add_argument("--no-progress", action="store_true",
                        help=f"never show a progress bar (by default one shows on a terminal, and also in a log "
                             f"for audio over {PROGRESS_MIN_DURATION_S:g} s)")


def add_json_option(parser, what: str, *, extra: str = "") -> None:
    """`--json`: the same switch in every command that has it: `what` as JSON on stdout instead of the text."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout instead of text{extra}")


def check_note_length(note_length_ms: float) -> None:
    import math

    if not (math.isfinite(note_length_ms) and 0 < note_length_ms <= MAX_NOTE_LENGTH_MS):
        raise DrumscribeError(f"--note-length-ms {note_length_ms:g} is not in 0-{MAX_NOTE_LENGTH_MS:g} ms")


def default_model_path(*, live: bool) -> str:
    """The model a command uses when --model is not given: the live model for live runs and `transcribe --live`."""
    from drumscribe.models import DEFAULT_MODEL_PATH

    if not live:
        return str(DEFAULT_MODEL_PATH)
    from drumscribe.realtime.live import live_model_path

    return str(live_model_path())


# ---------------------------------------------------------------------------------------------------------------
# the progress bar: the same rule and the same look in every command

def want_progress(no_progress: bool, *, audio_s: float = 0.0) -> bool:
    """A bar shows unless --no-progress: on a terminal, and also in a log (stderr not a terminal) for a job over
    PROGRESS_MIN_DURATION_S of audio, where a silent minute would look like a hang."""
    if no_progress:
        return False
    return sys.stderr.isatty() or audio_s > PROGRESS_MIN_DURATION_S


class Progress:
    """A tqdm bar on stderr, gone when closed, redrawn at most twice a second: `advance(amount)` in `unit`s."""

    def __init__(self, label: str, total: float, unit: str):
        from tqdm import tqdm

        self.bar = tqdm(total=round(total, 1), unit=unit, desc=label, file=sys.stderr, leave=False, mininterval=0.5,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} " + unit
                                   + " [{elapsed}<{remaining}]")

    def advance(self, amount: float) -> None:
        self.bar.update(amount)

    def close(self) -> None:
        self.bar.close()


class AudioProgress(Progress):
    """A bar in seconds of audio, called with each block's sample count (the engine's `progress`) or with each
    decoded chunk (a FileSource listener); updated four times a second of audio, not once per block."""

    def __init__(self, label: str, duration_s: float, sample_rate_hz: int):
        super().__init__(label, duration_s, "s")
        self.sample_rate_hz = sample_rate_hz
        self.pending = 0
        self.step = sample_rate_hz // 4

    def __call__(self, samples) -> None:
        self.pending += samples if isinstance(samples, int) else len(samples)
        if self.pending >= self.step:
            self.advance(self.pending / self.sample_rate_hz)
            self.pending = 0


class CountProgress:
    """A bar of files, called as `progress(done, total)` (offline/sorting.py's callback); made at the first call,
    and only when `shown`."""

    def __init__(self, label: str, *, shown: bool, unit: str = "file"):
        self.label, self.shown, self.unit, self.bar = label, shown, unit, None

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if self.bar is None:
            self.bar = Progress(self.label, total, self.unit)
        self.bar.advance(done - self.bar.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
