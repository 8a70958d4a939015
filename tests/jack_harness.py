"""A real JACK server (dummy backend) and a client that plays audio into drumscribe and records its MIDI notes.

Used by tests/test_live_jack.py and bench/soak.py. Times are sample-exact JACK frame times: audio sample i of a
played clip is heard at frame `start_frame + i` while every cycle runs; a MIDI event is stamped `last_frame_time +
offset` of the cycle it arrived in. On a loaded machine the harness may miss cycles (xruns): the clip then plays on
later than that, so the harness logs where its frames jump and `note_ons` gives times on the clip's own clock.
`JackServer` runs jackd under its own server name (so a JACK server of the user's is never touched), waits until
it answers, and always stops it by its PID.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

START_TIMEOUT_S = 30.0


class JackUnavailable(RuntimeError):
    """jackd or the JACK client library is missing, or the server did not come up."""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies, however it dies (Linux), so
    a test run killed without teardown leaves no jackd behind (a dummy server wakes every period at real-time
    priority and would load the machine for good)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: teardown by PID still stops it
        pass


class JackServer:
    """`jackd -n NAME -d dummy -r RATE -p PERIOD`, started on enter and stopped (by PID) on exit."""

    def __init__(self, name: str | None = None, *, rate_hz: int = 48000, period: int = 128,
                 log_path: str | Path | None = None):
        self.name = name or f"drumscribe-test-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.rate_hz = rate_hz
        self.period = period
        self.log_path = Path(log_path) if log_path else None
        self.process = None
        self._log = None

    @property
    def env(self) -> dict:
        """The environment for a subprocess that should use this server (and never start one of its own)."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self, tries: int = 2) -> JackServer:
        """Start jackd and wait until it answers; one that does not answer in START_TIMEOUT_S is stopped and
        started again, up to `tries` times (a machine stalled for seconds can leave a starting server deaf)."""
        for attempt in range(1, tries + 1):
            try:
                return self._start_once()
            except JackUnavailable:
                if attempt == tries:
                    raise

    def _start_once(self) -> JackServer:
        import shutil

        jackd = shutil.which("jackd")
        if jackd is None:
            raise JackUnavailable("jackd is not installed (Debian package jackd2)")
        self._log = open(self.log_path, "a") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [jackd, "-n", self.name, "-d", "dummy", "-r", str(self.rate_hz), "-p", str(self.period)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise JackUnavailable(f"jackd exited at start with code {code}")
            if self.answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise JackUnavailable(f"jackd did not answer within {START_TIMEOUT_S:g} s")

    def answers(self) -> bool:
        import jack

        from drumscribe.realtime.midi_out import quiet_c_stderr

        try:
            with quiet_c_stderr():  # libjack complains on stderr while the server is still starting
                client = jack.Client("probe", servername=self.name, no_start_server=True)
        except jack.JackError:
            return False
        client.close()
        return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s, by PID; safe twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Harness:
    """A JACK client with an audio output `play` and a MIDI input `notes`.

    `play(audio, loop=False)` starts the clip at the next cycle; `start_frame` is the frame of its first sample.
    `notes` lists (frame, bytes) of every MIDI event received; `xruns` counts the server's xruns and
    `xrun_frames` holds the frame time each was reported at; `breaks` lists
    (frame, clip sample) where the clip's frames stop being contiguous (its first cycle, then each missed cycle).
    """

    def __init__(self, server: JackServer, name: str = "harness"):
        import jack

        self.client = self._client = jack.Client(name, servername=server.name, no_start_server=True)
        self.rate_hz = self.client.samplerate
        self.out = self.client.outports.register("play")
        self.midi_in = self.client.midi_inports.register("notes")
        self.audio = np.zeros(0, dtype=np.float32)
        self.loop = False
        self.position = None  # next sample of the clip to play; None: silent
        self.start_frame = None
        self.breaks = []
        self._next_frame = None
        self.notes = []
        self.xruns = 0
        self.xrun_frames = []
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, delay_us):
        self.xruns += 1
        self.xrun_frames.append(self._client.frame_time)

    def _process(self, frames):
        client = self._client
        buf = self.out.get_array()
        position = self.position
        if position is None:
            buf.fill(0.0)
        else:
            frame = client.last_frame_time
            if self.start_frame is None:
                self.start_frame = frame
            if frame != self._next_frame:  # the first cycle, or the harness missed cycles: the clip is late
                self.breaks.append((frame, position))
            self._next_frame = frame + frames
            audio = self.audio
            n = len(audio)
            if self.loop:
                idx = (np.arange(position, position + frames)) % n
                buf[:] = audio[idx]
            else:
                chunk = audio[position : position + frames]
                buf[: len(chunk)] = chunk
                buf[len(chunk):] = 0.0
            self.position = position + frames
        base = client.last_frame_time
        for offset, data in self.midi_in.incoming_midi_events():
            self.notes.append((base + offset, bytes(data)))

    def play(self, audio: np.ndarray, *, loop: bool = False) -> None:
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.loop = loop
        self.start_frame = None
        self.breaks = []
        self._next_frame = None
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position is not None and not self.loop and self.position >= len(self.audio)

    def wait_for_ports(self, audio_pattern: str, midi_pattern: str, timeout_s: float = 60.0, process=None):
        """Wait until drumscribe's audio input and MIDI output ports exist; connect ours to them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"drumscribe exited with code {process.returncode} before its ports appeared")
            audio = self.client.get_ports(audio_pattern, is_audio=True, is_input=True)
            midi = self.client.get_ports(midi_pattern, is_midi=True, is_output=True)
            if audio and midi:
                self.client.connect(self.out, audio[0])
                self.client.connect(midi[0], self.midi_in)
                return audio[0].name, midi[0].name
            time.sleep(0.1)
        raise TimeoutError(f"no ports '{audio_pattern}' / '{midi_pattern}' within {timeout_s:g} s")

    @property
    def missed_cycles(self) -> int:
        """How many times the clip's frames jumped: cycles the harness missed while playing."""
        return max(len(self.breaks) - 1, 0)

    def clip_seconds(self, frame: int) -> float:
        """Where on the clip's clock (seconds from its first sample) frame `frame` lies: the clip sample playing
        then, counting on from the last cycle the harness ran at or before it (frames before the clip count back
        from its start)."""
        breaks = list(self.breaks)
        i = np.searchsorted([f for f, _ in breaks], frame, side="right") - 1
        if i < 0:
            return (frame - self.start_frame) / self.rate_hz
        f, position = breaks[i]
        return (position + frame - f) / self.rate_hz

    def xrun_seconds(self) -> list:
        """The server's xruns, on the clip's clock."""
        return [self.clip_seconds(f) for f in list(self.xrun_frames)] if self.start_frame is not None else []

    def note_ons(self, *, server_clock: bool = False) -> list:
        """(seconds on the clip's clock, note, velocity) of every note-on received; with `server_clock`, seconds
        of server frames from the clip's first sample (for comparing with another client's frames)."""
        if self.start_frame is None:
            return []
        out = []
        for frame, data in list(self.notes):
            if len(data) == 3 and data[0] & 0xF0 == 0x90 and data[2] > 0:
                t = (frame - self.start_frame) / self.rate_hz if server_clock else self.clip_seconds(frame)
                out.append((t, data[1], data[2]))
        return out

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.deactivate()
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
