"""Labelled drum audio from real sample kits: grooves as a drummer plays them, mixed and put through a room.

`generate_pattern` writes a performance (hits with human timing and dynamics), `render_hits` plays it on a kit,
`augment` puts the result through a random pedalboard chain (room, EQ, bus compression, saturation, coding).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.kits import HYDROGEN_KIT_DIRS, Kit, is_bell, load_hydrogen_kit, render_sf2_kit

# Kits of Debian's hydrogen-drumkits and GM soundfonts. Licences: /usr/share/doc/<package>/copyright.
TRAIN_KITS = (
    "hydrogen:The Black Pearl 1.0",  # GPL-2
    "hydrogen:ForzeeStereo",  # GPL-2
    "hydrogen:BJA_Pacific",  # CC-BY-SA-3.0-us
    "hydrogen:Millo_MultiLayered2",  # GPL-2
    "hydrogen:Millo_MultiLayered3",  # GPL-2
    "hydrogen:Millo-Drums_v.1",  # GPL-2
    "hydrogen:Audiophob",  # CC0
    "hydrogen:rumpf_kit_z01_h2",  # CC-BY-3.0
    "hydrogen:VariBreaks",  # GPL-2+
    "hydrogen:ElectricEmpireKit",  # GPL-2+
    "hydrogen:HardElectro1",  # GPL-2+
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0",  # MIT (fluid-soundfont-gm) Standard
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:8",  # Room
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:16",  # Power
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:24",  # Electronic
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:25",  # TR-808
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:32",  # Jazz
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:40",  # Brush
    "sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:0",  # MIT (musescore-general-soundfont-lossless)
    "sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:8",
    "sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:16",
    "sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:32",
    "sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:40",
)
"""Kits rendered for training."""

METAL = ("hh_closed", "hh_pedal", "hh_open", "crash", "ride")
"""The drums `quiet_metal_db` pulls down."""

BAND_DB = (-12.0, 6.0)
"""The default range of a training band's level around the drums', in dB."""

HELD_OUT_KITS = (
    "hydrogen:ColomboAcousticDrumkit",  # GPL-2+
    "sf2:/usr/share/sounds/sf2/TimGM6mb.sf2:128:0",  # GPL-2 (timgm6mb-soundfont)
)
"""Kits never rendered for training: validation and the held-out tests use them."""


def load_kit(spec: str) -> Kit:
    """A kit from 'hydrogen:<name or folder>' or 'sf2:<path>:<bank>:<preset>'."""
    kind, _, rest = spec.partition(":")
    if kind == "hydrogen":
        path = Path(rest)
        if not path.is_absolute():
            path = next((d / rest for d in HYDROGEN_KIT_DIRS if (d / rest).is_dir()), path)
        return load_hydrogen_kit(path)
    if kind == "sf2":
        path, bank, preset = rest.rsplit(":", 2)
        return render_sf2_kit(path, bank=int(bank), preset=int(preset), name=f"{Path(path).stem} {bank}:{preset}")
    raise ValueError(f"kit spec '{spec}' is not 'hydrogen:<name>' or 'sf2:<path>:<bank>:<preset>'")


# General MIDI percussion that is none of the drums transcribed: in songs it plays along with the kit (a tambourine
# on the backbeat, a shaker in sixteenths), and a transcriber must not call it a cymbal or a hi-hat.
PERCUSSION_NOTES = {54: "tambourine", 56: "cowbell", 69: "cabasa", 70: "maracas"}
PERCUSSION_WEIGHTS = {"tambourine": 0.5, "cowbell": 0.1, "cabasa": 0.2, "maracas": 0.2}  # the tambourine most often


PERCUSSION_KITS = (
    "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0",  # MIT (fluid-soundfont-gm)
    "sf2:/usr/share/sounds/sf2/MuseScore_General_Full.sf2:128:0",  # MIT (musescore-general-soundfont-lossless)
    "sf2:/usr/share/sounds/sf2/sf_GMbank.sf2:128:0",  # public domain (csound-soundfont)
)
"""Where load_percussion finds PERCUSSION_NOTES for training renders (never a held-out kit's soundfont)."""


def load_percussion(spec: str, notes: dict = PERCUSSION_NOTES, what: str = "percussion") -> Kit:
    """`notes` (default PERCUSSION_NOTES) of an 'sf2:<path>:<bank>:<preset>' kit, keyed by instrument name (no drum
    of DRUMS)."""
    kind, _, rest = spec.partition(":")
    if kind != "sf2":
        raise ValueError(f"percussion spec '{spec}' is not 'sf2:<path>:<bank>:<preset>'")
    path, bank, preset = rest.rsplit(":", 2)
    return render_sf2_kit(path, bank=int(bank), preset=int(preset), notes=notes,
                          name=f"{Path(path).stem} {bank}:{preset} {what}")


def percussion_part(percussion: Kit, rng: np.random.Generator, *, tempo_bpm: float, duration_s: float,
                    sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """One percussion instrument of `percussion` playing along for `duration_s`: on the backbeat, in eighths or in
    sixteenths (accented on the beat), humanised. Mono float32: the kit's samples times each stroke's velocity."""
    names = sorted(percussion.instruments)
    weights = np.array([PERCUSSION_WEIGHTS.get(n, 0.1) for n in names])
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    insts = percussion.instruments[name]
    inst = insts[int(rng.integers(len(insts)))]
    beat = 60.0 / tempo_bpm
    pattern = int(rng.integers(3))  # 0: beats 2 and 4, 1: eighths, 2: sixteenths
    step = (2 * beat, beat / 2, beat / 4)[pattern]
    first = beat if pattern == 0 else 0.0
    out = np.zeros(int(duration_s * sample_rate_hz) + sample_rate_hz, np.float32)
    t, k = first, 0
    while t < duration_s:
        accent = pattern == 0 or (k * step) % beat < 1e-6
        velocity = float(np.clip(rng.normal(0.8 if accent else 0.55, 0.08), 0.1, 1.0))
        audio = inst.layer_for(velocity, rng).audio
        start = round((t + rng.normal(0, 0.006)) * sample_rate_hz)
        if 0 <= start < len(out):
            end = min(len(out), start + len(audio))
            out[start:end] += velocity * audio[: end - start]
        t, k = t + step, k + 1
    return out[: int(duration_s * sample_rate_hz)]


def available(spec: str) -> bool:
    kind, _, rest = spec.partition(":")
    if kind == "hydrogen":
        return (any((d / rest / "drumkit.xml").is_file() for d in HYDROGEN_KIT_DIRS)
                or Path(rest, "drumkit.xml").is_file())
    return Path(rest.rsplit(":", 2)[0]).is_file()


@dataclass(frozen=True)
class Hit:
    time_s: float
    drum: str
    velocity: int  # 1..127
    labelled: bool = True  # False for flam grace notes, which annotators do not mark


# ---------------------------------------------------------------------------------------------------------------
# Performances


def _velocity(rng, base, spread=12):
    return int(np.clip(rng.normal(base, spread), 1, 127))


def generate_pattern(rng: np.random.Generator, *, bars: int = 8, tempo_bpm: float | None = None,
                     style: str | None = None, drums_available=None) -> tuple[list, float]:
    """A drummer's performance: (hits, duration_s). Styles: groove (rock/pop/funk/disco/shuffle/half-time with
    fills and crashes), jazz (ride, feathered kick, comping snare), sparse (isolated hits) and random (any drums
    anywhere: it breaks the co-occurrence habits of grooves)."""
    avail = set(drums_available) if drums_available is not None else None
    style = style or rng.choice(["groove", "groove", "groove", "groove", "jazz", "random", "sparse"], p=None)
    tempo = float(tempo_bpm or rng.uniform(60, 200) if style != "sparse" else rng.uniform(50, 120))
    beat = 60.0 / tempo
    swing = rng.random() < 0.2
    sub = 3 if swing else 4  # grid steps per beat
    step = beat / sub
    steps_per_bar = 4 * sub
    timing_sd = rng.uniform(0.002, 0.015)  # human timing
    hits = []

    def add(step_index, drum, vel, offset=0.0, labelled=True):
        if avail is not None and drum not in avail:
            return
        t = step_index * step + offset + rng.normal(0, timing_sd)
        hits.append(Hit(max(0.0, t), drum, int(np.clip(vel, 1, 127)), labelled))

    if style == "random":
        drums = sorted(avail) if avail is not None else ["kick", "snare", "hh_closed", "hh_open", "hh_pedal", "tom_low",
                                                        "tom_mid", "tom_high", "crash", "ride", "side_stick"]
        n_steps = bars * steps_per_bar
        density = rng.uniform(0.15, 0.6)
        for s in range(n_steps):
            if rng.random() < density:
                for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
                    add(s, drums[rng.integers(len(drums))], rng.integers(15, 128))
        return _finish(hits, bars * 4 * beat, rng)

    if style == "sparse":
        t = 0.3
        drums = ["kick", "snare", "hh_closed", "hh_open", "hh_pedal", "tom_low", "tom_mid", "tom_high", "crash", "ride",
                 "side_stick"]
        while t < bars * 2.0:
            drum = drums[rng.integers(len(drums))]
            if avail is None or drum in avail:
                hits.append(Hit(t, drum, int(rng.integers(10, 128))))
            t += rng.uniform(0.15, 1.2)
        return _finish(hits, t + 1.0, rng)

    # grooves and jazz: choose the parts for the whole performance, vary them per bar
    if style == "jazz":
        keeper, keeper_every = "ride", 1
    else:
        keeper = rng.choice(["hh_closed", "hh_closed", "hh_closed", "hh_open_mix", "ride", "crash", "hh_pedal"],
                            p=[0.3, 0.15, 0.15, 0.12, 0.15, 0.05, 0.08])
        keeper_every = int(rng.choice([1, 2, 4] if sub == 4 else [1, 3]))  # 16ths, 8ths, quarters
        if tempo > 150 and keeper_every == 1:
            keeper_every = 2
    kick_templates = [
        [0, 8], [0, 10], [0, 6, 8], [0, 3, 8, 10], [0, 8, 11], [0, 4, 8, 12], [0, 7, 10], [0, 2, 8, 9], [0, 6, 10],
    ]
    kick_base = kick_templates[rng.integers(len(kick_templates))]
    half_time = rng.random() < 0.15
    backbeats = [8] if half_time else [4, 12]
    ghost_rate = rng.uniform(0, 0.25)
    accent = rng.uniform(85, 120)
    hat_pedal_quarters = style == "jazz" or rng.random() < 0.15
    for bar in range(bars):
        b0 = bar * steps_per_bar
        fill = bar % 4 == 3 and rng.random() < 0.5 or (bar == bars - 1 and rng.random() < 0.5)
        fill_start = steps_per_bar - int(rng.choice([sub, 2 * sub, 4 * sub])) if fill else steps_per_bar
        crash_here = (bar % 4 == 0 and rng.random() < 0.6) or (bar > 0 and rng.random() < 0.1)
        if crash_here:
            add(b0, "crash", rng.uniform(90, 127))
            add(b0, "kick", rng.uniform(90, 120))
        for s in range(min(fill_start, steps_per_bar)):
            grid = s * 4 // sub if sub == 4 else s * 4 // 3  # position in 16ths (approx for shuffle)
            on_keeper = s % keeper_every == 0 and not (crash_here and s == 0 and keeper != "ride")
            if style == "jazz":
                # spang-a-lang ride, hat on 2 and 4, feathered kick, snare comping
                if s % sub == 0 or (sub == 3 and s % 3 == 2 and (s // 3) % 2 == 1):
                    add(b0 + s, "ride", rng.uniform(55, 95) + (10 if s % sub == 0 else 0))
                if s % sub == 0 and (s // sub) % 2 == 1:
                    add(b0 + s, "hh_pedal", rng.uniform(40, 80))
                if s % sub == 0 and rng.random() < 0.5:
                    add(b0 + s, "kick", rng.uniform(20, 50))
                if rng.random() < 0.12:
                    add(b0 + s, "snare", rng.uniform(25, 80))
                continue
            if on_keeper:
                if keeper == "hh_open_mix":
                    drum = "hh_open" if (s % sub == sub // 2 and rng.random() < 0.7) else "hh_closed"
                else:
                    drum = keeper
                strong = s % sub == 0
                add(b0 + s, drum, rng.uniform(70, 110) if strong else rng.uniform(40, 90))
            if hat_pedal_quarters and keeper != "hh_closed" and s % sub == 0:
                add(b0 + s, "hh_pedal", rng.uniform(40, 90))
            if grid in kick_base and (s * 4) % sub == 0 or rng.random() < 0.04:
                add(b0 + s, "kick", rng.uniform(70, 125))
            if grid in backbeats and (s * 4) % sub == 0:
                add(b0 + s, "snare" if rng.random() > 0.05 else "side_stick", rng.normal(accent, 8))
            elif rng.random() < ghost_rate:
                add(b0 + s, "snare", rng.uniform(12, 45))  # ghost note
        if fill:
            toms = [d for d in ("tom_high", "tom_mid", "tom_low") if avail is None or d in avail] or ["snare"]
            n = steps_per_bar - fill_start
            for i in range(n):
                if rng.random() < 0.85:
                    drum = toms[min(len(toms) - 1, i * len(toms) // max(1, n))] if rng.random() < 0.75 else "snare"
                    vel = rng.uniform(70, 120)
                    if rng.random() < 0.1:  # flam: a soft grace note just before
                        add(b0 + fill_start + i, drum, vel * 0.4, offset=-rng.uniform(0.015, 0.035), labelled=False)
                    add(b0 + fill_start + i, drum, vel)
                if i % sub == 0 and rng.random() < 0.4:
                    add(b0 + fill_start + i, "kick", rng.uniform(70, 115))
    return _finish(hits, bars * 4 * beat + 1.5, rng)


def _finish(hits, duration_s, rng):
    hits = sorted(hits, key=lambda h: h.time_s)
    return hits, float(duration_s)


# ---------------------------------------------------------------------------------------------------------------
# Rendering


BUSES = {"kick": "kick", "snare": "snare", "side_stick": "snare", "hh_closed": "hats", "hh_pedal": "hats",
         "hh_open": "hats", "tom_low": "toms", "tom_mid": "toms", "tom_high": "toms", "crash": "cymbals",
         "ride": "cymbals"}
"""The mixing-desk channel each drum is recorded on."""


def _fade_out(audio: np.ndarray, at: int, fade: int) -> np.ndarray:
    """`audio` silenced from sample `at` on, through a linear fade of `fade` samples (a copy where it changes)."""
    if at >= len(audio):
        return audio
    fade = min(fade, len(audio) - at)
    out = audio[: at + fade].copy()
    out[at:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return out


def render_hits(hits: list, kit: Kit, *, duration_s: float, rng: np.random.Generator | None = None,
                drum_gain_db: dict | None = None, sample_rate_hz: int = SAMPLE_RATE_HZ, buses: bool = False,
                cymbal_play: float = 0.0):
    """Play hits on a kit: velocity layers, round robin, hi-hat choke, per-drum level. Mono float32, or
    (buses=True) a dict of one such signal per mixing-desk channel (BUSES).

    `cymbal_play` > 0 plays the cymbals as drummers do besides letting them ring: that share of the crashes is
    choked by hand 0.08-0.6 s after the stroke (a 10 ms fade), and where the kit has a ride bell beside its ride,
    the performance rides the bow and that share of its strong strokes (velocity 80 or more) goes to the bell.
    Both are still a crash and a ride: the labels do not change."""
    rng = rng or np.random.default_rng(0)
    n_out = int(duration_s * sample_rate_hz) + sample_rate_hz
    outs = {}
    # one instrument per drum for the whole performance, like one kit on a stage (two crashes sometimes)
    chosen = {d: insts[rng.integers(len(insts))] for d, insts in kit.instruments.items()}
    rides = kit.instruments.get("ride", [])
    bells = [i for i in rides if is_bell(i)] if cymbal_play else []
    bows = [i for i in rides if not is_bell(i)] if bells else []
    if bells and bows:
        chosen["ride"] = bows[int(rng.integers(len(bows)))]
    hat_stops = [h.time_s for h in hits if h.drum in ("hh_closed", "hh_pedal")]
    for hit in hits:
        insts = kit.instruments.get(hit.drum)
        if not insts:
            continue
        if bells and bows and hit.drum == "ride":
            bell = hit.velocity >= 80 and rng.random() < cymbal_play
            inst = bells[int(rng.integers(len(bells)))] if bell else chosen["ride"]
        else:
            inst = chosen[hit.drum] if rng.random() < 0.85 else insts[rng.integers(len(insts))]
        v = hit.velocity / 127.0
        layer = inst.layer_for(v, rng)
        gain = layer.gain * inst.gain * v ** rng.uniform(0.8, 1.6)
        if drum_gain_db:
            gain *= 10 ** (drum_gain_db.get(hit.drum, 0.0) / 20)
        audio = layer.audio
        if hit.drum == "hh_open":  # choked by the next closed or pedal hat
            later = [t for t in hat_stops if t > hit.time_s + 0.03]
            if later:
                audio = _fade_out(audio, int((later[0] - hit.time_s) * sample_rate_hz), 480)
        elif hit.drum == "crash" and cymbal_play and rng.random() < cymbal_play:  # grabbed by the hand
            audio = _fade_out(audio, int(rng.uniform(0.08, 0.6) * sample_rate_hz), int(0.01 * sample_rate_hz))
        start = int(round(hit.time_s * sample_rate_hz))
        bus = BUSES.get(hit.drum, "other") if buses else "mix"
        out = outs.get(bus)
        if out is None:
            out = outs[bus] = np.zeros(n_out, dtype=np.float32)
        end = min(len(out), start + len(audio))
        if start < end:
            out[start:end] += gain * audio[: end - start]
    n = int(duration_s * sample_rate_hz)
    if buses:
        return {bus: out[:n] for bus, out in outs.items()}
    return outs["mix"][:n] if "mix" in outs else np.zeros(n, dtype=np.float32)


def mix_kits(primary: Kit, others: list, rng: np.random.Generator, *, foreign_prob: float = 0.4) -> Kit:
    """A kit that borrows some drums from other kits, as drummers do (and so no model can learn a kit's sound
    as a whole)."""
    from drumscribe.realtime.kits import Kit as _Kit

    instruments = dict(primary.instruments)
    for drum in sorted(set(d for k in others for d in k.instruments) | set(instruments)):  # sorted: not hash order
        donors = [k for k in others if k.instruments.get(drum)]
        if donors and (drum not in instruments or rng.random() < foreign_prob):
            instruments[drum] = donors[rng.integers(len(donors))].instruments[drum]
    return _Kit(name=primary.name + " (mixed)", path=primary.path, kind=primary.kind, licence=primary.licence,
                instruments=instruments)


def tune_kit(kit: Kit, rng: np.random.Generator, *, max_semitones: float = 1.5,
             sample_rate_hz: int = SAMPLE_RATE_HZ) -> Kit:
    """The kit with each drum tuned up or down (resampled), by a random amount per drum."""
    import soxr

    from drumscribe.realtime.kits import Instrument, Layer
    from drumscribe.realtime.kits import Kit as _Kit

    tuned = {}
    for drum, insts in kit.instruments.items():
        ratio = 2 ** (rng.uniform(-max_semitones, max_semitones) / 12)
        if abs(ratio - 1) < 0.01:
            tuned[drum] = insts
            continue
        tuned[drum] = [Instrument(i.name, i.drum, [
            Layer(layer.min_velocity, layer.max_velocity,
                  soxr.resample(layer.audio, sample_rate_hz * ratio, sample_rate_hz).astype(np.float32)
                  if len(layer.audio) > 64 else layer.audio, layer.gain) for layer in i.layers],
            i.gain, i.choke_group) for i in insts]
    return _Kit(name=kit.name, path=kit.path, kind=kit.kind, licence=kit.licence, instruments=tuned)


def mix_buses(buses: dict, rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Channel EQ and level on each bus, then the sum: the close-mic mix of a recorded kit."""
    import pedalboard as pb

    total = None
    for audio in buses.values():
        chain = [pb.PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(80), np.log(8000)))),
                               gain_db=float(rng.uniform(-8, 8)), q=float(rng.uniform(0.7, 2.5)))]
        if rng.random() < 0.3:
            chain.append(pb.HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(3000, 9000)),
                                            gain_db=float(rng.uniform(-8, 6))))
        if rng.random() < 0.3:
            chain.append(pb.Compressor(threshold_db=float(rng.uniform(-30, -10)), ratio=float(rng.uniform(2, 6)),
                                       attack_ms=float(rng.uniform(1, 20)), release_ms=float(rng.uniform(50, 250))))
        y = pb.Pedalboard(chain)(audio, sample_rate_hz) * np.float32(10 ** (rng.uniform(-4, 4) / 20))
        total = y if total is None else total + y
    return total


def bleed_buses(buses: dict, rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> dict:
    """A miked kit's cross-talk, as two more buses beside the close mics of `render_hits(buses=True)`:
    overheads (every bus again, 0.5-4 ms later each, at 0.5-1x, high-passed at 150-600 Hz, -12 to -3 dB: the comb
    filtering of a kit heard by several microphones) and, when the kit has a snare, its wires rattling to the kick
    and toms (noise at 2-9 kHz under their envelope, -32 to -18 dB under them). Neither is a hit: labels do not
    change."""
    from scipy.signal import butter, sosfilt

    if not buses:
        return buses
    n = len(next(iter(buses.values())))
    over = np.zeros(n, dtype=np.float64)
    for name in sorted(buses):  # sorted: the draws must not follow a dict's or set's order
        delay = int(rng.uniform(0.5e-3, 4e-3) * sample_rate_hz)
        over[delay:] += buses[name][: n - delay] * rng.uniform(0.5, 1.0)
    highpass = butter(2, rng.uniform(150, 600), "highpass", fs=sample_rate_hz, output="sos")
    out = dict(buses)
    out["overheads"] = (sosfilt(highpass, over) * 10 ** (rng.uniform(-12, -3) / 20)).astype(np.float32)
    exciters = [buses[b].astype(np.float64) for b in ("kick", "toms") if b in buses]
    if exciters and "snare" in buses:
        x = np.sum(exciters, axis=0)
        envelope = sosfilt(butter(1, 20, "lowpass", fs=sample_rate_hz, output="sos"), np.abs(x))
        wires = sosfilt(butter(2, (2000, 9000), "bandpass", fs=sample_rate_hz, output="sos"), rng.standard_normal(n))
        buzz = envelope * wires
        level = np.sqrt(np.mean(x ** 2)) / (np.sqrt(np.mean(buzz ** 2)) + 1e-12)
        out["snare_buzz"] = (buzz * level * 10 ** (rng.uniform(-32, -18) / 20)).astype(np.float32)
    return out


def augment(audio: np.ndarray, rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
            strength: float = 1.0) -> np.ndarray:
    """A random studio: room reverb, EQ, bus compression, saturation, mp3 coding, noise and level."""
    return augment_parts([audio], rng, sample_rate_hz=sample_rate_hz, strength=strength)[0]


def augment_parts(parts: list, rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                  strength: float = 1.0) -> list:
    """`augment` of parts[0] (the whole recording), and every other part (a share of it, such as its drums alone)
    through the same studio at the same gains, so that what each part contributes to the whole can be told
    (offline.unmix). The draws are augment's, in its order: one studio whatever the number of parts."""
    import pedalboard as pb

    chain = []
    r = rng.random
    if r() < 0.6 * strength:
        chain.append(pb.Reverb(room_size=rng.uniform(0.05, 0.7), damping=rng.uniform(0.2, 0.9),
                               wet_level=rng.uniform(0.03, 0.35), dry_level=1.0, width=1.0))
    if r() < 0.5 * strength:
        chain.append(pb.HighpassFilter(cutoff_frequency_hz=float(rng.uniform(20, 150))))
    if r() < 0.4 * strength:
        chain.append(pb.LowpassFilter(cutoff_frequency_hz=float(rng.uniform(4000, 16000))))
    for _ in range(rng.integers(0, 3)):
        chain.append(pb.PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(60), np.log(10000)))),
                                   gain_db=float(rng.uniform(-9, 9)), q=float(rng.uniform(0.5, 3))))
    if r() < 0.5 * strength:
        chain.append(pb.Compressor(threshold_db=float(rng.uniform(-30, -8)), ratio=float(rng.uniform(2, 8)),
                                   attack_ms=float(rng.uniform(1, 30)), release_ms=float(rng.uniform(40, 300))))
    if r() < 0.15 * strength:
        chain.append(pb.Distortion(drive_db=float(rng.uniform(3, 15))))
    if r() < 0.1 * strength:
        chain.append(pb.Chorus(rate_hz=float(rng.uniform(0.3, 2)), depth=float(rng.uniform(0.1, 0.4)), mix=0.3))
    peak = np.abs(parts[0]).max() + 1e-9
    xs = [(a / peak * 0.5).astype(np.float32) for a in parts]
    if chain:
        xs = [pb.Pedalboard(chain)(x, sample_rate_hz) for x in xs]
    if r() < 0.3 * strength:
        mp3 = pb.Pedalboard([pb.MP3Compressor(vbr_quality=float(rng.uniform(2, 8)))])
        xs = [mp3(x, sample_rate_hz) for x in xs]
    if r() < 0.5 * strength:
        noise = rng.normal(0, 10 ** (rng.uniform(-80, -45) / 20), len(xs[0])).astype(np.float32)
        xs = [x + noise[: len(x)] for x in xs]
    level_db = rng.uniform(-30, -1)
    peak = np.abs(xs[0]).max() + 1e-9
    return [(x / peak * 10 ** (level_db / 20)).astype(np.float32) for x in xs]


_SYNTH = {}


def _accompaniment_synth(sample_rate_hz: int, soundfont=None):
    """One loaded General-MIDI soundfont per process and soundfont (loading takes seconds); by default
    accompaniment.DEFAULT_SOUNDFONT."""
    from .accompaniment import DEFAULT_SOUNDFONT, AccompanimentError

    key = (sample_rate_hz, str(soundfont or DEFAULT_SOUNDFONT))
    if key not in _SYNTH:
        import fluidsynth

        if not Path(key[1]).is_file():
            raise AccompanimentError(f"soundfont '{key[1]}' does not exist")
        synth = fluidsynth.Synth(samplerate=float(sample_rate_hz), gain=0.4,
                                 **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        _SYNTH[key] = (synth, synth.sfload(key[1]))
    return _SYNTH[key]


def drum_levels_db(drums, rng: np.random.Generator, *, quiet_metal_db: float = 0.0) -> dict:
    """A random mix: each drum's level in dB, -6 to +6; with `quiet_metal_db`, half the time the hi-hat and
    cymbals (METAL) all go down by one more random amount up to that."""
    gains = {d: float(rng.uniform(-6, 6)) for d in drums}
    if quiet_metal_db and rng.random() < 0.5:
        cut = float(rng.uniform(0, quiet_metal_db))
        for d in METAL:
            if d in gains:
                gains[d] -= cut
    return gains


def brick_wall(audio: np.ndarray, cutoff_hz: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """`audio` with every frequency above `cutoff_hz` removed (zero-phase, through the FFT): what audio once sampled
    at twice that rate, or an mp3 encoder's low-pass, leaves."""
    spectrum = np.fft.rfft(audio)
    spectrum[np.fft.rfftfreq(len(audio), 1.0 / sample_rate_hz) > cutoff_hz] = 0.0
    return np.fft.irfft(spectrum, n=len(audio))


def _add_at_level(audio: np.ndarray, other: np.ndarray, level_db: float) -> None:
    """Add `other` into `audio` (in place, over their common length) with its RMS `level_db` from `audio`'s."""
    n = min(len(audio), len(other))
    audio_rms = float(np.sqrt(np.mean(audio[:n] ** 2))) + 1e-9
    other_rms = float(np.sqrt(np.mean(other[:n] ** 2))) + 1e-9
    audio[:n] += other[:n] * (audio_rms / other_rms) * 10 ** (level_db / 20)


def render_performance(kit: Kit, rng: np.random.Generator, *, bars: int | None = None, style: str | None = None,
                       augment_strength: float = 1.0, tempo_bpm: float | None = None,
                       accompaniment_prob: float = 0.0, sample_rate_hz: int = SAMPLE_RATE_HZ,
                       other_kits: list = (), tune_semitones: float = 0.0, bus_mix_prob: float = 0.0,
                       quiet_metal_db: float = 0.0, lead_prob: float = 0.0, band_db: tuple = BAND_DB,
                       bleed_prob: float = 0.0, amp_prob: float = 0.0, band_soundfonts: tuple = (),
                       percussion_prob: float = 0.0, percussion: tuple = (), cymbal_play: float = 0.0,
                       drums_apart: bool = False):
    """One labelled clip: (audio, hits) with a random groove on `kit`, a random mix and a random room; with
    probability `accompaniment_prob` a band (bass and chords) plays along, `band_db` (BAND_DB) around the drums,
    and of those bands a share `lead_prob` adds a melody and sometimes distorted power chords.
    With `quiet_metal_db`, half the clips pull the hi-hat and cymbals down by up to that much (a drummer who
    rides the hats softly, a mix with the overheads low). With probability `bleed_prob` the kit is heard as miked,
    with overheads and snare-wire rattle (`bleed_buses`). With probability `amp_prob` a lead clip's power chords go
    through a guitar amp (`accompaniment.amp_chain`). With `band_soundfonts`, each band's instruments come from one
    of those General MIDI soundfonts, drawn per clip (default: accompaniment.DEFAULT_SOUNDFONT). With probability
    `percussion_prob` one instrument of a kit of `percussion` (load_percussion: tambourine, shaker, cowbell, ...)
    plays along, 0-18 dB below the drums (RMS), and is never labelled: it is not a drum to transcribe.
    `cymbal_play`: crash chokes and ride bells (render_hits). `drums_apart`: (audio, hits, drums), where drums is
    what the drums (and any unlabelled percussion) contribute to audio, through the same studio (augment_parts)."""
    bars = bars or int(rng.integers(4, 12))
    band = rng.random() < accompaniment_prob
    if band:
        style = style or str(rng.choice(["groove", "groove", "groove", "jazz"]))
        tempo_bpm = tempo_bpm or float(rng.uniform(60, 200))
    shaker = None
    if percussion_prob and percussion and rng.random() < percussion_prob:  # no draw without it: older renders stay
        shaker = percussion[int(rng.integers(len(percussion)))]
        tempo_bpm = tempo_bpm or float(rng.uniform(60, 200))  # the groove's tempo, which the part follows
    if other_kits:
        kit = mix_kits(kit, list(other_kits), rng)
    if tune_semitones:
        kit = tune_kit(kit, rng, max_semitones=tune_semitones, sample_rate_hz=sample_rate_hz)
    hits, duration = generate_pattern(rng, bars=bars, style=style, tempo_bpm=tempo_bpm, drums_available=kit.drums)
    gains = drum_levels_db(kit.drums, rng, quiet_metal_db=quiet_metal_db)
    bleed = bool(bleed_prob) and rng.random() < bleed_prob  # no draw without it: older renders stay the same
    by_bus = rng.random() < bus_mix_prob
    if by_bus or bleed:
        buses = render_hits(hits, kit, duration_s=duration, rng=rng, drum_gain_db=gains, sample_rate_hz=sample_rate_hz,
                            buses=True, cymbal_play=cymbal_play)
        if bleed:
            buses = bleed_buses(buses, rng, sample_rate_hz=sample_rate_hz)
        audio = (mix_buses(buses, rng, sample_rate_hz=sample_rate_hz) if by_bus
                 else np.sum([buses[b] for b in sorted(buses)] or [np.zeros(int(duration * sample_rate_hz))],
                             axis=0).astype(np.float32))
    else:
        audio = render_hits(hits, kit, duration_s=duration, rng=rng, drum_gain_db=gains, sample_rate_hz=sample_rate_hz,
                            cymbal_play=cymbal_play)
    if shaker:
        part = percussion_part(shaker, rng, tempo_bpm=tempo_bpm, duration_s=duration, sample_rate_hz=sample_rate_hz)
        _add_at_level(audio, part, float(rng.uniform(-18, 0)))
    drums = audio.copy() if drums_apart else None
    if band:
        from .accompaniment import render_accompaniment

        lead = bool(lead_prob) and rng.random() < lead_prob
        amp = lead and bool(amp_prob) and rng.random() < amp_prob  # no draw without it: older renders stay the same
        soundfont = band_soundfonts[int(rng.integers(len(band_soundfonts)))] if band_soundfonts else None  # nor here
        music = render_accompaniment(rng, tempo_bpm=tempo_bpm, bars=bars, sample_rate_hz=sample_rate_hz,
                                     synth=_accompaniment_synth(sample_rate_hz, soundfont), lead=lead, amp=amp)
        _add_at_level(audio, music, float(rng.uniform(*band_db)))
    hits = [h for h in hits if h.labelled and h.time_s < duration]
    if drums_apart:
        if augment_strength > 0:
            audio, drums = augment_parts([audio, drums], rng, strength=augment_strength, sample_rate_hz=sample_rate_hz)
        return audio, hits, drums
    if augment_strength > 0:
        audio = augment(audio, rng, strength=augment_strength, sample_rate_hz=sample_rate_hz)
    return audio, hits
