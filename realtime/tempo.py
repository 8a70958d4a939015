"""Tempo, downbeat and beat grid of a list of drum hits.

The tempo only sets the grid a MIDI editor shows (and what --quantize snaps to); notes are placed at their exact
times whatever it is. See docs/grid.md for the method and the figures measured on it.

1. An onset envelope (100 Hz) of the hits, each weighted by its drum (kick and snare carry the beat, hi-hats
   mostly subdivide it) and its velocity; its autocorrelation (numpy's FFT) gives the candidate beat
   periods: the strongest lags in MIN_TEMPO_BPM..MAX_TEMPO_BPM and their musical relatives (x1/2, x2/3, x3/2, x2).
2. Each candidate's period is refined on the hit times themselves (the phase coherence of the hits on a beat
   grid and its 2- and 4-fold subdivisions, searched finely around the lag), which makes it precise to a fraction
   of a percent and insensitive to the envelope's 10 ms bins.
3. The tempo octave a musician would write is the candidate whose grid best explains where the drums fall, the
   product of: the share of the kicks' and snares' weight on its beats (a grid twice too slow puts the
   backbeat between its beats); the share of its beats that carry a kick or snare (one twice too fast leaves
   half its beats empty); the backbeat (the accented snares on every other beat, always the same ones); the
   share of its beats the timekeepers (hi-hat, ride, crash) play on; and a log-normal prior over tempi,
   PRIOR_CENTRE_BPM +- PRIOR_OCTAVES. Figures for each candidate: judge_candidates.
4. The downbeat is the beat (of the four in a 4/4 bar) where kicks and crashes fall and snares do not, the first
   hit's beat winning near ties (songs mostly start on the one).
5. A tempo map (optional) follows the hits bar by bar (a phase-locked grid) when a single tempo
   would put a bar line more than DRIFT_TOLERANCE_BEATS off the tracked one.

No librosa here, measured (docs/grid.md): its first use costs 3.2 s of imports (numba), twice a whole
transcription of the example, which inference keeps free of librosa; and librosa.beat.beat_track dies of a
segmentation fault in numba 0.68 with numpy 2.4 on this machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_TEMPO_BPM = 120.0
MIN_TEMPO_BPM = 50.0
MAX_TEMPO_BPM = 220.0
BEATS_PER_BAR = 4

PRIOR_CENTRE_BPM = 115.0
"""Centre of the log-normal prior over tempi (popular music; librosa's beat tracker starts at 120)."""
PRIOR_OCTAVES = 0.8
"""Its standard deviation, in octaves."""
DRIFT_TOLERANCE_BEATS = 0.125
"""A tempo map is written when one tempo would miss a tracked bar line by more than this (a 32nd note)."""
FIRST_BEAT_BONUS = 0.15
"""The downbeat score of the first hit's beat is raised by this share of the largest: a tie-break toward the
song starting on the one."""
REFINE_START_S = 30.0
"""The period is first refined on this many seconds of hits, then on twice as many, up to the whole song."""
DOWNBEAT_BARS = 8
"""The downbeat is judged on this many bars from the first hit."""
PICKUP_STEP_BEATS = 0.25
"""The time before the first downbeat is made whole 16th notes (a downbeat less than a 32nd note from the start
is taken as at 0: its notes then sit up to a 32nd note after the bar line)."""

_RATE_HZ = 100.0  # envelope resolution (10 ms)
_SMOOTH_S = 0.02  # Gaussian smoothing of the envelope: absorbs timing jitter and coding shifts
_DRUM_WEIGHT = {"KD": 1.0, "SD": 1.0, "TT": 0.6, "CY": 0.5, "HH": 0.35}
_BEAT_CLASSES = ("KD", "SD")  # the drums whose place on the grid decides the tempo octave and the downbeat
_KEEPER_CLASSES = ("HH", "CY")  # the timekeepers: they play every beat (or its subdivisions) far more than every other
_ON_BEAT = 0.125  # a hit within this many beats of a beat is on it


@dataclass(frozen=True)
class BeatGrid:
    """Beats as a piecewise-linear map between seconds and beats: knots (time, beat), and `last_bpm` after the
    last knot.

    Beat 0 is time 0; the first downbeat (bar 1) is beat `pickup_beats` at `downbeat_s`; bars of `beats_per_bar`
    beats follow. Before it, `pickup_beats` (whole 16ths: a pickup bar, and whole bars when it is longer) span
    0..downbeat_s at their own tempo (2/3 to 2 times the song's: the 16ths nearest the time), so
    that every note keeps its exact time and bar 1 still starts on a bar line. `tempo_bpm` is the song's tempo.
    """

    tempo_bpm: float
    downbeat_s: float
    pickup_beats: float
    knots_s: tuple
    knots_beats: tuple
    last_bpm: float
    beats_per_bar: int = BEATS_PER_BAR

    def __post_init__(self):
        for name in ("tempo_bpm", "last_bpm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"BeatGrid.{name} {value} must be > 0")
        if len(self.knots_s) != len(self.knots_beats) or not self.knots_s:
            raise ValueError("BeatGrid needs as many knot times as knot beats, at least one")
        if np.any(np.diff(self.knots_s) <= 0) or np.any(np.diff(self.knots_beats) <= 0):
            raise ValueError("BeatGrid knots must increase")

    def segments(self) -> list:
        """[(start_s, start_beat, tempo_bpm)]: one per tempo, the last running on to the end."""
        out = []
        for i in range(len(self.knots_s) - 1):
            bpm = 60.0 * (self.knots_beats[i + 1] - self.knots_beats[i]) / (self.knots_s[i + 1] - self.knots_s[i])
            out.append((float(self.knots_s[i]), float(self.knots_beats[i]), bpm))
        out.append((float(self.knots_s[-1]), float(self.knots_beats[-1]), float(self.last_bpm)))
        return out

    def beats(self, seconds):
        """The beat position (float) of times in seconds."""
        t = np.asarray(seconds, dtype=np.float64)
        ks, kb = np.asarray(self.knots_s, dtype=np.float64), np.asarray(self.knots_beats, dtype=np.float64)
        first_rate = self.segments()[0][2] / 60.0
        out = np.interp(t, ks, kb)
        out = np.where(t > ks[-1], kb[-1] + (t - ks[-1]) * self.last_bpm / 60.0, out)
        return np.where(t < ks[0], kb[0] + (t - ks[0]) * first_rate, out)

    def seconds(self, beats):
        """The time in seconds of beat positions."""
        b = np.asarray(beats, dtype=np.float64)
        ks, kb = np.asarray(self.knots_s, dtype=np.float64), np.asarray(self.knots_beats, dtype=np.float64)
        first_rate = self.segments()[0][2] / 60.0
        out = np.interp(b, kb, ks)
        out = np.where(b > kb[-1], ks[-1] + (b - kb[-1]) * 60.0 / self.last_bpm, out)
        return np.where(b < kb[0], ks[0] + (b - kb[0]) / first_rate, out)

    def bar_lines_s(self, end_s: float) -> np.ndarray:
        """Times of the bar lines from bar 1 up to `end_s`."""
        last = float(self.beats(end_s))
        return self.seconds(np.arange(self.pickup_beats, max(self.pickup_beats, last) + 1e-9, self.beats_per_bar))

    def beat_lines_s(self, end_s: float) -> np.ndarray:
        """Times of every beat (counted from bar 1, so the pickup's too) from time 0 up to `end_s`."""
        first = self.pickup_beats % 1.0
        return self.seconds(np.arange(first, float(self.beats(end_s)) + 1e-9, 1.0))

    @property
    def is_tempo_map(self) -> bool:
        """More than one tempo from bar 1 on."""
        tempi = [s[2] for s in self.segments() if s[1] >= self.pickup_beats]
        return max(tempi) - min(tempi) > 1e-6 * max(tempi)


def constant_grid(tempo_bpm: float, downbeat_s: float) -> BeatGrid:
    """One tempo; bar 1 at `downbeat_s`, the time before it made whole 16ths (see BeatGrid)."""
    if not (math.isfinite(tempo_bpm) and tempo_bpm > 0):
        raise ValueError(f"tempo_bpm {tempo_bpm} must be > 0")
    pickup = pickup_beats(tempo_bpm, downbeat_s)
    if pickup == 0:
        return BeatGrid(tempo_bpm, 0.0, 0.0, (0.0,), (0.0,), tempo_bpm)
    return BeatGrid(tempo_bpm, float(downbeat_s), pickup, (0.0, float(downbeat_s)), (0.0, pickup), tempo_bpm)


def pickup_beats(tempo_bpm: float, downbeat_s: float) -> float:
    """The beats (whole 16ths, PICKUP_STEP_BEATS) written before a first downbeat at `downbeat_s`: the nearest
    number; 0 when the downbeat is less than half a 16th from the start."""
    step_s = PICKUP_STEP_BEATS * 60.0 / tempo_bpm
    return round(max(0.0, downbeat_s) / step_s) * PICKUP_STEP_BEATS


# ---------------------------------------------------------------------------------------------------------------
# Estimation


def _classes(drums) -> np.ndarray:
    from .drums import SCORE_CLASS

    return np.array([SCORE_CLASS.get(d, d) for d in drums], dtype=object)


def _envelope(times: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    train = np.zeros(n)
    np.add.at(train, np.clip(np.round(times * _RATE_HZ).astype(int), 0, n - 1), weights)
    sigma = _SMOOTH_S * _RATE_HZ
    half = int(np.ceil(4 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    return np.convolve(train, kernel, mode="same")


def _coherence(times: np.ndarray, weights: np.ndarray, period_s: np.ndarray) -> np.ndarray:
    """How well the hits line up on grids of each period (and its halves and quarters), 0..1 per harmonic."""
    total = weights.sum()
    z = np.exp(2j * np.pi * times[None, :] / period_s[:, None])
    out = np.abs(z @ weights)
    z *= z  # the half-beat grid
    out += 0.5 * np.abs(z @ weights)
    z *= z  # the quarter-beat grid
    out += 0.25 * np.abs(z @ weights)
    return out / total


def _refine(times, weights, period_s: float, *, spread: float = 0.04) -> float:
    """The period near `period_s` (+-`spread`) on which the hits line up best.

    Coarse to fine: on the first REFINE_START_S of hits a search over the whole spread, a twentieth of a beat
    over that span apart; then, the span doubling each time up to the whole song, a search around the best so
    far as narrow as the longer span allows (the peak narrows as the song lengthens); last, between the points
    of the last search. (A 5-minute song: 0.85 s for all candidates instead of 2.4 s with one fine search.)"""
    start = times[0]
    horizon = min(times[-1], start + REFINE_START_S)
    best = period_s
    low, high = period_s * (1 - spread), period_s * (1 + spread)
    while True:
        use = times <= horizon
        span = max(horizon - start, period_s)
        step = 0.05 * best ** 2 / span  # a twentieth of a beat over the span
        grid = np.arange(low, high + step, max(step, best * 1e-5))
        best = float(grid[int(np.argmax(_coherence(times[use], weights[use], grid)))])
        if horizon >= times[-1]:  # finally, between the grid's points
            grid = np.linspace(best - step, best + step, 41)
            return float(grid[int(np.argmax(_coherence(times, weights, grid)))])
        horizon = min(times[-1], start + 2 * (horizon - start))
        low, high = best - 20 * step, best + 20 * step  # the next peak lies well within the current step x 20


def _phase(times, weights, period_s: float) -> float:
    """The beat phase (seconds, 0..period) of the hits on a grid of `period_s`."""
    z = np.exp(2j * np.pi * times / period_s) @ weights
    return float((np.angle(z) / (2 * np.pi)) % 1.0 * period_s)


def _pattern_fit(times, weights, period_s: float, phase_s: float, span) -> tuple:
    """(share of the beat drums' weight on the beats, share of the beats in `span` that carry a beat drum)."""
    if not len(times):
        return 0.0, 0.0
    pos = (times - phase_s) / period_s
    dist = np.abs(pos - np.round(pos))
    on = float(weights[dist <= _ON_BEAT].sum() / weights.sum())
    first = math.ceil((span[0] - phase_s) / period_s - _ON_BEAT)
    last = math.floor((span[1] - phase_s) / period_s + _ON_BEAT)
    n_beats = max(1, last - first + 1)
    carried = len(set(np.round(pos[dist <= _ON_BEAT]).astype(int).tolist()))
    return on, min(1.0, carried / n_beats)


def _prior(bpm):
    return np.exp(-0.5 * (np.log2(np.asarray(bpm) / PRIOR_CENTRE_BPM) / PRIOR_OCTAVES) ** 2)


@dataclass(frozen=True)
class _Hits:
    times: np.ndarray
    weights: np.ndarray  # drum x velocity
    classes: np.ndarray


def _prepare(onsets_s, drums, velocities) -> _Hits:
    times = np.asarray(onsets_s, dtype=np.float64)
    n = len(times)
    classes = _classes(drums) if drums is not None else np.array(["KD"] * n, dtype=object)
    vel = np.asarray(velocities, dtype=np.float64) if velocities is not None else np.full(n, 100.0)
    keep = np.isfinite(times) & (times >= 0)
    times, classes, vel = times[keep], classes[keep], vel[keep]
    order = np.argsort(times, kind="stable")
    times, classes, vel = times[order], classes[order], vel[order]
    weights = np.array([_DRUM_WEIGHT.get(c, 0.5) for c in classes]) * (0.25 + 0.75 * np.clip(vel, 1, 127) / 127)
    return _Hits(times, weights, classes)


def _candidates(hits: _Hits) -> list:
    """Beat periods (s) worth judging: the strongest autocorrelation lags and their musical relatives."""
    n = int(np.ceil(hits.times[-1] * _RATE_HZ)) + 1
    env = _envelope(hits.times, hits.weights, n)
    env = env - env.mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))  # zero-padded: the linear autocorrelation, as librosa.autocorrelate
    spectrum = np.fft.rfft(env, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acf[0] <= 0:
        return []
    acf = acf / acf[0]
    lo = max(2, int(np.floor(60.0 / MAX_TEMPO_BPM / 2 * _RATE_HZ)))
    hi = min(len(acf) - 2, int(np.ceil(60.0 / MIN_TEMPO_BPM * 2 * _RATE_HZ)))
    if hi <= lo:
        return []
    lags = np.arange(lo, hi + 1)
    peaks = lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1]) & (acf[lags] > 0)]
    peaks = sorted(peaks, key=lambda lag: -acf[lag])[:4]
    out = []
    for lag in peaks:
        y0, y1, y2 = acf[lag - 1], acf[lag], acf[lag + 1]
        denom = y0 - 2 * y1 + y2
        lag_f = lag + (float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) if denom < 0 else 0.0)
        for ratio in (1.0, 0.5, 2.0, 2 / 3, 1.5, 4.0, 0.25, 3.0, 1 / 3):
            period = lag_f / _RATE_HZ * ratio
            if 60.0 / MAX_TEMPO_BPM <= period <= 60.0 / MIN_TEMPO_BPM:
                if all(abs(period / p - 1) > 0.03 for p in out):
                    out.append(period)
    return out


