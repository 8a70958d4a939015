"""`transcribe --ray ADDRESS`: the batch as Ray tasks on a local head started here (127.0.0.1, a free port, 2 CPUs)
gives the notes of the local run, byte for byte. The head runs in its own process group, which the fixture kills
whole at the end (never `ray stop`, which would stop any other Ray on the machine)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from drumscribe.realtime import SAMPLE_RATE_HZ

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_alive(pgid: int) -> list:
    """The live processes of a process group (zombies, waiting for init to reap them, are not running)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True).stdout.split("\n")
    return [line.split()[0] for line in out
            if line.strip() and int(line.split()[1]) == pgid and not line.split()[2].startswith("Z")]


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head` on 127.0.0.1 in a new session; yields its address; kills its process group after."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the ray command is not installed beside this Python")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    port = free_port()
    cmd = [str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
           "--disable-usage-stats", "--include-dashboard=false", f"--temp-dir={temp}",
           f"--dashboard-agent-listen-port={free_port()}",
           f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]
    start = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    pgid = start.pid
    try:
        log, _ = start.communicate(timeout=120)
        if start.returncode != 0:
            pytest.fail(f"ray start failed:\n{log[-2000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.5)
        shutil.rmtree(temp, ignore_errors=True)
        assert not group_alive(pgid), "Ray processes left running"


def test_ray_batch_equals_the_local_run(ray_head, groove, tmp_path):
    audio = groove[0].astype(np.float32)
    tree = tmp_path / "in"
    (tree / "sub").mkdir(parents=True)
    sf.write(str(tree / "a.wav"), audio, SAMPLE_RATE_HZ, subtype="FLOAT")
    sf.write(str(tree / "b.flac"), audio[::-1].copy(), SAMPLE_RATE_HZ)
    sf.write(str(tree / "sub" / "c.wav"), audio[: len(audio) // 2], SAMPLE_RATE_HZ, subtype="PCM_16")
    (tree / "broken.mp3").write_bytes(b"ID3 not really an mp3\n" * 20)
    base = [sys.executable, "-m", "drumscribe", "transcribe", str(tree), "--events", ".csv", "--no-progress"]

    local = subprocess.run([*base, "-o", str(tmp_path / "local"), "--jobs", "2"], capture_output=True, text=True,
                           timeout=300)
    on_ray = subprocess.run([*base, "-o", str(tmp_path / "ray"), "--ray", ray_head], capture_output=True,
                            text=True, timeout=300)
    for result in (local, on_ray):
        assert result.returncode == 1, result.stderr  # the broken file
        assert len(result.stderr.strip().splitlines()) == 1 and "1 failed" in result.stderr, result.stderr
    names = {"a.mid", "a.csv", "b.mid", "b.csv", "sub/c.mid", "sub/c.csv", "failures.csv"}
    for folder in ("local", "ray"):
        assert {str(p.relative_to(tmp_path / folder)) for p in (tmp_path / folder).rglob("*") if p.is_file()} == names
    for name in sorted(names - {"failures.csv"}):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert "broken.mp3" in (tmp_path / "ray" / "failures.csv").read_text()

    rerun = subprocess.run([*base, "-o", str(tmp_path / "ray"), "--ray", ray_head], capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 1 and "skipped 3 of 4" in rerun.stdout, rerun.stderr
