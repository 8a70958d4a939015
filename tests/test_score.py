"""The MusicXML drum score: quantisation to the beat grid, the notation it writes (read back with music21), the
sink's atomic writing, and `transcribe --score` on the example song."""
from fractions import Fraction
from pathlib import Path

import mido
import pytest

from drumscribe.cli import EXIT_ERROR, EXIT_OK, main
from drumscribe.offline.score import (
    DRUM_STYLE,
    ScoreSink,
    beat_grid,
    build_score,
    check_score_format,
    quantise,
    write_score,
)
from drumscribe.realtime.drums import DRUMS
from drumscribe.realtime.sinks import OutputPathError
from drumscribe.realtime.types import DrumHit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "example.mp3"
BPM = 120.0
BEAT_S = 60.0 / BPM


def hit(beat: float, drum: str, velocity: int = 100, *, jitter_s: float = 0.0, downbeat_s: float = 0.0) -> DrumHit:
    return DrumHit(downbeat_s + beat * BEAT_S + jitter_s, drum, velocity, 0.9)


def groove(bars: int = 2, downbeat_s: float = 0.0) -> list:
    """Eighth-note hi-hats (the last one open), kick on 1 and 3, snare on 2 and 4, a ghost snare on the last
    sixteenth; slightly off the grid, as played."""
    hits = []
    for bar in range(bars):
        b = 4 * bar
        hits += [hit(b + i / 2, "hh_open" if i == 7 else "hh_closed", 90, jitter_s=0.006 * (-1) ** i,
                     downbeat_s=downbeat_s) for i in range(8)]
        hits += [hit(b, "kick", 110, downbeat_s=downbeat_s), hit(b + 2, "kick", 105, jitter_s=-0.01,
                                                                 downbeat_s=downbeat_s),
                 hit(b + 1, "snare", 100, jitter_s=0.008, downbeat_s=downbeat_s),
                 hit(b + 3, "snare", 104, downbeat_s=downbeat_s), hit(b + 3.75, "snare", 30, downbeat_s=downbeat_s)]
    return hits


def read_back(path):
    from music21 import converter

    return converter.parse(str(path))


def unpitched(score) -> list:
    """(offset in quarter notes from the start, display pitch name, notehead, parenthesised) of every note."""
    out = []
    for element in score.recurse().getElementsByClass(["Unpitched", "PercussionChord"]):
        offset = element.getOffsetInHierarchy(score)
        notes = element.notes if "PercussionChord" in element.classes else [element]
        for n in notes:
            out.append((Fraction(offset).limit_denominator(12), n.displayName, n.notehead, n.noteheadParenthesis))
    return sorted(out)


# ---------------------------------------------------------------------------------------------------------------
# the grid


def test_grid_prefers_sixteenths_and_takes_triplets_only_when_clearly_better():
    assert beat_grid([0.0, 0.25, 0.5, 0.75]) == 4
    assert beat_grid([0.0, 0.34, 0.66]) == 3
    assert beat_grid([0.0, 0.5]) == 4  # both grids hold an eighth: straight wins
    assert beat_grid([0.3]) == 4  # 0.3 is nearer 1/4 than 1/3


def test_quantise_places_played_hits_on_sixteenths():
    grid = quantise(groove(), BPM)
    kicks = [g.beat for g in grid if g.drum == "kick"]
    assert kicks == [0, 2, 4, 6]
    ghosts = [g for g in grid if g.drum == "snare" and g.velocity == 30]
    assert [g.beat for g in ghosts] == [Fraction(15, 4), Fraction(31, 4)]
    assert len(grid) == len(groove())


def test_quantise_finds_triplets():
    hits = [hit(i / 3, "snare", jitter_s=0.005) for i in range(6)]
    assert [g.beat for g in quantise(hits, BPM)] == [Fraction(i, 3) for i in range(6)]


def test_a_late_hit_rounds_onto_the_next_downbeat_and_duplicates_merge():
    hits = [hit(0.98, "snare", 80), hit(1.0, "snare", 100), hit(1.5, "kick")]
    grid = quantise(hits, BPM)
    assert [(g.beat, g.drum, g.velocity) for g in grid] == [(1, "snare", 100), (Fraction(3, 2), "kick", 100)]