def _judge(hits: _Hits, period_s: float) -> dict:
    beat = np.isin(hits.classes, _BEAT_CLASSES)
    if beat.sum() < 8:  # too few kicks and snares: every drum decides
        beat = np.ones(len(hits.times), dtype=bool)
    period_s = _refine(hits.times, hits.weights, period_s)
    phase = _phase(hits.times[beat], hits.weights[beat], period_s)
    span = (hits.times[beat][0], hits.times[beat][-1])
    on, carried = _pattern_fit(hits.times[beat], hits.weights[beat], period_s, phase, span)
    backbeat = _backbeat(hits, period_s, phase)
    keeper = np.isin(hits.classes, _KEEPER_CLASSES)
    kept = 1.0
    if keeper.sum() >= 8:
        span_k = (hits.times[keeper][0], hits.times[keeper][-1])
        kept = _pattern_fit(hits.times[keeper], hits.weights[keeper], period_s, phase, span_k)[1]
    bpm = 60.0 / period_s
    return dict(bpm=bpm, period_s=period_s, phase_s=phase, on=on, carried=carried, backbeat=backbeat, kept=kept,
                score=float(_prior(bpm)) * on * carried * (0.5 + backbeat) * (0.5 + 0.5 * kept))


def _backbeat(hits: _Hits, period_s: float, phase_s: float) -> float:
    """How much the accented snares play a backbeat on this grid: on every other beat, always the same ones
    (0..1; 0.5 when there are too few snares to tell)."""
    snare = hits.classes == "SD"
    if snare.sum() < 8:
        return 0.5
    times, weights = hits.times[snare], hits.weights[snare]
    strong = weights >= np.median(weights)
    times, weights = times[strong], weights[strong]
    pos = (times - phase_s) / period_s
    index = np.round(pos).astype(int)
    on = np.abs(pos - index) <= _ON_BEAT
    if not on.any():
        return 0.0
    parity = np.array([weights[on][index[on] % 2 == p].sum() for p in (0, 1)])
    main = int(np.argmax(parity))
    consistency = parity[main] / parity.sum()
    slots = index[on][index[on] % 2 == main]
    n_slots = max(1, (slots.max() - slots.min()) // 2 + 1)
    return float(consistency * len(set(slots.tolist())) / n_slots)


def estimate_tempo_bpm(onsets_s, weights=None, *, drums=None, default_bpm: float = DEFAULT_TEMPO_BPM) -> float:
    """The beat tempo of onsets (seconds) in MIN_TEMPO_BPM..MAX_TEMPO_BPM, or `default_bpm` with too few onsets.
    `weights` are velocities (1-127); `drums` their drum names (see module doc)."""
    return estimate_grid(onsets_s, drums, weights, default_bpm=default_bpm).tempo_bpm


def _too_few(hits: _Hits) -> bool:
    return len(hits.times) < 4 or hits.times[-1] - hits.times[0] < 2.0 * 60.0 / MIN_TEMPO_BPM


def judge_candidates(onsets_s, drums=None, velocities=None) -> list:
    """Every candidate tempo with the figures that chose between them, best first (for bench/tempo.py)."""
    hits = _prepare(onsets_s, drums, velocities)
    return [] if _too_few(hits) else _judged(hits)


def _judged(hits: _Hits) -> list:
    return sorted((_judge(hits, p) for p in _candidates(hits)), key=lambda c: -c["score"])


def _downbeat_phase(hits: _Hits, period_s: float, phase_s: float) -> int:
    """Which of the BEATS_PER_BAR beats (counted from the beat at `phase_s`) starts the bar, judged on the first
    DOWNBEAT_BARS bars (where a drifting tempo has not yet moved the beats off the one-tempo grid)."""
    early = hits.times <= hits.times[0] + DOWNBEAT_BARS * BEATS_PER_BAR * period_s
    hits = _Hits(hits.times[early], hits.weights[early], hits.classes[early])
    pos = (hits.times - phase_s) / period_s
    index = np.round(pos).astype(int)
    on = np.abs(pos - index) <= _ON_BEAT
    score = np.zeros(BEATS_PER_BAR)
    sign = {"KD": 1.0, "CY": 1.5, "SD": -1.0}
    for i, c, w in zip(index[on], hits.classes[on], hits.weights[on], strict=True):
        score[i % BEATS_PER_BAR] += sign.get(c, 0.0) * w
    if on.any():  # songs mostly start on the one: the first hit's beat wins a near tie
        score[index[on][0] % BEATS_PER_BAR] += FIRST_BEAT_BONUS * np.abs(score).max()
    return int(np.argmax(score))


def estimate_grid(onsets_s, drums=None, velocities=None, *, tempo_bpm: float | None = None, track_drift=False,
                  default_bpm: float = DEFAULT_TEMPO_BPM) -> BeatGrid:
    """The beat grid of hits (times in seconds, drum names, velocities): tempo, first downbeat, and (with
    `track_drift`) a tempo per bar where the tempo drifts. A given `tempo_bpm` is kept; only the phase and the
    downbeat are then estimated."""
    hits = _prepare(onsets_s, drums, velocities)
    if _too_few(hits):
        bpm = float(tempo_bpm or default_bpm)
        first = float(hits.times[0]) if len(hits.times) else 0.0
        return constant_grid(bpm, first)
    if tempo_bpm is not None:
        period = 60.0 / tempo_bpm
        beat = np.isin(hits.classes, _BEAT_CLASSES)
        if beat.sum() < 8:
            beat = np.ones(len(hits.times), dtype=bool)
        best = dict(bpm=float(tempo_bpm), period_s=period, phase_s=_phase(hits.times[beat], hits.weights[beat], period))
    else:
        judged = _judged(hits)
        if not judged or judged[0]["score"] <= 0:
            return constant_grid(default_bpm, float(hits.times[0]))
        best = judged[0]
    period = best["period_s"]
    early = hits.times <= hits.times[0] + DOWNBEAT_BARS * BEATS_PER_BAR * period
    if track_drift and tempo_bpm is None:  # the tempo of the first bars, which a drifting song starts with
        period = _refine(hits.times[early], hits.weights[early], period, spread=0.08)
    beat = np.isin(hits.classes, _BEAT_CLASSES) & early
    if beat.sum() < 8:
        beat = early
    phase = _phase(hits.times[beat], hits.weights[beat], period)  # where a drifting tempo has not moved it yet
    bar = _downbeat_phase(hits, period, phase)
    first_beat = phase + period * math.ceil((hits.times[0] - phase) / period - _ON_BEAT)  # the first hit's beat
    k = round((first_beat - phase) / period)
    offset = (bar - k) % BEATS_PER_BAR
    downbeat = first_beat + offset * period
    bpm = round(float(best["bpm"]), 2) if tempo_bpm is None else float(tempo_bpm)
    grid = constant_grid(bpm, downbeat)
    if track_drift:
        grid = _tracked(hits, grid, period) or grid
    return grid


def _tracked(hits: _Hits, grid: BeatGrid, start_period_s: float) -> BeatGrid | None:
    """A tempo per bar where the tempo drifts, None when one tempo holds.

    A phase-locked grid: from bar 1, each next bar line is predicted at the current bar length, then moved (by up
    to a 16th note) to where the hits of the bar after it sit best on an 8th-note grid; the bar length follows
    half way. The tracked bar lines become the knots of a tempo map when one of them is more than
    DRIFT_TOLERANCE_BEATS off the best single tempo through them."""
    period = 60.0 / grid.tempo_bpm
    n_beats = grid.beats_per_bar
    sigma = 0.04 * period
    lines = [grid.downbeat_s]
    bar_s = n_beats * start_period_s
    while lines[-1] + bar_s < hits.times[-1]:
        predicted = lines[-1] + bar_s
        near = (hits.times >= predicted - 0.25 * bar_s) & (hits.times < predicted + 1.25 * bar_s)
        if near.sum() < 2:
            lines.append(predicted)
            continue
        shifts = np.linspace(-0.25, 0.25, 51) * period
        step = 0.5 * bar_s / n_beats  # 8th notes
        rel = hits.times[near][None, :] - predicted - shifts[:, None]
        dist = rel / step - np.round(rel / step)
        fit = np.exp(-0.5 * (dist * step / sigma) ** 2) @ hits.weights[near]
        line = predicted + shifts[int(np.argmax(fit))]
        bar_s = 0.5 * bar_s + 0.5 * (line - lines[-1])
        lines.append(line)
    tracked = np.array(lines)
    if len(tracked) < 4:
        return None
    x = np.arange(len(tracked))
    fit = np.polyval(np.polyfit(x, tracked, 1), x)  # the best single tempo through them
    if np.max(np.abs(tracked - fit)) <= DRIFT_TOLERANCE_BEATS * period:
        return None
    first = grid.downbeat_s
    pickup = grid.pickup_beats
    knots_s = ([0.0] if first > 0 else []) + tracked.tolist()
    knots_b = ([0.0] if first > 0 else []) + [float(pickup + n_beats * i) for i in range(len(tracked))]
    last_bpm = 60.0 * n_beats / (tracked[-1] - tracked[-2])
    return BeatGrid(grid.tempo_bpm, first, pickup, tuple(knots_s), tuple(knots_b), last_bpm)


# ---------------------------------------------------------------------------------------------------------------
# Quantize


QUANTIZE_GRIDS = ("1/4", "1/8", "1/16", "1/32", "1/4t", "1/8t", "1/16t", "1/32t")


def grid_beats(name: str) -> float:
    """The length in beats (quarter notes) of a quantize grid: '1/16' -> 0.25, '1/8t' (8th-note triplets) -> 1/3."""
    text = str(name).strip().lower()
    if text not in QUANTIZE_GRIDS:
        raise ValueError(f"quantize grid '{name}' is not one of: {', '.join(QUANTIZE_GRIDS)}")
    triplet = text.endswith("t")
    length = 4.0 / int(text.rstrip("t").split("/")[1])
    return length * 2.0 / 3.0 if triplet else length


def quantize_beats(beats, step_beats: float, *, strength: float = 1.0, swing: float = 0.0) -> np.ndarray:
    """Beat positions moved `strength` (0..1) of the way to the nearest grid line of `step_beats`.

    `swing` (0..1) delays every second grid line (the off-beat 8ths on a 1/8 grid, the off-beat 16ths on a 1/16
    grid): 0 is straight, 1 moves it to the last third of its pair (a triplet feel, 2:1), 0.5 half way (about
    58 %). Grid lines count from beat 0 of each bar-aligned pair, so swing needs a straight grid (not triplets).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"quantize strength {strength} is not in 0-1")
    if not 0.0 <= swing <= 1.0:
        raise ValueError(f"swing {swing} is not in 0-1")
    b = np.asarray(beats, dtype=np.float64)
    if swing > 0:  # nearest line of the swung grid: straight lines, odd ones delayed by swing * step / 3
        pair = 2.0 * step_beats
        start = np.floor(b / pair) * pair
        candidates = start[:, None] + np.array([0.0, step_beats * (1 + swing / 3.0), pair])[None, :]
        target = candidates[np.arange(len(b)), np.argmin(np.abs(candidates - b[:, None]), axis=1)]
    else:
        target = np.round(b / step_beats) * step_beats
    return b + strength * (target - b)
