"""The settings a checkpoint stores beside its network, as typed records: how audio becomes frames (FeatureParams)
and how onsets are picked (OnsetParams). They live in models/ because a checkpoint file is their schema (models
imports nothing of the project); realtime.features and realtime.onsets use them as they are.

Each record reads like a mapping too (`params["hop_samples"]`, `{**params}`, `dict(params)`), as the stored files
hold them: a dict of the same fields.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

SAMPLE_RATE_HZ = 48000
"""The rate every stage runs at (drumscribe.realtime.SAMPLE_RATE_HZ, the same number): FeatureParams' default."""


class _Record:
    """A frozen dataclass that also reads as a mapping of its fields."""

    def as_dict(self) -> dict:
        return asdict(self)

    def keys(self):
        return [f.name for f in fields(self)]

    def __getitem__(self, name: str):
        if name not in self.keys():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(fields(self))

    def get(self, name: str, default=None):
        return getattr(self, name) if name in self.keys() else default

    @classmethod
    def from_dict(cls, raw) -> _Record:
        """The record of a stored dict (or a record of this type, as it is); fields the dict lacks take their
        defaults (files from before they existed). TypeError for a field this record does not have, ValueError for
        a value out of range (from __post_init__)."""
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, dict):
            raise TypeError(f"expected a dict of {cls.__name__} fields, got {type(raw).__name__}")
        unknown = sorted(set(raw) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {unknown[0]!r}")
        return cls(**raw)


@dataclass(frozen=True)
class FeatureParams(_Record):
    """How audio becomes frames. Stored in every checkpoint so a model always sees what it was trained on."""

    sample_rate_hz: int = SAMPLE_RATE_HZ
    n_fft: int = 1024  # window length in samples (21.3 ms)
    hop_samples: int = 240  # 5 ms between frames
    n_mels: int = 64
    fmin_hz: float = 30.0
    fmax_hz: float = 17000.0
    log_gain: float = 1e9  # features are log10(1 + log_gain * mel_power): the floor lies near -90 dB

    def __post_init__(self):
        if self.hop_samples <= 0 or self.n_fft < self.hop_samples:
            raise ValueError(f"hop_samples {self.hop_samples} must be in 1..n_fft ({self.n_fft})")

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop_samples

    def frame_end_sample(self, frame: int) -> int:
        """The stream position (in samples) at which `frame` is complete: its last sample plus one."""
        return (frame + 1) * self.hop_samples


@dataclass(frozen=True)
class OnsetParams(_Record):
    """Peak-picking settings. Low thresholds on purpose: the classifier rejects onsets that are no drum."""

    lag_frames: int = 2  # flux compares a frame with the one this many frames earlier
    max_bins: int = 3  # ... max-filtered over this many mel bands (vibrato/pitch-glide suppression)
    threshold: float = 0.07  # mean positive log-mel increase a peak must exceed
    relative_threshold: float = 1.0  # ... and this multiple of the recent mean flux
    average_frames: int = 20  # frames in that recent mean (100 ms)
    min_gap_frames: int = 3  # at least this many frames between onsets (15 ms)
    rising: bool = False  # fire on the first rising frame above the thresholds instead of waiting for the peak
    band_from_mel: int = 0  # > 0: a second flux over the mel bands from this one up (the hi-hats' band) also fires
    band_threshold: float = 0.03  # ... when it exceeds this (and relative_threshold times its own recent mean)

    def __post_init__(self):
        if self.lag_frames < 1 or self.max_bins < 1 or self.max_bins % 2 == 0:
            raise ValueError(f"lag_frames {self.lag_frames} must be >= 1 and max_bins {self.max_bins} odd")
        if self.band_from_mel < 0:
            raise ValueError(f"band_from_mel {self.band_from_mel} must be >= 0 (0: no band flux)")
