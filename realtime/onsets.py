"""A causal onset detector: SuperFlux-style spectral flux, and either a peak picker that decides one frame late or
a rising-edge trigger that decides on the frame itself (the live models' choice)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .types import FrameBlock


@dataclass(frozen=True)
class OnsetParams:
    """Peak-picking settings. Low thresholds on purpose: the classifier rejects onsets that are no drum."""

    lag_frames: int = 2  # flux compares a frame with the one this many frames earlier
    max_bins: int = 3  # ... max-filtered over this many mel bands (vibrato/pitch-glide suppression)
    threshold: float = 0.07  # mean positive log-mel increase a peak must exceed
    relative_threshold: float = 1.0  # ... and this multiple of the recent mean flux
    average_frames: int = 20  # frames in that recent mean (100 ms)
    min_gap_frames: int = 3  # at least this many frames between onsets (15 ms)
    rising: bool = False  # fire on the first rising frame above the thresholds instead of waiting for the peak

    def __post_init__(self):
        if self.lag_frames < 1 or self.max_bins < 1 or self.max_bins % 2 == 0:
            raise ValueError(f"lag_frames {self.lag_frames} must be >= 1 and max_bins {self.max_bins} odd")

    def as_dict(self) -> dict:
        return asdict(self)


class OnsetDetector:
    """Streaming stage: FrameBlock in, the same FrameBlock out with the onsets decided while it came in.

    Peak picking (the default): frame k is an onset when its flux is a local maximum (>= frame k-1, > frame k+1),
    exceeds both thresholds, and lies min_gap_frames after the last onset. The decision waits for frame k+1, so
    every onset is known one frame after it ends.

    Rising edge (`rising`): frame k is an onset when its flux exceeds both thresholds, is above frame k-1's, and
    lies min_gap_frames after the last onset. The decision needs no later frame, and fires on the way up to the
    peak: a few milliseconds earlier, which is what a live note needs.
    """

    def __init__(self, params: OnsetParams = OnsetParams(), n_mels: int = 64):
        self.params = params
        self.n_mels = n_mels
        self.latency_samples = 0  # counted in frames: see latency_frames
        self.latency_frames = 0 if params.rising else 1
        # streaming state
        self.history = np.zeros((0, n_mels))
        self.flux = np.zeros(0)
        self.frames_seen = 0
        self.last_onset = -(10**9)
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros((self.params.lag_frames, self.n_mels))  # the last lag_frames frames
        self.flux = np.zeros(self.params.average_frames + 2)  # recent flux values, newest last
        self.frames_seen = 0
        self.last_onset = -(10**9)

    def process(self, frames: FrameBlock | None) -> FrameBlock | None:
        if frames is None:
            return None
        p = self.params
        mel = frames.mel
        n = len(mel)
        stacked = np.concatenate((self.history, mel))
        reference = stacked[:n]  # the frame lag_frames before each new one
        if p.max_bins > 1:
            pad = p.max_bins // 2
            padded = np.concatenate((reference[:, :1].repeat(pad, 1), reference, reference[:, -1:].repeat(pad, 1)), axis=1)
            reference = padded[:, : self.n_mels].copy()
            for shift in range(1, p.max_bins):
                np.maximum(reference, padded[:, shift : shift + self.n_mels], out=reference)
        new_flux = np.maximum(mel - reference, 0.0).mean(axis=1)
        self.history = stacked[-p.lag_frames:]
        flux = np.concatenate((self.flux, new_flux))
        old = len(self.flux)
        base = self.frames_seen - old  # absolute frame index of flux[0]
        if p.rising:  # candidate c = i for every new frame i: rising, above the absolute threshold
            c = np.arange(old, len(flux))
            value = flux[c]
            candidates = c[(value > p.threshold) & (value > flux[c - 1])]
        else:  # candidate c = i - 1 for every new frame i: a local maximum above the absolute threshold
            c = np.arange(old - 1, len(flux) - 1)
            value = flux[c]
            candidates = c[(value > p.threshold) & (value >= flux[c - 1]) & (value > flux[c + 1])]
        onsets = []
        if len(candidates):
            for c in candidates:
                recent = flux[c - p.average_frames : c].mean()
                frame = base + int(c)
                if flux[c] > p.relative_threshold * recent and frame - self.last_onset >= p.min_gap_frames:
                    onsets.append(frame)
                    self.last_onset = frame
        self.flux = flux[-(p.average_frames + 2):]
        self.frames_seen += n
        return FrameBlock(frames.start_frame, mel, frames.onsets + tuple(onsets)) if onsets else frames
