"""One-shot drum samples: the classes, reading a sample file, the model's front end, augmentation, and
folder-per-class sets rendered from the Debian kits or synthesised.

The front end (`oneshot_image`) is the one code path from audio to model input for training, `classify` and
`sort`: peak-normalise, find the onset, take the log-mel frames of the next second (realtime.features.log_mel).

Render the set the shipped model trains on, then train it (the kits come from the Debian packages hydrogen-drumkits,
fluid-soundfont-gm, musescore-general-soundfont-lossless, avldrums.lv2-soundfont, lmms-common and sonic-pi-samples):
    drumscribe train render-oneshots --out data/oneshots
    drumscribe train folders data/oneshots --epochs 40 --augment-copies 8 -o models/weights/oneshot.pt
A training sound that is the same recording as a held-out one (some fonts and sample packs share samples) is left
out of the rendered set: `held_out_lookalikes`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.features import FeatureParams, log_mel
from drumscribe.realtime.kits import HYDROGEN_KIT_DIRS, drum_for_name, load_hydrogen_kit

log = logging.getLogger(__name__)

CLASSES = ("kick", "snare", "rim", "clap", "hihat_closed", "hihat_open", "tom", "crash", "ride", "percussion")
"""The shipped model's classes: folder names under `sort`'s OUT_DIR. rim is rim click / side stick; percussion is
every other hand or auxiliary percussion (cowbell, tambourine, shaker, congas, bongos, claves, djembe...)."""

AUDIO_EXTENSIONS = (".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".w64",
                    ".caf", ".au", ".snd")
"""Files `sort` and `train folders` treat as audio (by name); those that cannot be decoded count as unreadable."""

MAX_READ_S = 10.0
"""Only this much of a file is decoded: a one-shot's onset lies near its start."""

# ---------------------------------------------------------------------------------------------------------------
# Kits -> classes

# the drum vocabulary of realtime.drums -> one-shot class
_DRUM_CLASS = {
    "kick": "kick", "snare": "snare", "side_stick": "rim", "hh_closed": "hihat_closed", "hh_pedal": "hihat_closed",
    "hh_open": "hihat_open", "tom_low": "tom", "tom_mid": "tom", "tom_high": "tom", "crash": "crash", "ride": "ride",
}
_SKIP = re.compile(r"roll|flam|zap|\bfx\b|noise|(?<!rim )click|vox|voice|scratch|sweep|reverse|empty|sample:"
                   r"|^\W*\d*\W*$")
_CLAP = re.compile(r"clap")
_RIM = re.compile(r"rim ?click|side ?stick|cross ?stick|\bstick\b|^(?!.*snare).*\brim\b")
_PERCUSSION = re.compile(r"cowbell|tamb|shaker|maraca|conga|bongo|cajon|clav|block|wood|snap|djembe|sangban|dunun"
                         r"|kenkeni|glass|agogo|triangle|whistle|guiro|cabasa|timbale|cuica|castanet|vibraslap|perc")


def class_for_name(name: str):
    """The one-shot class a kit instrument name stands for, or None (rolls, effects, ambiguous crash/rides)."""
    lowered = name.lower().strip()
    if _SKIP.search(lowered):
        return None
    if re.search(r"crash.*ride|ride.*crash", lowered) and not re.search(r"bell|cup", lowered):
        return None  # a crash/ride: either label would be a guess
    if _CLAP.search(lowered):
        return "clap"
    if _PERCUSSION.search(lowered):
        return "percussion"
    if _RIM.search(lowered):
        return "rim"  # before drum_for_name, which skips anything called a click
    return _DRUM_CLASS.get(drum_for_name(name))


CORE_GM_NOTES = (35, 36, 37, 38, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 53, 57, 59)
"""The notes of a drum kit proper, which kits that follow GM only for the kit map the same way."""


def class_for_gm_note(note: int, preset: int = 0, *, core_only: bool = False):
    """The one-shot class of a General MIDI percussion note (GS drum sets), or None for notes that are not drums."""
    if preset >= 48 or not 35 <= note <= 87:  # orchestra/SFX sets put timpani and effects on the drum notes
        return None
    if core_only and note not in CORE_GM_NOTES:
        return None
    if preset in (40, 41, 42) and note == 39:  # brush sets: a brush slap, not a clap
        return None
    if preset in (24, 25) and note == 52:  # electronic sets: a reverse cymbal
        return None
    for notes, name in (((35, 36), "kick"), ((37,), "rim"), ((38, 40), "snare"), ((39,), "clap"),
                        ((42, 44), "hihat_closed"), ((46,), "hihat_open"), ((41, 43, 45, 47, 48, 50), "tom"),
                        ((49, 52, 55, 57), "crash"), ((51, 53, 59), "ride")):
        if note in notes:
            return name
    return "percussion"


