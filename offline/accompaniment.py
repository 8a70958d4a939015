"""A band to play along with the drums: a bass line and chords, played by General MIDI programs of a soundfont.

Used for the example song, and reusable wherever drums need non-drum sound around them (a transcriber
must ignore bass notes and chord stabs, which have onsets too).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from drumscribe.realtime import SAMPLE_RATE_HZ

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian fluid-soundfont-gm (MIT)

# General MIDI programs, counted from 0
BASS_PROGRAMS = (32, 33, 34, 38)  # acoustic, finger, pick, synth bass 1
CHORD_PROGRAMS = (0, 4, 16, 25, 27, 48, 89)  # piano, e-piano, organ, steel / clean guitar, strings, warm pad
# overdriven / distortion guitar, violin, choir, trumpet, alto sax, flute, square / saw lead
LEAD_PROGRAMS = (29, 30, 40, 52, 56, 65, 73, 80, 81)
GUITAR_PROGRAMS = (29, 30)  # power chords: overdriven, distortion guitar

# Chord progressions as (scale degree in semitones above the key, minor?) per bar
PROGRESSIONS = (
    ((0, False), (7, False), (9, True), (5, False)),  # I V vi IV
    ((0, False), (5, False), (7, False), (5, False)),  # I IV V IV
    ((9, True), (5, False), (0, False), (7, False)),  # vi IV I V
    ((0, True), (8, False), (3, False), (10, False)),  # i VI III VII
    ((0, True), (5, True), (10, False), (3, False)),  # i iv VII III
)


_BLOCK = 64  # fluidsynth renders in blocks of this many samples and starts notes on their edges


class AccompanimentError(RuntimeError):
    """The accompaniment cannot be rendered (no soundfont, no fluidsynth)."""


def _schedule(rng: np.random.Generator, *, tempo_bpm: float, bars: int):
    """Note events (time_s, channel, note, velocity, duration_s) of bass (channel 0) and chords (channel 1)."""
    beat = 60.0 / tempo_bpm
    key = int(rng.integers(0, 12))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bass_pattern = int(rng.integers(3))  # 0: eighths on the root, 1: root-fifth-octave, 2: syncopated
    chord_pattern = int(rng.integers(3))  # 0: whole bar, 1: half notes, 2: off-beat stabs
    events = []
    for bar in range(bars):
        degree, minor = progression[bar % len(progression)]
        root = 36 + (key + degree) % 12  # C2..B2
        third = 3 if minor else 4
        start = bar * 4 * beat
        # bass
        if bass_pattern == 0:
            steps = [(i * 0.5, root, 0.45) for i in range(8)]
        elif bass_pattern == 1:
            steps = [(0, root, 0.9), (1, root + 7, 0.9), (2, root + 12, 0.9), (3, root + 7, 0.9)]
        else:
            steps = [(0, root, 0.7), (0.75, root, 0.2), (1.5, root + 12, 0.4), (2, root, 0.7), (3, root + 7, 0.4),
                     (3.5, root + 10 if minor else root + 9, 0.4)]
        for at, note, length in steps:
            events.append((start + at * beat + rng.normal(0, 0.004), 0, note, int(rng.integers(80, 110)),
                           length * beat))
        # chords: a triad around middle C, plus the octave of the root on top sometimes
        chord_root = 60 + (key + degree) % 12
        if chord_root > 66:
            chord_root -= 12
        voicing = [chord_root, chord_root + third, chord_root + 7] + ([chord_root + 12] if rng.random() < 0.5 else [])
        if chord_pattern == 0:
            hits = [(0, 3.9)]
        elif chord_pattern == 1:
            hits = [(0, 1.9), (2, 1.9)]
        else:
            hits = [(0.5, 0.3), (1.5, 0.3), (2.5, 0.3), (3.5, 0.3)]
        for at, length in hits:
            velocity = int(rng.integers(55, 85))
            for i, note in enumerate(voicing):  # a little strum
                events.append((start + at * beat + 0.008 * i, 1, note, velocity, length * beat))
    return sorted(events)


def _lead_schedule(rng: np.random.Generator, *, tempo_bpm: float, bars: int, power_chords: bool):
    """A melody on a pentatonic scale (channel 2) and, with `power_chords`, eighth-note power chords, one root per bar
    from that scale's I, IV, V and vi (III in minor) (channel 3): the parts of a band that the bass-and-chords
    schedule lacks. Their key is drawn here, not shared with `_schedule`'s: training needs pitched onsets that are
    not drums, not harmony (the shipped model was trained on these renders)."""
    beat = 60.0 / tempo_bpm
    key = int(rng.integers(0, 12))
    minor = bool(rng.random() < 0.5)
    scale = (0, 3, 5, 7, 10) if minor else (0, 2, 4, 7, 9)
    pitches = [72 + key % 12 - 12 + 12 * octave + step for octave in range(3) for step in scale]
    pitches = [p for p in pitches if 64 <= p <= 88]
    degrees = (0, 5, 7, 3 if minor else 9)
    events, i = [], int(rng.integers(len(pitches)))
    for bar in range(bars):
        start = bar * 4 * beat
        at = 0.0
        while at < 4.0:
            length = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            if rng.random() < 0.75:  # a note, else a rest
                i = int(np.clip(i + rng.integers(-2, 3), 0, len(pitches) - 1))
                events.append((start + at * beat + rng.normal(0, 0.006), 2, pitches[i], int(rng.integers(70, 110)),
                               min(length, 4.0 - at) * beat * 0.95))
            at += length
        if power_chords:
            root = 40 + (key + degrees[int(rng.integers(len(degrees)))]) % 12  # E2..D#3
            for k in range(8):
                velocity = int(rng.integers(85, 115))
                for note in (root, root + 7, root + 12):
                    events.append((start + k * 0.5 * beat + rng.normal(0, 0.003), 3, note, velocity, 0.45 * beat))
    return events


def render_accompaniment(rng: np.random.Generator, *, tempo_bpm: float, bars: int,
                         sample_rate_hz: int = SAMPLE_RATE_HZ, soundfont: str | Path = DEFAULT_SOUNDFONT,
                         bass_program: int | None = None, chord_program: int | None = None,
                         synth=None, lead: bool = False, amp: bool = False) -> np.ndarray:
    """Bass and chords in 4/4 for `bars` bars at `tempo_bpm`: mono float32, `bars * 4` beats long, peak -6 dBFS.

    The key, progression, patterns and (unless given) the General MIDI programs are drawn from `rng`. With `lead`,
    a melody (LEAD_PROGRAMS) plays too, and in half the clips distorted power chords (GUITAR_PROGRAMS).
    `synth` reuses a loaded `(fluidsynth.Synth, sfid)` pair (loading a soundfont takes seconds); it is left alive.
    With `amp`, power chords go through a guitar amp (`amp_chain`: drive, then a cabinet's band) and come back 0-6 dB
    above their clean level: the dense, broadband wall of a rock band's rhythm guitars, which buries a kick's click.
    """
    try:
        import fluidsynth
    except ImportError as exc:
        raise AccompanimentError(f"pyfluidsynth is not usable ({exc})") from None
    soundfont = Path(soundfont)
    if not soundfont.is_file():
        raise AccompanimentError(f"soundfont '{soundfont}' does not exist (Debian package fluid-soundfont-gm)")
    if bass_program is None:
        bass_program = int(rng.choice(BASS_PROGRAMS))
    if chord_program is None:
        chord_program = int(rng.choice(CHORD_PROGRAMS))
    events = _schedule(rng, tempo_bpm=tempo_bpm, bars=bars)
    programs = {0: bass_program, 1: chord_program}
    if lead:
        programs[2] = int(rng.choice(LEAD_PROGRAMS))
        power_chords = bool(rng.random() < 0.5)
        if power_chords:
            programs[3] = int(rng.choice(GUITAR_PROGRAMS))
        events = sorted(events + _lead_schedule(rng, tempo_bpm=tempo_bpm, bars=bars, power_chords=power_chords))

    n_total = int(round(bars * 4 * 60.0 / tempo_bpm * sample_rate_hz))
    amped = amp and 3 in programs
    if amped:  # drawn only with an amp: renders without one stay as they were
        chain = amp_chain(rng)
        boost_db = float(rng.uniform(0, 6))
    owned = synth is None
    if owned:
        synth = fluidsynth.Synth(samplerate=float(sample_rate_hz), gain=0.4)
        sfid = synth.sfload(str(soundfont))
    else:
        synth, sfid = synth
    try:
        if sfid < 0:
            raise AccompanimentError(f"'{soundfont}' is not a readable sf2 soundfont")
        for channel, program in programs.items():
            synth.program_select(channel, sfid, 0, program)
        if amped:
            mono = _play(synth, [e for e in events if e[1] != 3], n_total, sample_rate_hz)
            _silence(synth, programs, sample_rate_hz)
            clean = _play(synth, [e for e in events if e[1] == 3], n_total, sample_rate_hz)
            import pedalboard as pb

            driven = np.asarray(pb.Pedalboard(chain)(clean, sample_rate_hz), np.float32).reshape(-1)[:n_total]
            level = float(np.sqrt(np.mean(clean**2))) / (float(np.sqrt(np.mean(driven**2))) + 1e-12)
            mono = mono + driven * level * 10 ** (boost_db / 20)
        else:
            mono = _play(synth, events, n_total, sample_rate_hz)
    finally:
        if owned:
            synth.delete()
        else:
            _silence(synth, programs, sample_rate_hz)
    peak = float(np.abs(mono).max())
    return (mono / peak * 10 ** (-6 / 20)).astype(np.float32) if peak > 0 else mono.astype(np.float32)


def _play(synth, events, n_total: int, sample_rate_hz: int) -> np.ndarray:
    """Mono float32 of `n_total` samples: note-ons and note-offs of `events` in time order, the samples between
    them rendered by `synth`."""
    actions = [(t, 1, ch, note, vel) for t, ch, note, vel, _ in events]
    actions += [(t + length, 0, ch, note, 0) for t, ch, note, _, length in events]
    actions.sort()
    pieces, done = [], 0
    for t, is_on, channel, note, velocity in actions:
        at = min(n_total, max(0, int(round(t * sample_rate_hz))))
        if at > done:
            pieces.append(np.asarray(synth.get_samples(at - done), dtype=np.float32))
            done = at
        if is_on:
            synth.noteon(channel, note, velocity)
        else:
            synth.noteoff(channel, note)
    if n_total > done:
        pieces.append(np.asarray(synth.get_samples(n_total - done), dtype=np.float32))
        done = n_total
    if done % _BLOCK:  # end on fluidsynth's block clock, so the next render's notes land as this one's did
        synth.get_samples(_BLOCK - done % _BLOCK)
    stereo = np.concatenate(pieces).reshape(-1, 2) if pieces else np.zeros((0, 2), np.float32)
    mono = stereo.mean(axis=1)[:n_total]
    return np.pad(mono, (0, n_total - len(mono))) if len(mono) < n_total else mono


def _silence(synth, programs: dict, sample_rate_hz: int) -> None:
    """Every sound of `programs`' channels stopped, and what is left rendered away, ending on the block clock: a
    reused synth then renders the same events the same way whatever it played before."""
    for channel in programs:
        synth.all_notes_off(channel)
        synth.all_sounds_off(channel)
    synth.get_samples(-(-int(0.5 * sample_rate_hz) // _BLOCK) * _BLOCK)


def amp_chain(rng: np.random.Generator) -> list:
    """A random guitar amp as pedalboard plugins: a high-pass before the drive, 15-35 dB of drive, and a
    cabinet's band (low-pass at 3.5-7 kHz, a mid bump)."""
    import pedalboard as pb

    return [pb.HighpassFilter(cutoff_frequency_hz=float(rng.uniform(70, 150))),
            pb.Distortion(drive_db=float(rng.uniform(15, 35))),
            pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(800, 2500)), gain_db=float(rng.uniform(0, 6)), q=1.0),
            pb.LowpassFilter(cutoff_frequency_hz=float(rng.uniform(3500, 7000)))]
