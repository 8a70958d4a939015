"""File sources: the compact (float32) decoding gives the engine exactly the samples of the float64 one."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from drumscribe.realtime.sources import ArraySource, decode_audio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "example.mp3"


@pytest.fixture(scope="module")
def example():
    audio, rate = sf.read(str(EXAMPLE), dtype="float32", always_2d=True, frames=6 * 44100)
    return audio[:, 0], rate


@pytest.mark.parametrize("channels,rate,live", [(1, 44100, False), (2, 44100, False), (2, 22050, False),
                                                (1, 96000, False), (1, 48000, False), (2, 48000, False),
                                                (2, 44100, True)])
def test_compact_decoding_holds_the_same_samples(tmp_path, example, channels, rate, live):
    mono, _ = example
    # a second channel that differs from the first (a plain copy would make the mean exact in float32)
    audio = np.stack([mono, np.roll(mono, 37) * np.float32(0.7)], axis=1)[:, :channels]
    path = tmp_path / f"in_{channels}_{rate}.flac"
    sf.write(str(path), audio, rate, subtype="PCM_24")
    wide = decode_audio(path, live_resampling=live)
    compact = decode_audio(path, live_resampling=live, compact=True)
    assert wide.dtype == np.float64
    # float32 wherever that holds every sample exactly; only several channels at the engine rate need float64
    assert compact.dtype == (np.float64 if channels > 1 and rate == 48000 else np.float32)
    assert len(compact) == len(wide) > 0
    np.testing.assert_array_equal(compact.astype(np.float64), wide)


@pytest.mark.parametrize("block", [1, 100, 128, 4096, 50000])
def test_float32_array_source_yields_the_float64_blocks(example, block):
    mono, _ = example
    mono = mono[: 100003]
    wide = list(ArraySource(mono.astype(np.float64), block_size_samples=block))
    compact = ArraySource(mono, block_size_samples=block)
    assert compact.audio.dtype == np.float32  # not copied to float64 as a whole
    got = list(compact)
    assert len(got) == len(wide) == len(compact)
    for a, b in zip(got, wide):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
