"""Training songs that sound like records: drums in an arranged band, mixed and mastered.

`render_song` plays one clip of a song: sections (intro, verse, chorus, break; sometimes a bar or two without
drums) over one chord progression at the drums' tempo, in one of STYLES; 4-8 band parts from a General MIDI
soundfont (bass locked to the kick, rhythm guitars clean / crunch / high-gain and double-tracked, piano, organ, pads,
strings, brass stabs, a sung-like lead with vibrato and formants); hand percussion (tambourine, shaker, cowbell,
claps, congas) played as records have it and labelled apart from the drums; each part panned and equalised, the
band bussed with EQ, reverb and compression, the drums 12 dB under to 3 dB over the band (the MDB dev mixes measure
-10.6 to -2.9 dB, drums RMS against the rest), master compression, a limiter to commercial loudness and mp3 coding.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drumscribe.realtime import SAMPLE_RATE_HZ

from .accompaniment import DEFAULT_SOUNDFONT, PROGRESSIONS, _play, _silence, amp_chain
from .render import (
    Hit,
    bleed_buses,
    drum_levels_db,
    generate_pattern,
    load_percussion,
    mix_buses,
    mix_kits,
    render_hits,
    tune_kit,
)

SONG_DRUMS_DB = (-12.0, 3.0)
"""The drums' RMS level around the band's, in dB (records: 12 dB under to 3 dB over)."""

LOUDNESS_DB = (-16.0, -8.0)
"""The master's RMS level in dBFS before the limiter (commercial loudness, after it about 1 dB lower)."""


@dataclass(frozen=True)
class Style:
    tempo_bpm: tuple  # range
    groove: str  # generate_pattern's style
    bass: tuple  # GM programs
    guitar: str  # "" (no guitar), "clean", "crunch", "high", or several separated by '|': one drawn
    guitar_pattern: str  # eighths, sixteenths, strum, skank, scratch, whole
    keys: tuple  # GM programs of the keys / pads / strings / brass pool
    lead: tuple  # GM programs of the sung-like or instrumental lead


VOICES = (52, 53, 54, 85)  # choir aahs, voice oohs, synth voice, lead 6 (voice)
STYLES = {
    "rock": Style((90, 160), "groove", (33, 34), "crunch|high|clean", "eighths", (0, 16, 18, 48, 89), VOICES + (29,)),
    "punk": Style((150, 200), "groove", (34, 33), "high|crunch", "eighths", (0, 16), VOICES),
    "metal": Style((100, 200), "groove", (34, 33), "high", "sixteenths", (48, 89, 91), VOICES + (30,)),
    "pop": Style((85, 130), "groove", (33, 38, 39), "clean|crunch|", "strum", (0, 4, 48, 88, 89, 61), VOICES),
    "funk": Style((90, 120), "groove", (33, 36, 38), "clean", "scratch", (4, 16, 61, 62), VOICES + (65,)),
    "soul": Style((70, 110), "groove", (33, 32), "clean|", "skank", (0, 4, 16, 48, 61), VOICES + (65,)),
    "reggae": Style((60, 90), "groove", (33, 38), "clean", "skank", (16, 0, 17), VOICES),
    "country": Style((100, 160), "groove", (32, 33), "clean|crunch", "strum", (0, 48, 22), VOICES + (40,)),
    "blues": Style((60, 120), "groove", (33, 32), "crunch|clean", "strum", (0, 16, 17, 61), VOICES + (29, 22)),
    "jazz": Style((100, 200), "jazz", (32,), "", "whole", (0, 4, 48, 61, 65), (65, 66, 56, 53)),
    "electronic": Style((115, 135), "groove", (38, 39, 81), "", "whole", (80, 81, 88, 89, 90, 91, 95), VOICES + (81,)),
    "ballad": Style((60, 85), "groove", (33, 32), "clean|", "strum", (0, 4, 48, 49, 88, 89), VOICES),
}

SECTIONS = {  # the band's intensity per section (which parts play), and whether the drums may sit out
    "intro": 0.35, "verse": 0.6, "chorus": 1.0, "break": 0.2, "outro": 0.4,
}

