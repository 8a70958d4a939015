"""Per-class decision thresholds of a checkpoint, tuned on annotated recordings (the MDB Drums dev tracks).

    drumscribe train tune --model runs/hitcnn.pt --data ../shared/data/mdb-dev
        [-o models/weights/hitcnn.pt]

Each track is transcribed once with every threshold low; then, class group by class group (KD, SD, HH, TT, CY),
the one threshold shared by the drums of that group is chosen from a coarse grid to maximise F3 + F5 (pooled,
50 ms), two rounds over the groups. One parameter per group and a coarse grid keep the fit to five short tracks
small; the figures reported from the same tracks are therefore tuned, not held out, and the README says so.

A checkpoint holds two sets: `thresholds`, for each onset decided alone (live input, `transcribe --no-context`),
and `extra["context"]["thresholds"]`, for the in-song context decoding files use (realtime.decoder.ContextParams).
By default the set of the checkpoint's own file decoding is tuned; `--context` tunes (and, if missing, adds) the
context decoding's, `--no-context` the other. Then `--context --stem-set MASK.pt --kinds drum_only` tunes a third,
`extra["context"]["stem_thresholds"]`, for songs whose power a drum mask finds to be drums alone (drum stems; see
realtime.unmix.DrumShareStage), holding the context set, which goes on serving every other song.

Then the rival groups' rule (realtime.decoder.RIVAL_GROUPS: a second tom, or crash with ride, at one onset only near
the likeliest), one ratio per group from RATIO_GRID, at the thresholds just tuned. The five classes cannot see it (two
toms at one onset are one TT stroke), so it is tuned on the drums themselves: the F of the group's drums against
the dev songs' `subclass/` annotations (SUBCLASS_DRUM), pooled. The validation kit's grooves have no drum reference
here: its tom pitches are one soundfont's, and the rule is for songs.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8)
FLOOR_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 1.0)  # song-level thresholds' floors; 1.0: the group does not adapt
RATIO_GRID = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # the rival groups' second_ratio; 0: no rule
# MDB Drums' subclasses of the rival groups' drums (realtime.decoder.RIVAL_GROUPS); a tom by its place in the kit
SUBCLASS_DRUM = {"HIT": "tom_high", "MHT": "tom_mid", "HFT": "tom_low", "LFT": "tom_low", "LMT": "tom_mid",
                 "CRC": "crash", "CHC": "crash", "SPC": "crash", "RDC": "ride", "RDB": "ride"}
GROUPS = {
    "KD": ("kick",),
    "SD": ("snare", "side_stick"),
    "HH": ("hh_closed", "hh_pedal", "hh_open"),
    "TT": ("tom_low", "tom_mid", "tom_high"),
    "CY": ("crash", "ride"),
}
TRACKS = ("Beatles", "Country1", "Punk", "Rock", "Shadows")


class Candidates(list):
    """A track's candidate hits, with `gates`: onset_s -> the weight of the stem thresholds there (0 where the
    checkpoint has none; realtime.decoder.ContextParams.stem_thresholds), and `splits`: (onset_s, class group)
    -> the song-level split there (ContextParams.floors; absent where too few candidates or no context), and
    `unchecked`: the same without ContextParams.split_contrast's check (None: no check), which thresholds and
    floors are tuned on (for_tuning): the check is a guard for songs without a drum, which no tuning song is.
    `drums`: the rival groups' drums' reference, drum -> sorted times (None where the track has none)."""

    def __init__(self, hits=(), gates: dict | None = None, splits: dict | None = None, unchecked: dict | None = None,
                 drums: dict | None = None):
        super().__init__(hits)
        self.gates = gates or {}
        self.splits = splits or {}
        self.unchecked = unchecked
        self.drums = drums


def for_tuning(tracks: list) -> list:
    """The tracks as thresholds are tuned on them: each song's splits without the split_contrast check."""
    return [(h if getattr(h, "unchecked", None) is None else Candidates(h, h.gates, h.unchecked, drums=h.drums),
             ref, refractory_s) for h, ref, refractory_s in tracks]


