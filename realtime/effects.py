"""Effect presets: chains of pedalboard plugins kept as JSON data in presets/effects/, run block by block.

A preset file:

    {"name": "room", "description": "one line on what it does",
     "plugins": [{"plugin": "Compressor", "threshold_db": -18, "ratio": 3},
                 {"plugin": "Reverb", "room_size": 0.4, "wet_level": 0.2},
                 {"plugin": "VST3", "path": "~/.vst3/MyVerb.vst3", "mix": 0.3}]}

Every key of a plugin entry but "plugin" is a parameter, named as pedalboard names it (`Reverb(room_size=...)`);
"VST3" loads the user's own plugin with `pedalboard.load_plugin` (keys "path" and, for a bundle of several,
"plugin_name"), its other keys being the plugin's own parameters by name. Loading checks every name and value
(numbers against PARAMETER_RANGES) and builds the plugins, so a bad preset fails on load with one line that names
the bad key and the valid ones, or the bad value and the allowed range.

`EffectChain` runs a preset as a streaming stage: `process((channels, n) block)` with `reset=False`, whatever the
block size (1 sample and up), with no latency. The built-in plugins allowed here are the ones measured to give
the same output in blocks as on the whole buffer (tests/test_audition_effects.py); pedalboard's PitchShift,
MP3Compressor, GSMFullRateCompressor, Resample and BrickwallLimiter delay their output and return blocks of
varying length when streamed, so they are left out.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from . import SAMPLE_RATE_HZ

EFFECTS_DIR = Path(str(files("drumscribe.presets") / "effects"))
DEFAULT_PRESET = "dry"

STREAMING_PLUGINS = ("Bitcrush", "Chorus", "Clipping", "Compressor", "Convolution", "Delay", "Distortion", "Gain",
                     "HighShelfFilter", "HighpassFilter", "Invert", "LadderFilter", "Limiter", "LowShelfFilter",
                     "LowpassFilter", "NoiseGate", "PeakFilter", "Phaser", "Reverb")
"""pedalboard's built-in plugins that stream block by block exactly as they process a whole buffer."""

PARAMETER_RANGES = {
    "Bitcrush": {"bit_depth": (1, 32)},
    "Chorus": {"rate_hz": (0, 100), "depth": (0, 1), "centre_delay_ms": (1, 100), "feedback": (-0.95, 0.95),
               "mix": (0, 1)},
    "Clipping": {"threshold_db": (-60, 0)},
    "Compressor": {"threshold_db": (-100, 0), "ratio": (1, 100), "attack_ms": (0, 1000), "release_ms": (0, 5000)},
    "Convolution": {"mix": (0, 1), "sample_rate": (8000, 192000)},
    "Delay": {"delay_seconds": (0, 10), "feedback": (0, 1), "mix": (0, 1)},
    "Distortion": {"drive_db": (0, 60)},
    "Gain": {"gain_db": (-96, 48)},
    "HighShelfFilter": {"cutoff_frequency_hz": (10, 20000), "gain_db": (-36, 36), "q": (0.1, 20)},
    "HighpassFilter": {"cutoff_frequency_hz": (10, 20000)},
    "LadderFilter": {"cutoff_hz": (10, 20000), "resonance": (0, 1), "drive": (1, 100)},
    "Limiter": {"threshold_db": (-60, 0), "release_ms": (0, 5000)},
    "LowShelfFilter": {"cutoff_frequency_hz": (10, 20000), "gain_db": (-36, 36), "q": (0.1, 20)},
    "LowpassFilter": {"cutoff_frequency_hz": (10, 20000)},
    "NoiseGate": {"threshold_db": (-100, 0), "ratio": (1, 100), "attack_ms": (0, 1000), "release_ms": (0, 5000)},
    "PeakFilter": {"cutoff_frequency_hz": (10, 20000), "gain_db": (-36, 36), "q": (0.1, 20)},
    "Phaser": {"rate_hz": (0, 100), "depth": (0, 1), "centre_frequency_hz": (10, 20000), "feedback": (-0.95, 0.95),
               "mix": (0, 1)},
    "Reverb": {"room_size": (0, 1), "damping": (0, 1), "wet_level": (0, 1), "dry_level": (0, 1), "width": (0, 1),
               "freeze_mode": (0, 1)},
}
"""The values a preset may give each number parameter of a built-in plugin, inclusive. Within what pedalboard
accepts, and narrower where pedalboard takes values that blow up or make no sound (measured: Gain 1000 dB gives
infinities, a Phaser or Chorus feedback past 1 grows without bound, a high-pass above the Nyquist frequency
gives infinities, negative attack or release times and cutoffs are taken silently)."""

