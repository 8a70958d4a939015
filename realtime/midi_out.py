"""The live MIDI sink: drum hits out of a MIDI port that a DAW records, the moment the classifier decides them.

`MidiPortSink` opens a virtual output port (ALSA sequencer on desktop Linux, JACK when chosen or when it is all
there is, CoreMIDI on macOS) or, with `to_port`, connects to an existing port (Windows has no virtual ports).
A note-on goes out in `write()`; its note-off follows `note_length_s` later, sent by `send_due_note_offs()`, which
the live worker calls after every block. `close()` sends every pending note-off, then all-notes-off on the drum
channel, then closes the port; it is safe twice.

The choice of MIDI API (`--midi-api`) is resolved by `resolve_api()`; `list_midi()` tells what this machine has
(`drumscribe devices`). The C libraries behind python-rtmidi print their own complaints to stderr when a backend
is missing; probes silence them, so a user reads one line from us instead.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from .sinks import GM_DRUM_CHANNEL

MIDI_APIS = ("auto", "alsa", "jack", "coremidi", "windows")
"""The values of --midi-api."""

DEFAULT_PORT_NAME = "drumscribe"
MAX_PORT_NAME_BYTES = 63
"""The longest client and port name JACK takes (jack_client_name_size() less its NUL; measured: 64 bytes fail with
"JACK server not running?"); an ALSA sequencer client name is 64 bytes with its NUL too."""

DEFAULT_NOTE_LENGTH_S = 0.05
ALSA_SEQUENCER_DEVICE = Path("/dev/snd/seq")

_NOTE_ON = 0x90
_NOTE_OFF = 0x80
_CONTROL_CHANGE = 0xB0
_ALL_NOTES_OFF = 123


class MidiOutputError(RuntimeError):
    """A MIDI output that cannot be opened or used; the message is one line for the user."""


@contextlib.contextmanager
def quiet_c_stderr():
    """Silence what C libraries (libjack, alsa-lib, PortAudio) write to file descriptor 2, for a probe."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _rtmidi():
    try:
        import rtmidi
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise MidiOutputError(f"python-rtmidi cannot be loaded ({exc}); reinstall drumscribe") from None
    return rtmidi


def _api_constants() -> dict:
    rtmidi = _rtmidi()
    return {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK, "coremidi": rtmidi.API_MACOSX_CORE,
            "windows": rtmidi.API_WINDOWS_MM}


def compiled_apis() -> list[str]:
    """The MIDI APIs this python-rtmidi was built with, by our names."""
    compiled = set(_rtmidi().get_compiled_api())
    return [name for name, api in _api_constants().items() if api in compiled]


def alsa_sequencer_available() -> bool:
    return ALSA_SEQUENCER_DEVICE.exists() and os.access(ALSA_SEQUENCER_DEVICE, os.R_OK | os.W_OK)


def jack_server_running() -> bool:
    """Whether a JACK server answers (never starts one)."""
    try:
        import jack
    except (ImportError, OSError):  # the JACK library itself is missing
        return False
    try:
        with quiet_c_stderr():
            client = jack.Client("drumscribe-probe", no_start_server=True)
    except jack.JackError:
        return False
    client.close()
    return True


def api_available(name: str) -> tuple[bool, str]:
    """(usable, why not) for one MIDI API on this machine, without opening a port."""
    if name not in compiled_apis():
        return False, f"python-rtmidi on this machine was built without {name}"
    if name == "alsa" and not alsa_sequencer_available():
        return False, (f"the ALSA sequencer is missing ({ALSA_SEQUENCER_DEVICE} does not exist or is not accessible; "
                       f"'modprobe snd-seq' loads it)")
    if name == "jack" and not jack_server_running():
        return False, "no JACK server is running (start one, e.g. with qjackctl or 'jackd -d alsa')"
    return True, ""


def resolve_api(name: str = "auto") -> str:
    """The MIDI API to use for --midi-api NAME: `auto` takes the platform's own (ALSA on Linux, falling back to
    JACK when only a JACK server is there; CoreMIDI on macOS; Windows MM on Windows)."""
    if name not in MIDI_APIS:
        raise MidiOutputError(f"MIDI API '{name}' is not one of: {', '.join(MIDI_APIS)}")
    if name != "auto":
        ok, why = api_available(name)
        if not ok:
            raise MidiOutputError(f"MIDI API '{name}' cannot be used: {why}")
        return name
    if sys.platform == "darwin":
        candidates = ["coremidi"]
    elif sys.platform.startswith("win"):
        candidates = ["windows"]
    else:
        candidates = ["alsa", "jack"]
    reasons = []
    for candidate in candidates:
        ok, why = api_available(candidate)
        if ok:
            return candidate
        reasons.append(f"{candidate}: {why}")
    raise MidiOutputError("no MIDI backend is available (" + "; ".join(reasons) + ")")


def list_ports(api_name: str) -> list[str]:
    """The MIDI input ports of other programs that an output on `api_name` could send to."""
    rtmidi = _rtmidi()
    with quiet_c_stderr():
        try:
            out = rtmidi.MidiOut(_api_constants()[api_name], name="drumscribe-probe")
        except rtmidi.RtMidiError as exc:
            raise MidiOutputError(f"MIDI API '{api_name}' cannot be used: {exc}") from None
        try:
            return list(out.get_ports())
        finally:
            out.delete()


