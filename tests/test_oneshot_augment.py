"""The real-hit augmentation of the one-shot classifier's training (offline/oneshots.py): each function does to a
sample what it says a recording does to a hit."""
import numpy as np
import pytest

from drumscribe.offline.oneshots import (
    KIT_BLEED,
    add_bleed,
    add_room,
    augment_oneshot,
    bleed_sources,
    cut_by_next_hit,
    mic_colour,
    room_impulse,
    synth_hit,
)

SR = 48000


def band_energy(x, lo_hz, hi_hz):
    spectrum = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spectrum[(freqs >= lo_hz) & (freqs < hi_hz)].sum())


def level_db(x):
    return 20 * np.log10(np.abs(x).max() + 1e-12)


@pytest.fixture(scope="module")
def hits():
    rng = np.random.default_rng(3)
    kick = np.concatenate((np.zeros(240, np.float32), synth_hit("kick", rng, SR)))
    hat = synth_hit("hihat", rng, SR)
    snare = synth_hit("snare", rng, SR)
    return {"kick": kick / np.abs(kick).max(), "hihat": hat, "snare": snare}


def test_hats_bleeding_under_a_kick_raise_the_hats_band_and_leave_the_kick_on_top(hits):
    kick, hat = hits["kick"], hits["hihat"]
    out = add_bleed(kick, [hat], np.random.default_rng(0), SR, mode="under", level_db=-12)
    assert len(out) == len(kick)
    assert band_energy(out, 6000, 20000) > 5 * band_energy(kick, 6000, 20000)  # 10x here
    assert band_energy(out, 30, 200) == pytest.approx(band_energy(kick, 30, 200), rel=0.1)
    assert abs(level_db(out) - level_db(kick)) < 2.5  # the hat is 12 dB down: the kick stays the peak


@pytest.mark.parametrize("mode", ["under", "ring", "after"])
def test_bleed_lies_where_its_mode_says(hits, mode):
    """under: with the hit; ring: an earlier hit's decay, already sounding before the hit; after: 0.1-0.6 s on."""
    kick, snare = hits["kick"], hits["snare"]
    added = add_bleed(kick, [snare], np.random.default_rng(1), SR, mode=mode, level_db=-10) - kick
    loud = np.flatnonzero(np.abs(added) > 1e-4)
    onset = 240
    assert len(loud), "nothing was mixed in"
    first = (loud[0] - onset) / SR
    if mode == "under":
        assert -0.011 <= first <= 0.011
    elif mode == "ring":
        assert loud[0] == 0
    else:
        assert 0.099 <= first <= 0.601
    peak_db = level_db(added) - level_db(kick)
    assert peak_db < -9  # -10 dB against the hit's peak (a ring starts after its own peak: lower)


def test_a_cut_decay_is_shorter_and_ends_in_a_fade(hits):
    snare = np.concatenate((np.zeros(240, np.float32), hits["snare"]))
    snare = np.concatenate((snare, np.zeros(max(0, SR - len(snare)), np.float32)))
    out = cut_by_next_hit(snare, np.random.default_rng(2), SR, keep_s=0.2)
    assert len(out) == 240 + int(0.2 * SR)
    np.testing.assert_allclose(out[:1000], snare[:1000])
    assert abs(out[-1]) < 1e-6


def test_a_cut_decay_with_the_next_stroke_following(hits):
    kick, snare = hits["kick"], hits["snare"]
    keep = 240 + int(0.15 * SR)
    for seed in range(5):
        out = cut_by_next_hit(kick, np.random.default_rng(seed), SR, next_hit=snare, keep_s=0.15)
        tail = out[keep:]
        assert 0.002 * SR - 1 <= len(tail) <= 0.03 * SR + 1
        assert -12.5 <= level_db(tail) - level_db(kick[:keep]) <= 3.5
        start = int(np.argmax(np.abs(snare) >= np.abs(snare).max() * 0.03))
        head = snare[start : start + len(tail)]
        assert np.corrcoef(tail, head)[0, 1] > 0.999  # the snare's first milliseconds, scaled


def test_room_tail_decays_at_its_rt60():
    ir = room_impulse(np.random.default_rng(4), SR, rt60_s=0.5, direct_to_reverb_db=6.0)
    assert len(ir) == SR // 2 and ir[0] > 0.9
    rms = [10 * np.log10(np.mean(ir[int(a * SR) : int(b * SR)] ** 2)) for a, b in ((0.1, 0.15), (0.3, 0.35))]
    assert rms[0] - rms[1] == pytest.approx(60 / 0.5 * 0.2, abs=4)  # 24 dB in 0.2 s


