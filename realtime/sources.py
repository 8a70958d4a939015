"""Sources: where audio blocks come from. A file source reads like a live input: mono, engine rate, fixed blocks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import DEFAULT_BLOCK_SIZE_SAMPLES, SAMPLE_RATE_HZ

MIN_INPUT_RATE_HZ = 8000
MAX_INPUT_RATE_HZ = 192000


class AudioInputError(ValueError):
    """An audio input that cannot be used; the message is one line for the user."""


def read_audio(path: str | Path, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """A file (or its first `max_seconds`) as (frames, channels) float32 and its rate, checked: one clear line
    for a bad file."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"audio file '{path}' does not exist")
    if path.is_dir():
        raise AudioInputError(f"audio file '{path}' is a directory, expected an mp3/wav/flac/ogg file")
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            if MIN_INPUT_RATE_HZ <= rate <= MAX_INPUT_RATE_HZ:
                frames = -1 if max_seconds is None else int(max_seconds * rate)
                audio = f.read(frames, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError for junk
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise AudioInputError(f"'{path}' is not a readable audio file ({reason}); expected mp3, wav, flac or ogg") from None
    if not MIN_INPUT_RATE_HZ <= rate <= MAX_INPUT_RATE_HZ:
        raise AudioInputError(
            f"'{path}' has sample rate {rate} Hz, expected {MIN_INPUT_RATE_HZ}-{MAX_INPUT_RATE_HZ} Hz"
        )
    return audio, rate


def decode_audio(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ, *, live_resampling: bool = False,
                 compact: bool = False) -> np.ndarray:
    """Decode a whole file to mono float64 at `sample_rate_hz` (soundfile reads mp3 sample-exactly).

    A file at another rate is resampled with soxr 'HQ'; with `live_resampling`, by the streaming resampler a live
    input at that rate goes through (`realtime.live.RESAMPLE_QUALITY`, float32, its filter delay included), so the
    engine sees exactly the samples `drumscribe live` would.

    With `compact`, the samples come back as float32 wherever that holds every one of them exactly: one channel at
    the engine rate, and anything resampled (soxr computes 'HQ' in float32, so its float64 output holds float32
    values: `tests/test_sources.py`). Only a file of several channels at the engine rate stays float64 (their mean).
    Half the memory of a long song, and no float64 copy of it at all: the engine converts each short stretch as it
    reads it (`ArraySource`)."""
    import soxr

    audio, rate = read_audio(path)
    if audio.shape[1] > 1:
        mono = audio.mean(axis=1, dtype=np.float64)
        if compact and rate != sample_rate_hz and not live_resampling:
            mono = mono.astype(np.float32)  # what soxr 'HQ' rounds its input to anyway
    else:
        mono = audio[:, 0] if compact else audio[:, 0].astype(np.float64)
    if rate != sample_rate_hz and len(mono):
        if live_resampling:
            from .live import RESAMPLE_QUALITY

            stream = soxr.ResampleStream(rate, sample_rate_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)
            mono = stream.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=True)
        else:
            mono = soxr.resample(np.ascontiguousarray(mono), rate, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(mono) if compact else mono.astype(np.float64, copy=False)


_CONVERT_SAMPLES = 1 << 15  # float32 audio reaches the engine as float64 in stretches of about this many samples


class ArraySource:
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
        audio, size = self.audio, self.block_size_samples
        if audio.dtype == np.float64:
            for start in range(0, len(audio), size):
                yield audio[start : start + size]
            return
        stretch = size * max(1, _CONVERT_SAMPLES // size)  # converted to float64 a stretch at a time, not per block
        for first in range(0, len(audio), stretch):
            part = audio[first : first + stretch].astype(np.float64)
            for start in range(0, len(part), size):
                yield part[start : start + size]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        pass


class FileSource(ArraySource):
    """An audio file read like a live input: decoded, mixed to mono, resampled, in fixed blocks."""

    def __init__(self, path: str | Path, *, block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES,
                 sample_rate_hz: int = SAMPLE_RATE_HZ, live_resampling: bool = False):
        self.path = Path(path)
        super().__init__(decode_audio(path, sample_rate_hz, live_resampling=live_resampling, compact=True),
                         block_size_samples=block_size_samples, sample_rate_hz=sample_rate_hz)
