"""The rival groups' rule (realtime.decoder.RIVAL_GROUPS): one tom, and crash or ride, at an onset unless a second
comes near the likeliest; on hand-made probabilities, in the decoder and in the threshold tuner alike."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from drumscribe.models.params import DecodingParams
from drumscribe.offline import tune_thresholds as T
from drumscribe.realtime.decoder import ContextParams, DecoderParams, HitDecoder
from drumscribe.realtime.scorer import ScoredOnsets

LABELS = ["kick", "snare", "side_stick", "hh_closed", "hh_pedal", "hh_open", "tom_low", "tom_mid", "tom_high",
          "crash", "ride"]
N = len(LABELS)
HOP, RATE = 240, 48000
GAP = 100  # frames between the hand-made onsets: 0.5 s, far past the double-trigger time


def _ratio(toms: float, cymbals: float) -> tuple:
    out = [0.0] * N
    for d in ("tom_low", "tom_mid", "tom_high"):
        out[LABELS.index(d)] = toms
    for d in ("crash", "ride"):
        out[LABELS.index(d)] = cymbals
    return tuple(out)


def _rows(*rows: dict) -> np.ndarray:
    probs = np.zeros((len(rows), N))
    for i, row in enumerate(rows):
        for drum, p in row.items():
            probs[i, LABELS.index(drum)] = p
    return probs


def _hits(probs: np.ndarray, second_ratio=(), thresholds=0.3, refractory_s=0.03) -> list:
    """The hits a decoder (each onset alone) gives for these probability rows, one onset every GAP frames."""
    decoder = HitDecoder(LABELS, DecoderParams((thresholds,) * N, second_ratio=second_ratio,
                                               refractory_s=refractory_s),
                         hop_samples=HOP, sample_rate_hz=RATE, onset_offset_frames=0, frames_after=0)
    onsets = tuple(GAP * (i + 1) for i in range(len(probs)))
    return decoder.process(ScoredOnsets(GAP * (len(probs) + 1), onsets, probs, None, np.full(probs.shape, -20.0)))


def _row_of(hit) -> int:
    """The row of the hand-made probabilities a hit comes from."""
    return round(hit.onset_s * RATE / HOP / GAP) - 1


def _decode(probs: np.ndarray, second_ratio=(), thresholds=0.3) -> list:
    """(row, drum) of the hits a decoder (each onset alone) gives for these probability rows."""
    return sorted((_row_of(h), h.drum) for h in _hits(probs, second_ratio, thresholds))


TOMS = _rows({"tom_low": 0.9, "tom_mid": 0.6, "tom_high": 0.5},  # a chord the network doubts: tom_low alone
             {"tom_low": 0.9, "tom_mid": 0.8},  # both clearly there: both
             {"tom_mid": 0.25, "tom_low": 0.2},  # neither passes its threshold
             {"tom_high": 0.5, "tom_mid": 0.45})  # the second within 10 %


def test_a_second_tom_only_where_it_comes_near_the_likeliest():
    assert _decode(TOMS, _ratio(0.85, 0.0)) == [(0, "tom_low"), (1, "tom_low"), (1, "tom_mid"), (3, "tom_high"),
                                                (3, "tom_mid")]
    # ratio 1: one tom an onset (a tie apart)
    assert _decode(TOMS, _ratio(1.0, 0.0)) == [(0, "tom_low"), (1, "tom_low"), (3, "tom_high")]
    # no rule (the checkpoints from before it): every tom over its threshold, the chord of three too
    assert _decode(TOMS) == _decode(TOMS, _ratio(0.0, 0.0)) == [
        (0, "tom_high"), (0, "tom_low"), (0, "tom_mid"), (1, "tom_low"), (1, "tom_mid"), (3, "tom_high"),
        (3, "tom_mid")]


def test_crash_and_ride_are_judged_against_each_other_and_other_drums_are_not():
    probs = _rows({"crash": 0.5, "ride": 0.7, "kick": 0.9, "snare": 0.4},  # ride wins; kick and snare untouched
                  {"crash": 0.6, "ride": 0.62},  # both clearly there
                  {"crash": 0.8, "tom_low": 0.35, "ride": 0.31})  # crash wins; the tom is no rival of a cymbal
    assert _decode(probs, _ratio(0.0, 0.9)) == [(0, "kick"), (0, "ride"), (0, "snare"), (1, "crash"), (1, "ride"),
                                                (2, "crash"), (2, "tom_low")]
    assert _decode(probs) == [(0, "crash"), (0, "kick"), (0, "ride"), (0, "snare"), (1, "crash"), (1, "ride"),
                              (2, "crash"), (2, "ride"), (2, "tom_low")]


def _candidates(probs: np.ndarray) -> list:
    """What the tuner collects of these rows (tune_thresholds._candidates): the decoder's hits at thresholds 0.05,
    without the rule or the double-trigger time."""
    return _hits(probs, (), 0.05, 0.0)


@pytest.mark.parametrize("ratio", [(0.0, 0.0), (0.85, 0.9), (1.0, 0.5), (0.5, 1.0)])
def test_the_tuner_decides_as_the_decoder(ratio):
    """offline.tune_thresholds.decide, on the candidates, keeps what the decoder keeps at the same rule."""
    rng = np.random.default_rng(3)
    probs = np.where(rng.random((60, N)) < 0.4, rng.random((60, N)), 0.0)
    index = {d: i for i, d in enumerate(LABELS)}
    kept = T.decide(_candidates(probs), index, np.full(N, 0.3), 0.03, second_ratio=np.asarray(_ratio(*ratio)))
    got = _decode(probs, _ratio(*ratio))
    assert sorted((_row_of(h), h.drum) for h in kept) == got
    if ratio != (0.0, 0.0):
        assert len(got) < len(_decode(probs))  # the rule dropped some


def test_the_rule_is_a_checked_typed_setting():
    with pytest.raises(ValueError, match="second_ratio"):
        DecoderParams((0.5,) * N, second_ratio=(1.5,) * N)
    with pytest.raises(ValueError, match="second.ratio"):  # one value per drum
        HitDecoder(LABELS, DecoderParams((0.5,) * N, second_ratio=(0.5,) * 3), hop_samples=HOP, sample_rate_hz=RATE,
                   onset_offset_frames=0, frames_after=0)
    with pytest.raises(ValueError, match="second_ratio"):
        ContextParams(second_ratio=(0.5, -0.1))
    assert ContextParams(second_ratio=(0.5,) * N).as_dict()["second_ratio"] == [0.5] * N
    # stored beside a checkpoint: each onset alone in extra["second_ratio"], the context's in its own settings
    stored = DecodingParams.of_stored([0.5] * N, 0.0, {"second_ratio": list(_ratio(1.0, 0.7))})
    assert stored.second_ratio == pytest.approx(_ratio(1.0, 0.7))
    assert DecodingParams.of_stored([0.5] * N, 0.0, {}).second_ratio == ()
    for bad in ([0.5] * 3, ["x"] * N, [2.0] * N, 0.5):
        with pytest.raises(ValueError, match="second_ratio"):
            DecodingParams.of_stored([0.5] * N, 0.0, {"second_ratio": bad})


def test_decoder_params_of_a_checkpoint_take_the_context_s_rule_else_its_own():
    checkpoint = SimpleNamespace(labels=LABELS, thresholds=[0.5] * N,
                                 decoding=DecodingParams.of_stored([0.5] * N, 0.0,
                                                                   {"second_ratio": list(_ratio(1.0, 0.0))}))
    assert DecoderParams.of(checkpoint).second_ratio == pytest.approx(_ratio(1.0, 0.0))
    assert DecoderParams.of(checkpoint, ContextParams()).second_ratio == pytest.approx(_ratio(1.0, 0.0))
    context = ContextParams(second_ratio=_ratio(0.8, 0.7))
    assert DecoderParams.of(checkpoint, context).second_ratio == pytest.approx(_ratio(0.8, 0.7))
    old = copy.copy(checkpoint)
    old.decoding = DecodingParams.of_stored([0.5] * N, 0.0, {})
    assert DecoderParams.of(old).second_ratio == ()


def _track(rows: list, toms_played: list) -> tuple:
    """A tuning track of hand-made candidate rows (one onset every GAP frames), whose reference plays
    `toms_played[i]` (a list of toms) at onset i: classes and the drums."""
    hits = T.Candidates(_candidates(_rows(*rows)))
    second = GAP * HOP / RATE
    times = {d: [second * (i + 1) for i, played in enumerate(toms_played) if d in played]
             for d in ("tom_low", "tom_mid", "tom_high", "crash", "ride")}
    hits.drums = {d: np.asarray(t) for d, t in times.items()}
    return hits, {"TT": np.asarray(sorted({second * (i + 1) for i, p in enumerate(toms_played) if p}))}, 0.03


def test_the_tuner_chooses_the_rule_the_drums_ask_for():
    """One floor tom the network doubts (a second tom at 0.6-0.7 of the likeliest's): the tuned ratio drops the
    chords; real chords (both toms played, the second at 0.8-0.9): a ratio that keeps them."""
    doubted = _track([{"tom_low": 0.9, "tom_mid": 0.6}, {"tom_low": 0.8, "tom_mid": 0.52},
                      {"tom_low": 0.7, "tom_high": 0.42}] * 4, [["tom_low"]] * 12)  # seconds at 0.60-0.67
    chords = _track([{"tom_low": 0.9, "tom_mid": 0.8}, {"tom_low": 0.8, "tom_high": 0.7}] * 4,
                    [["tom_low", "tom_mid"], ["tom_low", "tom_high"]] * 4)  # seconds at 0.88-0.89
    thresholds = np.full(N, 0.3)
    toms = LABELS.index("tom_low")
    ratio = T.tune_rivals([doubted], LABELS, thresholds)
    assert ratio[toms] > 0.67
    rows = T.drum_rows([doubted], LABELS, ["tom_low", "tom_mid", "tom_high"], thresholds, second_ratio=ratio)
    assert rows["all"]["n_est"] == 12 and rows["all"]["f"] == pytest.approx(1.0)
    ratio = T.tune_rivals([chords], LABELS, thresholds)
    assert ratio[toms] <= 0.8
    assert T.drum_rows([chords], LABELS, ["tom_low", "tom_mid", "tom_high"], thresholds,
                       second_ratio=ratio)["all"]["f"] == pytest.approx(1.0)
    # both: the chords outweigh nothing they need, so the doubted seconds go and the chords stay
    ratio = T.tune_rivals([doubted, chords], LABELS, thresholds)
    assert 0.67 < ratio[toms] < 0.88
    # the class score cannot tell: two toms at an onset are one TT stroke
    assert T.pooled([doubted], LABELS, thresholds)["F5"]["f"] == pytest.approx(
        T.pooled([doubted], LABELS, thresholds, second_ratio=ratio)["F5"]["f"])


def test_subclass_annotations_give_the_rival_drums(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text("0.5 \t LFT\n1.0\tTMB\n1.5\tRDC\n2.0\tCRC\n2.5\tHIT\n3.0\tRDB\n")
    drums = T.load_drum_reference(path)
    assert list(drums["tom_low"]) == [0.5] and list(drums["tom_high"]) == [2.5] and len(drums["tom_mid"]) == 0
    assert list(drums["ride"]) == [1.5, 3.0] and list(drums["crash"]) == [2.0]
    path.write_text("0.5\n")
    with pytest.raises(ValueError, match="line 1"):
        T.load_drum_reference(path)


def test_a_checkpoint_carries_the_rule_to_its_decoder(checkpoint, tmp_path):
    """Stored in a checkpoint file (each onset alone: extra["second_ratio"]; the context's in its settings), the
    rule reaches the decoder the engine builds; a stored rule that does not fit is one CheckpointError at load."""
    from drumscribe.models.cnn import load_checkpoint, save_checkpoint
    from drumscribe.models.runtime import CheckpointError

    labels = list(checkpoint.labels)
    ratio = [1.0 if d.startswith("tom_") else 0.7 if d in ("crash", "ride") else 0.0 for d in labels]
    stored = copy.copy(checkpoint)
    stored.extra = {**checkpoint.extra, "second_ratio": ratio,
                    "context": ContextParams(second_ratio=[0.5] * len(labels)).as_dict()}
    save_checkpoint(tmp_path / "rule.pt", stored)
    loaded = load_checkpoint(tmp_path / "rule.pt")
    assert HitDecoder.for_checkpoint(loaded).params.second_ratio == pytest.approx(ratio)
    context = ContextParams(**loaded.decoding.context)
    assert HitDecoder.for_checkpoint(loaded, context=context).params.second_ratio == pytest.approx([0.5] * len(labels))
    assert "second_ratio" not in loaded.training  # a decoding setting, not the training record
    stored.extra = {**checkpoint.extra, "second_ratio": [0.5] * 3}
    save_checkpoint(tmp_path / "bad.pt", stored)
    with pytest.raises(CheckpointError, match="second_ratio"):
        load_checkpoint(tmp_path / "bad.pt")
