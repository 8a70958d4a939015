"""The one-shot CNN: the log-mel image of one drum sample in, one probability per class out (softmax).

A checkpoint is one file (nanoGPT style): `state_dict`, `model_config`, `labels`, `feature_params` (how a file
becomes the model's input, including the mel filterbank so inference needs no librosa) and a training record.
A model is one network, or an ensemble of several whose probabilities are averaged (`model_config["members"]`).
Imports nothing of the project.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import WEIGHTS_DIR
from ._atomic import atomic_path
from .runtime import CheckpointError  # one error for every checkpoint file: a drum-hit model or a one-shot classifier

DEFAULT_ONESHOT_MODEL_PATH = WEIGHTS_DIR / "oneshot.pt"
"""The shipped one-shot drum sample classifier (package data)."""

CHECKPOINT_KIND = "drumscribe-oneshot"


@dataclass
class OneShotConfig:
    n_mels: int = 64  # mel bands of the input
    n_frames: int = 100  # columns of the input image (time from the sample's onset)
    n_classes: int = 10  # in the order of the checkpoint's labels
    channels: tuple = (8, 16, 32, 64)  # conv widths, one 2x2-pooled stage each
    pooled_bands: int = 4  # mel positions kept after the convolutions (time is averaged out)
    hidden: int = 128  # fully connected width
    dropout: float = 0.3
    members: int = 1  # independently trained networks whose class probabilities are averaged

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.n_classes < 2:
            raise ValueError(f"n_classes {self.n_classes} must be >= 2")
        if self.members < 1:
            raise ValueError(f"members {self.members} must be >= 1")


class OneShotCNN(nn.Module):
    """Conv stages over (mel, time); time is pooled to its mean and max, mel to a few bands; then a small MLP.

    Inputs are normalised per mel band inside the model (buffers set from the training data).
    """

    def __init__(self, config: OneShotConfig):
        super().__init__()
        self.config = config
        layers = []
        c_in = 1
        for c_out in config.channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.band_pool = nn.AdaptiveAvgPool2d((config.pooled_bands, None))
        n_flat = 2 * c_in * config.pooled_bands
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(n_flat, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.n_classes),
        )
        self.register_buffer("band_mean", torch.zeros(config.n_mels))
        self.register_buffer("band_std", torch.ones(config.n_mels))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (batch, n_mels, n_frames) log-mel. Returns logits (batch, n_classes)."""
        x = (images - self.band_mean[:, None]) / self.band_std[:, None]
        x = self.band_pool(self.features(x[:, None]))  # (batch, channels, pooled_bands, time)
        x = torch.cat((x.mean(dim=3), x.amax(dim=3)), dim=1).flatten(1)
        return self.head(x)


class OneShotEnsemble(nn.Module):
    """Several OneShotCNNs of one config, trained apart; the output's softmax is the mean of theirs.

    forward returns the log of the mean probability, so `softmax(model(x))` reads the same for one net or many.
    """

    def __init__(self, config: OneShotConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(OneShotCNN(config) for _ in range(config.members))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(images), dim=1) for m in self.members]).mean(dim=0)
        return torch.log(probs.clamp_min(1e-12))


def build_model(config: OneShotConfig) -> nn.Module:
    """A OneShotCNN, or a OneShotEnsemble of `config.members` of them."""
    return OneShotCNN(config) if config.members == 1 else OneShotEnsemble(config)


@dataclass
class OneShotCheckpoint:
    """Everything needed to classify a sample file, in one file."""

    model: nn.Module  # OneShotCNN or OneShotEnsemble (build_model)
    labels: list
    feature_params: dict  # the front end's parameters (FeatureParams fields plus the one-shot window)
    mel_basis: object = None  # (n_mels, n_fft//2+1) array
    extra: dict = field(default_factory=dict)  # training record: data, device, time, scores


