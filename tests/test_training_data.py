"""Knobs of the training renders and of threshold tuning."""
import numpy as np
import pytest

from drumscribe.offline.render import METAL, drum_levels_db

DRUMS = ("kick", "snare", "hh_closed", "hh_open", "tom_low", "crash", "ride")


def _step(step):
    """`drumscribe train STEP ARGV` as a function of ARGV."""
    from drumscribe.cli import main

    return lambda argv: main(["train", step, *argv])


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
    from drumscribe.models import DEFAULT_MODEL_PATH
    main = _step("tune")

    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(DEFAULT_MODEL_PATH), "--onset", setting])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--onset '{setting}'" in err and message in err


def test_dataset_cli_renders_with_the_onset_settings_it_is_given(tmp_path):
    """The same clip rendered with a lower relative onset threshold, and with the band flux: the setting is stored
    with the windows, more onsets fire, and no more true hits go without one (fewer, for the lower threshold)."""
    import json

    main = _step("render")

    kit = "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0"
    runs = {}
    for name, extra in (("default", []), ("relative", ["--onset-relative", "0.3", "--onset-threshold", "0.04"]),
                        ("band", ["--onset-band", "36", "0.03"])):
        out = tmp_path / f"{name}.npz"
        main(["--out", str(out), "--clips-per-kit", "1", "--kit", kit, "--workers", "1", "--seed", "4", *extra])
        with np.load(out) as z:
            runs[name] = (json.loads(str(z["onset_params"])), len(z["y"]), int(z["missed"].sum()),
                          float(z["seconds"].sum()))
    (default, n_default, missed_default, s_default), (relative, n_relative, missed_relative, s_relative) = list(
        runs.values())[:2]
    assert default["relative_threshold"] == 1.0 and relative["relative_threshold"] == 0.3
    assert relative["threshold"] == 0.04 and s_relative == s_default  # the same audio
    assert n_relative > n_default and missed_relative < missed_default
    band, n_band, missed_band, s_band = runs["band"]
    assert default["band_from_mel"] == 0 and (band["band_from_mel"], band["band_threshold"]) == (36, 0.03)
    assert s_band == s_default and n_band > n_default and missed_band <= missed_default

    from drumscribe.offline.train import (  # training on both: the checkpoint runs behind the last detector
        load_windows,
        recipe,
    )
    x, y, meta, _ = load_windows(f"{tmp_path / 'default.npz'},{tmp_path / 'band.npz'}", 3, 16)
    assert len(x) == len(y) == n_default + n_band and recipe(meta)[1].band_from_mel == 36


def test_band_lead_plays_a_melody_and_power_chords_in_time():
    """The lead parts of a training band: melody notes on the key's pentatonic scale in the lead register, power
    chords (root, fifth, octave) on every eighth note, all inside the clip."""
    from drumscribe.offline.accompaniment import _lead_schedule

    rng = np.random.default_rng(1)
    tempo, bars = 120.0, 4
    events = _lead_schedule(rng, tempo_bpm=tempo, bars=bars, power_chords=True)
    melody = [e for e in events if e[1] == 2]
    chords = [e for e in events if e[1] == 3]
    length_s = bars * 4 * 60 / tempo
    assert len(melody) >= bars and all(64 <= e[2] <= 88 and -0.03 < e[0] and e[0] + e[4] < length_s + 0.03
                                       for e in melody)
    assert len({e[2] % 12 for e in melody}) <= 5  # a pentatonic scale
    assert len(chords) == bars * 8 * 3
    for k in range(0, len(chords), 3):
        notes = sorted(e[2] for e in chords[k : k + 3])
        assert notes[1] - notes[0] == 7 and notes[2] - notes[0] == 12
    assert not [e for e in _lead_schedule(rng, tempo_bpm=tempo, bars=bars, power_chords=False) if e[1] == 3]


