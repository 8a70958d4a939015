"""Torch-free inference: a checkpoint's network as ONNX, with everything else the engine needs, in one `.onnx.npz`
file beside the `.pt` (hitcnn.pt -> hitcnn.onnx.npz).

Importing torch is most of a short run's start-up (1.4 s of 2 s measured here), and the engine needs torch only to
run the network. `load_bundle` returns the bundle when it was written from exactly this checkpoint (its SHA-256 is
inside); otherwise None, and the caller loads the `.pt` with torch. Write or refresh a bundle after changing a
checkpoint:

    python -m models.runtime models/weights/hitcnn.pt [more.pt ...]

The bundle's network gives the checkpoint's logits to ~1e-6 (checked when it is written).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

BUNDLE_SUFFIX = ".onnx.npz"


@dataclass(frozen=True)
class NetworkConfig:
    """What the engine reads of a network's shape (the fields of models.cnn.HitCNNConfig it uses)."""

    n_mels: int
    frames_before: int
    frames_after: int
    n_classes: int


class OnnxNetwork:
    """A drum-hit network in ONNX Runtime: `run_numpy` maps (batch, n_mels, n_frames) float32 windows to (batch,
    n_classes) logits. One thread by default (live input: no thread may wait on another within a block); files
    may give it more, for the batches of onsets they classify at once."""

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
        if not spinning:  # two sessions take turns: a pool that spins idle after its run would starve the other's
            # (bench/speed.py on 2 cores, the gated six networks: median 7.4 s with spinning, 4.2 s without)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])

    def eval(self) -> "OnnxNetwork":
        return self

    def run_numpy(self, windows: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"windows": np.ascontiguousarray(windows, dtype=np.float32)})[0]

    def run_numpy_with_embedding(self, windows: np.ndarray) -> tuple:
        """(logits, embedding), as HitCNN.forward_with_embedding."""
        if "embedding" not in {o.name for o in self.session.get_outputs()}:
            raise ValueError("this ONNX network has no 'embedding' output: write its bundle again "
                             "(python -m models.runtime CHECKPOINT)")
        logits, embedding = self.session.run(["logits", "embedding"],
                                             {"windows": np.ascontiguousarray(windows, dtype=np.float32)})
        return logits, embedding

    @property
    def has_gate(self) -> bool:
        return self.gate is not None

    def run_gate(self, windows: np.ndarray) -> np.ndarray:
        """The gate member's logits (an ensemble's bundle only), as HitEnsemble.gate_logits."""
        if self.gate_session is None:  # the first gated batch: both sessions without idle spinning from now on
            self.session = self._session(self.onnx, spinning=False)
            self.gate_session = self._session(self.gate, spinning=False)
        return self.gate_session.run(["logits"], {"windows": np.ascontiguousarray(windows, dtype=np.float32)})[0]


@dataclass
class Checkpoint:
    """Everything needed to run a trained model, in one file (nanoGPT style). `model` is a models.cnn.HitCNN (a
    `.pt` loaded by models.cnn.load_checkpoint) or an OnnxNetwork (a bundle loaded by load_bundle)."""

    model: object
    labels: list
    feature_params: dict
    onset_params: dict = field(default_factory=dict)
    mel_basis: object = None  # (n_mels, n_fft//2+1) array, so inference needs no librosa
    thresholds: list = field(default_factory=list)  # per-class decision thresholds
    onset_offset_frames: float = 0.0  # true onset = onset frame end - this many frames
    extra: dict = field(default_factory=dict)  # training record: data, device, time, scores


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


def write_bundle(checkpoint_path: str | Path) -> Path:
    """Write the bundle of a `.pt` checkpoint beside it; checks that its logits match torch's."""
    import torch

    from .cnn import load_checkpoint

    ckpt = load_checkpoint(checkpoint_path)
    cfg = ckpt.model.config
    config = NetworkConfig(cfg.n_mels, cfg.frames_before, cfg.frames_after, cfg.n_classes)
    onnx = onnx_bytes(ckpt.model)
    gate = onnx_bytes(ckpt.model, gate=True) if hasattr(ckpt.model, "gate_logits") else None
    shape = (8, cfg.n_mels, cfg.frames_before + 1 + cfg.frames_after)
    windows = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 2 + 1
    with torch.inference_mode():
        reference, reference_embedding = (t.numpy() for t in ckpt.model.forward_with_embedding(windows))
        reference_gate = ckpt.model.gate_logits(windows).numpy() if gate is not None else None
    network = OnnxNetwork(onnx, config, gate=gate)
    got, got_embedding = network.run_numpy_with_embedding(windows.numpy())
    if gate is not None and not np.allclose(network.run_gate(windows.numpy()), reference_gate, atol=1e-4):
        raise RuntimeError("ONNX Runtime's gate logits differ from torch's")
    if not np.allclose(got, reference, atol=1e-4):
        raise RuntimeError(f"ONNX Runtime's logits differ from torch's by {np.abs(got - reference).max():.2g}")
    if not np.allclose(got_embedding, reference_embedding, atol=1e-4):
        raise RuntimeError("ONNX Runtime's embedding differs from torch's by "
                           f"{np.abs(got_embedding - reference_embedding).max():.2g}")
    meta = {
        "source_sha256": file_sha256(checkpoint_path),
        "config": asdict(config),
        "labels": list(ckpt.labels),
        "feature_params": dict(ckpt.feature_params),
        "onset_params": dict(ckpt.onset_params),
        "thresholds": [float(t) for t in ckpt.thresholds],
        "onset_offset_frames": float(ckpt.onset_offset_frames),
        "extra": ckpt.extra,
    }
    out = bundle_path(checkpoint_path)
    with open(out, "wb") as f:
        np.savez_compressed(f, onnx=np.frombuffer(onnx, np.uint8), meta=np.array(json.dumps(meta, default=str)),
                            mel_basis=np.zeros(0) if ckpt.mel_basis is None else np.asarray(ckpt.mel_basis, np.float64),
                            **({} if gate is None else {"gate": np.frombuffer(gate, np.uint8)}))
    return out


def load_bundle(checkpoint_path: str | Path, threads: int = 1) -> Checkpoint | None:
    """The bundle beside `checkpoint_path` if it was written from this very file, else None (no bundle, a stale
    one, an unreadable one, or no ONNX Runtime). `threads`: ONNX Runtime's threads for the network."""
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
        network = OnnxNetwork(onnx, NetworkConfig(**meta["config"]), threads=threads, gate=gate)
    except Exception:  # a damaged bundle, or onnxruntime missing: the .pt is the truth
        return None
    return Checkpoint(
        model=network,
        labels=meta["labels"],
        feature_params=meta["feature_params"],
        onset_params=meta["onset_params"],
        mel_basis=basis if basis.size else None,
        thresholds=meta["thresholds"],
        onset_offset_frames=meta["onset_offset_frames"],
        extra=meta["extra"],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.runtime", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help=".pt checkpoints to write bundles of")
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        out = write_bundle(path)
        print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
