"""Drum sample kits: Hydrogen drumkit.xml kits, General-MIDI sf2 soundfonts, and folders of one-shots.

A kit maps each drum of the vocabulary to one or more instruments (e.g. two crashes), each a list of velocity
layers holding mono audio at the engine rate.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import SAMPLE_RATE_HZ
from .drums import DRUMS

MAX_XML_GAIN = 16.0
"""The largest gain or volume a drumkit.xml may give a layer or instrument (+24 dB; the Debian Hydrogen kits go
to 5)."""

HYDROGEN_KIT_DIRS = (Path("/usr/share/hydrogen/data/drumkits"), Path.home() / ".hydrogen/data/drums")
SF2_DIRS = (Path("/usr/share/sounds/sf2"),)

# General MIDI percussion notes and the drum each one sounds as.
GM_NOTE_DRUM = {
    35: "kick", 36: "kick", 37: "side_stick", 38: "snare", 40: "snare",
    42: "hh_closed", 44: "hh_pedal", 46: "hh_open",
    41: "tom_low", 43: "tom_low", 45: "tom_mid", 47: "tom_mid", 48: "tom_high", 50: "tom_high",
    49: "crash", 52: "crash", 55: "crash", 57: "crash", 51: "ride", 53: "ride", 59: "ride",
}

# Instrument names -> drum, tried in order; the first pattern that matches wins. None means "not a drum we use".
_NAME_RULES = [
    (r"roll|flam|clap|cowbell|tamb|shaker|maraca|conga|bongo|cajon|clave|block|snap|zap|fx|djembe|glass"
     r"|sangban|dunun|kenkeni|perc|noise|click|vox|voice|scratch|sweep|triangle|agogo|whistle|guiro|cabasa", None),
    (r"stick|rim ?click|sidestick|side stick|cross", "side_stick"),
    (r"kick|bass ?drum|bassdrum|\bbd\b|\bkd\b", "kick"),
    (r"snare|\bsd\b|\bsn\b", "snare"),
    (r"(hat|hh).*(pedal|pd\b|foot)|(pedal|foot).*(hat|hh)", "hh_pedal"),
    (r"(hat|hh).*(open|op\b|semi|swish|half|loose|free|ring)|(open|semi).*(hat|hh)|\bohh\b|\bsohh\b", "hh_open"),
    (r"hat|\bhh\b|\bchh\b|hihat", "hh_closed"),
    (r"floor|\btom.*(low|\blo\b)|low.*\btom", "tom_low"),
    (r"\btom.*(mid|\b2\b)|mid.*\btom", "tom_mid"),
    (r"\btom", "tom_high"),
    (r"ride|bell|cup", "ride"),
    (r"crash|china|splash|cymbal|\bcym", "crash"),
]


GM_RIDE_BELL = 53  # a ride in GM_NOTE_DRUM, struck on its bell


def is_bell(instrument) -> bool:
    """Whether a ride instrument is its bell: a soundfont's GM note 53 (render_sf2_kit names it 'GM 53'), or an
    instrument named bell or cup."""
    return instrument.name == f"GM {GM_RIDE_BELL}" or bool(re.search(r"bell|cup", instrument.name.lower()))


def drum_for_name(name: str):
    """The drum an instrument name stands for, or None."""
    lowered = name.lower()
    for pattern, drum in _NAME_RULES:
        if re.search(pattern, lowered):
            return drum
    return None


class KitError(ValueError):
    """A kit that cannot be loaded; the message is one line for the user."""


@dataclass
class Layer:
    min_velocity: float  # 0..1
    max_velocity: float
    audio: np.ndarray  # mono float32 at the engine rate
    gain: float = 1.0


@dataclass
class Instrument:
    name: str
    drum: str
    layers: list
    gain: float = 1.0
    choke_group: int = -1

    def layer_for(self, velocity: float, rng=None) -> Layer:
        """The velocity layer for a velocity in 0..1 (a random one of those that cover it, round robin style)."""
        covering = [layer for layer in self.layers if layer.min_velocity <= velocity <= layer.max_velocity]
        if not covering:
            covering = [min(self.layers, key=lambda layer: min(abs(layer.min_velocity - velocity),
                                                               abs(layer.max_velocity - velocity)))]
        if rng is not None and len(covering) > 1:
            return covering[rng.integers(len(covering))]
        return covering[0]


@dataclass
class Kit:
    name: str
    path: Path
    kind: str  # "hydrogen", "sf2" or "folder"
    licence: str = ""
    instruments: dict = field(default_factory=dict)  # drum -> [Instrument]

    @property
    def drums(self) -> list:
        return [d for d in DRUMS if self.instruments.get(d)]


def _read_sample(path: Path, sample_rate_hz: int) -> np.ndarray:
    """A kit sample, mono at `sample_rate_hz`; read as every audio input is (a FIFO, junk or non-finite samples
    give one line, never a hang or a render of noise)."""
    import soxr

    from .sources import AudioInputError, read_audio

    try:
        audio, rate = read_audio(path)
    except AudioInputError as exc:
        raise KitError(f"kit sample: {' '.join(str(exc).split())}") from None
    mono = audio.mean(axis=1)
    if rate != sample_rate_hz and len(mono) > 16:
        mono = soxr.resample(mono, rate, sample_rate_hz).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _text(element, tag, default=""):
    for child in element:
        if child.tag.split("}")[-1] == tag:
            return (child.text or default).strip()
    return default


def _children(element, tag):
    return [child for child in element if child.tag.split("}")[-1] == tag]


def _number(element, tag: str, default: str, where: str, low: float, high: float) -> float:
    """A number of drumkit.xml, checked: one line naming the file, the instrument, the tag and the range."""
    text = _text(element, tag, default)
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise KitError(f"{where}: <{tag}> '{text}' is not a number in {low:g}-{high:g}")
    return value


def load_hydrogen_kit(directory: str | Path, *, sample_rate_hz: int = SAMPLE_RATE_HZ, name_rules=drum_for_name) -> Kit:
    """A Hydrogen kit (its drumkit.xml, old single-file or new layered format), drums named by instrument name."""
    directory = Path(directory)
    xml_path = directory / "drumkit.xml"
    if not xml_path.is_file():
        raise KitError(f"kit folder '{directory}' has no drumkit.xml")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise KitError(f"kit file '{xml_path}' is not valid XML ({exc})") from None
    except OSError as exc:
        raise KitError(f"kit file '{xml_path}' cannot be read ({exc.strerror or exc})") from None
    kit = Kit(name=_text(root, "name", directory.name), path=directory, kind="hydrogen",
              licence=_text(root, "license", "unknown"))
    instrument_lists = _children(root, "instrumentList")
    for inst in (_children(instrument_lists[0], "instrument") if instrument_lists else []):
        name = _text(inst, "name")
        drum = name_rules(name)
        if drum is None or _text(inst, "isMuted") == "true":
            continue
        where = f"kit file '{xml_path}': instrument '{name}'"
        layers = []
        components = _children(inst, "instrumentComponent") or [inst]
        for comp in components:
            for layer in _children(comp, "layer"):
                file = _text(layer, "filename")
                if file and (directory / file).is_file():
                    layers.append(Layer(_number(layer, "min", "0", where, 0, 1),
                                        _number(layer, "max", "1", where, 0, 1),
                                        _read_sample(directory / file, sample_rate_hz),
                                        _number(layer, "gain", "1", where, 0, MAX_XML_GAIN)))
        file = _text(inst, "filename")
        if not layers and file and (directory / file).is_file():
            layers.append(Layer(0.0, 1.0, _read_sample(directory / file, sample_rate_hz)))
        if not layers:
            continue
        gain = _number(inst, "gain", "1", where, 0, MAX_XML_GAIN) * _number(inst, "volume", "1", where, 0, MAX_XML_GAIN)
        choke_group = _number(inst, "muteGroup", "-1", where, -1, 1e6)
        kit.instruments.setdefault(drum, []).append(Instrument(name, drum, layers, gain=gain,
                                                               choke_group=int(choke_group)))
    if not kit.instruments:
        raise KitError(f"kit '{directory}' has no instrument that is a known drum")
    return kit


def render_sf2_kit(sf2_path: str | Path, *, bank: int = 128, preset: int = 0, sample_rate_hz: int = SAMPLE_RATE_HZ,
                   velocities=(20, 40, 60, 80, 100, 127), seconds: float = 2.0, name: str | None = None,
                   notes: dict | None = None) -> Kit:
    """A GM drum kit of a soundfont, each GM drum note (or each of `notes`, note -> instrument name) rendered by
    fluidsynth at several velocities."""
    import fluidsynth

    sf2_path = Path(sf2_path)
    if not sf2_path.is_file():
        raise KitError(f"soundfont '{sf2_path}' does not exist")
    synth = fluidsynth.Synth(samplerate=float(sample_rate_hz), gain=0.5,
                             **{"synth.reverb.active": 0, "synth.chorus.active": 0})
    try:
        sfid = synth.sfload(str(sf2_path))
        if sfid < 0:
            raise KitError(f"'{sf2_path}' is not a readable sf2 soundfont")
        synth.program_select(9, sfid, bank, preset)
        kit = Kit(name=name or f"{sf2_path.stem} {bank}:{preset}", path=sf2_path, kind="sf2")
        n = int(seconds * sample_rate_hz)
        edges = [0] + [v for v in velocities]
        for note, drum in (GM_NOTE_DRUM if notes is None else notes).items():
            layers = []
            for i, vel in enumerate(velocities):
                synth.noteon(9, note, vel)
                stereo = np.asarray(synth.get_samples(n), dtype=np.float32).reshape(-1, 2)
                synth.noteoff(9, note)
                synth.get_samples(int(0.2 * sample_rate_hz))  # let it die away
                synth.all_notes_off(9) if hasattr(synth, "all_notes_off") else None
                mono = stereo.mean(axis=1) / 32768.0
                if np.abs(mono).max() < 1e-4:
                    continue
                layers.append(Layer(edges[i] / 127.0, vel / 127.0, _trim(mono)))
            if layers:
                kit.instruments.setdefault(drum, []).append(Instrument(f"GM {note}", drum, layers))
    finally:
        synth.delete()
    if not kit.instruments:
        raise KitError(f"soundfont '{sf2_path}' bank {bank} preset {preset} has no drum sounds")
    return kit


def _trim(audio: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Drop leading silence and the silent tail of a rendered one-shot."""
    loud = np.flatnonzero(np.abs(audio) > floor)
    if not len(loud):
        return audio[:0]
    return np.ascontiguousarray(audio[loud[0] : loud[-1] + 1])


