"""Training windows: rendered clips run through the same spectrogram and onset detector as inference, each onset
labelled with the drums that truly start there.

The model thus learns on exactly the windows it will see: anchored where the detector fires, including its
false alarms (labelled with no drum) and its early or late triggers.
"""
from __future__ import annotations

import argparse
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
    return np.stack([padded[k : k + before + 1 + after] for k in onsets]) if onsets else np.zeros((0, before + 1 + after, mel.shape[1]))


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
                  cymbal_play: float = 0.0, drum_mask: str = "") -> dict:
    """n_clips clips on kit `spec`; with a `pool` of kit specs, each clip borrows some drums from them, is
    retuned per drum and half the clips are mixed on channel buses; a share `bleed_prob` of the clips is heard
    as a miked kit (overheads, snare wires); a share `amp_prob` of the power chords goes through a guitar amp;
    with `band_soundfonts`, each band plays from one of those soundfonts; a share `percussion_prob` of the clips has
    an unlabelled tambourine, shaker or the like (render.PERCUSSION_KITS) playing along; a share `cymbal_play` of
    the crashes is choked and of the strong ride strokes played on the bell (render.render_hits). With a
    `drum_mask` (models.unmix checkpoint), the windows are cut from the masked spectrogram the classifier reads
    behind realtime.unmix.DrumMaskStage; the onsets are still found on the clip as it is."""
    from .render import render_performance

    rng = np.random.default_rng(seed)
    kit = _kit(spec)
    others = [_kit(s) for s in pool if s != spec]
    percussion = _percussion() if percussion_prob else ()
    xs, ys, vs, delays = [], [], [], []
    missed = total = seconds = 0
    for _ in range(n_clips):
        audio, hits = render_performance(kit, rng, accompaniment_prob=accompaniment_prob, other_kits=others,
                                         tune_semitones=1.5 if others else 0.0, bus_mix_prob=0.5 if others else 0.0,
                                         quiet_metal_db=quiet_metal_db, lead_prob=lead_prob, band_db=band_db,
                                         bleed_prob=bleed_prob, amp_prob=amp_prob, band_soundfonts=band_soundfonts,
                                         percussion_prob=percussion_prob, percussion=percussion,
                                         cymbal_play=cymbal_play)
        mel, onsets = detect(audio, fp, op, basis)
        if drum_mask:
            mel = masked(mel, _drum_mask(drum_mask))
        y, v, d, m = label_onsets(onsets, hits, fp, lp)
        xs.append(windows(mel, onsets).astype(np.float16))
        ys.append(y)
        vs.append(v)
        delays.append(d)
        missed += m
        total += len(hits)
        seconds += len(audio) / fp.sample_rate_hz
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "v": np.concatenate(vs), "delays": np.concatenate(delays),
            "missed": missed, "hits": total, "seconds": seconds, "kit": spec}


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
     cymbals, drum_mask) = args
    recipe = "" if (fp, op, lp) == (FeatureParams(), OnsetParams(), LabelParams()) else (
        "-" + hashlib.sha1(json.dumps([fp.as_dict(), op.as_dict(), asdict(lp)], sort_keys=True).encode()).hexdigest()[:8])
    part = cache / (re.sub(r"[^A-Za-z0-9]+", "_", spec) + f"-{n_clips}-{seed}-{band}-{len(pool)}{recipe}"
                    + (f"-q{quiet:g}" if quiet else "") + (f"-lead{lead:g}" if lead else "")
                    + ("" if tuple(band_db) == BAND_DB else f"-band{band_db[0]:g}_{band_db[1]:g}")
                    + (f"-bleed{bleed:g}" if bleed else "") + (f"-amp{amp:g}" if amp else "")
                    + ("-sf" + hashlib.sha1("|".join(soundfonts).encode()).hexdigest()[:8] if soundfonts else "")
                    + (f"-perc{perc:g}" if perc else "") + (f"-cym{cymbals:g}" if cymbals else "")
                    + ("-mask" + hashlib.sha1(Path(drum_mask).read_bytes()).hexdigest()[:8] if drum_mask else "")
                    + ".npz")
    if part.is_file():  # a kit rendered by an earlier, interrupted run
        with np.load(part, allow_pickle=False) as z:
            return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    t = time.time()
    out = build_for_kit(spec, n_clips, seed, fp, op, lp, basis, band, pool, quiet, lead, tuple(band_db), bleed, amp,
                        soundfonts, perc, cymbals, drum_mask)
    with atomic_output(part) as tmp, open(tmp, "wb") as f:  # an interrupted run leaves no half part to resume from
        np.savez(f, **out)
    log.warning("%s: %d clips, %.0f s audio, %d windows, %d/%d hits missed, %.0f s", spec, n_clips, out["seconds"],
                len(out["y"]), out["missed"], out["hits"], time.time() - t)
    return out