SF2_DRUM_SETS = (*range(0, 20), 24, 25, *range(32, 37), 40, 41, 42)
"""GS drum sets (bank 128 presets) whose notes follow the GM percussion map; a font lacking one is skipped."""

ONESHOT_TRAIN_KITS = (
    "hydrogen:The Black Pearl 1.0",
    "hydrogen:ForzeeStereo",
    "hydrogen:BJA_Pacific",
    "hydrogen:Millo_MultiLayered2",
    "hydrogen:Millo_MultiLayered3",
    "hydrogen:Audiophob",
    "hydrogen:rumpf_kit_z01_h2",
    "hydrogen:VariBreaks",
    "hydrogen:ElectricEmpireKit",
    "hydrogen:HardElectro1",
    "hydrogen:Gimme A Hand 1.0",  # claps, snaps, shakers, cajon, bongos, blocks
    "hydrogen:circAfrique v4",  # djembe, dunun
    *(f"sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:{p}" for p in SF2_DRUM_SETS),
    *(f"sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:{p}" for p in SF2_DRUM_SETS),
    "sf2:/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2:0:0:core",  # avldrums.lv2-soundfont (CC-BY-SA-3.0, Glen MacArthur)
    "sf2:/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2:0:0:core",
    "hydrogen:Millo-Drums_v.1",
    "hydrogen:GMRockKit",  # hydrogen-data (GPL-2+)
    "folder:/usr/share/lmms/samples/drums",  # lmms-common (GPL-2+): one-shots named by drum
    "folder:/usr/share/sonic-pi/samples",  # sonic-pi-samples (CC0 / CC-BY): labelled by FOLDER_LABELS
)
"""Kits the shipped one-shot model is trained on (licences: /usr/share/doc/<package>/copyright)."""

ONESHOT_HELD_OUT_KITS = (
    "hydrogen:ColomboAcousticDrumkit",
    *(f"sf2:/usr/share/sounds/sf2/TimGM6mb.sf2:128:{p}" for p in SF2_DRUM_SETS),
)
"""Kits never used for training: bench/oneshot_accuracy.py scores the shipped model on them."""

SF2_VELOCITIES = (40, 80, 127)

_SONIC_PI = {
    "kick": ("bd_808 bd_ada bd_boom bd_fat bd_gas bd_haus bd_klub bd_mehackit bd_pure bd_sone bd_tek bd_zome bd_zum "
             "drum_heavy_kick drum_bass_hard drum_bass_soft elec_hollow_kick elec_soft_kick"),
    "snare": ("sn_dolf sn_dub sn_generic sn_zome drum_snare_hard drum_snare_soft elec_snare elec_hi_snare "
              "elec_lo_snare elec_mid_snare elec_filt_snare"),
    "tom": "drum_tom_hi_hard drum_tom_hi_soft drum_tom_mid_hard drum_tom_mid_soft drum_tom_lo_hard drum_tom_lo_soft",
    "hihat_closed": "drum_cymbal_closed drum_cymbal_pedal",
    "hihat_open": "drum_cymbal_open",
    "crash": "drum_cymbal_hard drum_cymbal_soft drum_splash_hard drum_splash_soft",
    "percussion": "drum_cowbell elec_triangle elec_wood perc_snap perc_snap2 " + " ".join(
        f"tabla_{n}" for n in "dhec ghe1 ghe3 ghe5 ke1 ke2 na na_o na_s re tas1 te1 te2 tun1 tun3".split()),
}
FOLDER_LABELS = {
    "/usr/share/sonic-pi/samples": {stem: label for label, stems in _SONIC_PI.items() for stem in stems.split()},
}
"""Sample folders whose file names do not follow drum naming (Sonic Pi calls its hi-hats 'cymbal'): stem -> class;
files not listed are left out."""


@dataclass(frozen=True)
class OneShot:
    label: str  # one of CLASSES
    audio: np.ndarray  # mono float32 at SAMPLE_RATE_HZ
    kit: str
    name: str  # instrument name and layer


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "x"


def kit_oneshots(spec: str, *, seen: dict | None = None) -> list:
    """Every velocity layer of every instrument of a kit that is one of CLASSES.

    spec: 'hydrogen:<name or folder>', 'sf2:<path>:<bank>:<preset>[:core]' (each percussion note rendered by
    fluidsynth at SF2_VELOCITIES; ':core' keeps CORE_GM_NOTES) or 'folder:<path>' (audio files named by drum).
    A render that sounds like one already made (the same sample, only louder, or the same sample in another drum
    set of the font) is left out; pass one `seen` dict to all the sets of a font.
    """
    kind, _, rest = spec.partition(":")
    if kind == "hydrogen":
        path = Path(rest)
        if not path.is_absolute():
            path = next((d / rest for d in HYDROGEN_KIT_DIRS if (d / rest).is_dir()), path)
        kit = load_hydrogen_kit(path, name_rules=class_for_name)
        out = []
        for label, instruments in kit.instruments.items():
            for inst in instruments:
                for i, layer in enumerate(inst.layers):
                    if np.abs(layer.audio).max(initial=0) > 1e-4:
                        out.append(OneShot(label, layer.audio, kit.name, f"{inst.name} {i + 1}"))
        return out
    if kind == "sf2":
        core = rest.endswith(":core")
        path, bank, preset = rest.removesuffix(":core").rsplit(":", 2)
        return _sf2_oneshots(Path(path), int(bank), int(preset), {} if seen is None else seen, core_only=core)
    if kind == "folder":
        return _folder_oneshots(Path(rest))
    raise ValueError(f"kit spec '{spec}' is not 'hydrogen:<name>' or 'sf2:<path>:<bank>:<preset>'")


