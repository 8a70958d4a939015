"""Kit calibration measured on a rendered kit: a calibration take, a groove, their transcription live and from the
file, and F over the individual drums. `bench/calibrate.py` prints these; tests/test_calibrate.py uses them."""
from __future__ import annotations

import numpy as np

from .evaluate import score
from .render import Hit, render_hits

SEQUENCE = ("kick", "snare", "hh_closed", "hh_open", "tom_low", "tom_mid", "tom_high", "crash", "ride")
SCORED = SEQUENCE  # the individual drums the F pools


def calibration_take(kit, rng, *, hits: int = 8, spacing_s: float = 0.5, pause_s: float = 2.5):
    """(hits, duration) of a take: `hits` strokes of each drum of SEQUENCE in turn, velocities 70-115."""
    out, t = [], 0.5
    for drum in SEQUENCE:
        for _ in range(hits):
            out.append(Hit(t + rng.normal(0, 0.01), drum, int(rng.integers(70, 116))))
            t += spacing_s
        t += pause_s - spacing_s
    return out, t + 1.0


def render(hits, kit, duration, rng) -> np.ndarray:
    audio = render_hits(hits, kit, duration_s=duration, rng=rng)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float64)


def drum_f(played, found, drums=SCORED) -> dict:
    """Per drum F rows and 'pooled' (micro over the drums)."""
    ref = {d: np.sort([h.time_s for h in played if h.drum == d and h.labelled]) for d in drums}
    est = {d: np.sort([h.onset_s for h in found if h.drum == d]) for d in drums}
    rows = score(ref, est, classes=tuple(drums))
    rows = {d: rows[d] for d in drums if d in rows}
    tp = sum(r["tp"] for r in rows.values())
    n_ref = sum(r["n_ref"] for r in rows.values())
    n_est = sum(r["n_est"] for r in rows.values())
    f = 2 * tp / max(n_ref + n_est, 1)
    return {**rows, "pooled": {"f": f, "tp": tp, "n_ref": n_ref, "n_est": n_est}}


def transcribe(audio, checkpoint, *, live: bool, profile=None) -> list:
    from drumscribe.realtime import DEFAULT_BLOCK_SIZE_SAMPLES
    from drumscribe.realtime.engine import OFFLINE, Engine, build_stages
    from drumscribe.realtime.live import build_live_stages
    from drumscribe.realtime.sinks import CollectSink
    from drumscribe.realtime.sources import ArraySource

    stages = (build_live_stages(checkpoint, profile=profile) if live
              else build_stages(checkpoint, OFFLINE, profile=profile))
    collected = CollectSink()
    Engine(stages, [collected]).run(ArraySource(audio, block_size_samples=DEFAULT_BLOCK_SIZE_SAMPLES if live
                                                else 4096))
    return list(collected)


def pooled(tracks: list) -> dict:
    """drum_f rows summed over grooves (tp, n_ref, n_est), F recomputed: a micro average."""
    out = {}
    for rows in tracks:
        for name, r in rows.items():
            acc = out.setdefault(name, {"tp": 0, "n_ref": 0, "n_est": 0})
            for k in acc:
                acc[k] += r[k]
    for acc in out.values():
        acc["f"] = 2 * acc["tp"] / max(acc["n_ref"] + acc["n_est"], 1)
    return out
