"""--quantize: grid lengths, strength, swing, and the two drum tracks of a quantised .mid."""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from drumscribe.cli import main
from drumscribe.realtime.drums import load_drum_map
from drumscribe.realtime.sinks import AS_PLAYED_TRACK, MidiFileSink, Quantize, hits_to_midi
from drumscribe.realtime.tempo import constant_grid, grid_beats, quantize_beats
from drumscribe.realtime.types import DrumHit

GM = load_drum_map("general_midi")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example.mp3"


@pytest.mark.parametrize("name,beats", (("1/4", 1.0), ("1/8", 0.5), ("1/16", 0.25), ("1/32", 0.125),
                                        ("1/8t", 1 / 3), ("1/16t", 1 / 6), ("1/4t", 2 / 3), (" 1/16T ", 1 / 6)))
def test_grid_lengths(name, beats):
    assert grid_beats(name) == pytest.approx(beats)


@pytest.mark.parametrize("name", ("1/7", "1/64", "16", "", "1/8tt", "quarter"))
def test_unknown_grid(name):
    with pytest.raises(ValueError, match="1/16"):
        grid_beats(name)


def played(seed=0, n=200):
    rng = np.random.default_rng(seed)
    return np.sort(rng.uniform(0, 32, n))


def test_strength_zero_leaves_the_notes_and_one_puts_them_on_the_grid():
    beats = played()
    np.testing.assert_allclose(quantize_beats(beats, 0.25, strength=0.0), beats, atol=1e-12)
    on = quantize_beats(beats, 0.25, strength=1.0)
    np.testing.assert_allclose(on / 0.25, np.round(on / 0.25), atol=1e-9)
    assert np.max(np.abs(on - beats)) <= 0.125 + 1e-9  # each to its nearest line
    half = quantize_beats(beats, 0.25, strength=0.5)
    np.testing.assert_allclose(half, (beats + on) / 2, atol=1e-9)


def test_triplet_grid():
    on = quantize_beats(played(1), grid_beats("1/8t"))
    np.testing.assert_allclose(on * 3, np.round(on * 3), atol=1e-9)


def test_swing_moves_the_off_beats_only():
    beats = np.array([0.0, 0.52, 1.0, 1.47, 2.6, 3.0])
    straight = quantize_beats(beats, 0.5)
    swung = quantize_beats(beats, 0.5, swing=1.0)
    on_beat = np.isclose(straight % 1.0, 0.0)
    np.testing.assert_allclose(swung[on_beat], straight[on_beat], atol=1e-9)
    np.testing.assert_allclose(swung[~on_beat] % 1.0, 2 / 3, atol=1e-9)  # full swing: the last third
    half = quantize_beats(beats, 0.5, swing=0.5)
    np.testing.assert_allclose(half[~on_beat] % 1.0, 0.5 + 0.5 / 6, atol=1e-9)
    assert np.all(half[~on_beat] > straight[~on_beat])


@pytest.mark.parametrize("strength,swing", ((2.0, 0.0), (-0.1, 0.0), (1.0, 1.5), (1.0, -1.0)))
def test_out_of_range(strength, swing):
    with pytest.raises(ValueError):
        Quantize(0.25, strength=strength, swing=swing)
    with pytest.raises(ValueError):
        quantize_beats([0.1], 0.25, strength=strength, swing=swing)


def hits_at(times):
    return [DrumHit(float(t), "kick" if i % 2 == 0 else "snare", 90, 0.9) for i, t in enumerate(times)]


def track_ticks(midi, name):
    for track in midi.tracks:
        if any(m.type == "track_name" and m.name == name for m in track):
            now, out = 0, []
            for m in track:
                now += m.time
                if m.type == "note_on" and m.velocity > 0:
                    out.append(now)
            return out
    raise AssertionError(f"no track '{name}'")


def test_quantised_midi_has_the_grid_notes_and_the_played_ones():
    grid = constant_grid(120.0, 0.0)  # a beat is 0.5 s, 960 ticks
    rng = np.random.default_rng(3)
    times = np.arange(32) * 0.125 + rng.normal(0, 0.012, 32) + 0.02
    hits = hits_at(times)
    plain = hits_to_midi(hits, GM, grid=grid)
    quantised = hits_to_midi(hits, GM, grid=grid, quantize=Quantize(0.25))
    assert len(quantised.tracks) == 3
    assert track_ticks(quantised, AS_PLAYED_TRACK) == track_ticks(plain, "drums")
    assert all(t % 240 == 0 for t in track_ticks(quantised, "drums"))
    assert len(track_ticks(quantised, "drums")) == len(hits)
    none = hits_to_midi(hits, GM, grid=grid, quantize=Quantize(0.25, strength=0.0))
    assert track_ticks(none, "drums") == track_ticks(plain, "drums")


def test_quantize_through_the_command_line(tmp_path, capsys):
    plain, q = tmp_path / "plain.mid", tmp_path / "q.mid"
    assert main(["transcribe", str(EXAMPLE), "-o", str(plain), "--no-progress"]) == 0
    assert main(["transcribe", str(EXAMPLE), "-o", str(q), "--quantize", "1/16", "--no-progress"]) == 0
    a, b = mido.MidiFile(str(plain)), mido.MidiFile(str(q))
    assert len(a.tracks) == 2 and len(b.tracks) == 3
    assert track_ticks(b, AS_PLAYED_TRACK) == track_ticks(a, "drums")
    # on the grid counted from bar 1 (the pickup before it is whole 16ths, so ticks stay multiples of 240)
    assert all(t % 240 == 0 for t in track_ticks(b, "drums"))


def test_sink_quantizes(tmp_path):
    path = tmp_path / "s.mid"
    times = 0.3 + np.arange(40) * 0.25 + np.random.default_rng(4).normal(0, 0.01, 40)
    with MidiFileSink(path, GM, quantize=Quantize(0.5, strength=1.0)) as sink:
        sink.write(hits_at(times))
    assert sink.downbeat_s is not None and sink.tempo_bpm > 0
    bar_one = round(sink.grid.pickup_beats * 960)
    assert all((t - bar_one) % 480 == 0 for t in track_ticks(mido.MidiFile(str(path)), "drums"))
