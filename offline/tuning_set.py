"""The tuning set, and the ways of scoring a candidate model on it that `bench/tuning_set.py` offers.

The tuning set is what every model decision in docs/accuracy.md is judged on: the five MDB dev tracks, drum stems and
mixes, plus 6 grooves on the validation kit TimGM6mb, with per-class thresholds tuned by `offline.tune_thresholds`
(the same functions, the same onset settings as the shipped model). Never the test kit.

Here: collecting its parts, combining candidate networks (weights averaged, probabilities averaged), combining
candidates in time (noisy-OR), tuning the threshold sets on chosen parts, and the held-out figures (each song scored
at thresholds tuned without it).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from drumscribe.models.cnn import HitEnsemble
from drumscribe.offline import tune_thresholds as T
from drumscribe.offline.evaluate import pool

VALIDATION_KIT = "sf2:/usr/share/sounds/sf2/TimGM6mb.sf2:128:0"
PARTS = ("stems", "mixes", "validation kit")
STEM_PARTS = ("stems", "validation kit")  # drums alone: what a stem set may be tuned on
SHIPPED_ONSETS = {"band_from_mel": 36, "band_threshold": 0.03}  # what tune_thresholds set for the shipped model
VALIDATION_GROOVES = 6


def soup(checkpoints):
    """The first checkpoint with every floating-point tensor replaced by the mean over all of them."""
    states = [c.model.state_dict() for c in checkpoints]
    mean = {k: (sum(s[k] for s in states) / len(states) if v.is_floating_point() else v) for k, v in states[0].items()}
    checkpoints[0].model.load_state_dict(mean)
    return checkpoints[0]


def probability_average(checkpoints):
    """The first checkpoint whose network is models.cnn.HitEnsemble of every checkpoint's network: the mean of
    their probabilities, their embeddings side by side (as `drumscribe train ensemble` builds and the engine
    runs)."""
    model = HitEnsemble([c.model.config for c in checkpoints])
    for net, c in zip(model.members, checkpoints):
        net.load_state_dict(c.model.state_dict())
    checkpoints[0].model = model.eval()
    return checkpoints[0]


def noisy_or(hits, window_s: float, group_of: dict):
    """Each candidate's confidence combined with those of its class group's candidates less than window_s earlier."""
    hits = sorted(hits, key=lambda h: h.onset_s)
    out = []
    for i, h in enumerate(hits):
        miss = 1.0 - h.confidence
        for e in hits[:i]:
            if group_of[e.drum] == group_of[h.drum] and 1e-9 < h.onset_s - e.onset_s < window_s:
                miss *= 1.0 - e.confidence
        out.append(replace(h, confidence=1.0 - miss))
    return out


def collect(checkpoint, data: Path, noisy_or_s: float = 0.0) -> tuple[dict, dict]:
    """(parts, songs): the candidates of each part of the tuning set (`T.collect`'s tracks: candidates, reference,
    refractory) and the song each track of a part is (None for the validation kit's grooves, never left out). With
    `noisy_or_s`, each candidate is combined with its class group's earlier ones (noisy_or)."""
    parts = {"stems": T.collect(checkpoint, data, ["drum_only"]), "mixes": T.collect(checkpoint, data, ["mix"]),
             "validation kit": T.collect_kit(checkpoint, VALIDATION_KIT, VALIDATION_GROOVES)}
    if noisy_or_s:
        group_of = {d: g for g, drums in T.GROUPS.items() for d in drums}
        parts = {k: [(noisy_or(h, noisy_or_s, group_of), ref, r) for h, ref, r in v] for k, v in parts.items()}
    songs = {name: [t for t in T.TRACKS if (data / kind / f"{t}.flac").is_file()]
             for name, kind in (("stems", "drum_only"), ("mixes", "mix"))}
    songs["validation kit"] = [None] * len(parts["validation kit"])
    return parts, songs


def tune_sets(parts: dict, songs: dict, labels, tune_on, stem_set, skip=None, floors: bool = False,
              rivals: bool = True) -> tuple:
    """(thresholds, stem thresholds or None, floors or None, second_ratio or None) tuned on `tune_on`'s parts less
    the song `skip` (`songs[part]` names each track of a part): the stem set, where asked, on the drum-alone parts
    `stem_set` names (of STEM_PARTS) with the first set held; with `floors`, the song-level floors with the first set;
    with `rivals`, then the rival groups' rule (T.tune_rivals) at those."""

    def tracks(names):
        return [t for name in names for t, s in zip(parts[name], songs[name]) if s is None or s != skip]

    stem = tuned_floors = None
    if floors:
        thresholds, tuned_floors = T.tune_with_floors(tracks(tune_on), labels)
    else:
        thresholds = T.tune(tracks(tune_on), labels)
        if stem_set:
            stem = T.tune(tracks(stem_set), labels, base=thresholds)
    ratio = T.tune_rivals(T.for_tuning(tracks(tune_on)), labels, thresholds, stem, tuned_floors) if rivals else None
    return thresholds, stem, tuned_floors, ratio


def leave_one_out(parts: dict, songs: dict, labels, tune_on, folds: list | None = None, stem_set=(),
                  floors: bool = False, rivals: bool = True, drums: dict | None = None,
                  ratios: list | None = None) -> dict:
    """Per part (stems, mixes, both), each song's rows at thresholds tuned on `tune_on`'s parts without that song,
    pooled over the songs (`songs[part]` names each track of a part; the validation kit has none: never left out).
    A `folds` list gets (song, its thresholds, its stem and mix pooled, its stem thresholds, its floors) per fold.
    With `stem_set`, both sets are tuned without the song (tune_sets); with `floors`, the song-level floors too; with
    `rivals`, the rival groups' rule too, and a `ratios` list gets (song, its second_ratio) per fold. A `drums` dict
    gets, per part, the held-out rows of each rival group's drums (T.drum_rows, pooled over the songs): {part:
    {group's first drum: rows}}."""
    from drumscribe.realtime.decoder import RIVAL_GROUPS

    rows = {"stems": [], "mixes": []}
    drum_scores = {name: {g[0]: [] for g in RIVAL_GROUPS} for name in rows}
    for song in T.TRACKS:
        thresholds, stem, fold_floors, ratio = tune_sets(parts, songs, labels, tune_on, stem_set, skip=song,
                                                         floors=floors, rivals=rivals)
        for name, scored in rows.items():
            held = [t for t, s in zip(parts[name], songs[name]) if s == song]
            scored.append(T.pooled(held, labels, thresholds, stem, fold_floors, ratio))
            for group in RIVAL_GROUPS:
                r = T.drum_rows(held, labels, [d for d in group if d in labels], thresholds, stem, fold_floors, ratio)
                if r:
                    drum_scores[name][group[0]].append(r)
        if folds is not None:
            folds.append((song, thresholds, pool([rows["stems"][-1], rows["mixes"][-1]]), stem, fold_floors))
        if ratios is not None:
            ratios.append((song, ratio))
    if drums is not None:
        drums.update({name: {g: pool(r) for g, r in groups.items() if r} for name, groups in drum_scores.items()})
    return {"stems": pool(rows["stems"]), "mixes": pool(rows["mixes"]),
            "stems and mixes": pool(rows["stems"] + rows["mixes"])}
