"""The typed checkpoint records (models.params) and the one network protocol (models.runtime.Network) that the
torch, TorchScript and ONNX back ends implement."""
from __future__ import annotations

import numpy as np
import pytest

from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH
from drumscribe.models.params import FeatureParams, OnsetParams
from drumscribe.models.runtime import Checkpoint, Network, OnnxNetwork, load_bundle
from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.drums import DRUMS

torch = pytest.importorskip("torch")
from drumscribe.models.cnn import (  # noqa: E402
    HitCNN,
    HitCNNConfig,
    HitEnsemble,
    TorchScriptNetwork,
    freeze_module,
    load_checkpoint,
)


def _windows(config, n: int = 5) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.ascontiguousarray(rng.normal(2.0, 1.0, (n, config.n_mels, config.n_frames)), dtype=np.float32)


def test_the_realtime_names_are_the_records_the_checkpoint_holds():
    from drumscribe.realtime.features import FeatureParams as RealtimeFeatures
    from drumscribe.realtime.onsets import OnsetParams as RealtimeOnsets

    assert RealtimeFeatures is FeatureParams and RealtimeOnsets is OnsetParams
    assert FeatureParams().sample_rate_hz == SAMPLE_RATE_HZ


@pytest.mark.parametrize("path", [DEFAULT_MODEL_PATH, LIVE_MODEL_PATH], ids=["offline", "live"])
def test_the_shipped_files_load_as_typed_records_with_their_stored_values(path):
    raw = torch.load(path, map_location="cpu", weights_only=True)
    for checkpoint in (load_checkpoint(path), load_bundle(path)):
        assert isinstance(checkpoint.model, Network)
        assert isinstance(checkpoint.feature_params, FeatureParams)
        assert isinstance(checkpoint.onset_params, OnsetParams)
        assert checkpoint.feature_params.as_dict() == raw["feature_params"]  # every field is stored
        stored = raw["onset_params"]  # fields a file lacks take their defaults
        assert checkpoint.onset_params.as_dict() == {**OnsetParams().as_dict(), **stored}
        assert checkpoint.onset_params.rising == stored.get("rising", False)


def test_a_record_reads_as_the_mapping_the_files_store():
    fp = FeatureParams(hop_samples=128, n_fft=512, n_mels=48)
    assert fp["hop_samples"] == 128 and dict(fp) == fp.as_dict() and {**fp}["n_mels"] == 48
    assert fp.get("nothing", 7) == 7 and len(fp) == len(fp.as_dict())
    with pytest.raises(KeyError):
        fp["nothing"]
    assert FeatureParams.from_dict(fp.as_dict()) == fp and FeatureParams.from_dict(fp) is fp


@pytest.mark.parametrize("raw, error", [({"sparkle": 1}, TypeError), ({"hop_samples": 0}, ValueError),
                                        ("x", TypeError), ([1, 2], TypeError)])
def test_a_stored_dict_that_is_not_the_record_is_refused(raw, error):
    with pytest.raises(error):
        FeatureParams.from_dict(raw)


def test_a_checkpoint_given_dicts_holds_records_also_when_they_are_set_later():
    model = HitCNN(HitCNNConfig(n_classes=len(DRUMS)))
    checkpoint = Checkpoint(model=model, labels=list(DRUMS), feature_params=FeatureParams().as_dict(),
                            onset_params={"threshold": 0.1})
    assert isinstance(checkpoint.feature_params, FeatureParams)
    assert checkpoint.onset_params == OnsetParams(threshold=0.1)
    checkpoint.onset_params = {**checkpoint.onset_params, "band_from_mel": 40}
    assert checkpoint.onset_params == OnsetParams(threshold=0.1, band_from_mel=40)
    with pytest.raises(ValueError):
        checkpoint.onset_params = {"max_bins": 2}


