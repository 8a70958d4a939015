"""Render speed of `drumscribe audition`: a 3-minute groove (.mid) through a kit and every effects preset.

    OPENBLAS_NUM_THREADS=1 python bench/audition.py [--kit NAME] [--seconds 180] [--repeats 3]

Prints, per preset, the render time (sampler + effects, streamed in the file block size, tails included) as
x real time, best of --repeats; then the heaviest preset end to end (read the .mid, load the kit, render, write a
WAV) and streamed at the live block size (128 samples), as live monitoring would run it. Goal: >= 100x real time.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from drumscribe.offline.render import generate_pattern
from drumscribe.realtime import DEFAULT_BLOCK_SIZE_SAMPLES, SAMPLE_RATE_HZ
from drumscribe.realtime.audition import (
    RENDER_BLOCK_SIZE_SAMPLES,
    load_kit,
    normalise,
    read_midi_notes,
    render_notes,
    resolve_kit,
    write_audio,
)
from drumscribe.realtime.drums import load_drum_map
from drumscribe.realtime.effects import EffectChain, available_presets, load_preset
from drumscribe.realtime.sampler import Sampler
from drumscribe.realtime.sinks import hits_to_midi
from drumscribe.realtime.types import DrumHit

REPO = Path(__file__).resolve().parent.parent

GOAL_X_REAL_TIME = 100.0


def groove_midi(path: Path, seconds: float, *, tempo_bpm: float = 120.0, seed: int = 7) -> float:
    """Write a `seconds`-long groove (with fills and crashes) as a .mid; returns its duration in seconds."""
    bars = int(round(seconds / (4 * 60.0 / tempo_bpm)))
    hits, duration = generate_pattern(np.random.default_rng(seed), bars=bars, tempo_bpm=tempo_bpm, style="groove")
    drum_hits = [DrumHit(h.time_s, h.drum, h.velocity, 1.0) for h in hits if h.time_s < duration]
    hits_to_midi(drum_hits, load_drum_map(), tempo_bpm=tempo_bpm).save(str(path))
    return duration


def timed(fn, repeats: int):
    """(best wall-clock seconds, CPU seconds of that run, result): CPU time shows the cost when the machine is
    shared (wall clock then counts the time spent waiting for a core)."""
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="The Black Pearl 1.0", help="kit name or path (default The Black Pearl 1.0)")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the groove (default 180)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "groove.mid"
        duration = groove_midi(mid, args.seconds)
        notes = read_midi_notes(mid)
        load_s, _, kit = timed(lambda: load_kit(resolve_kit(args.kit)), 1)
        print(f"groove: {duration:.1f} s, {len(notes)} notes; kit '{args.kit}' loaded in {load_s:.2f} s; "
              f"render block {RENDER_BLOCK_SIZE_SAMPLES} samples at {SAMPLE_RATE_HZ} Hz, stereo")
        print(f"{'preset':<10}{'plugins':>8}{'out s':>8}{'wall s':>8}{'x real time':>13}{'CPU s':>8}"
              f"{'x real time per CPU':>21}")
        speeds, cpu_speeds = {}, {}
        for name in available_presets():
            preset = load_preset(name)
            sampler, chain = Sampler(kit), EffectChain(preset)
            seconds, cpu, audio = timed(partial(render_notes, notes, sampler, chain), args.repeats)
            speeds[name], cpu_speeds[name] = duration / seconds, duration / cpu
            print(f"{name:<10}{len(preset.plugins):>8}{audio.shape[1] / SAMPLE_RATE_HZ:>8.1f}{seconds:>8.3f}"
                  f"{speeds[name]:>13.0f}{cpu:>8.3f}{cpu_speeds[name]:>21.0f}")
        heaviest = min(cpu_speeds, key=cpu_speeds.get)

        def end_to_end():
            sampler = Sampler(load_kit(resolve_kit(args.kit)))
            audio = render_notes(read_midi_notes(mid), sampler, EffectChain(load_preset(heaviest)))
            write_audio(Path(tmp) / "out.wav", normalise(audio))

        e2e_s, e2e_cpu, _ = timed(end_to_end, args.repeats)
        live_s, live_cpu, _ = timed(lambda: render_notes(notes, Sampler(kit), EffectChain(load_preset(heaviest)),
                                                         block_size_samples=DEFAULT_BLOCK_SIZE_SAMPLES), 1)
        verdict = "met" if speeds[heaviest] >= GOAL_X_REAL_TIME else "NOT met"
        print(f"\nheaviest preset: {heaviest}: {speeds[heaviest]:.0f}x real time by the wall clock, "
              f"{cpu_speeds[heaviest]:.0f}x per CPU second (goal >= {GOAL_X_REAL_TIME:.0f}x by the wall clock: "
              f"{verdict})")
        print(f"  end to end (read .mid, load kit, render, write WAV): {e2e_s:.2f} s = {duration / e2e_s:.0f}x "
              f"real time ({duration / e2e_cpu:.0f}x per CPU second)")
        print(f"  streamed in {DEFAULT_BLOCK_SIZE_SAMPLES}-sample blocks (live monitoring): {live_s:.2f} s = "
              f"{duration / live_s:.0f}x real time ({duration / live_cpu:.0f}x per CPU second)")
        print(f"  load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
