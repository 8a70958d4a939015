"""`drumscribe train ...`: making the models, a step a command. A thin face over offline/ and models/export.py.

    drumscribe train render --out data/train.npz [--clips-per-kit 40 ...]   labelled training windows
    drumscribe train [fit] --data data/train.npz -o runs/hitcnn.pt [...]     the drum-hit CNN
    drumscribe train tune --model runs/hitcnn.pt --context -o ...          thresholds on annotated songs
    drumscribe train calibrate --model runs/hitcnn.pt --write               velocity offsets
    drumscribe train ensemble A.pt B.pt -o ens.pt                           several networks as one model
    drumscribe train export runs/hitcnn.pt                                  the torch-free ONNX bundle
    drumscribe train folders DATA_DIR -o oneshot.pt                         a one-shot classifier (alias --folders)
    drumscribe train render-oneshots --out DIR                              one-shot sets from the Debian kits
    drumscribe train unmix render|fit                                       the drum mask (an experiment)

`drumscribe train [options]` is `drumscribe train fit [options]`. Every step loads its heavy modules inside its
command, so `--help` stays light. A bad option is argparse's one-line error (exit 2); bad data is one line, exit 1.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from ._common import EXIT_INTERRUPTED, EXIT_OK, DrumscribeError, HelpFormatter, Parser

INSTALL_TRAIN = "pip install 'drumscribe[train]'"
"""What installs torch (and onnx) beside drumscribe: the `train` extra (setup.cfg)."""


TRAIN_EXAMPLES = """examples:
  drumscribe train render --out data/train.npz --clips-per-kit 100
  drumscribe train render --out data/val.npz --held-out --clips-per-kit 50 --seed 7
  drumscribe train --data data/train.npz --val data/val.npz -o runs/hitcnn.pt
  drumscribe train export runs/hitcnn.pt
  drumscribe train folders my_one_shots/ -o runs/oneshot.pt    (or: drumscribe train --folders ...)

docs/training.md walks through every step."""

FIT_EXAMPLES = """examples:
  drumscribe train fit --data data/train.npz --val data/val.npz -o runs/hitcnn.pt
  torchrun --standalone --nproc_per_node 4 -m drumscribe train fit --data data/train.npz -o runs/hitcnn.pt

Under torchrun: gloo on the CPU, nccl on GPUs (process k on cuda:k); --batch-size is split over the processes."""


class _ExamplesHelp(HelpFormatter):
    """The house help formatter, with the epilog (the examples) kept line for line."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def needs_torch(run):
    """`run` (a step's command) refuses at once, in one line, where torch is not installed: the inference install
    (`pip install drumscribe`) has no torch, and the steps that fit or load networks need it."""

    def checked(args) -> int:
        from importlib.util import find_spec

        if find_spec("torch") is None:
            raise DrumscribeError(f"needs PyTorch, which is not installed here; install it with: {INSTALL_TRAIN}")
        return run(args)

    return checked


