"""The inference install has no torch: `transcribe`, `audition`, `evaluate`, `live` and the listing commands run on
ONNX Runtime and never import torch; `train` (and any command that needs torch) says in one line what to install.

Two ways to check it:
- here, in this venv (torch installed), each command runs in a child process whose imports of torch fail and are
  recorded: the command must succeed and never have tried (quick);
- the wheel installed with its dependencies (from PyPI or pip's cache) into a fresh venv that has no torch at all:
  the commands work there and give the same notes as this install (slow: it builds a venv).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "example.mp3"
INSTALL = "pip install 'drumscribe[train]'"

# runs drumscribe.cli.main(argv) with every import of torch failing as if torch were not installed; prints the
# torch modules it tried to import as the last line of stderr (JSON)
_NO_TORCH = """if True:
    import importlib.abc, json, sys

    tried = []

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                tried.append(name)
                raise ModuleNotFoundError(f"No module named '{name}'", name=name)
            return None

    sys.meta_path.insert(0, NoTorch())
    from drumscribe.cli import main

    try:
        code = main(json.loads(sys.argv[1]))
    except SystemExit as exc:  # --help, or argparse's usage error
        code = exc.code
    sys.stdout.flush()
    print(json.dumps(sorted(set(tried))), file=sys.stderr)
    sys.exit(code)
