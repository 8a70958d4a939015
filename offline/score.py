"""A drum score (MusicXML) of the hits, built with music21: percussion clef, 4/4 bars from the tempo and downbeat
of the .mid, noteheads and staff positions as drum-notation books write them, open hi-hats marked 'o', ghost
notes in brackets, rests, and the hits quantised per beat to sixteenths or to eighth-note triplets, whichever
fits that beat better.

Hands (cymbals, snare, toms) are voice 1, stems up; feet (kick, hi-hat pedal) are voice 2, stems down.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from drumscribe.realtime.drums import DRUMS
from drumscribe.realtime.sinks import OutputPathError, OutputWriteError, _Sink, atomic_output

BEATS_PER_BAR = 4
SIXTEENTHS = 4
"""Grid slots per beat: straight sixteenths..."""
TRIPLETS = 3
"""...or eighth-note triplets."""
TRIPLET_PREFERENCE = 0.6
"""A beat is written in triplets only when their timing error is below this share of the sixteenths' error."""
GHOST_SHARE = 0.5
"""A snare hit softer than this share of the median snare velocity is a ghost note (bracketed notehead)."""
SCORE_FORMATS = {".musicxml": "musicxml", ".xml": "musicxml", ".mxl": "mxl"}


@dataclass(frozen=True)
class DrumStyle:
    """Where and how a drum is written: the staff position (as the treble-clef pitch name that MusicXML uses for
    a percussion staff), the notehead, the voice (1 hands, stems up; 2 feet, stems down) and a name."""

    display: str
    notehead: str
    voice: int
    label: str


DRUM_STYLE = {
    "kick": DrumStyle("F4", "normal", 2, "Bass Drum"),  # bottom space
    "hh_pedal": DrumStyle("D4", "x", 2, "Hi-Hat Pedal"),  # below the staff
    "snare": DrumStyle("C5", "normal", 1, "Snare"),  # third space
    "side_stick": DrumStyle("C5", "x", 1, "Cross Stick"),  # x in the snare space
    "tom_low": DrumStyle("A4", "normal", 1, "Floor Tom"),  # second space
    "tom_mid": DrumStyle("D5", "normal", 1, "Mid Tom"),  # fourth line
    "tom_high": DrumStyle("E5", "normal", 1, "High Tom"),  # fourth space
    "ride": DrumStyle("F5", "x", 1, "Ride"),  # top line
    "hh_closed": DrumStyle("G5", "x", 1, "Hi-Hat"),  # space above the staff
    "hh_open": DrumStyle("G5", "x", 1, "Hi-Hat Open"),  # as the hi-hat, with an 'o' above
    "crash": DrumStyle("A5", "x", 1, "Crash"),  # first ledger line above
}
if set(DRUM_STYLE) != set(DRUMS):  # pragma: no cover - a new drum needs a place on the staff
    raise RuntimeError(f"DRUM_STYLE lacks {sorted(set(DRUMS) - set(DRUM_STYLE))}")


