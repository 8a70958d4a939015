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
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8)
FLOOR_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 1.0)  # song-level thresholds' floors; 1.0: the group does not adapt
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
    floors are tuned on (for_tuning): the check is a guard for songs without a drum, which no tuning song is."""

    def __init__(self, hits=(), gates: dict | None = None, splits: dict | None = None, unchecked: dict | None = None):
        super().__init__(hits)
        self.gates = gates or {}
        self.splits = splits or {}
        self.unchecked = unchecked


def for_tuning(tracks: list) -> list:
    """The tracks as thresholds are tuned on them: each song's splits without the split_contrast check."""
    return [(h if getattr(h, "unchecked", None) is None else Candidates(h, h.gates, h.unchecked), ref, refractory_s)
            for h, ref, refractory_s in tracks]


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
           stem_thresholds: np.ndarray | None = None, floors: np.ndarray | None = None) -> list:
    """The hits the decoder emits at these thresholds: above its drum's threshold and not within the
    refractory time of that drum's previous emitted hit. With `stem_thresholds`, each hit's threshold is the
    blend the decoder used there (Candidates.gates); with `floors`, lowered to the song's split there as the
    decoder does (Candidates.splits, realtime.decoder.ContextParams.floors)."""
    from drumscribe.realtime.drums import SCORE_CLASS

    last, kept = {}, []
    gates = getattr(hits, "gates", {}) if stem_thresholds is not None else {}
    splits = getattr(hits, "splits", {}) if floors is not None else {}
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
        if h.drum in last and h.onset_s - last[h.drum] < refractory_s - 1e-9:
            continue
        last[h.drum] = h.onset_s
        kept.append(h)
    return kept


def pooled(tracks: list, labels: list, thresholds: np.ndarray, stem_thresholds: np.ndarray | None = None,
           floors: np.ndarray | None = None) -> dict:
    from .evaluate import hits_to_classes, pool, score

    index = {d: i for i, d in enumerate(labels)}
    return pool([score(ref, hits_to_classes(decide(hits, index, thresholds, refractory_s, stem_thresholds, floors)))
                 for hits, ref, refractory_s in tracks])


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
    before = pooled(tracks, checkpoint.labels, np.asarray(context["thresholds"] if context and context["thresholds"]
                                                          else checkpoint.thresholds), None,
                    np.asarray(context["floors"]) if context and context.get("floors") else None)
    floors = None
    if args.floors:
        thresholds, floors = tune_with_floors(tracks, checkpoint.labels)
    else:
        thresholds = tune(tracks, checkpoint.labels, base=base)
    both = (thresholds,) if base is None else (base, thresholds)
    after = pooled(tracks, checkpoint.labels, *both) if floors is None else pooled(
        tracks, checkpoint.labels, thresholds, None, floors)
    print("stem thresholds:" if args.stem_set else "thresholds:",
          ", ".join(f"{d} {t:.2f}" for d, t in zip(checkpoint.labels, thresholds)))
    if floors is not None:
        print("floors (1.00: the song's split is not used):",
              ", ".join(f"{d} {f:.2f}" for d, f in zip(checkpoint.labels, floors)))
    print("pooled F before/after: " + ", ".join(f"{k} {before[k]['f']:.3f}/{after[k]['f']:.3f}" for k in after))
    for name, part in parts.items():
        if part:
            rows = pooled(part, checkpoint.labels, *both) if floors is None else pooled(
                part, checkpoint.labels, thresholds, None, floors)
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
                                               "floors": [] if floors is None else floors.tolist()}
            else:
                checkpoint.thresholds = thresholds.tolist()
            checkpoint.extra["thresholds_tuned_on"] = tuned_on
        if args.onset:
            checkpoint.extra["onset_params_set_when_tuning"] = list(args.onset)
        save_checkpoint(args.out, checkpoint)
        print(f"wrote {args.out}")
    return 0
