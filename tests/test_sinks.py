"""Sinks: the .mid round trip, the CSV columns, the summary, the plot, the tempo, and the drum maps."""
from __future__ import annotations

import csv
import io

import mido
import numpy as np
import pytest

from drumscribe.realtime.drums import DRUMS, load_drum_map
from drumscribe.realtime.sinks import (
    CSV_COLUMNS,
    CsvEventsSink,
    MidiFileSink,
    OutputPathError,
    PlotSink,
    SummarySink,
    check_writable,
    hits_to_midi,
)
from drumscribe.realtime.tempo import estimate_tempo_bpm
from drumscribe.realtime.types import DrumHit

GM = load_drum_map("general_midi")


def make_hits(tempo_bpm=100.0, bars=4):
    beat = 60.0 / tempo_bpm
    hits = []
    for b in range(bars * 4):
        t = 0.1 + b * beat
        hits.append(DrumHit(t, "kick" if b % 2 == 0 else "snare", 100 + b % 20, 0.9, emitted_s=t + 0.09))
        hits.append(DrumHit(t, "hh_closed", 60 + b, 0.8, emitted_s=t + 0.09))
        hits.append(DrumHit(t + beat / 2, "hh_closed", 40, 0.7, emitted_s=t + beat / 2 + 0.09))
    hits.append(DrumHit(0.1, "crash", 127, 0.95, emitted_s=0.2))
    return hits


def midi_seconds(midi):
    """tick -> seconds through every set_tempo of the file (a pickup or a tempo map has several)."""
    changes = sorted((tick, m.tempo) for tick, m in _absolute(midi) if m.type == "set_tempo")
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 500000))

    def seconds(tick):
        total, prev_tick, tempo = 0.0, 0, changes[0][1]
        for at, new_tempo in changes:
            if at >= tick:
                break
            total += (at - prev_tick) * tempo / 1e6 / midi.ticks_per_beat
            prev_tick, tempo = at, new_tempo
        return total + (tick - prev_tick) * tempo / 1e6 / midi.ticks_per_beat

    return seconds, changes


def _absolute(midi):
    for track in midi.tracks:
        now = 0
        for m in track:
            now += m.time
            yield now, m


def read_notes(path, *, tracks=None):
    """(time_s, note, velocity, duration_s, channel) of every note (of the drum tracks named in `tracks`, else
    of all), with the file's own tempo map; and the tempo from bar 1 on (the last set_tempo)."""
    midi = mido.MidiFile(str(path))
    seconds, changes = midi_seconds(midi)
    notes = []
    for track in midi.tracks:
        names = [m.name for m in track if m.type == "track_name"]
        if tracks is not None and not set(names) & set(tracks):
            continue
        now, open_notes = 0, {}
        for m in track:
            now += m.time
            if m.type == "note_on" and m.velocity > 0:
                assert m.note not in open_notes, "a note-on before the previous note-off of its key"
                open_notes[m.note] = (now, m.velocity, m.channel)
            elif m.type in ("note_off", "note_on"):
                start, velocity, channel = open_notes.pop(m.note)
                notes.append((seconds(start), m.note, velocity, seconds(now) - seconds(start), channel))
        assert not open_notes, "every note has its note-off"
    return sorted(notes), midi, 60e6 / changes[-1][1]


def test_midi_round_trip(tmp_path):
    hits = make_hits()
    path = tmp_path / "song.mid"
    with MidiFileSink(path, GM, note_length_s=0.05) as sink:
        sink.write(hits[:10])
        sink.write(hits[10:])
    notes, midi, tempo = read_notes(path)
    assert midi.type == 1 and len(midi.tracks) == 2
    assert abs(tempo - 100.0) < 1.0 and sink.tempo_bpm == pytest.approx(tempo, abs=0.01)
    assert len(notes) == len(hits)
    tick_s = 60.0 / tempo / midi.ticks_per_beat
    expected = sorted((h.onset_s, GM.note(h.drum), h.velocity) for h in hits)
    for (t, note, velocity, duration, channel), (et, enote, evel) in zip(notes, expected):
        assert abs(t - et) <= tick_s and note == enote and velocity == evel
        assert channel == 9  # MIDI channel 10
        assert duration == pytest.approx(0.05, abs=2 * tick_s)


def test_notes_sit_at_exact_times_whatever_the_tempo(tmp_path):
    rng = np.random.default_rng(3)
    times = np.sort(rng.uniform(0, 20, 60))
    hits = [DrumHit(float(t), DRUMS[i % len(DRUMS)], 64, 0.5) for i, t in enumerate(times)]
    for tempo in (61.3, 97.0, 180.0):
        path = tmp_path / f"t{tempo}.mid"
        hits_to_midi(hits, GM, tempo_bpm=tempo).save(str(path))
        notes, midi, _ = read_notes(path)
        tick_s = 60.0 / tempo / midi.ticks_per_beat
        assert np.max(np.abs(np.array([n[0] for n in notes]) - times)) <= tick_s / 2 + 1e-9
        assert abs(mido.MidiFile(str(path)).length - (times[-1] + 0.05)) < 0.01