def load_drum_reference(path: Path) -> dict:
    """The rival groups' drums of an MDB Drums subclass annotation file (SUBCLASS_DRUM): drum -> sorted times; every
    drum of those groups appears. Lines of other subclasses are skipped; a line that is not 'time SUBCLASS' is
    ValueError naming it."""
    from drumscribe.realtime.decoder import RIVAL_GROUPS

    times = {d: [] for group in RIVAL_GROUPS for d in group}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            t = float(fields[0])
            label = fields[1].upper()
        except (ValueError, IndexError):
            raise ValueError(f"subclass annotation '{path}' line {number}: {line.strip()!r} is not 'time SUBCLASS'") \
                from None
        if label in SUBCLASS_DRUM:
            times[SUBCLASS_DRUM[label]].append(t)
    return {d: np.sort(np.asarray(ts, dtype=np.float64)) for d, ts in times.items()}


def song_splits_of(hits: list, labels: list, context, frames_per_s: float, embeddings: dict | None = None) -> dict:
    """(onset_s, class group) -> the split the decoder computes for that onset's group (realtime.decoder.
    song_splits), from the candidates themselves: every drum's decoded probability from 0.05 on is a candidate,
    which is all a split counts when ContextParams.split_from is 0.05 or more. With ContextParams.split_contrast,
    `embeddings` (onset_s -> the onset's unit embedding, DecisionLog.embeddings) must hold every candidate's."""
    from drumscribe.realtime.decoder import song_splits
    from drumscribe.realtime.drums import SCORE_CLASS

    if context is None or not hits:
        return {}
    if context.split_from < 0.05:
        raise ValueError(f"split_from {context.split_from}: the candidates start at 0.05")
    times = sorted({h.onset_s for h in hits})
    row = {t: i for i, t in enumerate(times)}
    probs = np.zeros((len(times), len(labels)))
    index = {d: i for i, d in enumerate(labels)}
    for h in hits:
        probs[row[h.onset_s], index[h.drum]] = h.confidence
    frames = np.array([round(t * frames_per_s) for t in times])  # the onset frames, less a constant
    embedding = None
    if context.split_contrast > 0:
        if embeddings is None:
            raise ValueError("split_contrast: the candidates' embeddings are needed")
        embedding = np.stack([embeddings[t] for t in times])
    behind = context.behind_s if context.split_behind_s is None else context.split_behind_s
    out = {}
    for name in dict.fromkeys(SCORE_CLASS[d] for d in labels if d in SCORE_CLASS):
        columns = np.array([i for i, d in enumerate(labels) if SCORE_CLASS.get(d) == name])
        rows = np.flatnonzero((probs[:, columns] > 0).any(axis=1))
        split = song_splits(frames, probs, rows, columns, behind=round(behind * frames_per_s),
                            ahead=round(context.split_ahead_s * frames_per_s), minimum=context.split_min,
                            candidates_from=context.split_from, embedding=embedding,
                            contrast=context.split_contrast)
        out.update({(times[r], name): float(v) for r, v in zip(rows, split) if np.isfinite(v)})
    return out


