"""Scoring drum transcriptions against MDB Drums style annotations, per class and pooled.

An annotation file has one hit a line, `time<TAB>CLASS` (any whitespace works), CLASS one of KD SD HH TT CY OT.
A reference and an estimate are both `{class: sorted onset times in seconds}`. A hit counts as found when an
estimate of the same class lies within `window_s` of it, each matched at most once (mir_eval's bipartite
`match_events`, the matching of `mir_eval.onset.f_measure`).

Pooled scores ("F3" over KD/SD/HH, "F5" over all five) sum true positives, references and estimates over the
classes (and, with `pool`, over tracks) and compute precision, recall and F from the sums: a micro average, so a
track or class with many hits weighs more than one with few.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from drumscribe.realtime.drums import SCORE_CLASS

CLASSES = ("KD", "SD", "HH", "TT", "CY")
"""The classes that are scored, in table order."""

ANNOTATION_CLASSES = (*CLASSES, "OT")
"""Every class an MDB Drums class annotation may hold (OT: other, never scored)."""

POOLS = {"F3": ("KD", "SD", "HH"), "F5": CLASSES}
"""Pooled rows and the classes each pools."""

DEDUPE_S = 0.010
"""Same-class estimates closer than this are one hit (e.g. snare and side stick on one stroke)."""

WINDOW_S = 0.05


class AnnotationError(ValueError):
    """An annotation file that cannot be read; the message is one line for the user."""


def load_annotations(path: str | Path) -> dict:
    """Class -> sorted onset times (s) of an MDB Drums class annotation file. Every class in the file appears."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"annotation file '{path}' cannot be read ({exc.__class__.__name__}: {exc})") from None
    times = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2:
            raise AnnotationError(f"annotation file '{path}' line {number}: {line.strip()!r} is not 'time<TAB>CLASS'")
        try:
            t = float(fields[0])
        except ValueError:
            raise AnnotationError(f"annotation file '{path}' line {number}: time {fields[0]!r} is not a "
                                  f"number") from None
        label = fields[1].upper()
        if label not in ANNOTATION_CLASSES:
            raise AnnotationError(
                f"annotation file '{path}' line {number}: class {fields[1]!r} is not one of: "
                f"{', '.join(ANNOTATION_CLASSES)}"
            )
        times.setdefault(label, []).append(t)
    return {label: np.sort(np.asarray(ts, dtype=np.float64)) for label, ts in times.items()}


def played_to_classes(hits) -> dict:
    """The reference of a render: its labelled Hits (offline.render) -> class -> sorted times."""
    grouped = {}
    for hit in hits:
        if hit.labelled:
            grouped.setdefault(SCORE_CLASS[hit.drum], []).append(hit.time_s)
    return {label: np.sort(np.asarray(ts, dtype=np.float64)) for label, ts in grouped.items()}


def hits_to_classes(hits, *, dedupe_s: float = DEDUPE_S) -> dict:
    """DrumHit list -> class -> sorted onset times, same-class hits closer than `dedupe_s` kept once (the first)."""
    grouped = {}
    for hit in hits:
        grouped.setdefault(SCORE_CLASS[hit.drum], []).append(hit.onset_s)
    out = {}
    for label, ts in grouped.items():
        kept = []
        for t in sorted(ts):
            if not kept or t - kept[-1] >= dedupe_s:
                kept.append(t)
        out[label] = np.asarray(kept, dtype=np.float64)
    return out


def _counts_row(tp: int, n_ref: int, n_est: int) -> dict:
    """Precision, recall, F from counts. With nothing to find and nothing found, all three are 1 (madmom's rule)."""
    precision = tp / n_est if n_est else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if n_ref == 0 and n_est == 0:
        precision = recall = f = 1.0
    return {"precision": precision, "recall": recall, "f": f, "tp": int(tp), "n_ref": int(n_ref), "n_est": int(n_est)}


def match_count(reference: np.ndarray, estimate: np.ndarray, window_s: float = WINDOW_S) -> int:
    """How many reference onsets an estimate onset lies within `window_s` of, each used at most once."""
    import mir_eval

    reference = np.sort(np.asarray(reference, dtype=np.float64))
    estimate = np.sort(np.asarray(estimate, dtype=np.float64))
    if not len(reference) or not len(estimate):
        return 0
    return len(mir_eval.util.match_events(reference, estimate, window_s))


