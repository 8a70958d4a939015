"""Kit profiles (realtime.profile, drumscribe calibrate): the checks on load, the split of a take into its drums,
and (slow) a profile from a take rendered on a held-out kit, used on a groove of the same kit."""
import json
import subprocess
import sys

import numpy as np
import pytest

from drumscribe.realtime.profile import (
    PROFILE_VERSION,
    CalibrationError,
    ProfileError,
    load_profile,
    profile_from_dict,
    split_take,
)


def _profile(**changes) -> dict:
    labels = ["kick", "snare"]
    data = {"drumscribe_kit_profile": PROFILE_VERSION, "take": "t.wav", "sequence": ["kick", "snare"],
            "drums": {"kick": {"hits": 8, "level_db": -20.0, "velocity_offset_db": 0.0}},
            "models": {"abc": {"name": "m", "labels": labels, "embedding": False, "mean": [0.0] * 5,
                               "scale": [1.0] * 5, "weights": {"kick": [1.0, 0.0, 0.0, 0.0, 0.0]},
                               "bias": {"kick": 0.0}, "thresholds": {"kick": 0.5}}}}
    data.update(changes)
    return data


def test_a_good_profile_loads():
    profile = profile_from_dict(_profile(), "p.json")
    assert profile.sequence == ("kick", "snare")
    head = profile.heads["abc"]
    q = head.probabilities(np.array([[0.9, 0.1], [0.1, 0.9]]), None, np.zeros((2, 2)))
    assert q[0, 0] > 0.5 > q[1, 0]


@pytest.mark.parametrize("changes, said", [
    ({"drumscribe_kit_profile": 99}, "version 1"),
    ({"sequence": ["kick", "cowbell"]}, "unknown drum 'cowbell'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"drums": {"kick": {"velocity_offset_db": "loud"}}}, "velocity_offset_db"),
    ({"models": {}}, "'models'"),
])
def test_a_bad_profile_is_one_line(changes, said):
    with pytest.raises(ProfileError) as exc:
        profile_from_dict(_profile(**changes), "p.json")
    assert said in str(exc.value) and "\n" not in str(exc.value)


def test_a_head_of_the_wrong_width_is_refused():
    data = _profile()
    data["models"]["abc"]["mean"] = [0.0] * 4
    with pytest.raises(ProfileError, match="numbers alike"):
        profile_from_dict(data, "p.json")


def test_a_missing_or_broken_file_is_one_line(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProfileError, match="cannot be read as JSON"):
        load_profile(tmp_path / "bad.json")


def _times(counts, spacing=0.5, pause=2.5):
    out, t = [], 0.0
    for n in counts:
        out += [t + k * spacing for k in range(n)]
        t = out[-1] + pause
    return np.array(out)


def test_split_take_by_the_long_pauses_tolerates_a_missed_or_extra_stroke():
    groups = split_take(_times([8, 7, 9]), ["kick", "snare", "ride"], 8)
    assert [(d, len(i)) for d, i in groups] == [("kick", 8), ("snare", 7), ("ride", 9)]


def test_split_take_says_which_group_is_wrong():
    with pytest.raises(CalibrationError, match=r"group 2 \(snare"):
        split_take(_times([8, 1, 8]), ["kick", "snare", "ride"], 8)
    with pytest.raises(CalibrationError, match="pauses between drums"):
        split_take(_times([8, 8], pause=0.6), ["kick", "snare"], 8)


def test_calibrate_cli_bad_sequence_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "drumscribe", "calibrate", str(tmp_path / "t.wav"), "--sequence",
                          "kick,cowbell", "-o", str(tmp_path / "k.json")], capture_output=True, text=True)
    assert run.returncode == 1
    assert "'cowbell' is not a drum" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "k.json").exists()


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="open: on this take and groove the profile lowers F (live 0.591 -> 0.536, "
                   "file 0.726 -> 0.577: the groove's closed hi-hats become open ones); issue 32 item 3")
