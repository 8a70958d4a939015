"""Two threshold sets, one for drum stems and one for any song, chosen per onset by the drum share of the song
around it (realtime.unmix.DrumShareStage, realtime.decoder.ContextParams.stem_thresholds,
offline.tune_thresholds --stem-set)."""
import copy

import numpy as np
import pytest
import torch

from drumscribe.models.unmix import DrumMask, DrumMaskConfig, numpy_weights
from drumscribe.realtime.sinks import CollectSink
from drumscribe.realtime.types import FrameBlock
from drumscribe.realtime.unmix import DrumShareStage, mask_frames, reach_frames


def _mask(seed=0, bias=None):
    """A random drum mask; with `bias`, its last layer answers that logit everywhere (mask = sigmoid(bias))."""
    torch.manual_seed(seed)
    weights = numpy_weights(DrumMask(DrumMaskConfig(channels=16)).eval())
    if bias is not None:
        w, b, d = weights[-1]
        weights[-1] = (np.zeros_like(w), np.full_like(b, bias), d)
    return weights


def test_share_stage_passes_frames_through_and_measures_every_fourth_group_whatever_the_block_size():
    """Frames and onsets come out as they went in, at once; the records are the same for blocks of 1, 7, 64 and
    300 frames, one per fourth group of 256 frames, each with the drum power the mask gives on the whole stream,
    and each on the block in which the last frame it needed arrived."""
    weights = _mask()
    reach = reach_frames(weights)
    mel = np.abs(np.random.default_rng(0).normal(size=(3000, 64))) * 2
    padded = np.concatenate((np.zeros((reach, 64)), mel, np.zeros((reach, 64))))
    results = []
    for block in (1, 7, 64, 300):
        stage, records, frames = DrumShareStage(weights), [], []
        for i in range(0, len(mel), block):
            onsets = (i,) if i % 97 == 0 else ()
            out = stage.process(FrameBlock(i, mel[i : i + block], onsets))
            assert out.start_frame == i and out.onsets == onsets and out.mel is not None
            frames.append(out.mel)
            for record in out.drum_share:
                assert record[1] <= i + len(out.mel) - 1  # it needed no frame not yet arrived ...
                assert record[1] > i - 1 or block == 1  # ... and came with the block that brought the last one
            records += out.drum_share
        assert np.array_equal(np.concatenate(frames), mel)
        results.append(records)
    assert all(r == results[0] for r in results[1:])
    assert [r[0] for r in results[0]] == [0, 1024, 2048]  # 3000 frames: groups 0, 4 and 8 complete
    for first, needed, drums, power in results[0]:
        assert needed == first + 255 + reach
        masked = mask_frames(weights, padded[first : first + 256 + 2 * reach])
        assert drums == pytest.approx((10.0**masked - 1).sum(), rel=1e-9)
        assert power == pytest.approx((10.0 ** mel[first : first + 256] - 1).sum(), rel=1e-12)
        assert 0 < drums < power


def _gated(checkpoint, bias, base=1.01, stem=0.0):
    """The checkpoint with context thresholds `base`, stem thresholds `stem` and a constant drum mask."""
    weights = _mask(bias=bias)
    out = copy.copy(checkpoint)
    n = len(checkpoint.labels)
    spec = {"layers": [{"weight": w.tolist(), "bias": b.tolist(), "dilation": d} for w, b, d in weights]}
    out.extra = {**checkpoint.extra, "drum_share": {"mask": spec, "every": 4, "group_frames": 256},
                 "context": {"thresholds": [base] * n, "stem_thresholds": [stem] * n, "stem_share": [0.8, 0.93]}}
    return out


def _run(checkpoint, audio, block=4096):
    from drumscribe.realtime.decoder import DecisionLog
    from drumscribe.realtime.engine import OFFLINE, Engine, build_stages
    from drumscribe.realtime.sources import ArraySource

    stages = build_stages(checkpoint, OFFLINE)
    log = DecisionLog()
    stages[-1] = stages[-1].with_params(stages[-1].params, log=log)
    hits = CollectSink()

    Engine(stages, [hits]).run(ArraySource(audio, block_size_samples=block))
    return hits, stages, log.gates


