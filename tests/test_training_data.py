"""Knobs of the training renders and of threshold tuning."""
import numpy as np
import pytest

from offline.render import METAL, drum_levels_db

DRUMS = ("kick", "snare", "hh_closed", "hh_open", "tom_low", "crash", "ride")


def _metal_minus_skins(quiet_metal_db: float, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        g = drum_levels_db(DRUMS, rng, quiet_metal_db=quiet_metal_db)
        out.append(np.mean([g[d] for d in DRUMS if d in METAL]) - np.mean([g[d] for d in DRUMS if d not in METAL]))
    return np.array(out)


def test_levels_are_plus_minus_six_db_without_quiet_metal():
    rng = np.random.default_rng(1)
    levels = np.array([list(drum_levels_db(DRUMS, rng).values()) for _ in range(2000)])
    assert levels.min() >= -6 and levels.max() <= 6
    assert abs(_metal_minus_skins(0.0).mean()) < 0.2


def test_quiet_metal_pulls_hats_and_cymbals_down_in_half_the_mixes():
    """Half the mixes cut the hats and cymbals by U(0, 15) dB: on average 3.75 dB against the skins, and the cut
    never goes past 15 dB plus the +-6 dB spread."""
    diff = _metal_minus_skins(15.0)
    assert diff.mean() == pytest.approx(-3.75, abs=0.3)
    rng = np.random.default_rng(2)
    lowest = min(min(v for d, v in drum_levels_db(DRUMS, rng, quiet_metal_db=15.0).items() if d in METAL)
                 for _ in range(2000))
    assert -21.0 <= lowest < -15.0


@pytest.mark.parametrize("setting, message", [
    ("foo=1", "'foo' is not one of"),
    ("lag_frames=0", "lag_frames 0 must be >= 1"),
    ("threshold=abc", "could not convert"),
    ("lag_frames=1.5", "invalid literal for int"),
    ("rising=yes", "rising takes true or false"),
])
def test_tune_thresholds_onset_option_says_what_is_wrong(setting, message, capsys):
    from models import DEFAULT_MODEL_PATH
    from offline.tune_thresholds import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(DEFAULT_MODEL_PATH), "--onset", setting])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--onset '{setting}'" in err and message in err