def test_room_makes_a_short_burst_ring_on(hits):
    burst = np.zeros(SR // 5, np.float32)
    burst[:480] = np.random.default_rng(5).standard_normal(480)
    wet = add_room(burst, np.random.default_rng(6), SR, rt60_s=0.6, direct_to_reverb_db=3.0)
    assert len(wet) > len(burst)
    late = wet[int(0.1 * SR) : int(0.2 * SR)]
    assert level_db(late) - level_db(wet) > -45  # the dry burst is silent there


def test_mic_colour_moves_the_low_end_both_ways(hits):
    """A close mic's proximity boost raises the lows, an overhead's high-pass cuts them."""
    kick = hits["kick"]
    changes = []
    for seed in range(16):
        out = mic_colour(kick, np.random.default_rng(seed), SR)
        assert len(out) == len(kick)
        changes.append(10 * np.log10(band_energy(out, 30, 90) / band_energy(kick, 30, 90)))
    assert max(changes) > 2 and min(changes) < -3, np.round(changes, 1)


def test_bleed_sources_follow_the_kit():
    bank = {c: [np.full(4, i, np.float32)] for i, c in enumerate(("kick", "snare", "hihat_closed", "hihat_open",
                                                                   "crash", "ride", "tom"))}
    names = {c: i for i, c in enumerate(bank)}
    got = {int(s[0]) for s in bleed_sources("hihat_open", bank)}
    assert got == {names[c] for c in KIT_BLEED["hihat_open"]}
    assert names["hihat_open"] not in got and names["crash"] not in got
    assert {int(s[0]) for s in bleed_sources("kick", bank)} == {names[c] for c in KIT_BLEED["kick"]}
    assert {int(s[0]) for s in bleed_sources("shaker", bank)} == set(names.values())  # a class of another set
    assert bleed_sources("kick", None) == [] and bleed_sources(None, bank) == []


def test_augment_oneshot_mixes_in_the_bleed_it_is_given(hits):
    """The same copies of a kick (same seeds) with hats in the bleed bank: about two in five (the recorded kit's
    copies that draw bleed) carry far more of the hats' band; the library's copies are the same with or without."""
    kick, hat = hits["kick"], hits["hihat"]

    def high_share(x):
        return band_energy(x, 6000, 16000) / band_energy(x, 0, 24000)

    ratios = []
    for seed in range(40):
        plain = augment_oneshot(kick, np.random.default_rng(seed), sample_rate_hz=SR, label="kick", bleed=None)
        bled = augment_oneshot(kick, np.random.default_rng(seed), sample_rate_hz=SR, label="kick",
                               bleed={"hihat_closed": [hat]})
        ratios.append(high_share(bled) / high_share(plain))
    ratios = np.array(ratios)
    assert np.mean(ratios > 3) >= 0.2, np.round(np.sort(ratios), 2)  # 0.35 with these seeds
    assert np.mean(np.isclose(ratios, 1.0, rtol=1e-6)) >= 0.3, np.round(np.sort(ratios), 2)


def test_bleed_bank_holds_training_files_only(tmp_path):
    """The other drums mixed under training copies come from the training split, never validation or test."""
    from drumscribe.offline.folder_train import FolderTrainConfig, bleed_bank, find_class_files, stratified_split
    from drumscribe.offline.oneshots import OneShotParams, read_sample, write_synthetic_set

    write_synthetic_set(tmp_path, files_per_class=10, seed=2)
    labels, files = find_class_files(tmp_path)
    train_idx, val_idx, test_idx = stratified_split(np.array([c for _, c in files]), 0)
    params = OneShotParams()
    bank = bleed_bank(files, labels, train_idx, FolderTrainConfig(folders=str(tmp_path)), params)
    assert sorted(bank) == sorted(labels)

    def first_second(i):
        return read_sample(files[i][0], sample_rate_hz=params.sample_rate_hz, max_seconds=1.0).astype(np.float32)

    def found(shot, indices):
        return any(len(shot) == len(a) and np.allclose(shot, a, atol=1e-6) for a in map(first_second, indices))

    for label, shots in bank.items():
        assert shots and len(shots) <= len([i for i in train_idx if labels[files[i][1]] == label])
        for shot in shots:
            assert found(shot, train_idx) and not found(shot, [*val_idx, *test_idx])
