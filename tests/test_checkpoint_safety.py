"""Checkpoints that cannot be used are one line, and checkpoints are written whole or not at all (issue 29, items 8
and 12): every field of a .pt and of its ONNX bundle is checked at load (models.cnn.load_checkpoint,
models.runtime.load_bundle: CheckpointError naming the file, the field, its value and what was expected); an
interrupted save leaves the old file byte for byte; `drumscribe train` refuses bad data and config files in one line
before any work, and never writes over the shipped model by default."""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH
from drumscribe.models.cnn import CheckpointError, load_checkpoint, save_checkpoint
from drumscribe.models.runtime import bundle_path, load_bundle
from drumscribe.realtime.engine import check_checkpoint


@pytest.fixture(scope="module")
def live_raw() -> dict:
    """The shipped small model's record, as torch.load reads it (each case alters one field of a copy)."""
    return torch.load(LIVE_MODEL_PATH, map_location="cpu", weights_only=True)


def _set(key, value):
    return lambda raw: {**raw, key: value}


def _set_in(key, inner, value):
    return lambda raw: {**raw, key: {**raw[key], inner: value}}


def _drop_weight(raw):
    state = dict(raw["state_dict"])
    del state["head.2.bias"]
    return {**raw, "state_dict": state}


def _nan_weight(raw):
    state = dict(raw["state_dict"])
    state["head.2.bias"] = torch.full_like(state["head.2.bias"], math.nan)
    return {**raw, "state_dict": state}


BROKEN = [  # (case, how the record is altered, what the one line must name)
    ("thresholds-string", _set("thresholds", "x"), "field 'thresholds' is 'x'"),
    ("thresholds-short", _set("thresholds", [0.5, 0.5, 0.5]), "field 'thresholds'"),
    ("thresholds-long", _set("thresholds", [0.5] * 12), "field 'thresholds'"),
    ("thresholds-nan", _set("thresholds", [math.nan] * 11), "field 'thresholds'"),
    ("thresholds-inf", _set("thresholds", [0.5] * 10 + [math.inf]), "field 'thresholds'"),
    ("thresholds-above-1", _set("thresholds", [1.5] * 11), "field 'thresholds'"),
    ("labels-empty", _set("labels", []), "field 'labels' is []"),
    ("labels-string", _set("labels", "kick"), "field 'labels'"),
    ("labels-repeated", _set("labels", ["kick"] * 11), "field 'labels'"),
    ("labels-not-names", _set("labels", list(range(11))), "field 'labels'"),
    ("labels-missing", lambda raw: {k: v for k, v in raw.items() if k != "labels"}, "field 'labels' is None"),
    ("feature-params-string", _set("feature_params", "x"), "field 'feature_params' is 'x'"),
    ("feature-params-empty", _set("feature_params", {}), "field 'feature_params.sample_rate_hz'"),
    ("feature-hop-zero", _set_in("feature_params", "hop_samples", 0), "field 'feature_params.hop_samples' is 0"),
    ("feature-hop-text", _set_in("feature_params", "hop_samples", "128"), "field 'feature_params.hop_samples'"),
    ("feature-hop-above-fft", _set_in("feature_params", "hop_samples", 4096), "at most n_fft"),
    ("feature-mels-not-the-network", _set_in("feature_params", "n_mels", 64), "field 'feature_params.n_mels' is 64"),
    ("feature-gain-nan", _set_in("feature_params", "log_gain", math.nan), "field 'feature_params.log_gain'"),
    ("onset-params-string", _set("onset_params", "x"), "field 'onset_params' is 'x'"),
    ("onset-params-list", _set("onset_params", [1, 2]), "field 'onset_params'"),
    ("onset-threshold-text", _set_in("onset_params", "threshold", "low"), "field 'onset_params.threshold'"),
    ("onset-threshold-nan", _set_in("onset_params", "threshold", math.nan), "field 'onset_params.threshold'"),
    ("onset-offset-inf", _set("onset_offset_frames", math.inf), "field 'onset_offset_frames'"),
    ("onset-offset-text", _set("onset_offset_frames", "2"), "field 'onset_offset_frames'"),
    ("extra-list", _set("extra", [1]), "field 'extra'"),
    ("mel-basis-shape", _set("mel_basis", torch.zeros(3, 3)), "field 'mel_basis' is an array of shape (3, 3)"),
    ("mel-basis-nan", lambda raw: {**raw, "mel_basis": raw["mel_basis"] * math.nan}, "field 'mel_basis'"),
    ("model-config-string", _set("model_config", "x"), "field 'model_config' is 'x'"),
    ("model-config-missing", lambda raw: {k: v for k, v in raw.items() if k != "model_config"},
     "field 'model_config' is missing"),
    ("model-config-unknown-key", _set_in("model_config", "depth", 3), "field 'model_config'"),
    ("model-config-zero-mels", _set_in("model_config", "n_mels", 0), "field 'model_config.n_mels' is 0"),
    ("model-config-huge", _set_in("model_config", "hidden", 10**9), "field 'model_config.hidden'"),
    ("model-config-channels", _set_in("model_config", "channels", []), "field 'model_config.channels'"),
    ("model-config-other-network", _set_in("model_config", "hidden", 64), "weight 'head.2.bias'"),
    ("members-one", _set("member_configs", [{}]), "field 'member_configs'"),
    ("state-dict-missing-weight", _drop_weight, "weight 'head.2.bias' is missing"),
    ("state-dict-nan-weight", _nan_weight, "weight 'head.2.bias' holds NaN"),
    ("state-dict-string", _set("state_dict", "x"), "field 'state_dict'"),
    ("one-shot-model", _set("kind", "drumscribe-oneshot"), "one-shot sample classifier"),
]


