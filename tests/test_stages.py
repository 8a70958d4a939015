"""The three tests every stage passes (STYLE.md): the same output whatever the block size, the same output after
reset(), and streaming equal to processing the whole input in one process() call.

Parametrised over every stage (spectrogram, onset detector, onset scorer with its hit decoder) and the whole
engine, with both schedulings (LIVE computes every frame at once, OFFLINE in groups), and over both analysis
recipes (the offline model's 1024-sample window with a peak-picking onset detector, the live model's 512-sample
window with a rising-edge one; the offline recipe with the band flux on, so that onsets come from two fluxes; and
the offline recipe with the in-song context decoding, which holds onsets back for the ones after them): real
audio, random-weight checkpoints.
For audio stages, block size 1 runs on a short excerpt to keep the time down; for frame stages a "block" is that
many spectrogram frames.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from drumscribe.realtime.engine import (
    LIVE,
    OFFLINE,
    Engine,
    build_stages,
    context_params,
    tail_samples,
)
from drumscribe.realtime.sinks import CollectSink
from drumscribe.realtime.types import FrameBlock

BLOCK_SIZES = (1, 64, 65, 128, 4096)
EXCERPT_SAMPLES = 24000  # 0.5 s: the audio that block size 1 runs on


@dataclass
class StageCase:
    """How to build a stage, what its whole input is, how to cut that into blocks and what its output means."""

    name: str
    make: Callable  # () -> a fresh stage
    stream: Callable  # (short: bool) -> the whole input
    split: Callable  # (whole input, block size) -> list of blocks
    result: Callable  # (list of process() outputs) -> something comparable with ==
    audio: bool  # input is audio (block = samples) rather than frames


def _split_audio(audio: np.ndarray, size: int) -> list:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def _frame_splitter(decided_after: int) -> Callable:
    def split(block: FrameBlock, size: int) -> list:
        """Chunks of `size` frames; each onset travels with the chunk holding the frame that decides it (the
        frame after it for a peak-picking detector, the onset frame itself for a rising-edge one), as the detector
        would deliver it."""
        n = len(block.mel)
        onsets = sorted(block.onsets)
        out = []
        for start in range(0, n, size):
            stop = min(start + size, n)
            last = stop == n
            mine = tuple(k for k in onsets if start <= k + decided_after < stop or (last and k + decided_after >= stop))
            out.append(FrameBlock(block.start_frame + start, block.mel[start:stop], mine))
        return out
    return split


def _mel_result(outputs) -> tuple:
    frames = [o for o in outputs if o is not None]
    if not frames:
        return (0, b"")
    mel = np.concatenate([f.mel for f in frames])
    assert [f.start_frame for f in frames] == list(np.cumsum([0] + [len(f.mel) for f in frames[:-1]]))
    return (len(mel), mel.tobytes())  # bit-exact


def _onset_result(outputs) -> tuple:
    return tuple(k for o in outputs if o is not None for k in o.onsets)


def _hit_result(outputs) -> list:
    return [h for hits in outputs for h in hits]  # DrumHit equality ignores emitted_s


def _cases(checkpoint, groove_audio) -> dict:
    from drumscribe.realtime.decoder import HitDecoder
    from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram
    from drumscribe.realtime.onsets import OnsetDetector, OnsetParams
    from drumscribe.realtime.scorer import OnsetScorer

    fp = FeatureParams(**checkpoint.feature_params)
    op = OnsetParams(**checkpoint.onset_params)
    _split_frames = _frame_splitter(OnsetDetector(op, n_mels=fp.n_mels).latency_frames)

    def audio(short):
        return groove_audio[:EXCERPT_SAMPLES] if short else groove_audio

    def engine_audio(scheduling):
        tail = tail_samples(build_stages(checkpoint, scheduling))

        def stream(short):
            return np.concatenate((audio(short), np.zeros(tail)))  # the silence run() flushes with
        return stream

    whole_mel = LogMelSpectrogram(fp, checkpoint.mel_basis).process(groove_audio)
    frames = FrameBlock(0, whole_mel.mel)
    with_onsets = OnsetDetector(op, n_mels=fp.n_mels).process(frames)
    assert len(with_onsets.onsets) > 10, "the groove should give the classifier onsets to work on"

    class _ScorerDecoder:
        """The onset scorer and the hit decoder, one after the other as in the engine's chain."""

        def __init__(self, scheduling):
            context = context_params(checkpoint) if scheduling.context else None
            self.scorer = OnsetScorer(checkpoint, batch_frames=scheduling.batch_frames,
                                      embedding=context is not None, gate=0.0 if context is None else context.gate)
            self.decoder = HitDecoder.for_checkpoint(checkpoint, batch_frames=scheduling.batch_frames,
                                                     context=context)

        def process(self, block):
            return self.decoder.process(self.scorer.process(block))

        def reset(self):
            self.scorer.reset()
            self.decoder.reset()

    class _EngineStage:
        def __init__(self, scheduling):
            self.engine = Engine(build_stages(checkpoint, scheduling))

        def process(self, block):
            return self.engine.process(block)

        def reset(self):
            self.engine.reset()

    cases = [
        StageCase("LogMelSpectrogram-live", lambda: LogMelSpectrogram(fp, checkpoint.mel_basis, frames_per_call=1),
                  audio, _split_audio, _mel_result, True),
        StageCase("LogMelSpectrogram-offline",
                  lambda: LogMelSpectrogram(fp, checkpoint.mel_basis, frames_per_call=OFFLINE.frames_per_call),
                  audio, _split_audio, _mel_result, True),
        StageCase("OnsetDetector", lambda: OnsetDetector(op, n_mels=fp.n_mels), lambda short: frames,
                  _split_frames, _onset_result, False),
        StageCase("ScorerDecoder-live", lambda: _ScorerDecoder(LIVE),
                  lambda short: with_onsets, _split_frames, _hit_result, False),
        StageCase("ScorerDecoder-offline", lambda: _ScorerDecoder(OFFLINE),
                  lambda short: with_onsets, _split_frames, _hit_result, False),
        StageCase("Engine-live", lambda: _EngineStage(LIVE), engine_audio(LIVE), _split_audio, _hit_result, True),
        StageCase("Engine-offline", lambda: _EngineStage(OFFLINE), engine_audio(OFFLINE), _split_audio,
                  _hit_result, True),
    ]
    return {c.name: c for c in cases}


