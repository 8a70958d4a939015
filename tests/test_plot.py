"""--plot: the bar and beat grid, velocity as opacity and height, rows of bars for long songs."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from drumscribe.cli import main
from drumscribe.realtime.drums import load_drum_map
from drumscribe.realtime.sinks import (
    ROW_HEIGHT_IN,
    MidiFileSink,
    PlotSink,
    WaveformEnvelope,
    _plot_rows,
    hits_figure,
)
from drumscribe.realtime.tempo import constant_grid
from drumscribe.realtime.types import DrumHit

GM = load_drum_map("general_midi")
RATE = 48000


def envelope(seconds: float) -> WaveformEnvelope:
    w = WaveformEnvelope()
    w.add(np.random.default_rng(0).normal(0, 0.1, int(seconds * RATE)))
    return w


def test_velocity_sets_opacity_and_height():
    hits = [DrumHit(1.0, "snare", 20, 0.9), DrumHit(2.0, "snare", 127, 0.9)]
    fig = hits_figure(hits, envelope(4.0), RATE, grid=constant_grid(120.0, 0.0))
    (boxes,) = [c for c in fig.axes[0].collections if type(c) is PolyCollection]  # not the waveform fill
    heights = [np.ptp(path.vertices[:, 1]) for path in boxes.get_paths()]
    starts = [path.vertices[:, 0].min() for path in boxes.get_paths()]
    alphas = boxes.get_facecolors()[:, 3]
    assert starts == pytest.approx([1.0, 2.0])
    assert heights[1] > heights[0] and alphas[1] > alphas[0]  # the loud hit: taller and more opaque


def test_grid_draws_every_bar_and_beat():
    grid = constant_grid(120.0, 0.5)  # pickup of one beat, then bars of 2 s
    fig = hits_figure([DrumHit(0.5, "kick", 100, 0.9)], envelope(8.9), RATE, grid=grid)
    ax = fig.axes[0]
    xs = sorted(round(line.get_xdata()[0], 6) for line in ax.get_lines())
    beats = [round(0.5 * k, 6) for k in range(18)]  # 0 .. 8.5 s
    assert sorted(set(xs)) == beats  # every beat; bar lines draw over theirs
    numbers = [t.get_text().strip() for t in ax.texts]
    assert numbers == ["1", "2", "3", "4", "5"]  # bar 1 at the downbeat, 0.5 s, then every 2 s


@pytest.mark.parametrize("minutes", (0.5, 5.0))
def test_long_songs_grow_down_in_rows_of_bars(minutes):
    grid = constant_grid(110.0, 0.3)
    rows, per_row = _plot_rows(minutes * 60.0, grid)
    bars = minutes * 60.0 * 110 / 60 / 4
    assert per_row == (8 if bars <= 48 else 16)
    n_bars = int(np.ceil(bars - 0.3 * 110 / 60 / 4))  # from bar 1 on
    assert len(rows) == n_bars // per_row + (n_bars % per_row > per_row // 4)  # a short last row joins the one before
    assert rows[0][0] == 0.0 and all(a[1] == pytest.approx(b[0]) for a, b in zip(rows, rows[1:]))
    hits = [DrumHit(float(t), "kick", 100, 0.9) for t in np.arange(0.3, minutes * 60, 60 / 110)]
    fig = hits_figure(hits, envelope(minutes * 60.0), RATE, grid=grid)
    width, height = fig.get_size_inches() * fig.dpi
    assert width == 1600 and height == pytest.approx(100 * (0.9 + ROW_HEIGHT_IN * len(rows)))
    assert height < 3000  # five minutes: about 1600 x 2200 px, not a 4000 x 550 strip


def test_a_bar_left_over_joins_the_last_row():
    grid = constant_grid(120.0, 0.0)  # bars of 2 s
    rows, per_row = _plot_rows(8 * 2.0 + 1.5, grid)  # 8 bars and a ringing end in bar 9
    assert per_row == 8 and len(rows) == 1 and rows[0][1] == pytest.approx(18.0)
    rows, _ = _plot_rows(8 * 2.0 + 5.5, grid)  # 3 bars more: a row of their own
    assert len(rows) == 2


def test_plot_sink_draws_the_grid_of_the_mid(tmp_path):
    hits = [DrumHit(0.25 + 0.5 * k, "kick" if k % 2 == 0 else "snare", 100, 0.9) for k in range(32)]
    midi = MidiFileSink(tmp_path / "a.mid", GM, tempo_bpm=100.0)
    plot = PlotSink(tmp_path / "a.png", np.zeros(RATE * 17), RATE, drum_map=GM, grid_from=midi)
    for sink in (midi, plot):
        sink.write(hits)
    midi.close()
    plot.close()
    assert plot.grid is midi.grid and plot.grid.tempo_bpm == 100.0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_through_the_command_line(tmp_path, capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "example.mp3"
    png = tmp_path / "x.png"
    assert main(["transcribe", str(example), "-o", str(tmp_path / "x.mid"), "--plot", str(png),
                 "--tempo", "90", "--no-progress"]) == 0
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] == 1600 and im.size[1] < 1600
