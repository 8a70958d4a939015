"""Train the drum-hit CNN on rendered windows (offline/dataset.py), on CUDA when present, else the CPU.

Reads top to bottom: the config, small helpers, then one loop. Usage:
    drumscribe train render --out data/train.npz --clips-per-kit 100
    drumscribe train render --out data/val.npz --held-out --clips-per-kit 50 --seed 7
    drumscribe train --data data/train.npz --val data/val.npz -o runs/hitcnn.pt

The checkpoint (-o; by default a new runs/hitcnn-<date>-<time>.pt, never the shipped model) is written after every
epoch, each time whole or not at all (models.cnn.save_checkpoint): an interrupted run leaves the last finished
epoch's. The data, the --config file and the output are checked before any work: a problem is one line and exit 1.

On several processes (DistributedDataParallel), one per GPU or a few on the CPU, under torchrun:
    torchrun --standalone --nproc_per_node 2 -m drumscribe train fit --data data/train.npz -o runs/hitcnn.pt
Each process trains on its own shard of the windows (DistributedSampler) with batch-size / processes windows a step,
so --batch-size, --lr and the steps per epoch mean what they mean on one process; gradients are averaged over the
processes (gloo on the CPU, nccl on GPUs: process k takes cuda:k of its machine). Process 0 alone validates, logs
and writes the checkpoint. Without torchrun (or with one process) the run is the single-process one.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
import zipfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str = "data/train.npz"  # windows rendered from the training kits
    val: str = "data/val.npz"  # windows rendered from the held-out kits
    threshold_kit: str = "TimGM6mb"  # held-out kit whose windows tune the per-class thresholds
    out: str = ""  # checkpoint to write; "": a new runs/hitcnn-<date>-<time>.pt (default_out)
    frames_before: int = 3  # model context before the onset frame
    frames_after: int = 16  # model look-ahead (80 ms at 5 ms hop); the live model uses less
    channels: tuple = (16, 32, 64)
    hidden: int = 128
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3  # peak learning rate, cosine decay after a short warm-up
    weight_decay: float = 1e-4
    jitter_frames: int = 1  # random shift of the window, as the onset detector's own jitter
    level_jitter: float = 0.4  # random offset of log-mel features (about +-4 dB)
    mix_rate: float = 0.0  # share of training windows that get another window of the batch added (its drums too)
    mix_db: tuple = (-12, 0)  # ... at a level drawn from this range of dB
    lowpass_rate: float = 0.0  # share of training windows with everything above a cut-off removed (band-limited audio)
    lowpass_hz: tuple = (7000, 16000)  # ... the cut-off drawn log-uniformly from this range of Hz
    eq_rate: float = 0.0  # share of training windows heard through a random EQ (a tilt and one bell)
    eq_db: float = 9.0  # ... the bell's gain drawn from +-this many dB, the tilt from +-half of it end to end
    contrast_channel: bool = False  # the network also sees each band's rise over its quietest frame (models.cnn)
    shift_rate: float = 0.0  # share of training windows whose bands above shift_from_hz move up or down (brighter or
    shift_bins: int = 3  # ... darker hats and cymbals, as another kit's): by 1 to this many mel bands
    shift_from_hz: float = 1000.0  # ... the bands below stay (the mel scale is linear there: a shift is no retuning)
    # > 0: focal loss, each label's BCE weighted by (1 - p_true) ** gamma (hard labels count more)
    focal_gamma: float = 0.0
    seed: int = 0
    device: str = "auto"  # auto, cpu or cuda
    init: str = ""  # start from this checkpoint's weights (fine-tuning) instead of from scratch
    threads: int = 2  # CPU threads for torch


class TrainError(ValueError):
    """Training input that cannot be used (data, --config, output path); the message is one line for the user."""


def default_out(now: float | None = None) -> Path:
    """A new checkpoint path under runs/ (never the shipped model's): runs/hitcnn-<date>-<time>[-N].pt."""
    stem = "runs/hitcnn-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path, n = Path(stem + ".pt"), 1
    while path.exists():
        n += 1
        path = Path(f"{stem}-{n}.pt")
    return path


def get_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes torchrun started (its environment variables)."""

    rank: int = 0  # RANK: 0 validates, logs and writes the checkpoint
    local_rank: int = 0  # LOCAL_RANK: which GPU of this machine
    world_size: int = 1  # WORLD_SIZE: processes in all


def distributed_from_env(env=None) -> Distributed | None:
    """The torchrun process group this process belongs to, or None when it runs alone (no torchrun, or
    --nproc_per_node 1: the single-process run, exactly)."""
    import os

    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return Distributed(rank=int(env["RANK"]), local_rank=int(env.get("LOCAL_RANK", env["RANK"])), world_size=world)
    except (KeyError, ValueError):
        raise TrainError(f"WORLD_SIZE {env.get('WORLD_SIZE')!r}, RANK {env.get('RANK')!r}: expected whole numbers, as "
                         "torchrun sets them") from None


def init_distributed(cfg: TrainConfig, group: Distributed):
    """Join the process group (nccl on GPUs, gloo on the CPU, as --device says) and return this process's device."""
    import torch
    import torch.distributed as dist

    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cuda:
        if group.local_rank >= torch.cuda.device_count():
            raise TrainError(f"process {group.rank} wants cuda:{group.local_rank}, and this machine has "
                             f"{torch.cuda.device_count()} GPUs; start at most that many processes a machine")
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if cuda else "gloo")
    return device


