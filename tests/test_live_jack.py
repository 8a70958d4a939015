"""`drumscribe live` end to end on a real JACK server (dummy backend): a JACK client plays a rendered groove into
drumscribe's audio input and records the notes of its virtual MIDI port with sample-exact times.

- The notes are the hits `drumscribe transcribe --live` finds in the same audio, each arriving within a block,
  a frame and two JACK periods of the time the file run released it (the live and file runs see the audio on a
  different frame grid, so a note may move by up to a frame; nothing else may differ).
- Every note arrives within the engine's honest latency bound (`realtime.live.latency_bound_s`) of a true onset,
  and with the shipped weights kick/snare/hi-hat score what the same model's file run scores, and at least the
  measured level (the issue's goal, F >= 0.8 on this groove, is open model work).
- Ctrl-C ends the run with exit 0 and a .mid holding every note; the JACK server always goes down.
- An input at 44.1 kHz is resampled and gives nearly the same notes (its frame grid differs); a server that dies
  mid-run ends the run with one line, exit 1 and the take kept.
- On a loaded machine (xruns) times are on the clip's clock, a run that lost much is played again (up to
  ATTEMPTS runs), and a run whose server or drumscribe did not come up is started again (up to START_RETRIES).

The library-level twin (no device): the live worker fed from a ring buffer gives exactly the hits of the file run.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.sinks import CollectSink

from jack_harness import Harness, JackServer

REPO = Path(__file__).resolve().parent.parent
KIT = "hydrogen:ColomboAcousticDrumkit"  # held out of training
LEAD_IN_S = 0.3
PERIOD = 128
RUN_TIMEOUT_S = 120
ATTEMPTS = 3
START_RETRIES = 2


# ---------------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def groove_hits_audio():
    """(hits, audio at 48 kHz): four bars of a groove at 120 BPM on a held-out Hydrogen kit, after a short lead-in."""
    from drumscribe.offline.render import Hit, generate_pattern, load_kit, render_hits

    kit = load_kit(KIT)
    rng = np.random.default_rng(11)
    hits, duration = generate_pattern(rng, bars=4, tempo_bpm=120, style="groove", drums_available=kit.drums)
    hits = [Hit(h.time_s + LEAD_IN_S, h.drum, h.velocity, h.labelled) for h in hits]
    audio = render_hits(hits, kit, duration_s=duration + LEAD_IN_S, rng=rng)
    audio = (audio / np.abs(audio).max() * 10 ** (-6 / 20)).astype(np.float32)
    return [h for h in hits if h.labelled], audio


@pytest.fixture(scope="module")
def live_model(tmp_path_factory):
    """(path, trained=False): a fixed random-weight checkpoint on the live model's recipe (512-sample window,
    128-sample hop, rising-edge onsets, look-ahead 1 frame).
    It fires on onsets with random drums: the plumbing tests use it, so they never depend on the state of the
    shipped weights. The accuracy test uses the shipped live model."""
    import torch

    from drumscribe.models.cnn import Checkpoint, HitCNN, HitCNNConfig, save_checkpoint
    from drumscribe.realtime.drums import DRUMS
    from drumscribe.realtime.features import FeatureParams, mel_basis
    from drumscribe.realtime.onsets import OnsetParams

    torch.manual_seed(1234)
    model = HitCNN(HitCNNConfig(n_mels=48, n_classes=len(DRUMS), frames_before=6, frames_after=1)).eval()
    params = FeatureParams(n_fft=512, hop_samples=128, n_mels=48)
    onsets = OnsetParams(threshold=0.1, min_gap_frames=3, average_frames=40, rising=True)
    ckpt = Checkpoint(model=model, labels=list(DRUMS), feature_params=params.as_dict(),
                      onset_params=onsets.as_dict(), mel_basis=mel_basis(params),
                      thresholds=[0.5] * len(DRUMS), onset_offset_frames=1.0, extra={"note": "random weights"})
    path = tmp_path_factory.mktemp("model") / "random_live.pt"
    save_checkpoint(path, ckpt)
    return path, False


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _drumscribe(args, env, **kwargs):
    env = {**env, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "drumscribe", *map(str, args)], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


class _Reader:
    """Collects a pipe's lines on a thread, so a chatty child never blocks on a full pipe."""

    def __init__(self, pipe):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe):
        for line in pipe:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _run_live(server, audio, model_path, tmp, *, port_name, extra=(), kill_server_after_s=None):
    """Play `audio` into `drumscribe live` through JACK; returns (note-ons, return code, stderr, outputs, the
    server's xruns), note and xrun times on the clip's clock."""
    record, events = tmp / f"{port_name}.mid", tmp / f"{port_name}.csv"
    process = _drumscribe(["live", "--midi-api", "jack", "--port-name", port_name, "--model", model_path,
                           "--record", record, "--events", events, *extra], server.env)
    out, err = _Reader(process.stdout), _Reader(process.stderr)
    try:
        with Harness(server) as harness:
            try:
                harness.wait_for_ports("PortAudio", port_name, process=process)
            except RuntimeError as exc:
                err.thread.join(5)
                raise RuntimeError(f"{exc}: {err.text}") from None
            time.sleep(0.3)
            harness.play(audio)
            deadline = time.monotonic() + len(audio) / harness.rate_hz + 30
            while not harness.done and time.monotonic() < deadline:
                time.sleep(0.05)
            if kill_server_after_s is not None:
                time.sleep(kill_server_after_s)
                harness.close()
                server.stop()
            else:
                time.sleep(0.5)  # the last notes (after the last onset's look-ahead)
                process.send_signal(signal.SIGINT)
            code = process.wait(RUN_TIMEOUT_S)
            notes = harness.note_ons() if harness.client is not None else []
            xruns = harness.xrun_seconds() if harness.client is not None else []
            if harness.missed_cycles:
                print(f"\nthe harness missed {harness.missed_cycles} cycles: note times are on the clip's clock")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    out.thread.join(5)
    err.thread.join(5)
    return notes, code, err.text, (record, events), xruns


