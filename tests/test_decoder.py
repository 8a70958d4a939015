"""The onset scorer and the hit decoder (realtime.scorer, realtime.decoder): one stream of scores decoded at other
DecoderParams gives the hits the threshold tuner computes for them (offline.tune_thresholds.decide), the params are
frozen and checked, the decision log records what the tuner reads, and the engine's drain hands the scorer's held
onsets to the decoder."""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import replace

import numpy as np
import pytest

from drumscribe.offline import tune_thresholds as T
from drumscribe.realtime.decoder import ContextParams, DecisionLog, DecoderParams, HitDecoder
from drumscribe.realtime.engine import OFFLINE, Engine, build_stages
from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram
from drumscribe.realtime.onsets import OnsetDetector, OnsetParams
from drumscribe.realtime.scorer import OnsetScorer, ScoredOnsets
from drumscribe.realtime.types import FrameBlock

CONTEXT = ContextParams(ahead_s=1.0, behind_s=1.5)


def _with_context(checkpoint, context=CONTEXT):
    out = copy.copy(checkpoint)
    out.extra = {**checkpoint.extra, "context": context.as_dict()}
    return out


@pytest.fixture(scope="module")
def frames(checkpoint, groove):
    """The groove's log-mel frames and onsets in blocks of 64 frames, then the silence that lets every onset out."""
    fp = FeatureParams(**checkpoint.feature_params)
    mel = LogMelSpectrogram(fp, checkpoint.mel_basis).process(groove[0]).mel
    mel = np.concatenate((mel, np.zeros((600, mel.shape[1]))))
    onsets = OnsetDetector(OnsetParams(**checkpoint.onset_params), n_mels=fp.n_mels).process(FrameBlock(0, mel)).onsets
    assert len(onsets) > 20
    return [FrameBlock(start, mel[start : start + 64], tuple(k for k in onsets if start <= k + 1 < start + 64))
            for start in range(0, len(mel), 64)]


def _scores(checkpoint, frames, context):
    scorer = OnsetScorer(checkpoint, batch_frames=OFFLINE.batch_frames, embedding=context is not None)
    return [scorer.process(block) for block in frames]


def _decode(decoder, scores) -> list:
    return [h for s in scores for h in decoder.process(s)] + decoder.drain()


@pytest.mark.parametrize("context", [None, CONTEXT], ids=["alone", "in-song context"])
def test_decoding_at_other_params_gives_what_the_tuner_computes(checkpoint, frames, context):
    """The tuner collects every candidate once (thresholds 0.05, no suppression) and scores threshold sets on them
    with decide(); the decoder run on the same scores at those thresholds gives the same hits."""
    scores = _scores(checkpoint, frames, context)
    decoder = HitDecoder.for_checkpoint(checkpoint, batch_frames=OFFLINE.batch_frames, context=context)
    n = len(checkpoint.labels)
    candidates = _decode(decoder.with_params(replace(decoder.params, thresholds=(0.05,) * n, refractory_s=0.0)),
                         scores)
    refractory_s = decoder.refractory_frames * decoder.hop_samples / decoder.sample_rate_hz
    confidences = np.array([h.confidence for h in candidates])
    index = {d: i for i, d in enumerate(checkpoint.labels)}
    moved = 0
    for quantile in (0.3, 0.6, 0.9):  # thresholds among the candidates: each set keeps some out
        thresholds = np.quantile(confidences, quantile) * np.linspace(0.9, 1.1, n)
        expected = T.decide(candidates, index, thresholds, refractory_s)
        got = _decode(decoder.with_params(replace(decoder.params, thresholds=thresholds)), scores)
        assert 0 < len(got) < len(candidates)
        assert [(h.onset_s, h.drum, h.velocity) for h in got] == [(h.onset_s, h.drum, h.velocity) for h in expected]
        np.testing.assert_allclose([h.confidence for h in got], [h.confidence for h in expected], atol=1e-12)
        moved += len(candidates) - len(got)
        # the rival groups' rule too (a second tom, or crash with ride, near the likeliest only)
        ratio = np.full(n, 0.8)
        expected = T.decide(candidates, index, thresholds, refractory_s, second_ratio=ratio)
        got = _decode(decoder.with_params(replace(decoder.params, thresholds=thresholds, second_ratio=ratio)), scores)
        assert [(h.onset_s, h.drum, h.velocity) for h in got] == [(h.onset_s, h.drum, h.velocity) for h in expected]
    assert moved > 0
    # the original decoder is untouched: its params, and the hits at them
    assert decoder.params == DecoderParams.of(checkpoint, context)
    assert _decode(decoder, scores) == T.decide(candidates, index, np.asarray(decoder.params.thresholds),
                                                 refractory_s)


def test_the_suppression_time_and_the_velocity_range_are_params(checkpoint, frames):
    scores = _scores(checkpoint, frames, None)
    decoder = HitDecoder.for_checkpoint(checkpoint, batch_frames=OFFLINE.batch_frames)
    n = len(checkpoint.labels)
    low = replace(decoder.params, thresholds=(0.05,) * n)
    every = _decode(decoder.with_params(replace(low, refractory_s=0.0)), scores)
    suppressed = _decode(decoder.with_params(replace(low, refractory_s=0.5)), scores)
    assert len(suppressed) < len(every)
    for drum in {h.drum for h in suppressed}:  # no drum twice within 0.5 s
        times = [h.onset_s for h in suppressed if h.drum == drum]
        assert all(b - a >= 0.5 - 0.011 for a, b in zip(times, times[1:]))
    loud = _decode(decoder.with_params(replace(low, refractory_s=0.0, velocity_floor_db=-200.0,
                                                 velocity_ceiling_db=-199.0)), scores)
    assert [(h.onset_s, h.drum) for h in loud] == [(h.onset_s, h.drum) for h in every]
    assert {h.velocity for h in loud} == {127} and len({h.velocity for h in every}) > 3


