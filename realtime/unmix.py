"""Streaming stage: the drum mask (models.unmix) on the log-mel frames the hit classifier reads.

Put between the onset detector and the classifier, it hands the classifier each frame with the power that is not
drums (the band of a song) taken out, and passes the onsets through unchanged: they were found on the song as it
is. Frames come out in groups of `group_frames`, fixed by frame index, each once the mask's reach of frames after
the group has arrived: (group + reach) frames of delay. Files take groups of 256 frames; live input takes one,
and still waits the reach (0.16 s with the default mask), which a live note cannot afford.
"""
from __future__ import annotations

import numpy as np

from .types import FrameBlock


def mask_to_extra(path) -> dict:
    """A drum mask checkpoint (models.unmix) as plain lists, to ride in a hit checkpoint's extra["drum_mask"] (and
    its ONNX bundle's JSON), so that a network trained behind the mask always runs behind it."""
    import hashlib
    from pathlib import Path

    from drumscribe.models.unmix import load_mask, numpy_weights

    model, info = load_mask(path)
    return {"source": Path(path).name, "source_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "info": info, "layers": [{"weight": w.tolist(), "bias": b.tolist(), "dilation": int(d)}
                                     for w, b, d in numpy_weights(model)]}


def weights_from_extra(spec: dict) -> list:
    """mask_to_extra's lists back to (weight (taps, in, out), bias, dilation) float32 arrays."""
    return [(np.asarray(layer["weight"], np.float32), np.asarray(layer["bias"], np.float32), int(layer["dilation"]))
            for layer in spec["layers"]]


def reach_frames(weights: list) -> int:
    """Frames each side of a frame that its mask depends on."""
    return sum((w.shape[0] - 1) // 2 * d for w, _, d in weights)


def share_to_extra(path, every: int = 4, group_frames: int = 256) -> dict:
    """A drum mask checkpoint as a hit checkpoint's extra["drum_share"] (DrumShareStage's settings with it)."""
    return {"mask": mask_to_extra(path), "every": every, "group_frames": group_frames}


def drum_mask(weights: list, mel: np.ndarray) -> np.ndarray:
    """(frames + 2 * reach, mels) log-mel -> the share of each inner frame's and band's power that is drums."""
    x = mel.astype(np.float32) * np.float32(0.25)
    for i, (w, b, d) in enumerate(weights):
        n = len(x) - (w.shape[0] - 1) * d
        y = b + x[:n] @ w[0]
        for j in range(1, w.shape[0]):
            y += x[j * d : j * d + n] @ w[j]
        x = np.maximum(y, 0.0) if i < len(weights) - 1 else y
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def mask_frames(weights: list, mel: np.ndarray) -> np.ndarray:
    """(frames + 2 * reach, mels) log-mel -> the masked log-mel of the inner frames (models.unmix.DrumMask.apply)."""
    reach = reach_frames(weights)
    inner = mel[reach : len(mel) - reach]
    return np.log10(1.0 + drum_mask(weights, mel) * (np.power(10.0, inner) - 1.0))


class DrumMaskStage:
    def __init__(self, weights: list, *, group_frames: int = 256, hop_samples: int = 240):
        """`weights`: [(w (taps, in, out) float32, b (out,) float32, dilation)] from models.unmix.numpy_weights."""
        if group_frames < 1:
            raise ValueError(f"group_frames {group_frames} must be >= 1")
        self.weights = weights
        self.reach = reach_frames(weights)
        self.group = group_frames
        self.n_mels = weights[0][0].shape[1]
        self.latency_samples = (self.group + self.reach) * hop_samples
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros((self.reach, self.n_mels))  # silence before the stream; buffer[0] is frame -reach
        self.buffer_start = -self.reach
        self.done = 0  # frames masked so far
        self.onsets = []
        self.shares = []  # DrumShareStage's records, passed on

    def process(self, frames: FrameBlock | None) -> FrameBlock | None:
        if frames is None:
            return None
        self.buffer = np.concatenate((self.buffer, frames.mel))
        self.onsets += list(frames.onsets)
        self.shares += list(frames.drum_share)
        have = self.buffer_start + len(self.buffer)  # frames received
        ready = (have - self.reach) // self.group * self.group  # masked frames that can be complete now
        if ready <= self.done:
            return None
        out = []
        for g in range(self.done, ready, self.group):
            lo = g - self.reach - self.buffer_start
            out.append(mask_frames(self.weights, self.buffer[lo : lo + self.group + 2 * self.reach]))
        block = FrameBlock(self.done, np.concatenate(out), tuple(self.onsets), tuple(self.shares))
        self.done, self.onsets, self.shares = ready, [], []
        keep = self.done - self.reach - self.buffer_start
        self.buffer, self.buffer_start = self.buffer[keep:], self.buffer_start + keep
        return block


class DrumShareStage:
    """Streaming stage: how much of a song's power is drums, for the hit classifier to choose its thresholds by
    (ContextParams.stem_thresholds): a drum stem and a full mix want different ones.

    Frames and onsets pass through at once, unchanged. Every `every`-th group of `group_frames` frames (fixed by
    frame index) goes through the drum mask; its (first frame, last frame the mask needed, drum power, power)
    rides on the block in which that last frame arrives. A sample of the song is enough for a share, and costs
    1/`every` of masking it all.
    """

    def __init__(self, weights: list, *, every: int = 4, group_frames: int = 256):
        if every < 1 or group_frames < 1:
            raise ValueError(f"every {every} and group_frames {group_frames} must be >= 1")
        self.weights = weights
        self.reach = reach_frames(weights)
        self.every = every
        self.group = group_frames
        self.n_mels = weights[0][0].shape[1]
        self.latency_samples = 0
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros((self.reach, self.n_mels))  # silence before the stream; buffer[0] is frame -reach
        self.buffer_start = -self.reach
        self.next_group = 0  # first frame of the next group to measure

    def process(self, frames: FrameBlock | None) -> FrameBlock | None:
        if frames is None:
            return None
        self.buffer = np.concatenate((self.buffer, frames.mel))
        have = self.buffer_start + len(self.buffer)  # frames received
        records = []
        while self.next_group + self.group + self.reach <= have:
            g = self.next_group
            lo = g - self.reach - self.buffer_start
            mel = self.buffer[lo : lo + self.group + 2 * self.reach]
            power = np.power(10.0, mel[self.reach : self.reach + self.group]) - 1.0
            drums = drum_mask(self.weights, mel) * power
            records.append((g, g + self.group - 1 + self.reach, float(drums.sum()), float(power.sum())))
            self.next_group += self.every * self.group
        keep = max(0, min(self.next_group - self.reach, have) - self.buffer_start)
        self.buffer, self.buffer_start = self.buffer[keep:], self.buffer_start + keep
        return FrameBlock(frames.start_frame, frames.mel, frames.onsets, frames.drum_share + tuple(records))