def list_midi() -> list[dict]:
    """For `drumscribe devices`: each MIDI API with whether it works here, why not, and its ports."""
    rows = []
    for name in MIDI_APIS[1:]:
        compiled = name in compiled_apis()
        ok, why = api_available(name) if compiled else (False, "not built into python-rtmidi on this machine")
        ports = []
        if ok:
            try:
                ports = list_ports(name)
            except MidiOutputError as exc:
                ok, why = False, str(exc)
        rows.append({"api": name, "available": ok, "reason": why, "ports": ports,
                     "virtual_ports": name in ("alsa", "jack", "coremidi")})
    return rows


class MidiPortSink:
    """Sends hits as drum notes on a live MIDI port: note-on at once, note-off `note_length_s` later.

    `api`: one of MIDI_APIS ('auto' resolves to the platform's). Without `to_port` a virtual port named
    `port_name` is opened for a DAW to record from (the JACK client and the ALSA client are named `port_name` too);
    with `to_port` the first existing port whose name contains it (case-insensitive) is opened instead.
    """

    def __init__(self, drum_map, *, api: str = "auto", port_name: str = DEFAULT_PORT_NAME, to_port: str | None = None,
                 note_length_s: float = DEFAULT_NOTE_LENGTH_S, channel: int = GM_DRUM_CHANNEL):
        if not note_length_s > 0:
            raise ValueError(f"note_length_s {note_length_s} must be > 0")
        if not 0 <= channel <= 15:
            raise ValueError(f"MIDI channel {channel} is not in 0-15")
        if not port_name or not port_name.strip():
            raise MidiOutputError("--port-name is empty; expected a name such as 'drumscribe'")
        if len(port_name.encode()) > MAX_PORT_NAME_BYTES:
            raise MidiOutputError(f"--port-name is {len(port_name.encode())} bytes long; MIDI systems take at most "
                                  f"{MAX_PORT_NAME_BYTES} (JACK's and ALSA's client names)")
        self.drum_map = drum_map
        self.note_length_s = note_length_s
        self.channel = channel
        self.api = resolve_api(api)
        self.port_name = port_name
        self.notes_sent = 0
        self.send_errors = 0  # messages the port refused (it went away): counted, never raised mid-run
        self.last_error = ""
        self.pending_offs = {}  # note -> monotonic time its note-off is due
        self.closed = False
        self.port_description = ""
        rtmidi = _rtmidi()
        if to_port is None and self.api == "windows":
            raise MidiOutputError("Windows MIDI has no virtual ports; pass --to-port NAME (e.g. a loopMIDI port) "
                                  "to send to an existing port")
        with quiet_c_stderr():
            try:
                self._out = rtmidi.MidiOut(_api_constants()[self.api], name=port_name)
            except rtmidi.RtMidiError as exc:
                raise MidiOutputError(f"MIDI API '{self.api}' cannot be used: {exc}") from None
        try:
            if to_port is None:
                with quiet_c_stderr():
                    self._out.open_virtual_port(port_name)
                self.port_description = f"virtual port '{port_name}' ({self.api})"
            else:
                ports = self._out.get_ports()
                index = next((i for i, p in enumerate(ports) if to_port.lower() in p.lower()), None)
                if index is None:
                    listed = ", ".join(f"'{p}'" for p in ports) or "none"
                    raise MidiOutputError(f"--to-port '{to_port}' matches no MIDI port on {self.api}; ports: {listed}")
                self._out.open_port(index, name=port_name)
                self.port_description = f"port '{ports[index]}' ({self.api})"
        except MidiOutputError:
            self._out.delete()
            raise
        except rtmidi.RtMidiError as exc:
            self._out.delete()
            raise MidiOutputError(f"cannot open a MIDI port on {self.api}: {exc}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, hits) -> None:
        if self.closed:
            raise ValueError("MidiPortSink is closed")
        now = time.monotonic()
        status_on = _NOTE_ON | self.channel
        for hit in hits:
            note = self.drum_map.note(hit.drum)
            if note in self.pending_offs:  # the same note again before its note-off: end the old one first
                self._send([_NOTE_OFF | self.channel, note, 0])
            self._send([status_on, note, int(hit.velocity)])
            self.pending_offs[note] = now + self.note_length_s
            self.notes_sent += 1

    def send_due_note_offs(self, now: float | None = None) -> None:
        """Send the note-offs that are due; the live worker calls this after every block."""
        if not self.pending_offs or self.closed:
            return
        now = time.monotonic() if now is None else now
        due = [note for note, t in self.pending_offs.items() if t <= now]
        for note in due:
            del self.pending_offs[note]
            self._send([_NOTE_OFF | self.channel, note, 0])

    def _send(self, message) -> None:
        try:
            self._out.send_message(message)
        except Exception as exc:  # rtmidi raises for a port that went away; a live run must not die of it
            self.send_errors += 1
            self.last_error = str(exc)

    def close(self) -> None:
        """Pending note-offs, then all-notes-off on the channel, then the port closes. Safe twice."""
        if self.closed:
            return
        for note in list(self.pending_offs):
            self._send([_NOTE_OFF | self.channel, note, 0])
        self.pending_offs.clear()
        self._send([_CONTROL_CHANGE | self.channel, _ALL_NOTES_OFF, 0])
        self.closed = True
        if self.api == "jack":
            time.sleep(0.02)  # JACK sends queued messages in its next cycles: let them leave before the port goes
        self._out.close_port()  # not under quiet_c_stderr: on a vanished server this may hang, fd 2 must stay ours
        self._out.delete()
