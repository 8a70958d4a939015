"""Accuracy of a drumscribe model: MDB Drums dev tracks (drum-only and mixes) and held-out synthetic kits.

    python bench/accuracy.py [--model models/weights/hitcnn.pt] [--data ../shared/data/mdb-dev] [--out bench/out]
        [--skip-synthetic] [--gain-db -12] [--mp3 128] [--band-db 3] [--band-alone] [--back-to-back]

Prints per-class precision/recall/F at 50 ms (KD SD HH TT CY, F3, F5) against the corrected MDB Drums++
annotations (class_pp/), per-drum figures against the MDB Drums++ MIDI (open vs closed hi-hat, ride vs crash,
toms), how many annotated strokes get an onset from the model's detector (and from the broadband flux alone, when
the detector has a band flux), the same on grooves rendered from the held-out kits, and writes a confusion matrix
PNG and a JSON report.
The MDB tracks are only ever scored here; they are never trained on. `--gain-db` scales them first (a quieter
recording of the same songs): the figures are not level-invariant. `--mp3 KBPS` scores them as mp3 files instead:
each recording (scaled first, with --gain-db) is written at its own sample rate as a constant-bitrate mp3 (LAME,
through libsndfile) and read back the way `drumscribe transcribe` reads any file. `--band-alone` transcribes the
band without the drums (mix minus drum stem, for the mixes that are sums of the two) and counts what it emits:
every hit there is an accompaniment note taken for a drum; then the band twice followed by the whole mix (a song
with a drumless intro): the hits in the intro, and the mix's F3 after it.
`--back-to-back` transcribes the five stems, and the five mixes, as one file each (1 s apart, in order and
reversed) and scores each song where it sits in it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch

from drumscribe.models import DEFAULT_MODEL_PATH
from drumscribe.models.cnn import load_checkpoint
from drumscribe.offline.accuracy import back_to_back, band_alone, drum_table, held_out_kits, plot_confusion, score_kind
from drumscribe.offline.evaluate import format_table

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/mdb-dev")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--gain-db", type=float, default=0.0,
                        help="scale the MDB recordings by this much first: how the figures move with a file's level")
    parser.add_argument("--band-db", type=float, metavar="DB",
                        help="also score the held-out kits' grooves with a band playing along at this RMS level "
                             "around the drums (instruments of TimGM6mb, which no training band used)")
    parser.add_argument("--back-to-back", action="store_true",
                        help="also transcribe the five stems, and the five mixes, as one file each (1 s apart, in "
                             "order and reversed) and score each song where it sits")
    parser.add_argument("--band-alone", action="store_true",
                        help="also transcribe the MDB bands without their drums (mix minus drum stem) and count the "
                             "hits, and each band twice followed by its whole mix (a song with a drumless intro)")
    parser.add_argument("--mp3", type=int, metavar="KBPS",
                        help="score the MDB recordings as constant-bitrate mp3s of about this bitrate (32-320 kbps)")
    args = parser.parse_args()
    if args.mp3 is not None and not 32 <= args.mp3 <= 320:
        parser.error(f"--mp3 {args.mp3}: expected a bitrate from 32 to 320 kbps")

    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model}
    t0 = time.time()
    if args.data.is_dir():
        for kind in ("drum_only", "mix"):
            scored = score_kind(args.data, checkpoint, kind, gain_db=args.gain_db, mp3_kbps=args.mp3,
                                mp3_folder=args.out / "mp3")
            if scored is None:
                continue
            pooled = scored["pooled"]
            gain = (f", scaled by {args.gain_db:+.1f} dB" if args.gain_db else "") + (
                f", as {args.mp3} kbps mp3s" if args.mp3 else "")
            print(format_table(pooled, title=f"MDB Drums dev, {kind} ({len(scored['scores'])} tracks){gain}, class_pp, "
                                             "50 ms"))
            print("per track F3/F5: " + ", ".join(f"{t} {v['F3']:.3f}/{v['F5']:.3f}"
                                                  for t, v in scored["tracks"].items()))
            for name, (found, n_onsets, n_strokes) in scored["onset_coverage"].items():
                print(f"onsets, {name}: {found}/{n_strokes} annotated strokes ({found / max(1, n_strokes):.1%}) have "
                      f"one within -10/+35 ms; {n_onsets} onsets, {n_onsets / max(1, n_strokes):.2f} per stroke")
            report[kind] = {"pooled": pooled, "tracks": scored["tracks"], "onset_coverage": scored["onset_coverage"]}
            if "per_drum" in scored:
                rows = scored["per_drum"]
                print(drum_table(rows, f"per drum vs MDB Drums++ MIDI ({kind})"))
                report[kind]["per_drum"] = rows
                plot_confusion(scored["confusion"], args.out / f"confusion_{kind}.png",
                               f"MDB Drums dev {kind}: confusion (counts)")
                report[kind]["confusion"] = scored["confusion"].tolist()
            print()
        if args.band_alone:
            report["band_alone"] = band_alone(args.data, checkpoint, 10 ** (args.gain_db / 20))
        if args.back_to_back:
            report["back_to_back"] = {kind: back_to_back(args.data, checkpoint, kind, 10 ** (args.gain_db / 20))
                                      for kind in ("drum_only", "mix")}
    else:
        print(f"no MDB dev data at {args.data}: skipping real recordings")
    if not args.skip_synthetic:
        class_rows, drum_rows, velocity = held_out_kits(checkpoint)
        for spec, pooled in class_rows.items():
            print(format_table(pooled, title=f"held-out kit {spec} (6 rendered grooves)"))
            print(drum_table(drum_rows[spec], f"per drum, {spec}"))
            if spec in velocity:
                v = velocity[spec]
                print(f"velocity played vs transcribed: Spearman {v['spearman']:.3f} over {v['hits']} hits")
            print()
        report["held_out"] = {"classes": class_rows, "drums": drum_rows, "velocity": velocity}
        if args.band_db is not None:
            class_rows, drum_rows, velocity = held_out_kits(checkpoint, seed=13, band_db=args.band_db)
            for spec, pooled in class_rows.items():
                print(format_table(pooled, title=f"held-out kit {spec}, 6 grooves with a band {args.band_db:+.0f} dB"))
                print(drum_table(drum_rows[spec], f"per drum, {spec} with a band"))
                print()
            report["held_out_band"] = {"classes": class_rows, "drums": drum_rows, "band_db": args.band_db}
    (args.out / "accuracy.json").write_text(json.dumps(report, indent=1, default=float))
    print(f"report: {args.out / 'accuracy.json'}  ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