def shard_order(n: int, epoch: int, cfg: TrainConfig, group: Distributed) -> np.ndarray:
    """The windows process `group.rank` trains on in `epoch`, in order: its shard of a permutation all processes
    draw alike (DistributedSampler, seeded by cfg.seed and the epoch); the shards are disjoint and cover every
    window, the last few padded with repeats so that each is equally long."""
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=group.world_size, rank=group.rank, shuffle=True,
                                 seed=cfg.seed)
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))


def load_windows(path: str, before: int, after: int):
    """Windows cropped to the model's context: x (n, mels, frames) float16, y (n, classes), meta, offset.

    `path` may name several datasets separated by commas; they are concatenated. They must share the spectrogram
    settings; their onset detectors may differ (the windows are windows either way), and the checkpoint then
    takes the last dataset's, the detector it is meant to run behind."""
    if "," in path:
        parts = [load_windows(p, before, after) for p in path.split(",")]
        offsets = {p[3] for p in parts}
        if len(offsets) != 1 or len({p[0].shape[2] for p in parts}) != 1:
            raise TrainError(f"datasets {path} store different window lengths")
        kit_base = np.cumsum([0] + [len(p[2]["kits"]) for p in parts[:-1]])
        if len({recipe(p[2])[0] for p in parts}) != 1:
            raise TrainError(f"datasets {path} were rendered with different spectrogram settings")
        if len({recipe(p[2])[1] for p in parts}) != 1:
            log.warning("datasets %s were rendered behind different onset detectors; the checkpoint takes the last "
                        "one's", path)
        masks = {str(p[2]["drum_mask"]) if "drum_mask" in p[2] else "" for p in parts}
        if len(masks) != 1:
            raise TrainError(f"datasets {path} mix windows behind a drum mask and without one (offline.dataset "
                             "--drum-mask): a network reads one or the other")
        meta = {
            **{k: parts[-1][2][k] for k in ("feature_params", "onset_params") if k in parts[-1][2]},
            "drum_mask": masks.pop(),
            "labels": parts[0][2]["labels"],
            "kits": np.concatenate([p[2]["kits"] for p in parts]),
            "kit": np.concatenate([p[2]["kit"] + b for p, b in zip(parts, kit_base)]),
            "seconds": np.concatenate([p[2]["seconds"] for p in parts]),
            "delays": np.concatenate([p[2]["delays"] for p in parts]),
        }
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), meta,
                parts[0][3])
    data = np.load(path)
    sb, sa = int(data["store_before"]), int(data["store_after"])
    if before > sb or after > sa:
        raise TrainError(f"model context {before}+{after} exceeds the stored {sb}+{sa} frames of {path}")
    # keep one spare frame each side for jitter where the store allows
    lo, hi = sb - before, sb + after + 1
    x = data["x"][:, max(0, lo - 1) : min(sb + sa + 1, hi + 1)].transpose(0, 2, 1)
    offset = 1 if lo >= 1 else 0
    return np.ascontiguousarray(x), data["y"].astype(np.float32), data, offset


def recipe(meta):
    """(FeatureParams, OnsetParams) a dataset was rendered with (datasets from before they were stored: defaults)."""
    from drumscribe.realtime.features import FeatureParams
    from drumscribe.realtime.onsets import OnsetParams

    def read(key):
        return json.loads(str(meta[key])) if key in meta else {}

    return FeatureParams(**read("feature_params")), OnsetParams(**read("onset_params"))


