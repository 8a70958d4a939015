"""Torch-free inference: a checkpoint's network as ONNX, with everything else the engine needs, in one `.onnx.npz`
file beside the `.pt` (hitcnn.pt -> hitcnn.onnx.npz).

Importing torch is most of a short run's start-up (1.4 s of 2 s measured here), and the engine needs torch only to
run the network. `load_bundle` returns the bundle when it was written from exactly this checkpoint (its SHA-256 is
inside); otherwise None, and the caller loads the `.pt` with torch. Write or refresh a bundle after changing a
checkpoint:

    drumscribe train export models/weights/hitcnn.pt [more.pt ...]

The bundle's network gives the checkpoint's logits to ~1e-6 (checked when it is written).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .params import DECODING_KEYS, DecodingParams, FeatureParams, OnsetParams

BUNDLE_SUFFIX = ".onnx.npz"


@dataclass(frozen=True)
class NetworkConfig:
    """What the engine reads of a network's shape (the fields of models.cnn.HitCNNConfig it uses)."""

    n_mels: int
    frames_before: int
    frames_after: int
    n_classes: int


class Network:
    """The one protocol every back end of a drum-hit network implements, so that no caller guesses which it holds:
    the torch modules (models.cnn.HitCNN, models.cnn.HitEnsemble), a frozen TorchScript copy
    (models.cnn.TorchScriptNetwork, for live input) and ONNX Runtime (OnnxNetwork, the torch-free bundle). Which one
    a checkpoint holds is chosen where it is loaded (models.cnn.load_checkpoint: torch; load_bundle: ONNX) or
    compiled (`for_live`).

    `config` holds at least the fields of NetworkConfig (n_mels, frames_before, frames_after, n_classes)."""

    config: NetworkConfig
    has_gate: bool = False
    """Whether `run_gate` exists: an ensemble's gate member (realtime.decoder.ContextParams.gate)."""
    has_embedding: bool = True
    """Whether `run(..., embedding=True)` gives the embedding (a frozen TorchScript copy and an ONNX bundle written
    before it was exported do not)."""

    def run(self, windows: np.ndarray, *, embedding: bool = False) -> tuple:
        """(logits (batch, n_classes), embedding (batch, width) or None) of (batch, n_mels, n_frames) float32
        C-contiguous windows: numpy in, numpy out. The embedding (the hidden layer the in-song context compares
        onsets by) only where asked for."""
        raise NotImplementedError

    def run_gate(self, windows: np.ndarray) -> np.ndarray:
        """The gate member's logits (only where `has_gate`)."""
        raise ValueError("this network has no gate member (one network, or an ONNX bundle written without it: "
                         "drumscribe train export CHECKPOINT)")

    def for_live(self) -> Network:
        """The fastest working form of this network for one onset at a time (live input and transcribe --live)."""
        return self

    def eval(self) -> Network:
        return self


