"""Helpers of tests/test_bad_input.py: running the command (in this process or in a child), the states an output
may be left in, the files the rows feed it, and the fuzz corpus.

A row's outputs are each checked against one of the states below: absent, untouched (byte for byte what the test
put there before), or complete (a .mid mido reads with the expected notes, a CSV with its header and rows, ...).
"""
from __future__ import annotations

import csv
import faulthandler
import io
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_MP3 = REPO / "examples" / "example.mp3"
LIVE_MODEL = REPO / "models" / "weights" / "hitcnn_live.pt"
SHIPPED_MODEL = REPO / "models" / "weights" / "hitcnn.pt"
CSV_HEADER = "onset_s,emitted_s,drum,midi_note,velocity,confidence"
TIME_TOLERANCE_S = 0.002  # notes of the same audio in two runs: the same hits, times within a couple of ms


# ---------------------------------------------------------------------------------------------------------------
# running the command


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    timed_out: bool = False
    seconds: float = 0.0
    note: str = ""  # how the run went, for the failure message (e.g. "SIGINT sent at 0.30 s")

    @property
    def err_lines(self) -> list:
        return [line for line in self.err.splitlines() if line.strip()]


class Hung(BaseException):
    """Raised by the alarm in an in-process run that took too long (a BaseException: no `except Exception` in the
    code under test swallows it)."""


def _alarm(signum, frame):
    raise Hung()


def run_inprocess(argv, capfd, *, timeout_s: float = 60.0) -> Result:
    """`drumscribe ARGV` through drumscribe.cli.main in this process, stdout and stderr captured at the file
    descriptors (so a C library's chatter counts too). An exception that escapes main is what a user would see:
    a traceback on stderr, exit 1. A run that hangs in Python is stopped by SIGALRM; one stuck in C past twice the
    limit kills the whole test process with a dump of every thread (faulthandler), rather than hang the suite."""
    from drumscribe.cli import main

    capfd.readouterr()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    faulthandler.dump_traceback_later(2 * timeout_s + 30, exit=True)
    timed_out, extra = False, ""
    start = time.monotonic()
    try:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse, or a command that calls sys.exit
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:  # sys.exit("message"): Python prints the message and exits 1
                code, extra = 1, f"{exc.code}\n"
        except Hung:
            code, timed_out = None, True
        except BaseException:  # what the user would see: a traceback, exit 1
            code, extra = 1, traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
    seconds = time.monotonic() - start
    out, err = capfd.readouterr()
    return Result(code, out, err + extra, timed_out=timed_out, seconds=seconds)


