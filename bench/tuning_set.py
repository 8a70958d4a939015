"""Score a candidate offline model, or a way of combining models or candidates, on the tuning set.

The tuning set is what every model decision in docs/accuracy.md is judged on: the five MDB dev
tracks, drum stems and mixes, plus 6 grooves on the validation kit TimGM6mb, with per-class thresholds tuned by
`offline.tune_thresholds` (the same functions, the same onset settings as the shipped model). Never the test kit.

    python bench/tuning_set.py [--model A.pt]                       # one network, as tune_thresholds scores it
    python bench/tuning_set.py --model A.pt --model B.pt --soup     # the weights of A and B averaged
    python bench/tuning_set.py --model A.pt --model B.pt            # A and B averaged in probability at each onset
    python bench/tuning_set.py --noisy-or-ms 20                     # each candidate: noisy-OR with its class group's
                                                                    # candidates less than 20 ms earlier
    python bench/tuning_set.py --context | --no-context             # with / without the in-song context decoding
                                                                    # (default: as the checkpoint decodes files)
    python bench/tuning_set.py --leave-one-out                      # held-out figures: each song's stem and mix
                                                                    # scored at thresholds tuned without that song
    python bench/tuning_set.py --tune-on mixes                      # thresholds tuned on that part alone (repeatable:
                                                                    # stems, mixes, validation kit), every part scored
    python bench/tuning_set.py --drum-mask runs/drummask.pt         # the networks read the spectrogram behind this
                                                                    # drum mask (offline.unmix), as if trained so
    python bench/tuning_set.py --context --stem-set runs/drummask.pt
                                                                    # two threshold sets, drum stems and any song,
                                                                    # chosen by the drum share that mask measures
                                                                    # (default where the checkpoint carries them)
    python bench/tuning_set.py --no-rivals                          # without the rival groups' rule (one tom, crash
                                                                    # or ride, at an onset; tuned by default)

`--tune-on` answers whether a part's shortfall is the thresholds' or the network's: tuned on a part alone, that
part's figure is the best one threshold per class group can do there (in-sample, not a figure to ship).

`--leave-one-out` estimates what the tuned figures are worth on songs the thresholds never saw: five folds, each
tuning on every part but one song (its stem and its mix), scoring that song; the stems and mixes pooled over the folds.

Prints the tuned thresholds, pooled F3 / F5 (with found / annotated / emitted strokes for F3) and each part; the rival
groups' ratios (realtime.decoder.RIVAL_GROUPS), the F of the toms and cymbals drum by drum (MDB `subclass/`, the kit's
played drums), and per dev track the onsets with two toms or more and the cymbal notes emitted (annotated).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

from drumscribe.models import DEFAULT_MODEL_PATH
from drumscribe.models.cnn import load_checkpoint
from drumscribe.offline import tune_thresholds as T
from drumscribe.offline.evaluate import CLASSES
from drumscribe.offline.tuning_set import (
    PARTS,
    SHIPPED_ONSETS,
    STEM_PARTS,
    collect,
    leave_one_out,
    probability_average,
    soup,
    tune_sets,
)
from drumscribe.realtime.decoder import RIVAL_GROUPS, ContextParams
from drumscribe.realtime.onsets import OnsetParams


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[],
                        help="checkpoint (repeatable; default: the shipped one)")
    parser.add_argument("--soup", action="store_true", help="average the models' weights, not their probabilities")
    parser.add_argument("--drum-mask", type=Path, metavar="PT",
                        help="put this drum mask (drumscribe train unmix fit) before the networks, which are "
                             "not retrained")
    parser.add_argument("--noisy-or-ms", type=float, default=0.0, metavar="MS")
    parser.add_argument("--stem-set", type=Path, metavar="MASK_PT",
                        help="(context decoding) a second threshold set for drum stems, chosen by the drum share "
                             "this drum mask measures (drumscribe train tune --stem-set); the default where the "
                             "checkpoint carries one")
    parser.add_argument("--stem-set-on", action="append", choices=STEM_PARTS, default=[], metavar="PART",
                        help=f"tune the stem set on this part (repeatable; {', '.join(STEM_PARTS)}; default: both)")
    decoding = parser.add_mutually_exclusive_group()
    decoding.add_argument("--context", dest="context", action="store_true", default=None,
                          help="in-song context decoding (the first model's settings, else the defaults)")
    decoding.add_argument("--no-context", dest="context", action="store_false", help="each onset decided alone")
    parser.add_argument("--tune-on", action="append", choices=PARTS, default=[], metavar="PART",
                        help=f"tune the thresholds on this part alone (repeatable; {', '.join(PARTS)}; default: all)")
    parser.add_argument("--leave-one-out", action="store_true",
                        help="also print held-out figures: each song scored at thresholds tuned without it")
    parser.add_argument("--gate", type=float, metavar="P",
                        help="(context decoding) the onset gate, realtime.decoder.ContextParams.gate (an "
                             "ensemble: several --model, or one built with drumscribe train ensemble); default: the "
                             "first model's")
    parser.add_argument("--floors", action="store_true",
                        help="(context decoding) tune song-level floors with the thresholds (ContextParams.floors; "
                             "the default where the first checkpoint carries any)")
    parser.add_argument("--no-rivals", dest="rivals", action="store_false",
                        help="leave out the rival groups' rule (realtime.decoder.RIVAL_GROUPS): each tom and cymbal "
                             "decided on its own, as before it")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mdb-dev")
    args = parser.parse_args()
    if not (args.data / "class_pp").is_dir():
        parser.error(f"no MDB dev annotations under {args.data}")

    torch.set_num_threads(1)
    checkpoints = [load_checkpoint(p) for p in (args.model or [DEFAULT_MODEL_PATH])]
    checkpoint = checkpoints[0] if len(checkpoints) == 1 else (soup if args.soup else probability_average)(checkpoints)
    checkpoint.onset_params = {**OnsetParams().as_dict(), **checkpoint.onset_params, **SHIPPED_ONSETS}
    checkpoint = T.with_decoding(checkpoint, args.context)
    if args.gate is not None:
        if not checkpoint.extra.get("context"):
            parser.error("--gate is a setting of the in-song context decoding (--context)")
        checkpoint.extra["context"] = {**checkpoint.extra["context"], "gate": args.gate}
    if args.drum_mask:
        from drumscribe.realtime.unmix import mask_to_extra

        checkpoint.extra["drum_mask"] = mask_to_extra(args.drum_mask)
        print("behind the drum mask", args.drum_mask)
    if args.stem_set:
        from drumscribe.realtime.unmix import share_to_extra

        if not checkpoint.extra.get("context"):
            parser.error("--stem-set needs the in-song context decoding (--context)")
        checkpoint.extra["drum_share"] = share_to_extra(args.stem_set)
        checkpoint.extra["context"] = {**checkpoint.extra["context"], "stem_thresholds": [0.5] * len(checkpoint.labels)}
    context = checkpoint.extra.get("context")
    stem_set = ()
    if context and context.get("stem_thresholds") and checkpoint.extra.get("drum_share"):
        stem_set = tuple(args.stem_set_on or STEM_PARTS)
        print(f"two threshold sets: drum stems (tuned on {' and '.join(stem_set)}), and any song")
    floors = bool(context) and (args.floors or ContextParams(**context).adapts)
    if args.floors and not context:
        parser.error("--floors is a setting of the in-song context decoding (--context)")
    if floors and stem_set:
        parser.error("song-level floors and a stem set are not tuned together")
    print("decoding:", "in-song context " + str({k: v for k, v in context.items() if k != "thresholds"})
          if context else "each onset alone", "(song-level floors tuned)" if floors else "")
    parts, songs = collect(checkpoint, args.data, args.noisy_or_ms / 1e3)
    tracks = [t for part in parts.values() for t in part]
    labels = checkpoint.labels
    thresholds, stem, tuned_floors, ratio = tune_sets(parts, songs, labels, args.tune_on or PARTS, stem_set,
                                                      floors=floors, rivals=args.rivals)
    rows = T.pooled(tracks, labels, thresholds, stem, tuned_floors, ratio)
    if args.tune_on:
        print("thresholds tuned on:", ", ".join(args.tune_on), "(every part scored with them below)")
    print("thresholds:", ", ".join(f"{d} {t:.2f}" for d, t in zip(labels, thresholds)))
    if tuned_floors is not None:
        print("floors:", ", ".join(f"{g} {tuned_floors[labels.index(d[0])]:.2f}" for g, d in T.GROUPS.items()))
    if stem is not None:
        print("stem thresholds:", ", ".join(f"{d} {t:.2f}" for d, t in zip(labels, stem)))
    if ratio is not None:
        print("second_ratio:", ", ".join(f"{g[0]}.. {ratio[labels.index(g[0])]:.2f}" for g in RIVAL_GROUPS
                                         if g[0] in labels))
    f3 = rows["F3"]
    print(f"tuning set F3 {f3['f']:.4f} / F5 {rows['F5']['f']:.4f}  (F3 strokes: {f3['tp']} found of {f3['n_ref']}, "
          f"{f3['n_est']} emitted)")
    for name, part in parts.items():
        r = T.pooled(part, labels, np.asarray(thresholds), stem, tuned_floors, ratio)
        print(f"  {name}: F3 {r['F3']['f']:.3f} / F5 {r['F5']['f']:.3f}  (drum by drum: "
              + _drum_text(T.drum_rows, part, labels, thresholds, stem, tuned_floors, ratio) + ")")
    index = {d: i for i, d in enumerate(labels)}
    for name in ("stems", "mixes"):
        for (hits, ref, refractory_s), song in zip(parts[name], songs[name]):
            kept = T.decide(hits, index, np.asarray(thresholds), refractory_s, stem, tuned_floors, ratio)
            print(f"    {name} {song}: " + rival_counts(kept, ref))
    if args.leave_one_out:
        print("leave one song out (thresholds tuned without the song scored):")
        folds = []
        drums, ratios = {}, []
        held = leave_one_out(parts, songs, labels, args.tune_on or PARTS, folds, stem_set, floors, args.rivals, drums,
                             ratios)
        for (song, thresholds, r, stem, fold_floors), (_, ratio) in zip(folds, ratios):
            print(f"  without {song}: " + ", ".join(
                f"{g} {thresholds[labels.index(d[0])]:.2f}" + ("" if fold_floors is None or fold_floors[
                    labels.index(d[0])] >= 1 else f" (floor {fold_floors[labels.index(d[0])]:.2f})")
                for g, d in T.GROUPS.items())
                  + ("" if stem is None else " (stems: " + ", ".join(
                      f"{g} {stem[labels.index(d[0])]:.2f}" for g, d in T.GROUPS.items()) + ")")
                  + ("" if ratio is None else " (second_ratio " + "/".join(
                      f"{ratio[labels.index(g[0])]:.2f}" for g in RIVAL_GROUPS if g[0] in labels) + ")")
                  + f"; {song} (stem and mix) at them: " + ", ".join(
                      f"{c} {r[c]['tp']}/{r[c]['n_ref']}/{r[c]['n_est']}" for c in CLASSES if c in r)
                  + " (found / annotated / emitted)")
        for name, r in held.items():
            print(f"  {name}: F3 {r['F3']['f']:.3f} / F5 {r['F5']['f']:.3f}  ("
                  + ", ".join(f"{c} {r[c]['f']:.3f}" for c in CLASSES if c in r) + ")"
                  + ("" if name not in drums else "; drum by drum: " + ", ".join(
                      f"{g}.. F {d['all']['f']:.3f} ({d['all']['tp']}/{d['all']['n_ref']}/{d['all']['n_est']})"
                      for g, d in drums[name].items())))
    return 0


def _drum_text(drum_rows, tracks, labels, thresholds, stem, floors, ratio) -> str:
    """Each rival group's drum-by-drum F (found / annotated / emitted) on tracks with drum references."""
    out = []
    for group in RIVAL_GROUPS:
        r = drum_rows(tracks, labels, [d for d in group if d in labels], np.asarray(thresholds), stem, floors, ratio)
        if r:
            out.append(f"{group[0]}.. F {r['all']['f']:.3f} ({r['all']['tp']}/{r['all']['n_ref']}/{r['all']['n_est']})")
    return ", ".join(out) or "no drum references"


def rival_counts(hits, reference: dict) -> str:
    """The onsets with two toms or more, the tom onsets, and the cymbal notes (crash, ride) among `hits`, with the
    reference's cymbal strokes (class CY)."""
    toms, cymbals = {}, {"crash": 0, "ride": 0}
    for h in hits:
        if h.drum.startswith("tom_"):
            toms[h.onset_s] = toms.get(h.onset_s, 0) + 1
        elif h.drum in cymbals:
            cymbals[h.drum] += 1
    return (f"tom chords {sum(n > 1 for n in toms.values())} of {len(toms)} tom onsets; cymbal notes "
            f"{cymbals['crash']} crash + {cymbals['ride']} ride (annotated CY {len(reference.get('CY', ()))})")


if __name__ == "__main__":
    raise SystemExit(main())
