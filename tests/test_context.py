"""The in-song context decoding (realtime.decoder.ContextParams): the streamed stage against its definition
computed over the whole file at once, live input never waiting for it, and Ctrl-C keeping the onsets it holds."""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from drumscribe.realtime.decoder import ContextParams, HitDecoder
from drumscribe.realtime.engine import LIVE, OFFLINE, Engine, build_stages, context_params, tail_samples
from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram
from drumscribe.realtime.onsets import OnsetDetector, OnsetParams
from drumscribe.realtime.scorer import OnsetScorer
from drumscribe.realtime.sinks import CollectSink
from drumscribe.realtime.types import FrameBlock

CONTEXT = ContextParams(neighbours=3, weight=0.6, ahead_s=1.0, behind_s=1.5, exclude_s=0.05)


def _with_context(checkpoint, context=CONTEXT):
    out = copy.copy(checkpoint)
    out.extra = {**checkpoint.extra, "context": context.as_dict()}
    return out


@pytest.fixture(scope="module")
def onsets_and_mel(checkpoint, groove):
    fp = FeatureParams(**checkpoint.feature_params)
    mel = LogMelSpectrogram(fp, checkpoint.mel_basis).process(groove[0]).mel
    found = OnsetDetector(OnsetParams(**checkpoint.onset_params), n_mels=fp.n_mels).process(FrameBlock(0, mel))
    return found.onsets, mel


def _definition(checkpoint, onsets, mel, context):
    """Every onset's probabilities blended with its neighbours', written out over the whole file with numpy."""
    import torch

    cfg = checkpoint.model.config
    padded = np.concatenate((np.zeros((cfg.frames_before, mel.shape[1])), mel, np.zeros((64, mel.shape[1]))))
    windows = np.stack([padded[k : k + cfg.frames_before + cfg.frames_after + 1] for k in onsets])
    with torch.inference_mode():
        logits, embedding = checkpoint.model.forward_with_embedding(
            torch.from_numpy(np.ascontiguousarray(windows.transpose(0, 2, 1), dtype=np.float32)))
    probs = 1 / (1 + np.exp(-logits.numpy().astype(np.float64)))
    unit = embedding.numpy().astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True) + 1e-12
    frames_per_s = checkpoint.feature_params["sample_rate_hz"] / checkpoint.feature_params["hop_samples"]
    onsets = np.asarray(onsets)
    blended = []
    for i, k in enumerate(onsets):
        gap = onsets - k
        near = np.flatnonzero((gap <= round(context.ahead_s * frames_per_s))
                              & (gap >= -round(context.behind_s * frames_per_s))
                              & (np.abs(gap) >= round(context.exclude_s * frames_per_s)))
        similarity = unit[near] @ unit[i]
        best = near[np.argsort(-similarity, kind="stable")[: context.neighbours]]
        weights = np.maximum(unit[best] @ unit[i], 1e-6)
        blended.append((1 - context.weight) * probs[i] + context.weight * (weights @ probs[best]) / weights.sum())
    return np.array(blended)


def test_streamed_context_decoding_is_its_definition(checkpoint, onsets_and_mel):
    """Every hit's confidence is the blend computed over the whole file, to rounding; the neighbours matter."""
    onsets, mel = onsets_and_mel
    assert len(onsets) > 20
    expected = _definition(checkpoint, onsets, mel, CONTEXT)
    alone = _definition(checkpoint, onsets, mel, ContextParams(weight=0.0))
    assert np.abs(expected - alone).max() > 2e-3, "the neighbours move the probabilities (random weights: a little)"

    scorer = OnsetScorer(checkpoint, batch_frames=OFFLINE.batch_frames, embedding=True)
    stage = HitDecoder.for_checkpoint(checkpoint, batch_frames=OFFLINE.batch_frames, context=CONTEXT)
    stage = stage.with_params(replace(stage.params, thresholds=(0.2,) * len(stage.labels), refractory_s=0.0))
    hits = [h for start in range(0, len(mel), 37)
            for h in stage.process(scorer.process(FrameBlock(start, mel[start : start + 37],
                                                             tuple(k for k in onsets if start <= k + 1 < start + 37))))]
    hits += stage.process(scorer.process(FrameBlock(len(mel), np.zeros((2000, mel.shape[1])))))
    assert hits
    index = {d: i for i, d in enumerate(stage.labels)}
    onset_s = {round(stage.hop_samples * (k + 1 - stage.onset_offset_frames) / stage.sample_rate_hz, 9): i
               for i, k in enumerate(onsets)}
    seen = set()
    for h in hits:
        i = onset_s[round(h.onset_s, 9)]
        seen.add(i)
        p = expected[i].copy()
        for group in stage.exclusive:
            p[group[np.argmax(p[group])]] = min(p[group].sum(), 1.0)
        assert h.confidence == pytest.approx(p[index[h.drum]], abs=1e-5)
    for i in set(range(len(onsets))) - seen:  # the onsets with no hit had nothing above the threshold
        p = expected[i]
        assert all(min(p[g].sum(), 1.0) < 0.2 + 1e-5 for g in stage.exclusive)