def get_batch(x, y, idx, cfg, offset, rng, device, train: bool, lowpass=None, shift_from=None):
    import torch

    n_frames = cfg.frames_before + 1 + cfg.frames_after
    if train and cfg.jitter_frames and offset:
        shift = rng.integers(-1, 2, size=len(idx)) * (rng.random(len(idx)) < 0.3)
    else:
        shift = np.zeros(len(idx), int)
    starts = offset + shift
    starts = np.clip(starts, 0, x.shape[2] - n_frames)
    xb = np.stack([x[i, :, s : s + n_frames] for i, s in zip(idx, starts)]).astype(np.float32)
    yb = y[idx]
    if train and cfg.mix_rate:
        xb, yb = mix_windows(xb, yb, rng, cfg.mix_rate, cfg.mix_db)
    if train and cfg.level_jitter:
        xb += rng.uniform(-cfg.level_jitter, cfg.level_jitter, size=(len(idx), 1, 1)).astype(np.float32)
        np.maximum(xb, 0.0, out=xb)
    if train and cfg.lowpass_rate and lowpass is not None:
        xb = lowpass_windows(xb, rng, cfg.lowpass_rate, lowpass)
    if train and cfg.eq_rate:
        xb = eq_windows(xb, rng, cfg.eq_rate, cfg.eq_db)
    if train and cfg.shift_rate and shift_from is not None:
        xb = shift_windows(xb, rng, cfg.shift_rate, cfg.shift_bins, shift_from)
    return torch.from_numpy(xb).to(device), torch.from_numpy(yb).to(device)


def mix_windows(xb, yb, rng, rate: float, db_range) -> tuple:
    """Two hits at one onset: a `rate` share of the windows get another window of the batch added in power
    (features are log10(1 + gain * power), so 10**x - 1 is power), that one `db_range` dB up or down, and its
    drums join the labels. A soft hi-hat under a loud snare is then a labelled hi-hat."""
    chosen = np.flatnonzero(rng.random(len(xb)) < rate)
    if not len(chosen):
        return xb, yb
    partner = rng.integers(0, len(xb), len(chosen))
    gain = 10.0 ** (rng.uniform(*db_range, len(chosen)) / 10.0)
    xb, yb = xb.copy(), yb.copy()
    added = 10.0 ** xb[partner] - 1.0
    xb[chosen] = np.log10(10.0 ** xb[chosen] + gain[:, None, None] * added)
    yb[chosen] = np.maximum(yb[chosen], yb[partner])
    return xb, yb


def lowpass_weights(basis: np.ndarray, sample_rate_hz: float, cutoffs_hz) -> np.ndarray:
    """(cut-offs, mel bands): the share of each band's filter weight at or below each cut-off, which is the share
    of its power a brick-wall low-pass there leaves (for a flat spectrum across the band)."""
    freqs = np.linspace(0.0, sample_rate_hz / 2, basis.shape[1])
    below = (freqs[None, :] <= np.asarray(cutoffs_hz, np.float64)[:, None]).astype(np.float64)
    return below @ basis.T / np.maximum(basis.sum(axis=1), 1e-12)


def lowpass_windows(xb, rng, rate: float, weights: np.ndarray) -> np.ndarray:
    """Band-limited audio: a `rate` share of the windows lose their power above a cut-off, one row of `weights`
    (lowpass_weights) drawn per window. Audio once sampled at 22.05 kHz, or through an mp3 encoder's low-pass,
    has nothing above 10-16 kHz, where a hi-hat or a ride has most of what sets it apart."""
    chosen = np.flatnonzero(rng.random(len(xb)) < rate)
    if not len(chosen):
        return xb
    xb = xb.copy()
    kept = weights[rng.integers(0, len(weights), len(chosen))].astype(np.float32)
    xb[chosen] = np.log10(1.0 + (10.0 ** xb[chosen] - 1.0) * kept[:, :, None])
    return xb


def eq_curves(rng, n: int, n_bands: int, max_db: float) -> np.ndarray:
    """(n, n_bands) random EQ gains in dB: a tilt of up to +-max_db / 2 from the lowest band to the highest, plus
    one bell of up to +-max_db at a random band, 2-12 bands wide (mel bands are about even in log frequency)."""
    bands = np.arange(n_bands, dtype=np.float64)
    tilt = rng.uniform(-max_db / 2, max_db / 2, (n, 1)) * (bands / max(n_bands - 1, 1) - 0.5)
    centre = rng.uniform(0, n_bands - 1, (n, 1))
    width = rng.uniform(2, 12, (n, 1))
    bell = rng.uniform(-max_db, max_db, (n, 1)) * np.exp(-0.5 * ((bands - centre) / width) ** 2)
    return tilt + bell


def eq_windows(xb, rng, rate: float, max_db: float) -> np.ndarray:
    """Other microphones, rooms and kits: a `rate` share of the windows have each mel band's power scaled by a
    random smooth EQ curve (eq_curves), applied in power as a real equaliser would (features are log10(1 + gain *
    power)). The studio augmentation of the renders colours each clip once; this draws a new colour every time a
    window is seen."""
    chosen = np.flatnonzero(rng.random(len(xb)) < rate)
    if not len(chosen):
        return xb
    xb = xb.copy()
    gain = (10.0 ** (eq_curves(rng, len(chosen), xb.shape[1], max_db) / 10.0)).astype(np.float32)
    xb[chosen] = np.log10(1.0 + (10.0 ** xb[chosen] - 1.0) * gain[:, :, None])
    return xb