CASE_NAMES = ("LogMelSpectrogram-live", "LogMelSpectrogram-offline", "OnsetDetector", "ScorerDecoder-live",
              "ScorerDecoder-offline", "Engine-live", "Engine-offline")


def _live_recipe_checkpoint():
    """Random weights on the live recipe: a short window, a short hop, rising-edge onsets, one look-ahead frame."""
    import torch

    from drumscribe.models.cnn import Checkpoint, HitCNN, HitCNNConfig
    from drumscribe.realtime.drums import DRUMS
    from drumscribe.realtime.features import FeatureParams, mel_basis
    from drumscribe.realtime.onsets import OnsetParams

    torch.manual_seed(4321)
    params = FeatureParams(n_fft=512, hop_samples=128, n_mels=48)
    model = HitCNN(HitCNNConfig(n_mels=48, frames_before=6, frames_after=1, n_classes=len(DRUMS))).eval()
    onset_params = OnsetParams(threshold=0.1, min_gap_frames=3, average_frames=40, rising=True)
    return Checkpoint(model=model, labels=list(DRUMS), feature_params=params.as_dict(),
                      onset_params=onset_params.as_dict(), mel_basis=mel_basis(params), thresholds=[0.5] * len(DRUMS))


def _band_onsets_checkpoint(checkpoint):
    """The offline checkpoint with the band flux on: its onsets come from two fluxes."""
    import copy

    band = copy.copy(checkpoint)
    band.onset_params = {**checkpoint.onset_params, "band_from_mel": 44, "band_threshold": 0.1}
    return band