EXTERNAL = "VST3"
PRESET_KEYS = ("name", "description", "plugins")
PRIME_BLOCK_SAMPLES = 8192
"""EffectChain feeds blocks of at most this many samples; see EffectChain.reset for why."""


class EffectsError(ValueError):
    """An effects preset that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class PluginSpec:
    """One plugin of a preset: its pedalboard name and parameters as the preset gives them (validated)."""

    plugin: str
    parameters: tuple  # ((name, value), ...)
    path: str = ""  # VST3 only
    plugin_name: str = ""  # VST3 only


@dataclass(frozen=True)
class EffectPreset:
    name: str
    description: str
    path: Path
    plugins: tuple  # of PluginSpec

    def build(self) -> list:
        """Fresh pedalboard plugin instances for this preset (every chain owns its own)."""
        return [_build(self, i, spec) for i, spec in enumerate(self.plugins)]


def available_presets() -> list:
    return sorted(p.stem for p in EFFECTS_DIR.glob("*.json"))


def preset_path(name_or_path: str | Path) -> Path:
    """The file of a preset name ('arena') or a path to a JSON file."""
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() == ".json" or path.is_file() or "/" in str(name_or_path):
        if not path.exists():
            raise EffectsError(f"effects preset file '{path}' does not exist")
        if path.is_dir():
            raise EffectsError(f"effects preset '{path}' is a folder, expected a .json file")
        if not path.is_file():  # a FIFO or device would hang the read or make no sense
            raise EffectsError(f"effects preset '{path}' is not a regular file, expected a .json file")
        return path
    path = EFFECTS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise EffectsError(f"effects preset '{name_or_path}' is not one of: {', '.join(available_presets())} "
                           f"(or a .json file)")
    return path


def load_preset(name_or_path: str | Path = DEFAULT_PRESET) -> EffectPreset:
    """Read, check and test-build a preset, by name (presets/effects/<name>.json) or from a JSON file."""
    path = preset_path(name_or_path)
    label = f"effects preset '{path.name}'"
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EffectsError(f"{label} is not valid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise EffectsError(f"{label} is not valid JSON (it is not UTF-8 text)") from None
    except OSError as exc:
        raise EffectsError(f"{label} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # an integer too long to convert, nesting too deep
        raise EffectsError(f"{label} is not valid JSON ({_one_line(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise EffectsError(f"{label} must be a JSON object with keys: {', '.join(PRESET_KEYS)}")
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        raise EffectsError(f"{label}: key '{unknown[0]}' is not one of: {', '.join(PRESET_KEYS)}")
    if "plugins" not in data:
        raise EffectsError(f"{label} has no 'plugins' list (an empty list for no effects, as in dry.json)")
    plugins = data["plugins"]
    if not isinstance(plugins, list):
        raise EffectsError(f"{label}: 'plugins' must be a list of plugin objects, got {type(plugins).__name__}")
    for key in ("name", "description"):
        if not isinstance(data.get(key, ""), str):
            raise EffectsError(f"{label}: '{key}' must be a string")
    specs = tuple(_check_plugin(label, i, entry, path.parent) for i, entry in enumerate(plugins))
    preset = EffectPreset(name=data.get("name") or path.stem, description=data.get("description", ""), path=path,
                          plugins=specs)
    preset.build()  # values out of range (pedalboard checks them) and unloadable VST3s fail here, on load
    return preset


# ---------------------------------------------------------------------------------------------------------------
# checking and building plugins


def _plugin_class(name: str):
    import pedalboard

    return getattr(pedalboard, name)


def plugin_parameters(name: str) -> dict:
    """A built-in plugin's constructor parameters: name -> type as pedalboard documents it ('float', 'bool', ...)."""
    doc = (_plugin_class(name).__init__.__doc__ or "").splitlines()[0]
    match = re.search(r"__init__\((.*)\) -> None", doc)
    params = {}
    depth, current, parts = 0, "", []
    for ch in match.group(1) if match else "":
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    for part in parts[1:]:  # the first is self
        name_type = part.split("=")[0].strip()
        if ":" in name_type:
            pname, ptype = name_type.split(":", 1)
            params[pname.strip()] = ptype.strip()
    return params