def _transcribe_live(wav, model_path, tmp, extra=()) -> list:
    """(onset_s, emitted_s, drum, note) of every hit `drumscribe transcribe --live` finds."""
    events = tmp / "file.csv"
    process = _drumscribe(["transcribe", "--live", wav, "-o", tmp / "file.mid", "--events", events, "--model",
                           model_path, "--no-progress", *extra], dict(os.environ))
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode in (0, 3), err
    return _read_events(events)


def _read_events(path) -> list:
    with open(path, newline="") as f:
        return [(float(r["onset_s"]), float(r["emitted_s"]), r["drum"], int(r["midi_note"]))
                for r in csv.DictReader(f)]


def _match(times_a, notes_a, times_b, notes_b, lo_s, hi_s) -> list:
    """t_a - t_b of pairs (a, b) of the same note with lo_s <= t_a - t_b <= hi_s, each used once (greedy by time)."""
    used = np.zeros(len(times_b), bool)
    differences = []
    for ta, na in sorted(zip(times_a, notes_a)):
        for j, (tb, nb) in enumerate(zip(times_b, notes_b)):
            if not used[j] and nb == na and lo_s <= ta - tb <= hi_s:
                used[j] = True
                differences.append(ta - tb)
                break
    return differences


def _write_wav(path, audio, rate):
    import soundfile as sf

    sf.write(str(path), audio, rate, subtype="FLOAT")
    return path


def _check_against_file(notes, file_hits, *, rate_hz, min_share):
    """Every live note is a file-run hit, arriving within [frame earlier, block + frame + 2 periods + 10 ms]
    of when the file run released it; and the other way round."""
    hop_s = 240 / SAMPLE_RATE_HZ  # the longer of the two front ends' hops (offline 240, live 128 samples)
    block_s = 128 / rate_hz
    period_s = PERIOD / rate_hz
    lo, hi = -hop_s - block_s, hop_s + block_s + 2 * period_s + 0.010
    live_t = [t for t, _, _ in notes]
    live_n = [n for _, n, _ in notes]
    file_t = [e for _, e, _, _ in file_hits]
    file_n = [n for _, _, _, n in file_hits]
    differences = np.array(_match(live_t, live_n, file_t, file_n, lo, hi))
    matched = len(differences)
    if matched:
        print(f"note arrival - file run's emitted_s over {matched} matched notes: median "
              f"{np.median(differences) * 1e3:.1f} ms, max {differences.max() * 1e3:.1f} ms")
    # the two runs see the audio on frame grids up to a frame apart: a hit right at a decision threshold may
    # fall either way (measured: about one hit in ten, for random weights and for a trained model's faint hits)
    assert matched >= min_share * len(file_hits) and matched >= min_share * len(notes), (
        f"{matched} of {len(notes)} live notes match the {len(file_hits)} hits of transcribe --live")
    return matched


