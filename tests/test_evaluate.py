"""offline/evaluate.py: annotations, hits to classes, per-class and pooled scores."""
from __future__ import annotations

import numpy as np
import pytest

from drumscribe.offline.evaluate import (
    AnnotationError,
    find_tracks,
    format_table,
    hits_to_classes,
    load_annotations,
    pool,
    score,
)
from drumscribe.realtime.types import DrumHit


def test_load_annotations(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("0.50\tSD\n0.10\tKD\n\n0.10 HH\n1.00\tOT\n0.3\tkd\n")
    ref = load_annotations(path)
    assert set(ref) == {"KD", "SD", "HH", "OT"}
    assert ref["KD"].tolist() == [0.1, 0.3]  # sorted; class names in any case
    path.write_text("0.1\tXX\n")
    with pytest.raises(AnnotationError, match="XX"):
        load_annotations(path)
    path.write_text("soon\tKD\n")
    with pytest.raises(AnnotationError, match="soon"):
        load_annotations(path)


def test_hits_to_classes_dedupes_within_10_ms():
    hits = [DrumHit(0.500, "snare", 90, 0.9), DrumHit(0.505, "side_stick", 90, 0.9), DrumHit(0.520, "snare", 90, 0.9),
            DrumHit(1.0, "hh_closed", 50, 0.9), DrumHit(1.0, "hh_open", 50, 0.9), DrumHit(2.0, "tom_low", 50, 0.9)]
    classes = hits_to_classes(hits)
    assert classes["SD"].tolist() == [0.5, 0.52]
    assert classes["HH"].tolist() == [1.0]
    assert classes["TT"].tolist() == [2.0]
    assert "KD" not in classes


def test_score_per_class_and_pooled():
    ref = {"KD": np.array([0.1, 1.1, 2.1]), "SD": np.array([0.6]), "HH": np.array([0.1, 0.35, 0.6]),
           "OT": np.array([3.0])}
    est = {"KD": np.array([0.12, 1.2, 2.09]), "SD": np.array([0.6, 0.9]), "CY": np.array([0.1])}
    s = score(ref, est)
    assert s["KD"]["tp"] == 2 and s["KD"]["n_ref"] == 3 and s["KD"]["n_est"] == 3  # 1.2 is 100 ms late
    assert s["KD"]["f"] == pytest.approx(2 / 3)
    assert s["SD"]["precision"] == 0.5 and s["SD"]["recall"] == 1.0
    assert s["HH"]["recall"] == 0.0 and s["HH"]["f"] == 0.0
    assert s["TT"]["f"] == 1.0 and s["TT"]["n_ref"] == 0  # nothing to find, nothing found
    assert s["CY"]["precision"] == 0.0 and s["CY"]["f"] == 0.0
    assert (s["F3"]["tp"], s["F3"]["n_ref"], s["F3"]["n_est"]) == (3, 7, 5)
    assert s["F3"]["f"] == pytest.approx(2 * 3 / (7 + 5))
    assert (s["F5"]["tp"], s["F5"]["n_ref"], s["F5"]["n_est"]) == (3, 7, 6)
    assert "F5" in format_table(s)


def test_each_reference_matches_once():
    s = score({"KD": np.array([1.0])}, {"KD": np.array([0.99, 1.0, 1.01])})
    assert s["KD"]["tp"] == 1 and s["KD"]["precision"] == pytest.approx(1 / 3)


def test_window():
    ref, est = {"SD": np.array([1.0])}, {"SD": np.array([1.03])}
    assert score(ref, est)["SD"]["tp"] == 1
    assert score(ref, est, window_s=0.02)["SD"]["tp"] == 0


def test_pool_sums_counts_over_tracks():
    a = score({"KD": np.array([1.0, 2.0])}, {"KD": np.array([1.0])})
    b = score({"KD": np.array([1.0]), "SD": np.array([1.0])}, {"KD": np.array([1.0, 3.0]), "SD": np.array([1.0])})
    p = pool([a, b])
    assert (p["KD"]["tp"], p["KD"]["n_ref"], p["KD"]["n_est"]) == (2, 3, 3)
    assert (p["F5"]["tp"], p["F5"]["n_ref"], p["F5"]["n_est"]) == (3, 4, 4)
    assert p["F5"]["f"] == pytest.approx(0.75)


def test_find_tracks(tmp_path):
    for name in ("a.wav", "b.mp3", "c.flac", "MusicDelta_Rock_Drum.wav", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    ann = tmp_path / "ann"
    ann.mkdir()
    for name in ("a.txt", "c.txt", "MusicDelta_Rock_class.txt"):
        (ann / name).write_text("")
    pairs = find_tracks(tmp_path, ann)
    assert [(a.name, b.name) for a, b in pairs] == [
        ("MusicDelta_Rock_Drum.wav", "MusicDelta_Rock_class.txt"), ("a.wav", "a.txt"), ("c.flac", "c.txt")]
