"""Training songs (offline.songs): a clip has its parts, its labels are the drums', percussion is labelled apart."""
import numpy as np
import pytest

from drumscribe.offline.accompaniment import DEFAULT_SOUNDFONT
from drumscribe.offline.songs import (
    LOUDNESS_DB,
    PERCUSSION_LABEL,
    SECTIONS,
    SONG_DRUMS_DB,
    STYLES,
    _part_events,
    arrangement,
    drumless_bars,
    render_song,
)
from drumscribe.realtime.drums import DRUMS
from drumscribe.realtime.kits import Instrument, Kit, Layer

SR = 48000
needs_soundfont = pytest.mark.skipif(not DEFAULT_SOUNDFONT.is_file(), reason="no FluidR3_GM soundfont")


def _kit(sounds: dict, name: str) -> Kit:
    return Kit(name=name, path=None, kind="test", licence="test",
               instruments={d: [Instrument(d, d, [Layer(0.0, 1.0, a, 1.0)], 1.0)] for d, a in sounds.items()})


def _drum_kit() -> Kit:
    t = np.arange(int(0.3 * SR)) / SR
    tone = lambda f: (np.sin(2 * np.pi * f * t) * np.exp(-t / 0.05)).astype(np.float32)  # noqa: E731
    noise = (np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / 0.03)).astype(np.float32)
    return _kit({"kick": tone(60), "snare": tone(200) + 0.3 * noise, "hh_closed": noise, "hh_open": noise,
                 "tom_low": tone(100), "crash": noise, "ride": noise}, "test kit")


def _percussion_kit() -> Kit:
    t = np.arange(int(0.15 * SR)) / SR
    rng = np.random.default_rng(1)
    jingle = (rng.standard_normal(len(t)) * np.exp(-t / 0.04)).astype(np.float32)
    return _kit({"tambourine": jingle, "shaker": 0.5 * jingle, "claps": jingle, "cowbell": jingle,
                 "conga_high": jingle, "conga_low": jingle, "conga_mute": jingle}, "test percussion")


def _rms_db(x) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-24)


def test_arrangement_is_a_stretch_of_a_song_and_the_drums_sit_out_only_some_bars():
    rng = np.random.default_rng(2)
    for _ in range(50):
        bars = int(rng.integers(8, 15))
        sections = arrangement(rng, bars)
        assert len(sections) == bars and set(sections) <= set(SECTIONS)
        silent = drumless_bars(rng, sections)
        assert len(silent) < bars
        assert all(sections[b] in ("intro", "break", "outro") for b in silent)


def test_bass_plays_on_the_kick():
    beat = 0.5
    kicks = {0: [0.0, 0.75, 1.0], 1: [2.0, 3.25]}
    events = _part_events(np.random.default_rng(0), "bass", ["verse", "chorus"], 0.3, 0, ((0, False),) * 4, beat,
                          kicks, pattern="kick")
    starts = np.array([e[0] for e in events])
    assert len(starts) == 5
    np.testing.assert_allclose(starts, [0.0, 0.75, 1.0, 2.0, 3.25], atol=0.02)


@needs_soundfont
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_song_clip_has_its_parts_and_labels_only_drums(seed):
    """A band under the drums at the level drawn (12 dB under to 3 dB over), the master at commercial loudness,
    the hand percussion labelled apart from the drums, and no drum labelled in a drumless bar."""
    style = sorted(STYLES)[seed * 4]
    audio, hits, perc_hits, parts = render_song(_drum_kit(), np.random.default_rng(seed), style=style, bars=10,
                                                percussion=_percussion_kit(), percussion_prob=1.0, mp3_prob=0.0,
                                                parts_apart=True)
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert abs(len(audio) / SR - (10 * 4 * parts["beat_s"] + 1.0)) < 0.01
    assert len(parts["parts"]) >= 2 and parts["parts"][0] == "bass"
    band_db, drums_db = _rms_db(parts["band"]), _rms_db(parts["drums"])
    assert SONG_DRUMS_DB[0] <= parts["drums_db"] <= SONG_DRUMS_DB[1]
    assert abs((drums_db - band_db) - parts["drums_db"]) < 1.5  # stereo to mono moves each a little
    assert LOUDNESS_DB[0] - 3 <= parts["master_db"] <= LOUDNESS_DB[1]
    assert -20 < _rms_db(audio) < -6
    assert hits and all(h.drum in DRUMS for h in hits)
    assert perc_hits and all(h.drum == PERCUSSION_LABEL for h in perc_hits)
    assert _rms_db(parts["percussion"]) > -60
    bar_s = 4 * parts["beat_s"]
    assert not [h for h in hits if int(h.time_s // bar_s) in parts["drumless_bars"]]


@needs_soundfont
def test_without_percussion_no_percussion_is_labelled_or_heard():
    audio, hits, perc_hits, parts = render_song(_drum_kit(), np.random.default_rng(5), style="rock", bars=8,
                                                percussion=None, mp3_prob=0.0, parts_apart=True)
    assert hits and not perc_hits and not parts["percussion"].any()


def test_percussion_labels_follow_the_onset_rule():
    from drumscribe.offline.dataset import LabelParams, label_percussion
    from drumscribe.offline.render import Hit
    from drumscribe.realtime.features import FeatureParams

    fp, lp = FeatureParams(), LabelParams()
    frame_s = fp.hop_samples / fp.sample_rate_hz
    onsets = [100, 200, 300]
    ends = [(k + 1) * frame_s for k in onsets]
    perc = [Hit(ends[0] - 0.012, PERCUSSION_LABEL, 100), Hit(ends[2] + 0.5, PERCUSSION_LABEL, 100)]
    np.testing.assert_array_equal(label_percussion(onsets, perc, fp, lp), [1, 0, 0])
    assert not label_percussion(onsets, [], fp, lp).any()


@needs_soundfont
@pytest.mark.slow
def test_a_song_dataset_keeps_percussion_in_its_own_column(tmp_path):
    """dataset.build with songs: a `perc` column beside the drum labels, one row per window, set on some windows."""
    from drumscribe.offline.dataset import build
    from drumscribe.offline.render import TRAIN_KITS, available

    spec = next((k for k in TRAIN_KITS if k.startswith("hydrogen:") and available(k)), None)
    if spec is None:
        pytest.skip("no Hydrogen training kit installed")
    out = tmp_path / "songs.npz"
    build([spec], 3, out, seed=1, workers=1, song_prob=1.0)
    with np.load(out) as z:
        assert z["perc"].shape == (len(z["y"]),) and z["y"].shape[1] == len(DRUMS)
        assert z["perc"].sum() > 0 and z["y"].sum() > 0
