"""offline.tuning_set's held-out figures (bench/tuning_set.py --leave-one-out): each song scored at thresholds tuned
without it."""
from __future__ import annotations

import numpy as np
import pytest

from drumscribe.offline import tune_thresholds as T
from drumscribe.offline import tuning_set
from drumscribe.realtime.decoder import ContextParams
from drumscribe.realtime.drums import DRUMS
from drumscribe.realtime.types import DrumHit

LABELS = list(DRUMS)


def _song(true_conf: float, false_conf: float | None, kicks: int = 20) -> tuple:
    """Candidates and reference of a song with `kicks` kicks the network gives `true_conf`, and (if given) as many
    onsets between them that it calls kicks at `false_conf`."""
    times = np.arange(kicks) * 0.5 + 0.25
    hits = [DrumHit(float(t), "kick", 90, true_conf) for t in times]
    if false_conf is not None:
        hits += [DrumHit(float(t) + 0.25, "kick", 90, false_conf) for t in times]
    return hits, {"KD": times}, 0.03


def _parts(songs: list) -> tuple:
    parts = {"stems": songs, "mixes": songs, "validation kit": []}
    names = {"stems": list(T.TRACKS), "mixes": list(T.TRACKS), "validation kit": []}
    return parts, names


def test_alike_songs_score_the_same_held_out_as_tuned():
    parts, names = _parts([_song(0.9, 0.45)] * 5)
    held = tuning_set.leave_one_out(parts, names, LABELS, tuning_set.PARTS)
    tuned = T.pooled(parts["stems"], LABELS, T.tune(parts["stems"] + parts["mixes"], LABELS))
    assert tuned["KD"]["f"] == 1.0
    assert held["stems"]["KD"]["f"] == held["mixes"]["KD"]["f"] == 1.0


def test_a_song_unlike_the_others_loses_what_its_own_tuning_gave_it():
    # four songs want the kick threshold above 0.45 (their false onsets sit there); the fifth, long, has 100 kicks
    # at 0.4. Tuned on all five the threshold goes low: the fifth's kicks bought with the four's false onsets.
    # Held out, the fifth is scored at the four's high threshold and finds nothing, and each of the four at a low one.
    parts, names = _parts([_song(0.9, 0.45)] * 4 + [_song(0.4, None, kicks=100)])
    tuned = T.pooled(parts["stems"], LABELS, T.tune(parts["stems"], LABELS))
    assert (tuned["KD"]["tp"], tuned["KD"]["n_est"]) == (180, 260)
    folds = []
    held = tuning_set.leave_one_out(parts, names, LABELS, ("stems",), folds)
    assert (held["stems"]["KD"]["tp"], held["stems"]["KD"]["n_est"]) == (80, 160)
    assert [song for song, _, _, _, _ in folds] == list(T.TRACKS)
    _, fifth_thresholds, fifth_rows, stem, _ = folds[-1]
    assert stem is None  # one set
    assert fifth_thresholds[LABELS.index("kick")] > 0.45  # tuned on the four alone
    assert (fifth_rows["KD"]["tp"], fifth_rows["KD"]["n_ref"]) == (0, 200)  # its stem and mix, nothing found
    assert held["stems"]["KD"]["f"] < tuned["KD"]["f"]
    assert held["stems and mixes"]["KD"]["n_ref"] == 360


def test_a_stem_set_serves_the_stems_and_leaves_the_mixes_alone():
    """Stems whose false onsets sit at 0.45 (gate 1: drums alone) and mixes whose kicks sit at 0.4 (gate 0): one
    set must trade them; with a stem set, tuned on the stems with the first set held, both are found whole, held
    out too, and the mixes score exactly as with one set."""
    def gated(song, gate):
        hits, ref, refractory = song
        return T.Candidates(hits, {h.onset_s: gate for h in hits}), ref, refractory

    stems = [gated(_song(0.9, 0.45), 1.0)] * 5
    mixes = [gated(_song(0.4, None), 0.0)] * 5
    parts = {"stems": stems, "mixes": mixes, "validation kit": []}
    names = {"stems": list(T.TRACKS), "mixes": list(T.TRACKS), "validation kit": []}
    one = tuning_set.leave_one_out(parts, names, LABELS, tuning_set.PARTS)
    assert one["stems"]["KD"]["f"] < 1.0 or one["mixes"]["KD"]["f"] < 1.0
    folds = []
    two = tuning_set.leave_one_out(parts, names, LABELS, tuning_set.PARTS, folds, stem_set=("stems",))
    assert two["stems"]["KD"]["f"] == 1.0
    assert two["mixes"]["KD"] == one["mixes"]["KD"]
    for _, thresholds, _, stem, _ in folds:
        assert stem[LABELS.index("kick")] > 0.45 >= thresholds[LABELS.index("kick")]


def test_floors_let_an_under_confident_song_keep_its_kicks_held_out():
    """Stems whose false onsets sit at 0.45 and mixes the network hears less surely as a whole (kicks at 0.4, other
    onsets at 0.1): one threshold must trade them, held out too. With song-level floors, each song's own split
    (Otsu's, from its candidates: T.song_splits_of) lowers the mixes' threshold and leaves the stems' where it is,
    so both are found whole, held out."""
    context = ContextParams()

    def with_splits(song):
        hits, ref, refractory = song
        return T.Candidates(hits, splits=T.song_splits_of(hits, LABELS, context, 200.0)), ref, refractory

    stems = [with_splits(_song(0.9, 0.45))] * 5
    mixes = [with_splits(_song(0.4, 0.1))] * 5
    parts = {"stems": stems, "mixes": mixes, "validation kit": []}
    names = {"stems": list(T.TRACKS), "mixes": list(T.TRACKS), "validation kit": []}
    one = tuning_set.leave_one_out(parts, names, LABELS, tuning_set.PARTS)
    assert one["stems"]["KD"]["f"] < 1.0 or one["mixes"]["KD"]["f"] < 1.0
    folds = []
    floored = tuning_set.leave_one_out(parts, names, LABELS, tuning_set.PARTS, folds, floors=True)
    assert floored["stems"]["KD"]["f"] == floored["mixes"]["KD"]["f"] == 1.0
    for _, thresholds, _, _, floors in folds:
        kick = LABELS.index("kick")
        assert floors[kick] < 0.4 < 0.45 < thresholds[kick]
    mean_logit = (np.log(0.4 / 0.6) + np.log(0.1 / 0.9)) / 2
    assert mixes[0][0].splits[(0.25, "KD")] == pytest.approx(1 / (1 + np.exp(-mean_logit)))
