"""The measurements of `bench/accuracy.py`: a model scored on the MDB Drums dev tracks and on the held-out kits.

On the MDB dev recordings (drum stems and mixes; only ever scored, never trained on): per-class figures against the
corrected MDB Drums++ annotations (class_pp/), per-drum figures and a confusion matrix against the MDB Drums++ MIDI
(midi_pp/), and how many annotated strokes get an onset from the model's detector (score_kind); the band without its
drums (band_alone); a kind's recordings as one file (back_to_back); each as a constant-bitrate mp3 (as_mp3). On
grooves rendered from the held-out kits, alone or with a band playing along: per-class and per-drum figures and how
well the velocity follows the played one (held_out_kits).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
from scipy.stats import spearmanr

from drumscribe.offline.accompaniment import render_accompaniment
from drumscribe.offline.evaluate import hits_to_classes, load_annotations, match_count, played_to_classes, pool, score
from drumscribe.offline.render import (
    HELD_OUT_KITS,
    _accompaniment_synth,
    _add_at_level,
    available,
    generate_pattern,
    load_kit,
    render_hits,
)
from drumscribe.realtime.drums import DRUMS
from drumscribe.realtime.engine import transcribe_array
from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram
from drumscribe.realtime.kits import GM_NOTE_DRUM
from drumscribe.realtime.onsets import OnsetDetector, OnsetParams
from drumscribe.realtime.sources import decode_audio
from drumscribe.realtime.types import FrameBlock

TRACKS = ("Beatles", "Country1", "Punk", "Rock", "Shadows")


def midi_reference(path: Path) -> dict:
    """drum -> onset times from an MDB Drums++ MIDI file (GM notes)."""
    ref = {}
    t = 0.0
    for msg in mido.MidiFile(str(path)):
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            drum = GM_NOTE_DRUM.get(msg.note)
            if drum:
                ref.setdefault(drum, []).append(t)
    return {k: np.array(sorted(v)) for k, v in ref.items()}


def onset_coverage(audio: np.ndarray, strokes: np.ndarray, checkpoint, **changes) -> tuple[int, int]:
    """(annotated strokes with an onset of the checkpoint's detector within -10/+35 ms, onsets), the detector's
    settings changed by `changes`."""
    fp = FeatureParams(**checkpoint.feature_params)
    mel = LogMelSpectrogram(fp, checkpoint.mel_basis).process(audio).mel
    detector = OnsetDetector(OnsetParams(**{**checkpoint.onset_params, **changes}), n_mels=fp.n_mels)
    onsets = np.array(detector.process(FrameBlock(0, mel)).onsets)
    times = (onsets + 1 - checkpoint.onset_offset_frames) * fp.hop_samples / fp.sample_rate_hz
    found = sum(bool(len(times)) and bool(((times >= t - 0.010) & (times <= t + 0.035)).any()) for t in strokes)
    return found, len(onsets)


def strokes(annotations: dict) -> np.ndarray:
    """Every annotated onset time, those of one stroke (within 10 ms) once."""
    times = np.sort(np.concatenate(list(annotations.values())))
    return times[np.r_[True, np.diff(times) > 0.010]] if len(times) else times


def per_drum(ref: dict, hits: list, window_s: float = 0.05) -> dict:
    est = {}
    for h in hits:
        est.setdefault(h.drum, []).append(h.onset_s)
    rows = {}
    for d in DRUMS:
        r, e = ref.get(d, np.zeros(0)), np.array(sorted(est.get(d, [])))
        tp = match_count(r, e, window_s) if len(r) and len(e) else 0
        rows[d] = {"tp": tp, "n_ref": len(r), "n_est": len(e)}
    return rows


def finish(rows: dict) -> dict:
    for r in rows.values():
        p = r["tp"] / r["n_est"] if r["n_est"] else 0.0
        rc = r["tp"] / r["n_ref"] if r["n_ref"] else 0.0
        r.update(precision=p, recall=rc, f=2 * p * rc / (p + rc) if p + rc else 0.0)
    return rows


def pool_drums(tables: list) -> dict:
    """Per-drum rows (per_drum's) of several recordings summed, with precision, recall and F."""
    return finish({d: {k: sum(r[d][k] for r in tables) for k in ("tp", "n_ref", "n_est")} for d in DRUMS})


def confusion(ref: dict, hits: list, cm: np.ndarray, window_s: float = 0.05) -> None:
    """Row: reference drum; column: each transcribed drum within the window of it (last column: none)."""
    index = {d: i for i, d in enumerate(DRUMS)}
    times = np.array([h.onset_s for h in hits])
    for drum, ts in ref.items():
        for t in ts:
            near = [hits[j].drum for j in np.flatnonzero(np.abs(times - t) <= window_s)] if len(times) else []
            if not near:
                cm[index[drum], -1] += 1
            for d in set(near):
                cm[index[drum], index[d]] += 1


def plot_confusion(cm: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(DRUMS) + 1), [*DRUMS, "(none)"], rotation=60, ha="right")
    ax.set_yticks(range(len(DRUMS)), DRUMS)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("transcribed within 50 ms")
    ax.set_ylabel("annotated")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


BAND_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")  # its instruments never played a training band


def held_out_kits(checkpoint, seed: int = 11, clips: int = 6, band_db: float | None = None) -> tuple[dict, dict]:
    """Grooves rendered on the held-out kits, scored; with `band_db`, each with a band playing along (bass, chords
    and half the time a melody and distorted power chords, on BAND_SOUNDFONT's instruments) at that RMS level
    around the drums."""
    class_rows, drum_rows, velocity = {}, {}, {}
    rng = np.random.default_rng(seed)
    for spec in HELD_OUT_KITS:
        if not available(spec):
            continue
        kit = load_kit(spec)
        scores, drums, pairs = [], [], []
        for _ in range(clips):
            tempo = float(rng.uniform(80, 180)) if band_db is not None else None
            hits, duration = generate_pattern(rng, bars=8, style="groove", tempo_bpm=tempo, drums_available=kit.drums)
            audio = render_hits(hits, kit, duration_s=duration, rng=rng)
            if band_db is not None:
                music = render_accompaniment(rng, tempo_bpm=tempo, bars=8, lead=bool(rng.random() < 0.5),
                                             synth=_accompaniment_synth(48000, BAND_SOUNDFONT))
                _add_at_level(audio, music, band_db)
            audio = 0.5 * audio / (np.abs(audio).max() + 1e-9)
            found = transcribe_array(audio.astype(np.float64), checkpoint)
            for f in found:  # velocity played vs transcribed, for hits found as the drum that was played
                near = [h for h in hits if h.drum == f.drum and abs(h.time_s - f.onset_s) < 0.03]
                if near:
                    pairs.append((near[0].velocity, f.velocity))
            ref_drum = {}
            for h in hits:
                if h.labelled:
                    ref_drum.setdefault(h.drum, []).append(h.time_s)
            scores.append(score(played_to_classes(hits), hits_to_classes(found)))
            drums.append(per_drum({k: np.array(sorted(v)) for k, v in ref_drum.items()}, found))
        class_rows[spec] = pool(scores)
        drum_rows[spec] = pool_drums(drums)
        if len(pairs) > 3:
            velocity[spec] = {"spearman": float(spearmanr(*np.array(pairs).T)[0]), "hits": len(pairs)}
    return class_rows, drum_rows, velocity


def drum_table(rows: dict, title: str) -> str:
    lines = [title, f"{'drum':<11}{'P':>7}{'R':>7}{'F':>7}{'refs':>6}{'found':>6}"]
    for d, r in rows.items():
        if r["n_ref"] or r["n_est"]:
            lines.append(f"{d:<11}{r['precision']:>7.3f}{r['recall']:>7.3f}{r['f']:>7.3f}{r['n_ref']:>6}{r['n_est']:>6}")
    return "\n".join(lines)


def as_mp3(path: Path, kbps: int, folder: Path, gain: float = 1.0) -> Path:
    """A constant-bitrate mp3 of the recording at `path` (its own sample rate, scaled by `gain`), in `folder`.
    libsndfile's compression level runs from 320 kbps (0) to 32 kbps (1)."""
    folder.mkdir(parents=True, exist_ok=True)
    audio, rate = sf.read(str(path), dtype="float32")
    out = folder / f"{path.parent.name}_{path.stem}.mp3"
    sf.write(str(out), audio * np.float32(gain), rate, format="MP3", bitrate_mode="CONSTANT",
             compression_level=float(np.clip((320 - kbps) / 288, 0.0, 1.0)))
    return out


# the mixes summed from the stems at unit gain (mdb-dev's README); Rock's is the released master
SUMMED_MIXES = ("Beatles", "Country1", "Punk", "Shadows")


def band_alone(data: Path, checkpoint, gain: float = 1.0, say: Callable[[str], None] = print) -> dict:
    """Hits per drum on each summed mix less its drum stem: the band alone, where every hit is a false one; then the
    band twice followed by the whole mix (a song with a drumless intro). Each track's figures go to `say`."""
    out = {}
    for track in SUMMED_MIXES:
        mix, drums = data / "mix" / f"{track}.flac", data / "drum_only" / f"{track}.flac"
        if not (mix.is_file() and drums.is_file()):
            continue
        mix, drums = decode_audio(mix), decode_audio(drums)
        n = min(len(mix), len(drums))
        band = (mix[:n].astype(np.float64) - drums[:n]) * gain
        out[track] = dict(sorted(Counter(h.drum for h in transcribe_array(band, checkpoint)).items()))
        say(f"band alone, {track} (mix minus drum stem, {n / 48000:.0f} s): {sum(out[track].values())} hits"
              + "".join(f", {d} {k}" for d, k in out[track].items()))
        # a song that opens without drums: the band twice, then the whole mix
        intro_s = 2 * n / 48000
        hits = transcribe_array(np.concatenate((band, band, mix[:n].astype(np.float64) * gain)), checkpoint)
        early = Counter(h.drum for h in hits if h.onset_s < intro_s - 0.05)
        ref = {c: np.asarray(t) + intro_s for c, t in load_annotations(data / "class_pp" / f"{track}.txt").items()}
        rows = score(ref, hits_to_classes([h for h in hits if h.onset_s >= intro_s - 0.05]))
        out[f"{track} after a drumless intro"] = {"intro_hits": dict(sorted(early.items())), "F3": rows["F3"]["f"]}
        say(f"  the band twice ({intro_s:.0f} s), then the mix: {sum(early.values())} hits in the intro, "
              f"{early['kick'] + early['snare'] + early['side_stick']} of them kick or snare; the mix after it F3 "
              f"{rows['F3']['f']:.3f}")
    return out


def back_to_back(data: Path, checkpoint, kind: str, gain: float = 1.0, say: Callable[[str], None] = print) -> dict:
    """The five recordings of one kind as one file, 1 s of silence between them, in the given order and reversed:
    each song's F3 and F5 where it sits in that file, and pooled. A file of several songs (an album side, a medley,
    a set) is what the song-level thresholds and the context blend, whose windows reach 60 s back, do not expect.
    Each order's figures go to `say`."""
    tracks = [t for t in TRACKS if (data / kind / f"{t}.flac").is_file()]
    out = {}
    for order in (tracks, tracks[::-1]):
        pieces, spans, t0 = [], [], 0.0
        for track in order:
            audio = decode_audio(data / kind / f"{track}.flac").astype(np.float64) * gain
            pieces += [audio, np.zeros(48000)]
            spans.append((track, t0, t0 + len(audio) / 48000))
            t0 += (len(audio) + 48000) / 48000
        hits = transcribe_array(np.concatenate(pieces), checkpoint)
        rows = {}
        for track, start, end in spans:
            ref = {c: np.asarray(t) + start for c, t in load_annotations(data / "class_pp" / f"{track}.txt").items()}
            rows[track] = score(ref, hits_to_classes([h for h in hits if start - 0.05 <= h.onset_s < end + 0.05]))
        pooled = pool(list(rows.values()))
        name = " > ".join(order)
        out[name] = {"tracks": {t: {"F3": r["F3"]["f"], "F5": r["F5"]["f"]} for t, r in rows.items()},
                     "F3": pooled["F3"]["f"], "F5": pooled["F5"]["f"]}
        say(f"{kind}, back to back ({name}, {t0:.0f} s): F3 {pooled['F3']['f']:.3f} / F5 {pooled['F5']['f']:.3f}; "
              + ", ".join(f"{t} {r['F3']['f']:.3f}/{r['F5']['f']:.3f}" for t, r in rows.items()))
    return out


def score_kind(data: Path, checkpoint, kind: str, *, gain_db: float = 0.0, mp3_kbps: int | None = None,
               mp3_folder: Path | None = None) -> dict | None:
    """The MDB dev recordings of one kind (`data/kind/TRACK.flac`: drum_only or mix), each scaled by `gain_db` (and
    with `mp3_kbps`, written as an mp3 of that bitrate into `mp3_folder` and read back), transcribed and scored; None
    where none is there. Keys: scores (each track's class rows), pooled, tracks (each track's F3 and F5),
    onset_coverage (per detector: annotated strokes with an onset, onsets, strokes), and where the MIDI annotations
    are there, per_drum (pooled rows) and confusion (counts: annotated drum by transcribed drum, last column none)."""
    gain = 10 ** (gain_db / 20)
    scores, drums = [], []
    cm = np.zeros((len(DRUMS), len(DRUMS) + 1), int)
    per_track = {}
    detectors = {"the model's onset detector": {}}
    if checkpoint.onset_params.get("band_from_mel"):
        detectors["the broadband flux alone"] = {"band_from_mel": 0}
    coverage = {name: [0, 0, 0] for name in detectors}  # strokes found, onsets, strokes
    for track in TRACKS:
        audio = data / kind / f"{track}.flac"
        if not audio.is_file():
            continue
        if mp3_kbps:
            samples = decode_audio(as_mp3(audio, mp3_kbps, mp3_folder, gain))
        else:
            samples = decode_audio(audio) * gain
        hits = transcribe_array(samples, checkpoint)
        annotations = load_annotations(data / "class_pp" / f"{track}.txt")
        track_strokes = strokes(annotations)
        for name, changes in detectors.items():
            found, n_onsets = onset_coverage(samples, track_strokes, checkpoint, **changes)
            coverage[name] = [a + b for a, b in zip(coverage[name], (found, n_onsets, len(track_strokes)))]
        s = score(annotations, hits_to_classes(hits))
        scores.append(s)
        per_track[track] = {"F3": s["F3"]["f"], "F5": s["F5"]["f"]}
        midi = data / "midi_pp" / f"{track}.mid"
        if midi.is_file():
            ref = midi_reference(midi)
            drums.append(per_drum(ref, hits))
            confusion(ref, hits, cm)
    if not scores:
        return None
    out = {"scores": scores, "pooled": pool(scores), "tracks": per_track, "onset_coverage": coverage}
    if drums:
        out.update(per_drum=pool_drums(drums), confusion=cm)
    return out