def add_train_commands(commands) -> None:
    """Register `train` and its steps on the drumscribe command's subparsers."""
    fit = _fit_options()
    # allow_abbrev=False: `train` reads every word of the line for its own (fit's) options first, so an abbreviation
    # there would claim a step's option (`train calibrate --frames` is not fit's --frames-before); `train fit` takes
    # abbreviations
    t = commands.add_parser("train", parents=[fit], allow_abbrev=False, formatter_class=_ExamplesHelp,
                            help="make the models: render, fit, tune, calibrate, export, folders, ...",
                            description="Make the models, a step a command ('drumscribe train STEP --help'). With no "
                                        "STEP, the options are those of 'fit': train the drum-hit CNN on windows from "
                                        "'train render'. 'train folders DATA_DIR' (or 'train --folders DATA_DIR') "
                                        "trains the one-shot sample classifier of 'classify' and 'sort' from one "
                                        "folder of audio files per class. Training needs PyTorch: " + INSTALL_TRAIN
                                        + ".",
                            epilog=TRAIN_EXAMPLES)
    t.set_defaults(run=needs_torch(cmd_fit), parser=t, step=None)
    steps = t.add_subparsers(dest="step", metavar="STEP", parser_class=Parser)

    r = steps.add_parser("render", parents=[_band_options()], help="render labelled training windows from sample kits",
                         description="Render a labelled window dataset from drum sample kits.")
    r.add_argument("--songs", type=float, default=0.0, metavar="P",
                   help="share of clips rendered as part of a song that sounds like a record (offline/songs.py: an "
                        "arranged band, hand percussion labelled apart in the 'perc' column, mixed and mastered) "
                        "(default: %(default)s)")
    _add_render_options(r)
    r.set_defaults(run=cmd_render, parser=r)

    f = steps.add_parser("fit", parents=[fit], help="train the drum-hit CNN on rendered windows",
                         description="Train the drum-hit CNN on rendered windows (drumscribe train render). On "
                                     "several GPUs or processes, run it under torchrun: each process trains on its "
                                     "own shard of the windows, process 0 writes the checkpoint.",
                         formatter_class=_ExamplesHelp, epilog=FIT_EXAMPLES)
    f.set_defaults(run=needs_torch(cmd_fit), parser=f)

    u = steps.add_parser("tune", parents=[_model_option(required=True)],
                         help="tune a checkpoint's thresholds on annotated recordings",
                         description="Tune the per-drum thresholds of a checkpoint on annotated recordings (MDB Drums "
                                     "dev) and rendered validation grooves.")
    _add_tune_options(u)
    u.set_defaults(run=needs_torch(cmd_tune), parser=u)

    from drumscribe.models import DEFAULT_MODEL_PATH

    c = steps.add_parser("calibrate", parents=[_model_option(default=str(DEFAULT_MODEL_PATH))],
                         help="fit the per-drum loudness offsets behind velocity",
                         description="Fit the per-drum loudness offsets behind velocity on grooves rendered on the "
                                     "training kits; --write stores them in the checkpoint and rewrites its bundle.")
    _add_calibrate_options(c)
    c.set_defaults(run=needs_torch(cmd_calibrate), parser=c)

    e = steps.add_parser("ensemble", help="several networks as one model",
                         description="Several hit networks as one offline model: the mean of their probabilities.")
    e.add_argument("models", nargs="+", help="two or more .pt checkpoints")
    e.add_argument("-o", "--out", required=True, help="the ensemble's .pt checkpoint")
    e.add_argument("--member-classes", action="append", default=[], metavar="PT=DRUM,DRUM",
                   help="that member votes on these drums only (repeatable; the others vote on every drum)")
    e.add_argument("--half", action="store_true",
                   help="store the weights as 16-bit floats: half the file; the model is measured as rounded")
    e.set_defaults(run=needs_torch(cmd_ensemble), parser=e)

    x = steps.add_parser("export", help="write the torch-free ONNX bundle beside a checkpoint",
                         description="Write the torch-free bundle (.onnx.npz) beside each checkpoint, checked against "
                                     "torch; run it again after changing a checkpoint.")
    x.add_argument("checkpoints", nargs="+", help=".pt checkpoints to write bundles of")
    x.set_defaults(run=needs_torch(cmd_export), parser=x)

    o = steps.add_parser("folders", help="train a one-shot classifier from class folders (alias: --folders)",
                         description="Train a one-shot sample classifier from DATA_DIR/<class>/ folders of audio "
                                     "files: a stratified 64/16/20 split with a fixed seed, pedalboard augmentation, "
                                     "on CUDA when present. Writes the checkpoint and, beside it, <stem>.report.json, "
                                     "<stem>.curves.png and <stem>.confusion.png.")
    _add_folders_options(o)
    o.set_defaults(run=needs_torch(cmd_folders), parser=o)
    t.add_argument("--folders", nargs=argparse.REMAINDER, action=_FoldersAlias, folders_parser=o,
                   metavar="DATA_DIR ...", help="the same as 'drumscribe train folders DATA_DIR ...': train a one-shot "
                                                  "classifier from class folders (put it first)")

    s = steps.add_parser("render-oneshots", help="render one-shots of the Debian kits as a folder-per-class set",
                         description="Render one-shots of the Debian kits as a folder-per-class set.")
    s.add_argument("--out", required=True, type=Path, help="folder to write OUT/<class>/*.flac into")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--held-out", action="store_true", help="render the held-out kits instead")
    which.add_argument("--synthetic", type=int, metavar="N", help="write N synthetic hits per class (kick snare hihat)")
    s.set_defaults(run=cmd_render_oneshots, parser=s)

    gen = steps.add_parser("generator", help="train the one-shot generator of 'drumscribe generate'",
                           description="Train the drum one-shot generator (a class-conditioned variational "
                                       "autoencoder, offline/generator.py) on DATA_DIR/<class>/ one-shots, e.g. "
                                       "from 'train render-oneshots', and write its torch-free ONNX bundle.")
    gen.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="one folder of .flac/.wav one-shots per class")
    gen.add_argument("-o", "--out", type=Path, default=Path("generator.onnx.npz"),
                     help="the bundle to write (default: generator.onnx.npz)")
    gen.add_argument("--epochs", type=int, default=100, help="passes over the data (default: 100)")
    gen.add_argument("--knobs", type=int, default=4, help="the bottleneck: how many knobs, 2-8 (default: 4)")
    gen.add_argument("--seed", type=int, default=0, help="the random seed of the weights and batches (default: 0)")
    gen.set_defaults(run=needs_torch(cmd_generator), parser=gen)

    m = steps.add_parser("unmix", help="the drum mask: render its clips, fit it (an experiment)",
                         description="The drum mask (an experiment the shipped models do not use): render clips with "
                                     "their drums apart, then fit the mask.")
    mask_steps = m.add_subparsers(dest="unmix_step", metavar="STEP", required=True, parser_class=Parser)
    from drumscribe.offline.render import BAND_DB

    mr = mask_steps.add_parser("render", help="render clips with their drums apart",
                               parents=[_band_options(accompaniment=0.8, lead=0.7, amp=0.5, bleed=0.3,
                                                      quiet_metal=15.0, percussion=0.3, cymbal_play=0.3,
                                                      band_db=(BAND_DB[0], BAND_DB[1] + 3))])
    mr.add_argument("--out", type=Path, default=Path("data/unmix.npz"), metavar="NPZ",
                    help="the clips to write, the input of 'drumscribe train unmix fit' (default: %(default)s)")
    mr.add_argument("--clips-per-kit", type=int, default=24, metavar="N",
                    help="clips rendered on each training kit (default: %(default)s)")
    mr.add_argument("--seed", type=int, default=71, metavar="N",
                    help="seeds the grooves, the band and the effects (default: %(default)s)")
    mr.add_argument("--workers", type=int, default=2, metavar="N",
                    help="processes rendering kits at once (default: %(default)s)")
    mr.set_defaults(run=cmd_unmix_render, parser=mr)
    mf = mask_steps.add_parser("fit", help="train the drum mask",
                               description="Train the drum mask on clips from 'drumscribe train unmix render'.")
    mf.add_argument("--data", type=Path, default=Path("data/unmix.npz"), metavar="NPZ",
                    help="the clips to train on (default: %(default)s)")
    mf.add_argument("-o", "--out", type=Path, default=Path("runs/drummask.pt"), metavar="PT",
                    help="the mask checkpoint to write (default: %(default)s)")
    mf.add_argument("--steps", type=int, default=6000, metavar="N",
                    help="how many optimiser steps to take (default: %(default)s)")
    mf.add_argument("--lr", type=float, default=1e-3, metavar="LR", help="the learning rate (default: %(default)s)")
    mf.add_argument("--channels", type=int, default=96, metavar="C",
                    help="the network's convolution width (default: %(default)s)")
    mf.add_argument("--seed", type=int, default=0, metavar="N",
                    help="seeds the weights and the clips drawn (default: %(default)s)")
    mf.set_defaults(run=needs_torch(cmd_unmix_fit), parser=mf)


