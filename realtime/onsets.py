"""A causal onset detector: SuperFlux-style spectral flux, and either a peak picker that decides one frame late or
a rising-edge trigger that decides on the frame itself (the live models' choice)."""
from __future__ import annotations

import numpy as np

from drumscribe.models.params import OnsetParams  # noqa: F401  (the checkpoint's schema: models/)

from .types import FrameBlock


class OnsetDetector:
    """Streaming stage: FrameBlock in, the same FrameBlock out with the onsets decided while it came in.

    Peak picking (the default): frame k is an onset when its flux is a local maximum (>= frame k-1, > frame k+1),
    exceeds both thresholds, and lies min_gap_frames after the last onset. The decision waits for frame k+1, so
    every onset is known one frame after it ends.

    Rising edge (`rising`): frame k is an onset when its flux exceeds both thresholds, is above frame k-1's, and
    lies min_gap_frames after the last onset. The decision needs no later frame, and fires on the way up to the
    peak: a few milliseconds earlier, which is what a live note needs.

    Band flux (`band_from_mel` > 0): the same rule runs on a second flux, the mean over the bands from
    band_from_mel up, with band_threshold; a frame that either flux picks is an onset. A soft hi-hat barely moves
    the flux averaged over every band, but it is most of what changes up there.
    """

    def __init__(self, params: OnsetParams = OnsetParams(), n_mels: int = 64):
        if params.band_from_mel >= n_mels:
            raise ValueError(f"band_from_mel {params.band_from_mel} must be below the {n_mels} mel bands")
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
        # recent flux values, newest last: one column, or two with the band flux
        self.flux = np.zeros((self.params.average_frames + 2, 2 if self.params.band_from_mel else 1))
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
            padded = np.concatenate((reference[:, :1].repeat(pad, 1), reference, reference[:, -1:].repeat(pad, 1)),
                                    axis=1)
            reference = padded[:, : self.n_mels].copy()
            for shift in range(1, p.max_bins):
                np.maximum(reference, padded[:, shift : shift + self.n_mels], out=reference)
        rise = np.maximum(mel - reference, 0.0)
        new_flux = rise.mean(axis=1, keepdims=True)
        if p.band_from_mel:
            new_flux = np.concatenate((new_flux, rise[:, p.band_from_mel :].mean(axis=1, keepdims=True)), axis=1)
        self.history = stacked[-p.lag_frames:]
        flux = np.concatenate((self.flux, new_flux))
        old = len(self.flux)
        base = self.frames_seen - old  # absolute frame index of flux[0]
        picked = set()
        for col, threshold in enumerate((p.threshold, p.band_threshold)[: flux.shape[1]]):
            f = flux[:, col]
            if p.rising:  # candidate c = i for every new frame i: rising, above the absolute threshold
                c = np.arange(old, len(f))
                value = f[c]
                candidates = c[(value > threshold) & (value > f[c - 1])]
            else:  # candidate c = i - 1 for every new frame i: a local maximum above the absolute threshold
                c = np.arange(old - 1, len(f) - 1)
                value = f[c]
                candidates = c[(value > threshold) & (value >= f[c - 1]) & (value > f[c + 1])]
            picked.update(int(c) for c in candidates
                          if f[c] > p.relative_threshold * f[c - p.average_frames : c].mean())
        onsets = []
        for c in sorted(picked):
            frame = base + c
            if frame - self.last_onset >= p.min_gap_frames:
                onsets.append(frame)
                self.last_onset = frame
        self.flux = flux[-(p.average_frames + 2):]
        self.frames_seen += n
        return FrameBlock(frames.start_frame, mel, frames.onsets + tuple(onsets)) if onsets else frames