def test_each_back_end_runs_the_same_network_through_run():
    checkpoint = load_checkpoint(LIVE_MODEL_PATH)
    module = checkpoint.model
    x = _windows(module.config)
    with torch.inference_mode():
        want, want_embedding = (t.numpy() for t in module.forward_with_embedding(torch.from_numpy(x)))
    logits, embedding = module.run(x, embedding=True)
    np.testing.assert_allclose(logits, want, atol=1e-6)
    np.testing.assert_allclose(embedding, want_embedding, atol=1e-6)
    assert module.run(x)[1] is None and not module.has_gate
    assert module.has_embedding
    for path in (DEFAULT_MODEL_PATH, LIVE_MODEL_PATH):  # the shipped bundles: the live one has no embedding output
        bundle, torch_model = load_bundle(path), load_checkpoint(path).model
        assert isinstance(bundle.model, OnnxNetwork)
        y = _windows(torch_model.config)
        np.testing.assert_allclose(bundle.model.run(y)[0], torch_model.run(y)[0], atol=1e-4)
        assert bundle.model.has_embedding == (path == DEFAULT_MODEL_PATH)
        if bundle.model.has_embedding:
            np.testing.assert_allclose(bundle.model.run(y, embedding=True)[1], torch_model.run(y, embedding=True)[1],
                                       atol=1e-4)
        else:
            with pytest.raises(ValueError):
                bundle.model.run(y, embedding=True)
    frozen = freeze_module(module)
    assert frozen is not None
    script = TorchScriptNetwork(frozen, module.config)
    assert not script.has_embedding and not script.has_gate
    np.testing.assert_allclose(script.run(x)[0], want, atol=1e-4)
    with pytest.raises(ValueError):
        script.run(x, embedding=True)
    with pytest.raises(ValueError):  # no gate member: one network
        module.run_gate(x)


def test_for_live_is_chosen_by_the_back_end():
    checkpoint = load_checkpoint(LIVE_MODEL_PATH)
    live = checkpoint.model.for_live()
    assert isinstance(live, OnnxNetwork) and live is not checkpoint.model  # ONNX Runtime where it works
    x = _windows(checkpoint.model.config, n=1)
    np.testing.assert_allclose(live.run(x)[0], checkpoint.model.run(x)[0], atol=1e-4)
    bundle = load_bundle(LIVE_MODEL_PATH)
    assert bundle.model.for_live() is bundle.model  # already the fastest


def test_an_ensemble_has_a_gate_through_the_protocol():
    config = HitCNNConfig(n_classes=len(DRUMS), channels=(4, 8), hidden=16)
    ensemble = HitEnsemble([config, config]).eval()
    x = _windows(ensemble.config)
    assert ensemble.has_gate
    with torch.inference_mode():
        want = ensemble.gate_logits(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ensemble.run_gate(x), want, atol=1e-6)


def test_the_decoding_settings_and_the_training_record_are_apart():
    from drumscribe.models.params import DECODING_KEYS, DecodingParams, VelocityParams

    raw = torch.load(DEFAULT_MODEL_PATH, map_location="cpu", weights_only=True)
    checkpoint = load_checkpoint(DEFAULT_MODEL_PATH)
    decoding = checkpoint.decoding
    assert isinstance(decoding, DecodingParams) and isinstance(decoding.velocity, VelocityParams)
    assert decoding.thresholds == pytest.approx(raw["thresholds"])
    assert decoding.onset_offset_frames == pytest.approx(raw["onset_offset_frames"])
    assert decoding.context == raw["extra"]["context"]
    stored = raw["extra"]["velocity"]
    assert (decoding.velocity.frames, decoding.velocity.reduce) == (stored["frames"], stored["reduce"])
    assert decoding.velocity.offsets_db == stored["offsets_db"]
    assert set(checkpoint.training) == set(raw["extra"]) - set(DECODING_KEYS)
    assert "data" in checkpoint.training and "context" not in checkpoint.training
    with pytest.raises(TypeError):
        checkpoint.training["data"] = None  # read-only: the stored `extra` is what a writer changes
    live = load_checkpoint(LIVE_MODEL_PATH).decoding
    assert live.context is None and live.velocity == VelocityParams()  # none stored: the engine's defaults


@pytest.mark.parametrize("velocity, needle", [({"reduce": "mean"}, "'mean'"), ({"frames": 0}, "frames 0"),
                                              ({"frames": 2.5}, "frames 2.5"), ({"offsets_db": {"kick": "loud"}},
                                                                                 "offsets_db"), ("x", "str")])
def test_a_stored_velocity_measure_that_does_not_fit_is_one_line_at_load(tmp_path, velocity, needle):
    from drumscribe.models.runtime import CheckpointError

    raw = torch.load(LIVE_MODEL_PATH, map_location="cpu", weights_only=True)
    path = tmp_path / "bad.pt"
    torch.save({**raw, "extra": {**raw["extra"], "velocity": velocity}}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    text = str(error.value)
    assert "\n" not in text and f"model file '{path}'" in text and "extra 'velocity'" in text and needle in text


def test_one_error_for_every_checkpoint_file():
    from drumscribe.models import oneshot, runtime

    assert oneshot.CheckpointError is runtime.CheckpointError