def assert_one_line(message: str, *needles) -> None:
    assert "\n" not in message and len(message) < 400, message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("alter, needle", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_a_broken_checkpoint_is_one_line_naming_the_field(live_raw, tmp_path, alter, needle):
    path = tmp_path / "bad.pt"
    torch.save(alter(live_raw), path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert_one_line(str(error.value), f"model file '{path}'", needle)


@pytest.mark.parametrize("content, needle", [
    (b"", "is not a drumscribe checkpoint"),
    (b"just some text\n", "is not a drumscribe checkpoint"),
    (None, "holds a list"),
])
def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path, content, needle):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert_one_line(str(error.value), needle)


def test_the_shipped_checkpoints_pass_every_check():
    """The checks refuse nothing that is right: both shipped models, their bundles, and a checkpoint saved again."""
    for path in (DEFAULT_MODEL_PATH, LIVE_MODEL_PATH):
        ckpt = load_checkpoint(path)
        assert len(ckpt.labels) == len(ckpt.thresholds) == ckpt.model.config.n_classes
        bundle = load_bundle(path)
        assert bundle is not None and bundle.labels == ckpt.labels
        np.testing.assert_allclose(bundle.thresholds, ckpt.thresholds, atol=1e-12)


def _bundle_beside(tmp_path, alter_meta=None, mel_basis=None) -> Path:
    """A copy of the shipped live model and its bundle (still its bundle: the .pt is the same bytes), with the
    bundle's record altered by `alter_meta`."""
    pt = tmp_path / "live.pt"
    shutil.copy(LIVE_MODEL_PATH, pt)
    with np.load(bundle_path(LIVE_MODEL_PATH), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    if alter_meta is not None:
        meta = alter_meta(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    if mel_basis is not None:
        arrays["mel_basis"] = mel_basis
    np.savez_compressed(bundle_path(pt), **arrays)
    return pt


BROKEN_BUNDLES = [
    ("thresholds-string", lambda m: {**m, "thresholds": "x"}, None, "field 'thresholds' is 'x'"),
    ("thresholds-short", lambda m: {**m, "thresholds": [0.5]}, None, "field 'thresholds'"),
    ("labels-empty", lambda m: {**m, "labels": []}, None, "field 'labels' is []"),
    ("feature-params-string", lambda m: {**m, "feature_params": "x"}, None, "field 'feature_params'"),
    ("feature-hop-zero", lambda m: {**m, "feature_params": {**m["feature_params"], "hop_samples": 0}}, None,
     "field 'feature_params.hop_samples'"),
    ("onset-params-string", lambda m: {**m, "onset_params": "x"}, None, "field 'onset_params'"),
    ("offset-text", lambda m: {**m, "onset_offset_frames": "x"}, None, "field 'onset_offset_frames'"),
    ("extra-list", lambda m: {**m, "extra": []}, None, "field 'extra'"),
    ("config-string", lambda m: {**m, "config": "x"}, None, "field 'config'"),
    ("config-zero-classes", lambda m: {**m, "config": {**m["config"], "n_classes": 0}}, None, "field 'config'"),
    ("config-missing", lambda m: {k: v for k, v in m.items() if k != "config"}, None, "field 'config'"),
    ("mel-basis-shape", None, np.ones((2, 2)), "field 'mel_basis'"),
]


@pytest.mark.parametrize("alter, basis, needle", [case[1:] for case in BROKEN_BUNDLES],
                         ids=[case[0] for case in BROKEN_BUNDLES])
def test_a_broken_bundle_of_this_very_checkpoint_is_one_line(tmp_path, alter, basis, needle):
    """The torch-free path: a bundle written from this .pt (its SHA-256 matches) whose record is wrong raises
    CheckpointError, the one type the command line catches; it is not silently replaced by the .pt."""
    pt = _bundle_beside(tmp_path, alter, basis)
    with pytest.raises(CheckpointError) as error:
        load_bundle(pt)
    assert_one_line(str(error.value), f"model bundle '{bundle_path(pt)}'", needle)


def test_an_untouched_copy_of_the_bundle_loads_and_a_stale_or_damaged_one_is_passed_over(tmp_path):
    pt = _bundle_beside(tmp_path)
    assert load_bundle(pt) is not None
    bundle_path(pt).write_bytes(b"not a bundle")  # damaged: the .pt is the truth
    assert load_bundle(pt) is None
    pt = _bundle_beside(tmp_path, lambda m: {**m, "source_sha256": "0" * 64, "thresholds": "x"})
    assert load_bundle(pt) is None  # another file's bundle (stale): its fields are not this model's


ENGINE_BROKEN = [
    ("unknown-label", lambda raw: {**raw, "labels": ["cowbell", *raw["labels"][1:]]}, "'cowbell'",
     lambda m: {**m, "labels": ["cowbell", *m["labels"][1:]]}),
]
RECORD_BROKEN = [  # the typed records (models.params): the loaders check them themselves, with or without a check
    ("unknown-onset-key", _set_in("onset_params", "sparkle", 1), "field 'onset_params'",
     lambda m: {**m, "onset_params": {**m["onset_params"], "sparkle": 1}}),
    ("even-max-bins", _set_in("onset_params", "max_bins", 2), "max_bins 2",
     lambda m: {**m, "onset_params": {**m["onset_params"], "max_bins": 2}}),
    ("unknown-feature-key", _set_in("feature_params", "sparkle", 1), "field 'feature_params'",
     lambda m: {**m, "feature_params": {**m["feature_params"], "sparkle": 1}}),
]


@pytest.mark.parametrize("alter, needle, alter_meta", [case[1:] for case in ENGINE_BROKEN],
                         ids=[case[0] for case in ENGINE_BROKEN])
def test_the_callers_check_is_a_checkpoint_error_in_both_loaders(live_raw, tmp_path, alter, needle, alter_meta):
    path = tmp_path / "bad.pt"
    torch.save(alter(live_raw), path)
    load_checkpoint(path)  # models/ cannot know the drums or the engine's settings ...
    with pytest.raises(CheckpointError) as error:  # ... the caller's check does, and it is one line too
        load_checkpoint(path, check=check_checkpoint)
    assert_one_line(str(error.value), f"model file '{path}'", needle)
    pt = _bundle_beside(tmp_path, alter_meta)
    assert load_bundle(pt) is not None
    with pytest.raises(CheckpointError) as error:
        load_bundle(pt, check=check_checkpoint)
    assert_one_line(str(error.value), f"model bundle '{bundle_path(pt)}'", needle)
    assert load_checkpoint(LIVE_MODEL_PATH, check=check_checkpoint).labels == live_raw["labels"]


@pytest.mark.parametrize("alter, needle, alter_meta", [case[1:] for case in RECORD_BROKEN],
                         ids=[case[0] for case in RECORD_BROKEN])
@pytest.mark.parametrize("check", [None, check_checkpoint], ids=["no-check", "engine-check"])
def test_a_settings_record_that_does_not_fit_is_a_checkpoint_error_in_both_loaders(live_raw, tmp_path, alter, needle,
                                                                                   alter_meta, check):
    path = tmp_path / "bad.pt"
    torch.save(alter(live_raw), path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, check=check)
    assert_one_line(str(error.value), f"model file '{path}'", needle)
    pt = _bundle_beside(tmp_path, alter_meta)
    with pytest.raises(CheckpointError) as error:
        load_bundle(pt, check=check)
    assert_one_line(str(error.value), f"model bundle '{bundle_path(pt)}'", needle)


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory) -> Path:
    import soundfile as sf

    path = tmp_path_factory.mktemp("audio") / "noise.wav"
    sf.write(str(path), (0.1 * np.random.default_rng(0).standard_normal(48000)).astype(np.float32), 48000)
    return path


@pytest.mark.parametrize("case", ["thresholds-string", "labels-empty", "feature-params-string", "onset-params-string",
                                  "thresholds-nan", "model-config-string", "state-dict-missing-weight"])
def test_transcribe_with_a_broken_checkpoint_is_one_line_and_exit_1(live_raw, short_wav, tmp_path, capsys, case):
    from drumscribe.cli import main

    alter, needle = next(c[1:] for c in BROKEN if c[0] == case)
    model, out = tmp_path / "bad.pt", tmp_path / "out.mid"
    torch.save(alter(live_raw), model)
    code = main(["transcribe", str(short_wav), "-o", str(out), "--model", str(model), "--no-progress"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0] and "--model" in lines[0]
    assert not out.exists()


# -- writes: whole or not at all -----------------------------------------------------------------------------------


def _files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


class _Interrupted(Exception):
    pass


def _half_save(error):
    """torch.save that writes a few bytes of the file, then fails (a full disk; a Ctrl-C)."""

    def save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise error("interrupted half way")

    return save


def _save_cnn(path):
    save_checkpoint(path, load_checkpoint(LIVE_MODEL_PATH))


def _save_oneshot(path):
    from drumscribe.models.oneshot import load_checkpoint as load_oneshot
    from drumscribe.models.oneshot import save_checkpoint as save_oneshot

    save_oneshot(path, load_oneshot(Path(LIVE_MODEL_PATH).with_name("oneshot.pt")))


def _save_mask(path):
    from drumscribe.models.unmix import DrumMask, DrumMaskConfig, save_mask

    save_mask(path, DrumMask(DrumMaskConfig(channels=8, dilations=(1, 2))), {"note": "test"})


@pytest.mark.parametrize("save", [_save_cnn, _save_oneshot, _save_mask], ids=["hit-cnn", "one-shot", "drum-mask"])
@pytest.mark.parametrize("error", [_Interrupted, KeyboardInterrupt])
def test_an_interrupted_save_leaves_the_old_file_byte_for_byte(tmp_path, monkeypatch, save, error):
    path = tmp_path / "model.pt"
    path.write_bytes(b"the old checkpoint, which must survive")
    os.chmod(path, 0o640)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _half_save(error))
    with pytest.raises(error):
        save(path)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["model.pt"]  # no temporary file left behind
    monkeypatch.undo()
    save(path)  # a save that completes replaces it whole, with the old file's permissions
    assert path.read_bytes() != before and torch.load(path, weights_only=True)
    assert (path.stat().st_mode & 0o777) == 0o640 and _files(tmp_path) == ["model.pt"]


def test_a_save_writes_through_a_symlink_and_refuses_a_directory(tmp_path):
    real = tmp_path / "real.pt"
    real.write_bytes(b"old")
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    _save_cnn(link)
    assert link.is_symlink() and load_checkpoint(link).labels == load_checkpoint(LIVE_MODEL_PATH).labels
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        _save_cnn(folder)
    assert _files(folder) == [] and sorted(_files(tmp_path)) == ["folder.pt", "link.pt", "real.pt"]


def test_an_interrupted_bundle_write_leaves_the_old_bundle(tmp_path, monkeypatch):
    from drumscribe.models.export import write_bundle

    pt = _bundle_beside(tmp_path)
    before = bundle_path(pt).read_bytes()

    def half(f, **arrays):
        f.write(b"PK\x03\x04 half a bundle")
        raise _Interrupted("disk full")

    monkeypatch.setattr(np, "savez_compressed", half)
    with pytest.raises(_Interrupted):
        write_bundle(pt)
    assert bundle_path(pt).read_bytes() == before and load_bundle(pt) is not None
    assert _files(tmp_path) == sorted([pt.name, bundle_path(pt).name])


# -- drumscribe train: bad data and config in one line, before any work; never the shipped model by default --------


def _train(capsys, *argv):
    from drumscribe.cli import main

    code = main(["train", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tiny_dataset(path: Path, windows: int = 64, seed: int = 0) -> Path:
    """A window dataset as offline.dataset writes one (random windows and labels: enough to train on)."""
    from drumscribe.realtime.drums import DRUMS
    from drumscribe.realtime.features import FeatureParams
    from drumscribe.realtime.onsets import OnsetParams

    rng = np.random.default_rng(seed)
    fp = FeatureParams()
    np.savez(path, x=rng.uniform(0, 4, (windows, 3 + 16 + 1, fp.n_mels)).astype(np.float16),
             y=(rng.random((windows, len(DRUMS))) < 0.2).astype(np.float32), labels=np.array(DRUMS),
             kits=np.array(["test:kit"]), kit=np.zeros(windows, np.int16), seconds=np.array([10.0]),
             delays=np.full(windows, 0.01), store_before=3, store_after=16, feature_params=json.dumps(fp.as_dict()),
             onset_params=json.dumps(OnsetParams().as_dict()))
    return path


@pytest.mark.parametrize("case, needle", [
    ("text-data", "is not a window dataset"),
    ("empty-data", "is not a window dataset"),
    ("npz-without-windows", "lacks"),
    ("one-array", "holds one array"),
    ("text-val", "--val"),
    ("config-not-json", "is not JSON"),
    ("config-binary", "is not a text file"),
    ("config-list", "holds a JSON list"),
    ("config-unknown-key", "key 'depth' is not one of"),
    ("config-bad-value", "key 'epochs' is \"ten\"; expected a whole number"),
    ("config-bad-list", "key 'channels'"),
    ("config-missing", "does not exist"),
    ("out-folder-missing", "does not exist"),
    ("too-few-windows", "--batch-size 256 is more than the 64 windows"),
])
def test_train_refuses_bad_data_and_config_in_one_line_before_any_work(tmp_path, capsys, monkeypatch, case, needle):
    import drumscribe.offline.train as offline_train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(offline_train, "train", lambda cfg: pytest.fail("training started"))
    data = _tiny_dataset(tmp_path / "data.npz")
    argv = ["--data", data, "--val", tmp_path / "none.npz", "--batch-size", "16"]
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes, not a dataset\n")
    if case == "text-data":
        argv[1] = text
    elif case == "empty-data":
        (tmp_path / "empty.npz").write_bytes(b"")
        argv[1] = tmp_path / "empty.npz"
    elif case == "npz-without-windows":
        np.savez(tmp_path / "other.npz", a=np.zeros(3))
        argv[1] = tmp_path / "other.npz"
    elif case == "one-array":
        np.save(tmp_path / "one.npy", np.zeros(3))
        argv[1] = tmp_path / "one.npy"
    elif case == "text-val":
        argv[3] = text
    elif case.startswith("config-"):
        config = tmp_path / "config.json"
        content = {"config-not-json": b"epochs = 8\n", "config-binary": b"\xff\xfe\x00binary",
                   "config-list": b"[8]", "config-unknown-key": b'{"depth": 3}',
                   "config-bad-value": b'{"epochs": "ten"}', "config-bad-list": b'{"channels": 16}'}.get(case)
        if content is not None:
            config.write_bytes(content)
        argv += ["--config", config]
    elif case == "out-folder-missing":
        argv += ["-o", tmp_path / "no" / "such" / "m.pt"]
    elif case == "too-few-windows":
        argv[-1] = "256"
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, _, err = _train(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("drumscribe train: ") and needle in lines[0], lines[0]
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing written or changed
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_train_defaults_to_a_new_file_and_an_interrupt_keeps_the_last_epoch(tmp_path, capsys, monkeypatch):
    """No -o: a new runs/hitcnn-<date>-<time>.pt, never the shipped model; each epoch's checkpoint is written whole,
    so a Ctrl-C in the second epoch leaves the first one's, loadable, and exit 130."""
    import drumscribe.offline.train as offline_train
    from drumscribe.offline.train import TrainConfig
    from drumscribe.train_cli import _fit_options

    assert TrainConfig().out == "" and _fit_options().get_default("out") == ""
    monkeypatch.chdir(tmp_path)
    data = _tiny_dataset(tmp_path / "data.npz")
    shipped = DEFAULT_MODEL_PATH.read_bytes()
    real_loss, calls = offline_train.focal_bce, []

    def loss(*args):
        calls.append(1)
        if len(calls) == 6:  # 4 steps an epoch: in the second epoch
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(offline_train, "focal_bce", loss)
    code, _, err = _train(capsys, "--data", data, "--val", tmp_path / "none.npz", "--batch-size", "16",
                          "--epochs", "3", "--channels", "4", "8", "--hidden", "8", "--threads", "1")
    written = list((tmp_path / "runs").iterdir())
    assert code == 130 and len(written) == 1 and written[0].name.startswith("hitcnn-"), (err, written)
    assert "holds the last finished epoch" in err and "Traceback" not in err
    ckpt = load_checkpoint(written[0])
    assert [h["epoch"] for h in ckpt.extra["history"]] == [1]
    assert DEFAULT_MODEL_PATH.read_bytes() == shipped
