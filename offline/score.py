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
GM_NOTE = {"kick": 36, "snare": 38, "side_stick": 37, "hh_closed": 42, "hh_pedal": 44, "hh_open": 46, "tom_low": 43,
           "tom_mid": 47, "tom_high": 50, "crash": 49, "ride": 51}
"""The General MIDI note each drum plays back as in a notation program (the score's instruments), whatever the
drum map of the .mid: a score is read, and played by the program's own GM drum kit."""
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


def bar_beats(hits, tempo_bpm: float, downbeat_s: float = 0.0, grid=None) -> list[float]:
    """Each hit's time in beats from bar 1 (negative before it): through `grid` (a tempo.BeatGrid, as the .mid
    was written, tempo map included) when given, else at `tempo_bpm` from `downbeat_s`."""
    onsets = [h.onset_s for h in hits]
    if grid is not None:
        return [float(b) - grid.pickup_beats for b in grid.beats(onsets)] if onsets else []
    return [(t - downbeat_s) * tempo_bpm / 60.0 for t in onsets]


def pickup_beats(beats) -> int:
    """Whole beats before bar 1 that hold hits (0 when none come earlier): the pickup bar's length."""
    slack = 1.0 / (2 * SIXTEENTHS)  # a hit that rounds onto the downbeat needs no beat before it
    first = min(beats, default=0.0)
    return math.ceil(-first - slack) if first < -slack else 0


def quantise(hits, tempo_bpm: float, downbeat_s: float = 0.0, *, grid=None) -> list[GridHit]:
    """Each hit on its beat's grid (see `beat_grid`). Beats count from the start of the first bar: bar 1 starts
    at the downbeat; hits before it go into a pickup bar of the whole beats they need (counted as the end of a
    full bar, so bar 1 starts on a multiple of 4). Two hits of one drum on one grid position become one, at the
    louder velocity. Sorted by position, then drum. See `bar_beats` for `grid`."""
    if not (math.isfinite(tempo_bpm) and tempo_bpm > 0):
        raise ValueError(f"tempo_bpm {tempo_bpm} must be a positive number")
    hits = list(hits)
    relative = bar_beats(hits, tempo_bpm, downbeat_s, grid)
    pickup = pickup_beats(relative)
    shift = pickup + (-pickup % BEATS_PER_BAR)
    beats = {}
    for hit, beat in zip(hits, relative):
        position = max(float(shift - pickup), beat + shift)
        beats.setdefault(int(math.floor(position)), []).append((position - math.floor(position), hit))
    placed = {}
    for beat, members in beats.items():
        slots = beat_grid([f for f, _ in members])
        for fraction, hit in members:
            key = (beat + Fraction(round(fraction * slots), slots), hit.drum)  # slots/slots: the next downbeat
            placed[key] = max(placed.get(key, 0), hit.velocity)
    return [GridHit(beat, drum, velocity)
            for (beat, drum), velocity in sorted(placed.items(), key=lambda e: (e[0][0], DRUMS.index(e[0][1])))]


def tempo_marks(tempo_bpm: float, grid=None) -> list[tuple[float, float]]:
    """(beat from bar 1, BPM) of each tempo mark: one at bar 1 and, with a tempo map, one where each later tempo
    starts (to the sixteenth). A pickup before bar 1 is written under bar 1's tempo."""
    if grid is None or not grid.is_tempo_map:
        return [(0.0, tempo_bpm)]
    marks = [(0.0, float(grid.segments()[0][2]))]
    for _, start_beat, bpm in grid.segments():
        beat = round((start_beat - grid.pickup_beats) * SIXTEENTHS) / SIXTEENTHS
        if beat <= 0:
            marks[0] = (0.0, bpm)  # the tempo that bar 1 starts in
        elif beat > marks[-1][0]:
            marks.append((beat, bpm))
    return marks


@dataclass(frozen=True)
class _Look:
    """What every note of one score shares (the velocity below which a snare hit is a ghost note)."""

    ghost_below: float


def _ghost_below(grid_hits) -> float:
    snares = [h.velocity for h in grid_hits if h.drum == "snare"]
    return GHOST_SHARE * statistics.median(snares) if snares else 0.0


def _chord(members, look: _Look, voice: int, duration: Fraction):
    from music21 import articulations, note, percussion

    notes = []
    for hit in members:
        style = DRUM_STYLE[hit.drum]
        n = note.Unpitched(displayName=style.display)
        n.editorial.drum = hit.drum  # for the kit written into the MusicXML (see _with_drum_kit)
        n.notehead = style.notehead
        if hit.drum == "snare" and hit.velocity < look.ghost_below:
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


def _beat_elements(hits_in_beat, beat: int, look: _Look, voice: int) -> list:
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
        elements.append(_chord(onsets[start], look, voice, end - start))
    return elements


def _voice_bar(by_beat: dict, bar: int, look: _Look, voice: int, *, padding: int = 0):
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
            for element in _beat_elements(by_beat[first + b], first + b, look, voice):
                v.append(element)
        b += 1
    return v


