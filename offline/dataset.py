"""Training windows: rendered clips run through the same spectrogram and onset detector as inference, each onset
labelled with the drums that truly start there.

The model thus learns on exactly the windows it will see: anchored where the detector fires, including its
false alarms (labelled with no drum) and its early or late triggers.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from drumscribe.realtime.drums import DRUMS
from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram, mel_basis
from drumscribe.realtime.onsets import OnsetDetector, OnsetParams
from drumscribe.realtime.sinks import atomic_output

from .render import BAND_DB

log = logging.getLogger(__name__)

STORE_BEFORE = 6  # frames stored before each onset frame; training crops what its model needs
STORE_AFTER = 24  # frames stored after it


@dataclass(frozen=True)
class LabelParams:
    """Which true hits an onset at frame k owns: those with frame_end(k) - hit_time in [min_delay_s, max_delay_s];
    of several such onsets, the one nearest target_delay_s (default: the middle of that range)."""

    min_delay_s: float = -0.010
    max_delay_s: float = 0.035
    target_delay_s: float | None = None


def detect(audio: np.ndarray, fp: FeatureParams, op: OnsetParams, basis) -> tuple[np.ndarray, list]:
    """Log-mel frames and onset frames of a clip, streamed exactly as inference does (offline scheduling)."""
    spec = LogMelSpectrogram(fp, basis, frames_per_call=16)
    tail = np.zeros(fp.n_fft + 32 * fp.hop_samples)
    block = spec.process(np.concatenate((audio.astype(np.float64), tail)))
    if block is None:
        return np.zeros((0, fp.n_mels)), []
    detector = OnsetDetector(op, n_mels=fp.n_mels)
    out = detector.process(block)
    return block.mel, list(out.onsets)


def label_onsets(onsets: list, hits: list, fp: FeatureParams, lp: LabelParams):
    """(labels (n_onsets, n_drums) uint8, velocities (n_onsets, n_drums) uint8, delays_s of matched hits, n_missed)."""
    index = {d: i for i, d in enumerate(DRUMS)}
    ends = (np.asarray(onsets, dtype=np.float64) + 1) * fp.hop_samples / fp.sample_rate_hz
    labels = np.zeros((len(onsets), len(DRUMS)), np.uint8)
    velocities = np.zeros((len(onsets), len(DRUMS)), np.uint8)
    delays, missed = [], 0
    centre = 0.5 * (lp.min_delay_s + lp.max_delay_s) if lp.target_delay_s is None else lp.target_delay_s
    for hit in hits:
        if hit.drum not in index:
            continue
        d = ends - hit.time_s
        ok = np.flatnonzero((d >= lp.min_delay_s) & (d <= lp.max_delay_s))
        if not len(ok):
            missed += 1
            continue
        j = ok[np.argmin(np.abs(d[ok] - centre))]
        labels[j, index[hit.drum]] = 1
        velocities[j, index[hit.drum]] = max(velocities[j, index[hit.drum]], hit.velocity)
        delays.append(d[j])
    return labels, velocities, np.asarray(delays), missed


def windows(mel: np.ndarray, onsets: list, before: int = STORE_BEFORE, after: int = STORE_AFTER) -> np.ndarray:
    """(n_onsets, before + 1 + after, n_mels) windows, zero-padded at the clip's edges."""
    padded = np.concatenate((np.zeros((before, mel.shape[1])), mel, np.zeros((after, mel.shape[1]))))
    if not onsets:
        return np.zeros((0, before + 1 + after, mel.shape[1]))
    return np.stack([padded[k : k + before + 1 + after] for k in onsets])


_KITS = {}


def _kit(spec: str):
    """Kits loaded once per worker process."""
    from .render import load_kit

    if spec not in _KITS:
        _KITS[spec] = load_kit(spec)
    return _KITS[spec]


