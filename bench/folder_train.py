"""Wall time and test accuracy of `drumscribe train --folders` on a generated three-class set (the 5-minute budget).

    python bench/folder_train.py [--source synthetic|kits] [--files-per-class N] [--epochs N]

synthetic: kicks, snares and hi-hats synthesised by offline/oneshots.py (the set the test trains on, larger);
kits: the kick, snare and closed hi-hat one-shots of the training kits (every layer; classes capped at N files).
Runs the real command in a fresh process, so start-up, reading, augmenting and training are all in the time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

BUDGET_S = 300.0


def write_kit_set(folder: Path, files_per_class: int) -> dict:
    import numpy as np
    import soundfile as sf

    from drumscribe.offline.oneshots import ONESHOT_TRAIN_KITS, kit_oneshots
    from drumscribe.realtime import SAMPLE_RATE_HZ

    shots = {"kick": [], "snare": [], "hihat_closed": []}
    for spec in ONESHOT_TRAIN_KITS:
        for shot in kit_oneshots(spec):
            if shot.label in shots:
                shots[shot.label].append(shot)
    rng = np.random.default_rng(0)
    counts = {}
    for label, items in shots.items():
        chosen = rng.permutation(len(items))[:files_per_class]
        (folder / label).mkdir(parents=True)
        for i in chosen:
            audio = items[i].audio[: 2 * SAMPLE_RATE_HZ]
            sf.write(str(folder / label / f"{label}_{i:04d}.wav"), audio, SAMPLE_RATE_HZ, subtype="PCM_16")
        counts[label] = len(chosen)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("synthetic", "kits"), default="synthetic")
    parser.add_argument("--files-per-class", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="copy the checkpoint, report and plots into this folder")
    args = parser.parse_args()

    from drumscribe.offline.oneshots import write_synthetic_set

    with tempfile.TemporaryDirectory(prefix="drumscribe-bench-") as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "model.pt"
        if args.source == "synthetic":
            counts = write_synthetic_set(data, files_per_class=args.files_per_class, seed=0)
        else:
            counts = write_kit_set(data, args.files_per_class)
        print(f"data: {args.source}, " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " files")
        command = [sys.executable, "-m", "drumscribe", "train", "--folders", str(data), "--epochs", str(args.epochs),
                   "-o", str(out)]
        print("command: drumscribe " + " ".join(command[3:]))
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wall_s = time.perf_counter() - t0
        if done.returncode:
            print(f"train --folders failed (exit {done.returncode}): {done.stdout}")
            return 1
        report = json.loads(out.with_suffix(".report.json").read_text())
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in Path(tmp).glob("model*"):
                shutil.copy(path, args.keep / path.name)
    print(f"test accuracy: {report['test_accuracy']:.3f} on {report['split']['test_files']} files "
          f"(best epoch {report['best_epoch']} of {args.epochs}, device {report['device']})")
    print(f"wall time: {wall_s:.0f} s (budget {BUDGET_S:.0f} s) -> "
          f"{'PASS' if wall_s < BUDGET_S and report['test_accuracy'] >= 0.95 else 'FAIL'}")
    print(f"cpu load during the run (1-min average at the end): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