def _check_plugin(label: str, index: int, entry, folder: Path) -> PluginSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("plugin"), str):
        raise EffectsError(f"{label}: plugin {index + 1} must be an object with a \"plugin\" name, e.g. "
                           f"{{\"plugin\": \"Reverb\", \"room_size\": 0.5}}")
    name = entry["plugin"]
    params = {k: v for k, v in entry.items() if k != "plugin"}
    if name == EXTERNAL:
        path = params.pop("path", None)
        plugin_name = params.pop("plugin_name", "") or ""
        if not isinstance(path, str) or not path:
            raise EffectsError(f"{label}: plugin {index + 1} (VST3) needs a \"path\" to the .vst3 plugin")
        resolved = Path(path).expanduser()
        if not resolved.is_absolute():
            resolved = folder / resolved
        if not resolved.exists():
            raise EffectsError(f"{label}: plugin {index + 1} (VST3): '{resolved}' does not exist")
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise EffectsError(f"{label}: plugin {index + 1} (VST3) parameter '{key}': {value!r} is not a "
                                   f"number, true/false or a string")
        return PluginSpec(EXTERNAL, tuple(params.items()), str(resolved), str(plugin_name))
    if name not in STREAMING_PLUGINS:
        raise EffectsError(f"{label}: plugin '{name}' is not one of: {', '.join(STREAMING_PLUGINS + (EXTERNAL,))}")
    known = plugin_parameters(name)
    checked = []
    for key, value in params.items():
        if key not in known:
            raise EffectsError(f"{label}: plugin {index + 1} ({name}): parameter '{key}' is not one of: "
                               f"{', '.join(sorted(known)) or 'none (it takes no parameters)'}")
        checked.append((key, _check_value(label, index, name, key, known[key], value, folder)))
    return PluginSpec(name, tuple(checked))


def _check_value(label, index, plugin, key, ptype, value, folder):
    where = f"{label}: plugin {index + 1} ({plugin}) parameter '{key}'"
    if ptype in ("float", "Optional[float]"):
        if value is None and ptype.startswith("Optional"):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise EffectsError(f"{where}: {json.dumps(value)} is not a number")
        low, high = PARAMETER_RANGES.get(plugin, {}).get(key, (-math.inf, math.inf))
        if not low <= value <= high:
            raise EffectsError(f"{where}: {value:g} is outside the allowed range {low:g} to {high:g}{_unit(key)}")
        return float(value)
    if ptype == "bool":
        if not isinstance(value, bool):
            raise EffectsError(f"{where}: {json.dumps(value)} is not true or false")
        return value
    if ptype.startswith("Union[str"):  # Convolution's impulse response: a file, relative to the preset
        if not isinstance(value, str):
            raise EffectsError(f"{where}: {json.dumps(value)} is not a file path")
        path = Path(value).expanduser()
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            raise EffectsError(f"{where}: file '{path}' does not exist")
        return str(path)
    enum = _enum_type(plugin, ptype)
    if enum is not None:
        members = list(enum.__members__)
        if value not in members:
            raise EffectsError(f"{where}: {json.dumps(value)} is not one of: {', '.join(members)}")
        return value
    raise EffectsError(f"{where}: parameters of type {ptype} are not supported in presets")


def _unit(parameter: str) -> str:
    for suffix, unit in (("_db", " dB"), ("_hz", " Hz"), ("_ms", " ms"), ("_seconds", " s"), ("sample_rate", " Hz")):
        if parameter.endswith(suffix):
            return unit
    return ""


