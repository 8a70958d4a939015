"""Tempo, downbeat and tempo map (realtime/tempo.py), and `transcribe --tempo/--tempo-map` with their bad values.

The MDB flac-against-mp3 figures come from bench/tempo.py (it needs ../shared); here: synthetic hit lists, one
groove rendered on a held-out kit and transcribed by the shipped model, and the command line.
"""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from drumscribe.cli import EXIT_ERROR, EXIT_USAGE, main
from drumscribe.realtime.tempo import BeatGrid, constant_grid, estimate_grid, estimate_tempo_bpm

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "example.mp3"


def rock(bpm_start: float, bpm_end: float | None = None, *, bars: int = 16, start_s: float = 0.5, seed: int = 0,
         kick_eighths: bool = False):
    """(times, drums, velocities, bar lines) of a rock beat: hats on 8ths, kick on 1 and 3, snare on 2 and 4,
    a crash on every 4th bar's one, the tempo going linearly from bpm_start to bpm_end, 5 ms timing jitter."""
    rng = np.random.default_rng(seed)
    n = bars * 4
    bpms = np.linspace(bpm_start, bpm_end or bpm_start, n)
    beats = start_s + np.concatenate([[0.0], np.cumsum(60.0 / bpms)])[:n]
    t, d, v = [], [], []
    for i, b in enumerate(beats):
        p = 60.0 / bpms[i]
        t += [b, b + p / 2]
        d += ["hh_closed", "hh_closed"]
        v += [90, 60]
        t.append(b)
        d.append("kick" if i % 2 == 0 else "snare")
        v.append(105)
        if kick_eighths:
            t.append(b + p / 2)
            d.append("kick")
            v.append(80)
        if i % 16 == 0:
            t.append(b)
            d.append("crash")
            v.append(115)
    t = np.array(t) + rng.normal(0, 0.005, len(t))
    return t, d, v, beats[::4]


@pytest.mark.parametrize("bpm", (62.0, 87.0, 110.0, 128.0, 150.0, 174.0))
def test_rock_beat_tempo_and_downbeat(bpm):
    times, drums, vel, bars = rock(bpm, start_s=0.37)
    grid = estimate_grid(times, drums, vel)
    assert grid.tempo_bpm == pytest.approx(bpm, rel=0.01)
    assert grid.downbeat_s == pytest.approx(bars[0], abs=0.03)  # the crash-and-kick beat, not the snare's
    assert not grid.is_tempo_map


def test_eighth_note_kicks_do_not_double_the_tempo():
    times, drums, vel, _ = rock(100.0, kick_eighths=True)
    assert estimate_tempo_bpm(times, vel, drums=drums) == pytest.approx(100.0, rel=0.01)


def test_jitter_and_dropped_hits_keep_the_tempo():
    """What lossy coding does to the hits: a few ms of shift and some lost or extra soft notes."""
    times, drums, vel, _ = rock(123.0, bars=12)
    reference = estimate_tempo_bpm(times, vel, drums=drums)
    rng = np.random.default_rng(5)
    for _ in range(5):
        keep = rng.random(len(times)) > 0.1
        moved = times[keep] + rng.normal(0, 0.004, keep.sum())
        again = estimate_tempo_bpm(moved, np.array(vel)[keep], drums=[d for d, k in zip(drums, keep) if k])
        assert again == pytest.approx(reference, rel=0.02)


def test_pickup_makes_whole_sixteenths_before_bar_one():
    grid = constant_grid(120.0, 1.3)  # 10.4 16ths of lead-in: a pickup of 10 (2.5 beats), each a little longer
    assert grid.pickup_beats == 2.5
    assert float(grid.beats(1.3)) == pytest.approx(2.5)
    assert grid.segments()[0][2] == pytest.approx(120.0 * 10.0 / 10.4)  # within 2/3..2 of the song's tempo
    assert grid.segments()[-1][2] == pytest.approx(120.0)
    np.testing.assert_allclose(grid.bar_lines_s(6.0)[:2], [1.3, 3.3])
    np.testing.assert_allclose(grid.beat_lines_s(2.4)[-3:], [1.3, 1.8, 2.3])  # beats counted from bar 1
    assert constant_grid(120.0, 0.03).pickup_beats == 0  # under half a 16th (62.5 ms): bar 1 at 0
    early = constant_grid(120.0, 0.07)  # one 16th (125 ms at 120) in 70 ms: at 214 BPM, not one beat at 857
    assert early.pickup_beats == 0.25 and early.segments()[0][2] == pytest.approx(120.0 * 0.125 / 0.07)


def test_pickup_in_the_midi(tmp_path):
    from drumscribe.realtime.drums import load_drum_map
    from drumscribe.realtime.sinks import hits_to_midi
    from drumscribe.realtime.types import DrumHit

    hits = [DrumHit(0.2 + 0.5 * k, "kick", 100, 0.9) for k in range(8)]
    midi = hits_to_midi(hits, load_drum_map("general_midi"), grid=constant_grid(120.0, 1.2))  # 2.4 beats: 3/8+1/4
    meta, now = [], 0
    for m in midi.tracks[0]:
        now += m.time
        meta.append((now, m.type, getattr(m, "numerator", None), getattr(m, "denominator", None),
                     getattr(m, "text", None)))
    assert (0, "time_signature", 5, 8, None) in meta  # 2.5 beats = 5/8 (then 4/4 at bar 1)
    assert (2400, "time_signature", 4, 4, None) in meta and (2400, "marker", None, None, "bar 1") in meta


