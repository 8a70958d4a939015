"""Audition: drum notes played back through a kit and an effects preset, to hear a transcription by ear.

    notes (.mid | hits)  ->  Sampler (kit)  ->  EffectChain (preset)  ->  [original laid under]  ->  file | speakers

The kit library finds Hydrogen kits, General-MIDI soundfonts and folders of one-shots; a render streams the notes
through the sampler and the effects in blocks, exactly as live monitoring would, and goes on until the last
reverb tail has died away. `AuditionSink` is the same thing as a sink of the engine, for
`drumscribe transcribe --audition`.
"""
from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import SAMPLE_RATE_HZ
from .effects import EffectChain, EffectPreset, EffectsError
from .kits import (
    HYDROGEN_KIT_DIRS,
    SF2_DIRS,
    Kit,
    KitError,
    drum_for_name,
    load_folder_kit,
    load_hydrogen_kit,
    one_shot_files,
    render_sf2_kit,
    sf2_drum_presets,
)
from .sampler import Sampler, SamplerError, note_blocks
from .sinks import OutputWriteError

log = logging.getLogger(__name__)

RENDER_BLOCK_SIZE_SAMPLES = 8192
"""Block size of file renders (live monitoring uses the engine's block size; the output is the same)."""

SILENCE_DBFS = -90.0
"""A render ends once the kit and the effects have fallen below this (and stays trimmed to it)."""

MAX_TAIL_S = 15.0
"""However long an effect rings on (feedback delays), a render stops this long after the last note."""

QUIET_END_S = 0.5
"""A render ends after this long below SILENCE_DBFS with no voice sounding (plus the chain's delay times)."""

MAX_RENDER_S = 3600.0
"""The longest render: an hour. A render is held whole in memory (measured: a 10-minute one peaks at 0.9 GB), so a
MIDI file whose last note lies hours in, or a longer original to lay under, is refused before any work rather
than run out of memory."""

PEAK_DBFS = -1.0
"""Renders are scaled to this peak."""

OUTPUT_FORMATS = {".wav": ("WAV", "PCM_24"), ".flac": ("FLAC", "PCM_24"), ".mp3": ("MP3", "MPEG_LAYER_III"),
                  ".ogg": ("OGG", "VORBIS")}

USER_KIT_DIRS_ENV = "DRUMSCRIBE_KITS"
USER_KIT_DIR = Path.home() / ".local/share/drumscribe/kits"

DEFAULT_KITS = ("The Black Pearl 1.0", "FluidR3_GM", "TimGM6mb")
"""The default kit is the first of these that is installed (else the first kit found)."""

SF2_LICENCES = {
    "FluidR3_GM.sf2": "MIT (Debian fluid-soundfont-gm)",
    "TimGM6mb.sf2": "GPL-2 (Debian timgm6mb-soundfont)",
    "MuseScore_General_Full.sf2": "MIT, parts CC0 (Debian musescore-general-soundfont-lossless)",
    "MuseScore_General.sf2": "MIT, parts CC0 (Debian musescore-general-soundfont)",
}
DEBIAN_HYDROGEN_LICENCES = {  # /usr/share/doc/hydrogen-drumkits/copyright, for kits whose drumkit.xml says little
    "Audiophob": "CC0", "BJA_Pacific": "CC-BY-SA-3.0-us", "ColomboAcousticDrumkit": "GPL-2+ with composition exception",
    "ElectricEmpireKit": "GPL-2+", "ForzeeStereo": "GPL-2", "Gimme A Hand 1.0": "GPL-2", "HardElectro1": "GPL-2+",
    "Millo-Drums_v.1": "GPL-2", "Millo_MultiLayered2": "GPL-2", "Millo_MultiLayered3": "GPL-2",
    "The Black Pearl 1.0": "GPL-2", "VariBreaks": "GPL-2+", "circAfrique v4": "CC-BY-SA-3.0",
    "rumpf_kit_z01_h2": "CC-BY-3.0",
}
_SKIPPED_SF2_PRESETS = re.compile(r"\s\d$|metronome|marching", re.IGNORECASE)  # variations and non-kits


class AuditionError(ValueError):
    """An audition input or output that cannot be used; the message is one line for the user."""


