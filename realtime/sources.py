"""Sources: where audio blocks come from. A file source reads like a live input: mono, engine rate, fixed blocks.

A file is decoded a chunk at a time (soundfile reads mp3 sample-exactly), mixed to mono and resampled by a
streaming resampler, so memory stays flat however long the recording is (`bench/memory.py`); the samples are
the same as decoding the whole file at once (`tests/test_sources.py`).
"""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import numpy as np

from . import DEFAULT_BLOCK_SIZE_SAMPLES, RESAMPLE_QUALITY, SAMPLE_RATE_HZ

MIN_INPUT_RATE_HZ = 8000
MAX_INPUT_RATE_HZ = 192000
AUDIO_KINDS = "mp3, wav, flac, ogg or aiff"

DECODE_CHUNK_FRAMES = 1 << 16
"""Input frames decoded at a time by FileSource (1.4 s at 44.1 kHz)."""

_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")  # the only encodings that can hold NaN or inf


class AudioInputError(ValueError):
    """An audio input that cannot be used; the message is one line for the user."""


def check_audio_path(path: str | Path) -> Path:
    """`path` names a readable regular file (not a FIFO, device or folder, which would hang or make no sense)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioInputError(f"audio file '{path}' does not exist") from None
    except OSError as exc:
        raise AudioInputError(f"audio file '{path}' cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise AudioInputError(f"audio file '{path}' is a directory, expected an {AUDIO_KINDS} file")
    if not stat.S_ISREG(mode):
        raise AudioInputError(f"audio file '{path}' is a {_file_kind(mode)}, expected a regular {AUDIO_KINDS} file")
    if not os.access(path, os.R_OK):
        raise AudioInputError(f"audio file '{path}' is not readable (permission denied)")
    return path


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


@contextlib.contextmanager
def _decoder_quiet():
    """libsndfile's mp3 decoder (mpg123) prints notes about damaged frames straight to stderr (fd 2); the user
    gets one line of ours instead. Only around the decoder's calls, so a progress bar still shows."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_audio(path: str | Path):
    """An open soundfile.SoundFile of a checked path; one clear line for anything that is not audio we read."""
    import soundfile as sf

    path = check_audio_path(path)
    try:
        with _decoder_quiet():
            f = sf.SoundFile(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError for junk
        reason = " ".join(str(exc).split())
        # libsndfile says "not a regular file (possibly a pipe?)" of an unreadable mp3; the path was checked above
        reason = "unknown or damaged format" if "possibly a pipe" in reason or not reason else \
            reason.replace(f"Error opening '{path}': ", "").replace(f"Error opening {str(path)!r}: ", "")
        raise AudioInputError(f"'{path}' is not audio drumscribe can read ({reason[:120].rstrip('.')}); "
                              f"expected {AUDIO_KINDS}") from None
    if not MIN_INPUT_RATE_HZ <= f.samplerate <= MAX_INPUT_RATE_HZ:
        f.close()
        raise AudioInputError(f"'{path}' has sample rate {f.samplerate} Hz, expected "
                              f"{MIN_INPUT_RATE_HZ}-{MAX_INPUT_RATE_HZ} Hz")
    return f


def _read(f, path, frames: int) -> np.ndarray:
    """Up to `frames` frames (-1: the rest) of an open file as (frames, channels) float32, every sample finite."""
    try:
        with _decoder_quiet():
            start = f.tell() if f.seekable() else None
            audio = f.read(frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioInputError(f"'{path}' cannot be decoded ({' '.join(str(exc).split())[:120]}); the file is "
                              f"damaged or not {AUDIO_KINDS}") from None
    if not np.isfinite(audio).all():
        bad = int(np.flatnonzero(~np.isfinite(audio).all(axis=1))[0]) + (start or 0)
        raise AudioInputError(f"'{path}' holds non-finite samples (NaN or inf) from {bad / f.samplerate:.3f} s; "
                              f"expected finite audio")
    return audio


def read_audio(path: str | Path, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """A file (or its first `max_seconds`) as (frames, channels) float32 and its rate, checked: one clear line
    for a bad file, a FIFO or device, or non-finite samples."""
    with open_audio(path) as f:
        frames = -1 if max_seconds is None else int(max_seconds * f.samplerate)
        return _read(f, Path(path), frames), f.samplerate


def check_finite(path: str | Path) -> None:
    """Raise AudioInputError now, before any work, if a file that can hold NaN or inf (float WAV, AIFF, ...)
    does; integer and compressed encodings cannot. Reads the file once, a chunk at a time."""
    with open_audio(path) as f:
        if f.subtype not in _FLOAT_SUBTYPES:
            return
        while len(_read(f, Path(path), DECODE_CHUNK_FRAMES)):
            pass


def _to_mono(audio: np.ndarray, resampling: bool, compact: bool) -> np.ndarray:
    """(frames, channels) float32 -> mono: the channels' mean in float64 (float32 where soxr will round to it)."""
    if audio.shape[1] > 1:
        mono = audio.mean(axis=1, dtype=np.float64)
        return mono.astype(np.float32) if compact and resampling else mono
    return audio[:, 0] if compact else audio[:, 0].astype(np.float64)


def _resampler(rate: int, sample_rate_hz: int, live_resampling: bool):
    """The streaming resampler a file at `rate` goes through: soxr 'HQ' (which gives the samples of resampling the
    whole file at once), or with `live_resampling` the one a live input at that rate goes through
    (`realtime.RESAMPLE_QUALITY`, float32, its filter delay included)."""
    import soxr

    if live_resampling:
        return soxr.ResampleStream(rate, sample_rate_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    return soxr.ResampleStream(rate, sample_rate_hz, 1, dtype="float32", quality="HQ")


def decode_chunks(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ, *, live_resampling: bool = False,
                  chunk_frames: int = DECODE_CHUNK_FRAMES):
    """Mono chunks of a file at `sample_rate_hz`, decoded, mixed and resampled a chunk at a time: float32, or
    float64 for a file of several channels at the engine rate (their mean). Concatenated, they are exactly
    `decode_audio(path, compact=True)`."""
    with open_audio(path) as f:
        resampling = f.samplerate != sample_rate_hz
        stream = _resampler(f.samplerate, sample_rate_hz, live_resampling) if resampling else None
        while True:
            audio = _read(f, Path(path), chunk_frames)
            last = len(audio) < chunk_frames
            mono = _to_mono(audio, resampling, compact=True)
            if stream is not None:
                mono = stream.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)
            if len(mono):
                yield np.ascontiguousarray(mono)
            if last:
                return


def decode_audio(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ, *, live_resampling: bool = False,
                 compact: bool = False) -> np.ndarray:
    """Decode a whole file to mono float64 at `sample_rate_hz` (see `decode_chunks` for the resampling).

    With `compact`, the samples come back as float32 wherever that holds every one of them exactly: one channel at
    the engine rate, and anything resampled (soxr computes 'HQ' in float32). Only a file of several channels at
    the engine rate stays float64 (their mean)."""
    chunks = list(decode_chunks(path, sample_rate_hz, live_resampling=live_resampling))
    mono = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return mono if compact else mono.astype(np.float64)


_CONVERT_SAMPLES = 1 << 15  # float32 audio reaches the engine as float64 in stretches of about this many samples


def _blocks(chunks, size: int):
    """Fixed blocks of `size` float64 samples (the last one shorter) from chunks of any length: float32 is converted
    a stretch at a time, not per block."""
    carry = np.zeros(0)
    for chunk in chunks:
        for first in range(0, len(chunk), _CONVERT_SAMPLES):
            part = chunk[first : first + _CONVERT_SAMPLES].astype(np.float64, copy=False)
            if len(carry):
                part = np.concatenate((carry, part))
            whole = len(part) - len(part) % size
            for start in range(0, whole, size):
                yield part[start : start + size]
            carry = part[whole:]
    if len(carry):
        yield carry


class _Source:
    """Context manager plumbing of a source: `with FileSource(...) as source:`."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        pass


class ArraySource(_Source):
    """Blocks of a signal already in memory, at the engine rate, `block_size_samples` at a time."""

    def __init__(self, audio: np.ndarray, *, block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES,
                 sample_rate_hz: int = SAMPLE_RATE_HZ):
        if block_size_samples < 1:
            raise AudioInputError(f"block size {block_size_samples} is not a positive number of samples")
        # float32 stays float32 (half the memory of a long song); the blocks are float64 either way
        audio = np.asarray(audio)
        self.audio = np.ascontiguousarray(audio, dtype=np.float32 if audio.dtype == np.float32 else np.float64)
        self.block_size_samples = block_size_samples
        self.sample_rate_hz = sample_rate_hz

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate_hz

    def __len__(self) -> int:
        return -(-len(self.audio) // self.block_size_samples)

    def __iter__(self):
        return _blocks([self.audio], self.block_size_samples)


class FileSource(_Source):
    """An audio file read like a live input: decoded, mixed to mono and resampled a chunk at a time, in fixed
    blocks. Nothing of the file is held beyond the chunk being read.

    `peak` is the largest magnitude of the samples read so far; each function in `listeners` sees every chunk of
    mono engine-rate samples before its blocks go out (a plot's waveform, say). A file that can hold NaN or inf
    is checked whole before the first block (`check_finite`); any other problem while decoding raises
    AudioInputError from the iteration."""

    def __init__(self, path: str | Path, *, block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES,
                 sample_rate_hz: int = SAMPLE_RATE_HZ, live_resampling: bool = False, listeners=()):
        if block_size_samples < 1:
            raise AudioInputError(f"block size {block_size_samples} is not a positive number of samples")
        self.path = Path(path)
        with open_audio(path) as f:  # header: rate, length
            self.input_rate_hz, self.input_frames = f.samplerate, f.frames
        check_finite(path)
        self.block_size_samples = block_size_samples
        self.sample_rate_hz = sample_rate_hz
        self.live_resampling = live_resampling
        self.listeners = list(listeners)
        self.peak = 0.0

    @property
    def duration_s(self) -> float:
        return self.input_frames / self.input_rate_hz

    def __len__(self) -> int:
        return -(-round(self.duration_s * self.sample_rate_hz) // self.block_size_samples)

    def _chunks(self):
        for chunk in decode_chunks(self.path, self.sample_rate_hz, live_resampling=self.live_resampling):
            self.peak = max(self.peak, float(chunk.max()), -float(chunk.min()))
            for listener in self.listeners:
                listener(chunk)
            yield chunk

    def __iter__(self):
        return _blocks(self._chunks(), self.block_size_samples)