def test_band_with_lead_renders():
    """render_accompaniment with a lead, through fluidsynth: the clip's length, peaking at -6 dBFS."""
    from drumscribe.offline.accompaniment import render_accompaniment

    audio = render_accompaniment(np.random.default_rng(3), tempo_bpm=100.0, bars=2, lead=True)
    assert len(audio) == int(round(2 * 4 * 0.6 * 48000))
    assert abs(float(np.abs(audio).max()) - 10 ** (-6 / 20)) < 1e-3


def _upper_share(audio: np.ndarray) -> float:
    """The share of the power above 60 Hz that lies at 1.5-6 kHz."""
    return 10 ** ((_band_db(audio, 1500, 6000) - _band_db(audio, 60, 24000)) / 10)


def test_amp_drives_the_power_chords_and_leaves_other_bands_alone():
    """--amp: a band whose power chords go through an amp has more of its energy at 1.5-6 kHz (the drive's
    harmonics) and a lower crest factor (a denser wall) than the same band played clean; amp=False is the render it
    always was, and a band without power chords is the same with or without an amp."""
    from drumscribe.offline.accompaniment import render_accompaniment

    changed = same = 0
    for seed in range(6):
        clean = render_accompaniment(np.random.default_rng(seed), tempo_bpm=120.0, bars=2, lead=True)
        again = render_accompaniment(np.random.default_rng(seed), tempo_bpm=120.0, bars=2, lead=True, amp=False)
        amped = render_accompaniment(np.random.default_rng(seed), tempo_bpm=120.0, bars=2, lead=True, amp=True)
        assert np.array_equal(clean, again) and len(amped) == len(clean)
        if np.array_equal(amped, clean):
            same += 1
        else:
            changed += 1
            assert _upper_share(amped) > 1.15 * _upper_share(clean), seed
            crest = [np.abs(x).max() / np.sqrt(np.mean(x**2)) for x in (clean, amped)]
            assert crest[1] < 0.8 * crest[0], seed  # a denser wall of sound
    assert changed >= 1 and same >= 1  # seeds with and without power chords


def test_renders_do_not_depend_on_the_hash_seed():
    """The same seed gives the same performance and kit mix in any Python process: no draw follows a set's
    iteration order, which PYTHONHASHSEED changes from run to run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = """
import numpy as np
from drumscribe.offline.render import generate_pattern, mix_kits
from drumscribe.realtime.kits import Kit
drums = {"kick", "snare", "hh_closed", "hh_open", "tom_low", "tom_mid", "crash", "ride"}
out = []
for seed in range(6):
    hits, _ = generate_pattern(np.random.default_rng(seed), bars=2, style="random", drums_available=drums)
    out.append([(round(h.time_s, 6), h.drum, h.velocity) for h in hits])
kit = lambda name, ds: Kit(name=name, path=None, kind="x", licence="x", instruments={d: [name + d] for d in ds})
mixed = mix_kits(kit("a", sorted(drums)[:4]), [kit("b", drums), kit("c", drums)], np.random.default_rng(0))
print(out, sorted(mixed.instruments.items()))
"""
    root = Path(__file__).resolve().parent.parent
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout
            for h in (1, 2, 3)]
    assert runs[0] and runs[0] == runs[1] == runs[2]


def test_mixed_windows_add_in_power_and_join_labels():
    """--mix-rate: a window with another added is the log of the summed power, and carries both windows' drums."""
    from drumscribe.offline.train import mix_windows

    rng = np.random.default_rng(0)
    power = rng.uniform(0, 1e-3, (8, 4, 5))
    xb = np.log10(1.0 + 1e9 * power).astype(np.float32)
    yb = np.eye(8, 3, dtype=np.float32)  # windows 0-2 hold one drum each, the rest none
    mixed, labels = mix_windows(xb, yb, np.random.default_rng(1), 1.0, (0, 0))
    partner = np.random.default_rng(1)
    partner.random(8)
    partner = partner.integers(0, 8, 8)
    expected = np.log10(1.0 + 1e9 * (power + power[partner]))
    assert np.allclose(mixed, expected, rtol=1e-4)
    assert np.array_equal(labels, np.maximum(yb, yb[partner]))
    assert labels.sum() > yb.sum()  # some drums joined another window

    same, same_labels = mix_windows(xb, yb, np.random.default_rng(1), 0.0, (-12, 0))
    assert same is xb and same_labels is yb