def save_checkpoint(path: str | Path, ckpt: OneShotCheckpoint) -> None:
    """Write the checkpoint: weights on the CPU, no optimizer state, no torch.compile prefixes. Whole or not at
    all: an interrupted or failed save leaves the old file at `path` as it was (models._atomic)."""
    if len(ckpt.labels) != ckpt.model.config.n_classes:
        raise ValueError(f"{len(ckpt.labels)} labels for a model of {ckpt.model.config.n_classes} classes")
    state = {k.removeprefix("_orig_mod."): v.detach().cpu().clone() for k, v in ckpt.model.state_dict().items()}
    record = {
        "kind": CHECKPOINT_KIND,
        "state_dict": state,
        "model_config": asdict(ckpt.model.config),
        "labels": [str(label) for label in ckpt.labels],
        "feature_params": dict(ckpt.feature_params),
        "mel_basis": None if ckpt.mel_basis is None else torch.as_tensor(ckpt.mel_basis, dtype=torch.float32),
        "extra": ckpt.extra,
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def load_checkpoint(path: str | Path) -> OneShotCheckpoint:
    """Rebuild the model from a checkpoint file; CheckpointError (one line) for anything else."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file '{path}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"model file '{path}' is a directory, expected a .pt checkpoint file")
    if not path.is_file():  # a FIFO, say, that torch.load would wait on for ever
        raise CheckpointError(f"model file '{path}' is not a regular file, expected a .pt checkpoint file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CheckpointError(f"model file '{path}' is not a torch checkpoint ({reason})") from None
    if not isinstance(raw, dict) or raw.get("kind") != CHECKPOINT_KIND:
        if isinstance(raw, dict) and "onset_params" in raw:
            found = "a drum-hit transcription model"
        else:
            found = f"kind {raw.get('kind')!r}" if isinstance(raw, dict) else f"a {type(raw).__name__}"
        raise CheckpointError(f"model file '{path}' is not a one-shot classifier checkpoint (it holds {found}; "
                              f"'drumscribe train folders' makes one-shot classifiers)")
    try:
        model = build_model(OneShotConfig(**raw["model_config"]))
        model.load_state_dict(raw["state_dict"])
        labels = [str(label) for label in raw["labels"]]
        if len(labels) != model.config.n_classes:
            raise ValueError(f"{len(labels)} labels for {model.config.n_classes} outputs")
        basis = raw.get("mel_basis")
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CheckpointError(f"model file '{path}' is a damaged one-shot checkpoint ({reason})") from None
    model.eval()
    return OneShotCheckpoint(model=model, labels=labels, feature_params=dict(raw["feature_params"]),
                             mel_basis=None if basis is None else basis.double().numpy(),
                             extra=dict(raw.get("extra") or {}))


def join_checkpoints(paths, out: str | Path, *, extra: dict | None = None) -> OneShotCheckpoint:
    """One ensemble checkpoint of the networks of several (models trained apart, e.g. by different recipes): their
    class probabilities are averaged, as `train folders --members` does. They must share labels, front end and
    network shape; CheckpointError (one line) otherwise. Each source's training record is kept in extra["joined"]."""
    checkpoints = [load_checkpoint(p) for p in paths]
    if len(checkpoints) < 2:
        raise CheckpointError(f"joining needs at least 2 one-shot checkpoints, got {len(checkpoints)}")
    first = checkpoints[0]
    shape = {k: v for k, v in asdict(first.model.config).items() if k != "members"}
    nets = []
    for path, ckpt in zip(paths, checkpoints):
        if ckpt.labels != first.labels or ckpt.feature_params != first.feature_params:
            raise CheckpointError(f"model file '{path}' has other labels or front end than '{paths[0]}'")
        if {k: v for k, v in asdict(ckpt.model.config).items() if k != "members"} != shape:
            raise CheckpointError(f"model file '{path}' has another network shape than '{paths[0]}'")
        nets += list(ckpt.model.members) if isinstance(ckpt.model, OneShotEnsemble) else [ckpt.model]
    model = build_model(OneShotConfig(**{**shape, "members": len(nets)}))
    for slot, net in zip(model.members, nets):
        slot.load_state_dict(net.state_dict())
    joined = OneShotCheckpoint(model=model.eval(), labels=first.labels, feature_params=first.feature_params,
                               mel_basis=first.mel_basis,
                               extra={**(extra or {}), "joined": [{"file": str(p), **c.extra}
                                                                  for p, c in zip(paths, checkpoints)]})
    save_checkpoint(out, joined)
    return joined