def test_bars_start_at_the_downbeat_with_whole_bars_for_earlier_hits():
    downbeat_s = 1.3
    grid = quantise(groove(1, downbeat_s=downbeat_s) + [hit(-0.5, "crash", downbeat_s=downbeat_s)], BPM,
                    downbeat_s)
    kick = min(g.beat for g in grid if g.drum == "kick")
    assert kick == 4  # bar 2 beat 1: one whole bar holds the crash before the downbeat
    assert [g.beat for g in grid if g.drum == "crash"] == [Fraction(7, 2)]


def test_a_pickup_is_an_incomplete_bar_0_and_bar_1_starts_at_the_downbeat(tmp_path):
    downbeat_s = 1.3
    path = tmp_path / "pickup.musicxml"
    write_score(path, groove(2, downbeat_s=downbeat_s) + [hit(-0.5, "crash", downbeat_s=downbeat_s)], BPM,
                downbeat_s)
    score = read_back(path)
    measures = list(score.parts[0].getElementsByClass("Measure"))
    assert [m.number for m in measures] == [0, 1, 2]
    assert measures[0].duration.quarterLength == pytest.approx(1.0)  # one beat: the crash on its 'and'
    assert measures[1].duration.quarterLength == pytest.approx(4.0)
    notes = unpitched(score)
    assert (Fraction(1, 2), "A5", "x", False) in notes  # the crash, half a beat before bar 1
    assert (1, "F4", "normal", False) in notes  # the kick on the downbeat: beat 1 of bar 1
    assert len(notes) == len(groove(2)) + 1


def test_quantise_refuses_a_bad_tempo():
    with pytest.raises(ValueError):
        quantise(groove(), 0.0)


# ---------------------------------------------------------------------------------------------------------------
# the notation


def test_score_reads_back_with_drum_notation(tmp_path):
    from music21 import articulations, clef, meter, tempo

    path = tmp_path / "groove.musicxml"
    write_score(path, groove(), BPM, title="groove")
    score = read_back(path)
    notes = unpitched(score)
    assert len(notes) == len(groove())
    measures = score.parts[0].getElementsByClass("Measure")
    assert len(measures) == 2
    assert [ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)] == ["4/4"]
    assert isinstance(score.recurse().getElementsByClass(clef.Clef).first(), clef.PercussionClef)
    marks = list(score.recurse().getElementsByClass(tempo.MetronomeMark))
    assert len(marks) == 1 and marks[0].number == pytest.approx(BPM)
    by_offset = {(o, name): (head, paren) for o, name, head, paren in notes}
    kick, snare, hat, ride = (DRUM_STYLE[d].display for d in ("kick", "snare", "hh_closed", "ride"))
    assert by_offset[(0, kick)] == ("normal", False)  # kick in the bottom space on beat 1
    assert by_offset[(1, snare)] == ("normal", False)  # snare on the third space on beat 2
    assert by_offset[(Fraction(15, 4), snare)] == ("normal", True)  # the ghost note, bracketed
    assert by_offset[(Fraction(1, 2), hat)] == ("x", False)  # hi-hat: x above the staff
    assert kick == "F4" and snare == "C5" and hat == "G5" and ride == "F5"
    opens = [el for el in score.recurse().getElementsByClass(["Unpitched", "PercussionChord"])
             if any(isinstance(a, articulations.OpenString) for a in el.articulations)]
    assert len(opens) == 2  # the last hi-hat of each bar, marked 'o'
    assert {Fraction(o.getOffsetInHierarchy(score)) for o in opens} == {Fraction(7, 2), Fraction(15, 2)}


def test_the_part_is_a_drum_kit_with_an_instrument_per_note(tmp_path):
    """Each note names its drum's instrument, whose General MIDI note (midi-unpitched, counted from 1) plays it:
    what makes MuseScore import the part as a drum set rather than a pitched staff."""
    import xml.etree.ElementTree as ET

    path = tmp_path / "kit.musicxml"
    write_score(path, groove(), BPM)
    root = ET.parse(path).getroot()
    names = {i.get("id"): i.findtext("instrument-name") for i in root.iter("score-instrument")}
    gm = {m.get("id"): int(m.findtext("midi-unpitched")) - 1 for m in root.iter("midi-instrument")}
    assert sorted(names.values()) == ["Bass Drum", "Hi-Hat", "Hi-Hat Open", "Snare"]
    played = []
    for n in root.iter("note"):
        if n.find("unpitched") is not None:
            inst = n.find("instrument").get("id")
            played.append((n.findtext("unpitched/display-step") + n.findtext("unpitched/display-octave"), gm[inst]))
    assert len(played) == len(groove())
    assert set(played) == {("F4", 36), ("C5", 38), ("G5", 42), ("G5", 46)}