def _f_measure(notes, hits, drum_map, bound_s, classes=("KD", "SD", "HH"), counts=False):
    """Pooled F of kick/snare/hi-hat notes against the true hits: a note counts when it arrives between 50 ms
    before and latency bound + 50 ms after a true onset of its class. With `counts`, (F, true hits, notes)."""
    import mir_eval

    from drumscribe.realtime.drums import SCORE_CLASS

    note_class = {}
    for drum, note in drum_map.notes.items():
        note_class.setdefault(note, SCORE_CLASS[drum])
    tp = n_ref = n_est = 0
    for c in classes:
        ref = np.sort([h.time_s for h in hits if SCORE_CLASS[h.drum] == c])
        est = np.sort([t - bound_s / 2 for t, n, _ in notes if note_class.get(n) == c])
        # same-class notes of one stroke (snare + side stick) count once, as offline/evaluate.py does
        est = est[np.concatenate(([True], np.diff(est) >= 0.010))] if len(est) else est
        n_ref += len(ref)
        n_est += len(est)
        if len(ref) and len(est):
            tp += len(mir_eval.util.match_events(ref, est, 0.050 + bound_s / 2))
    p = tp / n_est if n_est else 0.0
    r = tp / n_ref if n_ref else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return (f, n_ref, n_est) if counts else f


# ---------------------------------------------------------------------------------------------------------------
# tests


def test_live_worker_equals_transcribe_live(groove_hits_audio, live_model):
    """No device: blocks through the ring buffer and the worker thread give exactly the file run's hits."""
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.realtime.engine import Engine
    from drumscribe.realtime.live import LiveWorker, RingBuffer, build_live_stages
    from drumscribe.realtime.sources import ArraySource

    _, audio = groove_hits_audio
    ckpt = load_checkpoint(live_model[0])
    collected = CollectSink()
    ring = RingBuffer(len(audio) + 128)
    worker = LiveWorker(Engine(build_live_stages(ckpt), [collected]), ring)
    worker.start()
    for start in range(0, len(audio), 128):  # as the audio callback would: copy, wake
        assert ring.write(audio[start : start + 128])
        worker.wake.set()
    worker.stop(flush=True)
    assert worker.error is None
    expected = CollectSink()
    Engine(build_live_stages(ckpt), [expected]).run(ArraySource(audio, block_size_samples=128))  # transcribe --live
    assert collected == expected
    assert worker.stats.blocks_done > len(audio) // 128


def test_ring_buffer_wraps_and_refuses_overflow():
    from drumscribe.realtime.live import RingBuffer

    ring = RingBuffer(10)
    out = np.zeros(4, np.float32)
    assert ring.write(np.arange(8, dtype=np.float32))
    assert not ring.write(np.arange(3, dtype=np.float32))  # 8 + 3 > 10: refused whole
    assert ring.read_into(out) and list(out) == [0, 1, 2, 3]
    assert ring.write(np.arange(100, 106, dtype=np.float32))  # wraps around the end
    assert ring.read_into(out) and list(out) == [4, 5, 6, 7]
    assert ring.read_into(out) and list(out) == [100, 101, 102, 103]
    assert not ring.read_into(out)
    assert ring.available() == 2