# Hand percussion from a GM soundfont's drum kit: GM note -> instrument. None of it is a drum of DRUMS.
HAND_PERCUSSION_NOTES = {54: "tambourine", 82: "shaker", 70: "maracas", 56: "cowbell", 39: "claps",
                         62: "conga_mute", 63: "conga_high", 64: "conga_low"}
PERCUSSION_LABEL = "percussion"


def arrangement(rng: np.random.Generator, bars: int) -> list:
    """The section of each of `bars` bars: a stretch of a song (intro, verse, chorus, break, chorus, outro),
    starting at a random point, sections 1-8 bars long."""
    song = [("intro", int(rng.choice([2, 4]))), ("verse", int(rng.choice([4, 8]))), ("chorus", int(rng.choice([4, 8]))),
            ("break", int(rng.choice([1, 2]))), ("verse", 4), ("chorus", int(rng.choice([4, 8]))),
            ("outro", int(rng.choice([2, 4])))]
    flat = [name for name, n in song for _ in range(n)]
    start = int(rng.integers(0, max(1, len(flat) - bars)))
    out = flat[start:start + bars]
    return out + ["chorus"] * (bars - len(out))


def drumless_bars(rng: np.random.Generator, sections: list) -> set:
    """Bars where the drums sit out: a bar or two of the intro (a count-in band), a break bar, the last outro bar."""
    out = set()
    intro = [i for i, s in enumerate(sections) if s == "intro"]
    if intro and rng.random() < 0.5:
        out.update(intro[: int(rng.integers(1, 3))])
    breaks = [i for i, s in enumerate(sections) if s == "break"]
    if breaks and rng.random() < 0.4:
        out.add(breaks[0])
    if sections[-1] == "outro" and rng.random() < 0.3:
        out.add(len(sections) - 1)
    if len(out) >= len(sections):
        out = set()
    return out


def _chord(key: int, degree: int, minor: bool, low: int) -> tuple:
    root = low + (key + degree) % 12
    return root, (root, root + (3 if minor else 4), root + 7)


