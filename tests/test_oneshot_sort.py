"""drumscribe classify / sort: sort never loses or overwrites a file (unreadable files, clashing names, nested
folders, a read-only destination, an interrupted run resumed, --undo restoring every move), and bad input is one
line on stderr with a non-zero exit.

The sorting tests use a one-shot checkpoint with fixed random weights (which class a file lands in does not matter
to them); the shipped model's accuracy lives in bench/oneshot_accuracy.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from drumscribe import cli
from drumscribe.offline import sorting
from drumscribe.offline.oneshots import CLASSES, class_for_gm_note, class_for_name, write_synthetic_set


@pytest.fixture(scope="session")
def oneshot_model(tmp_path_factory) -> Path:
    import torch

    from drumscribe.models.oneshot import OneShotCheckpoint, OneShotCNN, OneShotConfig, save_checkpoint
    from drumscribe.offline.oneshots import OneShotParams
    from drumscribe.realtime.features import mel_basis

    torch.manual_seed(7)
    params = OneShotParams()
    model = OneShotCNN(OneShotConfig(n_classes=len(CLASSES))).eval()
    path = tmp_path_factory.mktemp("oneshot") / "random.pt"
    save_checkpoint(path, OneShotCheckpoint(model=model, labels=list(CLASSES), feature_params=params.as_dict(),
                                            mel_basis=mel_basis(params.features), extra={"note": "random weights"}))
    return path


@pytest.fixture(scope="session")
def classifier(oneshot_model):
    import torch

    torch.set_num_threads(1)
    return sorting.SampleClassifier.from_file(oneshot_model)


@pytest.fixture(scope="session")
def hits(tmp_path_factory) -> Path:
    """Synthetic kick/snare/hihat files (wav and flac, some in deeper folders)."""
    folder = tmp_path_factory.mktemp("hits")
    write_synthetic_set(folder, files_per_class=3, seed=3)
    return folder


@pytest.fixture
def library(tmp_path, hits) -> Path:
    """A messy sample library: nested folders, the same name in several folders, unreadable and empty 'audio'
    files, a file that is not audio and a hidden folder."""
    lib = tmp_path / "library"
    files = sorted(p for p in hits.rglob("*") if p.is_file())
    for i, src in enumerate(files):
        sub = lib / ["", "drums", "drums/deep/deeper"][i % 3]
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, sub / src.name)
    for sub in ("", "drums", "drums/deep/deeper"):  # one name, three folders
        shutil.copy(files[0], lib / sub / "hit.wav")
    (lib / "broken.wav").write_bytes(b"RIFF, but not really a wave file")
    (lib / "drums" / "empty.flac").write_bytes(b"")
    sf.write(str(lib / "drums" / "silent.wav"), np.zeros(4800, np.float32), 48000)
    (lib / "drums" / "notes.txt").write_text("not audio: left alone\n")
    (lib / ".hidden").mkdir()
    shutil.copy(files[1], lib / ".hidden" / "skipped.wav")
    return lib


def snapshot(folder: Path) -> dict:
    """relative path -> sha1 of every file below folder."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def audio_files(folder: Path) -> list:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and not any(part.startswith(".")
            for part in p.relative_to(folder).parts) and p.suffix in (".wav", ".flac")]


def sorted_files(out: Path) -> list:
    return [p for p in sorted(out.rglob("*")) if p.is_file() and p.name != sorting.MANIFEST_NAME]


def check_complete(lib: Path, before: dict, out: Path, *, moved: bool) -> None:
    """Every audio file of the library lies in OUT exactly once, byte for byte, and its manifest row says where."""
    rows = sorting.current_rows(sorting.read_manifest(out / sorting.MANIFEST_NAME))
    by_source = {r["source"]: r for r in rows}
    audio = [p for p in before if Path(p).suffix in (".wav", ".flac") and not p.startswith(".hidden")]
    assert len(by_source) == len(audio)
    destinations = []
    for rel in audio:
        row = by_source[str((lib / rel).absolute())]
        dest = Path(row["destination"])
        assert hashlib.sha1(dest.read_bytes()).hexdigest() == before[rel]
        assert (lib / rel).exists() != moved
        destinations.append(dest)
    assert len(set(destinations)) == len(destinations) == len(sorted_files(out))