def _same_sound(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and float(np.abs(a - b).max()) < 0.05


def _folder_oneshots(folder: Path) -> list:
    if not folder.is_dir():
        raise ValueError(f"sample folder '{folder}' does not exist")
    table = FOLDER_LABELS.get(str(folder))
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
        if table is not None:
            label = table.get(path.stem)
        else:
            label = class_for_name(re.sub(r"[_\-\d]+", " ", path.stem).strip())
        if label is None:
            continue
        try:
            out.append(OneShot(label, read_sample(path).astype(np.float32), folder.name, path.stem))
        except SampleReadError as exc:
            log.warning("skipped: %s", exc)
    return out


def _sf2_oneshots(path: Path, bank: int, preset: int, seen: dict, seconds: float = 2.5, *,
                  core_only: bool = False) -> list:
    import fluidsynth

    if not path.is_file():
        raise ValueError(f"soundfont '{path}' does not exist")
    synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE_HZ), gain=0.5,
                             **{"synth.reverb.active": 0, "synth.chorus.active": 0})
    out = []
    try:
        sfid = synth.sfload(str(path))
        if sfid < 0:
            raise ValueError(f"'{path}' is not a readable sf2 soundfont")
        if not synth.sfpreset_name(sfid, bank, preset):
            return []  # the font has no such drum set
        synth.program_select(9, sfid, bank, preset)
        kit_name = f"{path.stem} {bank}:{preset}"
        for note in range(35, 88):
            label = class_for_gm_note(note, preset, core_only=core_only)
            if label is None:
                continue
            kept = seen.setdefault((str(path), note), [])
            for velocity in SF2_VELOCITIES:
                synth.noteon(9, note, velocity)
                audio = np.asarray(synth.get_samples(int(seconds * SAMPLE_RATE_HZ)), np.float32).reshape(-1, 2)
                synth.noteoff(9, note)
                synth.get_samples(int(0.3 * SAMPLE_RATE_HZ))  # let it die away
                mono = audio.mean(axis=1) / 32768.0
                loud = np.flatnonzero(np.abs(mono) > 1e-4)
                if not len(loud):
                    continue
                mono = mono[loud[0] :]
                peak = np.abs(mono).max()
                start = int(np.argmax(np.abs(mono) >= 0.01 * peak))
                normed = np.zeros(9600, np.float32)
                piece = mono[start : start + 9600] / peak
                normed[: len(piece)] = piece
                if any(_same_sound(k, normed) for k in kept):
                    continue  # the same sample: only louder, or in another set of the font
                kept.append(normed)
                out.append(OneShot(label, np.ascontiguousarray(mono), kit_name, f"note {note} vel {velocity}"))
    finally:
        synth.delete()
    return out


LOOKALIKE_CORRELATION = 0.9
"""Two one-shots whose normalised cross-correlation (first 0.2 s, any lag) reaches this are the same recording.
Distinct kits here peak at 0.88; a shared sample, resampled or re-levelled, at 0.90-1.00
(`python experiments/lookalikes.py`)."""


def _lookalike_spectra(shots, n: int = 9600, fft: int = 16384) -> np.ndarray:
    heads = np.zeros((len(shots), n))
    for i, shot in enumerate(shots):
        head = np.asarray(shot.audio[:n], np.float64)
        heads[i, : len(head)] = head / (np.linalg.norm(head) + 1e-12)
    return np.fft.rfft(heads, fft, axis=1)


def closest_recordings(shots, held_out) -> list:
    """For each of `shots`: (the index in `held_out` of the most alike one-shot, their normalised
    cross-correlation over the first 0.2 s at the best lag)."""
    fft = 16384
    reference = _lookalike_spectra(held_out, fft=fft)
    out = []
    for spectrum in _lookalike_spectra(shots, fft=fft):
        peaks = np.abs(np.fft.irfft(reference * np.conj(spectrum), fft, axis=1)).max(axis=1)
        best = int(peaks.argmax())
        out.append((best, float(peaks[best])))
    return out