def test_init_from_a_shorter_look_ahead_keeps_the_learned_weights():
    """drumscribe train --init from a model that looks less far ahead: every layer carries over, the first fully
    connected one on the time positions both windows have (the new ones at zero); other shapes are refused."""
    import torch

    from drumscribe.models.cnn import HitCNN, HitCNNConfig
    from drumscribe.offline.train import load_init

    torch.manual_seed(0)
    short = HitCNN(HitCNNConfig(frames_before=3, frames_after=16, channels=(4, 8), hidden=16)).eval()
    same = HitCNN(short.config).eval()
    load_init(same, short)
    windows = torch.randn(3, 64, 20)
    assert torch.allclose(same(windows), short(windows), atol=1e-6)

    longer = HitCNN(HitCNNConfig(frames_before=3, frames_after=24, channels=(4, 8), hidden=16)).eval()
    load_init(longer, short)
    old = short.head[2].weight.view(16, 8, 16, 5)  # (hidden, channels, mels, time) after two 2x2 pools
    new = longer.head[2].weight.view(16, 8, 16, 7)
    assert torch.equal(new[..., :5], old) and not new[..., 5:].any()
    assert torch.equal(longer.features[0].weight, short.features[0].weight)

    for other in (HitCNNConfig(frames_before=6, frames_after=24, channels=(4, 8), hidden=16),
                  HitCNNConfig(frames_before=3, frames_after=8, channels=(4, 8), hidden=16),
                  HitCNNConfig(frames_before=3, frames_after=16, channels=(4, 8), hidden=8),
                  HitCNNConfig(frames_before=3, frames_after=16, channels=(4, 4), hidden=16),
                  HitCNNConfig(frames_before=3, frames_after=16, channels=(4, 8, 8), hidden=16)):
        with pytest.raises(ValueError, match="--init"):
            load_init(HitCNN(other), short)