# ---------------------------------------------------------------------------------------------------------------
# options more than one step takes (argparse parents)


def _model_option(**kwargs) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    shown = " (default: the shipped offline model, models/weights/hitcnn.pt)" if kwargs.get("default") else ""
    parent.add_argument("--model", metavar="PT", help=f"the model checkpoint (.pt) to work on{shown}", **kwargs)
    return parent


def _band_options(*, accompaniment=0.0, lead=0.0, amp=0.0, bleed=0.0, quiet_metal=0.0, percussion=0.0,
                  cymbal_play=0.0, band_db=None) -> argparse.ArgumentParser:
    """The rendering options of the training audio (render, unmix render), with each one's defaults."""
    from drumscribe.offline.render import BAND_DB

    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--accompaniment", type=float, default=accompaniment, metavar="P",
                        help="share of clips with a band (bass, chords) playing along (default: %(default)s)")
    parent.add_argument("--lead", type=float, default=lead, metavar="P",
                        help="share of the band clips that add a melody and sometimes distorted power chords "
                             "(default: %(default)s)")
    parent.add_argument("--band-db", type=float, nargs=2, default=band_db or BAND_DB, metavar=("LO", "HI"),
                        help=f"two numbers, LO HI: the band's level in dB around the drums' "
                             f"(default: {_shown(band_db or BAND_DB)})")
    parent.add_argument("--quiet-metal", type=float, default=quiet_metal, metavar="DB",
                        help="half the clips pull hi-hat and cymbals down by up to DB decibels (default: %(default)s)")
    parent.add_argument("--bleed", type=float, default=bleed, metavar="P",
                        help="share of clips heard as a miked kit: overheads and snare-wire rattle "
                             "(default: %(default)s)")
    parent.add_argument("--amp", type=float, default=amp, metavar="P",
                        help="share of the power-chord clips whose guitar goes through an amp (default: %(default)s)")
    parent.add_argument("--band-soundfont", action="append", default=[], metavar="SF2",
                        help="the bands play from this General MIDI soundfont, one drawn per clip (repeatable; "
                             "default: FluidR3_GM); never a held-out kit's soundfont")
    parent.add_argument("--percussion", type=float, default=percussion, metavar="P",
                        help="share of clips with a tambourine, shaker, cowbell or the like playing along, "
                             "unlabelled: not a drum to transcribe (default: %(default)s)")
    parent.add_argument("--cymbal-play", type=float, default=cymbal_play, metavar="P",
                        help="share of the crashes choked by hand, and of the strong ride strokes played on the "
                             "bell where the kit has one (default: %(default)s)")
    return parent


# ---------------------------------------------------------------------------------------------------------------
# render


def _add_render_options(parser) -> None:
    from drumscribe.offline.dataset import LabelParams
    from drumscribe.realtime.features import FeatureParams
    from drumscribe.realtime.onsets import OnsetParams

    parser.add_argument("--out", type=Path, default=Path("data/train.npz"), metavar="NPZ",
                        help="the window dataset to write, the input of 'drumscribe train fit' (default: %(default)s)")
    parser.add_argument("--clips-per-kit", type=int, default=40, metavar="N",
                        help="grooves rendered on each kit, about 40 s each (default: %(default)s)")
    parser.add_argument("--held-out", action="store_true",
                        help="render the held-out validation kits instead (for fit's --val)")
    parser.add_argument("--kit", action="append", default=[], metavar="SPEC",
                        help="render only this kit (repeatable; 'hydrogen:<name>' or 'sf2:<path>:<bank>:<preset>'); "
                             "never a held-out kit")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seeds the grooves, the band and the effects (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="processes rendering kits at once (default: %(default)s)")
    parser.add_argument("--mix-kits", action="store_true",
                        help="clips borrow drums from the other kits of the set, retuned, half mixed on buses")
    parser.add_argument("--drum-mask", type=Path, metavar="PT",
                        help="cut the windows from the spectrogram behind this drum mask "
                             "(drumscribe train unmix fit)")
    live = parser.add_argument_group("analysis (defaults: the offline model's; a live model takes shorter ones)")
    live.add_argument("--n-fft", type=int, default=FeatureParams.n_fft, metavar="SAMPLES",
                      help="the spectrogram's window in samples at 48 kHz (default: %(default)s)")
    live.add_argument("--hop", type=int, default=FeatureParams.hop_samples, metavar="SAMPLES",
                      help="samples from one spectrogram frame to the next (default: %(default)s)")
    live.add_argument("--n-mels", type=int, default=FeatureParams.n_mels, metavar="N",
                      help="mel bands of the spectrogram (default: %(default)s)")
    live.add_argument("--onset-threshold", type=float, default=OnsetParams.threshold, metavar="X",
                      help="an onset's mean positive log-mel rise must exceed this (default: %(default)s)")
    live.add_argument("--onset-relative", type=float, default=OnsetParams.relative_threshold,
                      metavar="X",
                      help="... and this multiple of the recent mean rise (default: %(default)s)")
    live.add_argument("--onset-lag", type=int, default=OnsetParams.lag_frames, metavar="FRAMES",
                      help="the rise compares a frame with the one this many frames earlier (default: %(default)s)")
    live.add_argument("--onset-gap", type=int, default=OnsetParams.min_gap_frames, metavar="FRAMES",
                      help="at least this many frames between two onsets (default: %(default)s)")
    live.add_argument("--onset-average", type=int, default=OnsetParams.average_frames, metavar="FRAMES",
                      help="frames in the recent mean of --onset-relative (default: %(default)s)")
    live.add_argument("--rising", action="store_true", help="rising-edge onsets (decided without waiting for the peak)")
    live.add_argument("--onset-band", type=float, nargs=2, metavar=("FROM_MEL", "THRESHOLD"),
                      help="a second flux over the mel bands from FROM_MEL up, peaks above THRESHOLD are onsets too")
    live.add_argument("--label-window-ms", type=float, nargs=2, default=(1e3 * LabelParams.min_delay_s,
                      1e3 * LabelParams.max_delay_s), metavar=("MIN", "MAX"),
                      help="an onset owns the hits that began this long before its frame's end (default: "
                           f"{_shown((1e3 * LabelParams.min_delay_s, 1e3 * LabelParams.max_delay_s))})")
    live.add_argument("--label-target-ms", type=float, help="... and of several onsets, the one nearest this delay")