class AudioWriteError(AuditionError, OutputWriteError):
    """An audition file that could not be written (a full disk, say): whatever was at its path is as it was. An
    OutputWriteError too, so `transcribe --audition` names it with the other outputs."""


# ---------------------------------------------------------------------------------------------------------------
# the kit library


@dataclass(frozen=True)
class KitInfo:
    """A kit that can be loaded, without its samples: what `drumscribe kits` lists and `--kit` names."""

    name: str  # what --kit takes
    kind: str  # hydrogen, sf2 or folder
    path: Path
    licence: str
    drums: int = 0  # drums of the vocabulary it can play (0: not counted, a GM soundfont plays them all)
    preset: int = 0  # sf2: the bank-128 preset
    title: str = ""  # the kit's own name: drumkit.xml <name>, the sf2 preset name


def user_kit_dirs() -> list:
    dirs = [Path(p).expanduser() for p in os.environ.get(USER_KIT_DIRS_ENV, "").split(os.pathsep) if p]
    return dirs + [USER_KIT_DIR]


def _hydrogen_info(folder: Path) -> KitInfo:
    """A Hydrogen kit's name, licence and drum count from its drumkit.xml (samples are not read)."""
    try:
        root = ET.parse(folder / "drumkit.xml").getroot()
    except (ET.ParseError, OSError) as exc:
        raise KitError(f"kit file '{folder / 'drumkit.xml'}' is not valid XML ({exc})") from None

    def text(element, tag):
        child = next((c for c in element if c.tag.split("}")[-1] == tag), None)
        return (child.text or "").strip() if child is not None else ""

    names = [text(inst, "name") for inst in root.iter() if inst.tag.split("}")[-1] == "instrument"]
    drums = {drum_for_name(name) for name in names} - {None}
    licence = text(root, "license")
    if folder.parent == HYDROGEN_KIT_DIRS[0] and folder.name in DEBIAN_HYDROGEN_LICENCES:
        debian = DEBIAN_HYDROGEN_LICENCES[folder.name]
        licence = f"{debian} (drumkit.xml: {licence})" if licence else debian
    return KitInfo(folder.name, "hydrogen", folder, licence or "not stated in drumkit.xml", len(drums),
                   title=text(root, "name") or folder.name)


def _sf2_infos(path: Path) -> list:
    path = path.resolve()  # default-GM.sf2 is a link to one of the others
    licence = SF2_LICENCES.get(path.name, "see the soundfont's own documentation")
    infos = []
    presets = sf2_drum_presets(path)
    for number, title in presets:
        if _SKIPPED_SF2_PRESETS.search(title):
            continue
        name = path.stem if not infos else f"{path.stem}:{title}"
        infos.append(KitInfo(name, "sf2", path, licence, 0, number, title))
    return infos


def find_kits() -> list:
    """Every kit installed: Hydrogen kits, the drum kits of sf2 soundfonts, then user kits (any of the three kinds)
    in $DRUMSCRIBE_KITS and ~/.local/share/drumscribe/kits. Kits that cannot be read are left out."""
    found, seen = [], set()

    def add(infos):
        for info in infos:
            key = (info.path.resolve(), info.preset)
            if key not in seen and info.name.lower() not in {k.name.lower() for k in found}:
                seen.add(key)
                found.append(info)

    candidates = [(d, "hydrogen") for d in HYDROGEN_KIT_DIRS] + [(d, "sf2") for d in SF2_DIRS]
    candidates += [(d, "any") for d in user_kit_dirs()]
    for directory, kind in candidates:
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir(), key=lambda p: (p.is_symlink(), p.name.lower())):  # links last
            try:
                if entry.is_dir() and (entry / "drumkit.xml").is_file() and kind in ("hydrogen", "any"):
                    info = _hydrogen_info(entry)
                    add([info] if info.drums else [])
                elif entry.suffix.lower() == ".sf2" and entry.is_file() and kind in ("sf2", "any"):
                    add(_sf2_infos(entry))
                elif entry.is_dir() and kind == "any":
                    drums = {drum for _, drum in one_shot_files(entry)}
                    if drums:
                        add([KitInfo(entry.name, "folder", entry, _folder_licence(entry), len(drums))])
            except (KitError, OSError) as exc:  # a broken or unreadable kit is left out of the list
                log.debug("skipping kit %s: %s", entry, exc)
    return found