def check_score_format(path: str | Path) -> str:
    """The music21 format for a score path (.musicxml, .xml or .mxl); OutputPathError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in SCORE_FORMATS:
        raise OutputPathError(f"--score '{path}': unknown score format '{suffix or '(none)'}', expected one of: "
                              f"{', '.join(SCORE_FORMATS)}")
    return SCORE_FORMATS[suffix]


@dataclass(frozen=True)
class GridHit:
    """A hit on the grid: `beat` counts quarter notes from the start of the first bar (a Fraction: 5 + 1/4 is
    the second sixteenth of beat 2 in bar 2, 2 + 2/3 the third triplet of beat 3 in bar 1)."""

    beat: Fraction
    drum: str
    velocity: int


def _grid_error(fractions, grid: int) -> float:
    return sum(abs(f * grid - round(f * grid)) / grid for f in fractions)


def beat_grid(fractions) -> int:
    """Sixteenths, or eighth-note triplets when they fit these positions within a beat (0 <= f < 1) clearly
    better."""
    if _grid_error(fractions, TRIPLETS) < TRIPLET_PREFERENCE * _grid_error(fractions, SIXTEENTHS):
        return TRIPLETS
    return SIXTEENTHS


def pickup_beats(hits, tempo_bpm: float, downbeat_s: float = 0.0) -> int:
    """Whole beats before the downbeat that hold hits (0 when none come earlier): the pickup before bar 1."""
    beat_s = 60.0 / tempo_bpm
    first_s = min((h.onset_s for h in hits), default=downbeat_s)
    slack_s = beat_s / (2 * SIXTEENTHS)  # a hit that rounds onto the downbeat needs no beat before it
    if first_s < downbeat_s - slack_s:
        return math.ceil((downbeat_s - slack_s - first_s) / beat_s)
    return 0


def quantise(hits, tempo_bpm: float, downbeat_s: float = 0.0) -> list[GridHit]:
    """Each hit on its beat's grid (see `beat_grid`). Beats count from the start of the first bar: bar 1 starts
    at the downbeat; hits before it go into a pickup bar of the whole beats they need (counted as the end of a
    full bar, so bar 1 starts on a multiple of 4). Two hits of one drum on one grid position become one, at the
    louder velocity. Sorted by position, then drum."""
    if not (math.isfinite(tempo_bpm) and tempo_bpm > 0):
        raise ValueError(f"tempo_bpm {tempo_bpm} must be a positive number")
    hits = list(hits)
    beat_s = 60.0 / tempo_bpm
    pickup = pickup_beats(hits, tempo_bpm, downbeat_s)
    padding = -pickup % BEATS_PER_BAR
    origin_s = downbeat_s - (pickup + padding) * beat_s
    beats = {}
    for hit in hits:
        position = max(float(padding), (hit.onset_s - origin_s) / beat_s)
        beats.setdefault(int(math.floor(position)), []).append((position - math.floor(position), hit))
    placed = {}
    for beat, members in beats.items():
        grid = beat_grid([f for f, _ in members])
        for fraction, hit in members:
            key = (beat + Fraction(round(fraction * grid), grid), hit.drum)  # grid/grid: the next beat's downbeat
            placed[key] = max(placed.get(key, 0), hit.velocity)
    return [GridHit(beat, drum, velocity)
            for (beat, drum), velocity in sorted(placed.items(), key=lambda e: (e[0][0], DRUMS.index(e[0][1])))]


def _ghost_below(grid_hits) -> float:
    snares = [h.velocity for h in grid_hits if h.drum == "snare"]
    return GHOST_SHARE * statistics.median(snares) if snares else 0.0


def _chord(members, ghost_below: float, voice: int, duration: Fraction):
    from music21 import articulations, note, percussion

    notes = []
    for hit in members:
        style = DRUM_STYLE[hit.drum]
        n = note.Unpitched(displayName=style.display)
        n.notehead = style.notehead
        if hit.drum == "snare" and hit.velocity < ghost_below:
            n.noteheadParenthesis = True
        notes.append(n)
    element = notes[0] if len(notes) == 1 else percussion.PercussionChord(notes)
    element.quarterLength = duration
    element.stemDirection = "up" if voice == 1 else "down"
    if any(h.drum == "hh_open" for h in members):
        element.articulations.append(articulations.OpenString())
    return element


def _rest(duration: Fraction):
    from music21 import note

    return note.Rest(quarterLength=duration)


def _beat_elements(hits_in_beat, beat: int, ghost_below: float, voice: int) -> list:
    """Rests and notes filling one beat of one voice: each onset lasts until the next one or the beat's end."""
    onsets = {}
    for hit in hits_in_beat:
        onsets.setdefault(hit.beat - beat, []).append(hit)
    starts = sorted(onsets)
    elements = []
    if starts[0] > 0:
        elements.append(_rest(starts[0]))
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else Fraction(1)
        elements.append(_chord(onsets[start], ghost_below, voice, end - start))
    return elements


def _voice_bar(by_beat: dict, bar: int, ghost_below: float, voice: int, *, padding: int = 0):
    """One bar of one voice from beat `padding` on (a pickup bar skips its first beats); empty beats become
    quarter rests, two on beats 1-2 or 3-4 a half rest, a full bar of nothing a whole rest."""
    from music21 import stream

    v = stream.Voice(id=str(voice))
    first = bar * BEATS_PER_BAR
    empty = [not by_beat.get(first + b) for b in range(BEATS_PER_BAR)]
    if all(empty) and not padding:
        v.append(_rest(Fraction(BEATS_PER_BAR)))
        return v
    b = padding
    while b < BEATS_PER_BAR:
        if empty[b]:
            if b % 2 == 0 and empty[b + 1]:
                v.append(_rest(Fraction(2)))
                b += 2
                continue
            v.append(_rest(Fraction(1)))
        else:
            for element in _beat_elements(by_beat[first + b], first + b, ghost_below, voice):
                v.append(element)
        b += 1
    return v