class OnnxNetwork(Network):
    """A drum-hit network in ONNX Runtime: `run_numpy` maps (batch, n_mels, n_frames) float32 windows to (batch,
    n_classes) logits. One thread by default (live input: no thread may wait on another within a block); files
    may give it more, for the batches of onsets they classify at once. Already the fastest runtime for one onset
    (`for_live` is itself)."""

    def __init__(self, onnx: bytes, config: NetworkConfig, threads: int = 1, gate: bytes | None = None):
        self.onnx, self.gate, self.threads = onnx, gate, max(1, int(threads))
        self.session = self._session(onnx, spinning=True)
        # an ensemble's gate member alone (models.cnn.HitEnsemble.gate_logits), for the onset gate: its session is
        # made on the first run_gate, so that a model that never gates runs as one without a gate network
        self.gate_session = None
        self.config = config

    def _session(self, onnx: bytes, spinning: bool):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # no allocation plan kept per input shape: a file's batches come in every size, and the plans (with the
        # arena they fill) grew a 5-minute song's memory by 70 MB (bench/memory.py)
        options.enable_mem_pattern = False
        if not spinning:  # two sessions take turns: a pool that spins idle after its run would starve the other's
            # (bench/speed.py on 2 cores, the gated six networks: median 7.4 s with spinning, 4.2 s without)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])

    def run(self, windows: np.ndarray, *, embedding: bool = False) -> tuple:
        return self.run_numpy_with_embedding(windows) if embedding else (self.run_numpy(windows), None)

    def run_numpy(self, windows: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"windows": np.ascontiguousarray(windows, dtype=np.float32)})[0]

    def run_numpy_with_embedding(self, windows: np.ndarray) -> tuple:
        """(logits, embedding), as HitCNN.forward_with_embedding."""
        if "embedding" not in {o.name for o in self.session.get_outputs()}:
            raise ValueError("this ONNX network has no 'embedding' output: write its bundle again "
                             "(drumscribe train export CHECKPOINT)")
        logits, embedding = self.session.run(["logits", "embedding"],
                                             {"windows": np.ascontiguousarray(windows, dtype=np.float32)})
        return logits, embedding

    @property
    def has_gate(self) -> bool:
        return self.gate is not None

    @property
    def has_embedding(self) -> bool:
        return "embedding" in {o.name for o in self.session.get_outputs()}

    def run_gate(self, windows: np.ndarray) -> np.ndarray:
        """The gate member's logits (an ensemble's bundle only), as HitEnsemble.gate_logits."""
        if self.gate_session is None:  # the first gated batch: both sessions without idle spinning from now on
            self.session = self._session(self.onnx, spinning=False)
            self.gate_session = self._session(self.gate, spinning=False)
        return self.gate_session.run(["logits"], {"windows": np.ascontiguousarray(windows, dtype=np.float32)})[0]


class CheckpointError(ValueError):
    """A file that is not a drumscribe checkpoint (or bundle), or one with a field the engine cannot use; the
    message is one line for the user: the file, the field, its value and what was expected."""