def test_every_voice_fills_each_bar_with_notes_and_rests():
    """Four quarter notes of notes and rests in each voice of each bar: a bar that does not add up would be
    rejected or mangled by a notation program."""
    hits = groove(1) + [hit(4 + i / 3, "tom_high") for i in range(3)] + [hit(9.25, "crash")]
    score = build_score(hits, BPM)
    for measure in score.parts[0].getElementsByClass("Measure"):
        voices = list(measure.voices)
        assert len(voices) == 2
        for voice in voices:
            assert sum(Fraction(e.quarterLength) for e in voice.notesAndRests) == 4, (measure.number, voice.id)


def test_every_drum_has_a_staff_place():
    assert set(DRUM_STYLE) == set(DRUMS)
    hands = {d for d, s in DRUM_STYLE.items() if s.voice == 1}
    assert hands == set(DRUMS) - {"kick", "hh_pedal"}


def test_an_empty_score_is_one_bar_of_rest(tmp_path):
    path = tmp_path / "empty.musicxml"
    write_score(path, [], BPM)
    score = read_back(path)
    assert unpitched(score) == []
    assert len(score.parts[0].getElementsByClass("Measure")) == 1


@pytest.mark.parametrize("name", ["a.musicxml", "a.xml", "a.mxl"])
def test_score_formats(tmp_path, name):
    path = tmp_path / name
    write_score(path, groove(1), BPM)
    assert len(unpitched(read_back(path))) == len(groove(1))


def test_unknown_format_is_refused():
    with pytest.raises(OutputPathError, match="'.pdf'.*.musicxml"):
        check_score_format("song.pdf")


# ---------------------------------------------------------------------------------------------------------------
# the sink


class _Midi:
    """What ScoreSink reads of a closed MidiFileSink."""

    def __init__(self, tempo_bpm, downbeat_s=None):
        self.tempo_bpm = tempo_bpm
        self.downbeat_s = downbeat_s


def test_sink_takes_tempo_and_downbeat_from_the_midi_sink(tmp_path):
    path = tmp_path / "s.musicxml"
    sink = ScoreSink(path, _Midi(BPM, downbeat_s=0.25))
    sink.write(groove(1, downbeat_s=0.25))
    sink.close()
    sink.close()  # safe twice
    notes = unpitched(read_back(path))
    assert (0, "F4", "normal", False) in notes  # the kick on the downbeat is beat 1 of bar 1


def test_sink_follows_the_grid_of_the_midi_it_closes_after(tmp_path):
    """With the real MidiFileSink: the score's bar 1 is the .mid's, and each kick of the groove (on beats 1 and
    3) lands on a beat of the score."""
    from drumscribe.realtime.drums import load_drum_map
    from drumscribe.realtime.sinks import MidiFileSink

    hits = groove(4, downbeat_s=0.8) + [hit(-1, "snare", 90, downbeat_s=0.8)]
    midi = MidiFileSink(tmp_path / "g.mid", load_drum_map())
    score = ScoreSink(tmp_path / "g.musicxml", midi)
    for sink in (midi, score):
        sink.write(hits)
    midi.close()
    score.close()
    grid = midi.grid
    assert grid.tempo_bpm == pytest.approx(BPM, rel=0.01) and grid.downbeat_s == pytest.approx(0.8, abs=0.03)
    written = read_back(tmp_path / "g.musicxml")
    first = written.parts[0].getElementsByClass("Measure").first()
    assert first.number == 0  # the snare before the downbeat is in a pickup bar
    kicks = [o for o, name, _, _ in unpitched(written) if name == "F4"]
    pickup = Fraction(first.duration.quarterLength)
    assert kicks == [pickup + 2 * i for i in range(8)], (grid.tempo_bpm, grid.downbeat_s, kicks)