def _end_to_end(rate_hz, groove_hits_audio, live_model, tmp_path, extra=()):
    """Play the groove into `drumscribe live` through JACK, check the notes against its events, its take and
    `transcribe --live`; returns (note-ons, true hits, model path, rate)."""
    import mido
    import soxr

    hits, audio48 = groove_hits_audio
    audio = audio48 if rate_hz == 48000 else soxr.resample(audio48, 48000, rate_hz, quality="HQ").astype(np.float32)
    model_path, _ = live_model
    wav = _write_wav(tmp_path / "groove.wav", audio, rate_hz)

    # a loaded machine makes JACK clients miss cycles (xruns): the audio of a missed cycle is lost to the input,
    # and MIDI of one may be lost to the recorder. Each such loss may cost a note; allowed up to 10 % of them. A
    # run that lost more than that (the machine was busy with something else) is played again, up to ATTEMPTS
    # times. Times are on the clip's clock, so cycles the harness missed do not shift the notes that follow (seen
    # in CI: 600 xruns in a 10 s run, and every later note 10-100 ms off the file run).
    import re

    played = failed_starts = 0
    while played < ATTEMPTS:
        started = time.monotonic()
        try:
            with JackServer(rate_hz=rate_hz, period=PERIOD, log_path=tmp_path / "jackd.log") as server:
                notes, code, stderr, (record, events), xrun_s = _run_live(server, audio, model_path, tmp_path,
                                                                          port_name=f"ds{rate_hz}", extra=extra)
        except (RuntimeError, TimeoutError) as exc:
            # a server or drumscribe that did not come up: on a stalled machine PortAudio once found no JACK device
            failed_starts += 1
            if failed_starts > START_RETRIES:
                raise
            print(f"\nstart {failed_starts} failed: {exc}")
            time.sleep(5.0)
            continue
        played += 1
        attempt = played
        assert code == 0, stderr
        assert "resampled to 48000 Hz" in stderr or rate_hz == 48000, stderr
        assert time.monotonic() - started < 3 * RUN_TIMEOUT_S
        overflows = sum(map(int, re.findall(r"\+ (\d+) \(input overflow\)", stderr)))
        xruns = len(xrun_s)
        live_hits = _read_events(events)
        if overflows + xruns <= 0.1 * len(live_hits):
            break
        print(f"\nattempt {attempt}: {overflows} input overflows and {xruns} xruns for {len(live_hits)} hits")
        time.sleep(5.0)  # a busy spell may pass
    slack = min(overflows + xruns, 0.1 * len(live_hits))
    print(f"\n{rate_hz} Hz: {len(live_hits)} hits, {len(notes)} notes arrived; {overflows} input overflows, "
          f"{xruns} server xruns seen by the recorder")

    # every hit went out as a note; the take holds them all and survived Ctrl-C
    take = [m for m in mido.MidiFile(str(record)) if m.type == "note_on" and m.velocity > 0]
    assert len(live_hits) >= 1 and len(live_hits) - 0.02 * len(live_hits) - slack <= len(notes) <= len(live_hits), (
        f"{len(notes)} notes arrived for {len(live_hits)} hits")
    assert len(take) >= len(notes) - sum(1 for a, b in zip(live_hits, live_hits[1:]) if a[0] == b[0] and a[3] == b[3])

    # the same notes as transcribe --live on the same audio, each sent as soon as it was decided
    file_hits = _transcribe_live(wav, model_path, tmp_path, extra)
    # at 48 kHz the clip starts on a period boundary, which is a frame boundary of the live front end (128-sample
    # hop), so both runs see the same frames; a 44.1 kHz clip, resampled, starts anywhere within a frame, and hits
    # whose onset flux or class probability lies at a threshold fall either way (measured: 78-81 % matched)
    share = 0.8 if rate_hz == SAMPLE_RATE_HZ else 0.7
    _check_against_file(notes, file_hits, rate_hz=rate_hz,
                        min_share=share - slack / max(len(live_hits), 1))
    return notes, hits, model_path, rate_hz, file_hits, xrun_s, slack