def build_for_kit(spec: str, n_clips: int, seed: int, fp: FeatureParams, op: OnsetParams, lp: LabelParams,
                  basis, accompaniment_prob: float = 0.0, pool: tuple = (), quiet_metal_db: float = 0.0,
                  lead_prob: float = 0.0, band_db: tuple = BAND_DB, bleed_prob: float = 0.0,
                  amp_prob: float = 0.0, band_soundfonts: tuple = (), percussion_prob: float = 0.0,
                  cymbal_play: float = 0.0, drum_mask: str = "", song_prob: float = 0.0) -> dict:
    """n_clips clips on kit `spec`; with a `pool` of kit specs, each clip borrows some drums from them, is
    retuned per drum and half the clips are mixed on channel buses; a share `bleed_prob` of the clips is heard
    as a miked kit (overheads, snare wires); a share `amp_prob` of the power chords goes through a guitar amp;
    with `band_soundfonts`, each band plays from one of those soundfonts; a share `percussion_prob` of the clips has
    an unlabelled tambourine, shaker or the like (render.PERCUSSION_KITS) playing along; a share `cymbal_play` of
    the crashes is choked and of the strong ride strokes played on the bell (render.render_hits). With a
    `drum_mask` (models.unmix checkpoint), the windows are cut from the masked spectrogram the classifier reads
    behind realtime.unmix.DrumMaskStage; the onsets are still found on the clip as it is. A share `song_prob` of the
    clips is a song (offline.songs.render_song: an arranged band, hand percussion, mixed and mastered like a
    record); the returned "perc" column marks the onsets that own a hand-percussion stroke (never a drum label)."""
    from .render import render_performance

    rng = np.random.default_rng(seed)
    kit = _kit(spec)
    others = [_kit(s) for s in pool if s != spec]
    percussion = _percussion() if percussion_prob else ()
    xs, ys, vs, ps, delays = [], [], [], [], []
    missed = total = seconds = 0
    for _ in range(n_clips):
        perc_hits = []
        if song_prob and rng.random() < song_prob:  # no draw without songs: older renders stay the same
            from .songs import render_song

            audio, hits, perc_hits = render_song(kit, rng, other_kits=others, percussion=_hand_percussion())
        else:
            audio, hits = render_performance(kit, rng, accompaniment_prob=accompaniment_prob, other_kits=others,
                                             tune_semitones=1.5 if others else 0.0,
                                             bus_mix_prob=0.5 if others else 0.0, quiet_metal_db=quiet_metal_db,
                                             lead_prob=lead_prob, band_db=band_db, bleed_prob=bleed_prob,
                                             amp_prob=amp_prob, band_soundfonts=band_soundfonts,
                                             percussion_prob=percussion_prob, percussion=percussion,
                                             cymbal_play=cymbal_play)
        mel, onsets = detect(audio, fp, op, basis)
        if drum_mask:
            mel = masked(mel, _drum_mask(drum_mask))
        y, v, d, m = label_onsets(onsets, hits, fp, lp)
        ps.append(label_percussion(onsets, perc_hits, fp, lp))
        xs.append(windows(mel, onsets).astype(np.float16))
        ys.append(y)
        vs.append(v)
        delays.append(d)
        missed += m
        total += len(hits)
        seconds += len(audio) / fp.sample_rate_hz
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "v": np.concatenate(vs), "perc": np.concatenate(ps),
            "delays": np.concatenate(delays), "missed": missed, "hits": total, "seconds": seconds, "kit": spec}


def label_percussion(onsets: list, perc_hits: list, fp: FeatureParams, lp: LabelParams) -> np.ndarray:
    """(n_onsets,) uint8: 1 where an onset owns a hand-percussion stroke (offline.songs), by label_onsets' rule."""
    out = np.zeros(len(onsets), np.uint8)
    if not perc_hits or not onsets:
        return out
    ends = (np.asarray(onsets, dtype=np.float64) + 1) * fp.hop_samples / fp.sample_rate_hz
    centre = 0.5 * (lp.min_delay_s + lp.max_delay_s) if lp.target_delay_s is None else lp.target_delay_s
    for hit in perc_hits:
        d = ends - hit.time_s
        ok = np.flatnonzero((d >= lp.min_delay_s) & (d <= lp.max_delay_s))
        if len(ok):
            out[ok[np.argmin(np.abs(d[ok] - centre))]] = 1
    return out


def _hand_percussion():
    """offline.songs' hand percussion kit (FluidR3 GM), loaded once per worker process."""
    from .songs import load_hand_percussion

    if "hand_percussion" not in _KITS:
        _KITS["hand_percussion"] = load_hand_percussion()
    return _KITS["hand_percussion"]


def _drum_mask(path: str) -> list:
    """A drum mask's weights (models.unmix.numpy_weights), loaded once per worker process."""
    if ("mask", path) not in _KITS:
        from drumscribe.models.unmix import load_mask, numpy_weights

        _KITS[("mask", path)] = numpy_weights(load_mask(path)[0])
    return _KITS[("mask", path)]


def masked(mel: np.ndarray, weights: list) -> np.ndarray:
    """A whole clip's log-mel through the drum mask, with silence before and after it (as a stream has)."""
    from drumscribe.realtime.unmix import mask_frames, reach_frames

    reach = reach_frames(weights)
    pad = np.zeros((reach, mel.shape[1]))
    return mask_frames(weights, np.concatenate((pad, mel, pad)))


def _percussion() -> tuple:
    """render.PERCUSSION_KITS that are installed, loaded once per worker process."""
    from .render import PERCUSSION_KITS, available, load_percussion

    if "percussion" not in _KITS:
        _KITS["percussion"] = tuple(load_percussion(s) for s in PERCUSSION_KITS if available(s))
    return _KITS["percussion"]


