"""Training the drum one-shot generator (models/generator.py runs it): a class-conditioned variational autoencoder
on log-magnitude spectrograms of the one-shot classifier's kits (`drumscribe train render-oneshots`, the held-out
kits left out), exported to ONNX.

    from drumscribe.offline.generator import load_generator
    g = load_generator(); audio, rate = g.generate("snare", seed=1); drum, knobs = g.encode(audio, rate)

torch is imported inside the training functions only, so `load_generator` needs none.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drumscribe.models.generator import (  # noqa: F401  (re-exported: the library API)
    DEFAULT_GENERATOR_PATH,
    Generator,
    GeneratorError,
    SpectrogramParams,
    load_generator,
    log_spectrogram,
    training_knobs,
    write_bundle,
)

log = logging.getLogger(__name__)

GENERATOR_CLASSES = ("kick", "snare", "rim", "clap", "hihat_closed", "hihat_open", "tom", "crash", "ride",
                     "percussion")
"""The classes it generates: those of the one-shot classifier (offline.oneshots.CLASSES)."""


@dataclass
class GeneratorConfig:
    n_knobs: int = 4  # the bottleneck: knobs a user turns
    knob_limit: float = 3.0  # knobs range over [-limit, limit]
    hidden: int = 128  # channels of the convolutions
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 2e-3
    kl_weight: float = 5e-4  # beta: the KL term per sample against the mean L1 error per spectrogram bin
    kl_warmup_epochs: int = 5
    attack_weight: float = 3.0  # extra weight of the first frames' error (1 + w * exp(-frame / 8)): the attack
    class_weight: float = 0.05  # the encoder's class head (cross-entropy)
    seed: int = 0
    threads: int = 2
    max_minutes: float = 25.0  # stop after the epoch that passes this (a shared CPU can be slower than planned)


def load_training_set(data_dir: str | Path, params: SpectrogramParams | None = None,
                      classes=GENERATOR_CLASSES):
    """(spectrograms (n, n_bins, n_frames) float32, class indices (n,), names (n,)) of DATA_DIR/<class>/*.flac|wav
    (the layout of `drumscribe train render-oneshots`)."""
    import soundfile as sf
    import soxr

    params = params or SpectrogramParams()
    specs, labels, names = [], [], []
    for k, label in enumerate(classes):
        for path in sorted((Path(data_dir) / label).glob("*")):
            if path.suffix.lower() not in (".flac", ".wav"):
                continue
            audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
            audio = audio.mean(axis=1)[: int(rate * (params.max_length_s + 0.5))]
            if rate != params.sample_rate_hz:
                audio = soxr.resample(audio, rate, params.sample_rate_hz)
            if not np.abs(audio).max(initial=0) > 1e-4:
                continue
            specs.append(log_spectrogram(audio, params))
            labels.append(k)
            names.append(f"{label}/{path.stem}")
    if not specs:
        raise ValueError(f"no .flac or .wav one-shots under '{data_dir}/<class>/' for classes {', '.join(classes)}")
    return np.stack(specs), np.asarray(labels), np.asarray(names)


def build_network(config: GeneratorConfig, params: SpectrogramParams, n_classes: int):
    """The autoencoder (torch): encoder(spectrogram, one-hot class) -> (mean, log-variance, class logits),
    decoder(knobs, one-hot class) -> spectrogram. The spectrogram's bins are the convolutions' channels."""
    import torch
    from torch import nn

    h, k, bins, frames = config.hidden, config.n_knobs, params.n_bins, params.n_frames
    squeezed = frames // 8

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(
                nn.Conv1d(bins, h, 1), nn.ELU(),
                nn.Conv1d(h, h, 5, stride=2, padding=2), nn.ELU(),
                nn.Conv1d(h, h, 5, stride=2, padding=2), nn.ELU(),
                nn.Conv1d(h, h // 2, 5, stride=2, padding=2), nn.ELU(),
                nn.Flatten(), nn.Linear(h // 2 * squeezed, 128), nn.ELU())
            self.classify = nn.Linear(128, n_classes)
            self.latent = nn.Linear(128 + n_classes, 2 * k)

        def forward(self, spectrogram, drum_class):
            feat = self.trunk(spectrogram)
            stats = self.latent(torch.cat([feat, drum_class], dim=1))
            return stats[:, :k], stats[:, k:], self.classify(feat)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.start = nn.Sequential(nn.Linear(k + n_classes, 128), nn.ELU(),
                                       nn.Linear(128, h // 2 * squeezed), nn.ELU())
            self.body = nn.Sequential(
                nn.Upsample(scale_factor=2), nn.Conv1d(h // 2, h, 5, padding=2), nn.ELU(),
                nn.Upsample(scale_factor=2), nn.Conv1d(h, h, 5, padding=2), nn.ELU(),
                nn.Upsample(scale_factor=2), nn.Conv1d(h, h, 5, padding=2), nn.ELU(),
                nn.Conv1d(h, bins, 1))  # linear: a sigmoid saturates on the floor's zeros

        def forward(self, knobs, drum_class):
            x = self.start(torch.cat([knobs, drum_class], dim=1))
            return self.body(x.view(len(x), h // 2, squeezed))

    class Autoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = Encoder(), Decoder()

    return Autoencoder()


def _onnx(module, inputs: tuple, input_names, output_names) -> bytes:
    import io
    import warnings

    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), inputs, buffer, input_names=input_names, output_names=output_names,
                          dynamic_axes={n: {0: "batch"} for n in [*input_names, *output_names]}, dynamo=False)
    return buffer.getvalue()


def train_generator(data_dir: str | Path, out_path: str | Path, config: GeneratorConfig | None = None,
                    *, progress=None) -> dict:
    """Train on DATA_DIR/<class>/ one-shots and write the bundle to `out_path`; returns a training record."""
    import torch

    config = config or GeneratorConfig()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    params = SpectrogramParams()
    started = time.monotonic()
    x, y, names = load_training_set(data_dir, params)
    classes = GENERATOR_CLASSES
    present = sorted(set(y.tolist()))
    log.warning("%d one-shots: %s", len(x), ", ".join(f"{classes[c]} {int((y == c).sum())}" for c in present))
    net = build_network(config, params, len(classes))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    onehot = torch.nn.functional.one_hot(yt, len(classes)).float()
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs)
    gen = torch.Generator().manual_seed(config.seed)
    weight = 1 + config.attack_weight * torch.exp(-torch.arange(params.n_frames, dtype=torch.float32) / 8)
    weight = weight / weight.mean()
    history = []
    for epoch in range(config.epochs):
        net.train()
        beta = config.kl_weight * min(1.0, (epoch + 1) / max(1, config.kl_warmup_epochs))
        totals = np.zeros(4)
        for idx in torch.randperm(len(x), generator=gen).split(config.batch_size):
            spec, cls = xt[idx], onehot[idx]
            mean, logvar, logits = net.encoder(spec, cls)
            z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
            recon = ((net.decoder(z, cls) - spec).abs() * weight).mean()
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1).mean()
            ce = torch.nn.functional.cross_entropy(logits, yt[idx])
            loss = recon + beta * kl + config.class_weight * ce
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += np.array([loss.item(), recon.item(), kl.item(), ce.item()]) * len(idx)
        sched.step()
        row = dict(zip(("loss", "l1", "kl", "ce"), (totals / len(x)).round(5).tolist()), epoch=epoch + 1,
                   seconds=round(time.monotonic() - started, 1))
        history.append(row)
        if progress:
            progress(row)
        if row["seconds"] > 60 * config.max_minutes:
            log.warning("stopped after epoch %d: past %g minutes", epoch + 1, config.max_minutes)
            break

    net.eval()
    with torch.no_grad():
        mean, _, logits = net.encoder(xt, onehot)
        recon = (net.decoder(mean, onehot) - xt).abs().mean().item()
        accuracy = (logits.argmax(1) == yt).float().mean().item()
    knobs = mean.numpy().astype(np.float64)
    class_mean, class_std = {}, {}
    for c, label in enumerate(classes):
        pts = knobs[y == c]
        class_mean[label] = (pts.mean(axis=0) if len(pts) else np.zeros(config.n_knobs)).tolist()
        class_std[label] = (pts.std(axis=0) if len(pts) > 1 else np.ones(config.n_knobs)).tolist()
    k = config.n_knobs
    # the ONNX encoder gives (mean, logits) only, as models.generator.Generator reads them
    enc = _onnx(_MeanAndLogits(net.encoder), (xt[:1], onehot[:1]), ["spectrogram", "drum_class"],
                ["knobs", "logits"])
    dec = _onnx(net.decoder, (torch.zeros(1, k), onehot[:1]), ["knobs", "drum_class"], ["spectrogram"])
    record = {"examples": len(x), "epochs": config.epochs, "train_seconds": round(time.monotonic() - started, 1),
              "final_l1": history[-1]["l1"], "eval_l1": round(recon, 5), "class_accuracy": round(accuracy, 4),
              "data_dir": str(data_dir)}
    meta = {"spectrogram": dataclasses.asdict(params), "classes": list(classes), "n_knobs": k,
            "knob_range": [-config.knob_limit, config.knob_limit], "class_mean": class_mean,
            "class_std": class_std, "draw": "prior", "draw_scale": 0.8, "config": dataclasses.asdict(config),
            "training": record, "history": history}
    write_bundle(out_path, enc, dec, meta, extra={
        "train_knobs": knobs.astype(np.float32), "train_classes": np.asarray([classes[c] for c in y]),
        "train_names": names.astype(str)})
    return record


def _MeanAndLogits(encoder):  # noqa: N802  (a module factory, named as the class it returns)
    import torch

    class MeanAndLogits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, spectrogram, drum_class):
            mean, _, logits = self.encoder(spectrogram, drum_class)
            return mean, logits

    return MeanAndLogits()


# ---------------------------------------------------------------------------------------------------------------
# Measures (bench/generator.py, tests/test_generator.py)


def spectral_centroid_hz(audio: np.ndarray, sample_rate_hz: int) -> float:
    """The centroid of a sound's power spectrum (the whole sound, one FFT)."""
    power = np.abs(np.fft.rfft(np.asarray(audio, dtype=np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate_hz)
    return float((freqs * power).sum() / max(power.sum(), 1e-20))


def waveform_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two waveforms, sample by sample over the shorter's length."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-20))


def spectrogram_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference of model spectrograms (values in [0, 1]): a (n_bins, n_frames) or a batch
    against b (m, n_bins, n_frames) -> (m,) or (n, m)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32).reshape(len(b), -1)
    if a.ndim == 2:
        return np.abs(b - a.reshape(1, -1)).mean(axis=1)
    return np.stack([np.abs(b - x.reshape(1, -1)).mean(axis=1) for x in a])


def take_groups(names) -> dict:
    """Training samples that are takes of one drum: velocity layers of one kit instrument (names
    '<class>/<kit>__<instrument>-<layer>' as render-oneshots writes them, or '... vel<v>' of a soundfont); only
    groups of two or more. -> {instrument: [indices]}"""
    import re

    groups: dict = {}
    for i, name in enumerate(names):
        key = re.sub(r"-(\d+|vel-?\d+)$", "", str(name))
        groups.setdefault(key, []).append(i)
    return {k: v for k, v in groups.items() if len(v) > 1}


SAME_RECORDING_CORRELATION = 0.999
"""Two velocity layers whose waveforms (first 0.2 s, peak-normalised, best lag) correlate this much are one
recording played louder or through a velocity filter (a soundfont's layers, or a kit that reuses one file), not two
takes: 91 of the 617 layers that have another are within 0.002 of it (below the Griffin-Lim round trip), all at
0.9999 or more; distinct takes of one drum reach 0.995 (BJA_Pacific's dry snare)."""


def load_heads(data_dir: str | Path, names, seconds: float = 0.2) -> list:
    """The first `seconds` of each training one-shot (names as load_training_set gives them), mono float64."""
    import soundfile as sf

    heads = []
    for name in names:
        path = next(p for p in (Path(data_dir) / f"{name}{ext}" for ext in (".flac", ".wav")) if p.is_file())
        info = sf.info(str(path))
        audio, _ = sf.read(str(path), frames=int(seconds * info.samplerate), dtype="float64", always_2d=True)
        heads.append(audio.mean(axis=1))
    return heads


def same_recording(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two one-shots' heads are one recording (cross-correlation at the best lag, normalised, reaches
    SAME_RECORDING_CORRELATION)."""
    n = 1 << int(np.ceil(np.log2(max(len(a), len(b)) * 2)))
    a = np.asarray(a, np.float64) / (np.linalg.norm(a) + 1e-12)
    b = np.asarray(b, np.float64) / (np.linalg.norm(b) + 1e-12)
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    return float(np.abs(corr).max()) >= SAME_RECORDING_CORRELATION


def typical_take_distance(specs: np.ndarray, names, heads=None) -> tuple:
    """(median, count): over every training sample that has another take of its drum, the distance to its
    nearest other take. With `heads` (load_heads), a layer that is the same recording (same_recording) is not
    another take."""
    nearest = []
    for members in take_groups(names).values():
        d = spectrogram_distance(specs[members], specs[members])
        np.fill_diagonal(d, np.inf)
        if heads is not None:
            for a, i in enumerate(members):
                for b, j in enumerate(members[a + 1:], start=a + 1):
                    if same_recording(heads[i], heads[j]):
                        d[a, b] = d[b, a] = np.inf
        nearest.extend(x for x in d.min(axis=1).tolist() if np.isfinite(x))
    return (float(np.median(nearest)) if nearest else float("nan")), len(nearest)
