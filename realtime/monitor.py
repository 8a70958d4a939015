"""Live monitoring: the hits of a live run played back at once through a drum kit and an effects preset.

    worker thread (the engine)                  output callback (PortAudio's thread)
    MonitorSink.write(hits): append (note,  ->  take the queued notes, play them at the start of this block:
    velocity) to a deque; nothing else          Sampler -> EffectChain -> the output buffer

A monitor is a sampler, so unlike an input callback its output callback has to make sound: it runs the sampler and
the effects (numpy and pedalboard, which release the GIL; no torch, no lock that the engine holds: the deque's
append and popleft are atomic). A hit sounds at the start of the next output block after the engine decides it:
the engine's look-ahead plus one output block late, the same delay for every hit.
"""
from __future__ import annotations

import collections

import numpy as np

from . import DEFAULT_BLOCK_SIZE_SAMPLES, SAMPLE_RATE_HZ
from .effects import EffectChain, EffectPreset
from .kits import Kit
from .sampler import NoteBlock, Sampler


class MonitorError(RuntimeError):
    """An output that cannot be used for monitoring; the message is one line for the user."""


def _sounddevice():
    from .midi_out import quiet_c_stderr

    try:
        with quiet_c_stderr():  # PortAudio probes JACK and ALSA on import and complains on stderr
            import sounddevice
    except OSError as exc:  # libportaudio missing
        raise MonitorError(f"PortAudio cannot be loaded ({exc}); install libportaudio2") from None
    return sounddevice


def list_audio_outputs() -> list[dict]:
    """Every audio device that can play stereo (what --monitor-output takes): index, name, host API, channels,
    default rate, is it the default output."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_out = sd.default.device[1]
    except sd.PortAudioError as exc:
        raise MonitorError(f"the audio system cannot be queried ({' '.join(str(exc).split())})") from None
    return [{"index": d["index"], "name": d["name"], "hostapi": hostapis[d["hostapi"]]["name"],
             "channels": d["max_output_channels"], "default_rate_hz": d["default_samplerate"],
             "default": d["index"] == default_out}
            for d in devices if d["max_output_channels"] >= 2]


class MonitorSink:
    """A sink of the engine that plays every hit on a kit through an effects preset, on an audio output.

    `render(n_samples)` is what the output callback runs; `open()` starts the output stream (`device`: an index, a
    name substring or None for the default output). `write(hits)`, `close()` (safe twice), a context manager.
    """

    def __init__(self, kit: Kit, preset: EffectPreset, drum_map, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                 block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES):
        self.drum_map = drum_map
        self.kit_name = kit.name
        self.preset_name = preset.name
        self.sample_rate_hz = sample_rate_hz
        self.block_size_samples = block_size_samples
        self.sampler = Sampler(kit, drum_map, sample_rate_hz=sample_rate_hz)
        self.effects = EffectChain(preset, sample_rate_hz=sample_rate_hz)
        self.pending = collections.deque()  # (note, velocity) from the worker, taken by the callback
        self.stream = None
        self.device_name = ""
        self.hostapi_name = ""
        self.blocks = 0
        self.underflows = 0
        self.blowups = 0  # blocks silenced because the effects gave infinities or NaN
        self.closed = False

    def write(self, hits) -> None:
        for hit in hits:
            self.pending.append((self.drum_map.note(hit.drum), hit.velocity))

    def render(self, n_samples: int) -> np.ndarray:
        """The next `n_samples` of the monitor, (2, n) float32: the notes queued so far start at its first sample."""
        notes = []
        while self.pending:
            note, velocity = self.pending.popleft()
            notes.append((0, note, velocity))
        out = self.effects.process(self.sampler.process(NoteBlock(n_samples, tuple(notes))))
        if not np.isfinite(out).all():  # a plugin blew up (a VST3's own values are not range-checked): silence,
            self.blowups += 1  # never noise on the speakers, and the chain starts afresh
            self.effects.reset()
            out = np.zeros_like(out)
        return out

    def open(self, device=None) -> MonitorSink:
        sd = _sounddevice()
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        try:
            info = sd.query_devices(device, "output")
            sd.check_output_settings(device=info["index"], channels=2, dtype="float32",
                                     samplerate=self.sample_rate_hz)
        except (ValueError, sd.PortAudioError) as exc:
            outputs = ", ".join(f"{d['index']} '{d['name']}'" for d in sd.query_devices()
                                if d["max_output_channels"] >= 2) or "none"
            what = "the default audio output" if device is None else f"audio output '{device}'"
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise MonitorError(f"--monitor: {what} cannot play stereo at {self.sample_rate_hz} Hz ({reason}); "
                               f"outputs: {outputs}") from None
        self.device_name = info["name"]
        try:
            self.hostapi_name = sd.query_hostapis(info["hostapi"])["name"]
        except (KeyError, IndexError, sd.PortAudioError):
            self.hostapi_name = ""

        def callback(outdata, frames, time_info, status):
            if status.output_underflow:
                self.underflows += 1
            outdata[:] = self.render(frames).T
            self.blocks += 1

        try:
            self.stream = sd.OutputStream(device=info["index"], channels=2, dtype="float32",
                                          samplerate=self.sample_rate_hz, blocksize=self.block_size_samples,
                                          latency="low", callback=callback)
            self.stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise MonitorError(f"--monitor: output '{self.device_name}' cannot be started "
                               f"({' '.join(str(exc).split())})") from None
        return self

    @property
    def description(self) -> str:
        """Where the sound goes and what makes it, for the start-up line (once open)."""
        where = f"audio output '{self.device_name}'" + (f" ({self.hostapi_name})" if self.hostapi_name else "")
        return f"{where}, kit '{self.kit_name}' through '{self.preset_name}'"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        stream, self.stream = self.stream, None
        if stream is None:
            return
        from .live import CLOSE_TIMEOUT_S, run_with_timeout

        def stop():
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)

        run_with_timeout(stop, CLOSE_TIMEOUT_S)  # an output whose audio server vanished can hang: leave it then

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