def build_score(hits, tempo_bpm: float, downbeat_s: float = 0.0, *, grid=None, title: str = ""):
    """A music21 Score: one percussion part, 4/4, tempo marks, the hits quantised (see `quantise`)."""
    from music21 import clef, instrument, layout, metadata, meter, note, stream, tempo

    hits = list(hits)
    grid_hits = quantise(hits, tempo_bpm, downbeat_s, grid=grid)
    look = _Look(_ghost_below(grid_hits))
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
    pickup = pickup_beats(bar_beats(hits, tempo_bpm, downbeat_s, grid))
    padding = -pickup % BEATS_PER_BAR  # the beats a pickup bar leaves out
    marks = {}
    for i, (beat, bpm) in enumerate(tempo_marks(tempo_bpm, grid)):
        position = beat + pickup + padding if i else padding  # the first tempo from the first note on
        marks.setdefault(int(position // BEATS_PER_BAR), []).append((position % BEATS_PER_BAR, bpm))
    for bar in range(n_bars):
        m = stream.Measure(number=bar + 1 - (pickup + padding) // BEATS_PER_BAR)  # bar 1 starts at the downbeat
        if bar == 0 and padding:
            m.paddingLeft = padding
        if bar == 0:
            m.insert(0, clef.PercussionClef())
            m.insert(0, meter.TimeSignature(f"{BEATS_PER_BAR}/4"))
        for offset, bpm in marks.get(bar, []):
            mark = tempo.MetronomeMark(number=round(bpm, 1), referent=note.Note(type="quarter"))
            mark.placement = "above"
            m.insert(offset - (padding if bar == 0 else 0), mark)
        for voice in (1, 2):
            m.insert(0, _voice_bar(by_voice[voice], bar, look, voice, padding=padding if bar == 0 else 0))
        if bar and bar % 4 == 0:
            m.insert(0, layout.SystemLayout(isNew=True))
        part.append(m)
    part.makeBeams(inPlace=True)
    score.insert(0, part)
    return score


def _with_drum_kit(xml: bytes, score) -> bytes:
    """The MusicXML of `score` with a drum kit: one score-instrument per drum (with its General MIDI note as
    midi-unpitched) and an <instrument> on each note, which music21 does not write for the notes of one part.
    A notation program then knows the part as a drum kit and plays each note on its drum. The notes are matched
    in document order with the drums of `score`; if they do not match, the MusicXML is returned as it was."""
    import xml.etree.ElementTree as ET

    drums = []
    for element in score.recurse().getElementsByClass(["Unpitched", "PercussionChord"]):
        for n in (element.notes if "PercussionChord" in element.classes else [element]):
            drums.append(n.editorial.get("drum"))
    root = ET.fromstring(xml)
    parts = root.findall("part")
    score_parts = root.findall("part-list/score-part")
    if len(parts) != 1 or len(score_parts) != 1:
        return xml
    notes = [n for n in parts[0].iter("note") if n.find("unpitched") is not None]
    if len(notes) != len(drums) or any(
            drum not in DRUM_STYLE
            or n.findtext("unpitched/display-step") + n.findtext("unpitched/display-octave") != DRUM_STYLE[drum].display
            for n, drum in zip(notes, drums)):
        return xml
    part_id = parts[0].get("id")
    score_part = score_parts[0]
    for old in score_part.findall("score-instrument") + score_part.findall("midi-instrument"):
        score_part.remove(old)
    used = [d for d in DRUMS if d in set(drums)]
    ids = {d: f"{part_id}-I{DRUMS.index(d) + 1}" for d in used}
    at = list(score_part).index(score_part.find("part-name")) + 1
    if score_part.find("part-abbreviation") is not None:
        at += 1
    for drum in used:
        inst = ET.Element("score-instrument", id=ids[drum])
        ET.SubElement(inst, "instrument-name").text = DRUM_STYLE[drum].label
        score_part.insert(at, inst)
        at += 1
    for drum in used:
        midi = ET.SubElement(score_part, "midi-instrument", id=ids[drum])
        ET.SubElement(midi, "midi-channel").text = "10"
        ET.SubElement(midi, "midi-unpitched").text = str(GM_NOTE[drum] + 1)  # counted from 1 in MusicXML
    for n, drum in zip(notes, drums):
        children = list(n)
        after = max(i for i, c in enumerate(children) if c.tag in ("unpitched", "duration", "tie"))
        n.insert(after + 1, ET.Element("instrument", id=ids[drum]))
    ET.indent(root, space="  ")
    head = xml[:xml.index(b"<score-partwise")]  # the XML declaration and DOCTYPE, as music21 wrote them
    return head + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _mxl(xml: bytes) -> bytes:
    """A compressed MusicXML (.mxl) container holding `xml`."""
    import io
    import zipfile

    container = (b'<?xml version="1.0" encoding="UTF-8"?>\n<container><rootfiles><rootfile full-path="score.musicxml" '
                 b'media-type="application/vnd.recordare.musicxml+xml"/></rootfiles></container>\n')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/vnd.recordare.musicxml", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("score.musicxml", xml, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def write_score(path: str | Path, hits, tempo_bpm: float, downbeat_s: float = 0.0, *, grid=None,
                title: str = "") -> None:
    """Write the score to `path` (.musicxml, .xml or .mxl) atomically; OutputWriteError if it cannot be written."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    fmt = check_score_format(path)
    score = build_score(hits, tempo_bpm, downbeat_s, grid=grid, title=title)
    data = _with_drum_kit(GeneralObjectExporter(score).parse(), score)
    if fmt == "mxl":
        data = _mxl(data)
    try:
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise OutputWriteError(f"could not write '{path}' ({exc.strerror or exc})") from None


class ScoreSink(_Sink):
    """Collects hits and writes the drum score on close, on the beat grid of `midi_sink` (a MidiFileSink closed
    before this one: its `grid`, the tempo.BeatGrid the .mid was written on; without one, its `tempo_bpm` and
    `downbeat_s`)."""

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
        write_score(self.path, self.hits, tempo_bpm, downbeat_s, grid=getattr(self.midi_sink, "grid", None),
                    title=self.title)