def held_out_lookalikes(shots, held_out) -> list:
    """For each of `shots`, the held-out one-shot that is the same recording, or None."""
    if not held_out:
        return [None] * len(shots)
    return [held_out[i] if peak >= LOOKALIKE_CORRELATION else None for i, peak in closest_recordings(shots, held_out)]


def export_folders(specs, out_dir: str | Path, *, max_seconds: float = 2.5, held_out=()) -> dict:
    """Write each one-shot of the kits as OUT/<class>/<kit>__<instrument>.flac; returns files per class.

    held_out: kit specs whose sounds must not be trained on; a one-shot that is the same recording as one of theirs
    is left out (logged).
    """
    import soundfile as sf

    out_dir = Path(out_dir)
    counts, seen = {}, {}
    for spec in (*specs, *held_out):  # every kit checked before anything is written
        kind, _, rest = spec.partition(":")
        path = Path(rest.removesuffix(":core").rsplit(":", 2)[0] if kind == "sf2" else rest)
        if kind != "hydrogen" and not path.exists() or kind == "hydrogen" and not any(
                (d / rest / "drumkit.xml").is_file() for d in HYDROGEN_KIT_DIRS):
            raise ValueError(f"kit '{spec}' is not installed (see the Debian packages in offline/oneshots.py)")
    reference = [shot for spec in held_out for shot in kit_oneshots(spec, seen={})]
    for spec in specs:
        shots = kit_oneshots(spec, seen=seen)
        if reference:
            twins = held_out_lookalikes(shots, reference)
            for shot, twin in zip(shots, twins):
                if twin is not None:
                    log.warning("left out %s %s: the same recording as held-out %s %s", shot.kit, shot.name, twin.kit,
                                twin.name)
            shots = [shot for shot, twin in zip(shots, twins) if twin is None]
        for shot in shots:
            folder = out_dir / shot.label
            folder.mkdir(parents=True, exist_ok=True)
            audio = shot.audio[: int(max_seconds * SAMPLE_RATE_HZ)].astype(np.float32)
            fade = min(len(audio), 480)
            audio[len(audio) - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
            peak = np.abs(audio).max()
            audio = audio / peak * 0.9 if peak > 0 else audio
            sf.write(str(folder / f"{_slug(shot.kit)}__{_slug(shot.name)}.flac"), audio, SAMPLE_RATE_HZ,
                     subtype="PCM_24")
            counts[shot.label] = counts.get(shot.label, 0) + 1
        log.warning("%s: %d one-shots", spec, len(shots))
    return counts


# ---------------------------------------------------------------------------------------------------------------
# Reading a sample file


class SampleReadError(ValueError):
    """An audio file that cannot be decoded; the message is one line for the user."""


def read_sample(path: str | Path, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                max_seconds: float = MAX_READ_S) -> np.ndarray:
    """The first `max_seconds` of a file, mono float64 at `sample_rate_hz`."""
    import soxr

    from drumscribe.realtime.sources import AudioInputError, read_audio

    try:
        audio, rate = read_audio(path, max_seconds=max_seconds)
    except AudioInputError as exc:
        raise SampleReadError(str(exc)) from None
    mono = audio.mean(axis=1, dtype=np.float64)  # read_audio has refused NaN and infinity
    if rate != sample_rate_hz and len(mono) > 1:
        mono = soxr.resample(mono, rate, sample_rate_hz)
    return mono


# ---------------------------------------------------------------------------------------------------------------
# The front end


@dataclass(frozen=True)
class OneShotParams:
    """How a sample becomes the model's input image; stored in every checkpoint's feature_params."""

    sample_rate_hz: int = SAMPLE_RATE_HZ
    n_fft: int = 2048  # 43 ms: resolves a kick's or tom's pitch
    hop_samples: int = 480  # 10 ms
    n_mels: int = 64
    fmin_hz: float = 30.0
    fmax_hz: float = 18000.0
    log_gain: float = 1e9
    fine_frames: int = 50  # frames from the onset at the hop: 0.5 s of attack at 10 ms
    coarse_frames: int = 50  # then frames of coarse_pool hops averaged: 1.5 s of decay at 30 ms
    coarse_pool: int = 3
    pre_onset_ms: float = 5.0  # audio kept before the onset
    onset_threshold_db: float = -30.0  # the onset is the first sample this close to the peak
    silence_peak_db: float = -100.0  # a file whose peak lies below this is silent: no class

    @property
    def n_frames(self) -> int:
        """Columns of the model's input image."""
        return self.fine_frames + self.coarse_frames

    @property
    def features(self) -> FeatureParams:
        return FeatureParams(**{f.name: getattr(self, f.name) for f in fields(FeatureParams)})

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> OneShotParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"feature parameter '{unknown[0]}' is not one of: {', '.join(sorted(known))}")
        return cls(**values)


def is_silent(audio: np.ndarray, params: OneShotParams = OneShotParams()) -> bool:
    return not len(audio) or float(np.abs(audio).max()) < 10 ** (params.silence_peak_db / 20)


