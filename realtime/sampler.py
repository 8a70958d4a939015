"""A drum sampler: MIDI drum notes in, stereo audio out, block by block, for auditions and live monitoring.

Notes arrive per block as `NoteBlock(n_samples, ((offset_samples, note, velocity), ...))` and are mapped back to
drums by a drum map (General-MIDI aliases such as 35 and 40 are understood too). Each drum plays the first
instrument the kit has for it:

- velocity layers: the layer whose velocity range covers the note; several layers over one range play round robin;
- loudness: Hydrogen and one-shot kits scale a sample by velocity (as Hydrogen does); sf2 layers were rendered at a
  velocity already, so they are scaled by (velocity / rendered velocity)^2, the SF2 default velocity curve;
- choke groups: every hi-hat note (closed, pedal or open) cuts the hi-hat still ringing, and instruments that share
  a Hydrogen muteGroup cut each other, with a short fade so the cut does not click;
- per-drum gain in dB and a fixed stereo place per drum (a drummer's view: hi-hat left, floor tom and ride right).

Everything is decided per sample from absolute stream positions, so the output is the same whatever the block
size; `reset()` clears the three pieces of streaming state (position, voices, round robin counters).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import SAMPLE_RATE_HZ
from .drums import DRUMS, DrumMap, load_drum_map
from .kits import GM_NOTE_DRUM, Kit

CHANNELS = 2
CHOKE_FADE_MS = 8.0
"""A choked voice fades out over this long rather than stopping dead (which clicks)."""

MAX_VOICES = 64
"""Voices sounding at once; a note beyond this fades out the oldest voice."""

DRUM_GAIN_RANGE_DB = (-96.0, 48.0)
"""The level a drum may be given (audition --gain DRUM=DB): past these it is silence, or overflows float32."""

HI_HATS = ("hh_closed", "hh_pedal", "hh_open")

DEFAULT_PAN = {"kick": 0.0, "snare": 0.0, "side_stick": 0.0, "hh_closed": -0.4, "hh_pedal": -0.4, "hh_open": -0.4,
               "tom_high": -0.2, "tom_mid": 0.15, "tom_low": 0.4, "crash": -0.3, "ride": 0.45}
"""Stereo place of each drum, -1 (left) to 1 (right), as the drummer hears the kit."""


class SamplerError(ValueError):
    """A sampler setting that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class NoteBlock:
    """The MIDI drum notes that start within the next `n_samples` samples: (offset_samples, note, velocity)."""

    n_samples: int
    notes: tuple = ()

    def __post_init__(self):
        if self.n_samples < 0:
            raise ValueError(f"NoteBlock.n_samples must be >= 0, got {self.n_samples}")
        for offset, note, velocity in self.notes:
            if not 0 <= offset < max(self.n_samples, 1):
                raise ValueError(f"NoteBlock note offset {offset} is not in 0-{self.n_samples - 1}")
            if not 0 <= note <= 127:
                raise ValueError(f"NoteBlock note {note} is not in 0-127")
            if not 1 <= velocity <= 127:
                raise ValueError(f"NoteBlock velocity {velocity} is not in 1-127")


class _Voice:
    """One sample playing: where it started in the stream and, once choked, where its fade began."""

    __slots__ = ("audio", "start", "end", "gain_left", "gain_right", "choke_key", "stop_at")

    def __init__(self, audio, start, gain_left, gain_right, choke_key):
        self.audio = audio
        self.start = start
        self.end = start + len(audio)
        self.gain_left = gain_left
        self.gain_right = gain_right
        self.choke_key = choke_key
        self.stop_at = None

    def stop(self, at: int, fade: int) -> None:
        if self.stop_at is None or at < self.stop_at:
            self.stop_at = at
            self.end = min(self.end, at + fade)


def note_drums(drum_map: DrumMap) -> dict:
    """MIDI note -> drum: the drum map's notes first, then the General-MIDI aliases it does not use."""
    drums = {note: drum for note, drum in GM_NOTE_DRUM.items()}
    drums.update({drum_map.note(drum): drum for drum in DRUMS})
    return drums