def test_close_repeats_do_not_overlap(tmp_path):
    hits = [DrumHit(1.0, "snare", 90, 0.9), DrumHit(1.02, "snare", 80, 0.9), DrumHit(1.02, "side_stick", 70, 0.9)]
    path = tmp_path / "roll.mid"
    with MidiFileSink(path, GM, note_length_s=0.1) as sink:
        sink.write(hits)
    notes, _, _ = read_notes(path)  # read_notes asserts each note-off precedes its key's next note-on
    assert [n[1] for n in notes] == [38, 37, 38]
    assert notes[0][3] == pytest.approx(0.02, abs=0.002)


def test_empty_midi_is_valid(tmp_path):
    path = tmp_path / "empty.mid"
    sink = MidiFileSink(path, GM)
    sink.close()
    sink.close()  # safe twice
    notes, midi, tempo = read_notes(path)
    assert notes == [] and midi.type == 1 and tempo == pytest.approx(120.0)
    with pytest.raises(ValueError):
        sink.write([DrumHit(0.0, "kick", 1, 0.1)])


def test_midi_write_is_atomic(tmp_path):
    path = tmp_path / "song.mid"
    path.write_bytes(b"old")
    sink = MidiFileSink(path, GM)
    sink.write(make_hits())
    assert path.read_bytes() == b"old"  # nothing is written before close
    sink.close()
    assert mido.MidiFile(str(path)).type == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid"]


def test_superior_drummer_map(tmp_path):
    sd3 = load_drum_map("superior_drummer_3")
    assert set(sd3.notes) == set(DRUMS)
    assert sd3.note("tom_high") == 48 and GM.note("tom_high") == 50
    assert "github.com" in sd3.description  # the source is cited
    path = tmp_path / "sd3.mid"
    with MidiFileSink(path, sd3) as sink:
        sink.write([DrumHit(0.5, "tom_high", 100, 0.9)])
    assert [n[1] for n in read_notes(path)[0]] == [48]


def test_csv_columns(tmp_path):
    hits = make_hits()
    path = tmp_path / "events.csv"
    with CsvEventsSink(path, GM) as sink:
        sink.write(hits[:5])
        assert not path.exists()  # streamed to a temporary file, renamed on close
        sink.write(hits[5:])
    sink.close()
    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0].keys()) == CSV_COLUMNS == ("onset_s", "emitted_s", "drum", "midi_note", "velocity",
                                                     "confidence")
    assert len(rows) == len(hits)
    for row, hit in zip(rows, hits):
        assert float(row["onset_s"]) == pytest.approx(hit.onset_s, abs=1e-6)
        assert float(row["emitted_s"]) == pytest.approx(hit.emitted_s, abs=1e-6)
        assert row["drum"] == hit.drum and int(row["midi_note"]) == GM.note(hit.drum)
        assert int(row["velocity"]) == hit.velocity
        assert float(row["confidence"]) == pytest.approx(hit.confidence, abs=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]


def test_summary_counts_hits_per_drum():
    stream = io.StringIO()
    with SummarySink(stream, drum_map=GM) as sink:
        sink.write(make_hits(bars=1))
    text = stream.getvalue()
    assert text.startswith("13 drum hits")
    counts = {line.split()[0]: int(line.split()[2]) for line in text.splitlines()[2:]}
    assert counts == {"kick": 2, "snare": 2, "hh_closed": 8, "crash": 1}
    empty = io.StringIO()
    SummarySink(empty).close()
    assert empty.getvalue().strip() == "no drum hits found"


def test_plot_draws_a_png(tmp_path, groove):
    path = tmp_path / "plot.png"
    with PlotSink(path, groove[0], 48000, drum_map=GM, title="groove") as sink:
        sink.write(make_hits())
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "x.mid") == tmp_path / "x.mid"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    for bad in (tmp_path, tmp_path / "missing" / "x.mid"):
        with pytest.raises(OutputPathError):
            check_writable(bad)


@pytest.mark.parametrize("tempo", (72.0, 100.0, 128.0, 150.0))
def test_tempo_from_hits(tempo):
    rng = np.random.default_rng(int(tempo))
    hits = make_hits(tempo, bars=8)
    times = [h.onset_s + rng.normal(0, 0.004) for h in hits]
    estimate = estimate_tempo_bpm(times, [h.velocity for h in hits])
    assert min(abs(estimate - tempo), abs(estimate - 2 * tempo), abs(estimate - tempo / 2)) < 0.02 * tempo
    assert estimate_tempo_bpm([0.0, 0.5]) == 120.0  # too few hits: the default