def test_bar_1_is_the_downbeat_also_after_whole_bars_of_intro(tmp_path):
    downbeat_s = 4.0  # two bars at 120 BPM, with hits from 0.1 s on
    hits = [hit(b - 7.75, "hh_closed", downbeat_s=downbeat_s) for b in range(8)] + groove(1, downbeat_s=downbeat_s)
    score = build_score(hits, BPM, downbeat_s)
    measures = list(score.parts[0].getElementsByClass("Measure"))
    assert [m.number for m in measures] == [-1, 0, 1]
    bar_1 = measures[2]
    kicks = [e for e in bar_1.recurse().notes if "F4" in [n.displayName for n in getattr(e, "notes", [e])]]
    assert kicks and kicks[0].offset == 0
    from music21 import tempo

    assert measures[0].getElementsByClass(tempo.MetronomeMark).first().number == pytest.approx(BPM)  # from the start


def test_a_tempo_map_gets_a_mark_at_each_tempo(tmp_path):
    from music21 import tempo

    from drumscribe.realtime.tempo import BeatGrid

    grid = BeatGrid(tempo_bpm=110.0, downbeat_s=0.0, pickup_beats=0, knots_s=(0.0, 4.0), knots_beats=(0.0, 8.0),
                    last_bpm=100.0)  # two bars at 120, then 100
    hits = [DrumHit(float(t), "kick", 100, 0.9) for t in grid.seconds(range(16))]
    path = tmp_path / "map.musicxml"
    write_score(path, hits, 110.0, grid=grid)
    score = read_back(path)
    marks = [(Fraction(m.getOffsetInHierarchy(score)), m.number)
             for m in score.recurse().getElementsByClass(tempo.MetronomeMark)]
    assert marks == [(0, 120), (8, 100)]
    assert [o for o, *_ in unpitched(score)] == list(range(16))  # every kick on its beat across the change


def test_sink_abort_leaves_the_old_file(tmp_path):
    path = tmp_path / "s.musicxml"
    path.write_text("old")
    sink = ScoreSink(path, _Midi(BPM))
    sink.write(groove(1))
    sink.abort()
    sink.close()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.musicxml"]


# ---------------------------------------------------------------------------------------------------------------
# the command line, on the example song


def _midi_note_count(path) -> int:
    return sum(1 for track in mido.MidiFile(str(path)).tracks for m in track if m.type == "note_on" and m.velocity)


def test_transcribe_score_on_the_example(capsys, tmp_path):
    """Acceptance: a score music21 parses, holding at least 80 % as many notes as the .mid."""
    mid, xml = tmp_path / "song.mid", tmp_path / "song.musicxml"
    assert main(["transcribe", str(EXAMPLE), "-o", str(mid), "--score", str(xml), "--no-progress"]) == EXIT_OK
    capsys.readouterr()
    n_mid = _midi_note_count(mid)
    n_score = len(unpitched(read_back(xml)))
    assert n_mid > 100
    assert 0.8 * n_mid <= n_score <= n_mid


@pytest.mark.slow
def test_score_leaves_the_midi_unchanged(capsys, tmp_path):
    """The .mid is byte for byte what transcribe writes without --score."""
    plain, mid = tmp_path / "plain.mid", tmp_path / "with.mid"
    assert main(["transcribe", str(EXAMPLE), "-o", str(plain), "--no-progress"]) == EXIT_OK
    assert main(["transcribe", str(EXAMPLE), "-o", str(mid), "--score", str(tmp_path / "s.mxl"),
                 "--no-progress"]) == EXIT_OK
    capsys.readouterr()
    assert mid.read_bytes() == plain.read_bytes()


def test_transcribe_bad_score_path_is_one_line_and_writes_nothing(capsys, tmp_path):
    mid = tmp_path / "out.mid"
    code = main(["transcribe", str(EXAMPLE), "-o", str(mid), "--score", str(tmp_path / "song.pdf"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--score" in err and ".pdf" in err and ".musicxml" in err
    assert list(tmp_path.iterdir()) == []
    code = main(["transcribe", str(EXAMPLE), "-o", str(mid), "--score", str(tmp_path / "no" / "s.musicxml")])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "--score" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