def _shown(value, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _real(value) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and bool(np.isfinite(value))


def _count(value, least: int = 1) -> bool:
    """A whole number >= `least` (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= least


FEATURE_KEYS = ("sample_rate_hz", "n_fft", "hop_samples", "n_mels")
"""The feature_params every checkpoint has, whole numbers >= 1 (what the network's input and its mel filterbank
are made of); any others are non-negative numbers."""


def checked_fields(where: str, fields: dict, n_mels: int, n_classes: int) -> dict:
    """The fields of a checkpoint or bundle beside its network (labels, feature_params, onset_params, mel_basis,
    thresholds, onset_offset_frames, extra), checked and with the defaults of older files filled in; the first that
    is wrong raises CheckpointError("<where>: field '<name>' is <value>; expected <what>").

    Checked here: types, sizes against the network (`n_mels` inputs, `n_classes` outputs) and ranges. What only
    the engine knows (the drum names, the FeatureParams and OnsetParams fields, the context settings in `extra`)
    models/ cannot import: the loaders take the caller's `check(checkpoint)` for it (run_check)."""

    def bad(name, value, expected, shown=None):
        raise CheckpointError(f"{where}: field '{name}' is {shown or _shown(value)}; expected {expected}")

    out = {}
    labels = fields.get("labels")
    if (not isinstance(labels, (list, tuple)) or len(labels) != n_classes
            or not all(isinstance(x, str) and x.strip() for x in labels) or len(set(labels)) != len(labels)):
        bad("labels", labels, f"a list of {n_classes} different drum names, one per output of the network")
    out["labels"] = list(labels)

    fp = fields.get("feature_params")
    if not isinstance(fp, dict) or not all(isinstance(k, str) for k in fp):
        bad("feature_params", fp, "a dict of the spectrogram's settings (FeatureParams)")
    for key in FEATURE_KEYS:
        if not _count(fp.get(key)):
            bad(f"feature_params.{key}", fp.get(key), "a whole number >= 1")
    for key, value in fp.items():
        if not (isinstance(value, (bool, np.bool_)) or _real(value) and value >= 0):
            bad(f"feature_params.{key}", value, "a finite number >= 0 or true/false")
    if fp["n_mels"] != n_mels:
        bad("feature_params.n_mels", fp["n_mels"], f"{n_mels}, the mel bands the network reads")
    if fp["hop_samples"] > fp["n_fft"]:
        bad("feature_params.hop_samples", fp["hop_samples"], f"at most n_fft ({fp['n_fft']})")
    out["feature_params"] = _record(where, "feature_params", FeatureParams, fp)

    op = fields.get("onset_params")
    op = {} if op is None else op  # checkpoints from before they were stored: the defaults
    if not isinstance(op, dict) or not all(isinstance(k, str) for k in op):
        bad("onset_params", op, "a dict of the onset detector's settings (OnsetParams)")
    for key, value in op.items():
        if not (_real(value) or isinstance(value, (bool, np.bool_))):
            bad(f"onset_params.{key}", value, "a finite number or true/false")
    out["onset_params"] = _record(where, "onset_params", OnsetParams, op)

    basis = fields.get("mel_basis")
    if basis is not None:
        shape = (n_mels, fp["n_fft"] // 2 + 1)
        try:
            array = np.asarray(basis, dtype=np.float64)
        except (TypeError, ValueError):
            bad("mel_basis", basis, f"a {shape[0]} x {shape[1]} array of numbers")
        if array.shape != shape or not np.isfinite(array).all():
            bad("mel_basis", array, f"a finite array of shape {shape} (n_mels x n_fft/2+1)",
                shown=f"an array of shape {array.shape}" + ("" if np.isfinite(array).all() else " with NaN or inf"))
        basis = array
    out["mel_basis"] = basis

    thresholds = fields.get("thresholds")
    if thresholds is None or (isinstance(thresholds, (list, tuple)) and not thresholds):
        thresholds = [0.5] * n_classes  # checkpoints from before thresholds were tuned
    if (not isinstance(thresholds, (list, tuple)) or len(thresholds) != n_classes
            or not all(_real(t) and 0.0 <= t <= 1.0 for t in thresholds)):
        bad("thresholds", thresholds, f"a list of {n_classes} probabilities between 0 and 1, one per drum")
    out["thresholds"] = [float(t) for t in thresholds]

    offset = fields.get("onset_offset_frames", 0.0)
    if not _real(offset):
        bad("onset_offset_frames", offset, "a finite number of frames")
    out["onset_offset_frames"] = float(offset)

    extra = fields.get("extra")
    extra = {} if extra is None else extra
    if not isinstance(extra, dict):
        bad("extra", extra, "a dict (the training record)")
    out["extra"] = dict(extra)
    try:
        DecodingParams.of_stored(out["thresholds"], out["onset_offset_frames"], out["extra"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: field {' '.join(str(exc).split())[:200]}") from None
    return out


def _record(where: str, name: str, cls, raw: dict):
    """The typed record (models.params) of a stored dict; CheckpointError naming the field where it is not one."""
    try:
        return cls.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: field '{name}': {' '.join(str(exc).split())[:200]}") from None


def run_check(where: str, check, checkpoint) -> None:
    """The caller's own check of a loaded checkpoint (what its layer knows of the fields, see checked_fields): the
    ValueError, TypeError or KeyError it raises, whose message should name the field, becomes a CheckpointError
    naming the file."""
    if check is None:
        return
    try:
        check(checkpoint)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise CheckpointError(f"{where}: {text[:200]}") from None


@dataclass
class Checkpoint:
    """Everything needed to run a trained model, in one file (nanoGPT style). `model` is the network in the back end
    it was loaded with (a Network): a models.cnn.HitCNN or HitEnsemble (a `.pt` loaded by models.cnn.load_checkpoint)
    or an OnnxNetwork (a bundle loaded by load_bundle)."""

    model: Network
    labels: list
    feature_params: FeatureParams  # a stored dict given here becomes the record (see __setattr__)
    onset_params: OnsetParams = field(default_factory=OnsetParams)
    mel_basis: object = None  # (n_mels, n_fft//2+1) array, so inference needs no librosa
    thresholds: list = field(default_factory=list)  # per-class decision thresholds
    onset_offset_frames: float = 0.0  # true onset = onset frame end - this many frames
    extra: dict = field(default_factory=dict)  # as stored: the decoding settings (DECODING_KEYS) and the record

    @property
    def decoding(self) -> DecodingParams:
        """How this checkpoint's scores become hits (thresholds, onset offset, in-song context, velocity measure,
        drum share and mask), typed: what the engine reads."""
        return DecodingParams.of_stored(self.thresholds, self.onset_offset_frames, self.extra)

    @property
    def training(self) -> MappingProxyType:
        """The training record (read-only): everything in `extra` that does not change what the engine does (data,
        device, time, scores, what the thresholds were tuned on, how the weights are stored)."""
        return MappingProxyType({k: v for k, v in self.extra.items() if k not in DECODING_KEYS})

    def __setattr__(self, name, value):
        # the settings are typed records whoever sets them: a dict (as the files store them, or as code that
        # builds a checkpoint by hand gives them) becomes the record here, checked by it
        if name in _RECORDS:
            value = _RECORDS[name].from_dict(value)
        super().__setattr__(name, value)


_RECORDS = {"feature_params": FeatureParams, "onset_params": OnsetParams}


def bundle_path(checkpoint_path: str | Path) -> Path:
    path = Path(checkpoint_path)
    return path.with_name(path.stem + BUNDLE_SUFFIX)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def onnx_bytes(model, gate: bool = False) -> bytes:
    """A HitCNN (torch) exported to ONNX, batch size free, with two outputs: "logits" and (from
    forward_with_embedding) "embedding". With `gate` (an ensemble), its gate member alone: "logits" only."""
    import io
    import warnings

    import torch

    class _Both(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, windows):
            return self.net.gate_logits(windows) if gate else self.net.forward_with_embedding(windows)

    cfg = model.config
    example = torch.zeros(1, cfg.n_mels, cfg.frames_before + 1 + cfg.frames_after)
    outputs = ["logits"] if gate else ["logits", "embedding"]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(_Both(model.eval()).eval(), example, buffer, input_names=["windows"],
                          output_names=outputs, dynamic_axes={name: {0: "batch"} for name in ["windows", *outputs]},
                          dynamo=False)
    return buffer.getvalue()


def load_bundle(checkpoint_path: str | Path, threads: int = 1, check=None) -> Checkpoint | None:
    """The bundle beside `checkpoint_path` if it was written from this very file, else None (no bundle, a stale
    one, an unreadable one, or no ONNX Runtime: the caller loads the .pt, the truth). A bundle written from this
    file whose fields are wrong (see checked_fields; `check` as there) raises CheckpointError, and nothing else
    does. `threads`: ONNX Runtime's threads for the network."""
    path = bundle_path(checkpoint_path)
    if not path.is_file() or not Path(checkpoint_path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta["source_sha256"] != file_sha256(checkpoint_path):
                return None
            onnx = data["onnx"].tobytes()
            gate = data["gate"].tobytes() if "gate" in data.files else None
            basis = data["mel_basis"]
    except Exception:  # not a bundle, a damaged one, or an unreadable one: the .pt is the truth
        return None
    where = f"model bundle '{path}'"  # written from this very file, so its fields are meant: they must be right
    raw = meta.get("config")
    names = [f.name for f in dataclasses.fields(NetworkConfig)]
    if not isinstance(raw, dict) or sorted(raw) != sorted(names) or not all(
            _count(raw[k], 0 if k.startswith("frames_") else 1) for k in names):
        raise CheckpointError(f"{where}: field 'config' is {_shown(raw)}; expected whole numbers "
                              f"{', '.join(names)} (frames >= 0, the others >= 1)")
    config = NetworkConfig(**raw)
    fields = checked_fields(where, {**meta, "mel_basis": basis if basis.size else None}, config.n_mels,
                            config.n_classes)
    try:
        network = OnnxNetwork(onnx, config, threads=threads, gate=gate)
    except Exception:  # a damaged network, or onnxruntime missing: the .pt is the truth
        return None
    checkpoint = Checkpoint(model=network, **fields)
    run_check(where, check, checkpoint)
    return checkpoint