def test_profile_from_a_held_out_take_lifts_a_groove(tmp_path):
    """A take and a groove (another seed) rendered on the held-out Colombo kit: the profile lifts the pooled F over
    the individual drums by 0.03 at least, live and from the file. bench/calibrate.py measured +0.10 live and +0.08
    from the file on three grooves of this kit (seeds 7-9); these bars were fixed from those figures, before this
    test's own were seen. It fails today (see the xfail reason): the bars stay, the method is what must improve."""
    from drumscribe._common import load_model
    from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH
    from drumscribe.offline import calibration_check as bench
    from drumscribe.offline.render import generate_pattern, load_kit
    from drumscribe.realtime.profile import calibrate

    kit = load_kit("hydrogen:ColomboAcousticDrumkit")
    file_model, live_model = load_model(str(DEFAULT_MODEL_PATH)), load_model(str(LIVE_MODEL_PATH))
    rng = np.random.default_rng(11)
    hits, duration = generate_pattern(rng, bars=8, tempo_bpm=100, style="groove", drums_available=kit.drums)
    groove = bench.render(hits, kit, duration, rng)
    take_rng = np.random.default_rng(1011)
    take_hits, take_duration = bench.calibration_take(kit, take_rng)
    data = calibrate(bench.render(take_hits, kit, take_duration, take_rng),
                     [("hitcnn", file_model), ("hitcnn_live", live_model)], bench.SEQUENCE)
    (tmp_path / "kit.json").write_text(json.dumps(data))
    profile = load_profile(tmp_path / "kit.json")
    figures = {}
    for name, model, live in (("live", live_model, True), ("file", file_model, False)):
        for prof in (None, profile):
            found = bench.transcribe(groove, model, live=live, profile=prof)
            figures[name, prof is not None] = bench.drum_f(hits, found)["pooled"]["f"]
    print(figures)
    assert figures["live", True] >= figures["live", False] + 0.03, figures
    assert figures["file", True] >= figures["file", False] + 0.03, figures


def _head_profile(checkpoint, *, bias: float = 0.0) -> dict:
    """A profile whose head for `checkpoint` has zero weights (it decides as the network) and `bias` on kick."""
    from drumscribe.realtime.profile import model_key

    labels = list(checkpoint.labels)
    width = 2 * len(labels) + 1
    drums = [d for d in labels if d in ("kick", "snare")]
    return _profile(sequence=drums, models={model_key(checkpoint): {
        "name": "test", "labels": labels, "embedding": False, "mean": [0.0] * width, "scale": [1.0] * width,
        "weights": {d: [0.0] * width for d in drums}, "bias": {d: bias if d == "kick" else 0.0 for d in drums},
        "thresholds": {d: checkpoint.thresholds[labels.index(d)] for d in drums}}})


def _live_hits(checkpoint, audio, profile=None) -> list:
    from drumscribe.realtime.engine import Engine
    from drumscribe.realtime.live import build_live_stages
    from drumscribe.realtime.sinks import CollectSink
    from drumscribe.realtime.sources import ArraySource

    collected = CollectSink()
    Engine(build_live_stages(checkpoint, profile=profile), [collected]).run(ArraySource(audio,
                                                                                        block_size_samples=512))
    return [(round(h.onset_s, 6), h.drum, h.velocity) for h in collected]


def test_a_head_of_zero_weights_decides_as_the_network_and_its_bias_acts():
    from drumscribe._common import load_model
    from drumscribe.models import LIVE_MODEL_PATH
    from drumscribe.realtime.sources import FileSource

    checkpoint = load_model(str(LIVE_MODEL_PATH))
    audio = np.concatenate(list(FileSource("examples/example.mp3", block_size_samples=48000)))[: 48000 * 8]
    plain = _live_hits(checkpoint, audio)
    assert plain == _live_hits(checkpoint, audio, profile_from_dict(_head_profile(checkpoint), "zero"))
    louder = _live_hits(checkpoint, audio, profile_from_dict(_head_profile(checkpoint, bias=8.0), "bias"))
    kicks = [h for h in louder if h[1] == "kick"]
    assert len(kicks) > 2 * sum(h[1] == "kick" for h in plain), (len(kicks), len(plain))


def test_a_profile_of_another_model_is_refused_in_one_line():
    from drumscribe._common import load_model
    from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH

    profile = profile_from_dict(_head_profile(load_model(str(LIVE_MODEL_PATH))), "kit.json")
    with pytest.raises(ProfileError, match="was not calibrated with this model"):
        profile.head_for(load_model(str(DEFAULT_MODEL_PATH)))