def _context_checkpoint(checkpoint):
    """The offline checkpoint decoding files with the in-song context, its windows short enough that the 5 s
    groove both waits for onsets ahead and forgets old ones."""
    import copy

    from drumscribe.realtime.decoder import ContextParams

    context = copy.copy(checkpoint)
    context.extra = {**checkpoint.extra, "context": ContextParams(ahead_s=1.0, behind_s=1.5).as_dict()}
    return context


def _split_checkpoint(checkpoint):
    """The context checkpoint with song-level thresholds: thresholds the random network's candidates straddle, and
    floors that let the song's split lower them (realtime.decoder.ContextParams.floors)."""
    import copy

    from drumscribe.realtime.decoder import ContextParams

    split = copy.copy(checkpoint)
    split.extra = {**checkpoint.extra, "context": ContextParams(
        ahead_s=1.0, behind_s=1.5, split_ahead_s=1.0, thresholds=[0.52] * len(checkpoint.labels),
        floors=[0.05] * len(checkpoint.labels)).as_dict()}
    return split


@pytest.fixture(scope="module", params=["offline-recipe", "live-recipe", "band-onsets", "context", "song-split"])
def cases(request, checkpoint, groove):
    make = {"offline-recipe": lambda: checkpoint, "live-recipe": _live_recipe_checkpoint,
            "band-onsets": lambda: _band_onsets_checkpoint(checkpoint),
            "context": lambda: _context_checkpoint(checkpoint),
            "song-split": lambda: _split_checkpoint(checkpoint)}[request.param]
    return _cases(make(), groove[0])


def _run(stage, blocks) -> list:
    return [stage.process(b) for b in blocks]


@pytest.fixture(scope="module")
def whole_results(cases):
    """Each stage's output for its whole input in one process() call, full length and excerpt."""
    return {(name, short): case.result(_run(case.make(), [case.stream(short)]))
            for name, case in cases.items() for short in (False, True)}


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_output_whatever_the_block_size(cases, whole_results, name, block_size):
    case = cases[name]
    short = case.audio and block_size == 1
    got = case.result(_run(case.make(), case.split(case.stream(short), block_size)))
    assert got == whole_results[(name, short)]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_output_after_reset(cases, name):
    case = cases[name]
    stage = case.make()
    blocks = case.split(case.stream(False), 128)
    first = case.result(_run(stage, blocks))
    stage.reset()
    again = case.result(_run(stage, blocks))
    assert again == first
    # a reset in the middle of a stream forgets the first half entirely
    stage.reset()
    _run(stage, blocks[: len(blocks) // 2])
    stage.reset()
    assert case.result(_run(stage, blocks)) == first


@pytest.mark.parametrize("name", CASE_NAMES)
def test_streaming_equals_whole(cases, whole_results, name):
    case = cases[name]
    streamed = case.result(_run(case.make(), case.split(case.stream(False), 128)))
    assert streamed == whole_results[(name, False)]
    if case.result is _hit_result:
        assert streamed, "random weights still give hits on the groove, so the comparison is not vacuous"


def test_engine_run_matches_process(checkpoint, groove):
    """Engine.run (source -> stages -> sinks, flushed) gives every sink the hits process() gives."""
    from drumscribe.realtime.sources import ArraySource

    audio = groove[0]
    collected = CollectSink()
    engine = Engine(build_stages(checkpoint, OFFLINE), [collected])
    stats = engine.run(ArraySource(audio, block_size_samples=128))
    assert not stats.interrupted and stats.samples == len(audio) and stats.hits == len(collected) > 0
    whole = Engine(build_stages(checkpoint, OFFLINE)).process(
        np.concatenate((audio, np.zeros(tail_samples(engine.stages)))))
    assert collected == whole
    assert all(h.emitted_s >= h.onset_s for h in collected)