def build_score(hits, tempo_bpm: float, downbeat_s: float = 0.0, *, title: str = ""):
    """A music21 Score: one percussion part, 4/4, a tempo mark, the hits quantised (see `quantise`)."""
    from music21 import clef, instrument, layout, metadata, meter, note, stream, tempo

    hits = list(hits)
    grid_hits = quantise(hits, tempo_bpm, downbeat_s)
    ghost_below = _ghost_below(grid_hits)
    by_voice = {1: {}, 2: {}}
    for hit in grid_hits:
        by_voice[DRUM_STYLE[hit.drum].voice].setdefault(int(math.floor(hit.beat)), []).append(hit)
    last_beat = max((int(math.floor(h.beat)) for h in grid_hits), default=0)
    n_bars = last_beat // BEATS_PER_BAR + 1

    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or "Drums", composer="transcribed by drumscribe")
    part = stream.Part(id="drums")
    drums = instrument.Percussion()
    drums.partName = "Drums"
    drums.partAbbreviation = "Dr."
    part.insert(0, drums)
    padding = -pickup_beats(hits, tempo_bpm, downbeat_s) % BEATS_PER_BAR  # the beats a pickup bar leaves out
    for bar in range(n_bars):
        m = stream.Measure(number=bar if padding else bar + 1)  # bar 1 starts at the downbeat
        if bar == 0 and padding:
            m.paddingLeft = padding
        if bar == 0:
            m.insert(0, clef.PercussionClef())
            m.insert(0, meter.TimeSignature(f"{BEATS_PER_BAR}/4"))
            m.insert(0, tempo.MetronomeMark(number=round(tempo_bpm, 1), referent=note.Note(type="quarter")))
        for voice in (1, 2):
            m.insert(0, _voice_bar(by_voice[voice], bar, ghost_below, voice, padding=padding if bar == 0 else 0))
        if bar and bar % 4 == 0:
            m.insert(0, layout.SystemLayout(isNew=True))
        part.append(m)
    part.makeBeams(inPlace=True)
    score.insert(0, part)
    return score


def write_score(path: str | Path, hits, tempo_bpm: float, downbeat_s: float = 0.0, *, title: str = "") -> None:
    """Write the score to `path` (.musicxml, .xml or .mxl) atomically; OutputWriteError if it cannot be written."""
    fmt = check_score_format(path)
    score = build_score(hits, tempo_bpm, downbeat_s, title=title)
    import shutil
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="drumscribe-score-") as folder, atomic_output(path) as tmp:
            # music21 picks the file name for some formats (.mxl): write where it likes, then copy
            written = score.write(fmt, fp=str(Path(folder) / f"score{Path(path).suffix.lower()}"))
            shutil.copyfile(written, tmp)
    except OSError as exc:
        raise OutputWriteError(f"could not write '{path}' ({exc.strerror or exc})") from None


class ScoreSink(_Sink):
    """Collects hits and writes the drum score on close, with the tempo and downbeat of `midi_sink` (a
    MidiFileSink closed before this one: its `tempo_bpm`, and `downbeat_s` where it has one)."""

    def __init__(self, path: str | Path, midi_sink, *, title: str = ""):
        check_score_format(path)
        self.path = Path(path)
        self.midi_sink = midi_sink
        self.title = title
        self.hits = []

    def write(self, hits) -> None:
        self._check_open()
        self.hits.extend(hits)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        tempo_bpm = self.midi_sink.tempo_bpm
        if tempo_bpm is None:
            raise ValueError("ScoreSink closes after the MidiFileSink that gives it its tempo")
        downbeat_s = getattr(self.midi_sink, "downbeat_s", None) or 0.0
        write_score(self.path, self.hits, tempo_bpm, downbeat_s, title=self.title)
