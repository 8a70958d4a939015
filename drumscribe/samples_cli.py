"""`drumscribe classify` and `drumscribe sort`: a thin face over offline/sorting.py. It parses, calls and prints.

Registered by drumscribe/cli.py; heavy modules are imported inside the commands, so `--help` stays instant.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CountProgress,
    DrumscribeError,
    add_json_option,
    add_model_option,
    add_no_progress_option,
    one_line,
    want_progress,
)

DEFAULT_MIN_CONFIDENCE = 0.6  # offline.sorting.DEFAULT_MIN_CONFIDENCE, kept here so --help needs no numpy
MANIFEST_NAME = "manifest.csv"  # offline.sorting.MANIFEST_NAME, likewise
ONESHOT_MODEL = "one-shot model checkpoint, a .pt file, e.g. from 'drumscribe train folders'"


def register(commands) -> None:
    """Add the classify and sort sub-commands to drumscribe's sub-parsers (without importing torch)."""
    c = commands.add_parser("classify", help="name the drum of one-shot sample files",
                            description="Classify one-shot drum samples: the most likely class of each file and "
                                        "the probability of every class.")
    c.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, aiff, flac, ogg, mp3)")
    add_json_option(c, "a list of every file's class and class probabilities")
    add_model_option(c, what=ONESHOT_MODEL, default="the shipped one-shot model")
    c.set_defaults(run=cmd_classify)

    s = commands.add_parser(
        "sort", help="sort a folder of one-shots into one folder per drum",
        usage="drumscribe sort IN_DIR OUT_DIR [--move] [--dry-run] [--min-confidence P] [--model PATH]\n"
              "       drumscribe sort --undo OUT_DIR  (or OUT_DIR/manifest.csv)",
        description="Copy (or --move) every audio file below IN_DIR (hidden files and folders aside) into "
                    "OUT_DIR/<class>/, keeping its name (a "
                    "suffix on a clash: nothing is overwritten). Files that cannot be decoded go to "
                    "OUT_DIR/_unreadable/, files below the confidence bar to OUT_DIR/_unsure/. OUT_DIR/manifest.csv "
                    "records every file (source, destination, class, confidence, reason); running again skips "
                    "files already sorted and finishes an interrupted run; --undo puts moved files back.")
    s.add_argument("dirs", nargs="*", metavar="IN_DIR OUT_DIR", help="the folder to sort and the folder to sort into")
    s.add_argument("--move", action="store_true", help="move the files instead of copying them")
    s.add_argument("--dry-run", action="store_true", help="print where each file would go; change nothing")
    s.add_argument("--min-confidence", type=float, metavar="P",
                   help=f"files whose top class has a lower probability go to _unsure/ "
                        f"(default: {DEFAULT_MIN_CONFIDENCE})")
    add_model_option(s, what=ONESHOT_MODEL, default="the shipped one-shot model")
    s.add_argument("--undo", metavar="OUT_DIR",
                   help=f"move the files a 'sort --move' moved into OUT_DIR back where they were (OUT_DIR or its "
                        f"{MANIFEST_NAME})")
    add_no_progress_option(s)
    s.set_defaults(run=cmd_sort)


def _load_classifier(path: str | None):
    import torch

    from drumscribe.models.oneshot import DEFAULT_ONESHOT_MODEL_PATH, CheckpointError
    from drumscribe.offline.sorting import SampleClassifier

    path = path or DEFAULT_ONESHOT_MODEL_PATH
    torch.set_num_threads(1)  # one small image at a time: more threads only spin
    try:
        return SampleClassifier.from_file(path)
    except CheckpointError as exc:
        raise DrumscribeError(f"--model: {one_line(exc)}") from None


def cmd_classify(args) -> int:
    classifier = _load_classifier(args.model)
    results, failed = [], 0
    for path in args.files:
        result = classifier.classify_file(path)
        if result.error and not result.error.startswith(("silent", "no samples")):
            print(f"drumscribe classify: {one_line(result.error)}", file=sys.stderr)
            failed += 1
            continue
        results.append(result)
        if not args.json:
            if result.label is None:
                print(f"{path}: no class ({result.error})")
            else:
                others = [f"{k} {v:.2f}" for k, v in list(result.probabilities.items())[1:4] if v >= 0.01]
                shown = f"  ({', '.join(others)})" if others else ""
                print(f"{path}: {result.label} {result.confidence:.2f}" + shown)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    return EXIT_ERROR if failed else EXIT_OK


