"""The drum one-shot generator at inference: a class-conditioned variational autoencoder on log-magnitude
spectrograms, run through ONNX Runtime (no torch), with Griffin-Lim for the phase.

The encoder reads a one-shot's spectrogram and gives its drum class (a head of its own) and a point in a small
latent space, the knobs; the decoder turns (class, knobs) into a spectrogram. The bundle
(models/weights/generator.onnx.npz, written by offline/generator.py) holds both networks as ONNX, the feature
settings, and each class's spread of knobs over the training samples (to draw new sounds from).
Imports nothing of the project.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import WEIGHTS_DIR

DEFAULT_GENERATOR_PATH = WEIGHTS_DIR / "generator.onnx.npz"
"""The shipped one-shot generator (package data)."""

BUNDLE_KIND = "drumscribe-generator"


class GeneratorError(ValueError):
    """Bad input to the generator (a class it does not know, knobs of the wrong number or range, a bad length),
    or an unusable bundle; the message is one line for the user."""


@dataclass(frozen=True)
class SpectrogramParams:
    sample_rate_hz: int = 24000
    n_fft: int = 1024
    hop_samples: int = 256
    n_frames: int = 128  # 1.365 s
    floor_db: float = -90.0  # the log-magnitude is (dB - floor) / (top - floor), clipped to [0, 1], where 0 dB is
    top_db: float = 10.0  # a full-scale sine's peak bin (magnitude n_fft / 4 with the Hann window)
    griffin_lim_iterations: int = 64

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2  # the Nyquist bin is dropped (set to zero when resynthesised)

    @property
    def max_length_s(self) -> float:
        return self.n_frames * self.hop_samples / self.sample_rate_hz


def _window(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float64)  # periodic Hann


def _frames(audio: np.ndarray, p: SpectrogramParams) -> np.ndarray:
    """The (n_frames, n_fft) windowed frames of `audio`, frame t centred on sample t * hop."""
    pad = p.n_fft // 2
    length = (p.n_frames - 1) * p.hop_samples + p.n_fft
    x = np.zeros(length)
    n = min(len(audio), length - pad)
    x[pad: pad + n] = audio[:n]
    idx = np.arange(p.n_fft)[None, :] + p.hop_samples * np.arange(p.n_frames)[:, None]
    return x[idx] * _window(p.n_fft)


def stft(audio: np.ndarray, p: SpectrogramParams) -> np.ndarray:
    """(n_bins + 1, n_frames) complex STFT of the first max_length_s of `audio` (zero-padded)."""
    return np.fft.rfft(_frames(np.asarray(audio, dtype=np.float64), p), axis=1).T


def istft(spec: np.ndarray, p: SpectrogramParams) -> np.ndarray:
    """Overlap-add inverse of `stft` (least squares with the same window): audio of n_frames * hop samples."""
    frames = np.fft.irfft(spec.T, n=p.n_fft, axis=1) * _window(p.n_fft)
    length = (p.n_frames - 1) * p.hop_samples + p.n_fft
    out, norm = np.zeros(length), np.zeros(length)
    w2 = _window(p.n_fft) ** 2
    for t in range(p.n_frames):
        s = t * p.hop_samples
        out[s: s + p.n_fft] += frames[t]
        norm[s: s + p.n_fft] += w2
    out /= np.maximum(norm, 1e-8)
    pad = p.n_fft // 2
    return out[pad: pad + p.n_frames * p.hop_samples]


def trim_to_onset(audio: np.ndarray, threshold: float = 0.05, pre_s: float = 0.002,
                  sample_rate_hz: int = 24000) -> np.ndarray:
    """`audio` from a little before its first sample above `threshold` of its peak (a one-shot starts at its hit)."""
    peak = float(np.abs(audio).max(initial=0.0))
    if peak <= 0:
        return audio
    start = int(np.argmax(np.abs(audio) >= threshold * peak))
    return audio[max(0, start - int(pre_s * sample_rate_hz)):]


def log_spectrogram(audio: np.ndarray, p: SpectrogramParams) -> np.ndarray:
    """The model's input: (n_bins, n_frames) float32 in [0, 1] of a mono one-shot at p.sample_rate_hz, taken from
    its onset and peak-normalised."""
    audio = trim_to_onset(np.asarray(audio, dtype=np.float64), sample_rate_hz=p.sample_rate_hz)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 0:
        audio = audio / peak
    mag = np.abs(stft(audio, p))[: p.n_bins] / (p.n_fft / 4)
    db = 20 * np.log10(np.maximum(mag, 1e-12))
    return np.clip((db - p.floor_db) / (p.top_db - p.floor_db), 0.0, 1.0).astype(np.float32)


def magnitude(log_spec: np.ndarray, p: SpectrogramParams) -> np.ndarray:
    """The (n_bins + 1, n_frames) linear magnitude of a model spectrogram (floor values become silence)."""
    log_spec = np.clip(np.asarray(log_spec, dtype=np.float64), 0.0, 1.0)  # the decoder's output is linear
    db = log_spec * (p.top_db - p.floor_db) + p.floor_db
    mag = np.where(log_spec > 1e-3, 10 ** (db / 20) * (p.n_fft / 4), 0.0)
    return np.vstack([mag, np.zeros((1, mag.shape[1]))])


def griffin_lim(mag: np.ndarray, p: SpectrogramParams, rng: np.random.Generator,
                momentum: float = 0.99) -> np.ndarray:
    """Audio whose STFT magnitude is close to `mag` (fast Griffin-Lim, Perraudin et al. 2013)."""
    angles = np.exp(2j * np.pi * rng.random(mag.shape))
    previous = np.zeros_like(angles)
    for _ in range(p.griffin_lim_iterations):
        rebuilt = stft(istft(mag * angles, p), p)
        accelerated = rebuilt - momentum / (1 + momentum) * previous
        previous = rebuilt
        angles = accelerated / np.maximum(np.abs(accelerated), 1e-12)
    return istft(mag * angles, p)


def _session(onnx: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(onnx, sess_options=options, providers=["CPUExecutionProvider"])


class Generator:
    """Drum one-shots from a class and a few knobs (see the module doc). Built by `load_generator`."""

    def __init__(self, encoder_onnx: bytes, decoder_onnx: bytes, meta: dict, *, threads: int = 1):
        self.params = SpectrogramParams(**meta["spectrogram"])
        self.classes = tuple(meta["classes"])
        self.n_knobs = int(meta["n_knobs"])
        lo, hi = meta["knob_range"]
        self.knob_range = (float(lo), float(hi))
        self.class_mean = {c: np.asarray(v, dtype=np.float64) for c, v in meta["class_mean"].items()}
        self.class_std = {c: np.asarray(v, dtype=np.float64) for c, v in meta["class_std"].items()}
        # new sounds' knobs: "prior" draws from the VAE's prior N(0, I) (the decoder's class makes the drum);
        # "class" from a Gaussian fitted to the class's training samples (bundles before 'draw' was stored)
        self.draw = str(meta.get("draw", "class"))
        if self.draw not in ("prior", "class"):
            raise ValueError(f"draw '{self.draw}' is not one of: prior, class")
        self.draw_scale = float(meta.get("draw_scale", 1.0))  # new sounds' spread, times this
        self.meta = meta
        self._encoder = _session(encoder_onnx, threads)
        self._decoder = _session(decoder_onnx, threads)

    @property
    def sample_rate_hz(self) -> int:
        return self.params.sample_rate_hz

    @property
    def max_length_s(self) -> float:
        return self.params.max_length_s

    # -- checks ---------------------------------------------------------------------------------------------

    def check_class(self, drum_class: str) -> str:
        if drum_class not in self.classes:
            raise GeneratorError(f"drum class '{drum_class}' is not one of: {', '.join(self.classes)}")
        return drum_class

    def check_knobs(self, knobs) -> np.ndarray:
        values = np.asarray(list(knobs), dtype=np.float64) if knobs is not None else None
        if values is None or values.ndim != 1 or len(values) != self.n_knobs:
            got = "none" if values is None else len(values.reshape(-1))
            raise GeneratorError(f"knobs: got {got} values; expected {self.n_knobs}")
        lo, hi = self.knob_range
        for i, v in enumerate(values):
            if not np.isfinite(v) or v < lo or v > hi:
                raise GeneratorError(f"knob {i + 1} is {v:g}; expected a number from {lo:g} to {hi:g}")
        return values

    def check_length(self, length_s: float) -> float:
        if not np.isfinite(length_s) or not 0.01 <= length_s <= self.max_length_s + 1e-9:
            raise GeneratorError(f"length {length_s:g} s is out of range; expected 0.01 to "
                                 f"{self.max_length_s:.3f} s")
        return float(length_s)

    # -- the networks ---------------------------------------------------------------------------------------

    def _one_hot(self, drum_class: str | None, n: int = 1) -> np.ndarray:
        out = np.zeros((n, len(self.classes)), dtype=np.float32)
        if drum_class is not None:
            out[:, self.classes.index(drum_class)] = 1
        return out

    def decode_spectrogram(self, drum_class: str, knobs) -> np.ndarray:
        """The (n_bins, n_frames) model spectrogram of (class, knobs); knobs are not range-checked here."""
        z = np.asarray(knobs, dtype=np.float32).reshape(1, self.n_knobs)
        (spec,) = self._decoder.run(None, {"knobs": z, "drum_class": self._one_hot(drum_class)})
        return spec[0]

    def encode_spectrogram(self, spec: np.ndarray, drum_class: str | None = None):
        """(class probabilities, knob means) of model spectrograms (batch, n_bins, n_frames); with `drum_class`
        the knobs are those of that class, else of each spectrogram's own most likely class."""
        spec = np.asarray(spec, dtype=np.float32)
        n = len(spec)
        _, logits = self._encoder.run(None, {"spectrogram": spec, "drum_class": self._one_hot(None, n)})
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        onehot = self._one_hot(drum_class, n)
        if drum_class is None:
            onehot[np.arange(n), probs.argmax(axis=1)] = 1
        mean, _ = self._encoder.run(None, {"spectrogram": spec, "drum_class": onehot})
        return probs, mean.astype(np.float64)

    # -- the API --------------------------------------------------------------------------------------------

    def random_knobs(self, drum_class: str, rng: np.random.Generator) -> np.ndarray:
        """Knobs for a new sound, kept in range: from the prior N(0, I) (draw "prior"), or from a Gaussian fitted
        to the class's training samples (draw "class"); standard deviations times draw_scale.

        The prior puts new sounds between and beyond the training samples rather than on them: with the shipped
        bundle (prior, 0.8), 38 of 48 new kicks, snares and closed hats are farther from every training sample
        than two takes of one drum (30 drawn from the class's spread), and 45-46 are still the class asked for;
        bench/generator.py, docs/generator.md."""
        self.check_class(drum_class)
        noise = self.draw_scale * rng.standard_normal(self.n_knobs)
        if self.draw == "prior":
            z = noise
        else:
            z = self.class_mean[drum_class] + self.class_std[drum_class] * noise
        return np.clip(z, *self.knob_range)

    def generate(self, drum_class: str, knobs=None, seed: int | None = None, length_s: float = 1.0):
        """(audio float32 mono, sample rate) of a one-shot of `drum_class`: at `knobs`, or at knobs drawn from the
        class's spread (seeded by `seed`); `length_s` at most max_length_s (a short fade at the end)."""
        self.check_class(drum_class)
        length_s = self.check_length(length_s)
        rng = np.random.default_rng(seed)
        z = self.random_knobs(drum_class, rng) if knobs is None else self.check_knobs(knobs)
        return self.render(self.decode_spectrogram(drum_class, z), rng, length_s), self.sample_rate_hz

    def render(self, spec: np.ndarray, rng: np.random.Generator, length_s: float = 1.0) -> np.ndarray:
        """Audio of a model spectrogram: Griffin-Lim, cut to `length_s` with a 10 ms fade, peaking at -1 dBFS."""
        audio = griffin_lim(magnitude(spec, self.params), self.params, rng)
        audio = audio[: int(round(length_s * self.sample_rate_hz))]
        fade = min(len(audio), int(0.01 * self.sample_rate_hz))
        if fade:
            audio[len(audio) - fade:] *= np.linspace(1, 0, fade)
        peak = float(np.abs(audio).max(initial=0.0))
        if peak > 0:
            audio = audio / peak * 10 ** (-1 / 20)
        return audio.astype(np.float32)

    def encode(self, audio: np.ndarray, sample_rate_hz: int):
        """(drum class, knobs) of a one-shot (mono or (samples, channels)); knobs clipped to knob_range."""
        audio = np.asarray(audio, dtype=np.float64)
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        if audio.ndim != 1 or len(audio) == 0 or not np.all(np.isfinite(audio)):
            raise GeneratorError("audio: expected a non-empty mono signal of finite samples")
        if not np.abs(audio).max() > 0:
            raise GeneratorError("audio is silent; expected a drum hit")
        if int(sample_rate_hz) != self.sample_rate_hz:
            import soxr

            audio = soxr.resample(audio, int(sample_rate_hz), self.sample_rate_hz)
        probs, mean = self.encode_spectrogram(log_spectrogram(audio, self.params)[None])
        return self.classes[int(probs[0].argmax())], np.clip(mean[0], *self.knob_range)