def _part_events(rng, part: str, sections: list, intensity_min: float, key: int, progression, beat: float,
                 kicks_by_bar: dict, pattern: str = "", swing: bool = False) -> list:
    """Note events (time_s, channel 0, note, velocity, duration_s) of one part over the bars whose section is at
    least `intensity_min`."""
    events = []
    j = lambda sd: float(rng.normal(0, sd))  # noqa: E731 (human timing)
    melody_i = int(rng.integers(0, 7))
    scale = (0, 2, 3, 5, 7, 8, 10) if progression[0][1] else (0, 2, 4, 5, 7, 9, 11)
    for bar, section in enumerate(sections):
        if SECTIONS[section] < intensity_min:
            continue
        degree, minor = progression[bar % len(progression)]
        start = bar * 4 * beat
        loud = SECTIONS[section]

        def vel(lo, hi, loud=loud):
            return int(np.clip(rng.integers(lo, hi) * (0.8 + 0.2 * loud), 1, 127))

        if part == "bass":
            root, _ = _chord(key, degree, minor, 28)
            kicks = kicks_by_bar.get(bar, [])
            if pattern == "walking":
                steps = [(b, root + (0, 4 if not minor else 3, 7, 9)[b]) for b in range(4)]
                events += [(start + b * beat + j(0.006), 0, n, vel(70, 100), 0.9 * beat) for b, n in steps]
            elif pattern == "kick" and kicks:  # locked to the kick drum, as a rock bassist plays
                for i, t in enumerate(kicks):
                    end = kicks[i + 1] if i + 1 < len(kicks) else start + 4 * beat
                    events.append((t + j(0.004), 0, root + (12 if rng.random() < 0.1 else 0), vel(85, 115),
                                   max(0.08, min(end - t, 2 * beat) * 0.9)))
            elif pattern == "eighths":
                events += [(start + i * beat / 2 + j(0.004), 0, root, vel(80, 110), 0.45 * beat) for i in range(8)]
            elif pattern == "reggae":
                events += [(start + 2 * beat + j(0.005), 0, root, vel(90, 115), 0.9 * beat),
                           (start + 2.75 * beat + j(0.005), 0, root + 7, vel(70, 95), 0.2 * beat),
                           (start + 3.5 * beat + j(0.005), 0, root + 12, vel(70, 95), 0.4 * beat)]
            else:  # funk: sixteenths with rests and octave pops
                for i in range(16):
                    if rng.random() < 0.55:
                        note = root + (12 if rng.random() < 0.25 else 0)
                        events.append((start + i * beat / 4 + j(0.004), 0, note, vel(70, 115), 0.2 * beat))
        elif part == "guitar":
            root, triad = _chord(key, degree, minor, 40)
            power = (root, root + 7, root + 12)
            if pattern in ("eighths", "sixteenths"):
                n = 8 if pattern == "eighths" else 16
                for i in range(n):
                    for k, note in enumerate(power):
                        events.append((start + i * 4 * beat / n + 0.003 * k + j(0.004), 0, note, vel(85, 120),
                                       (3.6 if pattern == "eighths" else 1.8) * beat / n * (0.5 + 0.5 * loud)))
            elif pattern == "strum":
                chord = [n + 12 for n in triad] + [triad[0] + 24]
                for b in (0, 1, 1.5, 2, 3, 3.5):
                    down = b == int(b)
                    order = chord if down else chord[::-1]
                    velocity = vel(70, 105) if down else vel(50, 80)
                    for k, note in enumerate(order):
                        events.append((start + b * beat + 0.01 * k + j(0.005), 0, note, velocity, 0.5 * beat))
            elif pattern == "skank":  # off-beat chops
                for b in range(4):
                    for k, note in enumerate(triad):
                        events.append((start + (b + 0.5) * beat + 0.004 * k + j(0.004), 0, note + 12, vel(70, 100),
                                       0.18 * beat))
            elif pattern == "scratch":  # muted sixteenth strums, a few ringing
                for i in range(16):
                    if rng.random() < 0.7:
                        for k, note in enumerate(triad):
                            events.append((start + i * beat / 4 + 0.003 * k + j(0.003), 0, note + 12,
                                           vel(60, 100), 0.06 * beat if rng.random() < 0.8 else 0.22 * beat))
            else:
                events += [(start + 0.005 * k + j(0.005), 0, n + 12, vel(60, 90), 3.9 * beat)
                           for k, n in enumerate(triad)]
        elif part in ("pad", "organ", "strings"):
            _, triad = _chord(key, degree, minor, 55)
            events += [(start + j(0.01), 0, n, vel(55, 85), 3.95 * beat) for n in triad]
        elif part == "piano":
            _, triad = _chord(key, degree, minor, 55)
            hits = ((0, 1.9), (2, 1.9)) if rng.random() < 0.5 else ((0, 0.9), (1, 0.9), (2, 0.9), (3, 0.9))
            for at, length in hits:
                velocity = vel(55, 95)
                events += [(start + at * beat + 0.006 * k + j(0.005), 0, n, velocity, length * beat)
                           for k, n in enumerate(triad + (triad[0] - 12,))]
        elif part == "brass":  # stabs on the and of 2 and 4, or on 1
            _, triad = _chord(key, degree, minor, 60)
            spots = (1.5, 3.5) if rng.random() < 0.6 else (0.0, 2.5)
            for at in spots:
                if rng.random() < 0.8:
                    velocity = vel(85, 120)
                    events += [(start + at * beat + j(0.006), 0, n, velocity, 0.3 * beat) for n in triad]
        elif part == "lead":  # a sung line: long notes on the scale, phrases of 2 bars with a breath
            if bar % 2 == 1 and rng.random() < 0.3:
                continue
            at = float(rng.choice([0.0, 0.5, 1.0]))
            while at < 3.6:
                length = float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
                melody_i = int(np.clip(melody_i + rng.integers(-2, 3), 0, 13))
                note = 60 + key % 12 + scale[melody_i % 7] + 12 * (melody_i // 7)
                if note > 79:
                    note -= 12
                events.append((start + at * beat + j(0.01), 0, note, vel(75, 110), min(length, 4 - at) * beat * 0.95))
                at += length
    if swing:
        events = [(t + (beat / 6 if (t / (beat / 2)) % 2 > 0.9 else 0.0), c, n, v, d) for t, c, n, v, d in events]
    return sorted(events)


def _percussion_hits(rng, name: str, sections: list, beat: float, drumless: set) -> list:
    """Hand-percussion strokes (time_s, instrument, velocity 0-1) as records have them: a tambourine on the backbeat
    or in eighths or sixteenths (choruses), a shaker in accented sixteenths or eighths, a cowbell on the beats,
    claps on the backbeat, congas in a tumbao."""
    out = []
    mode = int(rng.integers(2))
    for bar, section in enumerate(sections):
        if SECTIONS[section] < (0.9 if name in ("tambourine", "claps") and mode == 0 else 0.5) or bar in drumless:
            continue
        start = bar * 4 * beat
        if name == "tambourine":
            steps = [(1, 0.9), (3, 0.9)] if mode == 0 else [(i / 2, 0.85 if i % 2 == 0 else 0.55) for i in range(8)]
        elif name in ("shaker", "maracas"):
            n = 16 if beat > 0.45 else 8
            steps = [(i * 4 / n, 0.8 if i % (n // 4) == 0 else 0.45) for i in range(n)]
        elif name == "cowbell":
            steps = ([(i, 0.8) for i in range(4)] if mode == 0
                     else [(i / 2, 0.8 if i % 2 == 0 else 0.5) for i in range(8)])
        elif name == "claps":
            steps = [(1, 0.9), (3, 0.9)]
        else:  # congas: a tumbao over a bar (instrument name says which drum)
            steps = []
        for at, v in steps:
            out.append((start + at * beat + rng.normal(0, 0.006), name, float(np.clip(rng.normal(v, 0.08), 0.1, 1))))
        if name == "congas":
            for at, drum, v in ((0.0, "conga_mute", 0.5), (1.0, "conga_mute", 0.5), (1.5, "conga_high", 0.85),
                                (2.5, "conga_high", 0.6), (3.0, "conga_low", 0.8), (3.5, "conga_low", 0.8)):
                velocity = float(np.clip(rng.normal(v, 0.08), 0.1, 1))
                out.append((start + at * beat + rng.normal(0, 0.008), drum, velocity))
    return out


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """(n, 2) of a mono part at `pan` (-1 left .. 1 right), constant power."""
    angle = (pan + 1) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12


def _at_rms(x: np.ndarray, level_db: float) -> np.ndarray:
    return (x * (10 ** (level_db / 20) / _rms(x))).astype(np.float32)


PROGRAMS = {  # part -> GM programs when the style's keys pool has none for it
    "organ": (16, 17, 18), "pad": (88, 89, 91, 95), "strings": (48, 49, 50), "brass": (61, 62, 56),
}


def _key_part(program: int) -> str:
    if program in (16, 17, 18, 19):
        return "organ"
    if program in (48, 49, 50):
        return "strings"
    if program in (56, 61, 62, 65, 66):
        return "brass"
    if 80 <= program <= 95:
        return "pad"
    return "piano"


def render_song(kit, rng: np.random.Generator, *, bars: int | None = None, style: str | None = None,
                other_kits: list = (), percussion=None, percussion_prob: float = 0.7, bleed_prob: float = 0.3,
                drums_db: tuple = SONG_DRUMS_DB, synth=None, soundfont: str | Path = DEFAULT_SOUNDFONT,
                mp3_prob: float = 0.5, sample_rate_hz: int = SAMPLE_RATE_HZ, parts_apart: bool = False):
    """One clip of a song: (audio, hits, percussion_hits) with audio mono float32 at `sample_rate_hz`, hits the
    drums (render.Hit, labelled ones only) and percussion_hits the hand percussion strokes as render.Hit with
    drum = PERCUSSION_LABEL (never a drum of DRUMS). `kit` plays the drums (borrowing from `other_kits` and retuned,
    as render_performance's --mix-kits); `percussion` is a Kit of HAND_PERCUSSION_NOTES (load_hand_percussion) that
    plays in a share `percussion_prob` of the songs; `synth` a loaded (fluidsynth.Synth, sfid) pair of `soundfont`.
    With `parts_apart`, a fourth item: a dict of the mono drums, band and percussion as mixed (before the master),
    and the master's RMS in dB before mp3 coding."""
    import pedalboard as pb

    style = style or str(rng.choice(sorted(STYLES)))
    st = STYLES[style]
    bars = bars or int(rng.integers(8, 15))
    tempo = float(rng.uniform(*st.tempo_bpm))
    beat = 60.0 / tempo
    sections = arrangement(rng, bars)
    silent = drumless_bars(rng, sections)
    key = int(rng.integers(0, 12))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]

    # drums: the groove, out in the drumless bars, on a mixed and retuned kit
    if other_kits:
        kit = mix_kits(kit, list(other_kits), rng)
        kit = tune_kit(kit, rng, max_semitones=1.5, sample_rate_hz=sample_rate_hz)
    hits, _ = generate_pattern(rng, bars=bars, style=st.groove, tempo_bpm=tempo, drums_available=kit.drums)
    duration = bars * 4 * beat + 1.0
    n = int(duration * sample_rate_hz)
    bar_of = lambda t: int(t // (4 * beat))  # noqa: E731
    hits = [h for h in hits if bar_of(h.time_s) not in silent and h.time_s < bars * 4 * beat]
    gains = drum_levels_db(kit.drums, rng, quiet_metal_db=12.0)
    buses = render_hits(hits, kit, duration_s=duration, rng=rng, drum_gain_db=gains, sample_rate_hz=sample_rate_hz,
                        buses=True, cymbal_play=0.3)
    if rng.random() < bleed_prob:
        buses = bleed_buses(buses, rng, sample_rate_hz=sample_rate_hz)
    drums = mix_buses(buses, rng, sample_rate_hz=sample_rate_hz) if buses else np.zeros(n, np.float32)
    drums = np.asarray(drums, np.float32)[:n]
    drums = np.pad(drums, (0, n - len(drums)))
    drum_bus = pb.Pedalboard([pb.Compressor(threshold_db=float(rng.uniform(-24, -10)),
                                            ratio=float(rng.uniform(2, 5)), attack_ms=float(rng.uniform(2, 30)),
                                            release_ms=float(rng.uniform(50, 200)))])
    drums = drum_bus(drums / (np.abs(drums).max() + 1e-9) * 0.5, sample_rate_hz)
    kicks_by_bar = {}
    for h in hits:
        if h.drum == "kick" and h.labelled:
            kicks_by_bar.setdefault(bar_of(h.time_s), []).append(h.time_s)

    # the band: 4-8 parts, each rendered alone, processed, panned
    if synth is None:
        from .render import _accompaniment_synth

        synth = _accompaniment_synth(sample_rate_hz, soundfont)
    fs, sfid = synth
    swing = st.groove == "jazz" or (style == "blues" and rng.random() < 0.6)
    bass_pattern = {"jazz": "walking", "reggae": "reggae", "funk": "funk"}.get(
        style, str(rng.choice(["kick", "kick", "eighths"])))
    plan = [("bass", int(rng.choice(st.bass)), 0.3, bass_pattern, 0.0, float(rng.uniform(-2, 2)))]
    guitar = str(rng.choice(st.guitar.split("|"))) if st.guitar else ""
    if guitar:
        program = {"clean": int(rng.choice([27, 26, 25])), "crunch": 29, "high": 30}[guitar]
        spread = float(rng.uniform(0.5, 1.0))
        double = guitar != "clean" or rng.random() < 0.5
        plan.append(("guitar", program, 0.5, st.guitar_pattern, -spread if double else float(rng.uniform(-0.5, 0.5)),
                     float(rng.uniform(-1, 3))))
        if double:  # double-tracked: played again, panned the other way
            plan.append(("guitar", program, 0.5, st.guitar_pattern, spread, float(rng.uniform(-1, 3))))
    pool = list(st.keys)
    for _ in range(int(rng.integers(1, 4))):
        if not pool:
            break
        program = int(pool.pop(int(rng.integers(len(pool)))))
        part = _key_part(program)
        plan.append((part, program, {"pad": 0.3, "organ": 0.3, "piano": 0.3, "strings": 0.9, "brass": 0.9}[part], "",
                     float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-8, -1))))
    if rng.random() < 0.85:
        plan.append(("lead", int(rng.choice(st.lead)), 0.5, "", float(rng.uniform(-0.15, 0.15)),
                     float(rng.uniform(0, 4))))
    band = np.zeros((n, 2), np.float32)
    for part, program, intensity_min, pattern, pan, level_db in plan:
        events = _part_events(rng, part, sections, intensity_min, key, progression, beat, kicks_by_bar,
                              pattern=pattern, swing=swing)
        if not events:
            continue
        fs.program_select(0, sfid, 0, program)
        fs.cc(0, 1, int(rng.integers(40, 90)) if part == "lead" and program in VOICES else 0)  # vibrato
        mono = _play(fs, events, n, sample_rate_hz)
        _silence(fs, {0: program}, sample_rate_hz)
        fs.cc(0, 1, 0)
        if _rms(mono) < 1e-6:
            continue
        mono = np.asarray(mono, np.float32) / (np.abs(mono).max() + 1e-9) * 0.5
        chain = []
        if part != "bass":
            chain.append(pb.HighpassFilter(cutoff_frequency_hz=float(rng.uniform(80, 250))))
        if part == "guitar" and guitar != "clean":
            chain += (amp_chain(rng) if guitar == "high"
                      else [pb.Distortion(drive_db=float(rng.uniform(8, 18))),
                            pb.LowpassFilter(cutoff_frequency_hz=float(rng.uniform(4000, 8000)))])
        if part == "lead" and program in VOICES:  # formants of a sung vowel
            for f0, f1 in ((500, 900), (1000, 1600), (2300, 3100)):
                chain.append(pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(f0, f1)),
                                           gain_db=float(rng.uniform(3, 9)), q=float(rng.uniform(2, 5))))
        chain.append(pb.PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(150), np.log(6000)))),
                                   gain_db=float(rng.uniform(-6, 6)), q=float(rng.uniform(0.7, 2))))
        if part in ("bass", "lead") or rng.random() < 0.5:
            chain.append(pb.Compressor(threshold_db=float(rng.uniform(-24, -12)), ratio=float(rng.uniform(2, 6)),
                                       attack_ms=float(rng.uniform(3, 20)), release_ms=float(rng.uniform(60, 250))))
        mono = np.asarray(pb.Pedalboard(chain)(mono, sample_rate_hz), np.float32).reshape(-1)[:n]
        band += _pan(_at_rms(mono, -20 + level_db), pan)
    band_bus = [pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(200, 500)), gain_db=float(rng.uniform(-4, 0)),
                              q=1.0),
                pb.Reverb(room_size=float(rng.uniform(0.2, 0.8)), wet_level=float(rng.uniform(0.05, 0.3)),
                          dry_level=1.0, width=1.0),
                pb.Compressor(threshold_db=float(rng.uniform(-24, -12)), ratio=float(rng.uniform(1.5, 4)),
                              attack_ms=float(rng.uniform(5, 30)), release_ms=float(rng.uniform(80, 300)))]
    band = np.asarray(pb.Pedalboard(band_bus)(band.T.copy(), sample_rate_hz), np.float32).T[:n]

    # hand percussion, labelled apart
    perc_hits, perc = [], np.zeros((n, 2), np.float32)
    if percussion is not None and rng.random() < percussion_prob:
        have = set(percussion.instruments) | ({"congas"} if "conga_high" in percussion.instruments else set())
        names = sorted({"tambourine", "shaker", "maracas", "cowbell", "claps", "congas"} & have)
        weights = np.array([{"tambourine": 4, "shaker": 3, "maracas": 1, "cowbell": 1, "claps": 2, "congas": 1}[x]
                            for x in names], float)
        for _ in range(1 if rng.random() < 0.7 else 2):
            if not names:
                break
            name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            mono = np.zeros(n + sample_rate_hz, np.float32)
            strokes = _percussion_hits(rng, name, sections, beat, silent)
            for t, inst_name, v in strokes:
                insts = percussion.instruments.get(inst_name)
                if not insts or not 0 <= t < duration:
                    continue
                audio = insts[0].layer_for(v, rng).audio
                start = int(round(t * sample_rate_hz))
                end = min(len(mono), start + len(audio))
                mono[start:end] += v * audio[: end - start]
                perc_hits.append(Hit(float(t), PERCUSSION_LABEL, int(v * 127)))
            if _rms(mono[:n]) > 1e-6:
                perc += _pan(_at_rms(mono[:n], _rms_db(drums) + float(rng.uniform(-16, -4))),
                             float(rng.uniform(-0.6, 0.6)))
    # the mix: drums around the band, master bus, limiter to loudness, lossy coding
    drums_db = float(rng.uniform(*drums_db))
    drums_st = _pan(drums, 0.0) * np.float32(np.sqrt(2))
    if _rms(band) > 1e-6:
        scale = 10 ** ((_rms_db(band) + drums_db - _rms_db(drums_st)) / 20)
        drums_st *= np.float32(scale)
        perc *= np.float32(scale)
    mix = drums_st + band + perc
    master = pb.Pedalboard([pb.Compressor(threshold_db=float(rng.uniform(-20, -8)), ratio=float(rng.uniform(1.5, 3)),
                                          attack_ms=float(rng.uniform(5, 30)), release_ms=float(rng.uniform(50, 200)))])
    mix = np.asarray(master(mix.T.copy(), sample_rate_hz), np.float32).T
    target_db = float(rng.uniform(*LOUDNESS_DB))
    mix = mix * np.float32(10 ** (target_db / 20) / _rms(mix))
    limiter = pb.Pedalboard([pb.Limiter(threshold_db=-1.0, release_ms=float(rng.uniform(50, 200)))])
    mix = np.clip(np.asarray(limiter(mix.T.copy(), sample_rate_hz), np.float32), -1, 1)
    master_db = 20 * np.log10(_rms(mix))
    if rng.random() < mp3_prob:
        mp3 = pb.Pedalboard([pb.MP3Compressor(vbr_quality=float(rng.uniform(2, 7)))])
        mix = np.asarray(mp3(mix, sample_rate_hz), np.float32)
    audio = mix.mean(axis=0)[:n].astype(np.float32)
    labelled = [h for h in hits if h.labelled]
    if parts_apart:
        return audio, labelled, perc_hits, {"drums": drums_st.mean(axis=1), "band": band.mean(axis=1),
                                           "percussion": perc.mean(axis=1), "master_db": master_db,
                                           "drums_db": drums_db, "style": style, "parts": [p[0] for p in plan],
                                           "drumless_bars": sorted(silent), "beat_s": beat}
    return audio, labelled, perc_hits


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(_rms(x))


def load_hand_percussion(spec: str = "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0"):
    """HAND_PERCUSSION_NOTES of an 'sf2:<path>:<bank>:<preset>' kit, keyed by instrument name."""
    return load_percussion(spec, HAND_PERCUSSION_NOTES, "hand percussion")


def drums_against_band_db(mix: np.ndarray, drums: np.ndarray, *, sample_rate_hz: int, window_s: float = 10.0):
    """(gain, levels_db): how loud a recording's drums are against the rest of its mix, per `window_s` window, in dB
    (RMS of the drum stem against RMS of the mix less the drum stem, the stem first scaled by the least-squares
    `gain` that fits it into the mix). Both mono, the same length and rate."""
    n = min(len(mix), len(drums))
    mix, drums = np.asarray(mix[:n], np.float64), np.asarray(drums[:n], np.float64)
    gain = float(np.dot(mix, drums) / (np.dot(drums, drums) + 1e-24))
    band = mix - gain * drums
    w = int(window_s * sample_rate_hz)
    levels = [20 * np.log10((_rms(gain * drums[i:i + w]) + 1e-9) / (_rms(band[i:i + w]) + 1e-9))
              for i in range(0, max(1, n - w), w)]
    return gain, np.asarray(levels)