@pytest.mark.slow
@pytest.mark.parametrize("rate_hz", [48000, 44100])
def test_live_jack_end_to_end(rate_hz, groove_hits_audio, live_model, tmp_path):
    """Plumbing, timing, the take and `transcribe --live`, with the fixed random-weight live-shaped model."""
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.realtime.live import latency_bound_s

    notes, hits, model_path, _, _, xrun_s, _ = _end_to_end(rate_hz, groove_hits_audio, live_model, tmp_path)
    # every note within the honest latency bound of a true onset (any drum: the random model's labels mean nothing)
    ckpt = load_checkpoint(model_path)
    bound_s = latency_bound_s(ckpt, 128) + 2 * PERIOD / rate_hz + 0.005
    onsets = np.array(sorted(h.time_s for h in hits))
    xrun_s = np.array(sorted(xrun_s))
    delays, clear = [], []
    for t, _, _ in notes:
        before = onsets[onsets <= t + 0.005]
        delays.append(t - before[-1] if len(before) else np.inf)
        # an xrun from 50 ms before that onset to the note's arrival may have held the note up: the bound is the
        # engine's, on a machine that gives it its cycles
        clear.append(not np.any((xrun_s >= t - delays[-1] - 0.050) & (xrun_s <= t + 0.005)))
    delays, clear = np.array(delays), np.array(clear)
    print(f"\n{rate_hz} Hz: {len(notes)} notes, delay after the latest true onset: median "
          f"{np.median(delays) * 1e3:.1f} ms, max {delays.max() * 1e3:.1f} ms; {clear.sum()} notes clear of xruns: "
          f"median {np.median(delays[clear]) * 1e3 if clear.any() else np.nan:.1f} ms; bound {bound_s * 1e3:.1f} ms")
    # seen with the machine stalled 20 ms in every 120 ms: 43 of 227 notes clear, median 7.4 ms
    assert clear.sum() >= 20, f"only {clear.sum()} of {len(notes)} notes clear of xruns"
    # random weights fire on onsets, though also on some of a drum's decay
    assert np.median(delays[clear]) <= bound_s