def _candidates(checkpoint, audio: np.ndarray):
    """Every candidate hit (confidence >= 0.05, no double-trigger suppression) and the suppression time."""
    from drumscribe.realtime.decoder import DecisionLog, HitDecoder
    from drumscribe.realtime.engine import OFFLINE, Engine, build_stages
    from drumscribe.realtime.sinks import CollectSink
    from drumscribe.realtime.sources import ArraySource

    stages = build_stages(checkpoint, OFFLINE)
    decoder = stages[-1]
    assert isinstance(decoder, HitDecoder)
    context = decoder.context
    low = (0.05,) * len(checkpoint.labels)
    log = DecisionLog(embeddings={} if context is not None and context.split_contrast > 0 else None)
    # every candidate, undecided by the song's split (computed below, from the candidates: song_splits_of) and never
    # dropped as a double trigger (decide() does that at the suppression time of the checkpoint's decoding)
    stages[-1] = decoder.with_params(replace(decoder.params, thresholds=low, floors=(), refractory_s=0.0,
                                             second_ratio=(),
                                             stem_thresholds=low if decoder.params.stem_thresholds else ()), log=log)
    refractory_s = decoder.refractory_frames * decoder.hop_samples / decoder.sample_rate_hz
    hits = CollectSink()
    Engine(stages, [hits]).run(ArraySource(audio, block_size_samples=4096))
    frames_per_s = decoder.sample_rate_hz / decoder.hop_samples
    splits = song_splits_of(hits, list(checkpoint.labels), context, frames_per_s, log.embeddings)
    unchecked = None
    if context is not None and context.split_contrast > 0:
        unchecked = song_splits_of(hits, list(checkpoint.labels), replace(context, split_contrast=0.0), frames_per_s)
    return Candidates(list(hits), log.gates, splits, unchecked), refractory_s


def collect_kit(checkpoint, spec: str, grooves: int, seed: int = 5) -> list:
    """Candidates and references of grooves rendered on a validation kit (never the test kit)."""
    from .evaluate import played_to_classes
    from .render import generate_pattern, load_kit, render_hits

    kit = load_kit(spec)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(grooves):
        hits, duration = generate_pattern(rng, bars=8, style="groove", drums_available=kit.drums)
        audio = render_hits(hits, kit, duration_s=duration, rng=rng)
        audio = 0.5 * audio / (np.abs(audio).max() + 1e-9)
        found, refractory_s = _candidates(checkpoint, audio.astype(np.float64))
        out.append((found, played_to_classes(hits), refractory_s))
    return out


def collect(checkpoint, data: Path, kinds) -> list:
    """(candidates, reference, suppression time) per MDB track and kind: `decide` applies thresholds and
    double-trigger suppression afterwards, as the decoder would have."""
    from drumscribe.realtime.sources import decode_audio

    from .evaluate import load_annotations

    out = []
    for kind in kinds:
        for track in TRACKS:
            audio = data / kind / f"{track}.flac"
            if audio.is_file():
                hits, refractory_s = _candidates(checkpoint, decode_audio(audio))
                subclass = data / "subclass" / f"{track}.txt"
                hits.drums = load_drum_reference(subclass) if subclass.is_file() else None
                out.append((hits, load_annotations(data / "class_pp" / f"{track}.txt"), refractory_s))
    return out


def with_decoding(checkpoint, context: bool | None):
    """A shallow copy of the checkpoint that decodes as asked: True, with the in-song context (the checkpoint's
    settings, else the defaults of realtime.decoder.ContextParams); False, each onset alone; None, as it is."""
    import copy

    from drumscribe.realtime.decoder import ContextParams

    out = copy.copy(checkpoint)
    out.extra = dict(checkpoint.extra)
    if context is False:
        out.extra.pop("context", None)
    elif context and "context" not in out.extra:
        out.extra["context"] = ContextParams().as_dict()
    return out