"""


def _without_torch(argv, cwd=REPO, timeout=300):
    """(exit code, stdout, stderr less the last line, torch modules the command tried to import)."""
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, json.dumps([str(a) for a in argv])], cwd=cwd,
                         capture_output=True, text=True, timeout=timeout)
    *err, tried = run.stderr.rstrip("\n").split("\n")
    return run.returncode, run.stdout, "\n".join(err), json.loads(tried)


def _notes(path) -> list:
    """(tick, note, velocity) of every note-on of a .mid, in order."""
    out, tick = [], 0
    for message in mido.merge_tracks(mido.MidiFile(str(path)).tracks):
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            out.append((tick, message.note, message.velocity))
    return out


def test_transcribe_and_audition_never_import_torch(tmp_path):
    mid, wav = tmp_path / "example.mid", tmp_path / "example.wav"
    code, _, err, tried = _without_torch(["transcribe", EXAMPLE, "-o", mid, "--audition", wav, "--no-progress"])
    assert code == 0 and tried == [], (err, tried)
    assert len(_notes(mid)) > 50 and wav.stat().st_size > 0
    code, _, err, tried = _without_torch(["audition", mid, "-o", tmp_path / "again.wav"])
    assert code == 0 and tried == [], (err, tried)


def test_evaluate_and_the_listings_never_import_torch():
    code, out, err, tried = _without_torch(["evaluate", "--audio", REPO / "examples", "--annotations",
                                            REPO / "examples"])
    assert code == 0 and tried == [] and "F5" in out, (out, err, tried)
    for command in (["drum-maps"], ["kits"], ["presets"], ["devices"], ["train", "--help"], ["--help"]):
        code, out, err, tried = _without_torch(command)
        assert code == 0 and tried == [] and out, (command, err, tried)


@pytest.mark.parametrize("argv", [
    ["train", "--data", "none.npz"],
    ["train", "fit", "--data", "none.npz"],
    ["train", "tune", "--model", "none.pt"],
    ["train", "calibrate"],
    ["train", "ensemble", "a.pt", "b.pt", "-o", "e.pt"],
    ["train", "export", "none.pt"],
    ["train", "folders", "none"],
    ["train", "--folders", "none"],
    ["train", "unmix", "fit"],
    ["classify", str(EXAMPLE)],
])
def test_what_needs_torch_says_what_to_install_in_one_line(argv, tmp_path):
    code, out, err, _ = _without_torch(argv, cwd=tmp_path)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"drumscribe {argv[0]}") and lines[0].endswith(INSTALL), lines[0]
    assert "needs PyTorch" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


# ---------------------------------------------------------------------------------------------------------------
# the wheel in a fresh venv without torch


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new venv with the wheel and its dependencies (pip's index and cache; never torch); its bin/ folder."""
    from test_package import build_wheel

    tmp = tmp_path_factory.mktemp("torch_free")
    wheel = build_wheel(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    run = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, "installing the wheel and its dependencies failed:\n" + run.stdout + run.stderr
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.util as u; "
                            "print(u.find_spec('torch') is None, u.find_spec('onnxruntime') is not None)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.split() == ["True", "True"], "the fresh venv has torch, or lacks onnxruntime: " + probe.stdout
    return venv / "bin"


def _fresh(bin_dir: Path, argv, cwd, env=None, timeout=300):
    return subprocess.run([str(bin_dir / "drumscribe"), *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _here(argv, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "drumscribe", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_fresh_install_without_torch_transcribes_the_same_notes(fresh_venv, tmp_path):
    fresh, here = tmp_path / "fresh.mid", tmp_path / "here.mid"
    run = _fresh(fresh_venv, ["transcribe", EXAMPLE, "-o", fresh, "--no-progress"], tmp_path)
    assert run.returncode == 0, run.stderr
    run = _here(["transcribe", EXAMPLE, "-o", here, "--no-progress"], tmp_path)
    assert run.returncode == 0, run.stderr
    notes = _notes(fresh)
    assert len(notes) > 50 and notes == _notes(here)

    # audition plays it; evaluate scores the same as here
    run = _fresh(fresh_venv, ["audition", fresh, "-o", tmp_path / "fresh.wav"], tmp_path)
    assert run.returncode == 0 and (tmp_path / "fresh.wav").stat().st_size > 0, run.stderr
    scores = [_fresh(fresh_venv, ["evaluate", "--audio", REPO / "examples", "--annotations", REPO / "examples"],
                     tmp_path), _here(["evaluate", "--audio", REPO / "examples", "--annotations", REPO / "examples"],
                                      tmp_path)]
    assert [r.returncode for r in scores] == [0, 0], [r.stderr for r in scores]
    assert "F5" in scores[0].stdout and scores[0].stdout == scores[1].stdout


@pytest.mark.slow
def test_fresh_install_without_torch_says_train_needs_the_extra(fresh_venv, tmp_path):
    for argv in (["train", "--data", "none.npz"], ["train", "fit", "--help"], ["classify", EXAMPLE]):
        run = _fresh(fresh_venv, argv, tmp_path)
        if "--help" in argv:
            assert run.returncode == 0 and run.stdout.startswith("usage: drumscribe train fit"), run.stderr
            continue
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1 and lines[0].endswith(INSTALL), run.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_fresh_install_without_torch_runs_live_on_jack(fresh_venv, tmp_path):
    """`live` with the shipped live model through a JACK server (dummy backend): the example's first seconds are
    played in, notes come out on the port, Ctrl-C ends it with its take written. Without jackd: the one-line error
    of a missing audio input."""
    from jack_harness import Harness, JackServer, JackUnavailable

    run = _fresh(fresh_venv, ["live", "--input", "no-such-device-xyz"], tmp_path,
                 env={**os.environ, "JACK_DEFAULT_SERVER": f"drumscribe-none-{os.getpid()}",
                      "JACK_NO_START_SERVER": "1"}, timeout=60)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1 and "audio input 'no-such-device-xyz' not found" in lines[0], \
        run.stderr
    import librosa

    audio, _ = librosa.load(str(EXAMPLE), sr=48000, mono=True, duration=8.0)
    record = tmp_path / "take.mid"
    try:
        server = JackServer(rate_hz=48000, period=128, log_path=tmp_path / "jackd.log").start()
    except JackUnavailable as exc:
        pytest.skip(f"no JACK server here ({exc}); the missing-input error was checked")
    try:
        log = (tmp_path / "live.log").open("w")  # a file, not a pipe: the status line never blocks the run
        process = subprocess.Popen([str(fresh_venv / "drumscribe"), "live", "--midi-api", "jack", "--port-name",
                                    "dsfree", "--record", str(record)], cwd=tmp_path, env=server.env,
                                   stdout=subprocess.DEVNULL, stderr=log)
        try:
            with Harness(server) as harness:
                harness.wait_for_ports("PortAudio", "dsfree", process=process)
                time.sleep(0.3)
                harness.play(audio.astype(np.float32))
                deadline = time.monotonic() + len(audio) / 48000 + 30
                while not harness.done and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
                process.send_signal(signal.SIGINT)
                process.wait(60)
                notes = harness.note_ons()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            log.close()
    finally:
        server.stop()
    err = (tmp_path / "live.log").read_text()
    assert process.returncode == 0 and "Traceback" not in err, err
    assert len(notes) >= 5, f"{len(notes)} notes arrived; {err}"
    assert len(_notes(record)) >= 5
