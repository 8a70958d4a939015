"""The small frozen records that cross stage boundaries."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FrameBlock:
    """Spectrogram frames start_frame, start_frame + 1, ... and the onsets found among frames so far.

    `mel` has shape (n_frames, n_mels); `onsets` lists absolute frame indices of onsets that the onset
    detector decided while these frames came in (an onset may lie a frame or two before start_frame).
    `drum_share` (realtime.unmix.DrumShareStage) lists (first frame, last frame its measure needed, drum power,
    power) of stretches of the stream whose drum share became known while these frames came in.
    """

    start_frame: int
    mel: np.ndarray
    onsets: tuple = ()
    drum_share: tuple = ()

    def __post_init__(self):
        if self.mel.ndim != 2:
            raise ValueError(f"FrameBlock.mel must be 2-D (frames, mels), got shape {self.mel.shape}")
        if self.start_frame < 0:
            raise ValueError(f"FrameBlock.start_frame must be >= 0, got {self.start_frame}")


@dataclass(frozen=True)
class DrumHit:
    """One drum struck once: what, when, how hard, how sure."""

    onset_s: float
    drum: str
    velocity: int
    confidence: float
    emitted_s: float = field(default=float("nan"), compare=False)

    def __post_init__(self):
        if not 1 <= self.velocity <= 127:
            raise ValueError(f"DrumHit.velocity {self.velocity} is not in 1-127")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"DrumHit.confidence {self.confidence} is not in 0-1")
