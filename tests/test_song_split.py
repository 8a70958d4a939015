"""Song-level thresholds of the in-song context decoding (realtime.decoder.ContextParams.floors): Otsu's split of
a song's candidates, the engine lowering thresholds to it exactly as offline.tune_thresholds scores it, and a file's
end deciding what waits without feeding the whole wait as silence."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from drumscribe.offline import tune_thresholds as T
from drumscribe.realtime.decoder import (
    ContextParams,
    HitDecoder,
    otsu_split,
    song_splits,
    split_contrast,
)
from drumscribe.realtime.engine import OFFLINE, Engine, build_stages, tail_samples
from drumscribe.realtime.sinks import CollectSink
from drumscribe.realtime.sources import ArraySource

SPLIT = dict(ahead_s=1.0, behind_s=1.5, split_ahead_s=1.0, split_min=8)


def _brute_otsu(values):
    """Otsu written out: every cut of the sorted logits into two groups of two or more, the between-group variance."""
    x = np.sort(np.log(np.clip(values, 1e-6, 1 - 1e-6) / (1 - np.clip(values, 1e-6, 1 - 1e-6))))
    best = None
    for k in range(2, len(x) - 1):
        a, b = x[:k], x[k:]
        v = len(a) * len(b) * (a.mean() - b.mean()) ** 2
        if best is None or v > best[0]:
            best = (v, (x[k - 1] + x[k]) / 2)
    return 1 / (1 + np.exp(-best[1]))


def test_otsu_split_falls_between_the_two_groups():
    rng = np.random.default_rng(0)
    quiet, sure = rng.uniform(0.05, 0.12, 30), rng.uniform(0.3, 0.5, 12)
    split = otsu_split(np.concatenate((quiet, sure)))
    assert 0.12 < split < 0.3
    for n in (8, 9, 40):
        values = rng.uniform(0.05, 1.0, n)
        assert otsu_split(values) == pytest.approx(_brute_otsu(values), abs=1e-12)
    assert otsu_split(rng.uniform(0.05, 1.0, 7)) is None  # fewer than split_min
    assert otsu_split(rng.uniform(0.05, 1.0, 7), minimum=4) is not None


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_split_contrast_tells_a_drum_s_cluster_from_a_band_cut_in_two():
    """The onsets above a split that sound alike (one drum) and apart from the rest give a contrast; a split that
    cuts one kind of sound in two (a band's notes) gives about none, and its song keeps the thresholds."""
    rng = np.random.default_rng(1)
    drum = _unit(np.array([1.0, 0, 0, 0, 0, 0]) + 0.1 * rng.normal(size=(12, 6)))
    band = _unit(np.array([0, 1.0, 1.0, 0, 0, 0]) + 0.3 * rng.normal(size=(30, 6)))
    upper, lower = np.arange(12), np.arange(12, 42)
    assert split_contrast(np.vstack((drum, band)), upper, lower) > 0.5
    assert abs(split_contrast(band, np.arange(10), np.arange(10, 30))) < 0.1
    # its definition: mean cosine over pairs of distinct upper rows, less the mean over (upper, lower) pairs
    e = np.vstack((drum, band))
    cos = e @ e.T
    within = (cos[:12, :12].sum() - 12) / (12 * 11)
    assert split_contrast(e, upper, lower) == pytest.approx(within - cos[:12, 12:].mean(), abs=1e-12)
    assert np.isnan(split_contrast(e, upper[:1], lower))
    # in song_splits: the drum's song gets its split, the band alone (probabilities alike in shape) none
    times = np.arange(42.0)
    probs = np.concatenate((rng.uniform(0.3, 0.5, 12), rng.uniform(0.05, 0.12, 30)))[:, None]
    rows, columns = np.arange(42), np.array([0])
    with_drum = song_splits(times, probs, rows, columns, behind=100, ahead=100, embedding=e, contrast=0.07)
    assert np.all((with_drum > 0.12) & (with_drum < 0.3))
    order = rng.permutation(30)
    band_probs = np.concatenate((rng.uniform(0.3, 0.5, 10), rng.uniform(0.05, 0.12, 20)))[order][:, None]
    alone = song_splits(times[:30], band_probs, rows[:30], columns, behind=100, ahead=100, embedding=band[order],
                        contrast=0.07)
    assert np.all(np.isnan(alone))
    unchecked = song_splits(times[:30], band_probs, rows[:30], columns, behind=100, ahead=100)
    assert np.all(np.isfinite(unchecked))


def test_context_params_refuse_bad_floors(checkpoint):
    with pytest.raises(ValueError, match="floors"):
        ContextParams(floors=[1.5])
    with pytest.raises(ValueError, match="split"):
        ContextParams(split_min=2)
    with pytest.raises(ValueError, match="split_contrast"):
        ContextParams(split_contrast=-0.1)
    with pytest.raises(ValueError, match="split_behind_s 61"):
        ContextParams(split_behind_s=61.0)  # more than the decoding remembers (behind_s 60)
    with pytest.raises(ValueError, match="context floors: 2 values"):
        HitDecoder.for_checkpoint(checkpoint, context=ContextParams(floors=[0.2, 0.2]))
    assert not ContextParams(floors=[1.0] * 3).adapts and ContextParams(floors=[1.0, 0.2]).adapts


def _with(checkpoint, **context):
    out = copy.copy(checkpoint)
    out.extra = {**checkpoint.extra, "context": ContextParams(**context).as_dict()}
    return out


def _run(checkpoint, audio, block=4096):
    hits = CollectSink()

    Engine(build_stages(checkpoint, OFFLINE), [hits]).run(ArraySource(audio, block_size_samples=block))
    return [(h.onset_s, h.drum, h.confidence, h.velocity) for h in hits]


def test_the_engine_lowers_thresholds_to_the_song_split_as_the_tuner_scores_it(checkpoint, groove):
    """The engine's hits at thresholds and floors are the tuner's decide() on the candidates at the same values;
    the floors let in hits the thresholds alone keep out, and only down to the song's split."""
    audio = groove[0]
    labels = list(checkpoint.labels)
    collected, refractory_s = T._candidates(_with(checkpoint, **SPLIT), audio)
    assert collected.splits, "the groove has enough candidates for splits"
    confidences = {d: [h.confidence for h in collected if h.drum == d] for d in labels}
    # thresholds at each drum's upper quartile of candidates: the split (mid-song) lies below some of them
    thresholds = np.array([np.quantile(confidences[d], 0.75) if confidences[d] else 0.5 for d in labels])
    floors = np.full(len(labels), 0.05)
    index = {d: i for i, d in enumerate(labels)}
    plain = T.decide(collected, index, thresholds, refractory_s)
    lowered = T.decide(collected, index, thresholds, refractory_s, floors=floors)
    assert len(lowered) > len(plain)
    for h in lowered:
        if h.confidence < thresholds[index[h.drum]]:
            from drumscribe.realtime.drums import SCORE_CLASS

            assert h.confidence >= collected.splits[(h.onset_s, SCORE_CLASS[h.drum])]

    def engine(floors_):
        ckpt = _with(checkpoint, **SPLIT, thresholds=thresholds.tolist(), floors=floors_)
        return _run(ckpt, audio)

    expect = sorted((h.onset_s, h.drum) for h in lowered)
    assert sorted((t, d) for t, d, _, _ in engine(floors.tolist())) == expect
    assert sorted((t, d) for t, d, _, _ in engine([])) == sorted((h.onset_s, h.drum) for h in plain)
    # a floor above every split: no threshold moves
    assert sorted((t, d) for t, d, _, _ in engine([0.999] * len(labels))) == sorted((h.onset_s, h.drum) for h in plain)


def test_the_engine_checks_a_split_s_contrast_as_the_tuner_scores_it_and_tunes_without_it(checkpoint, groove):
    """With split_contrast, the engine lowers a threshold only where the tuner's checked splits say so; the tuner
    keeps the splits without the check (Candidates.unchecked) and tunes on those (for_tuning)."""
    audio = groove[0]
    labels = list(checkpoint.labels)
    index = {d: i for i, d in enumerate(labels)}
    loose, _ = T._candidates(_with(checkpoint, **SPLIT), audio)
    assert loose.unchecked is None and loose.splits
    # a contrast that passes some of the groove's splits and blocks others
    for contrast in np.linspace(0.01, 1.0, 100):
        collected, refractory_s = T._candidates(_with(checkpoint, **SPLIT, split_contrast=float(contrast)), audio)
        if 0 < len(collected.splits) < len(loose.splits):
            break
    else:
        pytest.fail("no contrast between passing every split and none")
    assert collected.unchecked == loose.splits
    assert set(collected.splits.items()) < set(loose.splits.items())
    assert T.for_tuning([(collected, {}, refractory_s)])[0][0].splits == loose.splits
    confidences = {d: [h.confidence for h in collected if h.drum == d] for d in labels}
    thresholds = np.array([np.quantile(confidences[d], 0.75) if confidences[d] else 0.5 for d in labels])
    floors = np.full(len(labels), 0.05)
    checked = T.decide(collected, index, thresholds, refractory_s, floors=floors)
    unchecked = T.decide(loose, index, thresholds, refractory_s, floors=floors)
    assert len(checked) < len(unchecked)
    ckpt = _with(checkpoint, **SPLIT, thresholds=thresholds.tolist(), floors=floors.tolist(),
                 split_contrast=float(contrast))
    assert sorted((t, d) for t, d, _, _ in _run(ckpt, audio)) == sorted((h.onset_s, h.drum) for h in checked)


def test_the_split_s_own_window_back_is_the_tuner_s_and_the_engine_s(checkpoint, groove):
    """ContextParams.split_behind_s shortens the split's window back (the blend keeps behind_s): other splits than
    the default's, and the engine lowers thresholds to exactly those."""
    audio = groove[0]
    labels = list(checkpoint.labels)
    index = {d: i for i, d in enumerate(labels)}
    wide, _ = T._candidates(_with(checkpoint, **SPLIT), audio)
    short, refractory_s = T._candidates(_with(checkpoint, **SPLIT, split_behind_s=0.3), audio)
    assert short.splits and short.splits != wide.splits
    confidences = {d: [h.confidence for h in short if h.drum == d] for d in labels}
    thresholds = np.array([np.quantile(confidences[d], 0.75) if confidences[d] else 0.5 for d in labels])
    floors = np.full(len(labels), 0.05)
    expect = T.decide(short, index, thresholds, refractory_s, floors=floors)
    ckpt = _with(checkpoint, **SPLIT, split_behind_s=0.3, thresholds=thresholds.tolist(), floors=floors.tolist())
    assert sorted((t, d) for t, d, _, _ in _run(ckpt, audio)) == sorted((h.onset_s, h.drum) for h in expect)


def test_a_file_s_end_decides_what_waits_without_feeding_the_wait_as_silence(checkpoint, groove):
    """Engine.run feeds silence only until every onset is classified, then drains: the hits are those of feeding
    the whole wait (blend and split windows) as silence, and the split's 30 s are not spent on silence."""
    ckpt = _with(checkpoint, **{**SPLIT, "split_ahead_s": 30.0}, floors=[0.05] * len(checkpoint.labels),
                 thresholds=[0.5] * len(checkpoint.labels))
    audio = groove[0]
    stages = build_stages(ckpt, OFFLINE)
    assert tail_samples(stages) - tail_samples(stages, drained=True) == pytest.approx(31.0 * 48000, abs=240)
    whole = Engine(build_stages(ckpt, OFFLINE))
    hits = []
    padded = np.concatenate((audio, np.zeros(tail_samples(stages))))
    for start in range(0, len(padded), 4096):
        hits += whole.process(padded[start : start + 4096])
    assert hits
    assert _run(ckpt, audio) == [(h.onset_s, h.drum, h.confidence, h.velocity) for h in hits]
