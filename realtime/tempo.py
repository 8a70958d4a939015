"""A tempo for a list of drum hits: autocorrelation of their onset train, weighted towards common tempi.

The tempo only sets the grid a MIDI editor shows; notes are placed at their exact times whatever it is.
"""
from __future__ import annotations

import numpy as np

DEFAULT_TEMPO_BPM = 120.0
MIN_TEMPO_BPM = 50.0
MAX_TEMPO_BPM = 220.0

_ENVELOPE_RATE_HZ = 100.0  # onset train resolution (10 ms)
_SMOOTH_S = 0.015  # Gaussian smoothing of the train, absorbs timing jitter
_PRIOR_CENTRE_BPM = 120.0  # log-normal tempo prior (librosa's beat tracker uses the same centre)
_PRIOR_OCTAVES = 1.0  # its standard deviation in octaves


def estimate_tempo_bpm(onsets_s, weights=None, *, default_bpm: float = DEFAULT_TEMPO_BPM) -> float:
    """The beat tempo of onsets (seconds) in MIN_TEMPO_BPM..MAX_TEMPO_BPM, or `default_bpm` with too few onsets.

    The onsets become a smoothed impulse train (weighted, e.g. by velocity); its autocorrelation at each beat
    period, scaled by a log-normal prior around 120 BPM to pick between a tempo and its double or half,
    gives the tempo, refined between lags by a parabola through the peak.
    """
    times = np.sort(np.asarray(onsets_s, dtype=np.float64))
    if weights is None:
        weights = np.ones(len(times))
    else:
        weights = np.asarray(weights, dtype=np.float64)[np.argsort(np.asarray(onsets_s, dtype=np.float64), kind="stable")]
    keep = np.isfinite(times) & (times >= 0)
    times, weights = times[keep], weights[keep]
    if len(times) < 4 or times[-1] - times[0] < 2.0 * 60.0 / MIN_TEMPO_BPM:
        return float(default_bpm)

    rate = _ENVELOPE_RATE_HZ
    n = int(np.ceil((times[-1] - times[0]) * rate)) + 1
    train = np.zeros(n)
    np.add.at(train, np.round((times - times[0]) * rate).astype(int), weights)
    sigma = _SMOOTH_S * rate
    half = int(np.ceil(4 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    train = np.convolve(train, kernel, mode="same")
    train -= train.mean()

    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(train, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acf[0] <= 0:
        return float(default_bpm)
    acf /= acf[0]

    lo = max(1, int(np.floor(60.0 / MAX_TEMPO_BPM * rate)))
    hi = min(n - 2, int(np.ceil(60.0 / MIN_TEMPO_BPM * rate)))
    if hi <= lo:
        return float(default_bpm)
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / _PRIOR_CENTRE_BPM) / _PRIOR_OCTAVES) ** 2)
    score = np.maximum(acf[lags], 0.0) * prior
    if not np.any(score > 0):
        return float(default_bpm)
    best = int(lags[np.argmax(score)])
    y0, y1, y2 = acf[best - 1], acf[best], acf[best + 1]
    denom = y0 - 2 * y1 + y2
    offset = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    lag = best + float(np.clip(offset, -0.5, 0.5))
    return float(np.clip(round(60.0 * rate / lag, 2), MIN_TEMPO_BPM, MAX_TEMPO_BPM))