def decide(hits: list, index: dict, thresholds: np.ndarray, refractory_s: float,
           stem_thresholds: np.ndarray | None = None, floors: np.ndarray | None = None,
           second_ratio: np.ndarray | None = None) -> list:
    """The hits the decoder emits at these thresholds: above its drum's threshold and not within the
    refractory time of that drum's previous emitted hit. With `stem_thresholds`, each hit's threshold is the
    blend the decoder used there (Candidates.gates); with `floors`, lowered to the song's split there as the
    decoder does (Candidates.splits, realtime.decoder.ContextParams.floors); with `second_ratio`, a drum of a
    rival group (realtime.decoder.RIVAL_GROUPS) only at that share of its group's likeliest candidate there or
    more (DecoderParams.second_ratio)."""
    from drumscribe.realtime.decoder import RIVAL_GROUPS
    from drumscribe.realtime.drums import SCORE_CLASS

    last, kept = {}, []
    gates = getattr(hits, "gates", {}) if stem_thresholds is not None else {}
    splits = getattr(hits, "splits", {}) if floors is not None else {}
    rival, top = {}, {}
    if second_ratio is not None and (np.asarray(second_ratio) > 0).any():
        rival = {d: g for g, group in enumerate(RIVAL_GROUPS) for d in group
                 if d in index and sum(x in index for x in group) > 1}
        for h in hits:
            if h.drum in rival:
                key = (h.onset_s, rival[h.drum])
                top[key] = max(top.get(key, 0.0), h.confidence)
    for h in sorted(hits, key=lambda h: h.onset_s):
        g = gates.get(h.onset_s, 0.0)
        threshold = thresholds[index[h.drum]] if not g else (
            g * stem_thresholds[index[h.drum]] + (1.0 - g) * thresholds[index[h.drum]])
        if splits and floors[index[h.drum]] < 1.0:
            split = splits.get((h.onset_s, SCORE_CLASS.get(h.drum)))
            if split is not None:
                threshold = min(threshold, max(floors[index[h.drum]], split))
        if h.confidence < threshold:
            continue
        if h.drum in rival and h.confidence < second_ratio[index[h.drum]] * top[(h.onset_s, rival[h.drum])]:
            continue
        if h.drum in last and h.onset_s - last[h.drum] < refractory_s - 1e-9:
            continue
        last[h.drum] = h.onset_s
        kept.append(h)
    return kept


def pooled(tracks: list, labels: list, thresholds: np.ndarray, stem_thresholds: np.ndarray | None = None,
           floors: np.ndarray | None = None, second_ratio: np.ndarray | None = None) -> dict:
    from .evaluate import hits_to_classes, pool, score

    index = {d: i for i, d in enumerate(labels)}
    return pool([score(ref, hits_to_classes(decide(hits, index, thresholds, refractory_s, stem_thresholds, floors,
                                                   second_ratio)))
                 for hits, ref, refractory_s in tracks])


def drum_rows(tracks: list, labels: list, drums, thresholds: np.ndarray, stem_thresholds: np.ndarray | None = None,
              floors: np.ndarray | None = None, second_ratio: np.ndarray | None = None) -> dict:
    """The `drums` (of the rival groups) scored one by one against the tracks' drum references (Candidates.drums;
    tracks without one are left out), pooled: drum -> row, and "all" (the drums pooled), as offline.evaluate.score."""
    from .evaluate import DEDUPE_S, pool, score

    index = {d: i for i, d in enumerate(labels)}
    rows = []
    for hits, _, refractory_s in tracks:
        reference = getattr(hits, "drums", None)
        if reference is None:
            continue
        kept = decide(hits, index, thresholds, refractory_s, stem_thresholds, floors, second_ratio)
        estimate = {}
        for d in drums:  # each drum's hits, those closer than DEDUPE_S kept once (as hits_to_classes does a class's)
            times = []
            for t in sorted(h.onset_s for h in kept if h.drum == d):
                if not times or t - times[-1] >= DEDUPE_S:
                    times.append(t)
            estimate[d] = np.asarray(times, dtype=np.float64)
        rows.append(score({d: reference.get(d, ()) for d in drums}, estimate, classes=tuple(drums)))
    if not rows:
        return {}
    out = pool(rows)
    out["all"] = out.pop("F5")
    out.pop("F3", None)
    return out