def test_live_input_never_waits_for_context(checkpoint):
    ckpt = _with_context(checkpoint)
    assert build_stages(ckpt, LIVE)[-1].context is None
    offline = build_stages(ckpt, OFFLINE)[-1]
    assert offline.context == CONTEXT
    assert offline.latency_samples - build_stages(checkpoint, OFFLINE)[-1].latency_samples == pytest.approx(
        CONTEXT.ahead_s * checkpoint.feature_params["sample_rate_hz"], abs=checkpoint.feature_params["hop_samples"])


def test_context_thresholds_replace_the_checkpoints_for_files(checkpoint):
    tuned = ContextParams(thresholds=[0.9] * len(checkpoint.labels))
    stage = build_stages(_with_context(checkpoint, tuned), OFFLINE)[-1]
    assert list(stage.thresholds) == [0.9] * len(checkpoint.labels)
    assert list(build_stages(_with_context(checkpoint, tuned), LIVE)[-1].thresholds) == list(checkpoint.thresholds)
    with pytest.raises(ValueError, match="context thresholds: 2 values"):
        HitDecoder.for_checkpoint(checkpoint, context=ContextParams(thresholds=[0.5, 0.5]))
    with pytest.raises(ValueError, match="context weight 1.5"):
        ContextParams(weight=1.5)


def test_ctrl_c_keeps_the_onsets_waiting_for_context(checkpoint, groove):
    """An interrupted stream releases the onsets the context decoding still held back."""
    from drumscribe.realtime.sources import ArraySource

    ckpt = _with_context(checkpoint, ContextParams(ahead_s=1.0, behind_s=10.0))
    audio = groove[0]
    cut_s = 4.0

    class Interrupted(ArraySource):
        def __iter__(self):
            for i, block in enumerate(super().__iter__()):
                if (i + 1) * self.block_size_samples > cut_s * 48000:
                    raise KeyboardInterrupt
                yield block

    def run(source):
        hits = CollectSink()

        stats = Engine(build_stages(ckpt, OFFLINE), [hits]).run(source)
        return stats, hits

    stats, cut = run(Interrupted(audio, block_size_samples=128))
    assert stats.interrupted and stats.hits == len(cut)
    _, whole = run(ArraySource(audio, block_size_samples=128))
    # without the drain the last hit would lie more than ahead_s (1 s) before the cut
    assert max(h.onset_s for h in cut) > cut_s - 1.0, "hits in the last context window before Ctrl-C are kept"
    early = [h for h in whole if h.onset_s < cut_s - 1.2]  # decided before the cut, their neighbours all heard
    assert len(early) > 5 and all(h in cut for h in early)
    assert tail_samples(build_stages(ckpt, OFFLINE)) > 1.0 * 48000
    assert context_params(checkpoint) is None


def test_bank_keeps_its_rows_in_order_through_growth_and_forgetting():
    """The context's store of classified onsets (slices, not stacked lists) against a plain list of its rows."""
    from drumscribe.realtime.decoder import _Bank

    rng = np.random.default_rng(0)
    bank, rows, frame = _Bank(), [], 0
    for step in range(120):  # thousands of rows through a store that starts at 1024: it moves and grows
        n = int(rng.integers(1, 60))
        frames = frame + np.cumsum(rng.integers(1, 9, n))
        frame = int(frames[-1])
        probs, embedding = rng.random((n, 11)), rng.random((n, 6))
        levels = list(rng.uniform(-60.0, 0.0, (n, 11)))
        bank.add(list(frames), probs, embedding, levels)
        rows += list(zip(frames, probs, embedding, levels))
        cut = int(rng.integers(0, len(rows) // 2 + 1)) if step % 3 and step > 60 else 0  # grow, then move
        bank.forget(cut)
        del rows[:cut]
        assert len(bank) == len(rows)
        live = slice(bank.start, bank.stop)
        assert [bank.frame(i) for i in range(len(rows))] == [int(r[0]) for r in rows]
        assert np.array_equal(bank.probs[live], np.array([r[1] for r in rows]).reshape(-1, 11))
        assert np.array_equal(bank.embedding[live], np.array([r[2] for r in rows]).reshape(-1, 6))
        assert all(np.array_equal(a, r[3]) for a, r in zip(bank.levels[live], rows))
    assert len(bank.frames) > 1024
