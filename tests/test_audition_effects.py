"""Effect presets: every shipped preset loads and processes; a chain streamed in blocks of any size equals the same
chain on the whole buffer and equals pedalboard's own whole-buffer process() (within 1e-5), for every preset and for
every built-in plugin allowed in presets; reset() gives the same output again; bad presets fail on load with one
line naming the bad key and the valid ones. The input is real: a groove played on a Hydrogen kit."""
from __future__ import annotations

import json

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.effects import (
    STREAMING_PLUGINS,
    EffectChain,
    EffectsError,
    available_presets,
    load_preset,
    plugin_parameters,
)
from drumscribe.realtime.kits import load_hydrogen_kit
from drumscribe.realtime.sampler import NoteBlock, Sampler

from conftest import find_kit, groove_events

SR = SAMPLE_RATE_HZ
TOLERANCE = 1e-5
SHIPPED = ("arena", "dry", "dub", "gated", "lo-fi", "room", "studio")


@pytest.fixture(scope="session")
def drums():
    """About 2.5 s of a groove on The Black Pearl, stereo, peak 0.9."""
    from drumscribe.realtime.drums import load_drum_map

    kit = load_hydrogen_kit(find_kit())
    gm = load_drum_map()
    events = [e for e in groove_events() if e[0] < 2.3]
    total = int(2.5 * SR)
    notes = tuple((int(round(t * SR)), gm.note(d), v) for t, d, v in events)
    audio = Sampler(kit, gm).process(NoteBlock(total, notes))
    return (audio * (0.9 / np.abs(audio).max())).astype(np.float32)


def stream(chain: EffectChain, audio: np.ndarray, sizes) -> np.ndarray:
    """Feed `audio` in blocks whose sizes cycle through `sizes`."""
    chain.reset()
    out, i, k = [], 0, 0
    while i < audio.shape[1]:
        size = sizes[k % len(sizes)]
        out.append(chain.process(audio[:, i : i + size]))
        i, k = i + size, k + 1
    return np.concatenate(out, axis=1)


BLOCKINGS = {"1": [1], "64": [64], "65": [65], "128": [128], "1000": [1000], "4096": [4096],
             "irregular": [7, 300, 64, 1, 2, 3, 8192, 100, 20000]}


def test_the_shipped_presets_are_there_and_described():
    assert set(SHIPPED) <= set(available_presets())
    for name in available_presets():
        preset = load_preset(name)
        assert len(preset.description) > 20, name


@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_processes(name, drums):
    out = EffectChain(load_preset(name)).process(drums)
    assert out.shape == drums.shape and out.dtype == np.float32 and np.isfinite(out).all()
    if name != "dry":
        assert np.abs(out - drums).max() > 0.01  # it does something
    else:
        assert np.array_equal(out, drums)


def test_presets_sound_different(drums):
    """Six presets on purpose unlike each other: spectra (1/3-octave-ish bands) differ pairwise by > 1 dB RMS."""
    def bands(audio):
        spectrum = np.abs(np.fft.rfft(audio.mean(axis=0))) ** 2
        edges = np.geomspace(40, 20000, 25) * len(spectrum) / (SR / 2)
        return 10 * np.log10([spectrum[int(a) : int(b)].sum() + 1e-12 for a, b in zip(edges, edges[1:])])

    shapes = {n: bands(EffectChain(load_preset(n)).process(drums)) for n in SHIPPED}
    for a in SHIPPED:
        for b in SHIPPED:
            if a < b:
                da, db = shapes[a] - shapes[a].max(), shapes[b] - shapes[b].max()
                assert np.sqrt(np.mean((da - db) ** 2)) > 1.0, (a, b)


@pytest.mark.parametrize("blocking", list(BLOCKINGS))
@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "dry"])
def test_streaming_equals_whole(name, blocking, drums):
    audio = drums[:, : SR // 4] if blocking == "1" else drums  # one sample at a time on a quarter second
    chain = EffectChain(load_preset(name))
    whole = chain.process(audio)
    streamed = stream(chain, audio, BLOCKINGS[blocking])
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() <= TOLERANCE
    # and both equal pedalboard's own whole-buffer processing of a fresh chain
    reference = pedalboard.Pedalboard(load_preset(name).build()).process(audio, float(SR))
    assert np.abs(whole - reference).max() <= TOLERANCE


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "dry"])
def test_same_output_after_reset(name, drums):
    chain = EffectChain(load_preset(name))
    first = stream(chain, drums, [128])
    chain.process(np.ones((2, 5000), np.float32))  # leave tails, delay lines and LFOs somewhere else
    assert np.array_equal(stream(chain, drums, [128]), first)