# ---------------------------------------------------------------------------------------------------------------
# Folders of one-shots, and the drum presets of a soundfont (added for the audition sampler)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")

# Words in a one-shot's file name that say how hard it was struck, as a MIDI velocity.
VELOCITY_WORDS = {"ghost": 20, "pp": 20, "soft": 45, "quiet": 45, "light": 45, "mp": 64, "med": 80, "medium": 80,
                  "mf": 80, "hard": 105, "loud": 105, "accent": 127, "ff": 127}
DEFAULT_ONE_SHOT_VELOCITY = 100  # a file with no velocity word in its name


def _name_tokens(name: str) -> list:
    return [t for t in re.split(r"[-_.\s]+", name.lower()) if t]


def drum_for_file_name(stem: str):
    """The drum a one-shot's file name stands for ('hh_closed_2' -> hh_closed, 'Snare Soft' -> snare), or None."""
    spaced = " ".join(_name_tokens(stem))
    for drum in DRUMS:  # the vocabulary's own names first: 'tom_mid_soft' is tom_mid whatever the rules say
        if spaced == drum.replace("_", " ") or spaced.startswith(drum.replace("_", " ") + " "):
            return drum
    return drum_for_name(spaced)


def velocity_for_file_name(stem: str) -> int:
    """The MIDI velocity a one-shot's file name gives ('snare_soft' 45, 'kick_v90' 90), else 100."""
    for token in _name_tokens(stem):
        if token in VELOCITY_WORDS:
            return VELOCITY_WORDS[token]
        match = re.fullmatch(r"(?:v|vel|velocity)(\d{1,3})", token)
        if match and 1 <= int(match.group(1)) <= 127:
            return int(match.group(1))
    return DEFAULT_ONE_SHOT_VELOCITY