def cmd_render(args) -> int:
    from drumscribe.offline.dataset import LabelParams, build
    from drumscribe.offline.render import HELD_OUT_KITS, TRAIN_KITS, available
    from drumscribe.realtime.features import FeatureParams
    from drumscribe.realtime.onsets import OnsetParams

    parser = args.parser
    for name in ("accompaniment", "lead", "bleed", "amp", "percussion", "cymbal_play", "songs"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            what = "a share of the crashes and strong ride strokes" if name == "cymbal_play" else "a share of the clips"
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name):g}: {what}, from 0 to 1")
    held_sf2 = {Path(k.split(":")[1]).resolve() for k in HELD_OUT_KITS if k.startswith("sf2:")}
    for soundfont in args.band_soundfont:
        if not Path(soundfont).is_file():
            parser.error(f"--band-soundfont '{soundfont}': no such file (an .sf2 General MIDI soundfont)")
        if Path(soundfont).resolve() in held_sf2:
            parser.error(f"--band-soundfont '{soundfont}': the soundfont of a held-out kit, never rendered for "
                         f"training")
    fp = FeatureParams(n_fft=args.n_fft, hop_samples=args.hop, n_mels=args.n_mels)
    band_from, band_threshold = args.onset_band or (0, OnsetParams.band_threshold)
    if args.onset_band and (band_from != int(band_from) or not 0 < band_from < args.n_mels):
        parser.error(f"--onset-band {band_from:g}: FROM_MEL must be a whole mel band between 1 and {args.n_mels - 1}")
    op = OnsetParams(lag_frames=args.onset_lag, threshold=args.onset_threshold, relative_threshold=args.onset_relative,
                     min_gap_frames=args.onset_gap, average_frames=args.onset_average, rising=args.rising,
                     band_from_mel=int(band_from), band_threshold=band_threshold)
    lp = LabelParams(args.label_window_ms[0] / 1e3, args.label_window_ms[1] / 1e3,
                     None if args.label_target_ms is None else args.label_target_ms / 1e3)
    if args.kit:
        held = sorted(set(args.kit) & set(HELD_OUT_KITS))
        if held or args.held_out:
            parser.error(f"kit '{held[0] if held else args.kit[0]}': --kit renders training data, never a held-out kit")
        missing = [k for k in args.kit if not available(k)]
        if missing:
            parser.error(f"kit '{missing[0]}' is not installed")
        kits = list(args.kit)
    else:
        kits = [k for k in (HELD_OUT_KITS if args.held_out else TRAIN_KITS) if available(k)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t = time.time()
    parts = build(kits, args.clips_per_kit, args.out, seed=args.seed, workers=args.workers,
                  accompaniment_prob=args.accompaniment, mix_kits=args.mix_kits, quiet_metal_db=args.quiet_metal,
                  lead_prob=args.lead, band_db=tuple(args.band_db), bleed_prob=args.bleed, amp_prob=args.amp,
                  band_soundfonts=tuple(args.band_soundfont), percussion_prob=args.percussion,
                  cymbal_play=args.cymbal_play, drum_mask=args.drum_mask or "", fp=fp, op=op, lp=lp,
                  song_prob=args.songs)
    n = sum(len(p["y"]) for p in parts)
    hours = sum(p["seconds"] for p in parts) / 3600
    missed, hits = sum(int(p["missed"]) for p in parts), sum(int(p["hits"]) for p in parts)
    print(f"wrote {args.out}: {n} windows from {hours:.2f} h of audio, {len(kits)} kits, {missed}/{hits} hits without "
          f"an onset ({missed / max(hits, 1):.1%}), {time.time() - t:.0f} s")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# fit


FIT_OPTIONS = {  # TrainConfig field -> (option group, metavar, help without its default)
    "data": ("data", "NPZ", "the window dataset to train on, from 'drumscribe train render' (several: comma-separated, "
                            "rendered with the same spectrogram settings)"),
    "val": ("data", "NPZ", "windows rendered from the held-out kits ('drumscribe train render --held-out'): scored "
                           "after each epoch, and the per-drum thresholds are tuned on them; left out when the file "
                           "does not exist"),
    "threshold_kit": ("data", "KIT", "the held-out kit of --val whose windows tune the per-drum thresholds"),
    "out": ("data", "PT", "the checkpoint to write, after every epoch, whole or not at all"),
    "frames_before": ("network", "N", "spectrogram frames the network sees before the onset frame"),
    "frames_after": ("network", "N", "frames it sees after the onset frame, its look-ahead (5 ms each; a live model "
                                     "takes fewer)"),
    "channels": ("network", "C", "convolution widths, one per stage"),
    "hidden": ("network", "N", "the width of the fully connected layer"),
    "contrast_channel": ("network", None, "the network also sees each band's rise over its quietest frame"),
    "init": ("network", "PT", "start from this checkpoint's weights (fine-tuning); the new network may be wider or "
                              "look further ahead"),
    "epochs": ("optimisation", "N", "passes over the training windows"),
    "batch_size": ("optimisation", "N", "windows a step; under torchrun they are split evenly over the processes"),
    "lr": ("optimisation", "LR", "the peak learning rate, reached after a short warm-up and decayed on a cosine"),
    "weight_decay": ("optimisation", "W", "AdamW's weight decay"),
    "focal_gamma": ("optimisation", "G", "above 0: focal loss, each label's cross-entropy weighted by "
                                         "(1 - p_true) ** G, so that the labels the network misses count more"),
    "jitter_frames": ("augmentation", "0|1", "1: 30%% of the windows move one frame early or late, as the onset "
                                             "detector's own jitter; 0: none"),
    "level_jitter": ("augmentation", "X", "each window's log-mel features move up or down by up to X (0.4: about "
                                          "4 dB)"),
    "mix_rate": ("augmentation", "P", "the share of windows that get another window of the batch added, its drums "
                                      "joining the labels (two hits at one onset)"),
    "mix_db": ("augmentation", "DB", "two numbers, LOW HIGH: the added window's level in dB, drawn from this range"),
    "lowpass_rate": ("augmentation", "P", "the share of windows with everything above a cut-off removed, as in mp3s "
                                          "or audio once sampled at 22 kHz"),
    "lowpass_hz": ("augmentation", "HZ", "two numbers, LOW HIGH: the cut-off, drawn log-uniformly from this range"),
    "eq_rate": ("augmentation", "P", "the share of windows heard through a random EQ (a tilt and one bell)"),
    "eq_db": ("augmentation", "DB", "the EQ's bell gain is drawn from +-DB, its tilt from +-DB/2 end to end"),
    "shift_rate": ("augmentation", "P", "the share of windows whose bands above --shift-from-hz move up or down "
                                        "(brighter or darker hats and cymbals, as another kit's)"),
    "shift_bins": ("augmentation", "N", "... by 1 to N mel bands"),
    "shift_from_hz": ("augmentation", "HZ", "the bands below this frequency stay where they are"),
    "seed": ("run", "N", "seeds the weights, the order of the windows and the augmentation"),
    "device": ("run", "DEVICE", "auto (CUDA when present), cpu or cuda; under torchrun, process k takes cuda:k"),
    "threads": ("run", "N", "CPU threads for torch (a process's, under torchrun)"),
}
"""The help of `train fit`'s options, the TrainConfig fields (offline/train.py), grouped as --help shows them."""

FIT_GROUPS = {"data": "data and output", "network": "the network", "optimisation": "optimisation",
              "augmentation": "augmentation of the training windows (drawn anew each time a window is used)",
              "run": "the run"}


def _shown(default) -> str:
    """A default as --help shows it: tuples as the command line takes them (16 32 64)."""
    if isinstance(default, (tuple, list)):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    return f"{default:g}" if isinstance(default, float) else str(default)


def _fit_options() -> argparse.ArgumentParser:
    """The options of `train fit` (and of `train` alone): one per TrainConfig field, and --config."""
    from dataclasses import fields

    from drumscribe.offline.train import TrainConfig

    parser = argparse.ArgumentParser(add_help=False)
    groups = {key: parser.add_argument_group(title) for key, title in FIT_GROUPS.items()}
    for f in fields(TrainConfig):
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        group, metavar, text = FIT_OPTIONS[f.name]
        add = groups[group].add_argument
        if f.name == "out":
            add("-o", flag, default=default, metavar=metavar, help=f"{text} (default: a new "
                "runs/hitcnn-<date>-<time>.pt; the shipped model is never the default)")
        elif isinstance(default, tuple):
            add(flag, type=int, nargs="+", default=default, metavar=metavar,
                help=f"{text} (default: {_shown(default)})")
        elif isinstance(default, bool):
            add(flag, action="store_true", help=f"{text} (default: off)")
        elif f.name == "init":
            add(flag, default=default, metavar=metavar, help=f"{text} (default: none, from scratch)")
        else:
            add(flag, type=type(default), default=default, metavar=metavar, help=f"{text} (default: {_shown(default)})")
    groups["data"].add_argument("--config", type=Path, metavar="JSON",
                                help="a JSON file of these settings by field name ({\"epochs\": 8, ...}); options "
                                     "given on the command line win")
    return parser


def _given(argv: list) -> set:
    """The fit options the command line itself sets (abbreviated or not), as destinations."""
    parser = _fit_options()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_known_args(argv)[0]))


