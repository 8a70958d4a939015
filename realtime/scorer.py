"""The onset scorer stage: runs the drum-hit network on a log-mel window around each onset.

Each onset's scores are the network's probability of every drum, (for the in-song context) its embedding, and every
drum's level in dB (LoudnessMeter), which realtime.decoder.HitDecoder turns into hits and velocities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drumscribe.models.params import VELOCITY_FRAMES, FeatureParams
from drumscribe.models.runtime import Network

from .features import mel_centers_hz
from .types import FrameBlock

# Mel-band regions whose energy gives each drum's loudness, in Hz.
_LOUDNESS_BANDS_HZ = {
    "kick": (30.0, 200.0),
    "hh_closed": (5000.0, 17000.0),
    "hh_pedal": (5000.0, 17000.0),
    "hh_open": (5000.0, 17000.0),
    "crash": (4000.0, 17000.0),
    "ride": (4000.0, 17000.0),
}
_DEFAULT_LOUDNESS_BAND_HZ = (150.0, 5000.0)

# Added to each drum's band level (dB) so that a hit played at a given velocity is transcribed near it: a hi-hat
# puts far less energy in its band than a kick in its own. Fitted on training kits only (The Black Pearl,
# ForzeeStereo, BJA_Pacific, Millo_MultiLayered2, FluidR3 Standard and Room) by
# `drumscribe train calibrate`: the median gap between played and measured level, grooves at
# -6 dBFS peak.
_LOUDNESS_OFFSET_DB = {
    "kick": 13.4, "snare": 14.5, "side_stick": 22.9, "tom_low": 17.6, "tom_mid": 17.2, "tom_high": 17.5,
    "hh_closed": 34.9, "hh_pedal": 27.9, "hh_open": 28.5, "crash": 38.8, "ride": 31.9,
}


def velocity_measure(checkpoint) -> tuple:
    """(frames, reduce, offsets_db) of the checkpoint's velocity measure (models.params.VelocityParams, in
    `checkpoint.decoding`): its level is the loudest ("max") or the energy ("sum") of its drum's band over `frames`
    frames from the onset frame (as many as its window holds), plus the drum's offset: those
    `drumscribe train calibrate --write` fitted for that checkpoint over _LOUDNESS_OFFSET_DB; without them the
    loudest of VELOCITY_FRAMES (5) frames with _LOUDNESS_OFFSET_DB."""
    measure = checkpoint.decoding.velocity
    offsets = dict(_LOUDNESS_OFFSET_DB)
    offsets.update(measure.offsets_db)
    return measure.frames, measure.reduce, offsets


MAX_ONSETS_PER_RUN = 64
"""Onsets one network run classifies at most: its memory grows with the batch (a dense file's 400-frame batch
reached 30 MB more), and the logits of each onset are the same in any batch (tests/test_stages.py)."""

class LoudnessMeter:
    """Every drum's level in dB from the log-mel frames of an onset on: the loudest of `frames` frames ("max"), or
    their energy ("sum"), in the drum's band (_LOUDNESS_BANDS_HZ), plus its offset (_LOUDNESS_OFFSET_DB, or those the
    checkpoint carries: velocity_measure)."""

    def __init__(self, feature_params: FeatureParams, labels, *, frames: int = VELOCITY_FRAMES, reduce: str = "max",
                 offsets_db: dict | None = None):
        if reduce not in ("max", "sum"):
            raise ValueError(f"velocity measure '{reduce}' is not max or sum")
        if frames < 1:
            raise ValueError(f"velocity measure frames {frames} must be >= 1")
        self.frames = frames
        self.reduce = reduce
        self.log_gain = feature_params["log_gain"]
        offsets = _LOUDNESS_OFFSET_DB if offsets_db is None else offsets_db
        self.offsets_db = np.array([offsets.get(label, 0.0) for label in labels])
        mel_hz = mel_centers_hz(feature_params)
        bands = [_LOUDNESS_BANDS_HZ.get(label, _DEFAULT_LOUDNESS_BAND_HZ) for label in labels]
        # (n_mels, n_classes) 0/1: which mel bands make each drum's loudness
        self.band_matrix = np.stack([(mel_hz >= lo) & (mel_hz <= hi) for lo, hi in bands], axis=1).astype(np.float64)

    @classmethod
    def for_checkpoint(cls, checkpoint, **changes) -> LoudnessMeter:
        """The checkpoint's measure (velocity_measure), with `changes` (frames, reduce, offsets_db) over it."""
        frames, reduce, offsets = velocity_measure(checkpoint)
        settings = {"frames": frames, "reduce": reduce, "offsets_db": offsets, **changes}
        return cls(checkpoint.feature_params, checkpoint.labels, **settings)

    def levels_db(self, after: np.ndarray) -> np.ndarray:
        """Every drum's loudness in dB, per-drum offset included, of the given frames (those from an onset on)."""
        power = (10.0**after - 1.0) / self.log_gain
        band = power @ self.band_matrix
        level = band.sum(axis=0) if self.reduce == "sum" else band.max(axis=0)
        return 10.0 * np.log10(level + 1e-12) + self.offsets_db


