"""Sinks: where drum hits go. Each has `write(hits)` and `close()` (safe twice) and is a context manager.

File sinks write atomically on close (a temporary file beside the target, then `os.replace`), so an
interrupted run leaves either the complete new file or none, never half of one.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .drums import DRUMS, SCORE_CLASS

GM_DRUM_CHANNEL = 9
"""MIDI channel 10, counted from 0 as on the wire."""

TICKS_PER_BEAT = 960


class OutputPathError(ValueError):
    """An output path that cannot be written; the message is one line for the user."""


class OutputWriteError(ValueError):
    """An output that could not be written (a full disk, say); the old file at its path is untouched."""


def _special_kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return None


def check_writable(path: str | Path) -> Path:
    """Make sure a file can be created at `path` (without leaving anything there); raise OutputPathError if not.

    A symlink is written through to its target (the link stays); a character device (/dev/null) is written to as
    it is; a FIFO, socket, block device or directory is refused."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    with contextlib.suppress(OSError):
        kind = _special_kind(os.stat(target).st_mode)
        if kind == "a directory":
            raise OutputPathError(f"output '{path}' is a directory, expected a file path")
        if kind is not None:
            raise OutputPathError(f"output '{path}' is {kind}, expected a regular file path")
        if stat.S_ISCHR(os.stat(target).st_mode):
            if not os.access(target, os.W_OK):
                raise OutputPathError(f"output '{path}' is a device that is not writable")
            return path
    parent = target.parent
    if not parent.exists():
        raise OutputPathError(f"output '{path}': folder '{path.parent}' does not exist")
    if not parent.is_dir():
        raise OutputPathError(f"output '{path}': '{path.parent}' is not a folder")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputPathError(f"output '{path}' exists and is not writable")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputPathError(f"output '{path}': cannot write in folder '{path.parent}' "
                              f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def _is_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yields a temporary path beside `path`; on success it replaces `path`, on an exception it is removed and
    `path` is untouched. The new file is flushed to disk before it replaces the old one, so a full disk fails
    here, not later. A symlink is followed (its target is replaced, the link stays); a character device such as
    /dev/null gets the bytes written to it, never renamed over."""
    target = Path(os.path.realpath(path))
    device = _is_device(target)
    fd, tmp = tempfile.mkstemp(dir=None if device else target.parent, prefix=f".{target.name}.",
                               suffix=f".tmp{target.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        if device:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.unlink(tmp)
            return
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Sink:
    """Context manager plumbing: `with Sink(...) as s:` closes it, also on an exception."""

    closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if self.closed:
            raise ValueError(f"{type(self).__name__} is closed")

    def abort(self) -> None:
        """Close without writing anything: the run failed, and an existing file at the path stays as it was."""
        self.closed = True


@contextlib.contextmanager
def _written(path: Path):
    """atomic_output, with a failure to write (a full disk, say) as one OutputWriteError line."""
    try:
        with atomic_output(path) as tmp:
            yield tmp
    except OSError as exc:
        raise OutputWriteError(f"could not write '{path}' ({exc.strerror or exc})") from None


class CollectSink(list):
    """The hits, collected in a list as the engine releases them: `Engine(stages, [hits := CollectSink()])`."""

    def write(self, hits) -> None:
        self.extend(hits)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------------------------
# MIDI file


@dataclass(frozen=True)
class Quantize:
    """Notes moved toward a grid: `step_beats` (see tempo.grid_beats), `strength` 0..1, `swing` 0..1."""

    step_beats: float
    strength: float = 1.0
    swing: float = 0.0

    def __post_init__(self):
        if not (math.isfinite(self.step_beats) and self.step_beats > 0):
            raise ValueError(f"quantize step {self.step_beats} beats must be > 0")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"quantize strength {self.strength} is not in 0-1")
        if not 0.0 <= self.swing <= 1.0:
            raise ValueError(f"swing {self.swing} is not in 0-1")


AS_PLAYED_TRACK = "drums (as played)"
"""With --quantize, the unquantised notes go to a second drum track of this name (same channel: mute one)."""


def _drum_track(mido, hits, drum_map, positions_beats, length_beats, ticks_per_beat: int, name: str):
    """A drum track on channel 10, one note per hit at `positions_beats` (beats from the start), each lasting
    `length_beats` but cut before the next hit on its note; two hits on one note in one tick become one note,
    at the louder velocity."""
    by_note = {}
    for hit, beat, length in zip(hits, positions_beats, length_beats, strict=True):
        note = drum_map.note(hit.drum)
        starts = by_note.setdefault(note, {})
        t = max(0, int(round(beat * ticks_per_beat)))
        velocity, ticks = starts.get(t, (0, 1))
        starts[t] = (max(velocity, hit.velocity), max(ticks, max(1, int(round(length * ticks_per_beat)))))
    events = []  # (tick, order, note, message): note-offs (order 0) before note-ons (order 1) in a tick
    for note, starts in by_note.items():
        ticks = sorted(starts)
        for i, t in enumerate(ticks):
            velocity, length = starts[t]
            end = t + length
            if i + 1 < len(ticks):
                end = min(end, ticks[i + 1])
            end = max(end, t + 1)
            events.append((t, 1, note, mido.Message("note_on", channel=GM_DRUM_CHANNEL, note=note, velocity=velocity)))
            events.append((end, 0, note, mido.Message("note_off", channel=GM_DRUM_CHANNEL, note=note, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for t, _, _, message in events:
        track.append(message.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


class _WrittenTempi:
    """seconds -> ticks through the tempi as written (whole microseconds per beat, from whole ticks), so a reader
    finds every note within half a tick of its time."""

    def __init__(self, mido, grid, ticks_per_beat: int):
        self.ticks = [int(round(start_beat * ticks_per_beat)) for _, start_beat, _ in grid.segments()]
        self.tempo_us = [mido.bpm2tempo(bpm) for _, _, bpm in grid.segments()]
        self.ticks_per_beat = ticks_per_beat
        self.start_s = [0.0]
        for i in range(1, len(self.ticks)):
            span = self.ticks[i] - self.ticks[i - 1]
            self.start_s.append(self.start_s[-1] + span * self.tempo_us[i - 1] / 1e6 / ticks_per_beat)

    def beats(self, seconds) -> np.ndarray:
        t = np.asarray(seconds, dtype=np.float64)
        i = np.clip(np.searchsorted(self.start_s, t, side="right") - 1, 0, len(self.ticks) - 1)
        ticks = np.asarray(self.ticks)[i] + (t - np.asarray(self.start_s)[i]) * 1e6 / np.asarray(self.tempo_us)[i] \
            * self.ticks_per_beat
        return ticks / self.ticks_per_beat


BAR_ONE_MARKER = "bar 1"
"""A marker at the first downbeat in the tempo track, when beats come before it."""


def _pickup_signature(beats: float) -> tuple:
    """The time signature of a pickup bar of `beats` (whole 16ths): 3 -> 3/4, 1.5 -> 3/8, 0.75 -> 3/16."""
    sixteenths = int(round(beats * 4))
    for per_unit, denominator in ((4, 4), (2, 8), (1, 16)):
        if sixteenths % per_unit == 0:
            return sixteenths // per_unit, denominator
    raise AssertionError("unreachable")


def _tempo_track(mido, grid, ticks_per_beat: int):
    """Tempo and time signatures: the beats before bar 1 (when there are any) as a pickup bar of less than a bar
    (3/4, 3/8, 5/16, ...) and whole bars, then 4/4, with a marker at bar 1; a tempo per segment of the grid."""
    meta = []  # (tick, order, message)
    written = _WrittenTempi(mido, grid, ticks_per_beat)
    for tick, tempo in zip(written.ticks, written.tempo_us, strict=True):
        meta.append((tick, 1, mido.MetaMessage("set_tempo", tempo=tempo)))
    bar_one = int(round(grid.pickup_beats * ticks_per_beat))
    short = grid.pickup_beats % grid.beats_per_bar  # a pickup bar of these beats, then whole bars to bar 1
    if short:
        numerator, denominator = _pickup_signature(short)
        meta.append((0, 0, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)))
        meta.append((int(round(short * ticks_per_beat)), 0,
                     mido.MetaMessage("time_signature", numerator=grid.beats_per_bar, denominator=4)))
    else:
        meta.append((0, 0, mido.MetaMessage("time_signature", numerator=grid.beats_per_bar, denominator=4)))
    if bar_one:
        meta.append((bar_one, 0, mido.MetaMessage("marker", text=BAR_ONE_MARKER)))
    meta.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name="drumscribe", time=0))
    now = 0
    for t, _, message in meta:
        track.append(message.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def hits_to_midi(hits, drum_map, *, note_length_s: float = 0.05, tempo_bpm: float | None = None, grid=None,
                 quantize: Quantize | None = None, ticks_per_beat: int = TICKS_PER_BEAT, track_name: str = "drums"):
    """A type-1 MidiFile: a tempo track, and a drum track on channel 10 with one note per hit.

    The beat grid (tempo, bar 1 on the first downbeat, a tempo map) is `grid`, else estimated from the hits (at
    `tempo_bpm` when given). Notes sit at their exact times (rounded to the tick) whatever the grid; with
    `quantize` the drum track holds the quantised notes and a second track, AS_PLAYED_TRACK, the exact ones.
    A note lasts `note_length_s`, cut short before the next hit on the same note so every note-off comes
    before the next note-on of its key.
    """
    import mido

    from .tempo import estimate_grid

    hits = sorted(hits, key=lambda h: (h.onset_s, h.drum))
    if grid is None:
        grid = estimate_grid([h.onset_s for h in hits], [h.drum for h in hits], [h.velocity for h in hits],
                             tempo_bpm=tempo_bpm)
    onsets = np.array([h.onset_s for h in hits], dtype=np.float64)
    written = _WrittenTempi(mido, grid, ticks_per_beat)
    played = written.beats(onsets)
    lengths = written.beats(onsets + note_length_s) - played
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(_tempo_track(mido, grid, ticks_per_beat))
    if quantize is None:
        midi.tracks.append(_drum_track(mido, hits, drum_map, played, lengths, ticks_per_beat, track_name))
        return midi
    from .tempo import quantize_beats

    bar_one = grid.pickup_beats  # the grid counts from bar 1, where a pickup of 16ths may have left it off the beat
    moved = bar_one + quantize_beats(played - bar_one, quantize.step_beats, strength=quantize.strength,
                                     swing=quantize.swing)
    moved = np.maximum(moved, 0.0)
    midi.tracks.append(_drum_track(mido, hits, drum_map, moved, lengths, ticks_per_beat, track_name))
    midi.tracks.append(_drum_track(mido, hits, drum_map, played, lengths, ticks_per_beat, AS_PLAYED_TRACK))
    return midi


class MidiFileSink(_Sink):
    """Collects hits and writes them as a type-1 .mid on close (atomically), on a beat grid estimated from them.

    Every note gets its note-off. Once closed, `grid` holds the beat grid written (tempo.BeatGrid), `tempo_bpm`
    its tempo and `downbeat_s` the time of bar 1. `tempo_bpm` given fixes the tempo (the downbeat is still
    estimated); `tempo_map` lets the tempo follow a drifting song; `quantize` (Quantize) snaps the notes and
    keeps the exact ones in a second track.
    """

    def __init__(self, path: str | Path, drum_map, *, note_length_s: float = 0.05, tempo_bpm: float | None = None,
                 tempo_map: bool = False, quantize: Quantize | None = None):
        if not note_length_s > 0:
            raise ValueError(f"note_length_s {note_length_s} must be > 0")
        if tempo_bpm is not None and not (math.isfinite(tempo_bpm) and tempo_bpm > 0):
            raise ValueError(f"tempo_bpm {tempo_bpm} must be > 0")
        self.path = Path(path)
        self.drum_map = drum_map
        self.note_length_s = note_length_s
        self.tempo_bpm = tempo_bpm
        self.tempo_map = tempo_map
        self.quantize = quantize
        self.grid = None
        self.downbeat_s = None
        self.hits = []

    def write(self, hits) -> None:
        self._check_open()
        for hit in hits:
            self.drum_map.note(hit.drum)  # a drum the map lacks fails here, not at close
        self.hits.extend(hits)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        from .tempo import estimate_grid

        hits = sorted(self.hits, key=lambda h: (h.onset_s, h.drum))
        self.grid = estimate_grid([h.onset_s for h in hits], [h.drum for h in hits], [h.velocity for h in hits],
                                  tempo_bpm=self.tempo_bpm, track_drift=self.tempo_map)
        self.tempo_bpm = self.grid.tempo_bpm
        self.downbeat_s = self.grid.downbeat_s
        midi = hits_to_midi(hits, self.drum_map, note_length_s=self.note_length_s, grid=self.grid,
                            quantize=self.quantize)
        with _written(self.path) as tmp:
            midi.save(str(tmp))


# ---------------------------------------------------------------------------------------------------------------
# Events CSV


CSV_COLUMNS = ("onset_s", "emitted_s", "drum", "midi_note", "velocity", "confidence")


class CsvEventsSink(_Sink):
    """One CSV row per hit, in the order the engine released them, streamed to a temporary file that becomes
    `path` on close. Columns: onset_s, emitted_s, drum, midi_note, velocity, confidence.

    A failed write (a full disk) does not stop the run: the sink stops writing, and `close()` removes its temporary
    file and raises OutputWriteError, leaving the old file at `path` whole.
    """

    def __init__(self, path: str | Path, drum_map):
        self.path = Path(path)
        self.drum_map = drum_map
        self.rows = 0
        self.error = None
        self._atomic = atomic_output(self.path)
        self._tmp = self._atomic.__enter__()
        self._file = open(self._tmp, "w", newline="")
        self._put(",".join(CSV_COLUMNS) + "\n")

    def _put(self, text: str) -> None:
        if self.error is not None:
            return
        try:
            self._file.write(text)
        except OSError as exc:
            self.error = exc

    def write(self, hits) -> None:
        self._check_open()
        lines = []
        for hit in hits:
            lines.append(f"{hit.onset_s:.6f},{hit.emitted_s:.6f},{hit.drum},{self.drum_map.note(hit.drum)},"
                         f"{hit.velocity},{hit.confidence:.4f}\n")
        self._put("".join(lines))
        self.rows += len(lines)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self.error is not None:
                raise self.error
            self._file.close()
        except OSError as exc:
            self._discard()
            raise OutputWriteError(f"could not write '{self.path}' ({exc.strerror or exc})") from None
        try:
            self._atomic.__exit__(None, None, None)
        except OSError as exc:
            raise OutputWriteError(f"could not write '{self.path}' ({exc.strerror or exc})") from None

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(BaseException):
            self._atomic.__exit__(OutputWriteError, OutputWriteError("discarded"), None)


# ---------------------------------------------------------------------------------------------------------------
# Summary


class SummarySink(_Sink):
    """Counts hits per drum and prints a small table to `stream` on close."""

    def __init__(self, stream, *, drum_map=None):
        self.stream = stream
        self.drum_map = drum_map
        self.counts = {}
        self.velocity_sums = {}

    def write(self, hits) -> None:
        self._check_open()
        for hit in hits:
            self.counts[hit.drum] = self.counts.get(hit.drum, 0) + 1
            self.velocity_sums[hit.drum] = self.velocity_sums.get(hit.drum, 0) + hit.velocity

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def format(self) -> str:
        if not self.total:
            return "no drum hits found"
        lines = [f"{self.total} drum hits:"]
        lines.append(f"  {'drum':<11}{'note':>5}{'hits':>7}{'mean vel':>10}")
        for drum in DRUMS:
            n = self.counts.get(drum, 0)
            if not n:
                continue
            note = str(self.drum_map.note(drum)) if self.drum_map is not None else "-"
            lines.append(f"  {drum:<11}{note:>5}{n:>7d}{self.velocity_sums[drum] / n:>10.0f}")
        return "\n".join(lines)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        print(self.format(), file=self.stream, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Plot


_CLASS_COLOURS = {"KD": "#1f77b4", "SD": "#d62728", "HH": "#2ca02c", "TT": "#9467bd", "CY": "#ff7f0e"}


ENVELOPE_BIN_SAMPLES = 256
"""A plot's waveform keeps the min and max of every this many samples, not the samples (32 KB a minute)."""


class WaveformEnvelope:
    """The min and max of each ENVELOPE_BIN_SAMPLES samples of a signal fed a chunk at a time (`add`)."""

    def __init__(self):
        self._mins, self._maxs = [], []
        self._carry = np.zeros(0)

    def add(self, chunk: np.ndarray) -> None:
        chunk = np.concatenate((self._carry, chunk)) if len(self._carry) else np.asarray(chunk, dtype=np.float64)
        whole = len(chunk) - len(chunk) % ENVELOPE_BIN_SAMPLES
        bins = chunk[:whole].reshape(-1, ENVELOPE_BIN_SAMPLES)
        self._mins.append(bins.min(axis=1))
        self._maxs.append(bins.max(axis=1))
        self._carry = np.array(chunk[whole:], dtype=np.float64)

    def bins(self) -> tuple:
        """(mins, maxs, first sample of each bin), the last bin partial."""
        mins, maxs = list(self._mins), list(self._maxs)
        if len(self._carry):
            mins.append(self._carry.min(keepdims=True))
            maxs.append(self._carry.max(keepdims=True))
        mins = np.concatenate(mins) if mins else np.zeros(0)
        maxs = np.concatenate(maxs) if maxs else np.zeros(0)
        return mins, maxs, np.arange(len(mins)) * ENVELOPE_BIN_SAMPLES

    @property
    def total_samples(self) -> int:
        return sum(len(m) for m in self._mins) * ENVELOPE_BIN_SAMPLES + len(self._carry)


def check_plot_format(path: str | Path) -> None:
    """Raise OutputPathError now, before any work, if matplotlib cannot write the suffix of `path`."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise OutputPathError(f"--plot '{path}': '.{suffix}' is not an image format matplotlib writes; expected "
                              f"one of {', '.join('.' + f for f in sorted(formats))}")


ROW_HEIGHT_IN = 2.3
PLOT_WIDTH_IN = 16.0
ROW_SECONDS_WITHOUT_GRID = 20.0


def _plot_rows(duration_s: float, grid) -> tuple:
    """([(start_s, end_s, first bar number)], one per row of the plot; bars per row): rows of 8 bars (16 when
    the song has more than 48; a last row of a quarter of that or less joins the row before), or of
    ROW_SECONDS_WITHOUT_GRID seconds without a grid."""
    if grid is None:
        n = max(1, math.ceil(duration_s / ROW_SECONDS_WITHOUT_GRID))
        return [(i * ROW_SECONDS_WITHOUT_GRID, (i + 1) * ROW_SECONDS_WITHOUT_GRID, None) for i in range(n)], 0
    bar_beats = grid.beats_per_bar
    n_bars = max(1, math.ceil((float(grid.beats(duration_s)) - grid.pickup_beats) / bar_beats))
    per_row = 8 if n_bars <= 48 else 16
    rows = []
    for first in range(0, n_bars, per_row):
        start = 0.0 if first == 0 else float(grid.seconds(grid.pickup_beats + first * bar_beats))
        end = float(grid.seconds(grid.pickup_beats + (first + per_row) * bar_beats))
        rows.append((start, end, first + 1))
    if len(rows) > 1 and n_bars - (rows[-1][2] - 1) <= per_row // 4:  # a last bar or two (a ringing end):
        rows.pop()                                                       # into the row before, a little wider
        rows[-1] = (rows[-1][0], float(grid.seconds(grid.pickup_beats + n_bars * bar_beats)), rows[-1][2])
    return rows, per_row


def plot_hits(path: str | Path, hits, waveform: WaveformEnvelope, sample_rate_hz: int, *, drum_map=None,
              title: str = "", grid=None) -> None:
    """A PNG (or any format matplotlib knows from the suffix) of hits_figure, written atomically."""
    fig = hits_figure(hits, waveform, sample_rate_hz, drum_map=drum_map, title=title, grid=grid)
    path = Path(path)
    with _written(path) as tmp:
        fig.savefig(str(tmp), format=(path.suffix.lstrip(".").lower() or "png"))


def hits_figure(hits, waveform: WaveformEnvelope, sample_rate_hz: int, *, drum_map=None, title: str = "",
                grid=None):
    """A matplotlib Figure: the waveform, and over it a piano roll of the hits, one line per drum, each hit a bar
    whose opacity and height follow its velocity; with a beat grid (tempo.BeatGrid) its bar lines (numbered from
    bar 1, the first downbeat) and beats, the song in rows of 8 or 16 bars so that a long song grows down the
    page (PLOT_WIDTH_IN wide, ROW_HEIGHT_IN a row), not into a strip.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend state
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    mins, maxs, starts = waveform.bins()
    n_samples = waveform.total_samples
    duration_s = max(n_samples / sample_rate_hz, max((h.onset_s for h in hits), default=0.0) + 0.5, 1.0)
    drums = list(DRUMS)
    n_drums = len(drums)
    rows, per_row = _plot_rows(duration_s, grid)
    row_s = max(end - start for start, end, _ in rows)

    fig = Figure(figsize=(PLOT_WIDTH_IN, 0.9 + ROW_HEIGHT_IN * len(rows)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    peak = max(-mins.min(), maxs.max(), 1e-9) if len(mins) else 1.0
    t_bins = starts / sample_rate_hz
    labels = [f"{d} ({drum_map.note(d)})" if drum_map is not None else d for d in drums]
    bar_s = max(0.02, row_s / 600)
    by_drum = {d: [h for h in hits if h.drum == d] for d in drums}
    for ax, (start, end, _) in zip(axes, rows, strict=True):
        # waveform envelope (min/max per pixel column), scaled to span the drums, drawn faintly behind the roll
        inside = (t_bins >= start) & (t_bins < end)
        if inside.any():
            lo, hi, t = mins[inside], maxs[inside], t_bins[inside]
            columns = int(min(len(lo), PLOT_WIDTH_IN * 100 * 2))
            edges = np.linspace(0, len(lo), columns + 1).astype(int)[:-1]
            mid, half = (n_drums - 1) / 2, n_drums / 2
            ax.fill_between(t[edges], mid + half * np.minimum.reduceat(lo, edges) / peak,
                            mid + half * np.maximum.reduceat(hi, edges) / peak, color="0.86", linewidth=0,
                            zorder=0, step="post")
        if grid is not None:
            for line in grid.beat_lines_s(end):
                if start <= line < min(end, duration_s):
                    ax.axvline(line, color="0.8", linewidth=0.5, zorder=1)
            for number, line in enumerate(grid.bar_lines_s(end), start=1):
                if start <= line < min(end, duration_s):
                    ax.axvline(line, color="0.35", linewidth=1.0, zorder=1)
                    ax.text(line, n_drums - 0.35, f" {number}", fontsize=7, color="0.3", va="bottom", ha="left")
        boxes, colours = [], []
        for row, drum in enumerate(drums):
            colour = _CLASS_COLOURS[SCORE_CLASS[drum]]
            for h in by_drum[drum]:
                if start <= h.onset_s < end:  # louder: taller and more opaque
                    half = (0.3 + 0.55 * h.velocity / 127) / 2
                    x0, x1 = h.onset_s, h.onset_s + bar_s
                    boxes.append(((x0, row - half), (x1, row - half), (x1, row + half), (x0, row + half)))
                    colours.append(to_rgba(colour, 0.3 + 0.7 * h.velocity / 127))
        if boxes:
            ax.add_collection(PolyCollection(boxes, facecolors=colours, linewidths=0, zorder=2))
        ax.set_yticks(range(n_drums), labels, fontsize=7)
        ax.set_ylim(-0.7, n_drums - 0.3)
        ax.set_xlim(start, start + row_s)
        ax.tick_params(axis="x", labelsize=7)
        if grid is None:
            ax.grid(axis="x", color="0.9", zorder=1)
    axes[-1].set_xlabel("time (s)" + ("; bar numbers from the first downbeat" if grid is not None else ""))
    tempo = ""
    if grid is not None:
        tempo = f", {grid.tempo_bpm:g} BPM" + (" (tempo map)" if grid.is_tempo_map else "") + \
                f", bar 1 at {grid.downbeat_s:.2f} s"
    axes[0].set_title((title or f"{len(hits)} drum hits") + tempo + "; opacity and height follow velocity",
                      fontsize=9)
    fig.tight_layout()
    return fig


class PlotSink(_Sink):
    """Collects hits and draws them over the waveform (see plot_hits) on close. The waveform is `audio`, or
    (audio None) the chunks fed to `observe` as a file streams: only their envelope is kept. The beat grid is
    `grid`, or that of `grid_from` (a MidiFileSink closed before this sink) when set, or estimated from the hits."""

    def __init__(self, path: str | Path, audio: np.ndarray | None, sample_rate_hz: int, *, drum_map=None,
                 title: str = "", grid=None, grid_from=None):
        self.path = Path(path)
        self.waveform = WaveformEnvelope()
        if audio is not None:
            self.waveform.add(np.asarray(audio, dtype=np.float64))
        self.sample_rate_hz = sample_rate_hz
        self.drum_map = drum_map
        self.title = title
        self.grid = grid
        self.grid_from = grid_from
        self.hits = []

    def observe(self, chunk: np.ndarray) -> None:
        self.waveform.add(chunk)

    def write(self, hits) -> None:
        self._check_open()
        self.hits.extend(hits)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        grid = self.grid
        if grid is None and self.grid_from is not None:
            grid = getattr(self.grid_from, "grid", None)
        if grid is None and self.hits:
            from .tempo import estimate_grid

            grid = estimate_grid([h.onset_s for h in self.hits], [h.drum for h in self.hits],
                                 [h.velocity for h in self.hits])
        self.grid = grid
        plot_hits(self.path, self.hits, self.waveform, self.sample_rate_hz, drum_map=self.drum_map,
                  title=self.title, grid=grid)
