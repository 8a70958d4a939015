"""offline.accuracy, the measurements of bench/accuracy.py: `--mp3` (a recording scored as a constant-bitrate mp3 of
itself, read back as any file is), `--band-alone` and `--back-to-back`."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from drumscribe.models import DEFAULT_MODEL_PATH
from drumscribe.models.runtime import load_bundle
from drumscribe.offline import accuracy
from drumscribe.realtime.drums import SCORE_CLASS


@pytest.mark.parametrize("kbps", [64, 128])
def test_as_mp3_writes_the_bitrate_asked_and_reads_back_sample_for_sample_in_time(groove_wav, tmp_path, kbps):
    original, rate = sf.read(str(groove_wav), dtype="float32")
    path = accuracy.as_mp3(groove_wav, kbps, tmp_path, gain=0.5)
    info = sf.info(str(path))
    assert (info.format, info.samplerate) == ("MP3", rate)
    assert path.stat().st_size * 8 / info.duration / 1000 == pytest.approx(kbps, rel=0.1)
    coded, _ = sf.read(str(path), dtype="float32")
    assert len(coded) == len(original)  # libsndfile reads mp3 without the encoder's delay
    assert np.corrcoef(coded, 0.5 * original)[0, 1] > 0.95  # in place: a shifted copy would not correlate
    assert np.abs(coded).max() == pytest.approx(0.5 * np.abs(original).max(), rel=0.1)


def test_band_alone_counts_the_band_s_hits_and_scores_the_mix_after_a_drumless_intro(groove, tmp_path):
    """--band-alone on an MDB-shaped folder: the band (mix minus drum stem) alone, and the band twice before the whole
    mix, scored against the annotations moved by the intro's length."""
    audio, events = groove
    band = 0.01 * np.random.default_rng(0).standard_normal(len(audio))
    for kind, signal in (("mix", audio + band), ("drum_only", audio)):
        (tmp_path / kind).mkdir()
        sf.write(str(tmp_path / kind / "Beatles.flac"), signal.astype(np.float32), 48000)
    (tmp_path / "class_pp").mkdir()
    (tmp_path / "class_pp" / "Beatles.txt").write_text(
        "".join(f"{t:.4f}\t{SCORE_CLASS[d]}\n" for t, d, _ in events if d in SCORE_CLASS))
    out = accuracy.band_alone(tmp_path, load_bundle(str(DEFAULT_MODEL_PATH)))
    assert set(out) == {"Beatles", "Beatles after a drumless intro"}
    assert sum(out["Beatles"].values()) <= 2  # noise is no drum
    intro = out["Beatles after a drumless intro"]
    assert sum(intro["intro_hits"].values()) <= 2
    assert intro["F3"] > 0.8  # the annotations moved by the intro: unmoved, nothing would match


def test_back_to_back_scores_each_song_where_it_sits_in_the_one_file(groove, tmp_path):
    """--back-to-back: the recordings of a kind as one file, 1 s apart, in order and reversed; each song scored
    against its annotations moved to where it starts (unmoved, the second song would match nothing)."""
    audio, events = groove
    (tmp_path / "mix").mkdir()
    (tmp_path / "class_pp").mkdir()
    for track, gain in (("Beatles", 1.0), ("Punk", 0.5)):
        sf.write(str(tmp_path / "mix" / f"{track}.flac"), (gain * audio).astype(np.float32), 48000)
        (tmp_path / "class_pp" / f"{track}.txt").write_text(
            "".join(f"{t:.4f}\t{SCORE_CLASS[d]}\n" for t, d, _ in events if d in SCORE_CLASS))
    out = accuracy.back_to_back(tmp_path, load_bundle(str(DEFAULT_MODEL_PATH)), "mix")
    assert list(out) == ["Beatles > Punk", "Punk > Beatles"]
    for order in out.values():
        assert list(order["tracks"]) in (["Beatles", "Punk"], ["Punk", "Beatles"])
        assert all(r["F3"] > 0.8 for r in order["tracks"].values())
