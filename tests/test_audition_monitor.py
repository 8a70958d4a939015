"""Live monitoring (`drumscribe live --monitor PRESET --kit KIT`): the monitor's output is the offline rendering of
the hits placed at the block after each arrived; bad monitor options are one line before any device opens; and end to
end on a real JACK server (dummy backend), the monitor sounds each hit within a few periods of its MIDI note."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drumscribe.cli import EXIT_ERROR, main
from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.audition import load_kit, render_notes, resolve_kit
from drumscribe.realtime.drums import load_drum_map
from drumscribe.realtime.effects import EffectChain, load_preset
from drumscribe.realtime.monitor import MonitorSink
from drumscribe.realtime.sampler import Sampler
from drumscribe.realtime.types import DrumHit

REPO = Path(__file__).resolve().parent.parent
SR = SAMPLE_RATE_HZ
PERIOD = 128


@pytest.fixture(scope="module")
def pearl():
    return load_kit(resolve_kit("The Black Pearl 1.0"))


def test_monitor_renders_hits_at_the_next_block(pearl):
    """Hits written between callbacks sound from the first sample of the next block, exactly as an offline render
    of notes at those samples (same kit, same preset)."""
    gm = load_drum_map()
    monitor = MonitorSink(pearl, load_preset("room"), gm, block_size_samples=PERIOD)
    arrivals = {3: [DrumHit(0.0, "kick", 110, 0.9)], 40: [DrumHit(0.0, "snare", 90, 0.9)],
                41: [DrumHit(0.0, "hh_closed", 70, 0.8), DrumHit(0.0, "crash", 120, 0.8)]}
    blocks = []
    for k in range(400):
        monitor.write(arrivals.get(k, []))
        blocks.append(monitor.render(PERIOD))
    live = np.concatenate(blocks, axis=1)
    notes = [(k * PERIOD / SR, gm.note(h.drum), h.velocity) for k, hits in arrivals.items() for h in hits]
    offline = render_notes(notes, Sampler(pearl, gm), EffectChain(load_preset("room")), block_size_samples=4096,
                           min_duration_s=live.shape[1] / SR)[:, : live.shape[1]]
    assert np.abs(live - offline).max() <= 1e-5


@pytest.mark.parametrize("argv,mention", [
    (["--monitor", "warehouse"], "effects preset 'warehouse' is not one of"),
    (["--monitor", "dry", "--kit", "/no/such/kit"], "kit folder '/no/such/kit' does not exist"),
    (["--kit", "TimGM6mb"], "--kit needs --monitor PRESET"),
    (["--monitor-output", "1"], "--monitor-output needs --monitor PRESET"),
])
def test_bad_monitor_options_fail_before_any_device(capsys, argv, mention, tmp_path):
    code = main(["live", "--model", str(tmp_path / "not-even-read.pt"), *argv])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert mention in err


# ---------------------------------------------------------------------------------------------------------------
# end to end on JACK


class Recorder:
    """A JACK client recording one audio input port with the frame time of each period."""

    def __init__(self, server):
        import jack

        self.client = jack.Client("monitor-recorder", servername=server.name, no_start_server=True)
        self.port = self.client.inports.register("in")
        self.chunks = []
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames):
        self.chunks.append((self.client.last_frame_time, self.port.get_array().copy()))

    def connect_from(self, pattern: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ports = self.client.get_ports(pattern, is_audio=True, is_output=True)
            if ports:
                self.client.connect(ports[0], self.port)
                return ports[0].name
            time.sleep(0.1)
        raise TimeoutError(f"no output port '{pattern}' within {timeout_s:g} s")

    def audio(self, from_frame: int) -> np.ndarray:
        """The recording as one array whose sample 0 is JACK frame `from_frame`."""
        chunks = [(f, a) for f, a in self.chunks if f + len(a) > from_frame]
        out = np.zeros(max((f + len(a) for f, a in chunks), default=from_frame) - from_frame, np.float32)
        for f, a in chunks:
            start = f - from_frame
            out[max(0, start) : start + len(a)] = a[max(0, -start) :]
        return out

    def close(self):
        self.client.deactivate()
        self.client.close()


@pytest.mark.slow
def test_live_monitor_on_jack(groove, checkpoint_path, tmp_path):
    from jack_harness import Harness, JackServer, JackUnavailable

    audio = np.concatenate([np.zeros(int(0.3 * SR)), groove[0] * 0.5]).astype(np.float32)
    try:
        server = JackServer(period=PERIOD).start()
    except JackUnavailable as exc:
        pytest.skip(str(exc))
    env = {**server.env, "OPENBLAS_NUM_THREADS": "1"}
    with server:
        harness, recorder = Harness(server), Recorder(server)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "drumscribe", "live", "--midi-api", "jack", "--port-name", "mon",
                 "--model", str(checkpoint_path), "--monitor", "dry", "--kit", "The Black Pearl 1.0",
                 "--stop-after", "60"], env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            try:
                harness.wait_for_ports("PortAudio", "mon", process=process)
                recorder.connect_from("PortAudio:out_1")
                time.sleep(0.5)
                harness.play(audio)
                deadline = time.monotonic() + len(audio) / SR + 30
                while not harness.done and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
            finally:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=60)
            start = harness.start_frame
            notes = harness.note_ons(server_clock=True)  # the recorder's audio is on the server's frames
            heard = recorder.audio(start)
        finally:
            recorder.close()
            harness.close()
    assert process.returncode == 0, err
    assert "and monitor on audio output '" in err and "through 'dry'" in err, err  # where the sound goes
    assert notes, f"the random-weight model found no hits in the groove: {err}"
    first_note = int(round(notes[0][0] * SR))
    loud = np.flatnonzero(np.abs(heard) > 1e-3)
    assert len(loud), "the monitor output stayed silent"
    # nothing before the first note, but for one period: the note leaves through the JACK MIDI port and the sound
    # through PortAudio, two clients, and JACK can put the MIDI event in the period after the audio (seen once
    # in CI: sound 128 samples ahead); the monitor sounds it within four periods (output buffering) of the note
    assert loud[0] >= first_note - PERIOD - 1, (loud[0], first_note)
    assert loud[0] - first_note <= 4 * PERIOD + int(0.003 * SR), (loud[0] - first_note) / SR