def test_sort_copies_every_file_once_and_keeps_names(library, tmp_path, classifier):
    before = snapshot(library)
    out = tmp_path / "sorted"
    summary = sorting.sort_folder(library, out, classifier, min_confidence=0.0)
    check_complete(library, before, out, moved=False)
    assert snapshot(library) == before  # copying leaves the library alone
    assert summary.other_files == 1 and summary.sorted == 15
    names = sorted(p.name for p in sorted_files(out))
    assert "hit.wav" in names and names.count("hit.wav") + names.count("hit_2.wav") + names.count("hit_3.wav") == 3
    unreadable = sorted(p.name for p in (out / sorting.UNREADABLE_DIR).iterdir())
    assert unreadable == ["broken.wav", "empty.flac"]
    unsure = sorted(p.name for p in (out / sorting.UNSURE_DIR).iterdir())
    assert unsure == ["silent.wav"]  # silent: no class
    rows = sorting.read_manifest(out / sorting.MANIFEST_NAME)
    assert "is not audio drumscribe can read" in next(r for r in rows if r["source"].endswith("broken.wav"))["reason"]
    assert {r["class"] for r in rows} - {""} <= set(CLASSES)
    for row in rows:
        if row["class"] and row["confidence"]:
            assert Path(row["destination"]).parent.name == row["class"]

    again = sorting.sort_folder(library, out, classifier, min_confidence=0.0)  # a re-run sorts nothing twice
    assert again.sorted == 0 and again.already_sorted == 15
    check_complete(library, before, out, moved=False)


def test_sort_never_overwrites_files_already_in_out_dir(library, tmp_path, classifier):
    out = tmp_path / "sorted"
    for label in CLASSES + (sorting.UNSURE_DIR, sorting.UNREADABLE_DIR):
        (out / label).mkdir(parents=True)
        (out / label / "hit.wav").write_bytes(b"mine")
        (out / label / "broken.wav").write_bytes(b"mine")
    sorting.sort_folder(library, out, classifier, min_confidence=0.0)
    for label in CLASSES + (sorting.UNSURE_DIR, sorting.UNREADABLE_DIR):
        assert (out / label / "hit.wav").read_bytes() == b"mine"
        assert (out / label / "broken.wav").read_bytes() == b"mine"
    assert (out / sorting.UNREADABLE_DIR / "broken_2.wav").exists()


def test_min_confidence_sends_files_to_unsure(library, tmp_path, classifier):
    out = tmp_path / "sorted"
    summary = sorting.sort_folder(library, out, classifier, min_confidence=1.0)
    assert set(summary.counts) == {sorting.UNSURE_DIR, sorting.UNREADABLE_DIR}
    reasons = [r["reason"] for r in sorting.read_manifest(out / sorting.MANIFEST_NAME)]
    assert any(r.startswith("confidence ") and r.endswith("below 1") for r in reasons)


def test_move_then_undo_restores_every_file(library, tmp_path, classifier):
    before = snapshot(library)
    out = tmp_path / "sorted"
    sorting.sort_folder(library, out, classifier, move=True, min_confidence=0.5)
    check_complete(library, before, out, moved=True)
    assert set(snapshot(library)) == {"drums/notes.txt", ".hidden/skipped.wav"}  # not audio, hidden: left alone
    summary = sorting.undo(out / sorting.MANIFEST_NAME)
    assert summary.restored == 15 and not summary.problems
    assert snapshot(library) == before
    assert not (out / sorting.MANIFEST_NAME).exists() and list(out.iterdir()) == []


