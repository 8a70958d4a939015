"""A hit's velocity: its level in its drum's band, by the measure its checkpoint carries (or the old default)."""
import copy

import numpy as np
import pytest

from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH
from drumscribe.realtime.scorer import _LOUDNESS_OFFSET_DB, LoudnessMeter, OnsetScorer, velocity_measure


def test_a_checkpoint_without_a_measure_gets_the_loudest_of_five_frames(checkpoint):
    assert velocity_measure(checkpoint) == (5, "max", _LOUDNESS_OFFSET_DB)


def test_the_levels_follow_the_measure_the_checkpoint_carries(checkpoint):
    rng = np.random.default_rng(0)
    after = rng.uniform(0.0, 6.0, (8, checkpoint.model.config.n_mels))  # log-mel frames from an onset on
    power = (10.0**after - 1.0) / checkpoint.feature_params["log_gain"]
    offsets = {label: float(i) for i, label in enumerate(checkpoint.labels)}
    for reduce in ("max", "sum"):
        ckpt = copy.copy(checkpoint)
        ckpt.extra = {**checkpoint.extra, "velocity": {"frames": 8, "reduce": reduce, "offsets_db": offsets}}
        meter = OnsetScorer(ckpt).meter
        assert meter.frames == 8
        band = power @ meter.band_matrix  # (frames, drums): each drum's power in its band
        level = band.sum(axis=0) if reduce == "sum" else band.max(axis=0)
        np.testing.assert_allclose(meter.levels_db(after), 10 * np.log10(level + 1e-12) + np.arange(len(offsets)))
        unset = LoudnessMeter.for_checkpoint(ckpt, offsets_db={})  # as drumscribe train calibrate measures
        np.testing.assert_allclose(unset.levels_db(after), 10 * np.log10(level + 1e-12))
    ckpt.extra = {**checkpoint.extra, "velocity": {"reduce": "mean"}}
    with pytest.raises(ValueError, match="mean"):
        OnsetScorer(ckpt)


def test_the_shipped_models_measures():
    """The offline model measures the energy of 8 frames (40 ms) with offsets fitted on training kits only
    (drumscribe train calibrate --frames 8 --reduce sum --write); the live model, whose windows
    hold 3 frames from the onset, the loudest of them, as before."""
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline.render import HELD_OUT_KITS

    offline = load_checkpoint(DEFAULT_MODEL_PATH)
    frames, reduce, offsets = velocity_measure(offline)
    assert (frames, reduce) == (8, "sum")
    assert set(offsets) >= set(offline.labels)
    assert set(offline.extra["velocity"]["fitted_on"]).isdisjoint(HELD_OUT_KITS)
    assert velocity_measure(load_checkpoint(LIVE_MODEL_PATH))[:2] == (5, "max")
