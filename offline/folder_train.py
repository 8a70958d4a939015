"""Train a one-shot classifier from any folder-per-class sample set: `drumscribe train folders DATA_DIR`.

DATA_DIR holds one folder per class (any depth of audio files below each; folders named '_...' or '.…' are skipped,
so a `sort` output folder can be trained on as it is). The files are split 64/16/20 (train/validation/test),
stratified per class with a fixed seed; each training file also goes in as `augment_copies` pedalboard-augmented
copies (offline/oneshots.py). The epoch with the best validation accuracy is kept and scored on the test split.
With --members N, N networks are trained that way from seeds seed..seed+N-1 on the same split and images, and the
checkpoint averages their class probabilities (models.oneshot.OneShotEnsemble); validation and test score the mean.

Writes the checkpoint (-o, usable by `classify` and `sort --model`), and beside it <stem>.report.json,
<stem>.curves.png (training curves) and <stem>.confusion.png (test confusion matrix).

Reads top to bottom: the config, small helpers, then one loop.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SPLIT = (0.64, 0.16, 0.20)
"""Train, validation and test fractions of every class."""

MIN_FILES_PER_CLASS = 5

BLEED_PER_CLASS = 24
"""Training files of each class kept (their first second) to bleed under the augmented copies of other classes."""


@dataclass
class FolderTrainConfig:
    folders: str = ""  # DATA_DIR: one sub-folder of audio files per class
    out: str = "oneshot.pt"  # checkpoint to write; report and plots go beside it
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3  # peak learning rate, cosine decay after a short warm-up
    weight_decay: float = 1e-3
    label_smoothing: float = 0.05
    augment_copies: int = 4  # pedalboard-augmented copies of each training file (0: the files only)
    time_shift_frames: int = 2  # random shift of the image in time, as an onset found a little early or late
    freq_mask_bands: int = 8  # width of a random band of mels masked in half the training images (0: none)
    channels: tuple = (8, 16, 32, 64)  # conv widths of the model
    hidden: int = 128  # fully connected width
    dropout: float = 0.3
    seed: int = 0  # fixes the split, the augmentation and the initial weights
    members: int = 1  # networks trained from seeds seed, seed+1, ...; the checkpoint averages their probabilities
    device: str = "auto"  # auto (cuda when present), cpu or cuda
    threads: int = 1  # CPU threads for torch
    workers: int = 1  # processes that read and augment the files
    cache: str = ""  # .npz that keeps the decoded and augmented images between runs with the same files and settings


class FolderTrainError(ValueError):
    """A problem with the data folder or the options; the message is one line for the user."""


def find_class_files(data_dir: Path) -> tuple[list, list]:
    """(labels, [(path, class index)]): class folders in name order, audio files below each in path order."""
    from .oneshots import AUDIO_EXTENSIONS

    if not data_dir.exists():
        raise FolderTrainError(f"--folders '{data_dir}' does not exist")
    if not data_dir.is_dir():
        raise FolderTrainError(f"--folders '{data_dir}' is not a folder")
    class_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    labels, files = [], []
    for folder in class_dirs:
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not found:
            continue
        if len(found) < MIN_FILES_PER_CLASS:
            raise FolderTrainError(f"class folder '{folder}' has {len(found)} audio files; a 64/16/20 split needs "
                                   f"at least {MIN_FILES_PER_CLASS}")
        files += [(p, len(labels)) for p in found]
        labels.append(folder.name)
    if len(labels) < 2:
        raise FolderTrainError(f"--folders '{data_dir}' has {len(labels)} class folders with audio files; expected "
                               f"at least 2 (DATA_DIR/<class>/*.wav)")
    return labels, files


def stratified_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, validation and test files: SPLIT of every class, shuffled with a fixed seed."""
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = max(1, round(SPLIT[2] * len(idx)))
        n_val = max(1, round(SPLIT[1] * len(idx)))
        parts[2].extend(idx[:n_test])
        parts[1].extend(idx[n_test : n_test + n_val])
        parts[0].extend(idx[n_test + n_val :])
    return tuple(np.sort(np.array(p, dtype=int)) for p in parts)


_BLEED_BANK: dict = {}
"""class -> one-shots that may bleed under another class's augmented copies (bleed_bank); set in each worker."""