def test_init_into_a_wider_model_answers_as_before_and_then_learns_with_its_new_units():
    """drumscribe train --init into more channels and hidden units: in eval mode the wider network gives the
    narrower one's outputs exactly; one training step later its new units have weight."""
    import torch

    from drumscribe.models.cnn import HitCNN, HitCNNConfig
    from drumscribe.offline.train import load_init

    torch.manual_seed(0)
    narrow = HitCNN(HitCNNConfig(frames_before=3, frames_after=16, channels=(4, 8, 8), hidden=16))
    narrow.train()
    for _ in range(3):  # batch-norm statistics that are not the defaults
        narrow(torch.randn(8, 64, 20) * 2 + 1)
    narrow.eval()
    wide = HitCNN(HitCNNConfig(frames_before=3, frames_after=16, channels=(8, 12, 16), hidden=32))
    load_init(wide, narrow)
    # the new units' batch-norm statistics are the fresh ones: load_init ran nothing through the model in training
    assert not wide.features[1].running_mean[4:].any() and torch.equal(wide.features[1].running_var[4:],
                                                                      torch.ones(4))
    wide.eval()
    windows = torch.randn(5, 64, 20)
    assert torch.allclose(wide(windows), narrow(windows), atol=1e-5)
    # the new units do compute something, so that training can use them
    assert wide.features[0].weight[4:].abs().sum() > 0 and wide.head[2].weight[16:].abs().sum() > 0
    assert not wide.head[5].weight[:, 16:].any()

    wide.train()
    optimizer = torch.optim.SGD(wide.parameters(), lr=0.1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(wide(windows), torch.ones(5, 11))
    loss.backward()
    optimizer.step()
    assert wide.head[5].weight[:, 16:].abs().sum() > 0


def test_contrast_plane_is_each_bands_rise_and_a_grown_model_answers_as_before():
    """--contrast-channel: the second input plane is each band's rise over its quietest frame of the window, and
    a network grown with it from one without answers as that one did (the new plane's weights start at zero)."""
    import torch

    from drumscribe.models.cnn import HitCNN, HitCNNConfig
    from drumscribe.offline.train import load_init

    torch.manual_seed(0)
    plain = HitCNN(HitCNNConfig(channels=(4, 8, 8), hidden=16)).eval()
    grown = HitCNN(HitCNNConfig(channels=(4, 8, 8), hidden=16, contrast_channel=True))
    load_init(grown, plain)
    grown.eval()
    windows = torch.rand(5, 64, 20) * 3
    windows[:, 10, :] = 2.0  # a sustained band: no rise at all
    windows[:, 20, 7] += 4.0  # a hit in band 20 at the onset frame
    planes = grown._planes(windows)
    assert planes.shape == (5, 2, 64, 20)
    assert torch.all(planes[:, 1, 10] == 0)
    rise = (windows[:, 20, 7] - windows[:, 20].amin(dim=1)) / grown.band_std[20]
    assert torch.allclose(planes[:, 1, 20, 7], rise)
    assert torch.allclose(grown(windows), plain(windows), atol=1e-5)
    assert not grown.features[0].weight[:, 1].any() and grown.features[0].weight[:, 0].abs().sum() > 0


def _band_db(x: np.ndarray, lo: float, hi: float, sr: int = 48000) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(10 * np.log10(spectrum[(f >= lo) & (f < hi)].sum() + 1e-20))


def test_bleed_adds_overheads_and_snare_wires_to_the_kick():
    """A kick alone on its close mic: the overheads carry it again 0.5-4 ms later without its lowest end, and the
    snare wires rattle at 2-9 kHz while it sounds, 18-32 dB under it, and not before."""
    from drumscribe.offline.render import bleed_buses

    sr, n = 48000, 48000
    t = np.arange(n) / sr
    kick = np.zeros(n, np.float32)
    start = int(0.5 * sr)
    kick[start:] = (np.sin(2 * np.pi * 60 * t[: n - start]) * np.exp(-t[: n - start] / 0.08)).astype(np.float32)
    buses = {"kick": kick, "snare": np.zeros(n, np.float32)}
    out = bleed_buses(buses, np.random.default_rng(4))
    assert set(out) == {"kick", "snare", "overheads", "snare_buzz"} and out["kick"] is kick
    over, buzz = out["overheads"], out["snare_buzz"]
    first = int(np.flatnonzero(np.abs(over) > 1e-4)[0])
    assert start + 0.5e-3 * sr - 1 <= first <= start + 4e-3 * sr + 1
    assert _band_db(over, 20, 100) < _band_db(kick, 20, 100) - 3  # high-passed, and at most -3 dB
    assert np.abs(buzz[: start - 100]).max() < 1e-6
    during = buzz[start : start + int(0.2 * sr)]
    assert _band_db(during, 2000, 9000) - _band_db(during, 20, 1000) > 20  # wires, not a drum's body
    level = 10 * np.log10(np.mean(buzz ** 2) / np.mean(kick ** 2))
    assert -34 <= level <= -16
    assert "snare_buzz" not in bleed_buses({"kick": kick}, np.random.default_rng(4))  # no snare, no wires


def test_bleed_changes_the_sound_and_never_the_labels():
    from drumscribe.offline.render import render_performance
    from drumscribe.realtime.kits import Instrument, Kit, Layer

    sr = 48000
    t = np.arange(int(0.3 * sr)) / sr
    tone = lambda f: (np.sin(2 * np.pi * f * t) * np.exp(-t / 0.05)).astype(np.float32)  # noqa: E731
    noise = (np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / 0.03)).astype(np.float32)
    sounds = {"kick": tone(60), "snare": tone(200) + 0.3 * noise, "hh_closed": noise, "tom_low": tone(100)}
    kit = Kit(name="test", path=None, kind="test", licence="test",
              instruments={d: [Instrument(d, d, [Layer(0.0, 1.0, a)])] for d, a in sounds.items()})
    renders = [render_performance(kit, np.random.default_rng(7), bars=2, style="groove", augment_strength=0.0,
                                  bleed_prob=p) for p in (0.0, 1.0)]
    (dry, hits_dry), (wet, hits_wet) = renders
    assert hits_dry == hits_wet and hits_dry
    assert not np.allclose(dry[: len(wet)], wet[: len(dry)])


