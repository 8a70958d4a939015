"""Shared fixtures: real audio (a groove played on a Hydrogen kit) and a random-weight checkpoint.

Nothing here depends on the trained weights or on ../shared, so the suite runs on a fresh clone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drumscribe.realtime import SAMPLE_RATE_HZ

KIT_NAME = "The Black Pearl 1.0"
HYDROGEN_DIRS = (Path("/usr/share/hydrogen/data/drumkits"), Path.home() / ".hydrogen/data/drums")


def find_kit(name: str = KIT_NAME) -> Path:
    for directory in HYDROGEN_DIRS:
        if (directory / name / "drumkit.xml").is_file():
            return directory / name
    pytest.skip(f"Hydrogen kit '{name}' is not installed (Debian package hydrogen-drumkits)")


def groove_events(*, tempo_bpm: float = 120.0, bars: int = 2, seed: int = 0) -> list:
    """(time_s, drum, velocity) of a rock groove with a fill: every drum of the vocabulary plays at least once."""
    rng = np.random.default_rng(seed)
    step = 60.0 / tempo_bpm / 4  # sixteenths
    events = []
    for bar in range(bars):
        base = bar * 16
        last = bar == bars - 1
        for s in range(0, 16, 2):  # eighth-note hats; the last one of the bar open
            drum = "hh_open" if s == 14 and not last else "hh_closed"
            if not (last and s >= 8):
                events.append((base + s, drum, 70 + (15 if s % 4 == 0 else 0)))
        for s in (0, 10) if bar % 2 == 0 else (0, 7, 10):
            events.append((base + s, "kick", 110))
        for s in (4, 12):
            if not (last and s == 12):
                events.append((base + s, "snare" if bar % 2 == 0 or s == 4 else "side_stick", 105))
        if bar == 0:
            events.append((base, "crash", 115))
        else:
            events.append((base + 2, "ride", 90))
            events.append((base + 6, "hh_pedal", 80))
        if last:  # a fill down the toms
            for s, drum in ((8, "tom_high"), (9, "tom_high"), (10, "tom_mid"), (11, "tom_mid"),
                            (12, "tom_low"), (13, "tom_low"), (14, "snare"), (15, "snare")):
                events.append((base + s, drum, 95))
    events.append((bars * 16, "crash", 120))
    events.append((bars * 16, "kick", 115))
    return sorted((float(s * step + rng.normal(0, 0.003) + 0.05), d, int(v)) for s, d, v in events)


def render_events(kit, events, *, tail_s: float = 1.5, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Play (time_s, drum, velocity) events on a realtime.kits.Kit: one-shot samples summed, peak -3 dBFS."""
    end_s = max(t for t, _, _ in events) + tail_s
    out = np.zeros(int(end_s * sample_rate_hz))
    for t, drum, velocity in events:
        instruments = kit.instruments.get(drum)
        if not instruments:
            continue
        instrument = instruments[0]
        v = velocity / 127.0
        layer = instrument.layer_for(v)
        start = int(round(t * sample_rate_hz))
        sample = layer.audio[: len(out) - start].astype(np.float64) * layer.gain * instrument.gain * v
        out[start : start + len(sample)] += sample
    peak = np.abs(out).max()
    return out * (10 ** (-3 / 20) / peak) if peak > 0 else out


def kick_and_hat_kit(sample_rate_hz: int = SAMPLE_RATE_HZ):
    """A two-drum realtime.kits.Kit of synthetic one-shots (a 60 Hz decaying sine, a noise burst): renders in
    milliseconds, needs no installed kit."""
    from drumscribe.realtime.kits import Instrument, Kit, Layer

    t = np.arange(int(0.2 * sample_rate_hz)) / sample_rate_hz
    noise = (np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / 0.03)).astype(np.float32)
    sounds = {"kick": (np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.05)).astype(np.float32), "hh_closed": noise}
    return Kit(name="test", path=None, kind="test", licence="test",
               instruments={d: [Instrument(d, d, [Layer(0.0, 1.0, a)])] for d, a in sounds.items()})


@pytest.fixture(scope="session")
def kit():
    from drumscribe.realtime.kits import load_hydrogen_kit

    return load_hydrogen_kit(find_kit())


@pytest.fixture(scope="session")
def groove(kit):
    """(audio at the engine rate, events): about 5 s of a two-bar groove at 120 BPM."""
    events = groove_events()
    return render_events(kit, events), events


@pytest.fixture(scope="session")
def groove_wav(groove, tmp_path_factory) -> Path:
    import soundfile as sf

    path = tmp_path_factory.mktemp("audio") / "groove.wav"
    sf.write(str(path), groove[0].astype(np.float32), SAMPLE_RATE_HZ, subtype="FLOAT")
    return path


@pytest.fixture(scope="session")
def long_wav(groove, tmp_path_factory) -> Path:
    """Fifteen minutes of the groove tiled, for interrupting a long run: long enough that a fast machine is still
    transcribing it when the test sends Ctrl-C (three minutes took 2 s here)."""
    import soundfile as sf

    audio = groove[0]
    path = tmp_path_factory.mktemp("audio") / "long.wav"
    reps = int(np.ceil(900 * SAMPLE_RATE_HZ / len(audio)))
    sf.write(str(path), np.tile(audio, reps).astype(np.float32), SAMPLE_RATE_HZ, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory) -> Path:
    """A HitCNN with fixed random weights, saved as a real checkpoint (thresholds low enough to give hits)."""
    import torch

    torch.set_num_threads(1)  # as the command line does: faster here, and the results do not depend on it
    from drumscribe.models.cnn import Checkpoint, HitCNN, HitCNNConfig, save_checkpoint
    from drumscribe.realtime.drums import DRUMS
    from drumscribe.realtime.features import FeatureParams, mel_basis
    from drumscribe.realtime.onsets import OnsetParams

    torch.manual_seed(1234)
    model = HitCNN(HitCNNConfig(n_classes=len(DRUMS))).eval()
    params = FeatureParams()
    ckpt = Checkpoint(model=model, labels=list(DRUMS), feature_params=params.as_dict(),
                      onset_params=OnsetParams().as_dict(), mel_basis=mel_basis(params),
                      thresholds=[0.5] * len(DRUMS), extra={"note": "random weights for tests"})
    path = tmp_path_factory.mktemp("model") / "random.pt"
    save_checkpoint(path, ckpt)
    return path


@pytest.fixture(scope="session")
def checkpoint(checkpoint_path):
    from drumscribe.models.cnn import load_checkpoint

    return load_checkpoint(checkpoint_path)
