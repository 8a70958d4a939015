"""bench/accuracy.py --mp3: a recording scored as a constant-bitrate mp3 of itself, read back as any file is."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

_spec = importlib.util.spec_from_file_location("accuracy", Path(__file__).resolve().parents[1] / "bench/accuracy.py")
accuracy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accuracy)


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