def _enum_type(plugin: str, ptype: str):
    """The pybind enum class of a parameter type like 'pedalboard_native.LadderFilter.Mode', or None."""
    owner = _plugin_class(plugin)
    tail = ptype.split(".")[-1]
    candidate = getattr(owner, tail, None)
    return candidate if candidate is not None and hasattr(candidate, "__members__") else None


def _build(preset: EffectPreset, index: int, spec: PluginSpec):
    label = f"effects preset '{preset.path.name}': plugin {index + 1} ({spec.plugin})"
    if spec.plugin == EXTERNAL:
        return _load_external(label, spec)
    cls = _plugin_class(spec.plugin)
    kwargs = {}
    for key, value in spec.parameters:
        enum = _enum_type(spec.plugin, plugin_parameters(spec.plugin)[key])
        kwargs[key] = getattr(enum, value) if enum is not None else value
    try:
        return cls(**kwargs)
    except Exception as exc:  # pedalboard checks ranges: ValueError, RuntimeError, TypeError
        raise EffectsError(f"{label}: {_one_line(exc)}") from None


def _load_external(label: str, spec: PluginSpec):
    import pedalboard

    try:
        plugin = pedalboard.load_plugin(spec.path, plugin_name=spec.plugin_name or None)
    except Exception as exc:  # ImportError (not a plugin), ValueError (several plugins in a bundle), ...
        raise EffectsError(f"{label}: '{spec.path}' cannot be loaded as a plugin ({_one_line(exc)})") from None
    names = sorted(plugin.parameters)
    for key, value in spec.parameters:
        if key not in plugin.parameters:
            raise EffectsError(f"{label}: parameter '{key}' is not one of: {', '.join(names) or 'none'}")
        try:
            setattr(plugin, key, value)
        except Exception as exc:
            raise EffectsError(f"{label}: parameter '{key}' = {value!r}: {_one_line(exc)}") from None
    return plugin


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------------------------------------------------------
# the streaming stage


class EffectChain:
    """A preset as a streaming stage: `process((channels, n) float32 block) -> (channels, n)`, plugins in order.

    `latency_samples` is what external plugins report (built-in ones add none): a render trims that much.
    """

    def __init__(self, preset: EffectPreset, *, sample_rate_hz: int = SAMPLE_RATE_HZ, channels: int = 2):
        import pedalboard

        if channels < 1:
            raise EffectsError(f"channels {channels} must be >= 1")
        self.preset = preset
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        plugins = preset.build()
        self.board = pedalboard.Pedalboard(plugins) if plugins else None
        self.latency_samples = int(sum(getattr(p, "reported_latency_samples", 0) or 0 for p in plugins))
        self.reset()

    def reset(self) -> None:
        """Clear every plugin's state (tails, delay lines, LFO phases).

        pedalboard re-prepares a plugin, which clears its state, whenever a block is longer than every block
        before it, and it guesses which axis is channels from the shape (a (2, 1) block reads as two samples of
        one channel). So the chain is primed once with a long block of silence, which fixes the channel layout
        and the largest block, and then cleared with an empty one; later blocks are fed at most that long.
        """
        import numpy as np

        if self.board is None:
            return
        rate = float(self.sample_rate_hz)
        self.board.reset()
        self.board.process(np.zeros((self.channels, PRIME_BLOCK_SAMPLES), np.float32), rate, reset=True)
        self.board.process(np.zeros((self.channels, 0), np.float32), rate, reset=True)

    def process(self, block):
        """(channels, n) float32 in, the same shape out; numpy is imported with the first chain (the command line
        imports this module to show its defaults)."""
        import numpy as np

        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"EffectChain.process takes ({self.channels}, n_samples) blocks, got {block.shape}")
        if self.board is None or block.shape[1] == 0:
            return block.copy()
        rate = float(self.sample_rate_hz)
        outputs = []
        for start in range(0, block.shape[1], PRIME_BLOCK_SAMPLES):
            chunk = np.ascontiguousarray(block[:, start : start + PRIME_BLOCK_SAMPLES])
            out = self.board.process(chunk, rate, reset=False)
            if out.shape != chunk.shape:
                raise EffectsError(f"effects preset '{self.preset.path.name}': a plugin returned {out.shape[-1]} "
                                   f"samples for {chunk.shape[1]}; it cannot run block by block")
            outputs.append(out)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)