def focal_bce(logits, targets, gamma: float):
    """Binary cross-entropy per label weighted by (1 - p)^gamma, p the probability given to the true answer
    (Lin et al., focal loss), averaged: the labels the network already gets right count less, the quiet ghost note
    or masked hi-hat it misses counts more. gamma 0 is plain BCE."""
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if not gamma:
        return bce.mean()
    p = torch.sigmoid(logits)
    p_true = p * targets + (1 - p) * (1 - targets)
    return ((1 - p_true) ** gamma * bce).mean()


def shift_windows(xb, rng, rate: float, max_bins: int, first_band: int) -> np.ndarray:
    """Other kits' hats and cymbals sit higher or lower: a `rate` share of the windows have their bands from
    `first_band` up moved by 1 to `max_bins` mel bands, up or down (above 1 kHz a mel band is a nearly constant
    ratio in frequency, so this is a pitch shift of everything there), the bands left empty at the ends repeating
    their neighbour. Labels do not change."""
    chosen = np.flatnonzero(rng.random(len(xb)) < rate)
    if not len(chosen) or max_bins < 1:
        return xb
    xb = xb.copy()
    n = xb.shape[1]
    for i, shift in zip(chosen, rng.integers(1, max_bins + 1, len(chosen)) * rng.choice((-1, 1), len(chosen))):
        source = np.clip(np.arange(first_band, n) - shift, first_band, n - 1)
        xb[i, first_band:] = xb[i, source]
    return xb