def _folder_licence(folder: Path) -> str:
    for path in sorted(folder.iterdir()):
        if re.match(r"(licen[cs]e|copying)", path.name.lower()) and path.is_file():
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
            return lines[0] if lines else "unknown"
    return "unknown"


def default_kit(kits: list | None = None) -> KitInfo:
    kits = find_kits() if kits is None else kits
    if not kits:
        raise AuditionError("no drum kit is installed (Debian: apt install hydrogen-drumkits fluid-soundfont-gm); "
                            "pass --kit PATH to a Hydrogen kit, an .sf2 or a folder of one-shots")
    by_name = {k.name: k for k in kits}
    return next((by_name[n] for n in DEFAULT_KITS if n in by_name), kits[0])


def resolve_kit(spec: str | None) -> KitInfo:
    """A kit by name (as `drumscribe kits` lists it) or by path: a Hydrogen kit folder or its drumkit.xml, an .sf2
    file (optionally 'file.sf2:Jazz' or 'file.sf2:32' for a drum preset), or a folder of one-shots."""
    if spec is None or spec == "":
        return default_kit()
    kits = None
    sf2_part = re.match(r"(.+\.sf2)(?::(.+))?$", spec, re.IGNORECASE)
    path = Path(sf2_part.group(1) if sf2_part else spec).expanduser()
    looks_like_path = path.exists() or "/" in spec or spec.startswith(".") or bool(sf2_part)
    if not looks_like_path:
        kits = find_kits()
        for info in kits:
            if info.name.lower() == spec.lower():
                return info
        for info in kits:  # a Hydrogen kit by the name in its drumkit.xml ('Forzee Stereo Drumkit')
            if info.kind == "hydrogen" and info.title.lower() == spec.lower():
                return info
        if ":" in spec:  # 'FluidR3_GM:32', 'TimGM6mb:jazz'
            stem, _, preset = spec.rpartition(":")
            sf2 = next((k.path for k in kits if k.kind == "sf2" and k.path.stem.lower() == stem.lower()), None)
            if sf2 is not None:
                return _sf2_preset(sf2, preset)
        names = ", ".join(k.name for k in kits) or "none installed"
        raise AuditionError(f"kit '{spec}' is not a kit path nor one of: {names}")
    if sf2_part:
        if not path.exists():
            raise AuditionError(f"soundfont '{path}' does not exist")
        if not path.is_file():
            raise AuditionError(f"soundfont '{path}' is not a regular file, expected an .sf2 soundfont")
        return _sf2_preset(path, sf2_part.group(2))
    if path.name == "drumkit.xml" and path.is_file():
        path = path.parent
    if not path.exists():
        raise AuditionError(f"kit folder '{path}' does not exist")
    if path.is_dir() and (path / "drumkit.xml").is_file():
        return KitInfo(path.name, "hydrogen", path, "")
    if path.is_dir():
        return KitInfo(path.name, "folder", path, "")
    raise AuditionError(f"kit '{path}' is not a Hydrogen kit folder, a drumkit.xml, an .sf2 soundfont "
                        f"or a folder of one-shots")


def _sf2_preset(path: Path, preset: str | None) -> KitInfo:
    presets = sf2_drum_presets(path)
    if not presets:
        raise AuditionError(f"soundfont '{path}' has no drum kit (no preset in bank 128)")
    if preset is None:
        number, title = presets[0]
    else:
        match = [p for p in presets if str(p[0]) == preset.strip() or p[1].lower() == preset.strip().lower()]
        if not match:
            names = ", ".join(f"{n} {t}" for n, t in presets)
            raise AuditionError(f"soundfont '{path.name}' has no drum kit '{preset}'; its kits are: {names}")
        number, title = match[0]
    name = path.stem if number == presets[0][0] else f"{path.stem}:{title}"
    return KitInfo(name, "sf2", path, SF2_LICENCES.get(path.name, ""), 0, number, title)


