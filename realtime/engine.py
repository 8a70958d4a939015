"""The engine: source -> stages -> sinks, one block at a time, for live input and files alike."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from . import DEFAULT_BLOCK_SIZE_SAMPLES, SAMPLE_RATE_HZ
from .decoder import ContextParams, HitDecoder
from .features import LogMelSpectrogram
from .onsets import OnsetDetector
from .scorer import OnsetScorer
from .unmix import DrumMaskStage, DrumShareStage, weights_from_extra

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    blocks: int = 0
    samples: int = 0
    hits: int = 0
    interrupted: bool = False


@dataclass(frozen=True)
class Scheduling:
    """How eagerly the stages compute, and (`context`) whether onsets may wait for the song around them.

    Live input computes every frame and classifies every onset the moment it can; files group frames and
    onsets into batches, which is many times faster and only delays when hits are released (the hits are the
    same). Only `context` changes the hits themselves: files decide each onset with the in-song context
    (realtime.decoder.ContextParams) where the checkpoint has it, which waits seconds; live input never does.
    """

    frames_per_call: int  # spectrogram frames computed together
    batch_frames: int  # onsets whose look-ahead ends within this many frames are classified together
    context: bool = False  # decide with the in-song context, where the checkpoint was tuned for it (it waits)


LIVE = Scheduling(frames_per_call=1, batch_frames=1)
# Files: 64 frames (320 ms) a call, not 16 (bench/speed.py: about 0.3 s less of a 5-minute song on the 2-core
# machine; the hits are identical, as every scheduling's: tests/test_stages.py)
OFFLINE = Scheduling(frames_per_call=64, batch_frames=400, context=True)


def context_params(checkpoint) -> ContextParams | None:
    """The in-song context decoding a checkpoint's thresholds were tuned for (offline.tune_thresholds --context),
    or None."""
    raw = checkpoint.decoding.context
    return None if raw is None else ContextParams(**raw)


def check_checkpoint(checkpoint) -> None:
    """What the engine knows of a checkpoint's fields and models/ cannot (the drum names, the in-song context; the
    FeatureParams and OnsetParams are typed and checked where the file is read): ValueError naming the field. The
    loaders' `check` (models.cnn.load_checkpoint, models.runtime.load_bundle), which make it one CheckpointError
    line."""
    from .drums import DRUMS

    unknown = [label for label in checkpoint.labels if label not in DRUMS]
    if unknown:
        raise ValueError(f"field 'labels' has {unknown[0]!r}; expected drums of: {', '.join(DRUMS)}")
    try:
        context_params(checkpoint)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"field extra 'context': {' '.join(str(exc).split())}") from None


def build_stages(checkpoint, scheduling: Scheduling = OFFLINE, *, network=None, profile=None) -> list:
    """The transcription chain a checkpoint was trained for: spectrogram -> onsets -> (the drum share, where the
    thresholds depend on it) -> (the drum mask, where the network was trained behind one) -> onset scorer -> hit
    decoder (with the checkpoint's in-song context decoding where the scheduling allows it: files, not live input).
    `network`: the checkpoint's network in another runtime for the scorer (realtime.live.build_live_stages).
    `profile`: a kit profile (realtime.profile.KitProfile) whose head for this checkpoint decides the calibrated
    drums, between the scorer and the decoder (realtime.profile.ProfileStage); ProfileError where it has none."""
    fp, op = checkpoint.feature_params, checkpoint.onset_params  # typed records (models.params)
    context = context_params(checkpoint) if scheduling.context else None
    stages = [LogMelSpectrogram(fp, checkpoint.mel_basis, frames_per_call=scheduling.frames_per_call),
              OnsetDetector(op, n_mels=fp.n_mels)]
    share = checkpoint.decoding.drum_share
    if context is not None and context.stem_thresholds and share:  # thresholds chosen by how drum-alone the song is
        stages.append(DrumShareStage(weights_from_extra(share["mask"]), every=share["every"],
                                     group_frames=share["group_frames"]))
    mask = checkpoint.decoding.drum_mask
    if mask:  # the network was trained behind a drum mask (realtime.unmix): it reads the song's drums
        stages.append(DrumMaskStage(weights_from_extra(mask), group_frames=256 if scheduling.context else 1,
                                    hop_samples=fp.hop_samples))
    decoder = HitDecoder.for_checkpoint(checkpoint, batch_frames=scheduling.batch_frames, context=context)
    calibrated = None if profile is None else profile.stage_for(checkpoint, decoder.params.thresholds)
    scorer = OnsetScorer(checkpoint, batch_frames=scheduling.batch_frames,
                         embedding=context is not None or (calibrated is not None and calibrated.head.embedding),
                         gate=0.0 if context is None else context.gate, network=network)
    return stages + [scorer, *([] if calibrated is None else [calibrated]), decoder]


def tail_samples(stages: list, *, drained: bool = False) -> int:
    """Silence to feed after a stream ends so that every onset in it gets its look-ahead; `drained`: only so that
    every onset is classified, for a stream whose end then drains the stages (what they still hold back for the
    song around an onset needs no more audio: Engine.drain)."""
    return sum(int(getattr(s, "latency_samples", 0)) - (int(getattr(s, "held_samples", 0)) if drained else 0)
               for s in stages) + 4096


class Engine:
    """Runs blocks through a chain of stages and hands each hit to every sink, stamped with `emitted_s`."""

    def __init__(self, stages: list, sinks: list = (), *, sample_rate_hz: int = SAMPLE_RATE_HZ):
        self.stages = list(stages)
        self.sinks = list(sinks)
        self.sample_rate_hz = sample_rate_hz
        self.position_samples = 0

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()
        self.position_samples = 0

    def process(self, block: np.ndarray) -> list:
        """One block through every stage; the hits it released, stamped with the stream position after it."""
        out = block
        for stage in self.stages:
            out = stage.process(out)
            if out is None:  # nothing completed in this block: the later stages have nothing to do
                break
        self.position_samples += len(block)
        return self._release(out)

    def drain(self) -> list:
        """Release what the stages hold back for later context (the onsets the scorer holds for the rest of their
        batch, the in-song context decoding's waiting onsets), for a stream cut short: Ctrl-C keeps every hit heard
        so far. What a stage drains goes through the stages after it, which then drain too."""
        out = None
        for stage in self.stages:
            if out is not None:
                out = stage.process(out)
            held = getattr(stage, "drain", None)
            held = held() if held is not None else None
            if held is not None:
                out = held if out is None else out + held  # after the decoder: lists of hits
        return self._release(out)

    def _release(self, out) -> list:
        if not out:
            return []
        emitted_s = self.position_samples / self.sample_rate_hz
        hits = [replace(hit, emitted_s=emitted_s) for hit in out]
        for sink in self.sinks:
            sink.write(hits)
        return hits

    def run(self, source, *, progress=None, flush: bool = True) -> RunStats:
        """Stream a whole source, then (flush) silence so the last onsets are decided. Ctrl-C stops cleanly."""
        stats = RunStats()
        block_size = getattr(source, "block_size_samples", DEFAULT_BLOCK_SIZE_SAMPLES)
        try:
            for block in source:
                stats.hits += len(self.process(block))
                stats.blocks += 1
                stats.samples += len(block)
                if progress is not None:
                    progress(len(block))
            if flush:  # silence until every onset is classified, then what waits for later onsets is decided
                silence = np.zeros(block_size)
                for _ in range(-(-tail_samples(self.stages, drained=True) // block_size)):
                    stats.hits += len(self.process(silence))
                stats.hits += len(self.drain())
        except KeyboardInterrupt:
            stats.interrupted = True
            log.info("interrupted after %.1f s of audio", stats.samples / self.sample_rate_hz)
            stats.hits += len(self.drain())
        return stats


def transcribe_array(audio: np.ndarray, checkpoint, *, block_size_samples: int = DEFAULT_BLOCK_SIZE_SAMPLES,
                     scheduling: Scheduling = OFFLINE, sinks: list = ()) -> list:
    """All hits in a signal at the engine rate, streamed through the engine in blocks."""
    from .sinks import CollectSink
    from .sources import ArraySource

    collected = CollectSink()
    engine = Engine(build_stages(checkpoint, scheduling), [collected, *sinks])
    engine.run(ArraySource(audio, block_size_samples=block_size_samples))
    return list(collected)