def test_undo_after_sorting_unsure_files_again(library, tmp_path, classifier):
    """Files sorted from OUT_DIR/_unsure/ into OUT_DIR with a lower bar go all the way home on undo."""
    before = snapshot(library)
    out = tmp_path / "sorted"
    first = sorting.sort_folder(library, out, classifier, move=True, min_confidence=1.0)
    assert first.counts[sorting.UNSURE_DIR] == 13
    second = sorting.sort_folder(out / sorting.UNSURE_DIR, out, classifier, move=True, min_confidence=0.0)
    assert second.sorted == 12 and second.already_sorted == 1  # the silent file stays in _unsure/
    summary = sorting.undo(out / sorting.MANIFEST_NAME)
    assert summary.restored == 15 + 12 and not summary.problems
    assert snapshot(library) == before


def test_dry_run_changes_nothing(library, tmp_path, classifier):
    before = snapshot(library)
    out = tmp_path / "sorted"
    summary = sorting.sort_folder(library, out, classifier, move=True, dry_run=True, min_confidence=0.0)
    assert summary.sorted == 15 and len({r["destination"] for r in summary.planned}) == 15
    assert not out.exists() and snapshot(library) == before


@pytest.mark.parametrize("move", [False, True])
def test_interrupted_run_resumes_without_loss(library, tmp_path, classifier, move):
    before = snapshot(library)
    out = tmp_path / "sorted"

    def stop_after_five(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sorting.sort_folder(library, out, classifier, move=move, progress=stop_after_five)
    # every file is in exactly one place
    in_lib = {rel for rel in snapshot(library) if rel in before}
    in_out = [hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted_files(out)]
    assert len(in_out) == 5 and (len(in_lib) == len(before) - 5 if move else len(in_lib) == len(before))
    summary = sorting.sort_folder(library, out, classifier, move=move)
    assert summary.sorted == 10 and summary.already_sorted == (0 if move else 5)  # moved files left IN_DIR
    check_complete(library, before, out, moved=move)
    if move:
        assert sorting.undo(out / sorting.MANIFEST_NAME).restored == 15
        assert snapshot(library) == before


def test_interrupted_inside_a_file_operation(library, tmp_path, classifier, monkeypatch):
    """Ctrl-C in the middle of a copy (no half file is left) and between a move's link and unlink (finished on
    the next run)."""
    before = snapshot(library)
    out = tmp_path / "sorted"
    real_copystat, real_unlink = shutil.copystat, os.unlink
    calls = {"copystat": 0, "unlink": 0}

    def copystat(src, dst, **kw):
        calls["copystat"] += 1
        if calls["copystat"] == 3:
            raise KeyboardInterrupt
        return real_copystat(src, dst, **kw)

    monkeypatch.setattr(shutil, "copystat", copystat)
    with pytest.raises(KeyboardInterrupt):
        sorting.sort_folder(library, out, classifier)
    assert not list(out.rglob(f"*{sorting.PARTIAL_SUFFIX}"))
    assert len(sorted_files(out)) == 2
    monkeypatch.setattr(shutil, "copystat", real_copystat)
    shutil.rmtree(out)

    def unlink(path, *a, **kw):
        if Path(path).is_relative_to(library):
            calls["unlink"] += 1
            if calls["unlink"] == 4:
                raise KeyboardInterrupt
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        sorting.sort_folder(library, out, classifier, move=True)
    monkeypatch.setattr(os, "unlink", real_unlink)
    summary = sorting.sort_folder(library, out, classifier, move=True)
    assert summary.sorted == 11 and summary.already_sorted == 1  # the one whose move was cut short
    check_complete(library, before, out, moved=True)
    assert sorting.undo(out / sorting.MANIFEST_NAME).restored == 15
    assert snapshot(library) == before


def test_broken_link_is_left_in_place(library, tmp_path, classifier):
    (library / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    summary = sorting.sort_folder(library, tmp_path / "sorted", classifier, move=True)
    assert summary.sorted == 15 and [s.name for s, _ in summary.left_in_place] == ["gone.wav"]
    assert (library / "gone.wav").is_symlink()


def test_read_only_destination(library, tmp_path, classifier):
    before = snapshot(library)
    out = tmp_path / "sorted"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(sorting.SortError, match="read-only"):
            sorting.sort_folder(library, out, classifier, move=True)
    finally:
        out.chmod(0o755)
    assert list(out.iterdir()) == [] and snapshot(library) == before

    # a class folder that is read-only: the run stops at it, that file stays where it was, a re-run finishes
    (out / sorting.UNREADABLE_DIR).mkdir()
    (out / sorting.UNREADABLE_DIR).chmod(0o555)
    try:
        with pytest.raises(sorting.SortError, match="read-only"):
            sorting.sort_folder(library, out, classifier, move=True, min_confidence=0.0)
        assert (library / "broken.wav").exists()
    finally:
        (out / sorting.UNREADABLE_DIR).chmod(0o755)
    sorting.sort_folder(library, out, classifier, move=True, min_confidence=0.0)
    check_complete(library, before, out, moved=True)
    assert sorting.undo(out / sorting.MANIFEST_NAME).restored == 15
    assert snapshot(library) == before


def test_undo_never_replaces_a_file_at_the_source(library, tmp_path, classifier):
    out = tmp_path / "sorted"
    sorting.sort_folder(library, out, classifier, move=True)
    (library / "broken.wav").write_bytes(b"a new file with the old name")
    summary = sorting.undo(out / sorting.MANIFEST_NAME)
    assert summary.restored == 14 and len(summary.problems) == 1 and "exists again" in summary.problems[0]
    assert (library / "broken.wav").read_bytes() == b"a new file with the old name"
    rows = sorting.read_manifest(out / sorting.MANIFEST_NAME)  # the one left is still recorded
    assert len(rows) == 1 and Path(rows[0]["destination"]).exists()


# ---------------------------------------------------------------------------------------------------------------
# the command line: one line on stderr and a non-zero exit, never a traceback


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles, expect_code=1):
    assert code == expect_code, err
    lines = [line for line in err.splitlines() if line.strip() and "\r" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_sort_and_undo(library, tmp_path, oneshot_model, capsys, monkeypatch):
    before = snapshot(library)
    out = tmp_path / "sorted"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the progress bar shows
    code, text, err = run_cli(capsys, "sort", library, tmp_path / "copies", "--model", oneshot_model)
    assert code == 0 and "copied 15 files" in text, err
    assert "sorting" in err  # the progress bar
    code, text, err = run_cli(capsys, "sort", library, tmp_path / "copies", "--model", oneshot_model, "--no-progress")
    assert code == 0 and "copied 0 files" in text and "15 files were sorted by an earlier run" in text
    assert "sorting" not in err
    monkeypatch.undo()
    code, text, err = run_cli(capsys, "sort", library, out, "--move", "--model", oneshot_model,
                              "--min-confidence", "0.3")
    assert code == 0, err
    assert "moved 15 files" in text and "undo" in text
    code, text, err = run_cli(capsys, "sort", "--undo", out / "manifest.csv")
    assert code == 0 and "put 15 moved files back" in text, err
    assert snapshot(library) == before


@pytest.mark.parametrize("case", ["missing_in", "in_is_file", "out_inside_in", "out_is_in", "read_only_out",
                                  "bad_model", "not_oneshot_model", "no_audio", "undo_missing", "undo_not_manifest",
                                  "bad_confidence", "one_dir"])
def test_cli_sort_bad_input(case, library, tmp_path, oneshot_model, checkpoint_path, capsys):
    out = tmp_path / "out"
    model = oneshot_model
    args = ["sort", library, out]
    needle = ""
    if case == "missing_in":
        args, needle = ["sort", tmp_path / "nope", out], "does not exist"
    elif case == "in_is_file":
        args, needle = ["sort", library / "broken.wav", out], "is not a folder"
    elif case == "out_inside_in":
        args, needle = ["sort", library, library / "sorted"], "inside IN_DIR"
    elif case == "out_is_in":
        args, needle = ["sort", library, library], "inside IN_DIR"
    elif case == "read_only_out":
        out.mkdir()
        out.chmod(0o500)
        needle = "read-only"
    elif case == "bad_model":
        model = library / "drums" / "notes.txt"
        needle = "--model"
    elif case == "not_oneshot_model":
        model, needle = checkpoint_path, "not a one-shot classifier checkpoint"
    elif case == "no_audio":
        (tmp_path / "empty").mkdir()
        args, needle = ["sort", tmp_path / "empty", out], "no audio files"
    elif case == "undo_missing":
        args, needle = ["sort", "--undo", out / "manifest.csv"], "does not exist"
    elif case == "undo_not_manifest":
        args, needle = ["sort", "--undo", library / "drums" / "notes.txt"], "not a sort manifest"
    elif case == "bad_confidence":
        args, needle = ["sort", library, out, "--min-confidence", "1.5"], "not in 0-1"
    elif case == "one_dir":
        args, needle = ["sort", library], "expected IN_DIR and OUT_DIR"
    before = snapshot(library)
    try:
        undo = "--undo" in args  # --model does not go with --undo
        code, _, err = run_cli(capsys, *args, *([] if undo else ["--model", model]), "--no-progress")
    finally:
        if out.exists():
            out.chmod(0o755)
    assert_one_line_error(code, err, "drumscribe sort", needle, expect_code=2 if case == "one_dir" else 1)
    assert snapshot(library) == before


def test_cli_classify(hits, oneshot_model, capsys):
    files = audio_files(hits)[:3]
    code, text, _ = run_cli(capsys, "classify", *files, "--model", oneshot_model)
    assert code == 0 and len(text.splitlines()) == 3
    code, text, _ = run_cli(capsys, "classify", *files, "--json", "--model", oneshot_model)
    results = json.loads(text)
    assert code == 0 and [r["file"] for r in results] == [str(f) for f in files]
    for r in results:
        assert r["class"] in CLASSES and abs(sum(r["probabilities"].values()) - 1) < 1e-3
        assert r["confidence"] == max(r["probabilities"].values())


@pytest.mark.parametrize("case", ["missing", "unreadable", "directory", "bad_model", "model_dir", "hitcnn_model"])
def test_cli_classify_bad_input(case, hits, library, oneshot_model, checkpoint_path, tmp_path, capsys):
    model, files = oneshot_model, [library / "broken.wav"]
    needle = {"missing": "does not exist", "unreadable": "is not audio drumscribe can read",
              "directory": "is a directory",
              "bad_model": "--model", "model_dir": "is a directory", "hitcnn_model": "not a one-shot"}[case]
    if case == "missing":
        files = [tmp_path / "nope.wav"]
    elif case == "directory":
        files = [library / "drums"]
    elif case == "bad_model":
        model = tmp_path / "junk.pt"
        model.write_bytes(b"\x00not a checkpoint" * 10)
        files = audio_files(hits)[:1]
    elif case == "model_dir":
        model, files = tmp_path, audio_files(hits)[:1]
    elif case == "hitcnn_model":
        model, files = checkpoint_path, audio_files(hits)[:1]
    code, _, err = run_cli(capsys, "classify", *files, "--model", model)
    assert_one_line_error(code, err, "drumscribe classify", needle)


def test_classify_reports_good_files_and_fails_for_bad_ones(hits, library, oneshot_model, capsys):
    good = audio_files(hits)[0]
    code, text, err = run_cli(capsys, "classify", good, library / "broken.wav", "--model", oneshot_model)
    assert code == 1 and str(good) in text and "broken.wav" in err and "Traceback" not in err


def _special_files(folder: Path) -> list:
    """A FIFO and a socket named as audio in `folder`: reading either would wait forever."""
    import socket

    fifo = folder / "pipe.wav"
    os.mkfifo(fifo)
    sock_path = folder / "drums" / "sock.flac"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
    finally:
        sock.close()  # the socket file stays
    return [fifo, sock_path]


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
def test_sort_leaves_fifos_and_sockets_where_they_are(library, tmp_path, oneshot_model, move, capsys):
    """A FIFO or socket named .wav is neither read (which would hang) nor moved: one line each, exit 1, every
    audio file sorted."""
    import stat

    special = _special_files(library)
    before = snapshot(library)
    out = tmp_path / "sorted"
    code, text, err = run_cli(capsys, "sort", library, out, "--model", oneshot_model, "--no-progress",
                              *(["--move"] if move else []))
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert "pipe.wav' was not sorted: it is a FIFO (named pipe), not a regular file; left where it is" in lines[0]
    assert "sock.flac' was not sorted: it is a socket" in lines[1]
    assert stat.S_ISFIFO(os.lstat(special[0]).st_mode) and stat.S_ISSOCK(os.lstat(special[1]).st_mode)
    assert f"{'moved' if move else 'copied'} 15 files" in text
    check_complete(library, before, out, moved=move)
    assert not any(p.name in ("pipe.wav", "sock.flac") for p in out.rglob("*"))


@pytest.mark.parametrize("case", ["undo_fifo", "manifest_fifo", "nan_audio"])
def test_cli_special_and_non_finite_inputs(case, library, tmp_path, oneshot_model, capsys):
    """A FIFO as the manifest (of --undo, or already in OUT_DIR) is one line, not a hang; a wav of NaN is one
    line in classify and goes to _unreadable/ in sort, its reason in the manifest."""
    out = tmp_path / "out"
    nan = library / "nan.wav"
    sf.write(str(nan), np.full(4800, np.nan, np.float32), 48000, subtype="FLOAT")
    if case == "undo_fifo":
        os.mkfifo(tmp_path / "manifest.csv")
        code, _, err = run_cli(capsys, "sort", "--undo", tmp_path / "manifest.csv")
        assert_one_line_error(code, err, "manifest.csv' is a FIFO (named pipe), not a regular file")
    elif case == "manifest_fifo":
        out.mkdir()
        os.mkfifo(out / "manifest.csv")
        before = snapshot(library)
        code, _, err = run_cli(capsys, "sort", library, out, "--model", oneshot_model, "--no-progress")
        assert_one_line_error(code, err, "manifest.csv' is a FIFO (named pipe), not a regular file")
        assert snapshot(library) == before and sorted(p.name for p in out.iterdir()) == ["manifest.csv"]
    else:
        code, _, err = run_cli(capsys, "classify", nan, "--model", oneshot_model)
        assert_one_line_error(code, err, "drumscribe classify", "nan.wav' holds non-finite samples")
        code, _, err = run_cli(capsys, "sort", library, out, "--model", oneshot_model, "--no-progress")
        assert code == 0, err
        rows = sorting.read_manifest(out / sorting.MANIFEST_NAME)
        row = next(r for r in rows if r["source"].endswith("nan.wav"))
        assert Path(row["destination"]).parent.name == sorting.UNREADABLE_DIR and "non-finite" in row["reason"]


SORT_USAGE_ERRORS = {  # argv after 'sort' -> what the line says; each exits 2, as argparse's own usage errors do
    "no folders": ([], "expected IN_DIR and OUT_DIR, got 0 path(s)"),
    "one folder": (["{lib}"], "expected IN_DIR and OUT_DIR, got 1 path(s)"),
    "three folders": (["{lib}", "{out}", "{out}2"], "expected IN_DIR and OUT_DIR, got 3 path(s)"),
    "undo and folders": (["--undo", "{out}/manifest.csv", "{lib}"], "--undo takes only the manifest"),
    "undo --move": (["--undo", "{out}/manifest.csv", "--move"], "--move does not go with --undo"),
    "undo --dry-run": (["--undo", "{out}/manifest.csv", "--dry-run"], "--dry-run does not go with --undo"),
    "undo --model": (["--undo", "{out}/manifest.csv", "--model", "x.pt"], "--model does not go with --undo"),
    "undo --min-confidence": (["--undo", "{out}/manifest.csv", "--min-confidence", "0.6"],
                              "--min-confidence does not go with --undo"),
    "undo without a manifest": (["--undo"], "argument --undo: expected one argument"),
    "not a number": (["{lib}", "{out}", "--min-confidence", "high"], "argument --min-confidence: invalid float"),
}


@pytest.mark.parametrize("case", list(SORT_USAGE_ERRORS))
def test_cli_sort_usage_errors_exit_2(case, library, tmp_path, capsys):
    """A command line that cannot be right exits 2 with one line, before any file is read or written; a
    `--undo --dry-run` is refused rather than undoing for real."""
    out = tmp_path / "out"
    argv, needle = SORT_USAGE_ERRORS[case]
    argv = [a.format(lib=library, out=out) for a in argv]
    before = snapshot(library)
    try:
        code = cli.main(["sort", *argv])
    except SystemExit as exc:  # argparse's own
        code = exc.code
    err = capsys.readouterr().err
    assert_one_line_error(code, err, "drumscribe sort", needle, expect_code=2)
    assert snapshot(library) == before and not out.exists()


def test_cli_sort_min_confidence_out_of_range_is_checked_before_the_model(library, tmp_path, capsys):
    for value in ("1.5", "-0.1", "nan"):
        code, _, err = run_cli(capsys, "sort", library, tmp_path / "out", "--min-confidence", value, "--model",
                               tmp_path / "no-such-model.pt")
        assert_one_line_error(code, err, f"--min-confidence {value} is not in 0-1")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------------
# kit names -> classes


def test_class_for_name():
    assert class_for_name("Pearl Side Stick") == "rim"
    assert class_for_name("Rim Click (Pearl Free Floating Maple 14x3.5)") == "rim"
    assert class_for_name("Hand Clap") == "clap"
    assert class_for_name("Sabian Hat Pedal") == "hihat_closed"
    assert class_for_name("Hi-Hat Semiopen (Paiste)") == "hihat_open"
    assert class_for_name("Pearl Tom Floor") == "tom"
    assert class_for_name("Djembe1 Bass") == "percussion"
    assert class_for_name("Cowbell") == "percussion"
    assert class_for_name("Paiste Bell") == "ride"
    assert class_for_name("Crash/Ride (Paiste Rude)") is None
    assert class_for_name("Snare Roll") is None and class_for_name("Zap 1") is None
    assert class_for_name("nasty rim") == "rim" and class_for_name("snare rim") == "snare"  # lmms sample names
    assert class_for_name("hihat foot pedal") == "hihat_closed" and class_for_name("clav") == "percussion"
    assert class_for_gm_note(36) == "kick" and class_for_gm_note(39) == "clap" and class_for_gm_note(39, 40) is None
    assert class_for_gm_note(54) == "percussion" and class_for_gm_note(42) == "hihat_closed"
    assert class_for_gm_note(45, 48) is None  # orchestra set: timpani


def test_shipped_model_names_real_kit_samples():
    """The shipped checkpoint loads and names the kick and snare of a kit it never trained on."""
    from drumscribe.models.oneshot import DEFAULT_ONESHOT_MODEL_PATH
    from drumscribe.offline.oneshots import kit_oneshots

    if not DEFAULT_ONESHOT_MODEL_PATH.is_file():
        pytest.skip("the one-shot model is not trained yet")
    from conftest import find_kit

    kit = find_kit("ColomboAcousticDrumkit")
    classifier = sorting.SampleClassifier.from_file(DEFAULT_ONESHOT_MODEL_PATH)
    assert sorted(classifier.labels) == sorted(CLASSES)
    shots = [s for s in kit_oneshots(f"hydrogen:{kit}") if s.label in ("kick", "snare")]
    assert len(shots) >= 6
    answers = [classifier.classify_audio(s.audio).label for s in shots]
    assert answers == [s.label for s in shots]


def test_held_out_lookalikes_finds_a_shared_recording_only():
    """A training sound that is a held-out sound re-levelled, filtered a little and shifted (another font's copy)
    is left out; a different hit of the same drum is not."""
    from scipy.signal import lfilter

    from drumscribe.offline.oneshots import OneShot, held_out_lookalikes, synth_hit

    rng = np.random.default_rng(3)
    held = [OneShot(label, synth_hit(label, rng, 48000), "held", label) for label in ("kick", "snare", "hihat")]
    twin = lfilter([0.8], [1.0, -0.2], held[1].audio).astype(np.float32) * 0.3
    twin = np.concatenate((np.zeros(50, np.float32), twin))
    other = synth_hit("snare", rng, 48000)
    shots = [OneShot("snare", twin, "train", "twin"), OneShot("snare", other, "train", "other")]
    found = held_out_lookalikes(shots, held)
    assert found[0] is held[1]
    assert found[1] is None


def test_sonic_pi_hi_hats_are_named_by_the_table():
    from drumscribe.offline.oneshots import FOLDER_LABELS

    table = FOLDER_LABELS["/usr/share/sonic-pi/samples"]
    assert table["drum_cymbal_open"] == "hihat_open" and table["drum_cymbal_closed"] == "hihat_closed"
    assert set(table.values()) <= set(CLASSES)
    assert "loop_amen" not in table


def test_shipped_model_on_kits_it_never_trained_on():
    """The one-shot issue's accuracy goals, on every distinct sound of the held-out kits (Colombo and TimGM6mb's
    drum sets), as bench/oneshot_accuracy.py scores them: kick vs snare by the larger of the two probabilities
    >= 0.99, six classes (hi-hat = closed + open) by the largest of the six >= 0.93. The shipped model measures
    1.000 and 0.949."""
    from drumscribe.models.oneshot import DEFAULT_ONESHOT_MODEL_PATH
    from drumscribe.offline.oneshots import ONESHOT_HELD_OUT_KITS, kit_oneshots

    classifier = sorting.SampleClassifier.from_file(DEFAULT_ONESHOT_MODEL_PATH)
    labels = classifier.labels
    shots, seen = [], {}
    for spec in ONESHOT_HELD_OUT_KITS:
        shots += kit_oneshots(spec, seen=seen)
    probs = np.stack([classifier.classify_audio(s.audio).probabilities_array(labels) for s in shots])
    truth = np.array(["hihat" if s.label.startswith("hihat") else s.label for s in shots])
    index = {label: i for i, label in enumerate(labels)}

    def accuracy(classes):
        columns = [[index["hihat_closed"], index["hihat_open"]] if c == "hihat" else [index[c]] for c in classes]
        chosen = np.isin(truth, classes)
        merged = np.stack([probs[chosen][:, cols].sum(axis=1) for cols in columns], axis=1)
        return float((np.array(classes)[merged.argmax(axis=1)] == truth[chosen]).mean()), int(chosen.sum())

    kick_snare, n_ks = accuracy(["kick", "snare"])
    six, n_six = accuracy(["kick", "snare", "hihat", "tom", "crash", "ride"])
    figures = f"kick vs snare {kick_snare:.3f} ({n_ks} sounds), six classes {six:.3f} ({n_six} sounds)"
    print(figures)
    assert n_ks >= 30 and n_six >= 130, figures
    assert kick_snare >= 0.99 and six >= 0.93, figures
