"""Live transcription: an audio input's blocks through the engine on a worker thread, hits out as they are decided.

    audio callback (PortAudio's thread)          worker thread (this module)               main thread
    copy the block into a preallocated ring  ->  ring -> [resampler] -> Engine.process  ->  status line,
    and wake the worker; nothing else            -> sinks (MIDI port first), note-offs      Ctrl-C, exit code

The live configuration is the engine with `LIVE` scheduling (every frame computed as it completes, every onset
classified the moment its look-ahead is there), the live model (`models.LIVE_MODEL_PATH`, a short look-ahead)
and 128-sample blocks. `drumscribe transcribe --live FILE` runs a file through exactly this configuration
(`build_live_stages`), so a file gives the hits a live run gives on the same audio.

Look-ahead: a hit is decided `frames_after` spectrogram frames (the live model's `HitCNNConfig.frames_after`,
at least the one frame the onset detector waits for) after its onset frame ends; see `lookahead_s`.

Input rates: the engine runs at `realtime.SAMPLE_RATE_HZ` (48 kHz). An input at another rate (44.1 kHz is common)
is resampled on the worker thread by a streaming resampler (`soxr.ResampleStream`, see RESAMPLE_QUALITY); the audio
callback never resamples.

The callback takes no lock that compute holds: the ring buffer is single-producer single-consumer with
monotonically increasing indices, and the wake-up is a `threading.Event` whose internal lock the worker holds only
for the instant of `clear()`/`wait()`, never while computing. Python's GIL remains: the worker releases it inside
numpy and torch, and `sys.setswitchinterval` is lowered so a waiting callback gets it within half a millisecond.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import DEFAULT_BLOCK_SIZE_SAMPLES, RESAMPLE_QUALITY, SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

RING_SECONDS = 2.0
"""Audio the ring buffer holds before the callback has to drop blocks (the worker is that far behind)."""

STALL_TIMEOUT_S = 2.0
"""An input that delivers no block for this long is taken as gone (unplugged, server stopped)."""

GIL_SWITCH_INTERVAL_S = 0.0005
"""How long the audio callback may wait for the GIL while the worker runs Python code (Python's default: 5 ms)."""

WORKER_RT_PRIORITY = 5
"""SCHED_FIFO priority the worker thread asks for (Linux, where permitted: root, or a user in an 'audio' group with
an rtprio limit). Below JACK's client threads (its default is 10 and up), so the audio callback still preempts it;
above every ordinary process, so a busy machine does not delay a block by a scheduler time slice (measured on a
loaded 2-core machine: per-block p99 8.2 ms at normal priority, 0.97 ms with it). Without permission the worker
runs at normal priority and says so in `realtime_priority`."""

CLOSE_TIMEOUT_S = 3.0
"""How long closing a device or port may take before it is abandoned as hung."""

MIN_INPUT_RATE_HZ = 8000
MAX_INPUT_RATE_HZ = 192000


class LiveInputError(RuntimeError):
    """An audio input that cannot be opened or used; the message is one line for the user."""


# ---------------------------------------------------------------------------------------------------------------
# The live configuration


def live_model_path() -> Path:
    """The shipped live model, or the offline model (with a warning) while no live model has been shipped."""
    from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH

    if LIVE_MODEL_PATH.exists():
        return LIVE_MODEL_PATH
    log.warning("the live model %s does not exist yet; using the offline model %s (its look-ahead is long, so "
                "notes come late)", LIVE_MODEL_PATH, DEFAULT_MODEL_PATH)
    return DEFAULT_MODEL_PATH


def build_live_stages(checkpoint, *, profile=None) -> list:
    """The stages of a live run: the checkpoint's chain with LIVE scheduling, its network compiled for one-onset
    inference (`compile_for_live`); with a kit `profile` (realtime.profile), its head for this checkpoint too."""
    from .engine import LIVE, build_stages

    network = compile_for_live(checkpoint.model)
    if profile is not None and profile.head_for(checkpoint).embedding and not network.has_embedding:
        network = checkpoint.model.eval()  # the head reads the embedding, which the compiled form does not give
    return build_stages(checkpoint, LIVE, network=network, profile=profile)


class OnnxHitModel:
    """A torch network in ONNX Runtime on one thread (models.cnn.onnx_network), called like the module (torch tensor
    in, logits tensor out): for bench/latency.py, which times each runtime the live path can use."""

    def __init__(self, model):
        import torch

        from drumscribe.models.cnn import onnx_network

        self.config = model.config
        self.network = onnx_network(model)
        self.torch = torch

    def __call__(self, windows):
        return self.torch.from_numpy(self.network.run_numpy(np.ascontiguousarray(windows.numpy(), dtype=np.float32)))


def compile_for_live(model):
    """The fastest working form of a network for one onset at a time (its `for_live()`, models.runtime.Network: a
    torch module's is ONNX Runtime, else TorchScript frozen, else the module itself; an ONNX network is itself).
    Live runs and `transcribe --live` both use this, so they give the same hits."""
    return model.eval().for_live()


def freeze_for_inference(model):
    """A TorchScript-frozen copy of a torch network (models.cnn.freeze_module), or the module itself where freezing
    fails; for bench/latency.py."""
    from drumscribe.models.cnn import freeze_module

    frozen = freeze_module(model)
    return model if frozen is None else frozen


def lookahead_frames(checkpoint) -> int:
    """Frames after the onset frame that must exist before a hit is decided: the model's look-ahead, and at least
    the frame a peak-picking onset detector waits for (none for a rising-edge one)."""
    waits = 0 if checkpoint.onset_params.rising else 1
    return max(int(checkpoint.model.config.frames_after), waits)


def lookahead_s(checkpoint) -> float:
    fp = checkpoint.feature_params
    return lookahead_frames(checkpoint) * fp["hop_samples"] / fp["sample_rate_hz"]


def latency_bound_s(checkpoint, block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES) -> float:
    """An honest upper bound on (hit released) - (true onset), compute time aside: the onset is seen at the latest
    when the attack has crossed one whole analysis window (n_fft), then waits for the look-ahead frames, then for
    the end of the block that completes them."""
    fp = checkpoint.feature_params
    samples = fp["n_fft"] + lookahead_frames(checkpoint) * fp["hop_samples"] + block_size_samples
    return samples / fp["sample_rate_hz"]


# ---------------------------------------------------------------------------------------------------------------
# Ring buffer


class RingBuffer:
    """Single-producer single-consumer audio ring, preallocated. The producer (audio callback) only writes and
    advances `write_index`; the consumer (worker) only reads and advances `read_index`. No locks."""

    def __init__(self, capacity_samples: int):
        if capacity_samples < 1:
            raise ValueError(f"ring capacity {capacity_samples} must be >= 1")
        self.capacity = int(capacity_samples)
        self.buffer = np.zeros(self.capacity, dtype=np.float32)
        self.write_index = 0  # samples ever written
        self.read_index = 0  # samples ever read

    def available(self) -> int:
        return self.write_index - self.read_index

    def write(self, samples: np.ndarray) -> bool:
        """Copy samples in; False (and nothing written) when they do not fit."""
        n = len(samples)
        w = self.write_index
        if w + n - self.read_index > self.capacity:
            return False
        start = w % self.capacity
        first = min(n, self.capacity - start)
        self.buffer[start : start + first] = samples[:first]
        if first < n:
            self.buffer[: n - first] = samples[first:]
        self.write_index = w + n  # published last: the reader never sees a half-written block
        return True

    def read_into(self, out: np.ndarray) -> bool:
        """Fill `out` from the ring; False (and nothing read) when fewer samples are there."""
        n = len(out)
        r = self.read_index
        if self.write_index - r < n:
            return False
        start = r % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self.buffer[start : start + first]
        if first < n:
            out[first:] = self.buffer[: n - first]
        self.read_index = r + n
        return True


# ---------------------------------------------------------------------------------------------------------------
# Statistics


@dataclass
class LiveStats:
    """What the status line shows; written by the worker and the callback, read by the main thread."""

    blocks_in: int = 0  # blocks the callback received
    dropped_blocks: int = 0  # blocks the callback could not store: the worker was RING_SECONDS behind
    input_overflows: int = 0  # blocks the audio system flagged as overflowed (lost before they reached us)
    startup_overflows: int = 0  # the same flag before the engine ran its first block: not audio it lost
    blocks_done: int = 0  # engine blocks the worker processed
    hits: int = 0
    hits_per_drum: dict = field(default_factory=dict)
    peak_level: float = 0.0  # peak |sample| since the status line last read it
    compute_s: np.ndarray = field(default_factory=lambda: np.zeros(1 << 14))  # per-block compute, a ring
    latency_s: np.ndarray = field(default_factory=lambda: np.zeros(1 << 10))  # per-hit latency, a ring

    def count_input_overflow(self) -> None:
        """The input callback saw PortAudio's input_overflow flag. Streams often raise it as they start (audio was
        dropped before the first block reached us): until the engine has run a block, it is a start-up overflow,
        not a dropped block of the run."""
        if self.blocks_done:
            self.input_overflows += 1
        else:
            self.startup_overflows += 1

    def compute_percentiles_ms(self) -> tuple[float, float, float]:
        """(p50, p99, max) of the last blocks' compute time, in ms."""
        n = min(self.blocks_done, len(self.compute_s))
        if not n:
            return (0.0, 0.0, 0.0)
        values = self.compute_s[:n] * 1e3
        return float(np.percentile(values, 50)), float(np.percentile(values, 99)), float(values.max())

    def latency_ms(self) -> tuple[float, float]:
        """(median, max) of the last hits' latency (true onset estimate to note sent), in ms."""
        n = min(self.hits, len(self.latency_s))
        if not n:
            return (float("nan"), float("nan"))
        values = self.latency_s[:n] * 1e3
        return float(np.median(values)), float(values.max())

    def take_peak_dbfs(self) -> float:
        peak, self.peak_level = self.peak_level, 0.0
        return 20 * np.log10(peak) if peak > 1e-10 else -200.0


_SHORT_DRUM_NAMES = {"kick": "kick", "snare": "snare", "side_stick": "stick", "hh_closed": "hh", "hh_pedal": "hhp",
                     "hh_open": "hho", "tom_low": "tom3", "tom_mid": "tom2", "tom_high": "tom1", "crash": "crash",
                     "ride": "ride"}


def format_status(stats: LiveStats) -> str:
    """One status line: input level, hits per drum, latency, compute time, dropped blocks."""
    from .drums import DRUMS

    level = stats.take_peak_dbfs()
    meter = "-inf" if level <= -120 else f"{level:5.1f}"
    counts = " ".join(f"{_SHORT_DRUM_NAMES.get(d, d)} {stats.hits_per_drum[d]}" for d in DRUMS
                      if stats.hits_per_drum.get(d)) or "no hits yet"
    median, worst = stats.latency_ms()
    latency = "-" if np.isnan(median) else f"{median:.1f} ms (max {worst:.1f})"
    _, p99, _ = stats.compute_percentiles_ms()
    dropped = stats.dropped_blocks + stats.input_overflows  # not the start-up overflows: no audio of the run
    return (f"in {meter} dBFS | {counts} | latency {latency} | compute p99 {p99:.2f} ms | "
            f"dropped {dropped}")


# ---------------------------------------------------------------------------------------------------------------
# The worker


class LiveWorker:
    """Runs engine blocks from a ring buffer on its own thread and hands hits to the engine's sinks at once.

    `input_rate_hz` other than the engine's rate is resampled here (soxr.ResampleStream). `midi_sinks` get
    `send_due_note_offs()` after every block. `stop()` processes what the ring still holds, then (flush) enough
    silence for every onset heard to be decided, so a recorded take holds the last hits too.
    """

    def __init__(self, engine, ring: RingBuffer, *, input_rate_hz: int = SAMPLE_RATE_HZ,
                 block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES, midi_sinks: list = (),
                 stats: LiveStats | None = None, wake: threading.Event | None = None):
        if block_size_samples < 1:
            raise ValueError(f"block_size_samples {block_size_samples} must be >= 1")
        self.engine = engine
        self.ring = ring
        self.input_rate_hz = int(input_rate_hz)
        self.block_size_samples = int(block_size_samples)
        self.midi_sinks = list(midi_sinks)
        self.stats = stats or LiveStats()
        self.wake = wake or threading.Event()
        self.error = None  # an exception the worker died of
        self.realtime_priority = None  # whether the thread got WORKER_RT_PRIORITY (None: not started yet)
        self._stop = False
        self._thread = None
        # input-rate blocks are read from the ring in the size the engine wants, scaled to the input rate
        ratio = self.input_rate_hz / engine.sample_rate_hz
        self.read_size = self.block_size_samples if ratio == 1 else max(1, int(round(self.block_size_samples * ratio)))
        self._raw = np.zeros(self.read_size, dtype=np.float32)
        self._block = np.zeros(self.block_size_samples, dtype=np.float64)
        self._resampler = None
        if self.input_rate_hz != engine.sample_rate_hz:
            import soxr

            self._resampler = soxr.ResampleStream(self.input_rate_hz, engine.sample_rate_hz, 1, dtype="float32",
                                                  quality=RESAMPLE_QUALITY)
            self._staging = np.zeros(4 * self.block_size_samples + 4 * self.read_size, dtype=np.float64)
            self._staged = 0

    # -- thread control

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("LiveWorker already started")
        self._thread = threading.Thread(target=self._run, name="drumscribe-live-worker", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, *, flush: bool = True, timeout_s: float = 10.0) -> None:
        """Stop the thread after it has processed what the ring holds; then flush silence (on this thread)."""
        self._stop = True
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if flush and self.error is None:
            self.flush()

    def flush(self) -> None:
        """Silence through the engine until every onset heard so far is decided (not real time: at the end)."""
        from .engine import tail_samples

        silence = np.zeros(self.block_size_samples)
        for _ in range(-(-tail_samples(self.engine.stages) // self.block_size_samples)):
            self._process(silence)
        for sink in self.midi_sinks:
            sink.send_due_note_offs()

    # -- the loop

    def _run(self) -> None:
        torch = sys.modules.get("torch")  # loaded when the network runs in torch (no ONNX bundle)
        if torch is not None:
            torch.set_num_threads(1)
        self.realtime_priority = raise_thread_priority()
        try:
            ring, raw, wake = self.ring, self._raw, self.wake
            while True:
                if ring.read_into(raw):
                    self._consume(raw)
                    continue
                if self._stop:
                    break
                wake.clear()
                if ring.available() >= len(raw) or self._stop:
                    continue
                wake.wait(0.05)
                if self.midi_sinks:
                    for sink in self.midi_sinks:
                        sink.send_due_note_offs()
        except Exception as exc:  # reported by the session as one line; the take is still written
            self.error = exc
            log.debug("live worker failed", exc_info=True)

    def _consume(self, raw: np.ndarray) -> None:
        peak = float(np.abs(raw).max()) if len(raw) else 0.0
        if peak > self.stats.peak_level:
            self.stats.peak_level = peak
        if self._resampler is None:
            self._block[:] = raw
            self._process(self._block)
            return
        out = self._resampler.resample_chunk(raw)  # soxr releases its output in bursts of several blocks
        n = len(out)
        if self._staged + n > len(self._staging):
            grown = np.zeros(2 * (self._staged + n), dtype=np.float64)
            grown[: self._staged] = self._staging[: self._staged]
            self._staging = grown
        self._staging[self._staged : self._staged + n] = out
        self._staged += n
        size = self.block_size_samples
        start = 0
        while self._staged - start >= size:
            self._block[:] = self._staging[start : start + size]
            self._process(self._block)
            start += size
        remaining = self._staged - start
        self._staging[:remaining] = self._staging[start : self._staged]
        self._staged = remaining

    def _process(self, block: np.ndarray) -> None:
        stats = self.stats
        t0 = time.perf_counter()
        hits = self.engine.process(block)  # the sinks (MIDI port first) get the hits inside
        for sink in self.midi_sinks:
            sink.send_due_note_offs()
        elapsed = time.perf_counter() - t0
        stats.compute_s[stats.blocks_done % len(stats.compute_s)] = elapsed
        stats.blocks_done += 1
        if hits:
            # latency as the player hears it: engine delay (onset to block end) + audio still queued + compute
            backlog_s = self.ring.available() / self.input_rate_hz
            for hit in hits:
                stats.latency_s[stats.hits % len(stats.latency_s)] = hit.emitted_s - hit.onset_s + backlog_s + elapsed
                stats.hits += 1
                stats.hits_per_drum[hit.drum] = stats.hits_per_drum.get(hit.drum, 0) + 1


# ---------------------------------------------------------------------------------------------------------------
# Audio input (PortAudio through sounddevice)


def _sounddevice():
    """sounddevice, imported with PortAudio's C-level complaints (no JACK server, no ALSA card) silenced."""
    from .midi_out import quiet_c_stderr

    try:
        with quiet_c_stderr():
            import sounddevice
    except OSError as exc:  # libportaudio missing
        raise LiveInputError(f"PortAudio cannot be loaded ({exc}); install libportaudio2") from None
    return sounddevice


def list_audio_inputs() -> list[dict]:
    """Every audio device with input channels: index, name, host API, channels, default rate, is it the default."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise LiveInputError(f"the audio system cannot be queried ({exc})") from None
    rows = []
    for d in devices:
        if d["max_input_channels"] < 1:
            continue
        rows.append({"index": d["index"], "name": d["name"], "hostapi": hostapis[d["hostapi"]]["name"],
                     "channels": d["max_input_channels"], "default_rate_hz": d["default_samplerate"],
                     "default": d["index"] == default_in})
    return rows


class AudioInput:
    """An audio input device delivering mono blocks (one chosen channel) into a RingBuffer, from its callback.

    `device`: an index or a name substring (None: the system default input); `channel`: 1-based; `sample_rate_hz`:
    None takes the device's default rate. Opening checks all of it and raises LiveInputError with one line.
    """

    def __init__(self, device=None, *, channel: int = 1, sample_rate_hz: int | None = None,
                 block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES):
        sd = self._sd = _sounddevice()
        self.block_size_samples = int(block_size_samples)
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        try:
            info = sd.query_devices(device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            available = ", ".join(f"{r['index']} '{r['name']}'" for r in list_audio_inputs()) or "none"
            if device is None:
                raise LiveInputError("no audio input device found: PortAudio sees no sound card or audio server with "
                                     f"inputs (inputs: {available}); plug in an interface or start JACK") from None
            raise LiveInputError(f"audio input '{device}' not found ({_one_line(exc)}); inputs: {available}") from None
        self.device_index = info["index"]
        self.name = info["name"]
        self.max_channels = int(info["max_input_channels"])
        if self.max_channels < 1:
            raise LiveInputError(f"device '{self.name}' has no input channels")
        if not 1 <= channel <= self.max_channels:
            raise LiveInputError(f"--input-channel {channel} is not an input channel of device '{self.name}' "
                                 f"(it has 1-{self.max_channels})")
        self.channel = channel
        rate = info["default_samplerate"] if sample_rate_hz is None else sample_rate_hz
        if not MIN_INPUT_RATE_HZ <= rate <= MAX_INPUT_RATE_HZ or rate != int(rate):
            raise LiveInputError(f"sample rate {rate} Hz is not an integer in "
                                 f"{MIN_INPUT_RATE_HZ}-{MAX_INPUT_RATE_HZ} Hz")
        self.sample_rate_hz = int(rate)
        try:
            sd.check_input_settings(device=self.device_index, channels=channel, dtype="float32",
                                    samplerate=self.sample_rate_hz)
        except (ValueError, sd.PortAudioError) as exc:
            raise LiveInputError(f"audio input '{self.name}' cannot record {channel} channel(s) at "
                                 f"{self.sample_rate_hz} Hz ({_one_line(exc)}); device default: "
                                 f"{info['default_samplerate']:g} Hz") from None
        self.stream = None
        self.finished = False  # PortAudio ended the stream (device gone, server stopped)
        self.abandoned = False  # the stream of a vanished device was left unclosed (closing it would hang)
        self.ring = None
        self.stats = None
        self.wake = None

    @property
    def description(self) -> str:
        return f"'{self.name}' channel {self.channel} at {self.sample_rate_hz} Hz"

    def start(self, ring: RingBuffer, stats: LiveStats, wake: threading.Event) -> None:
        sd = self._sd
        self.ring, self.stats, self.wake = ring, stats, wake
        column = self.channel - 1

        def callback(indata, frames, time_info, status):
            # copy, count, wake: no allocation of arrays, no locks that compute holds, no prints
            if status.input_overflow:
                stats.count_input_overflow()
            stats.blocks_in += 1
            if not ring.write(indata[:, column]):
                stats.dropped_blocks += 1
            wake.set()

        def finished():
            self.finished = True
            wake.set()

        try:
            self.stream = sd.InputStream(device=self.device_index, channels=self.channel, dtype="float32",
                                         samplerate=self.sample_rate_hz, blocksize=self.block_size_samples,
                                         latency="low", callback=callback, finished_callback=finished)
            self.stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise LiveInputError(f"audio input {self.description} cannot be started ({_one_line(exc)})") from None

    @property
    def gone(self) -> bool:
        """The device or audio server went away: PortAudio ended the stream or it stopped being active."""
        stream = self.stream
        return self.finished or (stream is not None and not stream.active)

    def close(self) -> None:
        """Stop and close the stream; safe twice. The stream of a device that is gone is abandoned, not closed:
        PortAudio's JACK host API blocks forever stopping a stream whose server died (and asserts in
        Pa_Terminate), so `abandoned` tells the command to leave the process without PortAudio's exit handler."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        if self.finished or not stream.active:
            self.abandoned = True
            return

        def stop():
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)

        if not run_with_timeout(stop, CLOSE_TIMEOUT_S):
            self.abandoned = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raise_thread_priority(priority: int = WORKER_RT_PRIORITY) -> bool:
    """Put the calling thread on SCHED_FIFO at `priority` where the system allows it; False where it does not."""
    import os

    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: the calling thread, on Linux
    except (OSError, ValueError):
        return False
    return True


def run_with_timeout(fn, timeout_s: float) -> bool:
    """Run fn on a daemon thread; True when it returned within timeout_s (a hung driver call is left behind)."""
    thread = threading.Thread(target=fn, name="drumscribe-close", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------------------------------------------------------
# A live session: input -> worker -> sinks


class LiveSession:
    """Owns a live run's threads: starts the worker, then the input; `check()` says why the run cannot go on;
    `close()` stops the input, drains and flushes the worker and closes every sink (the .mid is written). Safe
    twice. `sinks` go to the engine in order (put the MIDI port first); `midi_sinks` also get their note-offs."""

    def __init__(self, checkpoint, audio_input, sinks: list, *, midi_sinks: list = (),
                 block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES, stall_timeout_s: float = STALL_TIMEOUT_S,
                 profile=None):
        from .engine import Engine

        self.audio_input = audio_input
        self.sinks = list(sinks)
        self.stall_timeout_s = stall_timeout_s
        self.engine = Engine(build_live_stages(checkpoint, profile=profile), self.sinks)
        self.stats = LiveStats()
        self.wake = threading.Event()
        self.ring = RingBuffer(int(RING_SECONDS * audio_input.sample_rate_hz))
        self.worker = LiveWorker(self.engine, self.ring, input_rate_hz=audio_input.sample_rate_hz,
                                 block_size_samples=block_size_samples, midi_sinks=midi_sinks, stats=self.stats,
                                 wake=self.wake)
        self.closed = False
        self._last_blocks_in = 0
        self._last_progress = time.monotonic()
        self._switch_interval = sys.getswitchinterval()

    def start(self) -> None:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.worker.start()
        self.audio_input.start(self.ring, self.stats, self.wake)
        self._last_progress = time.monotonic()

    def check(self) -> str | None:
        """None while all is well, else one line on why the run stopped (input gone, worker failed)."""
        if self.worker.error is not None:
            return f"the transcription worker failed: {_one_line(self.worker.error)}"
        if self.audio_input.gone:
            return f"audio input {self.audio_input.description} stopped (device removed or audio server gone)"
        now = time.monotonic()
        if self.stats.blocks_in != self._last_blocks_in:
            self._last_blocks_in = self.stats.blocks_in
            self._last_progress = now
        elif now - self._last_progress > self.stall_timeout_s:
            return (f"audio input {self.audio_input.description} delivered no audio for "
                    f"{self.stall_timeout_s:g} s (device removed or audio server gone)")
        return None

    def close(self) -> None:
        """Input off, the worker drained and flushed, then the file sinks (the take is safe), then the MIDI
        ports (all notes off), each port given CLOSE_TIMEOUT_S: a port whose server vanished may hang."""
        if self.closed:
            return
        self.closed = True
        error = None
        try:
            self.audio_input.close()
        except Exception as exc:  # a vanished device may fail to close; the take matters more
            error = exc
        self.worker.stop(flush=True)
        sys.setswitchinterval(self._switch_interval)
        ports = [s for s in self.sinks if s in self.worker.midi_sinks]
        for sink in [s for s in self.sinks if s not in ports]:
            try:
                sink.close()
            except Exception as exc:
                error = error or exc
        for sink in ports:
            if not run_with_timeout(sink.close, CLOSE_TIMEOUT_S):
                self.abandoned_ports = True
        if error is not None:
            raise error

    abandoned_ports = False

    @property
    def abandoned(self) -> bool:
        """A device or port was left unclosed because its driver hung: the process should end with os._exit."""
        return self.audio_input.abandoned or self.abandoned_ports

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------------------------
# The take: file outputs made at the first hit


class TakeSink:
    """A file output of a live run (the `--record` .mid, the `--events` CSV), made at the run's first hit.

    A run that records no hit writes no file: an input that fails at start, or a run in which nothing was played,
    never replaces an existing take with an empty one. Once a hit came, the file is written on close, also after
    Ctrl-C or an input that vanished mid-run (the inner sinks write atomically: complete, or the old file kept).
    After `close()`: `written` (the file is complete at `path`), else `error` (writing it failed) or `hits == 0`.
    The inner sink is made on the worker thread, once; `factory()` makes it.
    """

    def __init__(self, path, factory):
        self.path = Path(path)
        self._factory = factory
        self.sink = None
        self.hits = 0
        self.closed = False
        self.written = False
        self.error = None

    def write(self, hits) -> None:
        if not hits:
            return
        if self.sink is None:
            try:
                self.sink = self._factory()
            except Exception as exc:  # the worker fails with it; close() then writes nothing
                self.error = exc
                raise
        self.sink.write(hits)
        self.hits += len(hits)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sink is None:
            return
        try:
            self.sink.close()
        except Exception as exc:
            self.error = exc
            raise
        self.written = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