def test_params_are_frozen_and_checked(checkpoint):
    params = DecoderParams.of(checkpoint)
    assert params.thresholds == tuple(float(t) for t in checkpoint.thresholds)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.thresholds = (0.5,)
    tuned = ContextParams(thresholds=[0.9] * len(checkpoint.labels), floors=[0.2] * 3 + [1.0] * 8)
    of_context = DecoderParams.of(checkpoint, tuned)
    assert of_context.thresholds == (0.9,) * len(checkpoint.labels) and of_context.floors == tuned.floors
    with pytest.raises(ValueError, match="floors"):
        DecoderParams(thresholds=(0.5,), floors=(1.5,))
    with pytest.raises(ValueError, match="refractory_s -1"):
        DecoderParams(thresholds=(0.5,), refractory_s=-1.0)
    with pytest.raises(ValueError, match="velocity floor"):
        DecoderParams(thresholds=(0.5,), velocity_floor_db=0.0, velocity_ceiling_db=-6.0)
    decoder = HitDecoder.for_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="decoder thresholds: 2 values for 11 drums"):
        decoder.with_params(DecoderParams(thresholds=(0.5, 0.5)))
    with pytest.raises(ValueError, match="in-song context"):  # a live decoder decides each onset alone
        decoder.with_params(replace(params, floors=(0.2,) * len(checkpoint.labels)))
    plain = HitDecoder.for_checkpoint(checkpoint, context=CONTEXT)  # no floors: it does not wait for the split
    with pytest.raises(ValueError, match="does not wait for the song's split"):
        plain.with_params(replace(plain.params, floors=(0.2,) * len(checkpoint.labels)))
    adapting = HitDecoder.for_checkpoint(checkpoint, context=tuned)
    assert adapting.latency_samples > plain.latency_samples  # the wait for the split
    without = adapting.with_params(replace(adapting.params, floors=()))
    assert without.split_groups == [] and without.latency_samples == adapting.latency_samples  # waits as before


def test_the_log_records_every_decided_onset(checkpoint, frames):
    scores = _scores(checkpoint, frames, CONTEXT)
    onsets = sum(len(s.onsets) for s in scores)
    decoder = HitDecoder.for_checkpoint(checkpoint, batch_frames=OFFLINE.batch_frames, context=CONTEXT)
    log = DecisionLog(embeddings={})
    hits = _decode(decoder.with_params(decoder.params, log=log), scores)
    assert len(log.gates) == onsets and set(log.gates.values()) == {0.0}  # no stem thresholds
    assert {h.onset_s for h in hits} <= set(log.gates) == set(log.embeddings)
    for e in log.embeddings.values():
        assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-9)
    assert decoder.log is None  # the log went to the new decoder only


def test_scores_hold_one_row_per_onset(checkpoint):
    with pytest.raises(ValueError, match="scores of 2 onsets"):
        ScoredOnsets(10, (1, 2), np.zeros((1, 11)), None, np.zeros((2, 11)))


def test_drain_hands_the_scorer_s_held_onsets_to_the_decoder(checkpoint, groove):
    """A stream cut short (Ctrl-C) gives the hits of the onsets the scorer held for the rest of their batch: the
    engine passes what the scorer drains through the decoder. Each onset alone and with the in-song context."""
    audio = groove[0]
    for ckpt in (checkpoint, _with_context(checkpoint)):
        whole = Engine(build_stages(ckpt, OFFLINE)).process(np.concatenate((audio, np.zeros(48000 * 6))))
        engine = Engine(build_stages(ckpt, OFFLINE))
        before = engine.process(audio)
        drained = engine.drain()
        assert drained, "the 4-second batches hold onsets back at the cut"
        end_s = len(audio) / 48000 - 1.0  # the spectrogram's groups of 64 frames and the look-ahead: heard
        kept = [h for h in whole if h.onset_s < end_s]
        assert kept and [h for h in before + drained if h.onset_s < end_s] == kept
        assert engine.drain() == []  # nothing twice


def test_the_live_chain_builds_its_scorer_on_the_compiled_network(checkpoint):
    """build_live_stages hands the compiled network (realtime.live.compile_for_live) to the scorer it builds, rather
    than swapping a stage's model afterwards; the checkpoint keeps its own network."""
    from drumscribe.realtime.engine import LIVE
    from drumscribe.realtime.live import build_live_stages

    stages = build_live_stages(checkpoint)
    scorer, decoder = stages[-2:]
    assert isinstance(scorer, OnsetScorer) and isinstance(decoder, HitDecoder) and decoder.context is None
    assert scorer.model is not checkpoint.model and type(checkpoint.model).__name__ == "HitCNN"
    assert [type(s) for s in stages] == [type(s) for s in build_stages(checkpoint, LIVE)]