def oneshot_image(audio: np.ndarray, params: OneShotParams = OneShotParams(), basis=None) -> np.ndarray:
    """(n_mels, n_frames) float32 log-mel image of a sample: peak-normalised, from just before its onset; the attack
    at the hop, the decay in frames of `coarse_pool` hops (their mean).

    audio: mono at params.sample_rate_hz. A silent sample gives an image of zeros.
    """
    hop = params.hop_samples
    n_hops = params.fine_frames + params.coarse_frames * params.coarse_pool
    n = n_hops * hop
    if is_silent(audio, params):
        return np.zeros((params.n_mels, params.n_frames), np.float32)
    x = np.asarray(audio, np.float64)
    x = x / np.abs(x).max()
    onset = int(np.argmax(np.abs(x) >= 10 ** (params.onset_threshold_db / 20)))
    start = max(0, onset - int(params.pre_onset_ms * params.sample_rate_hz / 1000))
    segment = np.zeros(n)
    piece = x[start : start + n]
    segment[: len(piece)] = piece
    mel = log_mel(segment, params.features, basis)[:n_hops]
    coarse = mel[params.fine_frames :].reshape(params.coarse_frames, params.coarse_pool, -1).mean(axis=1)
    return np.ascontiguousarray(np.concatenate((mel[: params.fine_frames], coarse)).T, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Augmentation


KIT_BLEED = {
    "kick": ("snare", "hihat_closed", "hihat_open", "tom", "crash", "ride"),
    "snare": ("kick", "hihat_closed", "hihat_open", "tom", "crash", "ride"),
    "tom": ("kick", "snare", "hihat_closed", "hihat_open", "crash", "ride"),
    "hihat_closed": ("kick", "snare", "tom", "crash", "ride"),
    "hihat_open": ("kick", "snare", "tom"),
    "crash": ("kick", "snare", "tom", "hihat_closed"),
    "ride": ("kick", "snare", "tom", "hihat_closed"),
    "rim": ("kick", "hihat_closed", "ride", "tom"),
    "clap": ("kick", "snare", "hihat_closed", "ride"),
    "percussion": ("kick", "snare", "hihat_closed", "ride"),
}
"""Class of a sample -> the classes whose sound bleeds under it on a recorded kit (every mic hears every drum). An
open hat, crash or ride is not given another cymbal's wash (the classes differ by their decay), nor a hat the other
hat; a class not named here (a folder set of other names) takes bleed from every other class of its set."""


def room_impulse(rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ, *, rt60_s: float | None = None,
                 direct_to_reverb_db: float | None = None) -> np.ndarray:
    """A small room's impulse response: the direct sound, a few early reflections (floor, shell, walls: 1-25 ms,
    some inverted) and a diffuse tail of noise falling 60 dB in rt60_s (0.15-0.8 s: a studio live room to a
    rehearsal room), its highs absorbed faster; the tail's energy lies direct_to_reverb_db (3-18 dB, close mics
    in a stem) below the direct sound's."""
    from scipy.signal import butter, sosfilt

    rt60 = float(np.exp(rng.uniform(np.log(0.15), np.log(0.8)))) if rt60_s is None else rt60_s
    drr_db = float(rng.uniform(3, 18)) if direct_to_reverb_db is None else direct_to_reverb_db
    n = int(rt60 * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    pre_delay = int(rng.uniform(0.004, 0.02) * sample_rate_hz)
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    tail = sosfilt(butter(1, float(rng.uniform(2500, 9000)), "lowpass", fs=sample_rate_hz, output="sos"), tail)
    tail[: pre_delay] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / max(1e-12, float(np.sum(tail ** 2))))
    ir = tail
    ir[0] += 1.0
    for _ in range(int(rng.integers(2, 7))):
        delay = int(rng.uniform(0.001, 0.025) * sample_rate_hz)
        if delay < n:
            ir[delay] += rng.choice((-1.0, 1.0)) * rng.uniform(0.1, 0.5)
    return ir.astype(np.float32)


def add_room(x: np.ndarray, rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ, **room) -> np.ndarray:
    """The hit played in a room (room_impulse): longer by the room's tail."""
    from scipy.signal import fftconvolve

    return fftconvolve(np.asarray(x, np.float64), room_impulse(rng, sample_rate_hz, **room)).astype(np.float32)


def mic_colour(x: np.ndarray, rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The microphone and where it stands: a close mic's proximity boost (low shelf +3-10 dB at 80-250 Hz) and
    presence peak, or an overhead's distance (high-passed at 80-400 Hz, airy top) with the comb of a second mic
    0.3-4 ms later."""
    import pedalboard as pb

    chain = []
    if rng.random() < 0.5:  # close mic
        chain.append(pb.LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(80, 250)),
                                       gain_db=float(rng.uniform(3, 10))))
        if rng.random() < 0.6:
            chain.append(pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(2000, 6000)),
                                       gain_db=float(rng.uniform(2, 6)), q=float(rng.uniform(0.7, 2))))
        y = np.asarray(pb.Pedalboard(chain)(np.asarray(x, np.float32), sample_rate_hz), np.float32).reshape(-1)
        return y
    chain.append(pb.HighpassFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(80), np.log(400))))))
    chain.append(pb.HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(6000, 12000)),
                                    gain_db=float(rng.uniform(0, 6))))
    y = np.asarray(pb.Pedalboard(chain)(np.asarray(x, np.float32), sample_rate_hz), np.float32).reshape(-1)
    if rng.random() < 0.6:  # a second mic further off: a comb
        delay = int(rng.uniform(0.0003, 0.004) * sample_rate_hz)
        y = y + float(rng.uniform(0.3, 0.8)) * np.concatenate((np.zeros(delay, np.float32), y[: len(y) - delay]))
    return y


def add_bleed(x: np.ndarray, others: list, rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ, *,
              mode: str | None = None, level_db: float | None = None) -> np.ndarray:
    """Another drum heard under the hit, quieter (level_db is its peak against the hit's): `under`, struck with it
    (snare wires under a kick, the kick under a snare: -32 to -14 dB, within 10 ms); `ring`, an earlier hit still
    sounding (its decay from 30-500 ms in, under the whole hit: -30 to -10 dB); `after`, a later hit 0.1-0.6 s
    on (-15 to 0 dB). others: the other drums' one-shots (mono, peak-normalised or not) to pick from."""
    if not others:
        return x
    x = np.asarray(x, np.float32)
    peak = float(np.abs(x).max(initial=0))
    if peak == 0:
        return x
    other = np.asarray(others[int(rng.integers(len(others)))], np.float32)
    mode = mode or str(rng.choice(("under", "ring", "after"), p=(0.35, 0.4, 0.25)))
    lo, hi = {"under": (-32, -14), "ring": (-30, -10), "after": (-15, 0)}[mode]
    gain_db = float(rng.uniform(lo, hi)) if level_db is None else level_db
    onset = int(np.argmax(np.abs(x) >= peak * 0.03))  # where the hit starts in x
    if mode == "under":
        at = onset + int(rng.uniform(-0.01, 0.01) * sample_rate_hz)
    elif mode == "ring":
        other = other[int(rng.uniform(0.03, 0.5) * sample_rate_hz) :]
        at = 0
    else:
        at = onset + int(rng.uniform(0.1, 0.6) * sample_rate_hz)
    other_peak = float(np.abs(other).max(initial=0))
    if other_peak == 0 or at >= len(x):
        return x
    out = x.copy()
    start = max(0, at)
    piece = other[start - at :][: len(x) - start]
    out[start : start + len(piece)] += piece * (peak / other_peak * 10 ** (gain_db / 20))
    return out


def cut_by_next_hit(x: np.ndarray, rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ, *,
                    next_hit: np.ndarray | None = None, keep_s: float | None = None) -> np.ndarray:
    """The hit as cut from a recording: its decay ends keep_s (0.08-0.8 s) after its onset, where the next stroke
    begins, with a 1-3 ms fade; with next_hit, the first 2-30 ms of that stroke (-12 to +3 dB against the hit) follow,
    as a slicer that cuts a little late leaves them."""
    x = np.asarray(x, np.float32)
    peak = float(np.abs(x).max(initial=0))
    if peak == 0:
        return x
    onset = int(np.argmax(np.abs(x) >= peak * 0.03))
    keep = onset + int((np.exp(rng.uniform(np.log(0.08), np.log(0.8))) if keep_s is None else keep_s)
                       * sample_rate_hz)
    if keep >= len(x):
        return x
    out = x[:keep].copy()
    fade = min(keep, int(rng.uniform(0.001, 0.003) * sample_rate_hz))
    out[keep - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
    if next_hit is not None and len(next_hit):
        nxt = np.asarray(next_hit, np.float32)
        loud = np.flatnonzero(np.abs(nxt) >= np.abs(nxt).max() * 0.03)
        nxt = nxt[loud[0] if len(loud) else 0 :][: int(rng.uniform(0.002, 0.03) * sample_rate_hz)]
        nxt = nxt / (np.abs(nxt).max(initial=0) + 1e-9) * peak * 10 ** (rng.uniform(-12, 3) / 20)
        out = np.concatenate((out, nxt.astype(np.float32)))
    return out


def bleed_sources(label: str | None, bank: dict | None) -> list:
    """The one-shots of `bank` (class -> list of mono arrays) that may bleed under a sample of `label`."""
    if not bank or label is None:
        return []
    classes = KIT_BLEED.get(label) if label in KIT_BLEED else [c for c in bank if c != label]
    return [shot for c in classes for shot in bank.get(c, ())]


RECORDED_SHARE = 0.5
"""The share of augmented copies made as a hit of a recorded kit; the others as a sample library's production."""


def augment_oneshot(audio: np.ndarray, rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                    max_seconds: float = 2.2, label: str | None = None, bleed: dict | None = None) -> np.ndarray:
    """A random production of the same hit: pitch (sampler-style varispeed), gain, filters and EQ, chorus,
    compression, saturation, coding, leading silence and a band limit (nothing above 7-16 kHz); then either (a
    RECORDED_SHARE of the copies) a hit of a recorded kit: a room (add_room), a mic's colour (mic_colour), other
    drums bleeding under it (add_bleed: from `bleed`, class -> one-shots, the classes KIT_BLEED names for `label`),
    its decay cut by the next stroke (cut_by_next_hit) and a room's noise floor; or a library's sample: a reverb, a
    tail cut with a fade, a white noise floor. Mono float32."""
    import pedalboard as pb
    import soxr

    r = rng.random
    x = np.asarray(audio, np.float32)
    loud = np.flatnonzero(np.abs(x) > np.abs(x).max(initial=0) * 0.03)
    x = x[max(0, loud[0] - 240) if len(loud) else 0 :][: int(max_seconds * sample_rate_hz)]
    if r() < 0.6 and len(x) > 16:  # pitch and speed together, as a sampler's tune knob
        ratio = 2 ** (rng.uniform(-4, 4) / 12)
        x = soxr.resample(x, sample_rate_hz * ratio, sample_rate_hz).astype(np.float32)
    recorded = r() < RECORDED_SHARE
    others = bleed_sources(label, bleed)
    if recorded and r() < 0.7 and len(x):  # a hit of a recorded kit: the room, the mic, the other drums
        x = add_room(x, rng, sample_rate_hz)[: int(max_seconds * sample_rate_hz)]
    if recorded and r() < 0.7 and len(x):
        x = mic_colour(x, rng, sample_rate_hz)
    if recorded and others and r() < 0.8:
        for _ in range(int(rng.integers(1, 4))):
            x = add_bleed(x, others, rng, sample_rate_hz)
    gain_db = rng.uniform(-30, 0)
    x = x / (np.abs(x).max(initial=0) + 1e-9) * 10 ** (gain_db / 20)
    chain = []
    if r() < 0.3:
        chain.append(pb.HighpassFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(20), np.log(400))))))
    if r() < 0.3:
        chain.append(pb.LowpassFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(3000), np.log(18000))))))
    for _ in range(rng.integers(0, 3)):
        chain.append(pb.PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(50), np.log(12000)))),
                                   gain_db=float(rng.uniform(-10, 10)), q=float(rng.uniform(0.5, 4))))
    if r() < 0.2:
        shelf = pb.LowShelfFilter if r() < 0.5 else pb.HighShelfFilter
        chain.append(shelf(cutoff_frequency_hz=float(rng.uniform(100, 8000)), gain_db=float(rng.uniform(-9, 9))))
    if r() < 0.25:
        chain.append(pb.Compressor(threshold_db=gain_db - float(rng.uniform(0, 20)), ratio=float(rng.uniform(2, 10)),
                                   attack_ms=float(rng.uniform(0.5, 30)), release_ms=float(rng.uniform(30, 300))))
    if r() < 0.1:
        chain.append(pb.Distortion(drive_db=float(rng.uniform(3, 20))))
    if r() < 0.15:
        chain.append(pb.Chorus(rate_hz=float(rng.uniform(0.3, 3)), depth=float(rng.uniform(0.1, 0.5)),
                               mix=float(rng.uniform(0.2, 0.5))))
    if not recorded and r() < 0.3:
        chain.append(pb.Reverb(room_size=float(rng.uniform(0.05, 0.8)), damping=float(rng.uniform(0.2, 0.9)),
                               wet_level=float(rng.uniform(0.03, 0.3)), dry_level=1.0, width=1.0))
    if r() < 0.05:
        chain.append(pb.Bitcrush(bit_depth=float(rng.uniform(6, 12))))
    if chain:
        x = np.asarray(pb.Pedalboard(chain)(x, sample_rate_hz), np.float32).reshape(-1)
    if r() < 0.05:
        x = np.asarray(pb.Pedalboard([pb.MP3Compressor(vbr_quality=float(rng.uniform(2, 8)))])(x, sample_rate_hz),
                       np.float32).reshape(-1)
    cut = r()
    if not recorded and cut < 0.25:  # a library sample cut short with a fade
        keep = int(np.exp(rng.uniform(np.log(0.05), np.log(1.5))) * sample_rate_hz)
        if keep < len(x):
            fade = min(keep, int(rng.uniform(0.005, 0.1) * sample_rate_hz))
            x = x[:keep].copy()
            x[keep - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
    elif recorded and cut < 0.6:  # a hit cut from a recording at the next stroke
        pool = others or ([] if not bleed else [s for shots in bleed.values() for s in shots])
        nxt = pool[int(rng.integers(len(pool)))] if pool and r() < 0.5 else None
        x = cut_by_next_hit(x, rng, sample_rate_hz, next_hit=nxt)
    peak = np.abs(x).max(initial=0)
    if r() < (0.6 if recorded else 0.4) and peak > 0:  # a noise floor: white, or a room's rumble (low-passed)
        noise = rng.normal(0, 1, len(x))
        if recorded and r() < 0.5:
            from scipy.signal import butter, sosfilt

            noise = sosfilt(butter(1, float(rng.uniform(200, 3000)), "lowpass", fs=sample_rate_hz, output="sos"),
                            noise)
            noise /= noise.std() + 1e-12
        x = x + (noise * peak * 10 ** (rng.uniform(-80, -35 if recorded else -40) / 20)).astype(np.float32)
    if r() < 0.3:  # silence before the hit
        x = np.concatenate((np.zeros(int(rng.uniform(0, 0.1) * sample_rate_hz), np.float32), x))
    if r() < 0.25 and len(x) > 16:  # a band-limited library: sampled at 22.05-32 kHz, or an mp3 encoder's low-pass
        low_rate = 2.0 * float(np.exp(rng.uniform(np.log(7000), np.log(16000))))
        x = soxr.resample(soxr.resample(x, sample_rate_hz, low_rate), low_rate, sample_rate_hz).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


AUGMENTATION_FUNCTIONS = ("augment_oneshot", "room_impulse", "add_room", "mic_colour", "add_bleed", "cut_by_next_hit",
                          "bleed_sources")
"""The functions whose code makes an augmented image: `train folders --cache` keys its images by their source."""


# ---------------------------------------------------------------------------------------------------------------
# A synthetic three-class set (kick, snare, hihat): the smoke test of `train folders`


def synth_hit(label: str, rng: np.random.Generator, sample_rate_hz: int = 44100) -> np.ndarray:
    """A synthesised kick (pitch-swept sine), snare (tone plus band of noise) or hihat (high noise burst)."""
    from scipy.signal import butter, sosfilt

    n = int(rng.uniform(0.4, 1.2) * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    noise = rng.normal(0, 1, n)
    if label == "kick":
        f0, f1 = rng.uniform(90, 200), rng.uniform(40, 70)
        freq = f1 + (f0 - f1) * np.exp(-t / rng.uniform(0.01, 0.06))
        x = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate_hz) * np.exp(-t / rng.uniform(0.08, 0.4))
        x += 0.3 * rng.random() * noise * np.exp(-t / 0.004)  # beater click
    elif label == "snare":
        tone = np.sin(2 * np.pi * rng.uniform(150, 280) * t) * np.exp(-t / rng.uniform(0.03, 0.12))
        lo, hi = rng.uniform(800, 2500), rng.uniform(6000, 12000)
        band = sosfilt(butter(2, [lo, hi], "bandpass", fs=sample_rate_hz, output="sos"), noise)
        x = rng.uniform(0.3, 1.0) * tone + band / (np.abs(band).max() + 1e-9) * np.exp(-t / rng.uniform(0.05, 0.25))
    elif label == "hihat":
        cut = rng.uniform(5000, 9000)
        hiss = sosfilt(butter(4, cut, "highpass", fs=sample_rate_hz, output="sos"), noise)
        x = hiss * np.exp(-t / rng.uniform(0.02, 0.4))
    else:
        raise ValueError(f"synthetic class '{label}' is not one of: kick, snare, hihat")
    return (x / np.abs(x).max() * 10 ** (rng.uniform(-20, -1) / 20)).astype(np.float32)


SYNTH_CLASSES = ("kick", "snare", "hihat")


def write_synthetic_set(out_dir: str | Path, *, files_per_class: int = 60, seed: int = 0) -> dict:
    """A folder-per-class set of synthesised hits in assorted formats (wav/flac, 44.1/48 kHz, mono/stereo)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    counts = {}
    for label in SYNTH_CLASSES:
        for i in range(files_per_class):
            rate = int(rng.choice([44100, 48000]))
            audio = synth_hit(label, rng, rate)
            audio = np.concatenate((np.zeros(int(rng.uniform(0, 0.03) * rate), np.float32), audio))
            if rng.random() < 0.3:
                audio = np.stack((audio, audio * rng.uniform(0.5, 1.0)), axis=1)
            folder = out_dir / label / ("deep" if i % 4 == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            ext, subtype = (".flac", "PCM_16") if i % 3 == 0 else (
                ".wav", str(rng.choice(["PCM_16", "PCM_24", "FLOAT"])))
            sf.write(str(folder / f"{label}_{i:03d}{ext}"), audio, rate, subtype=subtype)
        counts[label] = files_per_class
    return counts