def drumscribe_command() -> list:
    """The installed `drumscribe` script beside this Python (what a user runs), else `python -m drumscribe`."""
    script = Path(sys.executable).with_name("drumscribe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "drumscribe"]


def run_subprocess(argv, *, timeout_s: float = 60.0, sigint_after_s: float | None = None, cwd=None,
                   stdout=subprocess.PIPE) -> Result:
    """`drumscribe ARGV` in a child process; with `sigint_after_s`, Ctrl-C (SIGINT to the child) that long after
    it started. A child still running after `timeout_s` is killed and the result says it timed out."""
    start = time.monotonic()
    proc = subprocess.Popen(drumscribe_command() + [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    note = ""
    if sigint_after_s is not None:
        time.sleep(max(0.0, sigint_after_s - (time.monotonic() - start)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            note = f"SIGINT sent {time.monotonic() - start:.2f} s after the start"
        else:
            note = f"the run had already ended (exit {proc.returncode}) when SIGINT was due at {sigint_after_s} s"
    try:
        out, err = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    return Result(None if timed_out else proc.returncode, (out or b"").decode(errors="replace"),
                  err.decode(errors="replace"), timed_out=timed_out, seconds=time.monotonic() - start, note=note)


# ---------------------------------------------------------------------------------------------------------------
# reading outputs


def midi_notes(path) -> list:
    """(time_s, note, velocity, channel) of every note-on of a .mid, times through its tempo map. Raises if mido
    cannot read it or it is not type 1."""
    import mido

    midi = mido.MidiFile(str(path))
    if midi.type != 1:
        raise ValueError(f"MIDI type {midi.type}, expected 1")
    notes, now = [], 0.0
    for message in midi:  # merged tracks, time in seconds
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            notes.append((now, message.note, message.velocity, message.channel))
    return notes


def csv_rows(path) -> list:
    """The rows of an events CSV as dicts; raises if the header is not drumscribe's or a row is malformed."""
    text = Path(path).read_text()
    lines = text.splitlines()
    if not lines or lines[0] != CSV_HEADER:
        raise ValueError(f"header {lines[0] if lines else '(empty file)'!r}, expected {CSV_HEADER!r}")
    if not text.endswith("\n"):
        raise ValueError("the last line has no newline (cut short?)")
    rows = list(csv.DictReader(io.StringIO(text)))
    for n, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"line {n} has the wrong number of fields: {row}")
        onset, emitted = float(row["onset_s"]), float(row["emitted_s"])
        if not (np.isfinite(onset) and np.isfinite(emitted) and 0 <= emitted and onset <= emitted):
            raise ValueError(f"line {n}: onset_s {onset} / emitted_s {emitted} are not finite times in order")
        if not 0 <= int(row["midi_note"]) <= 127 or not 1 <= int(row["velocity"]) <= 127:
            raise ValueError(f"line {n}: note or velocity out of range: {row}")
        if not 0.0 <= float(row["confidence"]) <= 1.0:
            raise ValueError(f"line {n}: confidence {row['confidence']} not in 0-1")
    return rows


def same_notes(got: list, want: list) -> str:
    """'' when two note lists hold the same notes (same keys and channels, velocities within 1, times within
    TIME_TOLERANCE_S), else what differs."""
    if len(got) != len(want):
        return f"{len(got)} notes, expected {len(want)}"
    for (t1, n1, v1, c1), (t2, n2, v2, c2) in zip(got, want):
        if n1 != n2 or c1 != c2 or abs(v1 - v2) > 1 or abs(t1 - t2) > TIME_TOLERANCE_S:
            return f"note {(round(t1, 4), n1, v1, c1)} where {(round(t2, 4), n2, v2, c2)} was expected"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# the states an output may be left in: check(path, ctx) returns '' when it holds, else what is wrong


class State:
    def check(self, path: Path, ctx) -> str:
        raise NotImplementedError

    def __or__(self, other):
        return Either(self, other)


@dataclass
class Either(State):
    a: State
    b: State

    def check(self, path, ctx):
        first = self.a.check(path, ctx)
        if not first:
            return ""
        second = self.b.check(path, ctx)
        return "" if not second else f"neither {self.a} ({first}) nor {self.b} ({second})"

    def __str__(self):
        return f"{self.a} or {self.b}"


class Absent(State):
    def check(self, path, ctx):
        return "" if not os.path.lexists(path) else f"exists ({_describe(path)}), expected nothing there"

    def __str__(self):
        return "absent"


class Untouched(State):
    """Byte for byte what ctx.existing() put there, still a regular file."""

    def check(self, path, ctx):
        if not os.path.lexists(path):
            return "gone (it existed before the run)"
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return f"is now {_describe(path)}, was a regular file"
        before = ctx.before[Path(path)]
        now = Path(path).read_bytes()
        return "" if now == before else f"changed: {len(now)} bytes, was {len(before)} bytes"

    def __str__(self):
        return "untouched"


@dataclass
class Midi(State):
    """A complete .mid: mido reads it, type 1, every note on channel 10; with `reference`, the reference notes."""

    reference: bool = False
    min_notes: int = 0

    def check(self, path, ctx):
        if not os.path.isfile(path):
            return f"no .mid ({_describe(path)})"
        try:
            notes = midi_notes(path)
        except Exception as exc:
            return f"not a readable MIDI file ({type(exc).__name__}: {exc})"
        if any(channel != 9 for *_, channel in notes):
            return "notes off channel 10"
        if len(notes) < self.min_notes:
            return f"{len(notes)} notes, expected at least {self.min_notes}"
        if self.reference:
            return same_notes(notes, ctx.reference.notes)
        return ""

    def __str__(self):
        return "a complete .mid" + (" with the reference notes" if self.reference else
                                    f" with >= {self.min_notes} notes" if self.min_notes else "")


@dataclass
class Csv(State):
    reference: bool = False
    min_rows: int = 0

    def check(self, path, ctx):
        if not os.path.isfile(path):
            return f"no CSV ({_describe(path)})"
        try:
            rows = csv_rows(path)
        except Exception as exc:
            return f"not a complete events CSV ({type(exc).__name__}: {exc})"
        if len(rows) < self.min_rows:
            return f"{len(rows)} rows, expected at least {self.min_rows}"
        if self.reference:
            want = ctx.reference.rows
            if len(rows) != len(want):
                return f"{len(rows)} rows, expected {len(want)}"
            for got, ref in zip(rows, want):
                if got["drum"] != ref["drum"] or abs(float(got["onset_s"]) - float(ref["onset_s"])) > TIME_TOLERANCE_S:
                    return f"row {got} where {ref} was expected"
        return ""

    def __str__(self):
        return "a complete CSV" + (" with the reference rows" if self.reference else "")


class Png(State):
    def check(self, path, ctx):
        if not os.path.isfile(path):
            return f"no image ({_describe(path)})"
        data = Path(path).read_bytes()
        if data[:8] != b"\x89PNG\r\n\x1a\n" or not data.endswith(b"IEND\xaeB`\x82"):
            return f"not a complete PNG ({len(data)} bytes)"
        return ""

    def __str__(self):
        return "a complete PNG"


class Audio(State):
    """A complete audio file soundfile reads, with at least some frames, every sample finite."""

    def check(self, path, ctx):
        import soundfile as sf

        if not os.path.isfile(path):
            return f"no audio file ({_describe(path)})"
        try:
            data, _ = sf.read(str(path), dtype="float32")
        except Exception as exc:
            return f"not readable audio ({type(exc).__name__}: {exc})"
        if not len(data) or not np.isfinite(data).all():
            return f"{len(data)} frames, or non-finite samples"
        return ""

    def __str__(self):
        return "a complete audio file"


@dataclass
class CharDevice(State):
    rdev: int

    def check(self, path, ctx):
        st = os.lstat(path) if os.path.lexists(path) else None
        if st is None or not stat.S_ISCHR(st.st_mode) or st.st_rdev != self.rdev:
            return f"is {_describe(path)}, expected the character device it was"
        return ""

    def __str__(self):
        return "still the device"


class Fifo(State):
    def check(self, path, ctx):
        if not os.path.lexists(path) or not stat.S_ISFIFO(os.lstat(path).st_mode):
            return f"is {_describe(path)}, expected the FIFO it was"
        return ""

    def __str__(self):
        return "still a FIFO"


class EmptyDir(State):
    def check(self, path, ctx):
        if os.path.islink(path) or not os.path.isdir(path):
            return f"is {_describe(path)}, expected the folder it was"
        inside = sorted(os.listdir(path))
        return "" if not inside else f"the folder now holds {inside}"

    def __str__(self):
        return "still an empty folder"


@dataclass
class LinkTo(State):
    target: str

    def check(self, path, ctx):
        if not os.path.islink(path):
            return f"is {_describe(path)}, expected the symbolic link it was"
        now = os.readlink(path)
        return "" if now == self.target else f"now links to {now!r}, was {self.target!r}"

    def __str__(self):
        return f"still a link to {self.target}"


def _describe(path) -> str:
    if not os.path.lexists(path):
        return "nothing"
    st = os.lstat(path)
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISREG, "a regular file"))
    kind = next((name for test, name in kinds if test(st.st_mode)), "a special file")
    return f"{kind} of {st.st_size} bytes" if stat.S_ISREG(st.st_mode) else kind


# ---------------------------------------------------------------------------------------------------------------
# the files rows feed the command


def example_audio() -> tuple:
    """examples/example.mp3 decoded: (mono float32 samples, rate)."""
    import soundfile as sf

    audio, rate = sf.read(str(EXAMPLE_MP3), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def write_midi(path, notes, *, channel: int = 9) -> Path:
    """A type-1 .mid of (time_s, note) pairs at 120 BPM, 480 ticks a beat; an empty list gives a MIDI of no notes."""
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    events = []
    for t, note in notes:
        tick = int(round(t * 960))  # 120 BPM: 960 ticks a second
        events += [(tick, "note_on", note, 100), (tick + 48, "note_off", note, 0)]
    now = 0
    for tick, kind, note, velocity in sorted(events):
        track.append(mido.Message(kind, note=note, velocity=velocity, channel=channel, time=tick - now))
        now = tick
    midi.save(str(path))
    return Path(path)


def write_oneshot_kit(folder) -> Path:
    """A folder kit of two synthetic one-shots (kick.wav, hh_closed.wav): no installed kit needed."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rate = 48000
    t = np.arange(int(0.2 * rate)) / rate
    sf.write(str(folder / "kick.wav"), (np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.05)).astype(np.float32), rate)
    noise = np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / 0.03) * 0.5
    sf.write(str(folder / "hh_closed.wav"), noise.astype(np.float32), rate)
    return folder


def broken_checkpoint(path, **changes) -> Path:
    """The shipped live model as models/cnn.py stores it (a dict: state_dict, model_config, labels,
    feature_params, onset_params, mel_basis, thresholds, ...), with `changes` applied to its fields; a change
    given as a callable gets the old value."""
    import torch

    raw = torch.load(LIVE_MODEL, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        raw[key] = value(raw[key]) if callable(value) else value
    torch.save(raw, path)
    return Path(path)


def fill_disk(folder, *, leave_bytes: int = 0) -> Path:
    """Fill the file system of `folder` with a file named 'filler', then free `leave_bytes` of it."""
    filler = Path(folder) / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush (and fail) on close
        try:
            while f.write(chunk):
                pass
        except OSError:
            pass
    size = filler.stat().st_size
    with open(filler, "r+b") as f:
        f.truncate(max(0, size - leave_bytes))
    return filler


# ---------------------------------------------------------------------------------------------------------------
# the fuzz corpus

FUZZ_EXTENSIONS = ("mp3", "wav", "flac", "ogg")
FUZZ_FILES_PER_EXTENSION = 30
FUZZ_SEED = 29  # the number


def _valid_bytes(ext: str, audio: np.ndarray, rate: int) -> bytes:
    """About a second of the example in format `ext`."""
    import soundfile as sf

    if ext == "mp3":  # the example's own frames: its first ~1.2 s
        return EXAMPLE_MP3.read_bytes()[:20000]
    buffer = io.BytesIO()
    kind = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}[ext]
    sf.write(buffer, audio[:rate], rate, format=kind[0], subtype=kind[1])
    return _fixed_ogg_serial(buffer.getvalue()) if ext == "ogg" else buffer.getvalue()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _fixed_ogg_serial(data: bytes, serial: int = FUZZ_SEED) -> bytes:
    """The same Ogg stream with a fixed serial number (libsndfile draws one at random): the same bytes every run."""
    out, pos = bytearray(data), 0
    while pos + 27 <= len(out) and out[pos : pos + 4] == b"OggS":
        segments = out[pos + 26]
        size = 27 + segments + sum(out[pos + 27 : pos + 27 + segments])
        out[pos + 14 : pos + 18] = struct.pack("<I", serial)
        out[pos + 22 : pos + 26] = b"\0\0\0\0"
        out[pos + 22 : pos + 26] = struct.pack("<I", _ogg_crc(bytes(out[pos : pos + size])))
        pos += size
    return bytes(out)


def _header(ext: str, rng) -> bytes:
    """A header that looks right for `ext` (or, one time in four, for another format), then junk follows."""
    if rng.random() < 0.25:
        ext = str(rng.choice([e for e in FUZZ_EXTENSIONS if e != ext]))
    junk = lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()  # noqa: E731
    if ext == "wav":
        if rng.random() < 0.5:
            return b"RIFF" + struct.pack("<I", int(rng.integers(0, 1 << 32))) + b"WAVE" + junk(int(rng.integers(0, 64)))
        # a plausible fmt chunk with random fields, then a data chunk of junk
        fmt = struct.pack("<HHIIHH", int(rng.choice([1, 3, 0xFFFE, int(rng.integers(0, 1 << 16))])),
                          int(rng.choice([1, 2, 6, int(rng.integers(0, 1 << 16))])),
                          int(rng.choice([8000, 44100, 192000, 1, int(rng.integers(0, 1 << 32))])),
                          int(rng.integers(0, 1 << 32)), int(rng.integers(0, 64)),
                          int(rng.choice([8, 16, 24, 32, int(rng.integers(0, 1 << 16))])))
        return (b"RIFF" + struct.pack("<I", int(rng.integers(0, 1 << 32))) + b"WAVEfmt " + struct.pack("<I", 16)
                + fmt + b"data" + struct.pack("<I", int(rng.integers(0, 1 << 32))))
    if ext == "flac":
        return b"fLaC" + (b"\x00\x00\x00\x22" + junk(34) if rng.random() < 0.5 else b"")
    if ext == "ogg":
        return b"OggS\x00\x02" + junk(int(rng.integers(0, 40))) + (b"\x01vorbis" if rng.random() < 0.5 else b"")
    if rng.random() < 0.5:  # mp3: an ID3v2 tag of random length, or an MPEG frame header
        return b"ID3\x03\x00\x00" + bytes(int(b) & 0x7F for b in rng.integers(0, 128, 4))
    return b"\xff" + bytes([int(rng.choice([0xFB, 0xF3, 0xE3, 0xFA]))]) + junk(2)


def fuzz_corpus() -> list:
    """(id, extension, bytes) of FUZZ_FILES_PER_EXTENSION files per extension, from a seeded RNG: the same corpus
    on every run. Per extension: an empty file and pure random bytes (0-9), a format's header then junk (10-19),
    a valid file of the format truncated (20-24) or with bytes overwritten (25-29)."""
    audio, rate = example_audio()
    corpus = []
    for e, ext in enumerate(FUZZ_EXTENSIONS):
        rng = np.random.default_rng(FUZZ_SEED + e)
        valid = _valid_bytes(ext, audio, rate)
        for i in range(FUZZ_FILES_PER_EXTENSION):
            if i == 0:
                kind, data = "empty", b""
            elif i < 10:
                kind = "random"
                data = rng.integers(0, 256, int(np.exp(rng.uniform(0, np.log(60000)))), dtype=np.uint8).tobytes()
            elif i < 20:
                kind = "header-junk"
                data = _header(ext, rng) + rng.integers(0, 256, int(rng.integers(0, 30000)), dtype=np.uint8).tobytes()
            elif i < 25:
                kind = "truncated"
                data = valid[: int(rng.integers(1, len(valid)))]
            else:
                kind = "corrupted"
                body = bytearray(valid)
                n = int(rng.integers(1, 64))
                positions = rng.integers(min(64, len(body) - 1), len(body), n)
                body_values = rng.integers(0, 256, n, dtype=np.uint8)
                for p, v in zip(positions, body_values):
                    body[int(p)] = int(v)
                if rng.random() < 0.3:  # and a run of junk over the header
                    start = int(rng.integers(0, 48))
                    body[start : start + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
                data = bytes(body)
            corpus.append((f"{ext}-{i:02d}-{kind}", ext, data))
    return corpus


@dataclass
class Reference:
    """What a good run gives on the short input: the expectation of every 'complete' output."""

    notes: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    mid_bytes: bytes = b""
    csv_bytes: bytes = b""
