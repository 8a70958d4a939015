"""Batch transcription (drumscribe/batch.py): several inputs and folders, -o optional, OUTDIR/<path>.mid, failures.csv
and exit 1 for a bad file, reruns that skip what is up to date, --force, --jobs, and notes identical to the
single-file run. Built from the groove of conftest.py; nothing here needs ../shared."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from drumscribe.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, main
from drumscribe.realtime import SAMPLE_RATE_HZ

NO_PROGRESS = "--no-progress"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def mtimes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def tree(tmp_path, groove):
    """in/a.wav, in/b.flac (the groove at 44.1 kHz), in/sub/c.wav, a broken in/broken.wav and a text file."""
    audio = groove[0].astype(np.float32)
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sf.write(str(root / "a.wav"), audio, SAMPLE_RATE_HZ, subtype="FLOAT")
    resampled = np.interp(np.arange(0, len(audio), SAMPLE_RATE_HZ / 44100), np.arange(len(audio)), audio)
    sf.write(str(root / "b.flac"), resampled.astype(np.float32), 44100)
    sf.write(str(root / "sub" / "c.wav"), audio[: len(audio) * 2 // 3], SAMPLE_RATE_HZ, subtype="PCM_16")
    (root / "broken.wav").write_bytes(b"RIFF this is no wave file at all\n" * 10)
    (root / "notes.txt").write_text("not audio: left alone\n")
    return root


def test_batch_tree_failures_rerun_force_and_notes(capsys, tree, tmp_path):
    out = tmp_path / "out"
    args = ["transcribe", tree, "-o", out, "--events", ".csv", "--jobs", "2", NO_PROGRESS]
    code, stdout, err = run_cli(capsys, *args)
    assert code == EXIT_ERROR, err
    assert files_under(out) == {"a.mid", "a.csv", "b.mid", "b.csv", "sub/c.mid", "sub/c.csv", "failures.csv"}
    rows = list(csv.reader((out / "failures.csv").open()))
    assert rows[0] == ["path", "reason"] and len(rows) == 2
    assert rows[1][0] == str(tree / "broken.wav") and "broken.wav" in rows[1][1] and "\n" not in rows[1][1]
    assert len(err.strip().splitlines()) == 1 and "1 failed" in err and "failures.csv" in err
    assert "Traceback" not in err + stdout
    assert not [p for p in out.rglob(".*")], "temporary files left behind"

    # each file's notes are those of the single-file run, byte for byte
    for name, rel in (("a.wav", "a"), ("b.flac", "b"), ("sub/c.wav", "sub/c")):
        single = tmp_path / "single" / rel
        single.parent.mkdir(parents=True, exist_ok=True)
        code, _, err = run_cli(capsys, "transcribe", tree / name, "-o", f"{single}.mid", "--events", f"{single}.csv",
                               NO_PROGRESS)
        assert code == EXIT_OK, err
        assert (out / f"{rel}.csv").read_bytes() == Path(f"{single}.csv").read_bytes(), name
        assert (out / f"{rel}.mid").read_bytes() == Path(f"{single}.mid").read_bytes(), name
        assert len((out / f"{rel}.csv").read_text().splitlines()) > 3

    # a rerun redoes nothing that is done (the broken file is tried again, and fails again)
    before = mtimes(out)
    code, stdout, err = run_cli(capsys, *args)
    assert code == EXIT_ERROR and "skipped 3 of 4" in stdout
    after = mtimes(out)
    assert {k: v for k, v in after.items() if k != "failures.csv"} == \
        {k: v for k, v in before.items() if k != "failures.csv"}

    # an output missing (as after an interrupt between the .mid and the .csv) or an input edited: that file again
    (out / "b.csv").unlink()
    os.utime(tree / "sub" / "c.wav")
    (tree / "broken.wav").unlink()
    code, stdout, err = run_cli(capsys, *args)
    assert code == EXIT_OK and not err, err
    assert "skipped 1 of 3" in stdout and "2 of 3 files transcribed" in stdout
    after2 = mtimes(out)
    assert after2["a.mid"] == before["a.mid"] and after2["sub/c.mid"] != before["sub/c.mid"]
    assert after2["b.csv"] and after2["b.mid"] != before["b.mid"]
    assert "failures.csv" not in after2  # a run without failures leaves no stale list

    # --force redoes everything
    code, stdout, err = run_cli(capsys, *args, "--force")
    assert code == EXIT_OK, err
    assert all(mtimes(out)[k] > after2[k] for k in after2)


def test_no_output_writes_beside_the_inputs(capsys, tree, tmp_path):
    a, b = tmp_path / "x" / "a.wav", tmp_path / "y" / "a.flac"
    a.parent.mkdir()
    b.parent.mkdir()
    shutil.copy(tree / "a.wav", a)
    shutil.copy(tree / "b.flac", b)
    code, stdout, err = run_cli(capsys, "transcribe", a, NO_PROGRESS)  # one file, no -o: a.mid beside it
    assert code == EXIT_OK, err
    assert files_under(a.parent) == {"a.wav", "a.mid"} and f"'{a.with_suffix('.mid')}'" in stdout
    code, stdout, err = run_cli(capsys, "transcribe", a, b, "--events", ".events.csv", "--jobs", "1", NO_PROGRESS)
    assert code == EXIT_OK, err
    assert files_under(a.parent) == {"a.wav", "a.mid", "a.events.csv"}
    assert files_under(b.parent) == {"a.flac", "a.mid", "a.events.csv"}
    # one file takes a suffix too: written beside its .mid
    code, _, err = run_cli(capsys, "transcribe", b, "-o", tmp_path / "one.mid", "--events", ".csv", NO_PROGRESS)
    assert code == EXIT_OK, err
    assert (tmp_path / "one.csv").read_text().startswith("onset_s,")


def assert_refused(capsys, argv, mentions, nothing_in: Path):
    before = files_under(nothing_in)
    code, stdout, err = run_cli(capsys, *argv)
    assert code == EXIT_ERROR, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in mentions:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert not stdout
    assert files_under(nothing_in) == before


def test_what_cannot_work_is_one_line_before_any_work(capsys, tree, tmp_path):
    out = tmp_path / "out"
    assert_refused(capsys, ["transcribe", tree, "-o", out, "--events", tmp_path / "all.csv"],
                   ("--events", "suffix", ".csv"), tmp_path)
    assert_refused(capsys, ["transcribe", tree / "a.wav", tree / "b.flac", "--plot", "p.png"], ("--plot", ".png"),
                   tmp_path)
    (tmp_path / "file").write_text("x")
    assert_refused(capsys, ["transcribe", tree, "-o", tmp_path / "file"], ("-o", "folder"), tmp_path)
    assert_refused(capsys, ["transcribe", tree, "-o", tmp_path / "new.mid"], ("-o", "folder"), tmp_path)
    (tmp_path / "empty").mkdir()
    assert_refused(capsys, ["transcribe", tmp_path / "empty", "-o", out], ("empty", "no audio"), tmp_path)
    shutil.copy(tree / "a.wav", tree / "sub" / "a.wav")
    assert_refused(capsys, ["transcribe", tree / "a.wav", tree / "sub" / "a.wav", "-o", out], ("both write",),
                   tmp_path)
    assert_refused(capsys, ["transcribe", tree, "--audition", ".wav"], ("input",), tmp_path)  # a.wav itself
    assert_refused(capsys, ["transcribe", tree, "-o", out, "--jobs", "0"], ("--jobs",), tmp_path)
    assert_refused(capsys, ["transcribe", tree / "a.wav", "--ray", "auto"], ("--ray", "one file"), tmp_path)
    # wrong for every file: the batch stops at the first with that one line, no failures.csv, no folders left
    assert_refused(capsys, ["transcribe", tree, "-o", out, "--drum-map", "no_such_map", "--jobs", "1"],
                   ("--drum-map", "no_such_map"), tmp_path)
    assert not out.exists()


def test_ray_missing_is_one_line(capsys, tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert_refused(capsys, ["transcribe", tree, "-o", tmp_path / "out", "--ray", "auto"],
                   ("--ray", "pip install", "cluster"), tmp_path)


@pytest.mark.slow
def test_interrupted_batch_resumes(tree, tmp_path):
    """Ctrl-C stops the batch (exit 130) without a partial output; the same command then does only the rest,
    and the result equals an uninterrupted run."""
    (tree / "broken.wav").unlink()
    audio, rate = sf.read(str(tree / "a.wav"), dtype="float32")
    for i in range(6):  # longer files, so that the interrupt lands mid-batch
        sf.write(str(tree / f"long{i}.wav"), np.tile(audio, 4), rate, subtype="PCM_16")
    out, full = tmp_path / "out", tmp_path / "full"
    argv = [sys.executable, "-m", "drumscribe", "transcribe", str(tree), "--events", ".csv", "--jobs", "1",
            NO_PROGRESS]
    proc = subprocess.Popen([*argv, "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(out.rglob("*.mid")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "resumes" in err and "Traceback" not in err
    done = files_under(out)
    assert done and len(done) < 2 * 9
    assert all(name.replace(".mid", ".csv") in done for name in done if name.endswith(".mid")), done
    assert not [p for p in out.rglob(".*")], "temporary files left behind"
    kept = mtimes(out)
    result = subprocess.run([*argv, "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_OK, result.stderr
    assert f"skipped {len(done) // 2} of 9" in result.stdout
    assert all(mtimes(out)[k] == v for k, v in kept.items())
    result = subprocess.run([*argv, "-o", str(full)], capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_OK, result.stderr
    assert files_under(out) == files_under(full)
    for name in files_under(full):
        assert (out / name).read_bytes() == (full / name).read_bytes(), name


def test_a_worker_loads_the_model_once(tmp_path, monkeypatch):
    """cached_loader: one load per model file (and version) in a worker process, with the worker's share of the
    cores as ONNX threads; cli's worker set-up puts it in front of the loader that _checked_transcribe calls."""
    import drumscribe.cli as cli
    from drumscribe.batch import cached_loader

    calls = []

    def load(path, *, threads=1):
        calls.append((path, threads))
        return object()

    model = tmp_path / "m.pt"
    model.write_bytes(b"one")
    cached = cached_loader(load, 1)
    first = cached(str(model), threads=2)
    assert cached(str(model), threads=2) is first and calls == [(str(model), 1)]
    os.utime(model, ns=(1, 1))  # another version of the file: loaded again
    assert cached(str(model), threads=2) is not first and len(calls) == 2
    assert cached_loader(cached, 2).__wrapped__ is load  # set up twice: still one cache over the real loader

    monkeypatch.setattr(cli, "load_model", load)
    cli._batch_worker_init(1)
    cli.load_model(str(model), threads=4)
    cli.load_model(str(model), threads=4)
    assert calls[2:] == [(str(model), 1)]


def test_jobs_are_cores():
    """--jobs N uses N cores: N one-thread workers for a batch; spare cores become a lone file's threads."""
    from drumscribe.batch import worker_threads
    assert worker_threads(1, 6) == (1, 1)
    assert worker_threads(2, 6) == (2, 1)
    assert worker_threads(2, 1) == (1, 2)
    assert worker_threads(8, 3) == (3, 2)
