"""The one-shot generator (models/generator.py, offline/generator.py, drumscribe generate): the library API, the
shipped model's quality on a few sounds (the one-shot classifier, spectral centroids, near-copies, --like a held-out
kit's snare), the command's bad input (one line, exit 1, nothing written), new names only, the loop's logic, and
inference without torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drumscribe.cli import main
from drumscribe.offline.generator import (
    GeneratorError,
    load_generator,
    spectral_centroid_hz,
    waveform_correlation,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gen():
    return load_generator()


@pytest.fixture(scope="module")
def clf():
    pytest.importorskip("torch")
    from drumscribe.models.oneshot import DEFAULT_ONESHOT_MODEL_PATH
    from drumscribe.offline.sorting import SampleClassifier

    return SampleClassifier.from_file(DEFAULT_ONESHOT_MODEL_PATH)


def classify(clf, audio, rate):
    import soxr

    return clf.classify_audio(soxr.resample(np.asarray(audio, np.float64), rate, clf.params.sample_rate_hz)).label


# -- the library API -------------------------------------------------------------------------------------------


def test_api(gen):
    assert {"kick", "snare", "hihat_closed", "hihat_open", "tom", "crash", "ride", "clap"} <= set(gen.classes)
    assert isinstance(gen.classes, tuple)
    assert 2 <= gen.n_knobs <= 8
    lo, hi = gen.knob_range
    assert lo < 0 < hi
    audio, rate = gen.generate("snare", seed=3, length_s=0.5)
    assert audio.dtype == np.float32 and audio.ndim == 1 and rate == gen.sample_rate_hz
    assert len(audio) == round(0.5 * rate)
    assert 0.5 < np.abs(audio).max() <= 1.0
    again, _ = gen.generate("snare", seed=3, length_s=0.5)
    np.testing.assert_allclose(again, audio, atol=1e-6)  # a seed gives the same sound
    other, _ = gen.generate("snare", seed=4, length_s=0.5)
    assert np.abs(other - audio).max() > 0.01
    drum, knobs = gen.encode(audio, rate)
    assert drum in gen.classes and len(knobs) == gen.n_knobs
    assert np.all((knobs >= lo) & (knobs <= hi))
    fixed, _ = gen.generate("kick", knobs=[0.0] * gen.n_knobs, seed=1)
    assert len(fixed) == rate  # length_s=1.0 by default


def test_new_sounds_from_the_prior(gen):
    """The shipped bundle draws new sounds' knobs from the VAE's prior N(0, I) (narrowed by draw_scale): the same
    for every class (the decoder's class makes the drum), not the class's training samples' spread; an old bundle's
    'class' draw still works."""
    assert gen.draw == "prior"
    np.testing.assert_allclose(gen.random_knobs("kick", np.random.default_rng(5)),
                               gen.random_knobs("snare", np.random.default_rng(5)))
    rng = np.random.default_rng(0)
    pts = np.stack([gen.random_knobs("snare", rng) for _ in range(2000)])
    assert 0.5 <= gen.draw_scale <= 1.0
    assert np.all(np.abs(pts.mean(axis=0)) < 0.1) and np.all(np.abs(pts.std(axis=0) - gen.draw_scale) < 0.1)
    old = load_generator()
    old.draw = "class"
    pts = np.stack([old.random_knobs("kick", rng) for _ in range(2000)])
    np.testing.assert_allclose(pts.mean(axis=0), old.class_mean["kick"], atol=0.1)


@pytest.mark.parametrize("call, words", [
    (lambda g: g.generate("cowbell9"), "is not one of"),
    (lambda g: g.generate("snare", knobs=[0.0]), "expected"),
    (lambda g: g.generate("snare", knobs=[99.0] * g.n_knobs), "expected a number from"),
    (lambda g: g.generate("snare", knobs=[float("nan")] * g.n_knobs), "expected a number from"),
    (lambda g: g.generate("snare", length_s=60), "out of range"),
    (lambda g: g.encode(np.zeros(100), 48000), "silent"),
])
def test_api_bad_input(gen, call, words):
    with pytest.raises(GeneratorError, match=words):
        call(gen)


def test_missing_or_bad_bundle(tmp_path):
    with pytest.raises(GeneratorError, match="does not exist"):
        load_generator(tmp_path / "none.onnx.npz")
    bad = tmp_path / "bad.onnx.npz"
    bad.write_bytes(b"not a bundle")
    with pytest.raises(GeneratorError, match="cannot be read"):
        load_generator(bad)


# -- the not-copies measure (bench/generator.py) ------------------------------------------------------------------


def test_takes_leave_out_one_recording():
    """Velocity layers that are one recording (louder, a little later) are not two takes; distinct takes are."""
    from drumscribe.offline.generator import SpectrogramParams, log_spectrogram, same_recording, typical_take_distance

    rng = np.random.default_rng(0)
    rate = SpectrogramParams().sample_rate_hz
    decay = np.exp(-np.arange(rate // 2) / (0.05 * rate))
    take_a, take_b = (rng.standard_normal(len(decay)) * decay for _ in range(2))  # two takes: other noise
    louder = 3 * take_a
    later = np.r_[np.zeros(7), 0.5 * take_a][: len(take_a)]
    assert same_recording(take_a[:4800], louder[:4800]) and same_recording(take_a[:4800], later[:4800])
    assert not same_recording(take_a[:4800], take_b[:4800])
    audio = [take_a, louder, take_b]
    names = np.array(["snare/kit__snare-1", "snare/kit__snare-2", "snare/kit__snare-3"])
    specs = np.stack([log_spectrogram(a, SpectrogramParams()) for a in audio])
    plain, n_plain = typical_take_distance(specs, names)
    apart, n_apart = typical_take_distance(specs, names, [a[:4800] for a in audio])
    assert n_plain == 3 and n_apart == 3
    assert plain < 1e-3 < apart  # layer 2 is layer 1 louder: without the check its nearest take is itself


# -- quality of the shipped model (a few sounds; bench/generator.py measures 16 a class) --------------------------


@pytest.fixture(scope="module")
def sounds(gen):
    return {c: [gen.generate(c, seed=s)[0] for s in range(4)] for c in ("kick", "snare", "hihat_closed")}


def test_classified_as_asked(gen, clf, sounds):
    labels = {c: [classify(clf, a, gen.sample_rate_hz) for a in v] for c, v in sounds.items()}
    right = sum(lab == c for c, v in labels.items() for lab in v)
    assert right >= 11, labels  # >= 0.9 of 12


def test_centroids_ordered(gen, sounds):
    mean = {c: np.mean([spectral_centroid_hz(a, gen.sample_rate_hz) for a in v]) for c, v in sounds.items()}
    assert mean["kick"] < mean["snare"] < mean["hihat_closed"], mean


def test_not_near_copies(sounds):
    corr = [waveform_correlation(v[i], v[j]) for v in sounds.values() for i in range(len(v))
            for j in range(i + 1, len(v))]
    assert np.mean(np.array(corr) < 0.95) >= 0.9, corr


def test_like_held_out_snare(gen, clf):
    """A snare of a kit the generator (and the classifier) never trained on: encoded as a snare, and variations
    around it are snares."""
    from drumscribe.offline.oneshots import kit_oneshots
    from drumscribe.realtime import SAMPLE_RATE_HZ

    shots = [s for s in kit_oneshots("hydrogen:ColomboAcousticDrumkit") if s.label == "snare"]
    if not shots:
        pytest.skip("ColomboAcousticDrumkit (hydrogen-drumkits) is not installed")
    picked = shots[:6]  # Colombo has five: two kits' snares at two and three velocities
    rng = np.random.default_rng(0)
    encoded, varied = [], []
    for shot in picked:
        drum, knobs = gen.encode(shot.audio, SAMPLE_RATE_HZ)
        encoded.append(drum)
        for s in range(3):
            k = np.clip(knobs + 0.5 * rng.standard_normal(gen.n_knobs), *gen.knob_range)
            varied.append(classify(clf, gen.generate(drum, knobs=k, seed=s)[0], gen.sample_rate_hz))
    assert encoded.count("snare") >= 0.75 * len(encoded), encoded  # the softest layer reads as a tom
    assert np.mean([v == "snare" for v in varied]) >= 0.75, varied


# -- the command -----------------------------------------------------------------------------------------------


def run(argv, capsys):
    code = main(["generate", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_writes_new_files(tmp_path, capsys):
    out = tmp_path / "new" / "kit"
    code, stdout, _ = run(["snare", "-n", 2, "-o", out, "--seed", 5, "--length-s", 0.3], capsys)
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["snare_s5_001.wav", "snare_s5_002.wav"]
    before = (out / "snare_s5_001.wav").read_bytes()
    code, _, _ = run(["snare", "-n", 1, "-o", out, "--seed", 5, "--length-s", 0.3], capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["snare_s5_001.wav", "snare_s5_001_2.wav", "snare_s5_002.wav"]
    assert (out / "snare_s5_001.wav").read_bytes() == before  # never overwritten
    import soundfile as sf

    audio, rate = sf.read(str(out / "snare_s5_002.wav"))
    assert abs(len(audio) / rate - 0.3) < 0.01
    code, stdout, _ = run(["--like", out / "snare_s5_002.wav", "-n", 2, "-o", out / "like"], capsys)
    assert code == 0 and len(list((out / "like").glob("*.wav"))) == 2
    assert "knobs" in stdout


def test_generate_knobs(tmp_path, capsys, gen):
    code, stdout, _ = run(["kick", "-o", tmp_path, "--knobs", ",".join(["0.5"] * gen.n_knobs)], capsys)
    assert code == 0 and ",".join(["0.50"] * gen.n_knobs) in stdout


@pytest.mark.parametrize("argv, words", [
    (["bogus", "-o", "{d}"], "CLASS 'bogus' is not one of"),
    (["snare", "-n", "0", "-o", "{d}"], "-n 0"),
    (["snare", "--knobs", "1,2", "-o", "{d}"], "--knobs: got 2 values"),
    (["snare", "--knobs", "0,0,0,99,0,0,0,0", "-o", "{d}"], "--knobs"),
    (["snare", "--knobs", "a,b", "-o", "{d}"], "not comma-separated numbers"),
    (["--like", "{bad}", "-o", "{d}"], "cannot be read"),
    (["--like", "{d}/missing.wav", "-o", "{d}"], "is not a file"),
    (["snare", "-o", "{file}"], "is a file; expected a folder"),
    (["snare", "--length-s", "9", "-o", "{d}"], "--length-s"),
    (["snare", "--length-s", "-1", "-o", "{d}"], "--length-s: length -1 s is out of range"),
    (["snare", "-n", "-3", "-o", "{d}"], "-n -3"),
    (["snare", "--seed", "-1", "-o", "{d}"], "--seed -1: expected a whole number"),
    (["snare", "-o", "{file}/sub"], "is not a writable folder"),
    (["--like", "{empty}", "-o", "{d}"], "cannot be read"),
    (["--like", "{silent}", "-o", "{d}"], "is silent"),
    (["snare", "--spread", "-1", "-o", "{d}"], "--spread"),
    (["snare"], "-o DIR is required"),
    ([], "give a drum CLASS or --like"),
])
def test_generate_bad_input(tmp_path, capsys, argv, words):
    import soundfile as sf

    d, bad, file = tmp_path / "out", tmp_path / "bad.wav", tmp_path / "file.txt"
    empty, silent = tmp_path / "empty.wav", tmp_path / "silent.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    empty.write_bytes(b"")
    sf.write(str(silent), np.zeros(4800), 48000)
    file.write_text("x")
    argv = [a.format(d=d, bad=bad, file=file, empty=empty, silent=silent) for a in argv]
    code, stdout, stderr = run(argv, capsys)
    assert code == 1
    assert len(stderr.strip().splitlines()) == 1 and words in stderr, stderr
    assert "Traceback" not in stderr
    assert not d.exists()  # nothing written
    assert file.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (a folder nothing can be made in)")
def test_generate_out_cannot_be_made(capsys):
    code, _, stderr = run(["snare", "-o", "/proc/drumscribe-generate-test"], capsys)
    assert code == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "-o '/proc/drumscribe-generate-test'" in stderr and "Traceback" not in stderr


def test_generate_write_fails_one_line(tmp_path, capsys, monkeypatch):
    """A write that fails (a full disk) is one line, and leaves no partial file behind."""
    import soundfile as sf

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"RIFF")  # a partial file, then the error
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sf, "write", full_disk)
    code, _, stderr = run(["snare", "-n", "2", "-o", tmp_path, "--seed", "1"], capsys)
    assert code == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "No space left on device" in stderr and "0 of 2 written" in stderr
    assert list(tmp_path.iterdir()) == []


def test_loop_without_output_device(tmp_path, capsys):
    from drumscribe._common import DrumscribeError
    from drumscribe.generate_cli import check_output_device

    try:
        check_output_device()
    except DrumscribeError:
        pass
    else:
        pytest.skip("this machine has an audio output")
    code, _, stderr = run(["snare", "--loop", "-o", tmp_path / "o"], capsys)
    assert code == 1 and "--loop: no audio output device" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_loop_logic(gen):
    from drumscribe.generate_cli import KEYS_DOWN, KEYS_UP, KNOB_STEP, KnobLoop

    sounds = [("kick", gen.class_mean["kick"]), ("snare", gen.class_mean["snare"])]
    loop = KnobLoop(gen, sounds, bpm=240, length_s=0.2, seed=1)
    beat = loop.beat_samples
    assert beat == round(0.25 * gen.sample_rate_hz)
    blocks = np.concatenate([loop.next_block(n) for n in (1, 64, 65, 4096, 2 * 2 * beat - 4226)])
    assert len(blocks) == 2 * 2 * beat  # two bars of two beats, block sizes regardless
    np.testing.assert_allclose(blocks[: len(loop.buffers[0])], loop.buffers[0])
    np.testing.assert_allclose(blocks[beat: beat + len(loop.buffers[1])], loop.buffers[1])
    assert np.abs(blocks[int(0.21 * gen.sample_rate_hz): beat]).max() == 0  # 0.2 s sounds, then silence
    old = loop.buffers
    assert loop.key(KEYS_UP[1])
    step = np.zeros(gen.n_knobs)
    step[1] = KNOB_STEP
    np.testing.assert_allclose(loop.knobs(0), np.clip(gen.class_mean["kick"] + step, *gen.knob_range))
    assert loop.buffers is not old
    assert loop.key(KEYS_DOWN[1]) and np.allclose(loop.offset, 0)
    assert not loop.key("?")
    for _ in range(100):
        loop.key(KEYS_UP[0])
    assert loop.knobs(0)[0] == pytest.approx(gen.knob_range[1])


@pytest.mark.slow
def test_generate_without_torch(tmp_path):
    """The inference install has no torch: generate runs with every torch import failing, and never tries."""
    script = REPO / "tests" / "test_torch_free.py"
    if not script.is_file():
        pytest.skip("tests/test_torch_free.py is not here")
    from tests.test_torch_free import _without_torch

    code, stdout, stderr, tried = _without_torch(["generate", "hihat_closed", "-n", "1", "-o", tmp_path,
                                                  "--seed", "1"])
    assert code == 0, stderr
    assert tried == [], tried
    assert len(list(tmp_path.glob("*.wav"))) == 1