def build(kits, clips_per_kit: int, out_path: Path, *, seed: int = 0, workers: int = 2,
          fp: FeatureParams = FeatureParams(), op: OnsetParams = OnsetParams(), lp: LabelParams = LabelParams(),
          accompaniment_prob: float = 0.0, mix_kits: bool = False, quiet_metal_db: float = 0.0,
          lead_prob: float = 0.0, band_db: tuple = BAND_DB, bleed_prob: float = 0.0, amp_prob: float = 0.0,
          band_soundfonts: tuple = (), percussion_prob: float = 0.0, cymbal_play: float = 0.0, drum_mask: str = ""):
    """Render clips_per_kit clips per kit in parallel and save one .npz of windows, labels and the recipe."""
    from concurrent.futures import ProcessPoolExecutor

    basis = mel_basis(fp)
    cache = out_path.parent / (out_path.stem + "_parts")
    cache.mkdir(parents=True, exist_ok=True)
    pool = tuple(kits) if mix_kits else ()
    jobs = [(spec, clips_per_kit, seed * 1000 + i, fp, op, lp, basis, cache, accompaniment_prob, pool, quiet_metal_db,
             lead_prob, tuple(band_db), bleed_prob, amp_prob, tuple(band_soundfonts), percussion_prob, cymbal_play,
             str(drum_mask)) for i, spec in enumerate(kits)]
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


