"""The drum mask: a log-mel spectrogram of a song in, for every frame and band the share of its power that is drums.

A band under the drums (bass, chords, a guitar wall) keeps its notes for tens to hundreds of milliseconds where a
drum is a burst and a decay; dilated convolutions over time, with the 64 bands as channels, see about 0.3 s of that
around each frame. Trained on renders whose drums and band are known apart (offline.unmix), it gives the hit
classifier a song's drums as they would sound alone, which is what it hears best (realtime.unmix.DrumMaskStage).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._atomic import atomic_path


@dataclass
class DrumMaskConfig:
    n_mels: int = 64
    channels: int = 96  # width of every hidden layer
    dilations: tuple = (1, 2, 4, 8, 16)  # one kernel-3 convolution per entry, this far apart in frames

    @property
    def reach_frames(self) -> int:
        """Frames each side of a frame that its mask depends on."""
        return sum(self.dilations)


class DrumMask(nn.Module):
    def __init__(self, config: DrumMaskConfig | None = None):
        super().__init__()
        self.config = config = config or DrumMaskConfig()
        layers, c_in = [], config.n_mels
        for d in config.dilations:
            layers += [nn.Conv1d(c_in, config.channels, 3, dilation=d), nn.ReLU()]
            c_in = config.channels
        layers.append(nn.Conv1d(c_in, config.n_mels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames + 2 * reach, mels) log-mel -> (batch, frames, mels) mask logits: no padding inside, the
        caller gives every output frame its full reach (zeros, silence, before and after a stream)."""
        return self.net(mel.transpose(1, 2) * 0.25).transpose(1, 2)

    def apply(self, mel: torch.Tensor) -> torch.Tensor:
        """The masked log-mel of the inner frames (those with their full reach)."""
        r = self.config.reach_frames
        mask = torch.sigmoid(self(mel))
        inner = mel[:, r : mel.shape[1] - r]
        power = torch.pow(10.0, inner) - 1.0
        return torch.log10(1.0 + mask * power)


def save_mask(path: str | Path, model: DrumMask, info: dict) -> None:
    """Write the mask's checkpoint, whole or not at all (models._atomic)."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "config": asdict(model.config), "info": info}, tmp)


def load_mask(path: str | Path) -> tuple[DrumMask, dict]:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    config = DrumMaskConfig(**{**raw["config"], "dilations": tuple(raw["config"]["dilations"])})
    model = DrumMask(config)
    model.load_state_dict(raw["state_dict"])
    return model.eval(), dict(raw.get("info", {}))


def numpy_weights(model: DrumMask) -> list:
    """[(weight (taps, in, out), bias (out,), dilation)], float32, for realtime.unmix, which masks without torch."""
    convs = [m for m in model.net if isinstance(m, nn.Conv1d)]
    return [(np.ascontiguousarray(c.weight.detach().numpy().transpose(2, 1, 0), dtype=np.float32),
             c.bias.detach().numpy().astype(np.float32), c.dilation[0]) for c in convs]