# ---------------------------------------------------------------------------------------------------------------
# every built-in plugin a preset may use, measured


def _plugin_preset(tmp_path, plugin: str):
    entry = {"plugin": plugin}
    if plugin == "Convolution":  # a small decaying noise room, written next to the preset
        rng = np.random.default_rng(3)
        ir = (rng.normal(0, 1, (4800, 2)) * np.exp(-np.arange(4800) / 800)[:, None] * 0.05).astype(np.float32)
        sf.write(str(tmp_path / "ir.wav"), ir, SR, subtype="FLOAT")
        entry["impulse_response_filename"] = "ir.wav"
    path = tmp_path / f"{plugin}.json"
    path.write_text(json.dumps({"description": plugin, "plugins": [entry]}))
    return load_preset(path)


@pytest.mark.parametrize("plugin", STREAMING_PLUGINS)
def test_every_allowed_plugin_streams(plugin, drums, tmp_path):
    preset = _plugin_preset(tmp_path, plugin)
    chain = EffectChain(preset)
    whole = chain.process(drums)
    for sizes in ([64], [65], [1000], BLOCKINGS["irregular"]):
        assert np.abs(stream(chain, drums, sizes) - whole).max() <= TOLERANCE, (plugin, sizes)
    short = drums[:, :4000]
    streamed = stream(chain, short, [1])
    chain.reset()
    assert np.abs(streamed - chain.process(short)).max() <= TOLERANCE


@pytest.mark.parametrize("plugin", ["PitchShift", "MP3Compressor", "GSMFullRateCompressor", "Resample",
                                    "BrickwallLimiter"])
def test_latency_plugins_are_left_out_because_they_do_not_stream(plugin, drums):
    """Measured: primed and cleared as EffectChain does, then fed 128 samples at a time with reset=False, these
    return their output late (look-ahead, resampling or codec framing; some return short blocks), so the stream is
    not the whole-buffer result, which pedalboard latency-compensates. A preset naming one fails on load."""
    if not hasattr(pedalboard, plugin):
        pytest.skip(f"pedalboard {pedalboard.__version__} has no {plugin}")
    audio = drums[:, :SR]
    instance = getattr(pedalboard, plugin)()
    instance.process(np.zeros((2, 8192), np.float32), float(SR), reset=True)
    instance.process(np.zeros((2, 0), np.float32), float(SR), reset=True)
    blocks = [instance.process(audio[:, i : i + 128], float(SR), reset=False) for i in range(0, SR, 128)]
    streamed = np.concatenate([b.reshape(2, -1) for b in blocks], axis=1)
    streamed = np.pad(streamed, ((0, 0), (0, max(0, SR - streamed.shape[1]))))[:, :SR]
    whole = getattr(pedalboard, plugin)().process(audio, float(SR))
    assert np.abs(streamed - whole).max() > 1e-3
    assert plugin not in STREAMING_PLUGINS


# ---------------------------------------------------------------------------------------------------------------
# bad presets