def tune_rivals(tracks: list, labels: list, thresholds: np.ndarray, stem_thresholds: np.ndarray | None = None,
                floors: np.ndarray | None = None) -> np.ndarray:
    """The rival groups' second_ratio (per drum) at these thresholds: each group's one ratio from RATIO_GRID (the
    first of the best), by the F of the group's drums pooled over the tracks with drum references (drum_rows).
    Zeros (no rule) where no track has one."""
    from drumscribe.realtime.decoder import RIVAL_GROUPS

    ratio = np.zeros(len(labels))
    for group in RIVAL_GROUPS:
        columns = [labels.index(d) for d in group if d in labels]
        if len(columns) < 2:
            continue
        best = None
        for value in RATIO_GRID:
            trial = ratio.copy()
            trial[columns] = value
            rows = drum_rows(tracks, labels, [labels[c] for c in columns], thresholds, stem_thresholds, floors, trial)
            if not rows:
                break
            if best is None or rows["all"]["f"] > best[0] + 1e-9:
                best = (rows["all"]["f"], value)
        if best is not None:
            ratio[columns] = best[1]
    return ratio


def objective(rows: dict) -> float:
    """What the thresholds serve: the pooled F over kick/snare/hi-hat plus that over all five classes."""
    return rows["F3"]["f"] + rows["F5"]["f"]


def _ascent(tracks: list, labels: list, rounds: int, score, floor_grid=(1.0,)) -> tuple:
    """(thresholds, floors): coordinate ascent from 0.5 (floors 1.0: none), each class group's threshold and floor
    chosen together from GRID x floor_grid (a floor below its threshold, or 1.0), `rounds` times over, by
    objective(score(thresholds, floors))."""
    thresholds, floors = np.full(len(labels), 0.5), np.ones(len(labels))
    for _ in range(rounds):
        for drums in GROUPS.values():
            columns = [labels.index(d) for d in drums if d in labels]
            best = None
            for value in GRID:
                for floor in floor_grid:
                    if floor < 1.0 and floor >= value:
                        continue
                    trial, trial_floors = thresholds.copy(), floors.copy()
                    trial[columns], trial_floors[columns] = value, floor
                    f = objective(score(trial, trial_floors))
                    if best is None or f > best[0] + 1e-9:
                        best = (f, value, floor)
            thresholds[columns], floors[columns] = best[1], best[2]
    return thresholds, floors


def tune(tracks: list, labels: list, rounds: int = 2, base: np.ndarray | None = None) -> np.ndarray:
    """Coordinate ascent from 0.5: each class group's threshold in turn, `rounds` times over. With `base`, the
    stem thresholds are tuned, the others held at `base` (where a hit's gate is 0, only `base` counts)."""
    def score(trial, _):
        return pooled(tracks, labels, trial) if base is None else pooled(tracks, labels, base, trial)

    tracks = for_tuning(tracks)
    return _ascent(tracks, labels, rounds, score)[0]


def tune_with_floors(tracks: list, labels: list, rounds: int = 2) -> tuple:
    """(thresholds, floors): as `tune`, each class group's threshold and song-level floor chosen together (a floor
    below its threshold, or 1.0: none) from GRID x FLOOR_GRID. The tracks' candidates need their splits
    (collected with the in-song context), and are tuned on those without the split_contrast check (for_tuning)."""
    tracks = for_tuning(tracks)
    return _ascent(tracks, labels, rounds, lambda trial, floors: pooled(tracks, labels, trial, None, floors),
                   FLOOR_GRID)


def before_thresholds(checkpoint, context: dict | None) -> np.ndarray:
    """The thresholds a checkpoint decodes with as it is: its context's where it has them, else its own."""
    return np.asarray(context["thresholds"] if context and context.get("thresholds") else checkpoint.thresholds)