def test_band_soundfonts_change_the_band_and_never_the_labels():
    """band_soundfonts: the band plays from the soundfont drawn; without it (or with it empty) the render is the one
    it always was (no extra draw), and the hits are the same whichever soundfont plays."""
    from drumscribe.offline.accompaniment import DEFAULT_SOUNDFONT
    from drumscribe.offline.render import render_performance

    from conftest import kick_and_hat_kit

    kit = kick_and_hat_kit()

    def render(**kw):
        return render_performance(kit, np.random.default_rng(5), bars=2, style="groove", augment_strength=0.0,
                                  accompaniment_prob=1.0, **kw)

    render()  # the process's synth, loaded and used once
    plain, _ = render()
    again, _ = render(band_soundfonts=())
    assert len(plain) == len(again) and np.abs(plain - again).max() < 0.01 * np.abs(plain).max()  # the same draws
    fluid, hits_fluid = render(band_soundfonts=(str(DEFAULT_SOUNDFONT),))
    other, hits_other = render(band_soundfonts=("/usr/share/sounds/sf2/TimGM6mb.sf2",))
    assert hits_fluid == hits_other and hits_fluid
    assert len(fluid) == len(other) and not np.allclose(fluid, other, atol=1e-3)


@pytest.mark.parametrize("soundfont, message", [
    ("/usr/share/sounds/sf2/TimGM6mb.sf2", "the soundfont of a held-out kit, never rendered for training"),
    ("/nonexistent/band.sf2", "no such file (an .sf2 General MIDI soundfont)")])
def test_dataset_refuses_a_held_out_or_missing_band_soundfont(soundfont, message, tmp_path, capsys):
    main = _step("render")

    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "x.npz"), "--accompaniment", "1", "--band-soundfont", soundfont])
    assert exit_info.value.code == 2
    assert f"--band-soundfont '{soundfont}': {message}" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_percussion_plays_on_the_groove_and_is_never_labelled():
    """--percussion: a tambourine or shaker of a GM kit plays along on the beat grid, unlabelled; without it the
    render is the one it always was."""
    from drumscribe.offline.render import (
        PERCUSSION_NOTES,
        load_percussion,
        percussion_part,
        render_performance,
    )
    from drumscribe.realtime.drums import DRUMS
    from drumscribe.realtime.kits import Instrument, Kit, Layer

    percussion = load_percussion("sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0")
    assert set(percussion.instruments) == set(PERCUSSION_NOTES.values()) and not percussion.drums

    sr = 48000
    click = np.zeros(int(0.05 * sr), np.float32)
    click[:48] = 1.0
    clicks = Kit(name="c", path=None, kind="test", instruments={"tambourine": [Instrument("t", "tambourine",
                                                                                        [Layer(0.0, 1.0, click)])]})
    for seed in range(6):  # the three patterns: every stroke on the grid of its step (beats 2 and 4, 8ths, 16ths)
        part = percussion_part(clicks, np.random.default_rng(seed), tempo_bpm=120.0, duration_s=4.0)
        starts = np.flatnonzero(np.diff((part > 0).astype(int)) == 1) + 1
        steps = starts / sr / 0.125  # in sixteenths at 120 bpm
        assert len(starts) >= 4 and np.abs(steps - np.round(steps)).max() < 0.4  # humanised by a few ms

    t = np.arange(int(0.2 * sr)) / sr
    tone = (np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.05)).astype(np.float32)
    kit = Kit(name="k", path=None, kind="test", instruments={d: [Instrument(d, d, [Layer(0.0, 1.0, tone)])]
                                                               for d in ("kick", "snare")})
    plain = render_performance(kit, np.random.default_rng(2), bars=2, augment_strength=0.0)
    again = render_performance(kit, np.random.default_rng(2), bars=2, augment_strength=0.0, percussion_prob=0.0,
                               percussion=(percussion,))
    assert np.array_equal(plain[0], again[0]) and plain[1] == again[1]
    tb = np.arange(int(0.05 * sr)) / sr
    ting = Kit(name="b", path=None, kind="test", instruments={"tambourine": [Instrument("t", "tambourine", [
        Layer(0.0, 1.0, (np.sin(2 * np.pi * 5000 * tb) * np.exp(-tb / 0.01)).astype(np.float32))])]})
    for seed in range(3):
        audio, hits = render_performance(kit, np.random.default_rng(seed), bars=2, style="groove",
                                         augment_strength=0.0, percussion_prob=1.0, percussion=(ting,))
        assert hits and all(h.drum in DRUMS for h in hits)
        assert _band_db(audio, 4000, 6000) > _band_db(plain[0], 4000, 6000) + 20  # the 5 kHz part is in the mix