def cmd_fit(args) -> int:
    """Bad settings are argparse's one-line error (exit 2); bad data, a bad --config file or an output that cannot
    be written is one line and exit 1, all before any work."""
    from dataclasses import fields

    try:
        from drumscribe.offline import train
    except ImportError as exc:
        raise DrumscribeError(f"the trainer cannot be loaded ({' '.join(str(exc).split())})") from None
    parser = args.parser
    values = {f.name: getattr(args, f.name) for f in fields(train.TrainConfig)}
    try:
        if args.config:
            tail = args.argv[1:]  # after 'train'
            given = _given(tail[1:] if tail[:1] == ["fit"] else tail)
            values.update({k: v for k, v in train.read_config(args.config).items() if k not in given})
        cfg = train.TrainConfig(**values)
        train.check_ranges(parser, cfg)
        if cfg.init:  # refused now, in one line, rather than after the data has loaded
            from drumscribe.models.cnn import CheckpointError, HitCNN, HitCNNConfig, load_checkpoint

            try:
                init = load_checkpoint(cfg.init).model
                train.load_init(HitCNN(HitCNNConfig(n_mels=init.config.n_mels, frames_before=cfg.frames_before,
                                                    frames_after=cfg.frames_after, n_classes=init.config.n_classes,
                                                    channels=tuple(cfg.channels), hidden=cfg.hidden,
                                                    contrast_channel=cfg.contrast_channel)), init)
            except (CheckpointError, ValueError) as exc:
                parser.error(f"--init {cfg.init}: {str(exc).removeprefix('--init: ')}")
        train.check_data(cfg)
        if cfg.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise train.TrainError("--device cuda: no CUDA device is available here; use --device auto or cpu")
        if cfg.out:
            train.check_out(cfg.out)
        else:
            out = train.default_out()
            out.parent.mkdir(parents=True, exist_ok=True)
            cfg.out = str(out)
    except train.TrainError as exc:
        raise DrumscribeError(str(exc)) from None
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    before = Path(cfg.out).stat().st_mtime_ns if Path(cfg.out).exists() else None
    try:
        train.train(cfg)
    except train.TrainError as exc:
        raise DrumscribeError(str(exc)) from None
    except KeyboardInterrupt:
        saved = Path(cfg.out).exists() and Path(cfg.out).stat().st_mtime_ns != before
        raise DrumscribeError("interrupted; " + (f"'{cfg.out}' holds the last finished epoch's checkpoint" if saved
                                                 else "no checkpoint was written"), EXIT_INTERRUPTED) from None
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# tune


