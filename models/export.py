"""Writing a checkpoint's torch-free bundle (models/runtime.py reads it): the network exported to ONNX, checked
against torch, with everything else the engine needs, beside the `.pt`. A developer tool after changing a checkpoint:

    drumscribe train export models/weights/hitcnn.pt [more.pt ...]
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ._atomic import atomic_path
from .cnn import load_checkpoint
from .runtime import NetworkConfig, OnnxNetwork, bundle_path, file_sha256, onnx_bytes


def write_bundle(checkpoint_path: str | Path) -> Path:
    """Write the bundle of a `.pt` checkpoint beside it; checks that its logits match torch's."""
    import torch

    ckpt = load_checkpoint(checkpoint_path)
    cfg = ckpt.model.config
    config = NetworkConfig(cfg.n_mels, cfg.frames_before, cfg.frames_after, cfg.n_classes)
    onnx = onnx_bytes(ckpt.model)
    gate = onnx_bytes(ckpt.model, gate=True) if ckpt.model.has_gate else None
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
        "feature_params": ckpt.feature_params.as_dict(),
        "onset_params": ckpt.onset_params.as_dict(),
        "thresholds": [float(t) for t in ckpt.thresholds],
        "onset_offset_frames": float(ckpt.onset_offset_frames),
        "extra": ckpt.extra,
    }
    out = bundle_path(checkpoint_path)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:  # whole or not at all, as the checkpoint beside it
        np.savez_compressed(f, onnx=np.frombuffer(onnx, np.uint8), meta=np.array(json.dumps(meta, default=str)),
                            mel_basis=np.zeros(0) if ckpt.mel_basis is None else np.asarray(ckpt.mel_basis, np.float64),
                            **({} if gate is None else {"gate": np.frombuffer(gate, np.uint8)}))
    return out