def _write_preset(tmp_path, data, name="x.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), errors="surrogateescape")
    return path


BAD_PRESETS = {
    "unknown plugin": ({"plugins": [{"plugin": "Reverbb"}]}, "plugin 'Reverbb' is not one of: Bitcrush, Chorus"),
    "unknown parameter": ({"plugins": [{"plugin": "Reverb", "roomsize": 0.5}]},
                          "parameter 'roomsize' is not one of: damping, dry_level, freeze_mode, room_size"),
    "bad JSON": ('{"plugins": [{"plugin": "Reverb",}]}', "is not valid JSON"),
    "not an object": ("[1, 2]", "must be a JSON object"),
    "unknown top-level key": ({"plugin": []}, "key 'plugin' is not one of: name, description, plugins"),
    "plugins not a list": ({"plugins": {"plugin": "Gain"}}, "'plugins' must be a list"),
    "entry without a name": ({"plugins": [{"gain_db": 3}]}, "must be an object with a \"plugin\" name"),
    "value not a number": ({"plugins": [{"plugin": "Gain", "gain_db": "loud"}]}, "\"loud\" is not a number"),
    "bad enum": ({"plugins": [{"plugin": "LadderFilter", "mode": "LPF48"}]}, "\"LPF48\" is not one of: LPF12"),
    "out of range": ({"plugins": [{"plugin": "Reverb", "room_size": 7}]}, "plugin 1 (Reverb)"),
    "latency plugin": ({"plugins": [{"plugin": "PitchShift", "semitones": 2}]}, "plugin 'PitchShift' is not one of"),
    "missing impulse response": ({"plugins": [{"plugin": "Convolution", "impulse_response_filename": "no.wav"}]},
                                 "no.wav' does not exist"),
    "VST3 without a path": ({"plugins": [{"plugin": "VST3", "mix": 0.5}]}, "needs a \"path\""),
    "VST3 that is not there": ({"plugins": [{"plugin": "VST3", "path": "/nowhere/Verb.vst3"}]},
                               "'/nowhere/Verb.vst3' does not exist"),
    "VST3 that is not a plugin": ({"plugins": [{"plugin": "VST3", "path": "x.json"}]}, "cannot be loaded as a plugin"),
    # values pedalboard takes but that blow up or make no sense: the range is checked on load
    "Gain 1000 dB": ({"plugins": [{"plugin": "Gain", "gain_db": 1000}]},
                     "plugin 1 (Gain) parameter 'gain_db': 1000 is outside the allowed range -96 to 48 dB"),
    "high-pass above Nyquist": ({"plugins": [{"plugin": "Reverb"}, {"plugin": "HighpassFilter",
                                                                     "cutoff_frequency_hz": 30000}]},
                                "plugin 2 (HighpassFilter) parameter 'cutoff_frequency_hz': 30000 is outside the "
                                "allowed range 10 to 20000 Hz"),
    "Phaser feedback 1.5": ({"plugins": [{"plugin": "Phaser", "feedback": 1.5}]},
                            "parameter 'feedback': 1.5 is outside the allowed range -0.95 to 0.95"),
    "negative attack": ({"plugins": [{"plugin": "Compressor", "attack_ms": -5}]},
                        "parameter 'attack_ms': -5 is outside the allowed range 0 to 1000 ms"),
    "NaN": ('{"plugins": [{"plugin": "Gain", "gain_db": NaN}]}', "parameter 'gain_db': NaN is not a number"),
    "Infinity": ('{"plugins": [{"plugin": "Gain", "gain_db": -Infinity}]}', "-Infinity is not a number"),
    "number too large for a float": ('{"plugins": [{"plugin": "Gain", "gain_db": 1e999}]}', "is not a number"),
    "wrong type": ({"plugins": [{"plugin": "Reverb", "freeze_mode": True}]}, "true is not a number"),
    "number as a string": ({"plugins": [{"plugin": "Gain", "gain_db": "6"}]}, "\"6\" is not a number"),
    "no plugins key": ({"name": "oops", "description": "no chain at all"}, "has no 'plugins' list"),
    "empty file": ("", "is not valid JSON"),
    "not UTF-8": ("\udcff", "is not valid JSON (it is not UTF-8 text)"),
    "nested too deep": ("[" * 100000 + "]" * 100000, "is not valid JSON"),
    "integer too long": ('{"plugins": [{"plugin": "Gain", "gain_db": ' + "9" * 5000 + "}]}", "is not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_PRESETS))
def test_bad_presets_fail_on_load_with_one_line(case, tmp_path):
    data, expected = BAD_PRESETS[case]
    path = _write_preset(tmp_path, data)
    with pytest.raises(EffectsError) as info:
        load_preset(path)
    message = str(info.value)
    assert message.startswith("effects preset 'x.json'"), message
    assert expected in message, message
    assert "\n" not in message


def test_a_preset_that_is_a_fifo_fails_at_once(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(EffectsError, match=r"effects preset '.*pipe.json' is not a regular file, expected a .json"):
        load_preset(tmp_path / "pipe.json")


def test_every_number_parameter_has_a_range_that_holds_pedalboards_default_and_the_shipped_values():
    """A pedalboard that adds a parameter fails here rather than letting any value through; the defaults and
    every shipped preset lie inside the ranges; both ends of every range load and give finite audio."""
    from drumscribe.realtime.effects import PARAMETER_RANGES

    rng = np.random.default_rng(5)
    loud = np.clip(rng.normal(0, 0.5, (2, SR // 2)), -1, 1).astype(np.float32)
    for plugin in STREAMING_PLUGINS:
        numbers = {k for k, t in plugin_parameters(plugin).items() if t in ("float", "Optional[float]")}
        assert set(PARAMETER_RANGES.get(plugin, {})) == numbers, plugin
        instance = getattr(pedalboard, plugin)() if plugin != "Convolution" else None
        for key, (low, high) in PARAMETER_RANGES.get(plugin, {}).items():
            assert low < high, (plugin, key)
            if instance is not None:
                default = getattr(instance, key)
                assert low <= default <= high, (plugin, key, default)
            if plugin == "Convolution":
                continue
            for value in (low, high):
                out = getattr(pedalboard, plugin)(**{key: value}).process(loud, float(SR))
                assert np.isfinite(out).all(), (plugin, key, value)
    assert set(PARAMETER_RANGES) <= set(STREAMING_PLUGINS)
    for name in SHIPPED:
        load_preset(name)  # raises on a value out of range


def test_unknown_preset_name_lists_the_presets():
    with pytest.raises(EffectsError, match=r"effects preset 'warehouse' is not one of: arena, dry, dub, gated"):
        load_preset("warehouse")


def test_parameters_are_read_from_pedalboard():
    assert set(plugin_parameters("Compressor")) == {"threshold_db", "ratio", "attack_ms", "release_ms"}
    assert plugin_parameters("LadderFilter")["mode"].endswith("LadderFilter.Mode")
    assert plugin_parameters("Invert") == {}


# ---------------------------------------------------------------------------------------------------------------
# a whole render: sampler -> effects, until the tails have died


@pytest.mark.parametrize("name", SHIPPED)
def test_render_is_the_same_whatever_the_block_size(name):
    """Same length (the tail ends at the same sample) and the same samples within 1e-5 at any block size, also for
    the echoes of a feedback delay that come after a silent gap."""
    from drumscribe.realtime.audition import render_notes
    from drumscribe.realtime.drums import load_drum_map

    kit = load_hydrogen_kit(find_kit())
    gm = load_drum_map()
    notes = [(t, gm.note(d), v) for t, d, v in groove_events() if t < 2.0]
    sizes = (128, 1000, 8192) if name == "dub" else (1000, 8192)
    renders = [render_notes(notes, Sampler(kit, gm), EffectChain(load_preset(name)), block_size_samples=size)
               for size in sizes]
    assert renders[0].shape[1] > 2.0 * SR
    for other in renders[1:]:
        assert other.shape == renders[0].shape
        assert np.abs(other - renders[0]).max() <= TOLERANCE


def test_a_render_that_overflows_is_an_error_not_a_file(tmp_path):
    """Two hits of a sample at float32's largest value sum to infinity: render_notes stops with one line naming
    the stage and the time, and write_audio refuses such audio (an existing file stays as it was)."""
    from drumscribe.realtime.audition import AuditionError, render_notes, write_audio
    from drumscribe.realtime.drums import load_drum_map
    from drumscribe.realtime.kits import Instrument, Kit, Layer

    huge = np.full(4800, np.finfo(np.float32).max, np.float32)
    kit = Kit("overflow", tmp_path, "folder", instruments={"kick": [Instrument("k", "kick", [Layer(0, 1, huge)])]})
    gm = load_drum_map()
    notes = [(0.5, gm.note("kick"), 127), (0.5, gm.note("kick"), 127)]
    with pytest.raises(AuditionError, match=r"the kit 'overflow' gives samples that are not finite numbers .* "
                                            r"from 0\.50 s on"):
        render_notes(notes, Sampler(kit, gm), EffectChain(load_preset("dry")), block_size_samples=1000)
    old = tmp_path / "old.wav"
    old.write_bytes(b"an earlier render")
    bad = np.zeros((2, 100), np.float32)
    bad[1, 50] = np.nan
    with pytest.raises(AuditionError, match="not finite"):
        write_audio(old, bad)
    assert old.read_bytes() == b"an earlier render"


def test_a_render_longer_than_an_hour_is_refused_before_any_work():
    """render_notes (what transcribe --audition runs too) refuses a note past MAX_RENDER_S at once: no hour of
    audio is made first."""
    import time

    from drumscribe.realtime.audition import MAX_RENDER_S, AuditionError, render_notes
    from drumscribe.realtime.drums import load_drum_map

    kit = load_hydrogen_kit(find_kit())
    gm = load_drum_map()
    started = time.monotonic()
    for notes, min_s in (([(0.0, 36, 100), (MAX_RENDER_S + 1, 38, 100)], 0.0), ([(0.0, 36, 100)], MAX_RENDER_S + 1)):
        with pytest.raises(AuditionError, match=r"is at 1:00:01; audition renders at most 1:00:00"):
            render_notes(notes, Sampler(kit, gm), EffectChain(load_preset("room")), min_duration_s=min_s)
    assert time.monotonic() - started < 5.0