def tune_checkpoint(args, parser) -> int:
    """`drumscribe train tune`, its options parsed: a bad one is `parser.error` (one line, exit 2)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.floors and (not args.context or args.stem_set):
        parser.error("--floors tunes the in-song context decoding's thresholds: give --context, without --stem-set")
    if args.stem_set and not args.context:
        parser.error("--stem-set tunes a set of the in-song context decoding: give --context too")
    for name in ("gate", "split_contrast", "split_window"):
        if getattr(args, name) is not None and not args.context:
            parser.error(f"--{name.replace('_', '-')} is a setting of the in-song context decoding: give --context too")

    import torch

    from drumscribe.models.cnn import CheckpointError, load_checkpoint, save_checkpoint
    from drumscribe.realtime.onsets import OnsetParams

    torch.set_num_threads(1)
    try:
        checkpoint = load_checkpoint(args.model)
    except CheckpointError as exc:
        parser.error(f"--model: {exc}")
    if args.out:  # refused now rather than after the tracks are transcribed (the write itself is whole or nothing)
        from drumscribe.realtime.sinks import OutputPathError, check_writable

        try:
            check_writable(args.out)
        except OutputPathError as exc:
            parser.error(f"-o: {exc}")
    onset = checkpoint.onset_params.as_dict()  # every field (a file's missing ones at their defaults)
    for item in args.onset:
        name, _, value = item.partition("=")
        if name not in onset:
            parser.error(f"--onset '{item}': '{name}' is not one of: {', '.join(sorted(onset))}")
        try:
            if isinstance(onset[name], bool):
                if value not in ("true", "false"):
                    raise ValueError(f"{name} takes true or false, not {value!r}")
                onset[name] = value == "true"
            else:
                onset[name] = type(onset[name])(value)  # int("1.5") fails: no silent rounding
            OnsetParams(**onset)
        except ValueError as e:
            parser.error(f"--onset '{item}': {e}")
    checkpoint.onset_params = onset
    tuned = with_decoding(checkpoint, args.context)
    for name in ("gate", "split_contrast", "split_window"):
        if getattr(args, name) is None:
            continue
        from drumscribe.realtime.decoder import ContextParams, HitDecoder
        from drumscribe.realtime.scorer import OnsetScorer

        setting = {name: getattr(args, name)} if name != "split_window" else dict(
            zip(("split_behind_s", "split_ahead_s"), args.split_window))
        try:
            context = ContextParams(**{**tuned.extra["context"], **setting})
            OnsetScorer(tuned, embedding=True, gate=context.gate)
            HitDecoder.for_checkpoint(tuned, context=context)
        except ValueError as e:
            value = " ".join(f"{v:g}" for v in args.split_window) if name == "split_window" else getattr(args, name)
            parser.error(f"--{name.replace('_', '-')} {value}: {e}")
        tuned.extra["context"] = context.as_dict()
    base = None
    if args.stem_set:
        from drumscribe.realtime.unmix import share_to_extra

        context = tuned.extra.get("context") or {}
        if not context.get("thresholds"):
            parser.error(f"'{args.model}' has no context thresholds to hold: tune them first (--context)")
        base = np.asarray(context["thresholds"])
        try:
            share = share_to_extra(args.stem_set)
        except Exception as e:  # noqa: BLE001  (torch raises many types for a file that is not a mask)
            parser.error(f"--stem-set '{args.stem_set}' is not a drum mask checkpoint ({type(e).__name__})")
        tuned.extra = {**tuned.extra, "drum_share": share,
                       "context": {**context, "stem_thresholds": [0.5] * len(checkpoint.labels)}}
    if args.kinds and not args.data.is_dir():
        parser.error(f"--data {args.data}: no such folder (the MDB Drums dev recordings: drum_only/, mix/, class_pp/; "
                     "the default is relative to the current folder)")
    parts = {kind: collect(tuned, args.data, [kind]) for kind in args.kinds.split(",")}
    for spec in args.kit:
        parts[spec] = collect_kit(tuned, spec, args.grooves)
    tracks = [track for part in parts.values() for track in part]
    if not tracks:
        parser.error(f"no annotated recordings under {args.data}")
    context = tuned.extra.get("context")
    print("decoding:", "in-song context " + str({k: v for k, v in context.items() if k != "thresholds"})
          if context else "each onset alone")
    # the rule decoded with as it is: the context's, else the checkpoint's own (realtime.decoder.DecoderParams.of)
    stored_ratio = (context or {}).get("second_ratio") or checkpoint.extra.get("second_ratio")
    before = pooled(tracks, checkpoint.labels, before_thresholds(checkpoint, context), None,
                    np.asarray(context["floors"]) if context and context.get("floors") else None,
                    np.asarray(stored_ratio) if stored_ratio and not args.stem_set else None)
    floors = None
    if args.floors:
        thresholds, floors = tune_with_floors(tracks, checkpoint.labels)
    else:
        thresholds = tune(tracks, checkpoint.labels, base=base)
    both = (thresholds,) if base is None else (base, thresholds)
    ratio = None
    if base is None:  # the rival groups' rule at the thresholds just tuned (a stem set keeps the stored rule)
        ratio = tune_rivals(for_tuning(tracks), checkpoint.labels, thresholds, None, floors)
    after = pooled(tracks, checkpoint.labels, *both) if floors is None and ratio is None else pooled(
        tracks, checkpoint.labels, thresholds, None, floors, ratio)
    print("stem thresholds:" if args.stem_set else "thresholds:",
          ", ".join(f"{d} {t:.2f}" for d, t in zip(checkpoint.labels, thresholds)))
    if floors is not None:
        print("floors (1.00: the song's split is not used):",
              ", ".join(f"{d} {f:.2f}" for d, f in zip(checkpoint.labels, floors)))
    if ratio is not None:
        from drumscribe.realtime.decoder import RIVAL_GROUPS

        print("second_ratio (a second tom, or crash with ride, at one onset; 0: no rule):", ", ".join(
            f"{'/'.join(g)} {ratio[checkpoint.labels.index(g[0])]:.2f}" for g in RIVAL_GROUPS
            if g[0] in checkpoint.labels))
        for group in RIVAL_GROUPS:
            drums = [d for d in group if d in checkpoint.labels]
            was = drum_rows(for_tuning(tracks), checkpoint.labels, drums, before_thresholds(checkpoint, context),
                            None, np.asarray(context["floors"]) if context and context.get("floors") else None,
                            np.asarray(stored_ratio) if stored_ratio else None)
            now = drum_rows(for_tuning(tracks), checkpoint.labels, drums, thresholds, None, floors, ratio)
            if now:
                print(f"  {'/'.join(drums)} drum by drum F before/after: {was['all']['f']:.3f}/{now['all']['f']:.3f}")
    print("pooled F before/after: " + ", ".join(f"{k} {before[k]['f']:.3f}/{after[k]['f']:.3f}" for k in after))
    for name, part in parts.items():
        if part:
            rows = pooled(part, checkpoint.labels, *both) if floors is None and ratio is None else pooled(
                part, checkpoint.labels, thresholds, None, floors, ratio)
            print(f"  {name} at these thresholds: F3 {rows['F3']['f']:.3f} / F5 {rows['F5']['f']:.3f}")
    if args.out:
        tuned_on = f"MDB Drums dev ({args.kinds}), class_pp, 50 ms" + "".join(
            f"; {args.grooves} grooves on {k}" for k in args.kit)
        if args.stem_set:
            checkpoint.extra["drum_share"] = tuned.extra["drum_share"]
            checkpoint.extra["context"] = {**context, "stem_thresholds": thresholds.tolist()}
            checkpoint.extra["stem_thresholds_tuned_on"] = tuned_on
        else:
            if context:
                checkpoint.extra["context"] = {**context, "thresholds": thresholds.tolist(),
                                               "floors": [] if floors is None else floors.tolist(),
                                               "second_ratio": ratio.tolist()}
            else:
                checkpoint.thresholds = thresholds.tolist()
                checkpoint.extra["second_ratio"] = ratio.tolist()
            checkpoint.extra["thresholds_tuned_on"] = tuned_on
        if args.onset:
            checkpoint.extra["onset_params_set_when_tuning"] = list(args.onset)
        save_checkpoint(args.out, checkpoint)
        print(f"wrote {args.out}")
    return 0
