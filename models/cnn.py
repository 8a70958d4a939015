"""The drum-hit CNN: a log-mel window around one onset in, one probability per drum out."""
from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._atomic import atomic_path
from .runtime import (  # noqa: F401
    Checkpoint,
    CheckpointError,
    Network,
    NetworkConfig,
    OnnxNetwork,
    _count,
    _real,
    _shown,
    checked_fields,
    onnx_bytes,
    run_check,
)

# (Checkpoint, CheckpointError and the Network protocol are defined without torch, so that bundles can use them)

log = logging.getLogger(__name__)


@dataclass
class HitCNNConfig:
    n_mels: int = 64  # mel bands of the input
    frames_before: int = 3  # context frames before the onset frame
    frames_after: int = 16  # look-ahead frames after it: 80 ms at 5 ms hop
    n_classes: int = 11  # drums, in the order of the checkpoint's labels
    channels: tuple = (16, 32, 64)  # conv widths, one pooled stage each
    convs_per_stage: int = 1  # 3x3 convolutions in each stage
    hidden: int = 128  # fully connected width
    dropout: float = 0.3
    contrast_channel: bool = False  # a second input plane: each band's rise over its quietest frame in the window

    @property
    def n_frames(self) -> int:
        return self.frames_before + 1 + self.frames_after


class TorchNetwork(Network):
    """The Network protocol for the torch modules (HitCNN, HitEnsemble): numpy windows in, numpy logits out, in
    inference mode."""

    def run(self, windows, *, embedding: bool = False) -> tuple:
        with torch.inference_mode():
            if embedding:
                logits, hidden = self.forward_with_embedding(torch.from_numpy(windows))
                return logits.numpy(), hidden.numpy()
            return self(torch.from_numpy(windows)).numpy(), None

    def run_gate(self, windows):
        if not self.has_gate:
            return super().run_gate(windows)
        with torch.inference_mode():
            return self.gate_logits(torch.from_numpy(windows)).numpy()

    def for_live(self) -> Network:
        """ONNX Runtime on one thread, else TorchScript frozen (TorchScriptNetwork), else the module itself. For one
        onset at a time ONNX Runtime is the fastest runtime measured here: a forward pass after the 2.7 ms idle gap
        between live blocks (cold caches) takes 0.16-0.21 ms median against 0.38-0.50 ms for the frozen TorchScript
        module (`python bench/latency.py --runtimes`, two runs). Outputs agree with torch to ~1e-6."""
        try:
            return onnx_network(self)
        except Exception as exc:  # no onnxruntime, or an export this torch cannot do: TorchScript is correct, slower
            log.info("ONNX Runtime is not usable for the live model (%s); using TorchScript", exc)
        frozen = freeze_module(self)
        return self.eval() if frozen is None else TorchScriptNetwork(frozen, self.config)


def onnx_network(module: nn.Module) -> OnnxNetwork:
    """A torch network (logits and embedding; no gate member) in ONNX Runtime on one thread, checked against torch
    on one window (RuntimeError where they differ)."""
    cfg = module.config
    network = OnnxNetwork(onnx_bytes(module), NetworkConfig(cfg.n_mels, cfg.frames_before, cfg.frames_after,
                                                            cfg.n_classes))
    example = torch.zeros(1, cfg.n_mels, cfg.frames_before + 1 + cfg.frames_after)
    with torch.inference_mode():
        reference = module.eval()(example).numpy()
    got = network.run_numpy(example.numpy())
    if not np.allclose(got, reference, atol=1e-4):
        raise RuntimeError(f"ONNX Runtime output differs from torch by {np.abs(got - reference).max():.2g}")
    return network


def freeze_module(module: nn.Module):
    """A TorchScript-frozen copy of a torch network's forward (BatchNorm folded into the convolutions, weights as
    constants), warmed up: one onset's forward pass takes half the time of the eager module (0.21 against 0.40 ms
    measured); None where freezing fails (an unusual torch build: eager is correct, only slower). Outputs agree to
    ~1e-7."""
    cfg = module.config
    example = torch.zeros(1, cfg.n_mels, cfg.frames_before + 1 + cfg.frames_after)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, not yet replaced for this
            frozen = torch.jit.freeze(torch.jit.trace(module.eval(), example))
            with torch.inference_mode():
                for batch in (1, 1, 1, 2, 1):  # the profiling executor specialises on the first calls
                    frozen(example.repeat(batch, 1, 1))
    except Exception as exc:
        log.warning("the model could not be frozen for live inference (%s); using it as it is", exc)
        return None
    return frozen