def load_kit(info: KitInfo, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> Kit:
    """The kit's samples, at the given rate. Raises KitError with a one-line message."""
    if info.kind == "hydrogen":
        return load_hydrogen_kit(info.path, sample_rate_hz=sample_rate_hz)
    if info.kind == "sf2":
        return render_sf2_kit(info.path, bank=128, preset=info.preset, sample_rate_hz=sample_rate_hz, name=info.name)
    return load_folder_kit(info.path, sample_rate_hz=sample_rate_hz)


# ---------------------------------------------------------------------------------------------------------------
# notes in


def read_midi_notes(path: str | Path) -> list:
    """(time_s, note, velocity) of every note-on in a .mid, tempo changes applied: the notes on channel 10, or on
    every channel when none is on channel 10."""
    import mido

    path = Path(path)
    if not path.exists():
        raise AuditionError(f"MIDI file '{path}' does not exist")
    if path.is_dir():
        raise AuditionError(f"MIDI file '{path}' is a folder, expected a .mid file")
    if not path.is_file():  # a FIFO would wait for a writer forever
        raise AuditionError(f"MIDI file '{path}' is not a regular file (a FIFO, socket or device), "
                            f"expected a .mid file")
    try:
        midi = mido.MidiFile(str(path))
        notes, now = [], 0.0
        for message in midi:  # merged tracks, times in seconds
            now += message.time
            if message.type == "note_on" and message.velocity > 0:
                notes.append((now, message.channel, message.note, message.velocity))
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, TypeError (type 2) for junk
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AuditionError(f"'{path}' is not a readable MIDI file ({reason})") from None
    drums = [n for n in notes if n[1] == 9] or notes
    if not drums:
        raise AuditionError(f"MIDI file '{path}' holds no notes; there is nothing to play")
    return [(t, note, velocity) for t, _, note, velocity in drums]


def hits_to_notes(hits, drum_map) -> list:
    """(time_s, note, velocity) of engine hits, through a drum map."""
    return [(hit.onset_s, drum_map.note(hit.drum), hit.velocity) for hit in hits]


# ---------------------------------------------------------------------------------------------------------------
# rendering


def render_notes(notes, sampler: Sampler, effects: EffectChain | None = None, *,
                 block_size_samples: int = RENDER_BLOCK_SIZE_SAMPLES, min_duration_s: float = 0.0) -> np.ndarray:
    """Stream notes through the sampler and the effects until everything has rung out: (2, n) float32.

    The result lasts at least `min_duration_s` and ends at the last sample above SILENCE_DBFS (tails included);
    it is the same whatever `block_size_samples` (the stages are block-size invariant).
    """
    rate = sampler.sample_rate_hz
    sampler.reset()
    latency = 0
    if effects is not None:
        effects.reset()
        latency = effects.latency_samples
    check_render_length(max((t for t, _, _ in notes), default=0.0), "the last note")
    check_render_length(min_duration_s, "the audio laid under it")
    last_note = max((int(round(t * rate)) for t, _, _ in notes), default=0)
    min_samples = int(round(min_duration_s * rate))
    must_reach = max(last_note + 1, min_samples) + latency
    give_up = max(last_note + 1, min_samples) + latency + int(MAX_TAIL_S * rate)
    threshold = 10 ** (SILENCE_DBFS / 20)
    quiet_needed = int(QUIET_END_S * rate)  # this long below the threshold, nothing sounding: the end; a delay's
    if effects is not None:  # echoes can come after a silent gap as long as the delay time, so wait that too
        quiet_needed += int(rate * sum(dict(spec.parameters).get("delay_seconds", 0.5)
                                       for spec in effects.preset.plugins if spec.plugin == "Delay"))
    blocks, peaks, position, quiet = [], [], 0, 0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught by _check_finite, with its time
        for block in note_blocks(notes, block_size_samples=block_size_samples, sample_rate_hz=rate):
            audio = sampler.process(block)
            _check_finite(audio, position, rate, f"kit '{sampler.kit.name}'")
            if effects is not None:
                audio = effects.process(audio)
                _check_finite(audio, position, rate, f"effects preset '{effects.preset.name}'")
            blocks.append(audio)
            peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
            peaks.append(peak)
            position += block.n_samples
            if position < must_reach:
                continue
            if peak <= threshold:
                quiet += block.n_samples
            else:
                quiet = block.n_samples - 1 - int(np.flatnonzero(np.abs(audio).max(axis=0) > threshold)[-1])
            if (quiet >= quiet_needed and not sampler.sounding) or position >= give_up:
                break
    # the end: the last sample above the threshold (found in the last loud block only), or min_duration_s
    last_loud = next((i for i in range(len(blocks) - 1, -1, -1) if peaks[i] > threshold), None)
    end = 0
    if last_loud is not None:
        i = last_loud
        end = i * block_size_samples + int(np.flatnonzero(np.abs(blocks[i]).max(axis=0) > threshold)[-1]) + 1
    end = max(end - latency, min_samples)
    keep = -(-(end + latency) // block_size_samples)
    out = np.concatenate(blocks[:keep], axis=1) if keep else np.zeros((2, 0), np.float32)
    return out[:, latency : latency + end]


def check_render_length(seconds: float, what: str) -> None:
    """Raise AuditionError when a render would have to run past MAX_RENDER_S to reach `seconds`."""
    if seconds > MAX_RENDER_S:
        raise AuditionError(f"{what} is at {_clock(seconds)}; audition renders at most {_clock(MAX_RENDER_S)} "
                            f"(the whole render is held in memory)")


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _check_finite(audio: np.ndarray, position: int, rate: int, stage: str) -> None:
    """Raise AuditionError when a stage's output holds an infinity or NaN: never a file of noise or silence."""
    bad = ~np.isfinite(audio)
    if bad.any():
        at_s = (position + int(np.flatnonzero(bad.any(axis=0))[0])) / rate
        raise AuditionError(f"the {stage} gives samples that are not finite numbers (infinity or NaN) from "
                            f"{at_s:.2f} s on; lower its gains, drive or feedback")


def normalise(audio: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    """Scaled to a peak of `peak_dbfs` (silence stays silence)."""
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    if peak <= 0:
        return audio.astype(np.float32, copy=False)
    return (audio * np.float32(10 ** (peak_dbfs / 20) / peak)).astype(np.float32, copy=False)


def load_original(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """An audio file as (2, n) float32 at `sample_rate_hz`: mono is doubled, more than two channels mixed down."""
    import soxr

    from .sources import AudioInputError, open_audio, read_audio

    try:
        with open_audio(path) as f:  # its length first: an hours-long file is refused before it is read
            check_render_length(f.frames / f.samplerate, f"the end of '{path}'")
        audio, rate = read_audio(path)
    except AudioInputError as exc:
        raise AuditionError(str(exc)) from None
    if audio.shape[1] != 2:
        audio = np.repeat(audio.mean(axis=1, keepdims=True), 2, axis=1)
    if rate != sample_rate_hz and len(audio):
        audio = soxr.resample(audio, rate, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(audio.T, dtype=np.float32)


def mix_under(drums: np.ndarray, original: np.ndarray, mix: float) -> np.ndarray:
    """The original laid under the drums from the same time zero, each first scaled to the same peak:
    mix 0 is the drums alone, 1 the original alone, 0.5 both equally. The sum is kept below PEAK_DBFS."""
    if not 0.0 <= mix <= 1.0:
        raise AuditionError(f"--mix {mix} is not in 0-1 (0: the rendering alone, 1: the original alone)")
    n = max(drums.shape[1], original.shape[1])
    out = np.zeros((2, n), dtype=np.float32)
    out[:, : drums.shape[1]] += (1.0 - mix) * normalise(drums)
    out[:, : original.shape[1]] += mix * normalise(original)
    peak = float(np.abs(out).max()) if out.size else 0.0
    limit = 10 ** (PEAK_DBFS / 20)
    return out * (limit / peak) if peak > limit else out


def check_output_format(path: str | Path) -> tuple:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise AuditionError(f"output '{path}': '{suffix or '(no suffix)'}' is not one of: "
                            f"{', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix]


def write_audio(path: str | Path, audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """(channels, n) audio to a WAV, FLAC, MP3 or OGG file chosen by the suffix, atomically: the file is complete,
    or whatever was at `path` before is left as it was and AuditionError says why (a full disk, say).

    The file is encoded in memory first, then written with Python's own I/O: libsndfile reports a failed write
    only as "System error", where Python says "No space left on device"."""
    import io

    import soundfile as sf

    from .sinks import atomic_output

    file_format, subtype = check_output_format(path)
    if not np.isfinite(audio).all():
        raise AudioWriteError(f"could not write '{path}' (the audio holds samples that are not finite numbers)")
    data = np.clip(audio.T, -1.0, 1.0)
    if not len(data) and file_format in ("MP3", "OGG"):
        data = np.zeros((1, audio.shape[0]), np.float32)  # the coded formats cannot hold zero frames
    encoded = io.BytesIO()
    try:
        sf.write(encoded, data, sample_rate_hz, format=file_format, subtype=subtype)
    except (RuntimeError, ValueError, TypeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise AudioWriteError(f"could not write '{path}' (it cannot be encoded as {file_format}: "
                              f"{' '.join(str(exc).split()) or type(exc).__name__})") from None
    try:
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(encoded.getbuffer())
    except OSError as exc:
        raise AudioWriteError(f"could not write '{path}' ({exc.strerror or exc})") from None


def check_output_device(channels: int = 2, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """Raise AuditionError (one line) unless the default output device can play this."""
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library is missing
        raise AuditionError(f"--play: PortAudio is not available ({exc}); write a file with -o instead") from None
    try:
        if not any(device["max_output_channels"] > 0 for device in sd.query_devices()):
            raise AuditionError("--play: no audio output device found; write a file with -o instead")
        sd.check_output_settings(samplerate=sample_rate_hz, channels=channels)
    except AuditionError:
        raise
    except Exception as exc:  # PortAudioError or ValueError: no default output device, or it cannot do this
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AuditionError(f"--play: no audio output device can play {channels} channels at {sample_rate_hz} Hz "
                            f"({reason}); write a file with -o instead") from None


def play(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """Play (2, n) audio on the default output device and wait until it is done (Ctrl-C stops it)."""
    check_output_device(audio.shape[0], sample_rate_hz)
    import sounddevice as sd

    try:
        sd.play(np.ascontiguousarray(audio.T), sample_rate_hz)
        sd.wait()
    finally:
        sd.stop()


# ---------------------------------------------------------------------------------------------------------------
# as a sink of the engine


class AuditionSink:
    """Collects the engine's hits and, on close, renders them through a kit and effects to an audio file
    (the input laid under when `original` is given). `write(hits)`, `close()` (safe twice), a context manager."""

    def __init__(self, path: str | Path, kit: Kit, preset: EffectPreset, drum_map, *, original=None,
                 mix: float = 0.0, sample_rate_hz: int = SAMPLE_RATE_HZ):
        check_output_format(path)
        self.path = Path(path)
        self.kit = kit
        self.preset = preset
        self.drum_map = drum_map
        self.original = original  # (2, n) or mono at sample_rate_hz, or None
        self.mix = mix
        self.sample_rate_hz = sample_rate_hz
        self.hits = []
        self.closed = False
        self.duration_s = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, hits) -> None:
        if self.closed:
            raise ValueError("AuditionSink is closed")
        self.hits.extend(hits)

    def abort(self) -> None:
        """Close without rendering or writing anything (the run failed): a file at the path stays as it was."""
        self.closed = True

    def close(self) -> None:
        """Render and write the file; any failure is an AudioWriteError naming it (the old file stays whole)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._render_and_write()
        except AudioWriteError:
            raise
        except (AuditionError, SamplerError, EffectsError) as exc:  # a render too long, say
            raise AudioWriteError(f"could not write '{self.path}' ({' '.join(str(exc).split())})") from None

    def _render_and_write(self) -> None:
        original = self.original
        if original is not None:
            original = np.asarray(original, dtype=np.float32)
            original = np.stack([original, original]) if original.ndim == 1 else original
        min_s = original.shape[1] / self.sample_rate_hz if original is not None else 0.0
        sampler = Sampler(self.kit, self.drum_map, sample_rate_hz=self.sample_rate_hz)
        chain = EffectChain(self.preset, sample_rate_hz=self.sample_rate_hz)
        audio = normalise(render_notes(hits_to_notes(self.hits, self.drum_map), sampler, chain,
                                       min_duration_s=min_s))
        if original is not None and self.mix > 0:
            audio = mix_under(audio, original, self.mix)
        self.duration_s = audio.shape[1] / self.sample_rate_hz
        write_audio(self.path, audio, self.sample_rate_hz)