def main(argv=None):
    from .render import HELD_OUT_KITS, TRAIN_KITS, available

    parser = argparse.ArgumentParser(description="Render a labelled window dataset from drum sample kits.")
    parser.add_argument("--out", type=Path, default=Path("data/train.npz"))
    parser.add_argument("--clips-per-kit", type=int, default=40)
    parser.add_argument("--held-out", action="store_true", help="render the held-out validation kits instead")
    parser.add_argument("--kit", action="append", default=[], metavar="SPEC",
                        help="render only this kit (repeatable; 'hydrogen:<name>' or 'sf2:<path>:<bank>:<preset>'); "
                             "never a held-out kit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accompaniment", type=float, default=0.0, metavar="P",
                        help="share of clips with a band (bass, chords) playing along (default 0)")
    parser.add_argument("--lead", type=float, default=0.0, metavar="P",
                        help="share of the band clips that add a melody and sometimes distorted power chords (default 0)")
    parser.add_argument("--band-db", type=float, nargs=2, default=BAND_DB, metavar=("LO", "HI"),
                        help="the band's level around the drums' (default %(default)s)")
    parser.add_argument("--mix-kits", action="store_true",
                        help="clips borrow drums from the other kits of the set, retuned, half mixed on buses")
    parser.add_argument("--quiet-metal", type=float, default=0.0, metavar="DB",
                        help="half the clips pull hi-hat and cymbals down by up to DB decibels (default 0)")
    parser.add_argument("--bleed", type=float, default=0.0, metavar="P",
                        help="share of clips heard as a miked kit: overheads and snare-wire rattle (default 0)")
    parser.add_argument("--amp", type=float, default=0.0, metavar="P",
                        help="share of the power-chord clips whose guitar goes through an amp (default 0)")
    parser.add_argument("--band-soundfont", action="append", default=[], metavar="SF2",
                        help="the bands play from this General MIDI soundfont, one drawn per clip (repeatable; "
                             "default: FluidR3_GM); never a held-out kit's soundfont")
    parser.add_argument("--percussion", type=float, default=0.0, metavar="P",
                        help="share of clips with a tambourine, shaker, cowbell or the like playing along, unlabelled: "
                             "not a drum to transcribe (default 0)")
    parser.add_argument("--cymbal-play", type=float, default=0.0, metavar="P",
                        help="share of the crashes choked by hand, and of the strong ride strokes played on the bell "
                             "where the kit has one (default 0: crashes ring out, the ride as the kit gives it)")
    parser.add_argument("--drum-mask", type=Path, metavar="PT",
                        help="cut the windows from the spectrogram behind this drum mask "
                             "(python -m drumscribe.offline.unmix)")
    live = parser.add_argument_group("analysis (defaults: the offline model's; a live model takes shorter ones)")
    live.add_argument("--n-fft", type=int, default=FeatureParams.n_fft, help="window samples (default %(default)s)")
    live.add_argument("--hop", type=int, default=FeatureParams.hop_samples, help="hop samples (default %(default)s)")
    live.add_argument("--n-mels", type=int, default=FeatureParams.n_mels, help="mel bands (default %(default)s)")
    live.add_argument("--onset-threshold", type=float, default=OnsetParams.threshold, help="(default %(default)s)")
    live.add_argument("--onset-relative", type=float, default=OnsetParams.relative_threshold,
                      help="... and this multiple of the recent mean flux (default %(default)s)")
    live.add_argument("--onset-lag", type=int, default=OnsetParams.lag_frames, help="(default %(default)s)")
    live.add_argument("--onset-gap", type=int, default=OnsetParams.min_gap_frames, help="(default %(default)s)")
    live.add_argument("--onset-average", type=int, default=OnsetParams.average_frames, help="(default %(default)s)")
    live.add_argument("--rising", action="store_true", help="rising-edge onsets (decided without waiting for the peak)")
    live.add_argument("--onset-band", type=float, nargs=2, metavar=("FROM_MEL", "THRESHOLD"),
                      help="a second flux over the mel bands from FROM_MEL up, peaks above THRESHOLD are onsets too")
    live.add_argument("--label-window-ms", type=float, nargs=2, default=(1e3 * LabelParams.min_delay_s,
                      1e3 * LabelParams.max_delay_s), metavar=("MIN", "MAX"),
                      help="an onset owns the hits that began this long before its frame's end (default %(default)s)")
    live.add_argument("--label-target-ms", type=float, help="... and of several onsets, the one nearest this delay")
    args = parser.parse_args(argv)
    for name in ("accompaniment", "lead", "bleed", "amp", "percussion", "cymbal_play"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            what = "a share of the crashes and strong ride strokes" if name == "cymbal_play" else "a share of the clips"
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name):g}: {what}, from 0 to 1")
    held_sf2 = {Path(k.split(":")[1]).resolve() for k in HELD_OUT_KITS if k.startswith("sf2:")}
    for soundfont in args.band_soundfont:
        if not Path(soundfont).is_file():
            parser.error(f"--band-soundfont '{soundfont}': no such file (an .sf2 General MIDI soundfont)")
        if Path(soundfont).resolve() in held_sf2:
            parser.error(f"--band-soundfont '{soundfont}': the soundfont of a held-out kit, never rendered for training")
    fp = FeatureParams(n_fft=args.n_fft, hop_samples=args.hop, n_mels=args.n_mels)
    band_from, band_threshold = args.onset_band or (0, OnsetParams.band_threshold)
    if args.onset_band and (band_from != int(band_from) or not 0 < band_from < args.n_mels):
        parser.error(f"--onset-band {band_from:g}: FROM_MEL must be a whole mel band between 1 and {args.n_mels - 1}")
    op = OnsetParams(lag_frames=args.onset_lag, threshold=args.onset_threshold, relative_threshold=args.onset_relative,
                     min_gap_frames=args.onset_gap, average_frames=args.onset_average, rising=args.rising,
                     band_from_mel=int(band_from), band_threshold=band_threshold)
    lp = LabelParams(args.label_window_ms[0] / 1e3, args.label_window_ms[1] / 1e3,
                     None if args.label_target_ms is None else args.label_target_ms / 1e3)
    if args.kit:
        held = sorted(set(args.kit) & set(HELD_OUT_KITS))
        if held or args.held_out:
            parser.error(f"kit '{held[0] if held else args.kit[0]}': --kit renders training data, never a held-out kit")
        missing = [k for k in args.kit if not available(k)]
        if missing:
            parser.error(f"kit '{missing[0]}' is not installed")
        kits = list(args.kit)
    else:
        kits = [k for k in (HELD_OUT_KITS if args.held_out else TRAIN_KITS) if available(k)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t = time.time()
    parts = build(kits, args.clips_per_kit, args.out, seed=args.seed, workers=args.workers,
                  accompaniment_prob=args.accompaniment, mix_kits=args.mix_kits, quiet_metal_db=args.quiet_metal,
                  lead_prob=args.lead, band_db=tuple(args.band_db), bleed_prob=args.bleed, amp_prob=args.amp,
                  band_soundfonts=tuple(args.band_soundfont), percussion_prob=args.percussion,
                  cymbal_play=args.cymbal_play, drum_mask=args.drum_mask or "", fp=fp, op=op, lp=lp)
    n = sum(len(p["y"]) for p in parts)
    hours = sum(p["seconds"] for p in parts) / 3600
    missed, hits = sum(int(p["missed"]) for p in parts), sum(int(p["hits"]) for p in parts)
    print(f"wrote {args.out}: {n} windows from {hours:.2f} h of audio, {len(kits)} kits, {missed}/{hits} hits without "
          f"an onset ({missed / max(hits, 1):.1%}), {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