def _add_tune_options(parser) -> None:
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mdb-dev"),
                        help="the MDB Drums dev recordings (drum_only/, mix/, class_pp/) (default: %(default)s, "
                             "from the current folder)")
    parser.add_argument("--kinds", default="drum_only,mix", metavar="KINDS",
                        help="which recordings to tune on, comma-separated (default: %(default)s)")
    parser.add_argument("--kit", action="append", default=[], metavar="SPEC",
                        help="also tune on grooves rendered on this validation kit (e.g. the held-out "
                             "sf2:/usr/share/sounds/sf2/TimGM6mb.sf2:128:0; never the test kit)")
    parser.add_argument("--grooves", type=int, default=6, metavar="N",
                        help="grooves rendered on each --kit (default: %(default)s)")
    parser.add_argument("--onset", action="append", default=[], metavar="NAME=VALUE",
                        help="set one of the checkpoint's onset-detector settings first (e.g. relative_threshold=0.5)")
    decoding = parser.add_mutually_exclusive_group()
    decoding.add_argument("--context", dest="context", action="store_true", default=None,
                          help="tune the thresholds of the in-song context decoding (realtime.decoder."
                               "ContextParams; its default settings where the checkpoint has none), which files use")
    decoding.add_argument("--no-context", dest="context", action="store_false",
                          help="tune the thresholds of each onset decided alone, which live input uses")
    parser.add_argument("--stem-set", metavar="MASK_PT",
                        help="with --context: tune a second set, for drum stems (ContextParams.stem_thresholds), "
                             "with the context thresholds held; each song's drum share is measured with this drum "
                             "mask (drumscribe train unmix fit), which the checkpoint then carries")
    parser.add_argument("--gate", type=float, metavar="P",
                        help="with --context: set the onset gate first (realtime.decoder.ContextParams.gate; an "
                             "ensemble only), which the checkpoint then carries; 0 turns it off")
    parser.add_argument("--split-contrast", type=float, metavar="C",
                        help="with --context: set ContextParams.split_contrast first (a song's split is used only "
                             "where the onsets above it sound apart from the other candidates by this much; the "
                             "thresholds are tuned without the check), which the checkpoint then carries; 0: off")
    parser.add_argument("--split-window", type=float, nargs=2, metavar=("BACK_S", "AHEAD_S"),
                        help="with --context: set the song-level split's window first (ContextParams.split_behind_s, "
                             "split_ahead_s), which the checkpoint then carries")
    parser.add_argument("--floors", action="store_true",
                        help="with --context: tune song-level thresholds too (ContextParams.floors: per class group, "
                             "a floor down to which a song's own split may lower the threshold)")
    parser.add_argument("-o", "--out", help="write the checkpoint with the tuned thresholds here")


def cmd_tune(args) -> int:
    from drumscribe.offline.tune_thresholds import tune_checkpoint

    return tune_checkpoint(args, args.parser)


# ---------------------------------------------------------------------------------------------------------------
# calibrate