def write_bundle(path: str | Path, encoder_onnx: bytes, decoder_onnx: bytes, meta: dict, extra=None) -> None:
    """The bundle file (np.savez_compressed, no pickles); `extra`: named arrays stored beside (e.g. the training
    samples' knobs, for plots and checks)."""
    from ._atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps({"kind": BUNDLE_KIND, **meta})),
                                encoder=np.frombuffer(encoder_onnx, dtype=np.uint8),
                                decoder=np.frombuffer(decoder_onnx, dtype=np.uint8), **(extra or {}))


def load_generator(path: str | Path | None = None, *, threads: int = 1) -> Generator:
    """The generator of a bundle (the shipped one by default); GeneratorError in one line if it is unusable."""
    path = Path(path or DEFAULT_GENERATOR_PATH)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            encoder, decoder = data["encoder"].tobytes(), data["decoder"].tobytes()
    except FileNotFoundError:
        raise GeneratorError(f"generator model '{path}' does not exist") from None
    except Exception as exc:
        raise GeneratorError(f"generator model '{path}' cannot be read ({type(exc).__name__}); expected a "
                             f".onnx.npz bundle from 'drumscribe train generator'") from None
    if meta.get("kind") != BUNDLE_KIND:
        raise GeneratorError(f"generator model '{path}' is not a generator bundle (kind {meta.get('kind')!r})")
    try:
        return Generator(encoder, decoder, meta, threads=threads)
    except ImportError:
        raise GeneratorError("the generator needs onnxruntime, which is not installed") from None
    except Exception as exc:
        raise GeneratorError(f"generator model '{path}' is damaged ({type(exc).__name__})") from None


def training_knobs(path: str | Path | None = None):
    """(knobs (n, n_knobs), class names (n,), sample names (n,)) of the training samples stored in a bundle."""
    with np.load(Path(path or DEFAULT_GENERATOR_PATH), allow_pickle=False) as data:
        return data["train_knobs"], data["train_classes"], data["train_names"]
