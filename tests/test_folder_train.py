"""drumscribe train --folders: a generated three-class set trains to >= 95% test accuracy, and the checkpoint works
with classify and sort. The full-size run and its wall time: bench/folder_train.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from drumscribe import cli
from drumscribe.offline import sorting
from drumscribe.offline.oneshots import SYNTH_CLASSES, write_synthetic_set


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("three") / "data"
    write_synthetic_set(folder, files_per_class=40, seed=11)
    (folder / "_unsure").mkdir()  # a sort output's special folders are not classes
    return folder


@pytest.fixture(scope="module")
def trained(three_classes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "three.pt"
    code = cli.main(["train", "--folders", str(three_classes), "--epochs", "6", "--augment-copies", "1",
                     "--device", "auto", "-o", str(out)])
    assert code == 0
    return out


@pytest.mark.slow
def test_train_folders_reaches_95_percent(trained):
    report = json.loads(trained.with_suffix(".report.json").read_text())
    assert report["labels"] == sorted(SYNTH_CLASSES)
    assert report["split"] == {"fractions": [0.64, 0.16, 0.2], "seed": 0, "train_files": 78,
                               "validation_files": 18, "test_files": 24}
    assert report["test_accuracy"] >= 0.95
    assert len(report["history"]) == 6 and report["test"]["confusion"]
    for suffix in (".curves.png", ".confusion.png"):
        assert trained.with_suffix(suffix).stat().st_size > 1000


@pytest.mark.slow
def test_checkpoint_works_with_classify_and_sort(trained, three_classes, tmp_path, capsys):
    files = sorted(three_classes.rglob("*.wav"))[::20]
    assert cli.main(["classify", "--json", "--model", str(trained), *map(str, files)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in results] == [f.relative_to(three_classes).parts[0] for f in files]

    out = tmp_path / "sorted"
    assert cli.main(["sort", str(three_classes), str(out), "--model", str(trained), "--no-progress"]) == 0
    rows = sorting.read_manifest(out / sorting.MANIFEST_NAME)
    right = [Path(r["source"]).relative_to(three_classes).parts[0] == Path(r["destination"]).parent.name
             for r in rows]
    assert len(rows) == 120 and sum(right) / len(rows) >= 0.95


@pytest.mark.slow
def test_members_average_their_probabilities(three_classes, tmp_path):
    """--members 2: an ensemble checkpoint whose output is the mean of its members' probabilities, member 1 the
    network a one-member run with the same seed trains, member 2 a different one."""
    import numpy as np
    import torch

    from drumscribe.models.oneshot import OneShotEnsemble, load_checkpoint

    args = ["train", "--folders", str(three_classes), "--epochs", "2", "--augment-copies", "0"]
    assert cli.main([*args, "--members", "2", "-o", str(tmp_path / "two.pt")]) == 0
    assert cli.main([*args, "-o", str(tmp_path / "one.pt")]) == 0
    two, one = load_checkpoint(tmp_path / "two.pt"), load_checkpoint(tmp_path / "one.pt")
    assert isinstance(two.model, OneShotEnsemble) and len(two.model.members) == 2
    report = json.loads((tmp_path / "two.report.json").read_text())
    assert [m["seed"] for m in report["members"]] == [0, 1]

    images = torch.from_numpy(np.random.default_rng(3).normal(-4, 2, (5, 64, 100)).astype(np.float32))
    with torch.inference_mode():
        each = [torch.softmax(m(images), dim=1) for m in two.model.members]
        mean = torch.softmax(two.model(images), dim=1)
        alone = torch.softmax(one.model(images), dim=1)
    assert torch.allclose(mean, (each[0] + each[1]) / 2, atol=1e-5)
    assert torch.allclose(each[0], alone, atol=1e-5)
    assert not torch.allclose(each[0], each[1], atol=1e-3)


@pytest.mark.parametrize("case", ["missing", "one_class", "few_files", "out_folder_missing", "bad_epochs",
                                  "bad_members", "cache_not_ours", "cache_damaged", "cache_folder_missing"])
def test_train_folders_bad_input(case, three_classes, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "m.pt"
    needle = {"missing": "does not exist", "one_class": "expected at least 2", "few_files": "at least 5",
              "out_folder_missing": "does not exist", "bad_epochs": "--epochs",
              "bad_members": "--members 0 must be >= 1", "cache_not_ours": "is not an image cache",
              "cache_damaged": "is not an image cache", "cache_folder_missing": "--cache"}[case]
    cache = tmp_path / "images.npz"
    if case == "cache_not_ours":  # a file of the user's is refused, never trained on or written over
        cache.write_text("my notes\n")
    elif case == "cache_damaged":
        cache.write_bytes(b"PK\x03\x04 half an archive")
    elif case == "cache_folder_missing":
        cache = tmp_path / "no" / "images.npz"
    before = cache.read_bytes() if cache.is_file() else None
    if case == "missing":
        data = tmp_path / "nope"
    elif case in ("one_class", "few_files"):
        write_synthetic_set(data, files_per_class=6 if case == "one_class" else 3, seed=1)
        if case == "one_class":
            for label in SYNTH_CLASSES[1:]:
                for f in sorted((data / label).rglob("*"), reverse=True):
                    f.unlink() if f.is_file() else f.rmdir()
                (data / label).rmdir()
    else:
        data = three_classes
        if case == "out_folder_missing":
            out = tmp_path / "no" / "m.pt"
    extra = {"bad_epochs": ["--epochs", "0"], "bad_members": ["--members", "0"]}.get(case, [])
    if case.startswith("cache"):
        extra = ["--cache", str(cache)]
    code = cli.main(["train", "--folders", str(data), "-o", str(out), *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("drumscribe train: ") and needle in lines[0], lines[0]
    assert not out.exists()
    assert (cache.read_bytes() if cache.is_file() else None) == before


def test_augmented_one_shots_are_band_limited_a_quarter_of_the_time():
    """augment_oneshot: about one copy in four has nothing above its cut-off (at most 16 kHz), as a sample library
    recorded at 22.05-32 kHz or through an mp3 encoder's low-pass; the others keep their top octave."""
    import numpy as np

    from drumscribe.offline.oneshots import augment_oneshot

    sr = 48000
    noise = (np.random.default_rng(0).standard_normal(sr // 2) * np.exp(-np.arange(sr // 2) / 4000)).astype(np.float32)
    top_share = []
    for seed in range(120):
        x = augment_oneshot(noise, np.random.default_rng(seed), sample_rate_hz=sr)
        power = np.abs(np.fft.rfft(x)) ** 2
        top_share.append(power[np.fft.rfftfreq(len(x), 1 / sr) > 16500].sum() / power.sum())
    limited = np.mean(np.array(top_share) < 1e-6)
    assert 0.12 < limited < 0.4, f"{limited:.2f} of the copies have no power above 16.5 kHz"


def test_image_cache_is_not_reused_after_the_augmentation_changes(tmp_path, monkeypatch):
    """--cache keys the stored images by the files, the settings and the augmentation code itself: images made by
    an older augment_oneshot are not trained on again."""
    import numpy as np
    import soundfile as sf

    from drumscribe.offline import folder_train, oneshots

    path = tmp_path / "kick.wav"
    sf.write(path, np.zeros(4800), 48000)
    cfg = folder_train.FolderTrainConfig(folders=str(tmp_path), augment_copies=2)
    params = oneshots.OneShotParams()
    key = folder_train._cache_key([(path, 0)], cfg, params)
    assert folder_train._cache_key([(path, 0)], cfg, params) == key

    def other_augmentation(audio, rng, **kwargs):
        return audio

    monkeypatch.setattr(oneshots, "augment_oneshot", other_augmentation)
    assert folder_train._cache_key([(path, 0)], cfg, params) != key