def _add_calibrate_options(parser) -> None:
    parser.add_argument("--grooves", type=int, default=6, metavar="N",
                        help="grooves rendered on each kit (default: %(default)s)")
    parser.add_argument("--kit", action="append", metavar="SPEC", help="a training kit to fit on (repeatable)")
    parser.add_argument("--frames", type=int, help="frames from the onset frame the level is measured over")
    parser.add_argument("--reduce", choices=("max", "sum"), help="the loudest frame, or the energy of them all")
    parser.add_argument("--validate", metavar="SPEC", help="also print the Spearman on grooves of this kit")
    parser.add_argument("--write", action="store_true", help="store the measure and offsets in the checkpoint")


def cmd_calibrate(args) -> int:
    from drumscribe.offline.calibrate_velocity import calibrate

    return calibrate(args, args.parser)


# ---------------------------------------------------------------------------------------------------------------
# ensemble, export


def cmd_ensemble(args) -> int:
    parser = args.parser
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if len(args.models) < 2:
        parser.error(f"an ensemble needs two or more models, got {len(args.models)}")
    member_classes = {}
    for spec in args.member_classes:
        path, _, drums = spec.partition("=")
        if not drums:
            parser.error(f"--member-classes '{spec}': expected PT=DRUM,DRUM (a member, then the drums it votes on)")
        member_classes[path] = [d.strip() for d in drums.split(",") if d.strip()]

    from drumscribe.models.cnn import CheckpointError, save_checkpoint
    from drumscribe.offline.ensemble import ensemble

    if not Path(args.out).resolve().parent.is_dir():
        parser.exit(2, f"{parser.prog}: error: cannot write '{args.out}': no folder {Path(args.out).parent}\n")
    try:
        ckpt = ensemble(args.models, member_classes, half=args.half)
    except (CheckpointError, ValueError) as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    try:
        save_checkpoint(args.out, ckpt)
    except (OSError, RuntimeError) as e:  # torch.save raises RuntimeError for some unwritable paths
        parser.exit(2, f"{parser.prog}: error: cannot write '{args.out}': {getattr(e, 'strerror', None) or e}\n")
    print(f"wrote {args.out}: {len(args.models)} networks, "
          f"{sum(p.numel() for p in ckpt.model.parameters()) / 1e3:.0f}k parameters")
    return EXIT_OK


def cmd_export(args) -> int:
    from drumscribe.models.export import write_bundle
    from drumscribe.models.runtime import CheckpointError

    for path in args.checkpoints:
        try:
            out = write_bundle(path)
        except (CheckpointError, OSError) as exc:  # a bad checkpoint, or a bundle that cannot be written
            raise DrumscribeError(" ".join(str(exc).split())) from None
        print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} KB)")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# one-shots: folders, render-oneshots


FOLDERS_OPTIONS = {  # FolderTrainConfig field (offline/folder_train.py) -> (metavar, help without its default)
    "folders": ("DATA_DIR", "the data: one sub-folder of audio files per class (DATA_DIR/kick/*.wav, "
                            "DATA_DIR/snare/..., any names)"),
    "out": ("PT", "the checkpoint to write; its report and plots go beside it"),
    "epochs": ("N", "passes over the training images"),
    "batch_size": ("N", "images a step"),
    "lr": ("LR", "the peak learning rate, reached after a short warm-up and decayed on a cosine"),
    "weight_decay": ("W", "AdamW's weight decay"),
    "label_smoothing": ("X", "the share of each label spread over the other classes"),
    "augment_copies": ("N", "pedalboard-augmented copies of each training file (0: the files only)"),
    "time_shift_frames": ("N", "images move in time by up to N frames, as an onset found a little early or late"),
    "freq_mask_bands": ("N", "half the training images have a random band of up to N mels masked (0: none)"),
    "channels": ("C", "convolution widths, one per stage"),
    "hidden": ("N", "the width of the fully connected layer"),
    "dropout": ("P", "dropout before the last layer"),
    "seed": ("N", "fixes the split, the augmentation and the initial weights"),
    "members": ("N", "networks trained from seeds seed, seed+1, ...; the checkpoint averages their probabilities"),
    "device": ("DEVICE", "auto (CUDA when present), cpu or cuda"),
    "threads": ("N", "CPU threads for torch"),
    "workers": ("N", "processes that read and augment the files"),
    "cache": ("NPZ", "keep the decoded and augmented images in this file between runs on the same files and "
                     "settings"),
}
"""The help of `train folders`' options, the FolderTrainConfig fields."""


def _add_folders_options(parser) -> None:
    from dataclasses import fields

    from drumscribe.offline.folder_train import FolderTrainConfig

    for f in fields(FolderTrainConfig):
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        metavar, text = FOLDERS_OPTIONS[f.name]
        if f.name == "folders":
            parser.add_argument("folders", metavar=metavar, help=text)
        elif f.name == "out":
            parser.add_argument("-o", flag, default=default, metavar=metavar, help=f"{text} (default: {default})")
        elif f.name == "device":
            parser.add_argument(flag, default=default, choices=("auto", "cpu", "cuda"),
                                help=f"{text} (default: {default})")
        elif f.name == "cache":
            parser.add_argument(flag, default=default, metavar=metavar, help=f"{text} (default: none)")
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=int, nargs="+", default=default, metavar=metavar,
                                help=f"{text} (default: {_shown(default)})")
        else:
            parser.add_argument(flag, type=type(default), default=default, metavar=metavar,
                                help=f"{text} (default: {_shown(default)})")