@pytest.mark.parametrize("flag", ["--accompaniment", "--lead", "--bleed", "--amp", "--percussion"])
def test_dataset_shares_must_lie_between_0_and_1(flag, tmp_path, capsys):
    main = _step("render")

    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "x.npz"), flag, "1.5"])
    assert exit_info.value.code == 2
    assert f"{flag} 1.5: a share of the clips, from 0 to 1" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_lowpassed_windows_match_the_spectrogram_of_band_limited_audio():
    """--lowpass-rate: a window's log-mel with its power above a cut-off removed (lowpass_weights) is what the
    spectrogram of the same audio through a brick-wall low-pass at that cut-off gives, within 1 (a factor of 10 in
    power) in every band and far closer away from the cut-off; windows not drawn are left alone."""
    from drumscribe.offline.render import brick_wall
    from drumscribe.offline.train import lowpass_weights, lowpass_windows
    from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram, mel_basis

    fp = FeatureParams()
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(fp.sample_rate_hz // 2) * 0.1
    cutoff = 9000.0
    limited = brick_wall(noise, cutoff, fp.sample_rate_hz)

    def log_mel(audio):
        return LogMelSpectrogram(fp, mel_basis(fp), frames_per_call=64).process(audio).mel[20:-5].T  # (mels, frames)

    full, real = log_mel(noise), log_mel(limited)
    weights = lowpass_weights(mel_basis(fp), fp.sample_rate_hz, [cutoff])
    simulated = lowpass_windows(full[None].astype(np.float32), rng, 1.0, weights)[0]
    centres = np.linspace(0, fp.sample_rate_hz / 2, fp.n_fft // 2 + 1) @ mel_basis(fp).T / mel_basis(fp).sum(1)
    assert np.abs(simulated - real).max() < 1.0
    far = np.abs(centres - cutoff) > 1500
    assert np.abs(simulated - real)[far].max() < 0.2
    assert (full - real)[centres > cutoff + 1500].min() > 2  # the cut removed something to simulate
    untouched = lowpass_windows(full[None].astype(np.float32), rng, 0.0, weights)
    assert np.array_equal(untouched[0], full.astype(np.float32))


def test_eq_windows_scale_each_band_by_a_smooth_curve_in_power():
    """--eq-rate: a drawn window's band powers (10**x - 1) are scaled by the curve's gain, the same gain across its
    frames; the curves stay within the asked dB and are smooth across bands; windows not drawn are left alone."""
    from drumscribe.offline.train import eq_curves, eq_windows

    rng = np.random.default_rng(5)
    curves = eq_curves(rng, 500, 64, 9.0)
    assert np.abs(curves).max() <= 9.0 + 4.5 + 1e-9 and np.abs(curves).max() > 6.0
    assert np.abs(np.diff(curves, axis=1)).max() < 3.0  # a bell at least 2 bands wide: no band jumps alone
    xb = rng.uniform(0.0, 6.0, (8, 64, 23)).astype(np.float32)
    out = eq_windows(xb, np.random.default_rng(1), 1.0, 9.0)
    gain_db = 10 * np.log10((10.0 ** out.astype(np.float64) - 1) / (10.0 ** xb.astype(np.float64) - 1))
    assert np.abs(gain_db - gain_db[:, :, :1]).max() < 0.05  # one gain per band, whatever the frame
    assert np.abs(gain_db).max() <= 13.6 and np.abs(gain_db).max() > 1.0
    assert np.array_equal(out, eq_windows(xb, np.random.default_rng(1), 1.0, 9.0))  # seeded
    assert eq_windows(xb, rng, 0.0, 9.0) is xb
    assert np.allclose(eq_windows(xb, rng, 1.0, 0.0), xb, atol=1e-5)  # 0 dB: unchanged but for rounding


def test_shifted_windows_move_the_upper_bands_and_keep_the_lower():
    from drumscribe.offline.train import shift_windows

    rng = np.random.default_rng(3)
    xb = rng.random((200, 64, 20)).astype(np.float32)
    out = shift_windows(xb, rng, 0.5, 3, 20)
    moved = [i for i in range(len(xb)) if not np.array_equal(out[i], xb[i])]
    assert 60 < len(moved) < 140  # about half
    for i in moved:
        assert np.array_equal(out[i, :20], xb[i, :20])
        shifts = [d for d in (-3, -2, -1, 1, 2, 3) if np.array_equal(out[i, 23:61], xb[i, 23 - d : 61 - d])]
        assert len(shifts) == 1  # one shift of 1-3 bands, up or down, for the whole upper region
    assert np.array_equal(shift_windows(xb, rng, 1.0, 0, 20), xb)


def test_focal_loss_is_bce_at_gamma_0_and_weighs_the_labels_the_network_misses():
    import torch

    from drumscribe.offline.train import focal_bce

    logits = torch.tensor([[4.0, -4.0, 0.2, -0.3]])
    targets = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.isclose(focal_bce(logits, targets, 0.0), bce.mean())
    weights = (focal_bce(logits[:, [0]], targets[:, [0]], 2.0) / bce[0, 0],
               focal_bce(logits[:, [3]], targets[:, [3]], 2.0) / bce[0, 3])
    # the confident right answer (p_true 0.98) keeps 0.03 % of its loss, the missed label (p_true 0.43) a third
    assert float(weights[0]) == pytest.approx((1 - torch.sigmoid(torch.tensor(4.0))).item() ** 2, rel=1e-4)
    assert float(weights[1]) == pytest.approx((1 - torch.sigmoid(torch.tensor(-0.3))).item() ** 2, rel=1e-4)
    assert float(focal_bce(logits, targets, 2.0)) < float(bce.mean())


@pytest.mark.parametrize("flags, message", [
    (["--eq-rate", "2"], "--eq-rate 2.0 must be between 0 and 1"),
    (["--eq-db", "-3"], "--eq-db -3.0 must be between 0 and 24"),
    (["--lowpass-rate", "1.5"], "--lowpass-rate 1.5 must be between 0 and 1"),
    (["--lowpass-hz", "16000", "7000"], "--lowpass-hz 16000 7000: expected two frequencies"),
    (["--lowpass-hz", "0", "7000"], "--lowpass-hz 0 7000: expected two frequencies"),
    (["--mix-rate", "-0.1"], "--mix-rate -0.1 must be between 0 and 1"),
    (["--focal-gamma", "-1"], "--focal-gamma -1.0 must be between 0 and 5"),
    (["--shift-rate", "2"], "--shift-rate 2.0 must be between 0 and 1"),
])
def test_train_refuses_band_limit_and_mix_settings_out_of_range(flags, message, tmp_path, capsys):
    """drumscribe train: a share outside 0-1 or a cut-off range that is not LOW <= HIGH above 0 is one line and
    exit 2, before any data is read."""
    main = _step("fit")

    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path / "none.npz"), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("flags, message", [
    (["--channels", "8", "16", "32"], "cannot start one of channels [8, 16, 32]"),
    (["--frames-before", "6"], "cannot start one of 6 and 16"),
])
def test_train_refuses_an_init_it_cannot_grow_from_before_reading_data(flags, message, checkpoint_path, tmp_path,
                                                                       capsys):
    """drumscribe train --init from a network (16/32/64 channels) into a narrower one, or another window before the
    onset: one line and exit 2, before the (here empty) data is read; a missing --init file likewise. (The shipped
    model is an ensemble, which --init refuses whole: tests/test_ensemble.py.)"""
    main = _step("fit")

    data = tmp_path / "d.npz"
    data.write_bytes(b"")
    for init, expected in ((checkpoint_path, message), (tmp_path / "no.pt", "does not exist")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--data", str(data), "--init", str(init), *flags])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"--init {init}" in err and expected in err and "Traceback" not in err
        assert "--init: " not in err  # the flag is named once


def _cymbal_kit():
    """A kit of two seconds of noise as its crash, a 1 kHz tone as its ride's bow and a 3 kHz tone as its bell."""
    from drumscribe.realtime.kits import Instrument, Kit, Layer

    rate = 48000
    t = np.arange(2 * rate) / rate
    noise = np.random.default_rng(0).standard_normal(2 * rate).astype(np.float32) * 0.3
    bow = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    bell = (0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    return Kit(name="cymbals", path=None, kind="test", instruments={
        "crash": [Instrument("Crash", "crash", [Layer(0.0, 1.0, noise)])],
        "ride": [Instrument("GM 51", "ride", [Layer(0.0, 1.0, bow)]),
                 Instrument("GM 53", "ride", [Layer(0.0, 1.0, bell)])]})


def test_cymbal_play_chokes_crashes_and_rides_the_bell_on_strong_strokes():
    """--cymbal-play: a crash grabbed by the hand is silent after at most 0.61 s (it rings 2 s when let ring); a ride
    stroke of velocity 80 or more sounds the bell, a softer one the bow."""
    from drumscribe.offline.render import Hit, render_hits
    from drumscribe.realtime.kits import is_bell

    kit = _cymbal_kit()
    assert [is_bell(i) for i in kit.instruments["ride"]] == [False, True]
    crash = [Hit(0.1, "crash", 110)]
    rung = render_hits(crash, kit, duration_s=3.0, rng=np.random.default_rng(1))
    choked = render_hits(crash, kit, duration_s=3.0, rng=np.random.default_rng(1), cymbal_play=1.0)
    after = slice(int(0.72 * 48000), int(2.0 * 48000))
    assert np.abs(rung[after]).max() > 0.1 and np.abs(choked[after]).max() == 0.0
    assert np.abs(choked[int(0.12 * 48000) : int(0.17 * 48000)]).max() > 0.1  # the stroke itself is heard

    def tone_at(audio, t, hz):
        seg = audio[int(t * 48000) : int((t + 0.1) * 48000)]
        return np.abs(np.fft.rfft(seg))[int(hz * 0.1)]

    strokes = [Hit(2.5 * k + 0.1, "ride", 100 if k % 2 else 50) for k in range(8)]  # each rings 2 s, alone
    for seed in range(4):
        audio = render_hits(strokes, kit, duration_s=21.0, rng=np.random.default_rng(seed), cymbal_play=1.0)
        for hit in strokes:
            bell = tone_at(audio, hit.time_s, 3000) > tone_at(audio, hit.time_s, 1000)
            assert bell == (hit.velocity >= 80), (seed, hit)
