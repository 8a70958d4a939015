"""Soak `drumscribe live` under JACK: memory over time and dropped blocks over a long run.

    python bench/soak.py [--minutes 10] [--model PATH] [--sample-every-s 15]

Starts its own JACK server (dummy backend, 48 kHz, 128-frame periods, under a private server name), runs
`drumscribe live --midi-api jack --record ... --events ...` as a subprocess, and plays a minute of rendered grooves
(held-out Hydrogen kit) into it in a loop while a JACK MIDI client counts the notes. Every few seconds it samples
drumscribe's resident memory (VmRSS). At the end it stops drumscribe with SIGINT and prints the RSS table, the growth
after warm-up (the first sample after one minute), the blocks drumscribe dropped (ring buffer full) and the input
overflows PortAudio flagged, and the server's xruns with the clients jackd blamed for them.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

KIT = "hydrogen:ColomboAcousticDrumkit"
WARM_UP_S = 60.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def grooves(seconds: float, seed: int = 5) -> np.ndarray:
    """About `seconds` of grooves in several styles and tempos, one after another, at 48 kHz, peak -6 dBFS."""
    from drumscribe.offline.render import generate_pattern, load_kit, render_hits

    kit = load_kit(KIT)
    rng = np.random.default_rng(seed)
    parts, total = [], 0.0
    while total < seconds:
        hits, duration = generate_pattern(rng, bars=8, style=str(rng.choice(["groove", "groove", "jazz", "random"])),
                                          drums_available=kit.drums)
        audio = render_hits(hits, kit, duration_s=duration, rng=rng)
        audio = audio / (np.abs(audio).max() + 1e-9) * 10 ** (rng.uniform(-20, -6) / 20)
        parts.append(audio)
        total += duration
    return np.concatenate(parts).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--model", help="checkpoint (default: the shipped live model)")
    p.add_argument("--sample-every-s", type=float, default=15.0, help="RSS sampling interval")
    args = p.parse_args(argv)

    import importlib.util

    spec = importlib.util.spec_from_file_location("jack_harness", REPO / "tests" / "jack_harness.py")
    jack_harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jack_harness)  # the tests' JACK server and harness, a file of the checkout
    Harness, JackServer = jack_harness.Harness, jack_harness.JackServer

    audio = grooves(60.0)
    work = Path(tempfile.mkdtemp(prefix="drumscribe-soak-"))
    take, events, jack_log = work / "soak.mid", work / "soak.csv", work / "jackd.log"
    duration_s = args.minutes * 60
    load_start = os.getloadavg()
    print(f"soak: {args.minutes:g} min, {len(audio) / 48000:.0f} s of grooves looped; outputs in {work}")
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    with JackServer(rate_hz=48000, period=128, log_path=jack_log) as server:
        cmd = [sys.executable, "-m", "drumscribe", "live", "--midi-api", "jack", "--port-name", "soak",
               "--record", str(take), "--events", str(events)]
        if args.model:
            cmd += ["--model", args.model]
        env = dict(server.env)
        process = subprocess.Popen(cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
        reader.start()
        samples = []
        try:
            with Harness(server, "soak-harness") as harness:
                harness.wait_for_ports("PortAudio", "soak", process=process)
                time.sleep(0.5)
                xruns_before = harness.xruns
                harness.play(audio, loop=True)
                started = time.monotonic()
                next_sample = started
                while True:
                    now = time.monotonic()
                    if process.poll() is not None:
                        print(f"drumscribe exited early with code {process.returncode}")
                        break
                    if now >= next_sample:
                        elapsed = now - started
                        xruns = harness.xruns - xruns_before
                        samples.append((elapsed, rss_mib(process.pid), len(harness.notes), xruns))
                        print(f"  {elapsed:6.0f} s  RSS {samples[-1][1]:7.1f} MiB  MIDI events {samples[-1][2]:7d}  "
                              f"server xruns {samples[-1][3]}", flush=True)
                        next_sample += args.sample_every_s
                    if elapsed >= duration_s:
                        break
                    time.sleep(0.2)
                process.send_signal(signal.SIGINT)
                code = process.wait(120)
                notes = len(harness.note_ons())
                xruns = harness.xruns - xruns_before
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        reader.join(5)

    stderr = "".join(lines)
    summary = next((line for line in reversed(lines) if "dropped" in line and "blocks" in line), "")
    m = re.search(r"dropped (\d+) \(ring\) \+ (\d+) \(input overflow\)", summary)
    blamed = re.findall(r"client = (.+?) was not finished", jack_log.read_text() if jack_log.exists() else "")
    rss = np.array([s[1] for s in samples])
    t = np.array([s[0] for s in samples])
    warm = rss[t >= WARM_UP_S][0] if (t >= WARM_UP_S).any() else rss[0]
    load_end = os.getloadavg()
    print()
    print(f"drumscribe exit code {code}; its summary: {summary.strip()}")
    print(f"RSS: start {rss[0]:.1f} MiB, after warm-up ({WARM_UP_S:.0f} s) {warm:.1f} MiB, end {rss[-1]:.1f} MiB, "
          f"max {rss.max():.1f} MiB; growth after warm-up {100 * (rss[-1] - warm) / warm:+.1f} %")
    if m:
        print(f"dropped blocks: {m.group(1)} by drumscribe (ring buffer full), {m.group(2)} input overflows "
              f"flagged by PortAudio (JACK xruns seen by the input)")
    print(f"note-ons received: {notes}; JACK server xruns during the run: {xruns}; clients jackd blamed: "
          + (", ".join(f"{c} x{blamed.count(c)}" for c in sorted(set(blamed))) or "none"))
    print(f"take: {take} ({take.stat().st_size if take.exists() else 0} bytes)")
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    if code != 0:
        print(stderr[-2000:])
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