class _FoldersAlias(argparse.Action):
    """`drumscribe train --folders DATA_DIR [options]` is `drumscribe train folders DATA_DIR [options]`: the rest of
    the command line goes to the `folders` step's parser."""

    def __init__(self, *args, folders_parser, **kwargs):
        super().__init__(*args, **kwargs)
        self.folders_parser = folders_parser

    def __call__(self, parser, namespace, values, option_string=None):
        parsed = self.folders_parser.parse_args(values)
        for name, value in vars(parsed).items():
            setattr(namespace, name, value)


def cmd_folders(args) -> int:
    """A bad folder or option is one line on stderr, exit 1."""
    from dataclasses import fields

    from drumscribe.offline.folder_train import FolderTrainConfig, FolderTrainError, output_paths, train

    cfg = FolderTrainConfig(**{f.name: getattr(args, f.name) for f in fields(FolderTrainConfig)})
    for name in ("epochs", "batch_size", "threads", "workers", "members"):
        if getattr(cfg, name) < 1:
            raise DrumscribeError(f"--{name.replace('_', '-')} {getattr(cfg, name)} must be >= 1")
    if cfg.augment_copies < 0:
        raise DrumscribeError(f"--augment-copies {cfg.augment_copies} must be >= 0")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        report = train(cfg)
    except FolderTrainError as exc:
        raise DrumscribeError(str(exc)) from None
    except KeyboardInterrupt:
        raise DrumscribeError("interrupted; nothing was written", EXIT_INTERRUPTED) from None
    paths = output_paths(cfg.out)
    if len(report["members"]) > 1:
        each = ", ".join(f"{m['validation_accuracy']:.3f} (epoch {m['best_epoch']})" for m in report["members"])
        print(f"members' validation accuracy: {each}")
        picked = f"{len(report['members'])} members"
    else:
        picked = f"best epoch {report['best_epoch']}"
    print(f"test accuracy {report['test_accuracy']:.3f} on {report['split']['test_files']} files "
          f"({picked}, validation {report['validation_accuracy']:.3f}, "
          f"{report['train_seconds']:.0f} s on {report['device']})")
    print(f"wrote '{paths['checkpoint']}', '{paths['report']}', '{paths['curves']}', '{paths['confusion']}'")
    return EXIT_OK


def cmd_render_oneshots(args) -> int:
    from drumscribe.offline.oneshots import (
        ONESHOT_HELD_OUT_KITS,
        ONESHOT_TRAIN_KITS,
        export_folders,
        write_synthetic_set,
    )

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        if args.synthetic:
            counts = write_synthetic_set(args.out, files_per_class=args.synthetic)
        else:
            counts = (export_folders(ONESHOT_HELD_OUT_KITS, args.out) if args.held_out
                      else export_folders(ONESHOT_TRAIN_KITS, args.out, held_out=ONESHOT_HELD_OUT_KITS))
    except (ValueError, OSError) as exc:  # a kit not installed, an --out that cannot be written
        raise DrumscribeError(" ".join(str(exc).split())) from None
    print(f"wrote {sum(counts.values())} files to {args.out}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return EXIT_OK


def cmd_generator(args) -> int:
    from drumscribe.offline.generator import GeneratorConfig, train_generator

    if not 2 <= args.knobs <= 8:
        raise DrumscribeError(f"--knobs {args.knobs}: expected 2 to 8")
    if args.epochs < 1:
        raise DrumscribeError(f"--epochs {args.epochs}: expected at least 1")
    if not args.data_dir.is_dir():
        raise DrumscribeError(f"DATA_DIR '{args.data_dir}' is not a folder")
    if args.out.is_dir():
        raise DrumscribeError(f"-o '{args.out}' is a folder; expected a file path")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    config = GeneratorConfig(epochs=args.epochs, n_knobs=args.knobs, seed=args.seed)
    try:
        record = train_generator(args.data_dir, args.out, config, progress=lambda row: print(
            f"epoch {row['epoch']}: L1 {row['l1']:.4f}, KL {row['kl']:.2f} ({row['seconds']:.0f} s)", flush=True))
    except (ValueError, OSError) as exc:
        raise DrumscribeError(" ".join(str(exc).split())) from None
    print(f"wrote '{args.out}' ({record['examples']} one-shots, {record['train_seconds']:.0f} s)")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# unmix (the drum mask, an experiment)


def cmd_unmix_render(args) -> int:
    from drumscribe.offline.render import TRAIN_KITS, available
    from drumscribe.offline.unmix import render
    from drumscribe.realtime.features import FeatureParams

    logging.basicConfig(format="%(message)s")
    kits = [k for k in TRAIN_KITS if available(k)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    out = render(kits, args.clips_per_kit, args.out, seed=args.seed, workers=args.workers,
                 accompaniment_prob=args.accompaniment, lead_prob=args.lead, amp_prob=args.amp,
                 band_db=tuple(args.band_db), bleed_prob=args.bleed, quiet_metal_db=args.quiet_metal,
                 percussion_prob=args.percussion, cymbal_play=args.cymbal_play,
                 band_soundfonts=tuple(args.band_soundfont))
    fp = FeatureParams()
    print(f"{args.out}: {len(out['lengths'])} clips, "
          f"{out['lengths'].sum() * fp.hop_samples / fp.sample_rate_hz / 3600:.2f} h, "
          f"{len(kits)} kits, {time.time() - t0:.0f} s")
    return EXIT_OK


def cmd_unmix_fit(args) -> int:
    import json

    from drumscribe.offline.unmix import train

    logging.basicConfig(format="%(message)s")
    info = train(args.data, args.out, steps=args.steps, lr=args.lr, channels=args.channels, seed=args.seed)
    print(f"{args.out}: {json.dumps(info)}")
    return EXIT_OK