def _images_of_file(job):
    """Images of one file: the file itself, then `copies` augmented versions (seeded per file and copy)."""
    from .oneshots import SampleReadError, augment_oneshot, oneshot_image, read_sample

    path, label, copies, seed, params, basis = job
    try:
        audio = read_sample(path, sample_rate_hz=params.sample_rate_hz)
    except SampleReadError as exc:
        return None, str(exc)
    images = [oneshot_image(audio, params, basis)]
    for k in range(copies):
        rng = np.random.default_rng([seed, k, int(hashlib.md5(str(path).encode()).hexdigest()[:8], 16)])
        shot = augment_oneshot(audio, rng, sample_rate_hz=params.sample_rate_hz, label=label, bleed=_BLEED_BANK)
        images.append(oneshot_image(shot, params, basis))
    return np.stack(images).astype(np.float16), None


def _init_worker(bank=None):
    global _BLEED_BANK
    _BLEED_BANK = bank or {}
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # BLAS threads spin against the other workers'
    except ImportError:
        pass


def bleed_bank(files, labels, train_idx, cfg: FolderTrainConfig, params) -> dict:
    """Up to BLEED_PER_CLASS training files of each class (seeded), their first second: the other drums that
    augment_oneshot mixes under a hit. Only training files, so no validation or test sound leaks into training."""
    from .oneshots import SampleReadError, read_sample

    rng = np.random.default_rng([cfg.seed, 7])
    bank = {}
    for c, label in enumerate(labels):
        mine = [i for i in train_idx if files[i][1] == c]
        for i in rng.permutation(mine)[:BLEED_PER_CLASS]:
            try:
                audio = read_sample(files[i][0], sample_rate_hz=params.sample_rate_hz, max_seconds=1.0)
            except SampleReadError:
                continue
            if len(audio) and np.abs(audio).max() > 0:
                bank.setdefault(label, []).append(audio.astype(np.float32))
    return bank


def build_images(paths, labels_of_files, copies_per_file, cfg: FolderTrainConfig, params, basis, desc: str,
                 bank=None):
    """For each file, its images (1 + copies, mels, frames) float16, or None and the reason it was skipped."""
    from tqdm import tqdm

    jobs = [(p, label, c, cfg.seed, params, basis) for p, label, c in zip(paths, labels_of_files, copies_per_file)]
    bar = dict(desc=desc, total=len(jobs), file=sys.stderr, leave=False, mininterval=0.5, unit="file")
    if cfg.workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(cfg.workers, initializer=_init_worker, initargs=(bank,)) as pool:
            return list(tqdm(pool.imap(_images_of_file, jobs, chunksize=4), **bar))
    global _BLEED_BANK
    _BLEED_BANK = bank or {}
    try:
        return [_images_of_file(job) for job in tqdm(jobs, **bar)]
    finally:
        _BLEED_BANK = {}