def _job(args):
    import hashlib
    import re

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # BLAS threads spin against the other workers' (23 s instead of 0.1 s per clip)
    (spec, n_clips, seed, fp, op, lp, basis, cache, band, pool, quiet, lead, band_db, bleed, amp, soundfonts, perc,
     cymbals, drum_mask, songs) = args
    recipe = "" if (fp, op, lp) == (FeatureParams(), OnsetParams(), LabelParams()) else (
        "-" + hashlib.sha1(json.dumps([fp.as_dict(), op.as_dict(), asdict(lp)], sort_keys=True).encode())
        .hexdigest()[:8])
    part = cache / (re.sub(r"[^A-Za-z0-9]+", "_", spec) + f"-{n_clips}-{seed}-{band}-{len(pool)}{recipe}"
                    + (f"-q{quiet:g}" if quiet else "") + (f"-lead{lead:g}" if lead else "")
                    + ("" if tuple(band_db) == BAND_DB else f"-band{band_db[0]:g}_{band_db[1]:g}")
                    + (f"-bleed{bleed:g}" if bleed else "") + (f"-amp{amp:g}" if amp else "")
                    + ("-sf" + hashlib.sha1("|".join(soundfonts).encode()).hexdigest()[:8] if soundfonts else "")
                    + (f"-perc{perc:g}" if perc else "") + (f"-cym{cymbals:g}" if cymbals else "")
                    + ("-mask" + hashlib.sha1(Path(drum_mask).read_bytes()).hexdigest()[:8] if drum_mask else "")
                    + (f"-songs{songs:g}" if songs else "") + ".npz")
    if part.is_file():  # a kit rendered by an earlier, interrupted run
        with np.load(part, allow_pickle=False) as z:
            return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    t = time.time()
    out = build_for_kit(spec, n_clips, seed, fp, op, lp, basis, band, pool, quiet, lead, tuple(band_db), bleed, amp,
                        soundfonts, perc, cymbals, drum_mask, songs)
    with atomic_output(part) as tmp, open(tmp, "wb") as f:  # an interrupted run leaves no half part to resume from
        np.savez(f, **out)
    log.warning("%s: %d clips, %.0f s audio, %d windows, %d/%d hits missed, %.0f s", spec, n_clips, out["seconds"],
                len(out["y"]), out["missed"], out["hits"], time.time() - t)
    return out


def build(kits, clips_per_kit: int, out_path: Path, *, seed: int = 0, workers: int = 2,
          fp: FeatureParams = FeatureParams(), op: OnsetParams = OnsetParams(), lp: LabelParams = LabelParams(),
          accompaniment_prob: float = 0.0, mix_kits: bool = False, quiet_metal_db: float = 0.0,
          lead_prob: float = 0.0, band_db: tuple = BAND_DB, bleed_prob: float = 0.0, amp_prob: float = 0.0,
          band_soundfonts: tuple = (), percussion_prob: float = 0.0, cymbal_play: float = 0.0, drum_mask: str = "",
          song_prob: float = 0.0):
    """Render clips_per_kit clips per kit in parallel and save one .npz of windows, labels and the recipe."""
    from concurrent.futures import ProcessPoolExecutor

    basis = mel_basis(fp)
    cache = out_path.parent / (out_path.stem + "_parts")
    cache.mkdir(parents=True, exist_ok=True)
    pool = tuple(kits) if mix_kits else ()
    jobs = [(spec, clips_per_kit, seed * 1000 + i, fp, op, lp, basis, cache, accompaniment_prob, pool, quiet_metal_db,
             lead_prob, tuple(band_db), bleed_prob, amp_prob, tuple(band_soundfonts), percussion_prob, cymbal_play,
             str(drum_mask), song_prob) for i, spec in enumerate(kits)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_job, jobs))
    kit_ids = np.concatenate([np.full(len(p["y"]), i, np.int16) for i, p in enumerate(parts)])
    target = out_path if str(out_path).endswith(".npz") else Path(f"{out_path}.npz")  # where np.savez puts it
    with atomic_output(target) as tmp, open(tmp, "wb") as f:  # the whole dataset, or the old file untouched
        _save_dataset(f, parts, kit_ids, fp, op, lp, drum_mask)
    return parts


def _save_dataset(f, parts, kit_ids, fp, op, lp, drum_mask) -> None:
    np.savez(
        f,
        x=np.concatenate([p["x"] for p in parts]),
        y=np.concatenate([p["y"] for p in parts]),
        v=np.concatenate([p["v"] for p in parts]),
        perc=np.concatenate([p["perc"] if "perc" in p else np.zeros(len(p["y"]), np.uint8) for p in parts]),
        kit=kit_ids,
        kits=np.array([str(p["kit"]) for p in parts]),
        delays=np.concatenate([p["delays"] for p in parts]),
        seconds=np.array([p["seconds"] for p in parts]),
        missed=np.array([p["missed"] for p in parts]),
        hits=np.array([p["hits"] for p in parts]),
        labels=np.array(DRUMS),
        store_before=STORE_BEFORE,
        store_after=STORE_AFTER,
        feature_params=json.dumps(fp.as_dict()),
        onset_params=json.dumps(op.as_dict()),
        label_params=json.dumps(asdict(lp)),
        drum_mask=str(drum_mask),
    )