class TorchScriptNetwork(Network):
    """A frozen TorchScript network (freeze_module): logits only, no embedding and no gate (live input uses
    neither)."""

    has_embedding = False

    def __init__(self, frozen, config):
        self.frozen, self.config = frozen, config

    def run(self, windows, *, embedding: bool = False) -> tuple:
        if embedding:
            raise ValueError("a frozen TorchScript network gives logits only, no embedding")
        with torch.inference_mode():
            return self.frozen(torch.from_numpy(windows)).numpy(), None


class HitCNN(nn.Module, TorchNetwork):
    """Conv stages over (mel, time), then a small MLP. Inputs are normalised per mel band inside the model."""

    def __init__(self, config: HitCNNConfig):
        super().__init__()
        self.config = config
        layers = []
        planes = 2 if config.contrast_channel else 1
        c_in = planes
        for c_out in config.channels:
            for _ in range(config.convs_per_stage):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d((2, 2), ceil_mode=True))
        self.features = nn.Sequential(*layers).eval()  # a probe in training mode would move batch-norm statistics
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, planes, config.n_mels, config.n_frames)).numel()
        self.features.train()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(n_flat, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.n_classes),
        )
        self.register_buffer("band_mean", torch.zeros(config.n_mels))
        self.register_buffer("band_std", torch.ones(config.n_mels))

    def _planes(self, windows: torch.Tensor) -> torch.Tensor:
        """(batch, planes, n_mels, n_frames): the normalised window, and with `contrast_channel` each band's rise
        over its quietest frame in the window (a hit over a sustained background: a guitar chord held under the
        snare is the band's floor, the snare what rises above it), in units of the band's spread."""
        x = (windows - self.band_mean[:, None]) / self.band_std[:, None]
        if not self.config.contrast_channel:
            return x[:, None]
        rise = (windows - windows.amin(dim=2, keepdim=True)) / self.band_std[:, None]
        return torch.stack((x, rise), dim=1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """windows: (batch, n_mels, n_frames) log-mel. Returns logits (batch, n_classes)."""
        return self.head(self.features(self._planes(windows)))

    def forward_with_embedding(self, windows: torch.Tensor) -> tuple:
        """(logits, embedding): the logits of forward() and the hidden layer they are read from, (batch, hidden).
        Windows that sound alike to the network lie close in the embedding (the in-song context decoding uses it)."""
        embedding = self.head[:-1](self.features(self._planes(windows)))
        return self.head[-1](embedding), embedding


class HitEnsemble(nn.Module, TorchNetwork):
    """Several HitCNNs that read windows around the same onset, answering together: each drum's probability is
    the mean of the members' (returned as its logit), the embedding the members' hidden layers side by side (so the
    in-song context decoding finds neighbours that sound alike to all of them). Built from trained checkpoints with
    `drumscribe train ensemble`; not trained as a whole. Members may see different frames around the
    onset: the ensemble's window (`config`) spans them all, and each member reads its own frames of it.

    `class_weights` (members, drums), 1 or 0: which members vote on which drum (all on all by default; a member
    trained for some drums can vote on those alone). Every drum needs at least one voter, and at least one member
    votes on every drum. A member that votes on some drums only takes part in nothing else: its hidden layer is
    not in the embedding, so the context decoding of the other drums is as without it."""

    def __init__(self, configs):
        super().__init__()
        configs = list(configs)
        shape = {(c.n_mels, c.n_classes) for c in configs}
        if len(configs) < 2 or len(shape) != 1:
            raise ValueError("an ensemble needs two or more networks with the same mel bands and classes, got "
                             + "; ".join(f"{c.n_mels} mels, {c.n_classes} classes" for c in configs))
        self.members = nn.ModuleList(HitCNN(c) for c in configs)
        # what the engine reads of it: the classes, and the window that holds every member's (each member reads
        # its own frames of it, the onset frame aligned)
        before = max(c.frames_before for c in configs)
        self.config = replace(configs[0], frames_before=before, frames_after=max(c.frames_after for c in configs))
        self.crops = [(before - c.frames_before, before - c.frames_before + c.n_frames) for c in configs]
        self.register_buffer("class_weights", torch.ones(len(configs), configs[0].n_classes))

    has_gate = True  # gate_logits: its first all-drums member

    def set_class_weights(self, weights) -> None:
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if weights.shape != self.class_weights.shape or not ((weights == 0) | (weights == 1)).all():
            raise ValueError(f"class weights must be 0 or 1, shape {tuple(self.class_weights.shape)}")
        if (weights.sum(0) == 0).any():
            raise ValueError("every drum needs at least one member voting on it")
        if not (weights == 1).all(1).any():
            raise ValueError("at least one member must vote on every drum (the embedding is theirs)")
        self.class_weights.copy_(weights)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(windows)[0]

    @property
    def gate_member(self) -> int:
        """The member the onset gate asks first (realtime.decoder.ContextParams.gate): the first that votes on
        every drum."""
        return int(torch.nonzero((self.class_weights == 1).all(1))[0, 0])

    def gate_logits(self, windows: torch.Tensor) -> torch.Tensor:
        """The gate member's logits alone, on its frames of the ensemble's windows."""
        a, b = self.crops[self.gate_member]
        return self.members[self.gate_member](windows[..., a:b])

    def forward_with_embedding(self, windows: torch.Tensor) -> tuple:
        both = [m.forward_with_embedding(windows[..., a:b]) for m, (a, b) in zip(self.members, self.crops)]
        logits = torch.stack([logits for logits, _ in both])  # the mean probability's logit, in logs throughout:
        # log(p) + log(n) and log(1 - p) + log(n) over the voting members, stable where p is near 0 or 1
        vote = torch.where(self.class_weights > 0, 0.0, -1e4)[:, None, :]
        hit = torch.logsumexp(-nn.functional.softplus(-logits) + vote, dim=0)
        miss = torch.logsumexp(-nn.functional.softplus(logits) + vote, dim=0)
        full = (self.class_weights == 1).all(1).tolist()  # fixed per model: a constant in an exported graph
        return hit - miss, torch.cat([e for (_, e), f in zip(both, full) if f], dim=1)


HALF = "float16"  # Checkpoint.extra["weights_dtype"]: the file stores the weights in 16 bits


def round_to_half(model: nn.Module) -> None:
    """Round every weight and buffer of `model` to the nearest 16-bit float, in place (kept as 32-bit floats): what
    a checkpoint stored with `extra["weights_dtype"] = "float16"` loads back as, exactly."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                if t.abs().max() > torch.finfo(torch.float16).max:
                    raise ValueError("a weight is too large to store in 16 bits")
                t.copy_(t.half().float())


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Write `ckpt`; with `ckpt.extra["weights_dtype"] == "float16"`, its floating-point weights in 16 bits (half
    the file; call round_to_half first, so that what was measured is what loads back). The file is written whole
    or not at all: an interrupted or failed save leaves the old file at `path` as it was (models._atomic)."""
    model = ckpt.model
    state = {k.removeprefix("_orig_mod."): v.detach().cpu() for k, v in model.state_dict().items()}
    if ckpt.extra.get("weights_dtype") == HALF:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    record = {
        "state_dict": state,
        "model_config": asdict(model.config),
        **({"member_configs": [asdict(m.config) for m in model.members]} if isinstance(model, HitEnsemble) else {}),
        "labels": list(ckpt.labels),
        "feature_params": ckpt.feature_params.as_dict(),
        "onset_params": ckpt.onset_params.as_dict(),
        "mel_basis": None if ckpt.mel_basis is None else torch.as_tensor(ckpt.mel_basis, dtype=torch.float32),
        "thresholds": [float(t) for t in ckpt.thresholds],
        "onset_offset_frames": float(ckpt.onset_offset_frames),
        "extra": ckpt.extra,
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_LIMITS = {"n_mels": (1, 1024), "frames_before": (0, 1000), "frames_after": (0, 1000), "n_classes": (1, 1024),
           "convs_per_stage": (1, 16), "hidden": (1, 1 << 16)}
"""Whole-number fields of HitCNNConfig and their ranges (wide: no trained model comes near them, no typo fits)."""


def _config(where: str, name: str, raw) -> HitCNNConfig:
    """A HitCNNConfig from a checkpoint's record, every field checked; CheckpointError naming the field if not."""
    known = [f.name for f in fields(HitCNNConfig)]
    if not isinstance(raw, dict) or not set(raw) <= set(known):
        raise CheckpointError(f"{where}: field '{name}' is {_shown(raw)}; expected a dict of HitCNNConfig fields "
                              f"({', '.join(known)})")
    for key, (low, high) in _LIMITS.items():
        if key in raw and not (_count(raw[key], low) and raw[key] <= high):
            raise CheckpointError(f"{where}: field '{name}.{key}' is {_shown(raw[key])}; expected a whole number "
                                  f"from {low} to {high}")
    channels = raw.get("channels", HitCNNConfig.channels)
    if (not isinstance(channels, (list, tuple)) or not channels
            or not all(_count(c) and c <= 4096 for c in channels)):
        raise CheckpointError(f"{where}: field '{name}.channels' is {_shown(channels)}; expected a list of whole "
                              "numbers from 1 to 4096, one per stage")
    if "dropout" in raw and not (_real(raw["dropout"]) and 0.0 <= raw["dropout"] < 1.0):
        raise CheckpointError(f"{where}: field '{name}.dropout' is {_shown(raw['dropout'])}; expected a number "
                              "from 0 to below 1")
    if "contrast_channel" in raw and not isinstance(raw["contrast_channel"], bool):
        raise CheckpointError(f"{where}: field '{name}.contrast_channel' is {_shown(raw['contrast_channel'])}; "
                              "expected true or false")
    return HitCNNConfig(**{**raw, "channels": tuple(channels)})


def _model(where: str, raw: dict):
    """The network of a checkpoint's record, with its weights; CheckpointError (one line) if they do not fit."""
    members = raw.get("member_configs")
    if members is not None:
        if not isinstance(members, (list, tuple)) or len(members) < 2:
            raise CheckpointError(f"{where}: field 'member_configs' is {_shown(members)}; expected a list of two "
                                  "or more HitCNNConfig dicts (an ensemble)")
        configs = [_config(where, f"member_configs[{i}]", c) for i, c in enumerate(members)]
    elif "model_config" in raw:
        configs = [_config(where, "model_config", raw["model_config"])]
    else:
        raise CheckpointError(f"{where}: field 'model_config' is missing; expected the network's HitCNNConfig")
    state = raw.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: field 'state_dict' is {_shown(type(state).__name__)}; expected the "
                              "network's weights, a dict of tensors")
    build = (lambda: HitEnsemble(configs)) if len(configs) > 1 else (lambda: HitCNN(configs[0]))
    try:
        with torch.device("meta"):  # the shapes alone, allocating nothing: the weights must be these
            shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except (ValueError, RuntimeError) as exc:  # members that cannot form an ensemble, a window pooled to nothing
        raise CheckpointError(f"{where}: the network's config cannot be built ({_one_line(exc)})") from None
    state = dict(state)
    if len(configs) > 1:  # ensembles from before class weights: every member votes on every drum
        state.setdefault("class_weights", torch.ones(len(configs), configs[0].n_classes))
    for key in sorted(set(shapes) | set(state)):
        if key not in state or key not in shapes or tuple(state[key].shape) != shapes[key]:
            found = "missing" if key not in state else f"of shape {tuple(state[key].shape)}"
            wanted = f"shape {shapes[key]}" if key in shapes else "no such weight"
            raise CheckpointError(f"{where}: weight '{key}' is {found}; the model config gives {wanted}")
        if state[key].is_floating_point() and not torch.isfinite(state[key]).all():
            raise CheckpointError(f"{where}: weight '{key}' holds NaN or infinite values; expected finite weights")
    model = build()
    model.load_state_dict(state)  # 16-bit weights (extra["weights_dtype"]) load as 32-bit floats
    return model.eval()


def load_checkpoint(path: str | Path, check=None) -> Checkpoint:
    """A checkpoint file, every field checked (models.runtime.checked_fields; `check(checkpoint)`: the caller's
    own checks, as there). Anything wrong raises CheckpointError, one line naming the file and the field."""
    path = Path(path)
    where = f"model file '{path}'"
    if not path.is_file():
        raise CheckpointError(f"{where} does not exist" if not path.exists() else
                              f"{where} is not a regular file; expected a .pt checkpoint")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{where} is not a drumscribe checkpoint ({type(exc).__name__}: "
                              f"{_one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where} is not a drumscribe checkpoint (it holds a {type(raw).__name__})")
    if raw.get("kind") == "drumscribe-oneshot":
        raise CheckpointError(f"{where} is a one-shot sample classifier (for 'classify' and 'sort'), not a "
                              "drum-hit model")
    model = _model(where, raw)
    basis = raw.get("mel_basis")
    if isinstance(basis, torch.Tensor):
        basis = basis.double().numpy()
    checkpoint = Checkpoint(model=model, **checked_fields(where, {**raw, "mel_basis": basis}, model.config.n_mels,
                                                          model.config.n_classes))
    run_check(where, check, checkpoint)
    return checkpoint
