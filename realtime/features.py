"""The streaming log-mel spectrogram: the one feature code path of training and inference."""
from __future__ import annotations

import numpy as np

from drumscribe.models.params import FeatureParams  # noqa: F401  (the checkpoint's schema: models/)

from .types import FrameBlock


def mel_basis(params: FeatureParams) -> np.ndarray:
    """The (n_mels, n_fft // 2 + 1) mel filterbank (librosa's, Slaney-normalised)."""
    import librosa  # slow import; inference takes the basis from the checkpoint instead

    return librosa.filters.mel(
        sr=params.sample_rate_hz,
        n_fft=params.n_fft,
        n_mels=params.n_mels,
        fmin=params.fmin_hz,
        fmax=params.fmax_hz,
    ).astype(np.float64)


def mel_centers_hz(fp: dict) -> np.ndarray:
    """Centre frequencies of the mel bands of FeatureParams given as a dict (Slaney mel scale, as librosa's
    filterbank), without librosa."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m):
        lin = m * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log, lin)

    mels = np.linspace(hz_to_mel(fp["fmin_hz"]), hz_to_mel(fp["fmax_hz"]), fp["n_mels"] + 2)
    return mel_to_hz(mels[1:-1])


class LogMelSpectrogram:
    """Streaming stage: audio blocks of any size in, complete log-mel frames out.

    Frame k covers samples [(k + 1) * hop - n_fft, (k + 1) * hop) of the stream, with zeros before its start,
    so frame k is ready as soon as sample (k + 1) * hop - 1 has arrived: the stage is causal and adds no
    latency beyond the window itself.
    """

    def __init__(self, params: FeatureParams = FeatureParams(), basis: np.ndarray | None = None, *,
                 frames_per_call: int = 1):
        if frames_per_call < 1:
            raise ValueError(f"frames_per_call {frames_per_call} must be >= 1")
        self.params = params
        self.frames_per_call = frames_per_call
        self.basis_t = np.ascontiguousarray((mel_basis(params) if basis is None else np.asarray(basis, np.float64)).T)
        expected = (params.n_fft // 2 + 1, params.n_mels)
        if self.basis_t.shape != expected:
            raise ValueError(f"mel basis has shape {self.basis_t.shape[::-1]}, expected {expected[::-1]}")
        window = np.hanning(params.n_fft + 1)[:-1]  # periodic Hann
        self.window = window / window.sum() * 2.0  # a full-scale sine has magnitude 1
        # frames are computed in groups of frames_per_call (throughput over latency for files)
        self.latency_samples = params.n_fft // 2 + (frames_per_call - 1) * params.hop_samples
        # streaming state
        self.buffer = np.zeros(0)
        self.frames_done = 0
        self.reset()

    def reset(self) -> None:
        # samples not yet consumed live in buffer[:filled]; the buffer is preallocated so that the common case,
        # a small block that completes no group of frames, is one copy and no allocation
        history = self.params.n_fft - self.params.hop_samples
        self.buffer = np.zeros(history + self.frames_per_call * self.params.hop_samples + 8192)
        self.filled = history
        self.frames_done = 0

    def process(self, block: np.ndarray) -> FrameBlock | None:
        """Returns the frames completed by this block, or None when no group of frames completed."""
        n_fft, hop, group = self.params.n_fft, self.params.hop_samples, self.frames_per_call
        filled = self.filled
        end = filled + len(block)
        if end <= len(self.buffer):
            self.buffer[filled:end] = block
            self.filled = end
            if end < n_fft + (group - 1) * hop:  # not even one group of frames yet
                return None
            buffer = self.buffer[:end]
        else:
            buffer = np.concatenate((self.buffer[:filled], block))
        n_frames = (len(buffer) - n_fft) // hop + 1 if len(buffer) >= n_fft else 0
        n_frames -= n_frames % group
        if n_frames == 0:
            self._keep(buffer)
            return None
        start = self.frames_done
        if n_frames == 1:  # the live case, one frame per block: a slice (a strided view costs 40 us to build)
            frames = buffer[None, :n_fft]
        else:
            frames = np.lib.stride_tricks.sliding_window_view(buffer, n_fft)[: n_frames * hop : hop]
        mel = self.frames_to_mel(frames)
        self._keep(buffer[n_frames * hop :])
        self.frames_done += n_frames
        return FrameBlock(start, mel)

    def _keep(self, rest: np.ndarray) -> None:
        """Keep the unconsumed samples at the front of the buffer (growing it for a large block)."""
        if len(rest) > len(self.buffer):
            self.buffer = np.zeros(len(rest) + 8192)
        self.buffer[: len(rest)] = rest  # overlapping copy to the front: numpy handles the overlap
        self.filled = len(rest)

    def frames_to_mel(self, frames: np.ndarray) -> np.ndarray:
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        power = spectrum.real**2 + spectrum.imag**2
        # in groups of frames_per_call, so a result never depends on how many frames came at once
        # (BLAS picks its kernel by matrix shape)
        step = self.frames_per_call
        if len(power) == step:
            mel = power @ self.basis_t
        else:
            mel = np.empty((len(power), self.params.n_mels))
            for i in range(0, len(power), step):
                mel[i : i + step] = power[i : i + step] @ self.basis_t
        return np.log10(1.0 + self.params.log_gain * mel)


def log_mel(audio: np.ndarray, params: FeatureParams = FeatureParams(), basis: np.ndarray | None = None) -> np.ndarray:
    """All frames of a whole signal at once: exactly what streaming it would give, frames ending within it."""
    out = LogMelSpectrogram(params, basis).process(np.asarray(audio, np.float64))
    return np.zeros((0, params.n_mels)) if out is None else out.mel
