"""The settings a checkpoint stores beside its network, as typed records: how audio becomes frames
(FeatureParams), how onsets are picked (OnsetParams) and how scores become hits (DecodingParams, with
VelocityParams); the rest of a checkpoint's `extra` is its training record (models.runtime.Checkpoint.training).
They live in models/ because a checkpoint file is their schema (models imports nothing of the project);
realtime.features and realtime.onsets use them as they are.

Each record reads like a mapping too (`params["hop_samples"]`, `{**params}`, `dict(params)`), as the stored files
hold them: a dict of the same fields.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

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


VELOCITY_FRAMES = 5
"""A hit's level: the loudest of this many frames from its onset frame (checkpoints without a fitted measure)."""


@dataclass(frozen=True)
class VelocityParams(_Record):
    """How a hit's level is measured (realtime.scorer.LoudnessMeter): the loudest ("max") or the energy ("sum") of
    its drum's band over `frames` frames from the onset frame, plus the drum's offset in dB (`offsets_db`, over the
    engine's own; fitted by `drumscribe train calibrate --write`, which also records what it fitted on)."""

    frames: int = VELOCITY_FRAMES
    reduce: str = "max"
    offsets_db: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.reduce not in ("max", "sum"):
            raise ValueError(f"velocity measure '{self.reduce}' is not max or sum")
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"velocity measure frames {self.frames!r} must be a whole number >= 1")
        if not isinstance(self.offsets_db, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for k, v in self.offsets_db.items()):
            raise ValueError("velocity offsets_db must map drum names to finite numbers of dB")

    @classmethod
    def of_stored(cls, raw) -> VelocityParams:
        """The measure of a stored `extra["velocity"]` (None or {}: the defaults); its other keys (what it was
        fitted on) are the training record's."""
        raw = raw or {}
        if not isinstance(raw, dict):
            raise TypeError(f"expected a dict of the velocity measure, got {type(raw).__name__}")
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


DECODING_KEYS = ("context", "velocity", "drum_share", "drum_mask", "second_ratio")
"""The keys of a stored checkpoint's `extra` that change what the engine does; the others are its training record
(what it was trained and tuned on, how long, its scores) and how its weights are stored (`weights_dtype`)."""


@dataclass(frozen=True)
class DecodingParams:
    """How a checkpoint's scores become hits, as stored beside its network: each drum's threshold, where the true
    onset lies before the onset frame's end, the in-song context decoding (the fields of
    realtime.decoder.ContextParams, or None), the velocity measure, the drum share and drum mask stages
    (realtime.unmix, or None; the shipped models use neither), and the rival groups' rule of each onset decided
    alone (realtime.decoder.RIVAL_GROUPS: per drum, how near its group's likeliest a second drum of the group must
    come, as a share of its probability; empty: no rule; the context's own is in `context`)."""

    thresholds: tuple
    onset_offset_frames: float = 0.0
    context: dict | None = None
    velocity: VelocityParams = field(default_factory=VelocityParams)
    drum_share: dict | None = None
    drum_mask: dict | None = None
    second_ratio: tuple = ()

    @classmethod
    def of_stored(cls, thresholds, onset_offset_frames: float, extra: dict) -> DecodingParams:
        """From a checkpoint's stored fields; TypeError or ValueError naming the part that is wrong."""
        for name in ("context", "drum_share", "drum_mask"):
            if extra.get(name) is not None and not isinstance(extra[name], dict):
                raise TypeError(f"extra '{name}' is a {type(extra[name]).__name__}; expected a dict")
        try:
            velocity = VelocityParams.of_stored(extra.get("velocity"))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"extra 'velocity': {exc}") from None
        second = extra.get("second_ratio") or ()
        if second and (not isinstance(second, (list, tuple)) or len(second) != len(thresholds) or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and 0.0 <= r <= 1.0 for r in second)):
            raise ValueError(f"extra 'second_ratio' is {second!r}; expected {len(thresholds)} shares from 0 to 1, "
                             "one per drum")
        return cls(tuple(float(t) for t in thresholds), float(onset_offset_frames), extra.get("context"), velocity,
                   extra.get("drum_share"), extra.get("drum_mask"), tuple(float(r) for r in second))
