"""Accuracy of the one-shot classifier on kits it never trained on (offline/oneshots.py ONESHOT_HELD_OUT_KITS:
ColomboAcousticDrumkit and every GM drum set of TimGM6mb), rendered exactly as the training kits are.

    python bench/oneshot_accuracy.py [--model PATH] [--augmented N]

Prints the two acceptance figures and the confusion matrix:
  kick vs snare   the kick and snare samples, each called by the larger of its kick and snare probabilities
  six classes     kick, snare, hi-hat (closed and open together), tom, crash, ride: the largest of those six
                  probabilities (hi-hat = closed + open), as a six-class classifier would answer
and, for the whole story, the accuracy over all ten classes (argmax over every class). Renders that are the same
sound (TimGM6mb's drum sets share samples; its velocities mostly change only the level) are counted once.
--augmented N adds N pedalboard-augmented copies of each held-out sound (fixed seed) as a harder second test.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

SIX = ("kick", "snare", "hihat", "tom", "crash", "ride")


def merged(probs: np.ndarray, labels: list, classes) -> np.ndarray:
    """Probabilities of `classes` (hihat = hihat_closed + hihat_open) from the model's ten."""
    index = {label: i for i, label in enumerate(labels)}
    cols = []
    for c in classes:
        members = ["hihat_closed", "hihat_open"] if c == "hihat" else [c]
        cols.append(probs[:, [index[m] for m in members]].sum(axis=1))
    return np.stack(cols, axis=1)


def subset_accuracy(probs, truth, labels, classes):
    """(accuracy, n, confusion) over the samples whose true class is one of `classes`, answered among them."""
    true = np.array(["hihat" if t.startswith("hihat") and "hihat" in classes else t for t in truth])
    sel = np.isin(true, classes)
    pred = np.array(classes)[merged(probs[sel], labels, classes).argmax(axis=1)]
    confusion = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(true[sel], pred):
        confusion[classes.index(t), classes.index(p)] += 1
    return float((pred == true[sel]).mean()) if sel.any() else float("nan"), int(sel.sum()), confusion


def format_confusion(confusion, classes) -> str:
    width = max(7, max(len(c) for c in classes) + 1)
    lines = [" " * width + "".join(f"{c[:7]:>8}" for c in classes) + "   recall"]
    for i, c in enumerate(classes):
        row = confusion[i]
        recall = row[i] / row.sum() if row.sum() else float("nan")
        lines.append(f"{c:<{width}}" + "".join(f"{v:>8}" for v in row) + f"   {recall:.3f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="one-shot checkpoint (default: the shipped model)")
    parser.add_argument("--augmented", type=int, default=0, metavar="N", help="also score N augmented copies per sound")
    parser.add_argument("--misses", action="store_true", help="list every sound the six-class answer gets wrong")
    parser.add_argument("--all-sets", action="store_true",
                        help="count a sound that several drum sets of TimGM6mb share once per set")
    args = parser.parse_args()

    import torch

    from drumscribe.models.oneshot import DEFAULT_ONESHOT_MODEL_PATH
    from drumscribe.offline.oneshots import ONESHOT_HELD_OUT_KITS, augment_oneshot, kit_oneshots
    from drumscribe.offline.sorting import SampleClassifier

    torch.set_num_threads(1)
    model_path = args.model or DEFAULT_ONESHOT_MODEL_PATH
    classifier = SampleClassifier.from_file(model_path)
    labels = classifier.labels
    t0 = time.time()
    shots, seen = [], {}
    for spec in ONESHOT_HELD_OUT_KITS:
        shots += kit_oneshots(spec, seen=None if args.all_sets else seen)
    truth = np.array([s.label for s in shots])
    kits = np.array([s.kit for s in shots])
    probs = np.stack([classifier.classify_audio(s.audio).probabilities_array(labels) for s in shots])
    print(f"model: {model_path}")
    n_kits = len(set(kits))
    print(f"held-out one-shots: {len(shots)} sounds ({'per drum set' if args.all_sets else 'distinct sounds'}) "
          f"from {n_kits} kits never trained on; {time.time() - t0:.0f} s")
    print()
    report(probs, truth, kits, labels)
    if args.misses:
        print()
        print("six-class misses (true -> answered; the three likeliest of all classes):")
        six = list(SIX)
        answers = np.array(six)[merged(probs, labels, six).argmax(axis=1)]
        for shot, p, answer in zip(shots, probs, answers):
            true = "hihat" if shot.label.startswith("hihat") else shot.label
            if true in six and answer != true:
                top = ", ".join(f"{labels[i]} {p[i]:.2f}" for i in np.argsort(-p)[:3])
                print(f"  {shot.kit:<24} {shot.name:<28} {shot.label:<12} -> {answer:<6} ({top})")

    if args.augmented:
        rng = np.random.default_rng(1234)
        aug_probs, aug_truth, aug_kits = [], [], []
        for s in shots:
            for _ in range(args.augmented):
                result = classifier.classify_audio(augment_oneshot(s.audio, rng))
                if result.label is not None:
                    aug_probs.append(result.probabilities_array(labels))
                    aug_truth.append(s.label)
                    aug_kits.append(s.kit)
        print()
        print(f"--- the same sounds, {args.augmented} augmented copies each (pitch, EQ, reverb, compression, ...): "
              f"{len(aug_truth)} samples")
        report(np.stack(aug_probs), np.array(aug_truth), np.array(aug_kits), labels)
    return 0


def report(probs, truth, kits, labels) -> None:
    acc2, n2, _ = subset_accuracy(probs, truth, labels, ["kick", "snare"])
    acc6, n6, conf6 = subset_accuracy(probs, truth, labels, list(SIX))
    acc10, n10, conf10 = subset_accuracy(probs, truth, labels, list(labels))
    print(f"kick vs snare:                          {acc2:.3f}  ({n2} samples)   target >= 0.99")
    print(f"six classes (kick snare hihat tom crash ride): {acc6:.3f}  ({n6} samples)   target >= 0.93")
    print(f"all {len(labels)} classes:                          {acc10:.3f}  ({n10} samples)")
    for kit in sorted(set(kits)):
        sel = kits == kit
        a2 = subset_accuracy(probs[sel], truth[sel], labels, ["kick", "snare"])
        a6 = subset_accuracy(probs[sel], truth[sel], labels, list(SIX))
        a10 = subset_accuracy(probs[sel], truth[sel], labels, list(labels))
        print(f"    {kit:<26} kick/snare {a2[0]:.3f} ({a2[1]:>3})  six {a6[0]:.3f} ({a6[1]:>3})  "
              f"all {a10[0]:.3f} ({a10[1]:>3})")
    print()
    print("six classes, confusion (rows true, columns predicted):")
    print(format_confusion(conf6, list(SIX)))
    print()
    print(f"all {len(labels)} classes, confusion:")
    print(format_confusion(conf10, list(labels)))


if __name__ == "__main__":
    raise SystemExit(main())