@pytest.mark.parametrize("start,end", ((100.0, 108.0), (96.0, 88.0)))
def test_tempo_map_follows_a_drifting_song(start, end):
    times, drums, vel, bars = rock(start, end, bars=32)
    one = estimate_grid(times, drums, vel)
    grid = estimate_grid(times, drums, vel, track_drift=True)
    assert grid.is_tempo_map
    beat_s = 60.0 / max(start, end)
    lines = grid.bar_lines_s(times.max())
    error = np.abs(lines[:, None] - bars[None, :]).min(axis=1)
    assert error.max() < 0.125 * beat_s  # every bar line within a 32nd note of the played one
    one_error = np.abs(one.bar_lines_s(times.max())[:, None] - bars[None, :]).min(axis=1)
    assert one_error.max() > 0.125 * beat_s  # where one tempo is not enough
    segments = grid.segments()
    assert segments[1][2] == pytest.approx(start, rel=0.03) and segments[-1][2] == pytest.approx(end, rel=0.03)


def test_steady_song_gets_one_tempo_even_when_asked_for_a_map():
    times, drums, vel, _ = rock(117.0, bars=24)
    assert not estimate_grid(times, drums, vel, track_drift=True).is_tempo_map


def test_too_few_hits_give_the_default_or_given_tempo():
    assert estimate_grid([0.1, 0.5], ["kick", "snare"], [100, 100]).tempo_bpm == 120.0
    assert estimate_grid([], [], [], tempo_bpm=87.0).tempo_bpm == 87.0


def test_beat_grid_round_trips():
    grid = BeatGrid(100.0, 0.5, 1, (0.0, 0.5, 2.9, 5.3), (0.0, 1.0, 5.0, 9.0), 102.0)
    t = np.array([0.1, 0.5, 1.7, 4.0, 8.0])
    np.testing.assert_allclose(grid.seconds(grid.beats(t)), t, atol=1e-9)
    assert grid.is_tempo_map


# ---------------------------------------------------------------------------------------------------------------
# a groove at a known tempo on a held-out kit, through the command line


def test_rendered_groove_on_held_out_kit_within_one_percent(tmp_path, capsys):
    import soundfile as sf

    from drumscribe.offline.render import available, generate_pattern, load_kit, render_hits
    from drumscribe.realtime import SAMPLE_RATE_HZ

    spec = "hydrogen:ColomboAcousticDrumkit"  # offline.render.HELD_OUT_KITS: never trained on
    assert available(spec), "hydrogen-drumkits is not installed (make setup installs it)"
    kit = load_kit(spec)
    for tempo, seed in ((91, 2), (126, 6)):
        rng = np.random.default_rng(seed)
        hits, duration = generate_pattern(rng, bars=8, tempo_bpm=tempo, style="groove", drums_available=kit.drums)
        audio = render_hits(hits, kit, duration_s=duration, rng=rng)
        wav = tmp_path / f"groove{tempo}.wav"
        sf.write(str(wav), (0.5 * audio / np.abs(audio).max()).astype(np.float32), SAMPLE_RATE_HZ)
        mid = tmp_path / f"groove{tempo}.mid"
        assert main(["transcribe", str(wav), "-o", str(mid), "--no-progress"]) == 0
        written = [m.tempo for t in mido.MidiFile(str(mid)).tracks for m in t if m.type == "set_tempo"][-1]
        assert mido.tempo2bpm(written) == pytest.approx(tempo, rel=0.01), capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------
# command line


def test_tempo_map_option(tmp_path, capsys):
    """The example is played to a click: one tempo, even with --tempo-map; the notes are the same."""
    plain, mapped = tmp_path / "a.mid", tmp_path / "b.mid"
    assert main(["transcribe", str(EXAMPLE), "-o", str(plain), "--no-progress"]) == 0
    assert main(["transcribe", str(EXAMPLE), "-o", str(mapped), "--tempo-map", "--no-progress"]) == 0
    assert plain.read_bytes() == mapped.read_bytes()


def test_tempo_option_writes_that_tempo(tmp_path, capsys):
    mid = tmp_path / "x.mid"
    assert main(["transcribe", str(EXAMPLE), "--tempo", "87", "-o", str(mid), "--no-progress"]) == 0
    assert "tempo 87 BPM" in capsys.readouterr().out
    tempi = [m.tempo for t in mido.MidiFile(str(mid)).tracks for m in t if m.type == "set_tempo"]
    assert mido.tempo2bpm(tempi[-1]) == pytest.approx(87.0, abs=0.001)  # from bar 1 on; a pickup may come first


@pytest.mark.parametrize("argv,mentions", (
    (["--tempo", "0"], ["--tempo", "0"]),
    (["--tempo", "nan"], ["--tempo"]),
    (["--quantize", "1/7"], ["--quantize", "1/7", "1/16"]),
    (["--quantize", "1/16", "--swing", "2"], ["--swing", "2", "0-1"]),
    (["--quantize", "1/16", "--quantize-strength", "-0.5"], ["--quantize-strength"]),
    (["--quantize", "1/8t", "--swing", "0.5"], ["--swing", "triplet"]),
    (["--swing", "0.5"], ["--swing", "--quantize"]),
    (["--tempo", "fast"], ["--tempo"]),
    (["--tempo", "90", "--tempo-map"], ["--tempo", "--tempo-map"]),
))
def test_bad_grid_values_one_line_nothing_written(tmp_path, capsys, argv, mentions):
    mid = tmp_path / "x.mid"
    mid.write_bytes(b"old")
    try:
        code = main(["transcribe", str(EXAMPLE), "-o", str(mid), "--no-progress", *argv])
    except SystemExit as exc:  # argparse's own check (a value that is not a number)
        code = exc.code
    err = capsys.readouterr().err
    assert code in (EXIT_ERROR, EXIT_USAGE)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in mentions:
        assert word in lines[0], lines[0]
    assert mid.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mid"]