class Sampler:
    """Plays a kit: `process(NoteBlock) -> (2, n_samples) float32`. A streaming stage with no latency."""

    latency_samples = 0

    def __init__(self, kit: Kit, drum_map: DrumMap | None = None, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                 drum_gain_db: dict | None = None, pan: dict | None = None, choke: bool = True,
                 max_voices: int = MAX_VOICES):
        drum_map = drum_map or load_drum_map()
        for option, values in (("drum gain", drum_gain_db or {}), ("pan", pan or {})):
            for drum, value in values.items():
                if drum not in DRUMS:
                    raise SamplerError(f"{option} for '{drum}': '{drum}' is not one of: {', '.join(DRUMS)}")
                if not np.isfinite(value):
                    raise SamplerError(f"{option} for '{drum}' is {value}, expected a finite number")
                low, high = DRUM_GAIN_RANGE_DB
                if option == "drum gain" and not low <= value <= high:
                    raise SamplerError(f"{option} for '{drum}' is {value:g} dB, expected {low:g} to {high:g} dB")
        if max_voices < 1:
            raise SamplerError(f"max_voices {max_voices} must be >= 1")
        self.kit = kit
        self.sample_rate_hz = sample_rate_hz
        self.note_drum = note_drums(drum_map)
        self.choke = choke
        self.max_voices = max_voices
        self.fade_samples = max(1, int(round(CHOKE_FADE_MS / 1000 * sample_rate_hz)))
        places = {**DEFAULT_PAN, **(pan or {})}
        gains = drum_gain_db or {}
        self.instruments = {}  # drum -> (instrument, left gain, right gain, choke key)
        for drum in kit.drums:
            instrument = kit.instruments[drum][0]
            level = instrument.gain * 10 ** (gains.get(drum, 0.0) / 20)
            place = float(np.clip(places.get(drum, 0.0), -1, 1))
            if instrument.choke_group >= 0:
                key = ("mute group", instrument.choke_group)
            else:
                key = "hi-hat" if drum in HI_HATS else None
            self.instruments[drum] = (instrument, level * min(1.0, 1 - place), level * min(1.0, 1 + place), key)
        self.skipped_notes = {}  # note -> count of notes on keys the kit cannot play; not streaming state
        # streaming state
        self.position_samples = 0
        self.voices = []
        self.round_robin = {}

    def plays(self, note: int) -> bool:
        """Whether a note sounds on this kit (its drum, through the drum map or a GM alias, is in the kit)."""
        return self.note_drum.get(int(note)) in self.instruments

    def reset(self) -> None:
        self.position_samples = 0
        self.voices = []
        self.round_robin = {}

    @property
    def sounding(self) -> bool:
        """Whether any voice is still playing (a render streams on until this is false)."""
        return any(v.end > self.position_samples for v in self.voices)

    def _layer(self, drum: str, instrument, velocity: float):
        """The velocity layer for a note: the covering range whose middle lies nearest, round robin within it."""
        covering = [layer for layer in instrument.layers
                    if layer.min_velocity <= velocity <= layer.max_velocity] or instrument.layers
        middle = min(covering, key=lambda layer: abs((layer.min_velocity + layer.max_velocity) / 2 - velocity))
        same = [layer for layer in covering if abs(layer.min_velocity - middle.min_velocity) < 1e-3
                and abs(layer.max_velocity - middle.max_velocity) < 1e-3]
        if len(same) == 1:
            return same[0]
        key = (drum, round(middle.min_velocity, 3), round(middle.max_velocity, 3))
        turn = self.round_robin.get(key, 0)
        self.round_robin[key] = turn + 1
        return same[turn % len(same)]

    def _start(self, at: int, note: int, velocity: int) -> None:
        drum = self.note_drum.get(note)
        if drum is None or drum not in self.instruments:
            self.skipped_notes[note] = self.skipped_notes.get(note, 0) + 1
            return
        instrument, left, right, key = self.instruments[drum]
        v = velocity / 127.0
        layer = self._layer(drum, instrument, v)
        if self.kit.kind == "sf2":  # rendered at max_velocity already: the SF2 default (squared) velocity curve
            gain = (v / max(layer.max_velocity, 1e-3)) ** 2
        else:
            gain = v
        gain *= layer.gain
        # a choke, or too many voices, fades old voices out from here (voices that ended before this note are
        # still mixed into this block, and leave after it)
        sounding = [voice for voice in self.voices if voice.end > at and voice.start < at]
        if self.choke and key is not None:
            for voice in sounding:
                if voice.choke_key == key:
                    voice.stop(at, self.fade_samples)
        live = [voice for voice in self.voices if voice.end > at and voice.stop_at is None]
        for voice in live[: max(0, len(live) - self.max_voices + 1)]:
            voice.stop(at, self.fade_samples)
        if len(layer.audio):
            self.voices.append(_Voice(layer.audio, at, gain * left, gain * right, key))

    def process(self, block: NoteBlock) -> np.ndarray:
        if not isinstance(block, NoteBlock):
            raise TypeError(f"Sampler.process takes a NoteBlock, got {type(block).__name__}")
        begin = self.position_samples
        n = block.n_samples
        for offset, note, velocity in sorted(block.notes, key=lambda x: x[0]):
            self._start(begin + int(offset), int(note), int(velocity))
        out = np.zeros((CHANNELS, n), dtype=np.float32)
        stop = begin + n
        fade = self.fade_samples
        for voice in self.voices:
            s, e = max(voice.start, begin), min(voice.end, stop)
            if s >= e:
                continue
            segment = voice.audio[s - voice.start : e - voice.start]
            if voice.stop_at is not None and e > voice.stop_at:
                ramp = 1.0 - np.arange(s - voice.stop_at, e - voice.stop_at, dtype=np.float64) / fade
                segment = segment * np.clip(ramp, 0.0, 1.0).astype(np.float32)
            out[0, s - begin : e - begin] += voice.gain_left * segment
            out[1, s - begin : e - begin] += voice.gain_right * segment
        self.position_samples = stop
        self.voices = [voice for voice in self.voices if voice.end > stop]
        return out


def note_blocks(notes, *, block_size_samples: int, sample_rate_hz: int = SAMPLE_RATE_HZ, start_samples: int = 0):
    """Cut (time_s, note, velocity) notes into NoteBlocks of `block_size_samples`, forever (the caller stops).

    A note's sample is round(time_s * rate); notes before `start_samples` are dropped.
    """
    if block_size_samples < 1:
        raise SamplerError(f"block size {block_size_samples} is not a positive number of samples")
    timed = sorted((int(round(t * sample_rate_hz)), int(note), int(velocity)) for t, note, velocity in notes)
    i = 0
    while i < len(timed) and timed[i][0] < start_samples:
        i += 1
    position = start_samples
    while True:
        stop = position + block_size_samples
        mine = []
        while i < len(timed) and timed[i][0] < stop:
            at, note, velocity = timed[i]
            mine.append((at - position, note, velocity))
            i += 1
        yield NoteBlock(block_size_samples, tuple(mine))
        position = stop