def predict(model, x, cfg, offset, device, batch_size=2048):
    import torch

    model.eval()
    out = []
    n_frames = cfg.frames_before + 1 + cfg.frames_after
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[i : i + batch_size, :, offset : offset + n_frames].astype(np.float32)).to(device)
            out.append(torch.sigmoid(model(xb)).cpu().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros((0, model.config.n_classes))


def f_scores(probs, y, thresholds):
    pred = probs >= thresholds
    tp = (pred & (y > 0)).sum(0)
    fp = (pred & (y == 0)).sum(0)
    fn = (~pred & (y > 0)).sum(0)
    return tp, fp, fn, 2 * tp / np.maximum(2 * tp + fp + fn, 1)


def tune_thresholds(probs, y):
    """Per-class threshold maximising F on the given windows (0.5 where a class never occurs)."""
    grid = np.linspace(0.1, 0.9, 33)
    best = np.full(y.shape[1], 0.5)
    for c in range(y.shape[1]):
        if y[:, c].sum() < 5:
            continue
        fs = [f_scores(probs[:, c : c + 1], y[:, c : c + 1], np.array([t]))[3][0] for t in grid]
        best[c] = grid[int(np.argmax(fs))]
    return best


def load_init(model, init) -> None:
    """Start `model` from the weights of `init`, a HitCNN of the same layers, so that it starts out answering as
    `init` did. `model` may have a longer window after the onset: the first fully connected layer keeps its
    weights for the time positions both windows have, the later ones start at zero (the convolutions at the old
    window's end now see frames that were padding, so the answers are close, not equal). It may be wider (more
    `--channels` in a stage, a larger `--hidden`): the old units keep their weights, the new ones start random
    but with zero weight into every old unit and into the output, so they take part only as training gives them
    weight (function-preserving widening, as Net2Net; here by zeros, not copies)."""
    import torch

    from drumscribe.models.cnn import HitEnsemble

    if isinstance(init, HitEnsemble):
        raise ValueError(f"--init: that checkpoint is an ensemble of {len(init.members)} networks (python -m "
                         "drumscribe.offline.ensemble); start from one of its members' checkpoints")
    if (model.config.frames_before != init.config.frames_before
            or model.config.frames_after < init.config.frames_after):
        raise ValueError(f"--init: a model of {init.config.frames_before} frames before and {init.config.frames_after} "
                         f"after the onset cannot start one of {model.config.frames_before} and "
                         f"{model.config.frames_after} (same before, same or more after)")
    if (len(model.config.channels) != len(init.config.channels)
            or model.config.convs_per_stage != init.config.convs_per_stage
            or any(a < b for a, b in zip(model.config.channels, init.config.channels))
            or model.config.hidden < init.config.hidden):
        raise ValueError(f"--init: a model of channels {list(init.config.channels)}, hidden {init.config.hidden} "
                         f"cannot start one of channels {list(model.config.channels)}, hidden "
                         f"{model.config.hidden} (as many stages, each as wide or wider)")
    state, own = init.state_dict(), model.state_dict()
    with torch.no_grad():
        c_old, m, t_old = _pooled_shape(init)
        c_new, _, t_new = _pooled_shape(model)
        flat = next(k for k, v in own.items() if k.startswith("head.") and v.dim() == 2)  # the first linear layer
        for key, value in state.items():
            if key not in own:
                raise ValueError(f"--init: layer '{key}' is not in this model")
            mine = own[key].clone()
            if mine.shape == value.shape:
                mine = value.clone()
            elif key == flat:  # (hidden, channels * mels * time), flattened channel-major
                grown = torch.zeros(value.shape[0], c_new, m, t_new)
                grown[:, :c_old, :, :t_old] = value.view(value.shape[0], c_old, m, t_old)
                mine[: value.shape[0]] = grown.reshape(value.shape[0], -1)
            elif value.dim() in (2, 4):  # a later linear layer or a convolution: new inputs into old units at zero
                mine[: value.shape[0]] = 0.0
                mine[: value.shape[0], : value.shape[1]] = value
            elif value.dim() == 1:  # biases and batch-norm statistics of a wider layer
                mine[: value.shape[0]] = value
            else:
                raise ValueError(f"--init: layer '{key}' has shape {tuple(value.shape)}, "
                                 f"this model {tuple(own[key].shape)}")
            own[key] = mine
    model.load_state_dict(own)


def _pooled_shape(net) -> tuple:
    """(channels, mel cells, time cells) after a HitCNN's conv stages, found without touching its batch-norm
    statistics (a forward pass in training mode would move them)."""
    import torch

    training = net.training
    net.eval()
    try:
        probe = torch.zeros(1, net.features[0].in_channels, net.config.n_mels, net.config.n_frames)
        return tuple(net.features(probe).shape[1:])
    finally:
        net.train(training)


def get_lr(step, total, cfg):
    warmup = max(1, total // 50)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train(cfg: TrainConfig) -> dict:
    """Train, write cfg.out after each epoch; the history of epochs. Under torchrun, on every process (see the
    module's docstring); process 0 returns the history, the others an empty list."""
    group = distributed_from_env()
    if group is None:
        return _train(cfg, None)
    if cfg.batch_size % group.world_size:
        raise TrainError(f"--batch-size {cfg.batch_size} does not split evenly over {group.world_size} processes; "
                         f"give a multiple of {group.world_size}")
    import torch.distributed as dist

    device = init_distributed(cfg, group)
    try:
        history = _train(cfg, group, device)
        dist.barrier()  # the others wait for process 0's last checkpoint
        return history
    finally:
        dist.destroy_process_group()


def _train(cfg: TrainConfig, group: Distributed | None, device=None) -> dict:
    import torch

    from drumscribe.models.cnn import Checkpoint, HitCNN, HitCNNConfig, save_checkpoint
    from drumscribe.realtime.features import mel_basis, mel_centers_hz

    lead = group is None or group.rank == 0  # validates, logs, writes

    def say(*args):
        if lead:
            log.warning(*args)

    if not cfg.out and lead:  # never the shipped model: a new file under runs/
        out = default_out()
        out.parent.mkdir(parents=True, exist_ok=True)
        cfg = replace(cfg, out=str(out))
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    if device is None:
        device = get_device(cfg.device)
    t0 = time.time()
    x, y, meta, offset = load_windows(cfg.data, cfg.frames_before, cfg.frames_after)
    labels = [str(s) for s in meta["labels"]]
    hours = float(meta["seconds"].sum()) / 3600
    say("train: %d windows (%.1f%% with a drum) from %.2f h of audio, %d kits; device %s%s",
        len(y), 100 * (y.sum(1) > 0).mean(), hours, len({str(k) for k in meta["kits"]}), device,
        f", {group.world_size} processes" if group else "")
    has_val = Path(cfg.val).is_file() and lead
    if has_val:
        vx, vy, vmeta, voffset = load_windows(cfg.val, cfg.frames_before, cfg.frames_after)
        vkits = [str(k) for k in vmeta["kits"]]
        vkit = vmeta["kit"]

    model_cfg = HitCNNConfig(n_mels=x.shape[1], frames_before=cfg.frames_before, frames_after=cfg.frames_after,
                             n_classes=len(labels), channels=tuple(cfg.channels), hidden=cfg.hidden,
                             contrast_channel=cfg.contrast_channel)
    model = HitCNN(model_cfg)
    sample = x[rng.choice(len(x), min(len(x), 20000), replace=False)].astype(np.float32)
    model.band_mean.copy_(torch.from_numpy(sample.mean(axis=(0, 2))))
    model.band_std.copy_(torch.from_numpy(sample.std(axis=(0, 2)) + 1e-3))
    if cfg.init:
        from drumscribe.models.cnn import load_checkpoint

        load_init(model, load_checkpoint(cfg.init).model)
        say("starting from the weights of %s", cfg.init)
    model.to(device).train()
    stepped = model  # what the loop runs: the model, or under torchrun its DistributedDataParallel wrapper
    batch_size, steps_per_epoch = cfg.batch_size, len(x) // cfg.batch_size
    if group is not None:
        from torch.nn.parallel import DistributedDataParallel

        # every process starts from process 0's weights and buffers (the wrapper broadcasts them); each draws its
        # own augmentation
        stepped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        rng = np.random.default_rng([cfg.seed, group.rank])
        batch_size = cfg.batch_size // group.world_size
        steps_per_epoch = len(shard_order(len(x), 0, cfg, group)) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    total = steps_per_epoch * cfg.epochs
    step = 0
    history = []
    fp_, op_ = recipe(meta)
    if has_val and recipe(vmeta)[0] != fp_:
        raise TrainError(f"{cfg.val} was rendered with other spectrogram settings than {cfg.data}")
    offset_frames = float(np.median(meta["delays"])) * fp_.sample_rate_hz / fp_.hop_samples
    lowpass = None
    if cfg.lowpass_rate:
        lowpass = lowpass_weights(mel_basis(fp_), fp_.sample_rate_hz, np.geomspace(*cfg.lowpass_hz, 64))
    shift_from = None
    if cfg.shift_rate:
        shift_from = int(np.searchsorted(mel_centers_hz(fp_.as_dict()), cfg.shift_from_hz))

    drum_mask = str(meta["drum_mask"]) if "drum_mask" in meta else ""
    if drum_mask:
        from drumscribe.realtime.unmix import mask_to_extra

        drum_mask = mask_to_extra(drum_mask)
        say("the windows were cut behind the drum mask %s: the checkpoint carries it", meta["drum_mask"])

    def save(model, thresholds, history):
        extra = {
            "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "data": {"windows": int(len(y)), "hours": round(hours, 3), "kits": sorted({str(k) for k in meta["kits"]})},
            "device": str(device) + ("" if device.type != "cuda" else f" ({torch.cuda.get_device_name()})"),
            "train_seconds": round(time.time() - t0, 1),
            "history": history,
        }
        if group is not None:
            extra["distributed"] = {"processes": group.world_size, "backend": torch.distributed.get_backend(),
                                    "batch_per_process": batch_size}
        if drum_mask:  # the network reads the spectrogram behind this mask: the mask is part of the model
            extra["drum_mask"] = drum_mask
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        copy = HitCNN(model_cfg)
        copy.load_state_dict(state)
        copy.eval()
        save_checkpoint(cfg.out, Checkpoint(model=copy, labels=labels, feature_params=fp_,
                                            onset_params=op_, mel_basis=mel_basis(fp_),
                                            thresholds=list(thresholds), onset_offset_frames=offset_frames,
                                            extra=extra))
        return extra
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(x)) if group is None else shard_order(len(x), epoch, cfg, group)
        running = 0.0
        for b in range(steps_per_epoch):
            for param_group in optimizer.param_groups:
                param_group["lr"] = get_lr(step, total, cfg)
            xb, yb = get_batch(x, y, order[b * batch_size : (b + 1) * batch_size], cfg, offset, rng, device, True,
                               lowpass, shift_from)
            loss = focal_bce(stepped(xb), yb, cfg.focal_gamma)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
            step += 1
        if group is not None:  # the mean over every process's batches
            summed = torch.tensor([running], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(summed)
            running = summed.item() / group.world_size
        record = {"epoch": epoch + 1, "loss": running / max(1, steps_per_epoch), "seconds": time.time() - t0}
        if has_val:
            probs = predict(model, vx, cfg, voffset, device)
            record["val_f"] = dict(zip(labels, np.round(f_scores(probs, vy, 0.5)[3], 3).tolist()))
            record["val_loss"] = float(loss_fn(torch.logit(torch.from_numpy(probs).clamp(1e-6, 1 - 1e-6)),
                                               torch.from_numpy(vy)).item())
        history.append(record)
        say("epoch %d: loss %.4f val_loss %s  %.0f s  %s", epoch + 1, record["loss"], record.get("val_loss"),
            record["seconds"], record.get("val_f"))
        if lead:
            save(model, np.full(len(labels), 0.5), history)  # a usable checkpoint after every epoch
    if not lead:
        return []

    thresholds = np.full(len(labels), 0.5)
    if has_val:
        probs = predict(model, vx, cfg, voffset, device)
        tune = np.array([cfg.threshold_kit in vkits[k] for k in vkit])
        if tune.any():
            thresholds = tune_thresholds(probs[tune], vy[tune])
        for k, name in enumerate(vkits):
            sel = vkit == k
            tp, fp, fn, f = f_scores(probs[sel], vy[sel], thresholds)
            say("held-out %s: F per class %s", name, dict(zip(labels, np.round(f, 3).tolist())))
    save(model, thresholds, history)
    say("wrote %s (%.0f s)", cfg.out, time.time() - t0)
    return history


DATASET_KEYS = ("x", "y", "labels", "kits", "kit", "seconds", "delays", "store_before", "store_after")
"""What train reads of a window dataset (offline.dataset)."""


def _header_shape(data, key: str) -> tuple:
    """The shape of an array in an .npz, read from its header (the windows are not loaded)."""
    with data.zip.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(read(f)[0])


def check_dataset(path: str, before: int, after: int, option: str = "--data") -> dict:
    """What a window dataset holds, from its headers and small arrays (the windows are not read): windows, labels,
    the spectrogram settings and whether a drum mask was used. TrainError, one line, for anything train cannot
    use, so that a bad file is refused before any work."""
    hint = f"render one with: drumscribe train render --out {Path(path).with_suffix('.npz')}"
    if not Path(path).exists():
        raise TrainError(f"{option} '{path}' does not exist; {hint}")
    if not Path(path).is_file():
        raise TrainError(f"{option} '{path}' is not a file; expected a window dataset (.npz); {hint}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = "not an .npz archive" if isinstance(exc, ValueError) else " ".join(str(exc).split())[:120]
        raise TrainError(f"{option} '{path}' is not a window dataset ({reason}); {hint}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise TrainError(f"{option} '{path}' holds one array, not a window dataset (.npz); {hint}")
    with data:
        missing = [k for k in DATASET_KEYS if k not in data.files]
        if missing:
            raise TrainError(f"{option} '{path}' is not a window dataset (it lacks {', '.join(missing)}); {hint}")
        try:
            x, y = _header_shape(data, "x"), _header_shape(data, "y")
            sb, sa = int(data["store_before"]), int(data["store_after"])
            labels = [str(label) for label in data["labels"]]
            fp, op = recipe(data)
            mask = str(data["drum_mask"]) if "drum_mask" in data.files else ""
        except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise TrainError(f"{option} '{path}' is a damaged window dataset ({' '.join(str(exc).split())[:120]})") \
                from None
    if len(x) != 3 or len(y) != 2 or x[0] != y[0] or not x[0] or x[1] != sb + sa + 1 or y[1] != len(labels):
        raise TrainError(f"{option} '{path}' is a damaged window dataset (windows {x}, labels {y} for "
                         f"{len(labels)} drums, {sb}+{sa} frames stored)")
    if x[2] != fp.n_mels:
        raise TrainError(f"{option} '{path}' is a damaged window dataset ({x[2]} mel bands, its settings say "
                         f"{fp.n_mels})")
    if before > sb or after > sa:
        raise TrainError(f"model context {before}+{after} exceeds the stored {sb}+{sa} frames of {path}")
    return {"windows": x[0], "labels": labels, "features": fp, "drum_mask": mask}


def check_data(cfg: TrainConfig) -> None:
    """--data (each of its comma-separated datasets) and --val where it exists, alone and together: TrainError."""
    parts = [check_dataset(p, cfg.frames_before, cfg.frames_after) for p in cfg.data.split(",")]
    if any(p["labels"] != parts[0]["labels"] for p in parts):
        raise TrainError(f"datasets {cfg.data} label different drums")
    if any(p["features"] != parts[0]["features"] for p in parts):
        raise TrainError(f"datasets {cfg.data} were rendered with different spectrogram settings")
    if len({p["drum_mask"] for p in parts}) != 1:
        raise TrainError(f"datasets {cfg.data} mix windows behind a drum mask and without one (offline.dataset "
                         "--drum-mask): a network reads one or the other")
    windows = sum(p["windows"] for p in parts)
    if windows < cfg.batch_size:
        raise TrainError(f"--batch-size {cfg.batch_size} is more than the {windows} windows of {cfg.data}")
    if Path(cfg.val).is_file() or Path(cfg.val).is_dir():
        val = check_dataset(cfg.val, cfg.frames_before, cfg.frames_after, "--val")
        if val["features"] != parts[0]["features"]:
            raise TrainError(f"{cfg.val} was rendered with other spectrogram settings than {cfg.data}")
        if val["labels"] != parts[0]["labels"]:
            raise TrainError(f"--val '{cfg.val}' labels other drums than {cfg.data}")


def _config_value(key: str, value, default):
    """A --config file's value for a TrainConfig field, as the field's type; TrainError if it is not one."""
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        expected = "a number"
    elif isinstance(default, str):
        ok, expected = isinstance(value, str), "a string"
    else:  # tuples: channels of whole numbers, ranges of numbers
        whole = key == "channels"
        ok = isinstance(value, list) and bool(value) and all(
            isinstance(v, int if whole else (int, float)) and not isinstance(v, bool)
            and (whole or math.isfinite(v)) for v in value)
        expected = "a list of whole numbers" if whole else "a list of numbers"
        value = tuple(value) if ok else value
    if not ok:
        shown = json.dumps(value)
        raise TrainError(f"key '{key}' is {shown if len(shown) <= 60 else shown[:57] + '...'}; expected {expected}")
    return value


def read_config(path: Path) -> dict:
    """The TrainConfig fields of a --config JSON file, each checked against its field's type; TrainError (one line)
    for a file that cannot be read, is not a JSON object, or has a key or value that is not a TrainConfig field's."""
    where = f"--config '{path}'"
    expected = 'expected a JSON object of TrainConfig fields, such as {"epochs": 8}'
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrainError(f"{where} does not exist") from None
    except UnicodeDecodeError:
        raise TrainError(f"{where} is not a text file; {expected}") from None
    except OSError as exc:
        raise TrainError(f"{where} cannot be read ({exc.strerror or exc})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainError(f"{where} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); {expected}") \
            from None
    if not isinstance(raw, dict):
        raise TrainError(f"{where} holds a JSON {type(raw).__name__}; {expected}")
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    out = {}
    for key, value in raw.items():
        if key not in defaults:
            raise TrainError(f"{where}: key '{key}' is not one of: {', '.join(defaults)}")
        try:
            out[key] = _config_value(key, value, defaults[key])
        except TrainError as exc:
            raise TrainError(f"{where}: {exc}") from None
    return out


def check_ranges(parser: argparse.ArgumentParser, cfg: TrainConfig) -> None:
    """Settings out of range: argparse's one-line usage error, exit 2."""
    if cfg.device not in ("auto", "cpu", "cuda"):
        parser.error(f"--device '{cfg.device}' is not one of: auto, cpu, cuda")
    for name in ("epochs", "batch_size", "threads", "hidden"):
        if getattr(cfg, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(cfg, name)} must be >= 1")
    for name in ("frames_before", "frames_after", "jitter_frames"):
        if getattr(cfg, name) < 0:
            parser.error(f"--{name.replace('_', '-')} {getattr(cfg, name)} must be >= 0")
    if not cfg.channels or min(cfg.channels) < 1:
        parser.error(f"--channels {' '.join(map(str, cfg.channels))}: expected one width >= 1 per stage")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        parser.error(f"--lr {cfg.lr} must be a number > 0")
    for name in ("weight_decay", "level_jitter"):
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0):
            parser.error(f"--{name.replace('_', '-')} {getattr(cfg, name)} must be a number >= 0")
    if not 0.0 <= cfg.mix_rate <= 1.0:
        parser.error(f"--mix-rate {cfg.mix_rate} must be between 0 and 1")
    if len(cfg.mix_db) != 2 or cfg.mix_db[0] > cfg.mix_db[1]:
        parser.error(f"--mix-db {' '.join(map(str, cfg.mix_db))}: expected two numbers, LOW HIGH")
    if not 0.0 <= cfg.eq_rate <= 1.0:
        parser.error(f"--eq-rate {cfg.eq_rate} must be between 0 and 1")
    if not 0.0 <= cfg.eq_db <= 24.0:
        parser.error(f"--eq-db {cfg.eq_db} must be between 0 and 24")
    if not 0.0 <= cfg.shift_rate <= 1.0:
        parser.error(f"--shift-rate {cfg.shift_rate} must be between 0 and 1")
    if not 0 <= cfg.shift_bins <= 8:
        parser.error(f"--shift-bins {cfg.shift_bins} must be between 0 and 8")
    if not 0.0 <= cfg.focal_gamma <= 5.0:
        parser.error(f"--focal-gamma {cfg.focal_gamma} must be between 0 and 5")
    if not 0.0 <= cfg.lowpass_rate <= 1.0:
        parser.error(f"--lowpass-rate {cfg.lowpass_rate} must be between 0 and 1")
    if len(cfg.lowpass_hz) != 2 or not 0 < cfg.lowpass_hz[0] <= cfg.lowpass_hz[1]:
        parser.error(f"--lowpass-hz {' '.join(map(str, cfg.lowpass_hz))}: expected two frequencies, LOW HIGH, LOW > 0")


def check_out(out: str) -> None:
    """The checkpoint can be written at `out` (its folder exists, it is no directory): TrainError if not."""
    from drumscribe.realtime.sinks import OutputPathError, check_writable

    try:
        check_writable(out)
    except OutputPathError as exc:
        raise TrainError(f"-o: {exc}") from None