@pytest.mark.slow
def test_live_jack_end_to_end_with_profile(groove_hits_audio, live_model, tmp_path):
    """`drumscribe live --profile` through JACK: a kit profile made by `drumscribe calibrate` (a take of kick and
    snare on the groove's kit) for the live-shaped model; its notes are those of `transcribe --live --profile` on
    the same audio, as without a profile, and the profile changes what is heard (not a profile that does nothing)."""
    from drumscribe.offline.render import Hit, load_kit, render_hits

    kit = load_kit(KIT)
    rng = np.random.default_rng(5)
    take = [Hit(0.5 + 6.0 * g + 0.5 * k, drum, 100) for g, drum in enumerate(("kick", "snare")) for k in range(8)]
    audio = render_hits(take, kit, duration_s=take[-1].time_s + 1.5, rng=rng)
    wav = _write_wav(tmp_path / "take.wav", (0.5 * audio / np.abs(audio).max()).astype(np.float32), SAMPLE_RATE_HZ)
    model_path, _ = live_model
    profile = tmp_path / "kit.json"
    done = subprocess.run([sys.executable, "-m", "drumscribe", "calibrate", str(wav), "--sequence", "kick,snare",
                           "--model", str(model_path), "-o", str(profile)], capture_output=True, text=True,
                          cwd=REPO, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    file_hits = _end_to_end(SAMPLE_RATE_HZ, groove_hits_audio, live_model, tmp_path,
                            extra=("--profile", profile))[4]  # the notes as transcribe --live --profile's
    (tmp_path / "plain").mkdir()
    plain = _transcribe_live(tmp_path / "groove.wav", model_path, tmp_path / "plain")
    assert [(d, n) for _, _, d, n in file_hits] != [(d, n) for _, _, d, n in plain]


@pytest.mark.slow
def test_calibrate_live_through_jack(live_model, tmp_path):
    """`drumscribe calibrate --live`: a take of 8 kicks, then 8 snares, played into the live input through JACK; the
    command prompts for each drum, counts its strokes, moves on, and writes a profile that loads (and the take)."""
    import json

    from drumscribe.offline.render import Hit, load_kit, render_hits

    kit = load_kit(KIT)
    take = [Hit(1.0 + 7.0 * g + 0.5 * k, drum, 100) for g, drum in enumerate(("kick", "snare")) for k in range(8)]
    audio = render_hits(take, kit, duration_s=take[-1].time_s + 3.0, rng=np.random.default_rng(6))
    audio = (0.5 * audio / np.abs(audio).max()).astype(np.float32)
    model_path, _ = live_model
    profile, kept = tmp_path / "kit.json", tmp_path / "take.wav"
    with JackServer(rate_hz=SAMPLE_RATE_HZ, period=PERIOD, log_path=tmp_path / "jackd.log") as server:
        process = _drumscribe(["calibrate", "--live", "--sequence", "kick,snare", "--model", model_path,
                               "--timeout", "60", "-o", profile, kept], server.env)
        out, err = _Reader(process.stdout), _Reader(process.stderr)
        with Harness(server) as harness:
            deadline = time.monotonic() + 60
            while not (ports := harness.client.get_ports("PortAudio", is_audio=True, is_input=True)):
                assert process.poll() is None and time.monotonic() < deadline, err.text
                time.sleep(0.1)
            harness.client.connect(harness.out, ports[0])
            time.sleep(0.3)
            harness.play(audio)
            process.wait(timeout=RUN_TIMEOUT_S)
        out.thread.join(5)
        err.thread.join(5)
    assert process.returncode == 0, err.text
    assert "[1/2] play kick 8 times" in out.text and "[2/2] play snare 8 times" in out.text, out.text
    data = json.loads(profile.read_text())
    assert {d: v["hits"] for d, v in data["drums"].items()} == {"kick": 8, "snare": 8}, out.text
    assert kept.is_file()


LIVE_F_GOAL = 0.8
"""The kick/snare/hi-hat F the live issue asks of the live model through JACK on the groove (not reached yet)."""

LIVE_F_FLOOR = 0.45
"""What the shipped live model is held to: it measures 0.54-0.56 here (the offline model 0.71), so this guards
against regressions."""


@pytest.mark.slow
def test_live_jack_accuracy(groove_hits_audio, tmp_path):
    """The shipped live model through JACK: kick/snare/hi-hat notes scored against the groove, a note counting
    when it arrives between 50 ms before and the latency bound + 50 ms after a true onset of its class. The live
    path must lose nothing against the same model's file run (`transcribe --live`, scored on onset times), and
    the F must stay at the measured level (LIVE_F_FLOOR); the issue's LIVE_F_GOAL is open model work."""
    from drumscribe.models import LIVE_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.realtime.drums import load_drum_map
    from drumscribe.realtime.live import latency_bound_s

    if not LIVE_MODEL_PATH.exists():
        pytest.skip(f"no live model shipped yet ({LIVE_MODEL_PATH.name}); the plumbing tests above still ran")
    notes, hits, _, rate_hz, file_hits, _, slack = _end_to_end(48000, groove_hits_audio, (LIVE_MODEL_PATH, True),
                                                               tmp_path)
    bound_s = latency_bound_s(load_checkpoint(LIVE_MODEL_PATH), 128) + 2 * PERIOD / rate_hz + 0.005
    drum_map = load_drum_map()
    f = _f_measure(notes, hits, drum_map, bound_s)
    f_file, n_ref, n_file = _f_measure([(emitted, note, 0) for _, emitted, _, note in file_hits], hits, drum_map,
                                       bound_s, counts=True)
    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.realtime.engine import transcribe_array

    offline = transcribe_array(groove_hits_audio[1].astype(np.float64), load_checkpoint(DEFAULT_MODEL_PATH))
    f_offline = _f_measure([(h.onset_s, drum_map.notes[h.drum], 0) for h in offline], hits, drum_map, 0.0)
    print(f"kick/snare/hi-hat F through JACK {f:.3f}; the file run of the same model {f_file:.3f} "
          f"(latency bound {bound_s * 1e3:.1f} ms); the offline model on the file, at its onset times {f_offline:.3f}")
    # a run on a busy machine loses cycles of audio (input overflows, xruns), each of which may cost a found hit:
    # the run's allowance of such losses (`slack`, at most 10 % of its hits) is allowed for, each lost true
    # positive taking 2 / (true hits + notes) off F (seen in CI: three runs in a row with 100-470 losses each, the
    # last 0.484 against the file's 0.538)
    lost_f = 2 * slack / max(n_ref + n_file, 1)
    assert f >= f_file - 0.05 - lost_f, (f"the live path loses hits the same model finds in the file: F {f:.3f}, "
                                         f"file {f_file:.3f}, allowance for {slack:.1f} lost cycles {lost_f:.3f}")
    assert f >= LIVE_F_FLOOR, (f"{LIVE_MODEL_PATH.name} scores kick/snare/hi-hat F {f:.3f} through JACK "
                               f"({f_file:.3f} from the file), below its measured level {LIVE_F_FLOOR}")


@pytest.mark.slow
def test_live_jack_server_vanishes(groove_hits_audio, live_model, tmp_path):
    """The audio server dies mid-run: one line, exit 1, the take written."""
    _, audio = groove_hits_audio
    with JackServer(rate_hz=SAMPLE_RATE_HZ, period=PERIOD, log_path=tmp_path / "jackd.log") as server:
        notes, code, stderr, (record, events), _ = _run_live(server, audio[: 3 * SAMPLE_RATE_HZ], live_model[0],
                                                             tmp_path, port_name="dsvanish", kill_server_after_s=0.5)
    assert code == 1, stderr
    assert "stopped (device removed or audio server gone)" in stderr, stderr
    assert "Traceback" not in stderr
    assert record.exists() and events.exists()
    import mido

    mido.MidiFile(str(record))  # a valid .mid


@pytest.mark.slow
def test_live_bad_conditions_one_line(live_model, tmp_path):
    """Bad input device, channel, rate, note length or output path: one line and exit 1, and an earlier take at
    --record / --events left as it was (nothing was played, so nothing replaces it); `devices` says no JACK server
    runs."""
    env = {**os.environ, "JACK_DEFAULT_SERVER": f"drumscribe-none-{os.getpid()}", "JACK_NO_START_SERVER": "1"}
    take, events = tmp_path / "take.mid", tmp_path / "take.csv"
    take.write_bytes(b"yesterday's take")
    events.write_bytes(b"yesterday's events")
    record = ["--record", take, "--events", events]
    for args, expected in ((["live", "--input", "no-such-device-xyz", *record],
                            "audio input 'no-such-device-xyz' not found"),
                           (["live", "--input", "no-such-device-xyz", *record],
                            f"; nothing was recorded, so no take was written ('{take}', '{events}' left as they were)"),
                           (["live", "--input", "no-such-device-xyz", "--record", tmp_path / "new.mid"],
                            "; nothing was recorded, so no take was written"),
                           (["live", "--input-channel", "0", *record], "--input-channel 0 must be 1 or more"),
                           (["live", "--sample-rate", "0", *record], "--sample-rate 0 is not in 8000-192000 Hz"),
                           (["live", "--note-length-ms", "inf", *record], "--note-length-ms inf is not in 0-10000 ms"),
                           (["live", "--record", tmp_path / "missing" / "take.mid"], "does not exist")):
        process = _drumscribe([*args, "--model", live_model[0]], env)
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
        assert process.returncode == 1, err
        assert expected in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert take.read_bytes() == b"yesterday's take" and events.read_bytes() == b"yesterday's events"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["take.csv", "take.mid"]
    process = _drumscribe(["devices"], env)
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0
    assert "no JACK server is running" in out


@pytest.mark.slow
def test_live_run_with_no_hit_keeps_the_earlier_take(live_model, tmp_path):
    """A run in which nothing was played (silence, then Ctrl-C): exit 0, and no empty take replaces the one
    at --record / --events; the end says so."""
    silence = np.zeros(SAMPLE_RATE_HZ, np.float32)
    with JackServer(rate_hz=SAMPLE_RATE_HZ, period=PERIOD, log_path=tmp_path / "jackd.log") as server:
        (tmp_path / "dsquiet.mid").write_bytes(b"yesterday's take")
        (tmp_path / "dsquiet.csv").write_bytes(b"yesterday's events")
        notes, code, stderr, (record, events), _ = _run_live(server, silence, live_model[0], tmp_path,
                                                             port_name="dsquiet")
    assert code == 0, stderr
    assert notes == []
    assert (f"no hit was recorded, so no take was written ('{record}', '{events}' left as they were)"
            in stderr), stderr
    assert record.read_bytes() == b"yesterday's take" and events.read_bytes() == b"yesterday's events"
    assert "Traceback" not in stderr and "wrote" not in stderr


def test_a_port_name_too_long_for_jack_is_one_line():
    """JACK refuses a client name of 64 bytes with 'JACK server not running?': the name is checked first."""
    from drumscribe.realtime.drums import load_drum_map
    from drumscribe.realtime.midi_out import MAX_PORT_NAME_BYTES, MidiOutputError, MidiPortSink

    for name in ("x" * (MAX_PORT_NAME_BYTES + 1), "é" * 32):
        with pytest.raises(MidiOutputError, match=r"--port-name is 64 bytes long; MIDI systems take at most 63"):
            MidiPortSink(load_drum_map(), api="jack", port_name=name)


def test_take_sink_writes_only_once_a_hit_came(tmp_path):
    """TakeSink with drumscribe's own file sinks: no hit, no file (an earlier one kept); a hit, a complete file;
    an inner sink that cannot be made is an error the sink keeps, and nothing is written."""
    import mido

    from drumscribe.realtime.drums import load_drum_map
    from drumscribe.realtime.live import TakeSink
    from drumscribe.realtime.sinks import CsvEventsSink, MidiFileSink
    from drumscribe.realtime.types import DrumHit

    gm = load_drum_map()
    old = tmp_path / "old.mid"
    old.write_bytes(b"an earlier take")
    quiet = TakeSink(old, lambda: MidiFileSink(old, gm))
    quiet.write([])
    quiet.close()
    assert not quiet.written and quiet.hits == 0 and quiet.error is None
    assert old.read_bytes() == b"an earlier take"
    for path, factory in ((tmp_path / "new.mid", lambda p: MidiFileSink(p, gm)),
                          (tmp_path / "new.csv", lambda p: CsvEventsSink(p, gm))):
        take = TakeSink(path, lambda factory=factory, path=path: factory(path))
        take.write([DrumHit(0.5, "snare", 100, 0.9), DrumHit(1.0, "kick", 90, 0.8)])
        assert not path.exists()  # written on close, atomically
        take.close()
        take.close()
        assert take.written and take.hits == 2
    assert sum(m.type == "note_on" and m.velocity > 0 for m in mido.MidiFile(str(tmp_path / "new.mid"))) == 2
    assert len((tmp_path / "new.csv").read_text().splitlines()) == 3
    gone = tmp_path / "gone" / "take.csv"
    broken = TakeSink(gone, lambda: CsvEventsSink(gone, gm))
    with pytest.raises(OSError):
        broken.write([DrumHit(0.5, "snare", 100, 0.9)])
    broken.close()
    assert isinstance(broken.error, OSError) and not broken.written and not gone.parent.exists()


@pytest.mark.slow
def test_jack_server_that_does_not_answer_is_started_again(monkeypatch):
    """The first jackd never answers (as a stalled machine once left one): it is stopped, a second starts."""
    import jack_harness

    monkeypatch.setattr(jack_harness, "START_TIMEOUT_S", 2.0)
    real = jack_harness.JackServer.answers
    pids = []

    def deaf_first(self):
        pids.append(self.process.pid)
        return len(set(pids)) > 1 and real(self)

    monkeypatch.setattr(jack_harness.JackServer, "answers", deaf_first)
    with jack_harness.JackServer() as server:
        first, second = dict.fromkeys(pids)
        assert server.process.pid == second and real(server)
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)  # stopped, and reaped


@pytest.mark.slow
def test_jack_server_that_exits_at_start_says_so():
    import jack_harness

    with pytest.raises(jack_harness.JackUnavailable, match="jackd exited at start with code"):
        jack_harness.JackServer(rate_hz=-1).start()