def _cache_key(files, cfg: FolderTrainConfig, params) -> str:
    h = hashlib.sha1()
    for path, c in files:
        st = path.stat()
        h.update(f"{path}|{c}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps([params.as_dict(), cfg.augment_copies, cfg.seed, BLEED_PER_CLASS]).encode())
    if cfg.augment_copies:  # images made by other augmentation code are other images
        import inspect

        from . import oneshots

        for name in oneshots.AUGMENTATION_FUNCTIONS:
            h.update(inspect.getsource(getattr(oneshots, name)).encode())
        h.update(repr(oneshots.KIT_BLEED).encode())
    return h.hexdigest()


def get_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FolderTrainError("--device cuda: no CUDA device is available here; use --device auto or cpu")
    if name not in ("cpu", "cuda"):
        raise FolderTrainError(f"--device '{name}' is not one of: auto, cpu, cuda")
    return torch.device(name)


def get_lr(step: int, total: int, cfg: FolderTrainConfig) -> float:
    warmup = max(1, total // 30)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def get_batch(x, y, idx, cfg: FolderTrainConfig, fine_frames: int, rng, device, *, train: bool):
    import torch

    xb = x[idx].astype(np.float32)
    if train and cfg.time_shift_frames:  # within the attack's frames (the image's first fine_frames columns)
        for i, shift in enumerate(rng.integers(-cfg.time_shift_frames, cfg.time_shift_frames + 1, len(idx))):
            attack = xb[i, :, :fine_frames]
            if shift > 0:  # found late: the onset lies before the image starts
                attack[:, :-shift] = attack[:, shift:].copy()
            elif shift < 0:  # found early: silence before it
                attack[:, -shift:] = attack[:, :shift].copy()
                attack[:, :-shift] = 0.0
    if train and cfg.freq_mask_bands:
        for i in np.flatnonzero(rng.random(len(idx)) < 0.5):
            width = int(rng.integers(1, cfg.freq_mask_bands + 1))
            lo = int(rng.integers(0, xb.shape[1] - width + 1))
            xb[i, lo : lo + width] = 0.0
    return torch.from_numpy(xb).to(device), torch.from_numpy(y[idx]).to(device)


def predict(model, x, device, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (n, classes) of images x (n, mels, frames)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[i : i + batch_size].astype(np.float32)).to(device)
            out.append(torch.softmax(model(xb), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.n_classes))


def scores(probs: np.ndarray, y: np.ndarray, labels: list) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (rows: true class, columns: predicted)."""
    n = len(labels)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    per_class = {}
    for c, label in enumerate(labels):
        tp = confusion[c, c]
        precision = tp / max(1, confusion[:, c].sum())
        recall = tp / max(1, confusion[c].sum())
        per_class[label] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                            "f1": round(float(2 * precision * recall / max(1e-9, precision + recall)), 4),
                            "support": int(confusion[c].sum())}
    return {"accuracy": round(float((pred == y).mean()) if len(y) else 0.0, 4), "per_class": per_class,
            "confusion": confusion.tolist()}


def plot_curves(path: Path, histories: list) -> None:
    """Loss and accuracy per epoch, one pair of lines per member."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for k, history in enumerate(histories):
        epochs = [h["epoch"] for h in history]
        name = f"member {k + 1} " if len(histories) > 1 else ""
        ax_loss.plot(epochs, [h["train_loss"] for h in history], label=f"{name}train (augmented, label-smoothed)")
        ax_loss.plot(epochs, [h["val_loss"] for h in history], label=f"{name}validation")
        ax_acc.plot(epochs, [h["train_accuracy"] for h in history], label=f"{name}train (augmented)")
        ax_acc.plot(epochs, [h["val_accuracy"] for h in history], label=f"{name}validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_loss.legend(fontsize=7)
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    ax_acc.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_confusion(path: Path, confusion, labels: list, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion)
    rates = counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    size = 2.5 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def output_paths(out: str | Path) -> dict:
    out = Path(out)
    stem = out.with_suffix("") if out.suffix else out
    return {"checkpoint": out, "report": Path(f"{stem}.report.json"), "curves": Path(f"{stem}.curves.png"),
            "confusion": Path(f"{stem}.confusion.png")}


def cache_key_of(path: str | Path) -> str:
    """The key of an image cache this program wrote (what the images were made from); FolderTrainError (one line)
    for a file that is not such a cache, which is never written over."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            if not {"x", "y", "owner", "skipped", "key"} <= set(cached.files):
                raise KeyError("lacks its arrays")
            return str(cached["key"])
    except (OSError, ValueError, KeyError, AttributeError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        reason = "not an .npz archive" if isinstance(exc, (ValueError, AttributeError, TypeError)) else \
            " ".join(str(exc).strip("'\"").split())[:100]
        raise FolderTrainError(f"--cache '{path}' is not an image cache of 'drumscribe train folders' ({reason}); "
                               "give a new path, or remove the file") from None


def _check_cache(cache: str) -> None:
    """--cache: a cache this program wrote, or a new file in a folder that exists."""
    from drumscribe.realtime.sinks import OutputPathError, check_writable

    if Path(cache).is_file():
        cache_key_of(cache)
    try:
        check_writable(cache)
    except OutputPathError as exc:
        raise FolderTrainError(f"--cache: {exc}") from None


def _check_out(out: Path) -> None:
    from drumscribe.realtime.sinks import OutputPathError, check_writable

    for path in output_paths(out).values():
        try:
            check_writable(path)
        except OutputPathError as exc:
            raise FolderTrainError(f"-o: {exc}") from None


def train_member(k: int, model_cfg, x, y, train_idx, val_idx, class_weight, labels, cfg: FolderTrainConfig,
                 fine_frames: int, device, t0: float):
    """Train member k (seed cfg.seed + k) for cfg.epochs; returns it at its best validation epoch, and its record."""
    import torch

    from drumscribe.models.oneshot import OneShotCNN

    seed = cfg.seed + k
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = OneShotCNN(model_cfg)
    sample = x[train_idx[rng.permutation(len(train_idx))[:5000]]].astype(np.float32)
    model.band_mean.copy_(torch.from_numpy(sample.mean(axis=(0, 2))))
    model.band_std.copy_(torch.from_numpy(sample.std(axis=(0, 2)) + 1e-2))
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weight.to(device), label_smoothing=cfg.label_smoothing)
    eval_loss = torch.nn.CrossEntropyLoss(weight=class_weight)
    name = f"member {k + 1}/{cfg.members}, " if cfg.members > 1 else ""

    steps_per_epoch = max(1, math.ceil(len(train_idx) / cfg.batch_size))
    total, step = steps_per_epoch * cfg.epochs, 0
    history, best, best_state = [], None, None
    for epoch in range(cfg.epochs):
        model.train()
        order = train_idx[rng.permutation(len(train_idx))]
        running, correct = 0.0, 0
        for b in range(steps_per_epoch):
            batch = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if len(batch) < 2:  # batch norm needs two
                continue
            for group in optimizer.param_groups:
                group["lr"] = get_lr(step, total, cfg)
            xb, yb = get_batch(x, y, batch, cfg, fine_frames, rng, device, train=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(batch)
            correct += int((logits.argmax(1) == yb).sum())
            step += 1
        val_probs = predict(model, x[val_idx], device)
        val_loss = float(eval_loss(torch.log(torch.from_numpy(val_probs).clamp_min(1e-7)),
                                   torch.from_numpy(y[val_idx])).item())
        record = {"epoch": epoch + 1, "train_loss": round(running / len(train_idx), 4),
                  "train_accuracy": round(correct / len(train_idx), 4), "val_loss": round(val_loss, 4),
                  "val_accuracy": scores(val_probs, y[val_idx], labels)["accuracy"],
                  "seconds": round(time.time() - t0, 1)}
        history.append(record)
        log.warning("%sepoch %d/%d: loss %.4f, validation loss %.4f accuracy %.3f  (%.0f s)", name, epoch + 1,
                    cfg.epochs, record["train_loss"], val_loss, record["val_accuracy"], record["seconds"])
        if best is None or (record["val_accuracy"], -val_loss) > (best["val_accuracy"], -best["val_loss"]):
            best = record
            best_state = {key: v.detach().cpu().clone() for key, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model.cpu().eval(), {"seed": seed, "best_epoch": best["epoch"], "validation_accuracy": best["val_accuracy"],
                                "history": history}


def train(cfg: FolderTrainConfig) -> dict:
    import torch

    from drumscribe.models.oneshot import OneShotCheckpoint, OneShotConfig, build_model, save_checkpoint
    from drumscribe.realtime.features import mel_basis
    from drumscribe.realtime.sinks import atomic_output

    from .oneshots import OneShotParams

    t0 = time.time()
    data_dir, paths_out = Path(cfg.folders), output_paths(cfg.out)
    labels, files = find_class_files(data_dir)
    _check_out(paths_out["checkpoint"])
    if cfg.cache:
        _check_cache(cfg.cache)
    device = get_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    params = OneShotParams()
    basis = mel_basis(params.features)

    # the data: split by file, then images (training files with their augmented copies)
    y_files = np.array([c for _, c in files])
    split = stratified_split(y_files, cfg.seed)
    role = np.zeros(len(files), int)  # 0 train, 1 validation, 2 test
    role[split[1]], role[split[2]] = 1, 2
    key = _cache_key(files, cfg, params) if cfg.cache else ""
    if cfg.cache and Path(cfg.cache).is_file() and cache_key_of(cfg.cache) == key:
        with np.load(cfg.cache, allow_pickle=False) as cached:
            x, y, owner, skipped = cached["x"], cached["y"], cached["owner"], list(cached["skipped"])
        log.warning("train folders: %d images from the cache '%s'", len(x), cfg.cache)
    else:
        copies = [cfg.augment_copies if r == 0 else 0 for r in role]
        bank = bleed_bank(files, labels, split[0], cfg, params) if cfg.augment_copies else {}
        results = build_images([p for p, _ in files], [labels[c] for _, c in files], copies, cfg, params, basis,
                               "reading and augmenting", bank=bank)
        skipped = [reason for images, reason in results if images is None]
        kept = [i for i, (images, _) in enumerate(results) if images is not None]
        if not kept:
            raise FolderTrainError(f"no audio file in '{data_dir}' could be read ({skipped[0]})")
        x = np.concatenate([results[i][0] for i in kept])
        owner = np.concatenate([np.full(len(results[i][0]), i) for i in kept])  # the file each image comes from
        y = y_files[owner]
        if cfg.cache:  # whole or not at all, as every file written here
            with atomic_output(cfg.cache) as tmp, open(tmp, "wb") as f:
                np.savez(f, x=x, y=y, owner=owner, skipped=np.array(skipped, dtype=str), key=key)
    for reason in skipped[:5]:
        log.warning("skipped: %s", reason)
    if len(skipped) > 5:
        log.warning("skipped %d more unreadable files", len(skipped) - 5)
    is_clean = np.r_[True, owner[1:] != owner[:-1]]  # the first image of each file is the file as it is
    train_idx = np.flatnonzero(role[owner] == 0)
    val_idx = np.flatnonzero((role[owner] == 1) & is_clean)
    test_idx = np.flatnonzero((role[owner] == 2) & is_clean)
    if not len(val_idx) or not len(test_idx):
        raise FolderTrainError(f"too few readable files in '{data_dir}' for a validation and a test split "
                               f"({len(skipped)} of {len(files)} could not be read)")
    counts = np.bincount(y_files, minlength=len(labels))
    log.warning("train folders: %d classes, %d files (%d train, %d validation, %d test), %d training images; "
                "device %s", len(labels), len(files), len(split[0]), len(split[1]), len(split[2]), len(train_idx),
                device)

    # the model: `members` networks, each trained alone on the same images from its own seed
    model_cfg = OneShotConfig(n_mels=params.n_mels, n_frames=params.n_frames, n_classes=len(labels),
                              channels=tuple(cfg.channels), hidden=cfg.hidden, dropout=cfg.dropout)
    train_counts = np.bincount(y[train_idx], minlength=len(labels))
    class_weight = torch.tensor(train_counts.sum() / (len(labels) * np.maximum(1, train_counts)), dtype=torch.float32)
    nets, members = [], []
    for k in range(cfg.members):
        net, record = train_member(k, model_cfg, x, y, train_idx, val_idx, class_weight, labels, cfg,
                                   params.fine_frames, device, t0)
        nets.append(net)
        members.append(record)

    # score the ensemble (each member at its best epoch) on the validation and test files, write everything
    model = build_model(OneShotConfig(**{**asdict(model_cfg), "members": cfg.members}))
    if cfg.members == 1:
        model.load_state_dict(nets[0].state_dict())
    else:
        for slot, net in zip(model.members, nets):
            slot.load_state_dict(net.state_dict())
    model.cpu().eval()
    validation = scores(predict(model, x[val_idx], torch.device("cpu")), y[val_idx], labels)
    test = scores(predict(model, x[test_idx], torch.device("cpu")), y[test_idx], labels)
    history = members[0]["history"]
    report = {
        "data": str(data_dir), "labels": labels, "files_per_class": dict(zip(labels, counts.tolist())),
        "split": {"fractions": list(SPLIT), "seed": cfg.seed, "train_files": len(split[0]),
                  "validation_files": len(split[1]), "test_files": len(split[2])},
        "skipped_files": skipped, "training_images": int(len(train_idx)), "device": str(device),
        "best_epoch": members[0]["best_epoch"], "validation_accuracy": validation["accuracy"],
        "test_accuracy": test["accuracy"], "test": test, "history": history,
        "members": [{k: m[k] for k in ("seed", "best_epoch", "validation_accuracy")} for m in members],
        "train_seconds": round(time.time() - t0, 1),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
    }
    extra = {k: report[k] for k in ("data", "files_per_class", "split", "device", "best_epoch", "validation_accuracy",
                                    "test_accuracy", "members", "train_seconds", "config")}
    save_checkpoint(paths_out["checkpoint"], OneShotCheckpoint(model=model, labels=labels,  # written whole or not
                                                               feature_params=params.as_dict(), mel_basis=basis,
                                                               extra=extra))
    with atomic_output(paths_out["report"]) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    with atomic_output(paths_out["curves"]) as tmp:
        plot_curves(tmp, [m["history"] for m in members])
    with atomic_output(paths_out["confusion"]) as tmp:
        plot_confusion(tmp, test["confusion"], labels,
                       f"test files: accuracy {test['accuracy']:.3f} ({len(test_idx)} files)")
    return report