def score(reference: dict, estimate: dict, classes=CLASSES, window_s: float = WINDOW_S) -> dict:
    """Per-class rows and pooled "F3" / "F5" rows: {"KD": {"precision","recall","f","tp","n_ref","n_est"}, ...}.

    A pooled row only pools the classes asked for (F3 over KD/SD/HH among them, F5 over all of them).
    """
    empty = np.zeros(0)
    rows = {}
    for label in classes:
        ref = np.asarray(reference.get(label, empty), dtype=np.float64)
        est = np.asarray(estimate.get(label, empty), dtype=np.float64)
        rows[label] = _counts_row(match_count(ref, est, window_s), len(ref), len(est))
    pools = {"F3": [c for c in POOLS["F3"] if c in classes], "F5": list(classes)}
    for name, members in pools.items():
        rows[name] = _counts_row(*(sum(rows[c][k] for c in members) for k in ("tp", "n_ref", "n_est")))
    return rows


def pool(scores: list) -> dict:
    """Sum tp / n_ref / n_est of every row over tracks and recompute precision, recall and F from the sums."""
    totals = {}
    for track in scores:
        for name, row in track.items():
            acc = totals.setdefault(name, [0, 0, 0])
            acc[0] += row["tp"]
            acc[1] += row["n_ref"]
            acc[2] += row["n_est"]
    return {name: _counts_row(*acc) for name, acc in totals.items()}


def format_table(rows: dict, *, title: str = "", classes=CLASSES) -> str:
    """A fixed-width table of F (and P/R/n) per class and pooled, for the command line."""
    order = [c for c in (*classes, "F3", "F5") if c in rows]
    lines = [title] if title else []
    lines.append(f"{'class':<6}{'F':>7}{'P':>7}{'R':>7}{'tp':>7}{'ref':>7}{'est':>7}")
    for name in order:
        r = rows[name]
        lines.append(f"{name:<6}{r['f']:>7.3f}{r['precision']:>7.3f}{r['recall']:>7.3f}"
                     f"{r['tp']:>7d}{r['n_ref']:>7d}{r['n_est']:>7d}")
    return "\n".join(lines)


def find_tracks(audio_dir: str | Path, annotation_dir: str | Path,
                suffixes=(".wav", ".mp3", ".flac", ".ogg", ".aif", ".aiff")) -> list:
    """(audio path, annotation path) for every audio file in `audio_dir` with a `<stem>.txt` in `annotation_dir`.

    MDB Drums names its files `<track>_Drum.wav` / `<track>_MIX.wav` and `<track>_class.txt`; when no exact
    `<stem>.txt` exists, the annotation whose name is the stem's track name plus `_class.txt` is used.
    """
    audio_dir, annotation_dir = Path(audio_dir), Path(annotation_dir)
    pairs = []
    for audio in sorted(p for p in audio_dir.iterdir() if p.suffix.lower() in suffixes and p.is_file()):
        candidates = [annotation_dir / f"{audio.stem}.txt"]
        if "_" in audio.stem:
            candidates.append(annotation_dir / f"{audio.stem.rsplit('_', 1)[0]}_class.txt")
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            pairs.append((audio, found))
    return pairs


def transcribe_source(source, checkpoint, *, context: bool = True) -> list:
    """Every DrumHit of a source, through the same engine and stages as `drumscribe transcribe` (`context`:
    with its in-song context decoding, where the checkpoint has one; False as `--no-context`)."""
    from dataclasses import replace

    from drumscribe.realtime.engine import OFFLINE, Engine, build_stages
    from drumscribe.realtime.sinks import CollectSink

    hits = CollectSink()
    Engine(build_stages(checkpoint, replace(OFFLINE, context=context)), [hits],
           sample_rate_hz=source.sample_rate_hz).run(source)
    return list(hits)


def format_track_table(per_track: dict, classes=CLASSES) -> str:
    """One row per track: F of each class (or '-' where the track has no such hit and none was found), F3, F5."""
    names = [*classes, "F3", "F5"]
    width = max([len("track"), *(len(t) for t in per_track)])
    width = min(width, 40)
    lines = [f"{'track':<{width}}" + "".join(f"{n:>7}" for n in names)]
    for track, rows in per_track.items():
        cells = []
        for n in names:
            r = rows[n]
            cells.append(f"{'-':>7}" if r["n_ref"] == 0 and r["n_est"] == 0 else f"{r['f']:>7.3f}")
        lines.append(f"{track:<{width}.{width}}" + "".join(cells))
    return "\n".join(lines)