@dataclass(frozen=True, eq=False)
class ScoredOnsets:
    """What the scorer hands the decoder for each block of frames: the onsets scored in it (frame order within each
    batch), with every drum's probability (n, drums), their unit embedding (n, width; None when not asked for) and
    every drum's level in dB (n, drums); how many frames have arrived (`frames_done`: the decoder's clock); and the
    block's drum-share records (realtime.unmix.DrumShareStage), passed on."""

    frames_done: int
    onsets: tuple
    probs: np.ndarray
    embedding: np.ndarray | None
    levels_db: np.ndarray
    drum_share: tuple = ()

    def __post_init__(self):
        n = len(self.onsets)
        rows = (len(self.probs), len(self.levels_db)) + (() if self.embedding is None else (len(self.embedding),))
        if any(r != n for r in rows):
            raise ValueError(f"scores of {n} onsets have {len(self.probs)} probability rows, {len(self.levels_db)} "
                             f"level rows" + ("" if self.embedding is None else f", {len(self.embedding)} embeddings"))


class OnsetScorer:
    """Streaming stage: FrameBlock (with onsets) in, ScoredOnsets out (None for no frames).

    Each onset waits until `frames_after` frames past it exist (then, files, for the rest of its batch of
    `batch_frames`, fixed by frame index), then the network sees frames [onset - frames_before, onset +
    frames_after]. `embedding`: also its hidden layer (the in-song context compares onsets by it). `gate` (an
    ensemble of networks, models.cnn.HitEnsemble): its first all-drums member hears every onset first, and one it
    gives every drum less than `gate` is dropped unscored (ContextParams.gate). `network`: the checkpoint's network
    in another back end (its `for_live()`, realtime.live.build_live_stages), else its own. Either is a
    models.runtime.Network: whichever back end, the scorer calls `run` and `run_gate` alone.
    """

    def __init__(self, checkpoint, *, batch_frames: int = 1, embedding: bool = False, gate: float = 0.0,
                 network: Network | None = None):
        self.model: Network = checkpoint.model.eval() if network is None else network
        cfg = checkpoint.model.config
        self.labels = list(checkpoint.labels)
        self.embedding = embedding
        self.onset_gate = gate
        if self.onset_gate and not self.model.has_gate:
            raise ValueError("context gate: the model is one network or its ONNX bundle has no gate network "
                             "(write the bundle again: drumscribe train export CHECKPOINT)")
        self.frames_before = cfg.frames_before
        self.frames_after = cfg.frames_after
        self.n_mels = cfg.n_mels
        self.hop_samples = checkpoint.feature_params.hop_samples
        if batch_frames < 1:
            raise ValueError(f"batch_frames {batch_frames} must be >= 1")
        self.batch_frames = batch_frames
        self.meter = LoudnessMeter.for_checkpoint(checkpoint)
        self._none = np.zeros((0, len(self.labels)))  # the scores of no onsets (read-only)
        self._none.flags.writeable = False
        self.velocity_frames = self.meter.frames
        # an onset waits for its look-ahead frames, then (files) for the rest of its batch
        self.latency_samples = (self.frames_after + batch_frames) * self.hop_samples
        self.history_frames = self.frames_before + self.frames_after + batch_frames + 8
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros((0, self.n_mels))
        self.history_start = 0  # absolute frame index of history[0]
        self.pending = []  # onset frames waiting for their look-ahead

    def _batch(self, onset: int) -> int:
        """Onsets are scored together, in batches fixed by frame index alone (so never by block size)."""
        return (onset + self.frames_after + self.batch_frames) // self.batch_frames

    def process(self, frames: FrameBlock | None) -> ScoredOnsets | None:
        if frames is None:
            return None
        history = np.concatenate((self.history, frames.mel))
        start = self.history_start if len(self.history) else frames.start_frame
        self.pending.extend(frames.onsets)
        frames_done = start + len(history)
        runs = []
        complete = frames_done // self.batch_frames  # batches whose last frame has arrived
        if self.pending:
            ready = [k for k in self.pending if self._batch(k) <= complete]
            if ready:
                self.pending = [k for k in self.pending if self._batch(k) > complete]
                for batch in sorted({self._batch(k) for k in ready}):
                    runs += self._score([k for k in ready if self._batch(k) == batch], history, start)
        keep = self.history_frames
        if len(history) > keep:
            start += len(history) - keep
            history = history[-keep:]
        self.history, self.history_start = history, start
        return self._scores(runs, frames_done, frames.drum_share)

    def drain(self) -> ScoredOnsets | None:
        """For a stream that ends without its flush (Ctrl-C), so that what was heard is not lost: score every
        onset whose look-ahead has arrived though its batch has not (None: no such onset)."""
        end = self.history_start + len(self.history)  # the frames held
        ready = [k for k in self.pending if k + self.frames_after < end]
        if not ready:
            return None
        self.pending = [k for k in self.pending if k + self.frames_after >= end]
        runs = []
        for batch in sorted({self._batch(k) for k in ready}):
            runs += self._score([k for k in ready if self._batch(k) == batch], self.history, self.history_start)
        return self._scores(runs, end, ())

    def _scores(self, runs: list, frames_done: int, drum_share: tuple) -> ScoredOnsets:
        """The network runs' (onsets, probs, embedding, levels) as one ScoredOnsets, in order."""
        if not runs:  # most blocks (live: nearly all): one shared empty array, nothing allocated
            return ScoredOnsets(frames_done, (), self._none, None, self._none, drum_share)
        if len(runs) == 1:
            onsets, probs, embedding, levels = runs[0]
            return ScoredOnsets(frames_done, tuple(onsets), probs, embedding, levels, drum_share)
        return ScoredOnsets(frames_done, tuple(k for run in runs for k in run[0]),
                            np.concatenate([run[1] for run in runs]),
                            None if runs[0][2] is None else np.concatenate([run[2] for run in runs]),
                            np.concatenate([run[3] for run in runs]), drum_share)

    def _window(self, onset: int, history: np.ndarray, start: int) -> np.ndarray:
        lo = onset - self.frames_before - start
        hi = onset + self.frames_after + 1 - start
        if lo >= 0:
            return history[lo:hi]
        return np.concatenate((np.zeros((-lo, self.n_mels)), history[:hi]))  # before the stream began

    def _network(self, x: np.ndarray) -> tuple:
        """(logits, embedding or None) of windows (n, mels, frames) float32."""
        return self.model.run(x, embedding=self.embedding)

    def _score(self, onsets: list, history: np.ndarray, start: int) -> list:
        """[(onsets, probabilities, unit embedding or None, levels)] of one batch, in network runs of at most
        MAX_ONSETS_PER_RUN onsets (none where the gate drops every onset)."""
        if len(onsets) > MAX_ONSETS_PER_RUN:  # its memory grows with the batch: a dense song's batches in parts
            runs = []
            for first in range(0, len(onsets), MAX_ONSETS_PER_RUN):
                runs += self._score(onsets[first : first + MAX_ONSETS_PER_RUN], history, start)
            return runs
        if len(onsets) == 1:  # the live case
            windows = self._window(onsets[0], history, start)[None]
        else:
            windows = np.stack([self._window(k, history, start) for k in onsets])  # (n, frames, mels)
        x = np.ascontiguousarray(windows.transpose(0, 2, 1), dtype=np.float32)
        if self.onset_gate:  # the gate member first; the ensemble hears only the onsets it lets through
            heard = 1.0 / (1.0 + np.exp(-self.model.run_gate(x).astype(np.float64)))
            keep = np.flatnonzero(heard.max(axis=1) >= self.onset_gate)
            if not len(keep):
                return []
            if len(keep) < len(onsets):
                onsets, windows, x = [onsets[i] for i in keep], windows[keep], np.ascontiguousarray(x[keep])
        logits, embedding = self._network(x)
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        afters = windows[:, self.frames_before : self.frames_before + self.velocity_frames]  # a hit's level's
        levels = np.array([self.meter.levels_db(after) for after in afters])
        if embedding is not None:
            embedding = embedding.astype(np.float64)
            embedding /= np.linalg.norm(embedding, axis=1, keepdims=True) + 1e-12
        return [(list(onsets), probs, embedding, levels)]
