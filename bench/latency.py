"""Live latency and accuracy on MDB Drums (drum stems), in the live configuration: the figures of `drumscribe live`.

    python bench/latency.py [--data ../shared/data/mdb-dev] [--live-model PATH] [--offline-model PATH]
    python bench/latency.py --runtimes      # one onset's forward pass in each runtime

Every track goes through the engine exactly as `drumscribe live` runs it (live model, LIVE scheduling, 128-sample
blocks at 48 kHz), one block at a time, handed out in real time (`--no-pace`: as fast as possible), each block
timed. For every hit that matches an annotated onset of its
class (50 ms, offline/evaluate.py's matching) it reports `emitted_s - true onset`: the time from the stroke to the
end of the block that released the note, which is when `drumscribe live` sends it (the note leaves as soon as the
block's compute ends, so the compute time adds to it; it is reported separately). It then scores the live hits and
the offline configuration (offline model, OFFLINE scheduling) with F3 (kick, snare, hi-hat) and F5.

Timing on a shared machine is noisy: the load average is printed with the figures. Torch and BLAS use one thread.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

DEFAULT_DATA = REPO.parent / "shared" / "data" / "mdb-dev"


def parse_args(argv=None):
    from drumscribe.models import DEFAULT_MODEL_PATH

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="MDB dev folder with drum_only/ and class_pp/")
    p.add_argument("--live-model", help="live checkpoint (default: the shipped live model, else the offline one)")
    p.add_argument("--offline-model", default=str(DEFAULT_MODEL_PATH), help="offline checkpoint for the F3 comparison")
    p.add_argument("--block-size", type=int, default=128, help="samples per block (default 128)")
    p.add_argument("--window-ms", type=float, default=50.0, help="onset tolerance for matching and scoring")
    p.add_argument("--tracks", nargs="*", help="only these track names")
    p.add_argument("--no-pace", action="store_true",
                   help="run the blocks as fast as possible instead of in real time (a busy real-time-priority "
                        "thread is throttled by the kernel for 50 ms each second: not what a live run sees)")
    p.add_argument("--runtimes", action="store_true",
                   help="only time one onset's forward pass of the live model in each runtime (ONNX Runtime, frozen "
                        "TorchScript, eager torch), warm and after the idle gap of a live block, then exit")
    p.add_argument("--normal-priority", action="store_true",
                   help="time at normal scheduling priority (default: SCHED_FIFO where permitted, as the live worker)")
    return p.parse_args(argv)


def run_live(audio, checkpoint, block_size, *, pace: bool = False):
    """(hits, per-block compute seconds) of one signal through the live configuration, block by block; `pace`
    hands out the blocks in real time, as an audio interface does (the flush after the end is not timed)."""
    from drumscribe.realtime.engine import Engine, tail_samples
    from drumscribe.realtime.live import build_live_stages

    engine = Engine(build_live_stages(checkpoint))
    hits = []
    n_blocks = -(-len(audio) // block_size)
    n_tail = -(-tail_samples(engine.stages) // block_size)
    times = np.zeros(n_blocks + n_tail)
    padded = np.concatenate((audio, np.zeros(n_blocks * block_size - len(audio) + n_tail * block_size)))
    clock = time.perf_counter
    block_s = block_size / engine.sample_rate_hz
    start = clock()
    for i in range(n_blocks + n_tail):
        block = padded[i * block_size : (i + 1) * block_size]
        if pace and i < n_blocks:
            wait = start + (i + 1) * block_s - clock()
            if wait > 0:
                time.sleep(wait)
        t0 = clock()
        out = engine.process(block)
        times[i] = clock() - t0
        hits.extend(out)
    return hits, times[:n_blocks]


def time_runtimes(checkpoint, block_s: float, n: int = 2000) -> None:
    """One onset's forward pass in each runtime the live path can use: back to back (warm), and each after sleeping
    one block (as between live blocks: caches go cold, the CPU may clock down)."""
    import torch

    from drumscribe.realtime.live import OnnxHitModel, freeze_for_inference

    cfg = checkpoint.model.config
    x = torch.from_numpy(np.random.default_rng(0).normal(2.0, 1.0, (1, cfg.n_mels, cfg.n_frames)).astype(np.float32))
    runtimes = {"ONNX Runtime": OnnxHitModel(checkpoint.model), "TorchScript frozen": freeze_for_inference(
        checkpoint.model), "torch eager": checkpoint.model.eval()}
    for name, model in runtimes.items():
        for label, gap in (("warm", 0.0), (f"after {block_s * 1e3:.2f} ms idle", block_s)):
            times = np.zeros(n)
            with torch.inference_mode():
                for i in range(n):
                    if gap:
                        time.sleep(gap)
                    t0 = time.perf_counter()
                    model(x)
                    times[i] = time.perf_counter() - t0
            times *= 1e3
            print(f"{name:<20} {label:<22} p50 {np.percentile(times, 50):.3f} ms  "
                  f"p99 {np.percentile(times, 99):.3f} ms")


def matched_delays(reference: dict, hits, window_s: float, frame_shift_s: float = 0.0) -> np.ndarray:
    """(emitted_s - true onset, onset frame end - true onset) of every hit that matches an annotated onset of its
    class (one hit per onset). `frame_shift_s` turns a hit's onset_s back into its onset frame's end."""
    import mir_eval

    from drumscribe.offline.evaluate import CLASSES, DEDUPE_S
    from drumscribe.realtime.drums import SCORE_CLASS

    delays = []
    for label in CLASSES:
        ref = np.sort(np.asarray(reference.get(label, []), dtype=np.float64))
        ests = sorted((h.onset_s, h.emitted_s) for h in hits if SCORE_CLASS[h.drum] == label)
        kept = []
        for onset, emitted in ests:  # the first of same-class hits within DEDUPE_S, as the scoring keeps
            if not kept or onset - kept[-1][0] >= DEDUPE_S:
                kept.append((onset, emitted))
        if not len(ref) or not kept:
            continue
        onsets = np.array([k[0] for k in kept])
        for i, j in mir_eval.util.match_events(ref, onsets, window_s):
            delays.append((kept[j][1] - ref[i], kept[j][0] + frame_shift_s - ref[i]))
    return np.asarray(delays).reshape(-1, 2)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from drumscribe.realtime.live import raise_thread_priority

    realtime = False if args.normal_priority else raise_thread_priority()  # as the live worker thread does
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline import evaluate as ev
    from drumscribe.realtime.live import latency_bound_s, live_model_path, lookahead_s
    from drumscribe.realtime.sources import FileSource, decode_audio

    data = Path(args.data)
    pairs = ev.find_tracks(data / "drum_only", data / "class_pp")
    if args.tracks:
        pairs = [p for p in pairs if p[0].stem in args.tracks]
    if not pairs:
        print(f"no tracks with annotations under {data}", file=sys.stderr)
        return 1
    live_path = Path(args.live_model) if args.live_model else live_model_path()
    live_ckpt = load_checkpoint(live_path)
    if args.runtimes:
        print(f"live model {live_path}: one onset's forward pass, {'SCHED_FIFO' if realtime else 'normal priority'}, "
              f"load average {os.getloadavg()[0]:.2f}")
        time_runtimes(live_ckpt, args.block_size / 48000)
        return 0
    offline_path = Path(args.offline_model)
    offline_ckpt = load_checkpoint(offline_path) if offline_path.exists() else None  # a missing one: live only
    window_s = args.window_ms / 1000
    load_start = os.getloadavg()
    print(f"live model {live_path} (frames_after {live_ckpt.model.config.frames_after}, look-ahead "
          f"{lookahead_s(live_ckpt) * 1e3:.0f} ms, latency bound "
          f"{latency_bound_s(live_ckpt, args.block_size) * 1e3:.1f} ms); "
          f"offline model {offline_path if offline_ckpt else '(missing)'}; block {args.block_size} samples")
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} "
          f"on {os.cpu_count()} CPUs; thread priority {'SCHED_FIFO (as the live worker)' if realtime else 'normal'}; "
          f"blocks {'as fast as possible' if args.no_pace else 'in real time'}")

    all_delays, all_detection, all_times, live_scores, offline_scores = [], [], [], [], []
    fp = live_ckpt.feature_params
    frame_shift_s = live_ckpt.onset_offset_frames * fp["hop_samples"] / fp["sample_rate_hz"]
    for audio_path, annotation_path in pairs:
        reference = ev.load_annotations(annotation_path)
        audio = decode_audio(audio_path)
        hits, times = run_live(audio, live_ckpt, args.block_size, pace=not args.no_pace)
        delays_both = matched_delays(reference, hits, window_s, frame_shift_s)
        delays, detection = delays_both[:, 0], delays_both[:, 1]
        live_row = ev.score(reference, ev.hits_to_classes(hits), window_s=window_s)
        live_scores.append(live_row)
        all_delays.append(delays)
        all_detection.append(detection)
        all_times.append(times)
        line = (f"{audio_path.stem:<10} {len(audio) / 48000:6.1f} s  delay median {np.median(delays) * 1e3:5.1f} ms "
                f"p95 {np.percentile(delays, 95) * 1e3:5.1f} ms  compute p99 {np.percentile(times, 99) * 1e3:.3f} ms  "
                f"live F3 {live_row['F3']['f']:.3f}")
        if offline_ckpt is not None:
            off_hits = ev.transcribe_source(FileSource(audio_path, block_size_samples=args.block_size), offline_ckpt)
            off_row = ev.score(reference, ev.hits_to_classes(off_hits), window_s=window_s)
            offline_scores.append(off_row)
            line += f"  offline F3 {off_row['F3']['f']:.3f}"
        print(line, flush=True)

    delays = np.concatenate(all_delays) * 1e3
    detection = np.concatenate(all_detection) * 1e3
    times = np.concatenate(all_times) * 1e3
    load_end = os.getloadavg()
    live = ev.pool(live_scores)
    block_ms = args.block_size / 48
    print()
    def spread(x):
        return (f"median {np.median(x):.1f} ms, p95 {np.percentile(x, 95):.1f} ms, "
                f"p99 {np.percentile(x, 99):.1f} ms")

    print(f"emitted_s - true onset over {len(delays)} matched hits: {spread(delays)}, mean {delays.mean():.1f} ms "
          f"(min {delays.min():.1f}, max {delays.max():.1f})")
    print(f"  = onset frame end - true onset (the spectrogram window, n_fft {fp['n_fft']} samples, sees the attack "
          f"late; a note named at a later onset than the stroke's first): {spread(detection)}")
    print(f"  + decision wait (look-ahead {lookahead_s(live_ckpt) * 1e3:.0f} ms, then the end of the block): "
          f"{spread(delays - detection)}")
    late = delays > 10.0
    print(f"  notes over 10 ms: {int(late.sum())} of {len(delays)}, their onset frame end - true onset median "
          f"{np.median(detection[late]) if late.any() else 0:.1f} ms (the tail is the onset, not the wait)")
    print(f"per-block compute over {len(times)} blocks of {block_ms:.2f} ms: p50 {np.percentile(times, 50):.3f} ms, "
          f"p99 {np.percentile(times, 99):.3f} ms, p99.9 {np.percentile(times, 99.9):.3f} ms, "
          f"max {times.max():.3f} ms; blocks over budget: {int((times > block_ms).sum())}")
    print(f"note sent after the stroke (emitted + compute of that block): median "
          f"{np.median(delays) + np.percentile(times, 50):.1f} ms")
    print(f"live    F3 {live['F3']['f']:.3f} (P {live['F3']['precision']:.3f} R {live['F3']['recall']:.3f})  "
          f"F5 {live['F5']['f']:.3f}")
    if offline_scores:
        off = ev.pool(offline_scores)
        print(f"offline F3 {off['F3']['f']:.3f} (P {off['F3']['precision']:.3f} R {off['F3']['recall']:.3f})  "
              f"F5 {off['F5']['f']:.3f}   live - offline F3: {live['F3']['f'] - off['F3']['f']:+.3f}")
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