def one_shot_files(directory: str | Path) -> list:
    """(path, drum) of every audio file in a folder (and its subfolders one deep) named for a drum.

    A file is named by its stem ('kick.wav', 'snare_soft.flac', 'hh_closed_2.wav'), or by its subfolder when the
    stem names no drum ('snare/03.wav').
    """
    directory = Path(directory)
    found = []
    for path in sorted(directory.glob("*")) + sorted(directory.glob("*/*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        drum = drum_for_file_name(path.stem)
        if drum is None and path.parent != directory:
            drum = drum_for_file_name(path.parent.name)
        if drum is not None:
            found.append((path, drum))
    return found


def load_folder_kit(directory: str | Path, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Kit:
    """A kit from a folder of one-shots named by drum: one instrument per drum, velocity layers from the velocity
    words in the names (soft, medium, hard, v90, ...), and several files at one velocity played round robin."""
    directory = Path(directory)
    if not directory.exists():
        raise KitError(f"kit folder '{directory}' does not exist")
    if not directory.is_dir():
        raise KitError(f"kit '{directory}' is not a folder, a drumkit.xml or an .sf2 soundfont")
    files = one_shot_files(directory)
    if not files:
        audio = [p.name for p in sorted(directory.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES][:5]
        found = f"; found {', '.join(audio)}" if audio else f"; it holds no audio files ({', '.join(AUDIO_SUFFIXES)})"
        raise KitError(f"kit folder '{directory}' has no audio file named for a drum "
                       f"(e.g. kick.wav, snare_soft.wav, hh_closed_2.wav){found}")
    licence_files = sorted(p for p in directory.iterdir() if re.match(r"(licen[cs]e|copying)", p.name.lower()))
    licence = "unknown"
    if licence_files and licence_files[0].is_file():
        lines = [line.strip() for line in licence_files[0].read_text(errors="replace").splitlines() if line.strip()]
        licence = lines[0] if lines else licence
    kit = Kit(name=directory.name, path=directory, kind="folder", licence=licence)
    by_drum = {}
    for path, drum in files:
        by_drum.setdefault(drum, []).append((velocity_for_file_name(path.stem), path))
    for drum, entries in by_drum.items():
        levels = sorted({v for v, _ in entries})
        edges = [0] + [(a + b) / 2 for a, b in zip(levels, levels[1:])] + [127]
        layers = []
        for velocity, path in sorted(entries):
            i = levels.index(velocity)
            layers.append(Layer(edges[i] / 127.0, edges[i + 1] / 127.0, _read_sample(path, sample_rate_hz)))
        kit.instruments[drum] = [Instrument(f"{directory.name}/{drum}", drum, layers)]
    return kit


def sf2_drum_presets(sf2_path: str | Path, *, bank: int = 128) -> list:
    """(preset number, name) of the drum kits (bank 128) in a soundfont, read from its preset headers only."""
    import struct

    sf2_path = Path(sf2_path)
    try:
        with open(sf2_path, "rb") as f:
            riff, _, form = struct.unpack("<4sI4s", f.read(12))
            if riff != b"RIFF" or form != b"sfbk":
                raise KitError(f"'{sf2_path}' is not an sf2 soundfont (no RIFF sfbk header)")
            while True:
                header = f.read(8)
                if len(header) < 8:
                    raise KitError(f"soundfont '{sf2_path}' has no preset headers (pdta/phdr)")
                chunk, size = struct.unpack("<4sI", header)
                if chunk == b"LIST" and f.read(4) == b"pdta":
                    end = f.tell() + size - 4
                    while f.tell() < end:
                        sub, sub_size = struct.unpack("<4sI", f.read(8))
                        if sub == b"phdr":
                            data = f.read(sub_size)
                            presets = []
                            for i in range(0, len(data) - 38, 38):  # the last record is the end marker
                                name, preset, preset_bank = struct.unpack("<20sHH", data[i : i + 24])
                                if preset_bank == bank:
                                    presets.append((preset, name.split(b"\0")[0].decode("latin-1").strip()))
                            return sorted(presets)
                        f.seek(sub_size + (sub_size & 1), 1)
                elif chunk == b"LIST":
                    f.seek(size - 4 + (size & 1), 1)
                else:
                    f.seek(size + (size & 1), 1)
    except OSError as exc:
        raise KitError(f"soundfont '{sf2_path}' cannot be read ({exc.strerror or exc})") from None
    except struct.error:
        raise KitError(f"soundfont '{sf2_path}' is truncated or not an sf2 file") from None