def cmd_sort(args) -> int:
    if args.undo:
        # a command line argparse cannot check: a usage error (exit 2), like those it finds
        if args.dirs:
            raise DrumscribeError(f"--undo takes only the manifest or its folder: drumscribe sort --undo OUT_DIR "
                                  f"(or OUT_DIR/{MANIFEST_NAME})", EXIT_USAGE)
        sorting_only = [option for option, given in (("--move", args.move), ("--dry-run", args.dry_run),
                                                     ("--model", args.model is not None),
                                                     ("--min-confidence", args.min_confidence is not None))
                        if given]
        if sorting_only:
            raise DrumscribeError(f"{sorting_only[0]} does not go with --undo (undo moves back what the manifest "
                                  f"lists, nothing else): drumscribe sort --undo OUT_DIR", EXIT_USAGE)
        return _undo(args)
    if len(args.dirs) != 2:
        raise DrumscribeError(f"expected IN_DIR and OUT_DIR, got {len(args.dirs)} path(s); "
                              f"or --undo OUT_DIR to put moved files back", EXIT_USAGE)
    if args.min_confidence is None:
        args.min_confidence = DEFAULT_MIN_CONFIDENCE
    if not 0.0 <= args.min_confidence <= 1.0:  # before the model loads (also NaN)
        raise DrumscribeError(f"--min-confidence {args.min_confidence:g} is not in 0-1")
    from drumscribe.offline import sorting

    in_dir, out_dir = (Path(p) for p in args.dirs)
    if not in_dir.is_dir():  # before the model loads: a typo is reported at once
        raise DrumscribeError(f"IN_DIR '{in_dir}' " + ("is not a folder" if in_dir.exists() else "does not exist"))
    classifier = _load_classifier(args.model)
    bar = CountProgress("sorting", shown=want_progress(args.no_progress))
    try:
        summary = sorting.sort_folder(in_dir, out_dir, classifier, move=args.move, dry_run=args.dry_run,
                                      min_confidence=args.min_confidence, progress=bar)
    except sorting.SortError as exc:
        raise DrumscribeError(one_line(exc)) from None
    except KeyboardInterrupt:
        bar.close()
        print(f"drumscribe sort: interrupted; every file is either sorted or where it was. Run the same command "
              f"again to sort the rest ('{Path(out_dir) / sorting.MANIFEST_NAME}' lists what is done)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()

    if summary.dry_run:
        for row in summary.planned:
            what = f"{row['class']} {float(row['confidence']):.2f}" if row["confidence"] else row["reason"]
            print(f"{row['source']} -> {row['destination']}  ({what})")
    by_folder = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
    verb = "would " + ("move" if args.move else "copy") if summary.dry_run else ("moved" if args.move else "copied")
    print(f"{verb} {summary.sorted} files into '{out_dir}'" + (f": {by_folder}" if by_folder else ""))
    if summary.already_sorted:
        print(f"{summary.already_sorted} files were sorted by an earlier run and left alone")
    if summary.other_files:
        print(f"{summary.other_files} files that are not audio were left alone")
    for source, reason in summary.left_in_place:
        print(f"drumscribe sort: '{source}' was not sorted: {reason}", file=sys.stderr)
    if not summary.dry_run and (summary.sorted or summary.already_sorted):
        print(f"manifest: '{summary.manifest}'" + (f" (undo: drumscribe sort --undo '{out_dir}')"
                                                    if args.move else ""))
    return EXIT_ERROR if summary.left_in_place else EXIT_OK


def _undo(args) -> int:
    from drumscribe.offline import sorting

    manifest = Path(args.undo)
    if manifest.is_dir():  # OUT_DIR, as the sort was given it
        manifest = manifest / sorting.MANIFEST_NAME
        if not manifest.exists():
            raise DrumscribeError(f"--undo '{args.undo}' holds no {sorting.MANIFEST_NAME}: it is not a folder "
                                  f"'drumscribe sort' sorted into (or that sort was undone already)")
    bar = CountProgress("undoing", shown=want_progress(args.no_progress))
    try:
        summary = sorting.undo(manifest, progress=bar)
    except sorting.SortError as exc:
        raise DrumscribeError(one_line(exc)) from None
    except KeyboardInterrupt:
        bar.close()
        print("drumscribe sort: undo interrupted; run it again to put back the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    print(f"put {summary.restored} moved files back" + (f" ({summary.already_back} were back already)"
                                                         if summary.already_back else ""))
    if summary.copies_left:
        print(f"{summary.copies_left} copies stay in place (their originals were never touched)")
    for problem in summary.problems:
        print(f"drumscribe sort: {problem}", file=sys.stderr)
    return EXIT_ERROR if summary.problems else EXIT_OK