def test_the_drum_share_picks_the_thresholds(checkpoint, groove):
    """A mask that finds all the power drums: every onset at the stem thresholds (0: every drum of every onset);
    one that finds none: at the others (above 1: nothing); one that finds 86.5 %: the blend, exactly the hits of
    that blend as one set; the same whatever the block size."""
    from drumscribe.realtime.engine import build_stages

    audio = np.tile(groove[0], 3).astype(np.float64)  # 15 s
    stem, stages, gates = _run(_gated(checkpoint, bias=30.0), audio)
    assert any(isinstance(s, DrumShareStage) for s in stages)
    assert set(gates.values()) == {1.0}
    onsets = {h.onset_s for h in stem}  # onsets give hits, but for double triggers ...
    assert onsets <= set(gates) and len(onsets) > 0.8 * len(gates)
    assert len(stem) > 5 * len(onsets)  # ... of most drums
    nothing, stages, gates = _run(_gated(checkpoint, bias=-30.0), audio)
    assert nothing == [] and set(gates.values()) == {0.0} and gates
    share = 0.865
    blend, stages, gates = _run(_gated(checkpoint, bias=float(np.log(share / (1 - share)))), audio)
    gates = np.array(list(gates.values()))
    assert np.allclose(gates, (share - 0.8) / 0.13, atol=1e-6)  # one share everywhere, the mask's
    g = (share - 0.8) / 0.13
    plain = _gated(checkpoint, bias=0.0, base=(1 - g) * 1.01)
    del plain.extra["drum_share"]  # one set, no share stage
    assert not any(isinstance(s, DrumShareStage) for s in build_stages(plain))
    alone = _run(plain, audio)[0]
    assert 0 < len(blend) < len(stem)
    assert [(h.onset_s, h.drum) for h in blend] == [(h.onset_s, h.drum) for h in alone]
    for block in (65, 1000):
        assert _run(_gated(checkpoint, bias=float(np.log(share / (1 - share)))), audio, block)[0] == blend


def test_no_share_stage_live_or_without_stem_thresholds(checkpoint):
    from drumscribe.realtime.engine import LIVE, OFFLINE, build_stages

    gated = _gated(checkpoint, bias=0.0)
    assert not any(isinstance(s, DrumShareStage) for s in build_stages(gated, LIVE))
    gated.extra["context"] = {**gated.extra["context"], "stem_thresholds": []}
    assert not any(isinstance(s, DrumShareStage) for s in build_stages(gated, OFFLINE))


def test_decide_blends_each_candidate_s_thresholds_by_its_gate():
    from drumscribe.offline.tune_thresholds import Candidates, decide
    from drumscribe.realtime.types import DrumHit

    hits = Candidates([DrumHit(1.0, "kick", 100, 0.5), DrumHit(2.0, "kick", 100, 0.5), DrumHit(3.0, "kick", 100, 0.5)],
                      {1.0: 0.0, 2.0: 1.0, 3.0: 0.5})
    base, stem = np.array([0.6]), np.array([0.3])
    assert [h.onset_s for h in decide(hits, {"kick": 0}, base, 0.03)] == []
    assert [h.onset_s for h in decide(hits, {"kick": 0}, base, 0.03, stem)] == [2.0, 3.0]  # 0.45 at the half gate
    assert [h.onset_s for h in decide(hits, {"kick": 0}, np.array([0.55]), 0.03, np.array([0.5]))] == [2.0]


@pytest.mark.parametrize("bad", [{"stem_share": [0.9, 0.8]}, {"stem_share": [0.5]}, {"stem_share": [-0.1, 0.5]}])
def test_context_params_refuse_bad_share_bounds(bad):
    from drumscribe.realtime.decoder import ContextParams

    with pytest.raises(ValueError, match="stem_share"):
        ContextParams(**bad)


def test_tune_cli_refuses_a_stem_set_without_context_or_with_a_bad_mask(checkpoint_path, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent

    def run(*args):
        return subprocess.run([sys.executable, "-m", "drumscribe", "train", "tune", "--model",
                               str(checkpoint_path), *args], cwd=repo, capture_output=True, text=True, timeout=120,
                              check=False)

    out = run("--stem-set", str(checkpoint_path))
    assert out.returncode == 2 and "give --context too" in out.stderr and "Traceback" not in out.stderr
    bad = tmp_path / "not_a_mask.pt"
    bad.write_text("no")
    out = run("--context", "--stem-set", str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no context thresholds" in out.stderr or "not a drum mask" in out.stderr
