"""The `drumscribe` command: a thin face over realtime/, models/ and offline/. It parses, calls and prints.

Heavy modules (numpy, torch, matplotlib) are imported inside the commands, so `drumscribe --help` is instant.
A user never sees a traceback for a bad file, map, model or path: one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from ._common import (  # noqa: F401 (the codes)
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SILENT,
    EXIT_USAGE,
    MAX_NOTE_LENGTH_MS,
    DrumscribeError,
    Parser,
    check_block_size,
    check_outputs,
    file_threads,
    load_drum_map,
    load_model,
    one_line,
    threading_is_main,
)

SILENCE_PEAK_DBFS = -80.0
"""Audio whose peak lies below this is silent: no drum is transcribed from it."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("drumscribe")
    except Exception:  # not installed: running from a checkout
        from . import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="drumscribe", description="Drum audio in, General-MIDI drum notes out.",
                     epilog="exit codes: 0 done, 1 bad input (nothing written), 2 bad command line, "
                            "3 silent input (empty outputs written), 130 interrupted (outputs hold the hits so far)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    from . import _common  # the options more than one command takes

    t = commands.add_parser("transcribe", help="transcribe an audio file to a drum .mid",
                            description="Transcribe the drums of an audio file (mp3, wav, flac, ogg; any rate "
                                        "8-192 kHz; any number of channels) to a type-1 MIDI file on channel 10.")
    t.add_argument("audio", nargs="+", metavar="IN",
                   help="audio files or folders (a folder is searched, subfolders too, for audio); several inputs "
                        "or a folder make a batch")
    t.add_argument("-o", "--output", metavar="MID|OUTDIR",
                   help="one file: the .mid to write (default: the input's name with .mid, beside it); a batch: the "
                        "folder for OUTDIR/<path relative to its IN>.mid (default: beside each input). In a batch "
                        "--events, --plot, --audition and --score take a suffix (.csv, .png, .flac, .musicxml), "
                        "written beside each .mid; one file takes a suffix too")
    _common.add_events_option(t)
    t.add_argument("--plot", metavar="PNG", help="also draw the hits over the waveform (png, svg or pdf)")
    t.add_argument("--score", metavar="MUSICXML",
                   help="also write a drum score (.musicxml, .xml or .mxl) at the tempo and downbeat of the .mid")
    _common.add_drum_map_option(t)
    _common.add_model_option(t, default="the shipped model; with --live the shipped live model")
    t.add_argument("--profile", metavar="JSON", help="a kit profile from 'drumscribe calibrate' (default: none)")
    _common.add_block_size_option(t)
    _common.add_note_length_option(t)
    t.add_argument("--tempo", type=float, default=None, metavar="BPM",
                   help=f"the tempo of the .mid, {MIN_TEMPO_ARG_BPM:g}-{MAX_TEMPO_ARG_BPM:g} BPM (default: estimated "
                        f"from the hits); bar 1 still starts on the estimated first downbeat")
    t.add_argument("--tempo-map", action="store_true",
                   help="let the tempo follow the song bar by bar where it drifts (default: one tempo)")
    t.add_argument("--quantize", metavar="GRID", default=None,
                   help="snap the notes to a grid: 1/4, 1/8, 1/16, 1/32, or triplets 1/4t, 1/8t, 1/16t, 1/32t; the "
                        "notes as played go to a second track, 'drums (as played)' (default: no quantizing)")
    t.add_argument("--quantize-strength", type=float, default=1.0, metavar="0-1",
                   help="how far --quantize moves each note toward the grid, 0 not at all, 1 onto it (default: 1)")
    t.add_argument("--swing", type=float, default=0.0, metavar="0-1",
                   help="with --quantize on a straight grid: delay every second grid line, 0 straight, 1 a triplet "
                        "feel (2:1) (default: 0)")
    _common.add_no_progress_option(t)
    t.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="cores to use: N worker processes of one thread each, each loading the model once (fewer "
                        "workers with more threads when there are fewer files) (default: the CPU count)")
    t.add_argument("--force", action="store_true",
                   help="a batch: transcribe every file again, also those whose outputs are complete and newer "
                        "than the input (skipped by default, so an interrupted batch resumes)")
    t.add_argument("--ray", metavar="ADDRESS",
                   help="a batch: run it as Ray tasks on a cluster (auto, 127.0.0.1:6379, ray://host:10001), one "
                        "model per worker; inputs and outputs on storage the cluster shares (pip install "
                        "'drumscribe[cluster]')")
    t.add_argument("--no-context", action="store_true",
                   help="decide each onset alone, not with the alike onsets around it in the song (the in-song "
                        "context decoding); hits then leave the engine within about 2 s of audio instead of 10")
    t.add_argument("--live", action="store_true",
                   help="run the file through exactly the live configuration (live model and look-ahead, LIVE "
                        "scheduling, --block-size): the hits 'drumscribe live' gives on the same audio")
    t.set_defaults(run=cmd_transcribe)
    from . import audition_cli  # kits, presets, audition; transcribe --audition

    audition_cli.add_transcribe_options(t)

    e = commands.add_parser("evaluate", help="score the model on annotated audio (MDB Drums format)",
                            description="Transcribe every audio file in --audio that has a <stem>.txt annotation "
                                        "(lines 'time<TAB>CLASS', CLASS in KD SD HH TT CY OT) in --annotations and "
                                        "print precision/recall/F per class, F3 (KD SD HH) and F5 (all five).")
    e.add_argument("--audio", required=True, metavar="DIR", help="the folder of audio files")
    e.add_argument("--annotations", required=True, metavar="DIR", help="the folder of their <stem>.txt annotations")
    _common.add_model_option(e)
    e.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="print every score as JSON on stdout instead of text (the per-track lines go to stderr); "
                        "--json PATH writes that JSON to PATH instead, beside the text")
    e.add_argument("--window-ms", type=float, default=50.0, metavar="MS",
                   help="how far a found onset may be from the annotated one, in ms (default: 50)")
    _common.add_block_size_option(e)
    e.add_argument("--no-context", action="store_true",
                   help="decide each onset alone, as 'transcribe --no-context' does")
    _common.add_no_progress_option(e)
    e.set_defaults(run=cmd_evaluate)

    from .train_cli import add_train_commands  # render, fit, tune, calibrate, ensemble, export, folders, ...

    add_train_commands(commands)
    m = commands.add_parser("drum-maps", help="list the drum maps",
                            description="List the drum maps --drum-map takes (General MIDI and the maps of drum "
                                        "plugins), each with its plugin, its source and its notes; a JSON file of "
                                        "the same form works too (docs/drum-maps.md).")
    m.set_defaults(run=cmd_drum_maps)
    audition_cli.add_commands(commands)
    from .live_cli import add_live_commands  # devices, live

    add_live_commands(commands)
    __import__("drumscribe.calibrate_cli", fromlist=["_"]).add_calibrate_command(commands)  # calibrate
    from .samples_cli import register  # classify, sort

    register(commands)
    from .generate_cli import register as register_generate  # generate

    register_generate(commands)
    from .web_cli import add_web_command  # web: the pages run this module's transcribe path, handed in

    add_web_command(commands, sys.modules[__name__])
    return parser


def main(argv=None) -> int:
    import signal

    from . import EARLY_INTERRUPTS

    command = "drumscribe"
    try:
        if threading_is_main():
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the start-up deferral (drumscribe/__init__) ends
        if EARLY_INTERRUPTS:
            raise KeyboardInterrupt
        argv = list(sys.argv[1:] if argv is None else argv)
        # small matrices only: a multi-threaded BLAS spins against torch and anything else running (seen: 200x slower)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        command = " ".join(["drumscribe", args.command, *([args.step] if getattr(args, "step", None) else [])])
        args.argv = argv
        return args.run(args)
    except DrumscribeError as exc:  # the one class of user-facing errors
        print(f"{command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `drumscribe drum-maps | head -1`: the reader has gone, as for any Unix tool
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug of ours: still one line for the user, the traceback on request
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "torch":
            from .train_cli import INSTALL_TRAIN  # torch is the train extra: say what to install

            print(f"{command}: needs PyTorch, which is not installed here; install it with: {INSTALL_TRAIN}",
                  file=sys.stderr)
            return EXIT_ERROR
        if os.environ.get("DRUMSCRIBE_TRACEBACK"):
            raise
        print(f"{command}: internal error ({type(exc).__name__}: {one_line(exc)}); please report it with the "
              f"command line (DRUMSCRIBE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return EXIT_ERROR


# ---------------------------------------------------------------------------------------------------------------
# shared steps


def _open_source(path: str, block_size: int, live: bool = False, listeners=()):
    from drumscribe.realtime.sources import AudioInputError, FileSource

    try:
        source = FileSource(path, block_size_samples=block_size, live_resampling=live, listeners=listeners)
    except AudioInputError as exc:
        raise DrumscribeError(one_line(exc)) from None
    if not source.input_frames:
        raise DrumscribeError(f"'{path}' holds no audio samples (0 s); expected a file with sound in it")
    return source


# ---------------------------------------------------------------------------------------------------------------
# transcribe



def _checked_transcribe(args) -> int:
    """Every argument and the input are checked before any work; the outputs are written only when the run ends
    (each atomically), and only what holds notes replaces an existing file after an interrupt."""
    import math

    check_block_size(args.block_size)
    if args.model is None:
        from .live_cli import default_model_path

        args.model = default_model_path(live=getattr(args, "live", False))
    if not (math.isfinite(args.note_length_ms) and 0 < args.note_length_ms <= MAX_NOTE_LENGTH_MS):
        raise DrumscribeError(f"--note-length-ms {args.note_length_ms:g} is not in 0-{MAX_NOTE_LENGTH_MS:g} ms")
    quantize = _checked_grid_options(args)
    drum_map = load_drum_map(args.drum_map)
    from . import audition_cli

    outputs = {"--output": args.output, "--events": args.events, "--plot": args.plot, "--score": args.score,
               **audition_cli.transcribe_outputs(args)}
    check_outputs(outputs, args.audio)
    if args.plot:
        from drumscribe.realtime.sinks import OutputPathError, check_plot_format

        try:
            check_plot_format(args.plot)
        except OutputPathError as exc:
            raise DrumscribeError(one_line(exc)) from None
    if args.score:
        from drumscribe.offline.score import check_score_format
        from drumscribe.realtime.sinks import OutputPathError

        try:
            check_score_format(args.score)
        except OutputPathError as exc:
            raise DrumscribeError(one_line(exc)) from None
    audition_sinks = audition_cli.prepare_transcribe(args, drum_map)
    live = getattr(args, "live", False)
    plot = _plot_sink(args, drum_map)
    source = _open_source(args.audio, args.block_size, live=live, listeners=[plot.observe] if plot else [])
    original = _audition_original(args, live)
    stages = _stages(args, load_model(args.model, threads=1 if live else file_threads()))

    from drumscribe.realtime.sinks import CsvEventsSink, MidiFileSink, SummarySink

    summary = SummarySink(sys.stdout, drum_map=drum_map)
    outputs = [("--output", MidiFileSink(args.output, drum_map, note_length_s=args.note_length_ms / 1000.0,
                                         tempo_bpm=args.tempo, tempo_map=args.tempo_map, quantize=quantize))]
    if plot:
        plot.grid_from = outputs[0][1]  # the plot closes after the .mid and draws its bars and beats
    try:
        if args.events:
            outputs.append(("--events", CsvEventsSink(args.events, drum_map)))
        if plot:
            outputs.append(("--plot", plot))
        if args.score:  # after the .mid, whose tempo and downbeat it takes when closing
            from drumscribe.offline.score import ScoreSink

            outputs.append(("--score", ScoreSink(args.score, outputs[0][1], title=Path(args.audio).name)))
        outputs += [("--audition", sink) for sink in audition_sinks(original, source.sample_rate_hz)]
        return _transcribe(args, stages, source, outputs, summary)
    except BaseException:
        _abort_all([sink for _, sink in outputs] + [summary])  # nothing half-done is written; old files stay
        raise


BATCH_PATH_OPTIONS = {"--output": "output", "--events": "events", "--plot": "plot", "--audition": "audition",
                      "--score": "score"}
"""The per-file output paths of `transcribe` (flag -> argparse dest): a batch rewrites them for each file."""


def cmd_transcribe(args) -> int:
    from . import batch

    inputs = args.audio
    if len(inputs) > 1 or Path(inputs[0]).is_dir():
        return batch.run_batch(args, inputs, per_file=_checked_transcribe, worker_init=_batch_worker_init,
                               dests=BATCH_PATH_OPTIONS)
    if args.ray:
        raise DrumscribeError(f"--ray runs a batch on a cluster; '{inputs[0]}' is one file: give several files or a "
                              f"folder")
    args.audio = inputs[0]
    if args.output is None and not Path(args.audio).is_file():  # its error, not one about the .mid beside it
        _open_source(args.audio, args.block_size)
    options = {flag: getattr(args, dest) for flag, dest in BATCH_PATH_OPTIONS.items()
               if flag != "--output" and getattr(args, dest, None)}
    for flag, path in batch.single_outputs(args.audio, args.output, options).items():
        setattr(args, BATCH_PATH_OPTIONS[flag], path)
    try:
        return _checked_transcribe(args)
    except KeyboardInterrupt:  # before the engine started, or while it was being built
        raise DrumscribeError("interrupted before any audio was transcribed; nothing written", code=EXIT_INTERRUPTED) \
            from None


def _batch_worker_init(threads: int) -> None:
    """In a batch's worker process: the model is loaded once, with `threads` ONNX Runtime threads, and reused for
    every file the worker transcribes (the per-file code path is otherwise that of one file)."""
    global load_model
    from .batch import cached_loader

    load_model = cached_loader(load_model, threads)


MIN_TEMPO_ARG_BPM, MAX_TEMPO_ARG_BPM = 20.0, 400.0


def _checked_grid_options(args):
    """--tempo, --quantize, --quantize-strength and --swing checked (DrumscribeError); the Quantize or None."""
    import math

    if args.tempo is not None and not (math.isfinite(args.tempo)
                                       and MIN_TEMPO_ARG_BPM <= args.tempo <= MAX_TEMPO_ARG_BPM):
        raise DrumscribeError(f"--tempo {args.tempo:g} is not in {MIN_TEMPO_ARG_BPM:g}-{MAX_TEMPO_ARG_BPM:g} BPM")
    if args.tempo is not None and args.tempo_map:
        raise DrumscribeError(f"--tempo {args.tempo:g} fixes one tempo and --tempo-map follows the song's; give one")
    for flag, value in (("--quantize-strength", args.quantize_strength), ("--swing", args.swing)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise DrumscribeError(f"{flag} {value:g} is not in 0-1")
    if args.quantize is None:
        for flag, value, default in (("--quantize-strength", args.quantize_strength, 1.0),
                                     ("--swing", args.swing, 0.0)):
            if value != default:
                raise DrumscribeError(f"{flag} {value:g} needs --quantize GRID (it moves the quantized notes)")
        return None
    from drumscribe.realtime.sinks import Quantize
    from drumscribe.realtime.tempo import QUANTIZE_GRIDS, grid_beats

    try:
        step = grid_beats(args.quantize)
    except ValueError:
        raise DrumscribeError(f"--quantize '{args.quantize}' is not one of: {', '.join(QUANTIZE_GRIDS)}") from None
    if args.swing > 0 and args.quantize.strip().lower().endswith("t"):
        raise DrumscribeError(f"--swing {args.swing:g} needs a straight grid, not the triplets of --quantize "
                              f"'{args.quantize}' (they already swing)")
    return Quantize(step, strength=args.quantize_strength, swing=args.swing)


def _plot_sink(args, drum_map):
    if not args.plot:
        return None
    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.sinks import PlotSink

    return PlotSink(args.plot, None, SAMPLE_RATE_HZ, drum_map=drum_map, title=Path(args.audio).name)


def _audition_original(args, live: bool):
    """The input at the engine rate for `--audition` with `--mix` (the one output that needs the whole song in
    memory); otherwise an empty array."""
    import numpy as np

    if not (getattr(args, "audition", None) and getattr(args, "mix", 0.0) > 0):
        return np.zeros(0)
    from drumscribe.realtime.sources import AudioInputError, decode_audio

    try:
        return decode_audio(args.audio, live_resampling=live, compact=True)
    except AudioInputError as exc:
        raise DrumscribeError(one_line(exc)) from None


class _sigint_ignored:
    """Ctrl-C is ignored inside (the engine has already stopped on the first one), and a SIGTERM (a batch stopping
    its workers) waits until the block is done: the outputs get written, all of them or none."""

    def __enter__(self):
        import signal

        self.previous = None
        self.blocked = False
        if threading_is_main():
            self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            if hasattr(signal, "pthread_sigmask"):
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
                self.blocked = True

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # a pending SIGTERM is delivered now


def _abort_all(sinks) -> None:
    for sink in sinks:
        abort = getattr(sink, "abort", None)
        if abort is not None:
            with contextlib.suppress(Exception):
                abort()


def _close_all(outputs, summary) -> list:
    """Close every output (the .mid first), then the summary; an error in one does not keep the others from
    closing. Returns the paths written; raises DrumscribeError naming what was and was not written."""
    from drumscribe.realtime.sinks import OutputWriteError

    written, failed = [], []
    with _sigint_ignored():
        for option, sink in outputs:
            try:
                sink.close()
                written.append(str(sink.path))
            except (OutputWriteError, OSError) as exc:  # a full disk, say: the old file at that path is whole
                failed.append(f"{option} ({one_line(exc)})")
        summary.close()
    if failed:
        kept = f"; wrote {', '.join(repr(p) for p in written)}" if written else "; nothing was written"
        raise DrumscribeError(f"{'; '.join(failed)}; any old file there is untouched{kept}")
    return written


class _UntilSound:
    """Holds the engine's hits back while every sample read so far is below SILENCE_PEAK_DBFS (a silent file
    gives no notes, whatever the network makes of its noise floor), then passes them all on in order."""

    def __init__(self, source, sinks):
        self.source = source
        self.sinks = sinks
        self.held = []
        self.threshold = 10 ** (SILENCE_PEAK_DBFS / 20)

    @property
    def heard(self) -> bool:
        return self.source.peak >= self.threshold

    def write(self, hits) -> None:
        if not self.heard:
            self.held.extend(hits)
            return
        if self.held:
            hits, self.held = self.held + list(hits), []
        for sink in self.sinks:
            sink.write(hits)


def _stages(args, checkpoint) -> list:
    """The stages `transcribe` runs: the live chain with --live, else the file chain."""
    from dataclasses import replace

    from drumscribe.realtime.engine import OFFLINE, build_stages

    if getattr(args, "live", False):
        from drumscribe.realtime.live import build_live_stages

        return build_live_stages(checkpoint, profile=_profile(args, checkpoint))  # exactly what `drumscribe live` runs
    return build_stages(checkpoint, replace(OFFLINE, context=not args.no_context), profile=_profile(args, checkpoint))


def _profile(args, checkpoint):
    """The kit profile of --profile, checked against the model, or None (calibrate_cli.profile_option)."""
    from .calibrate_cli import profile_option

    return profile_option(args, checkpoint)


def _transcribe(args, stages: list, source, outputs, summary) -> int:
    """Run the stages over the source into the outputs. `stages` is emptied once the audio is through, so that the
    networks' memory is free before the outputs are built."""
    import signal

    import numpy as np

    from drumscribe.realtime.engine import Engine
    from drumscribe.realtime.sources import AudioInputError

    if threading_is_main():
        # Ctrl-C stops a long file and keeps every note so far, also when started with SIGINT ignored (a shell
        # starts background jobs so): as `drumscribe live` does
        signal.signal(signal.SIGINT, signal.default_int_handler)

    midi_sink = outputs[0][1]
    duration_s = source.duration_s
    from ._common import AudioProgress, want_progress

    progress = AudioProgress(Path(args.audio).name, duration_s, source.sample_rate_hz) \
        if want_progress(args.no_progress, audio_s=duration_s) else None
    gate = _UntilSound(source, [sink for _, sink in outputs] + [summary])
    engine = Engine(stages, [gate], sample_rate_hz=source.sample_rate_hz)
    try:
        stats = engine.run(source, progress=progress)
    except AudioInputError as exc:  # damaged audio past the header
        raise DrumscribeError(one_line(exc)) from None
    finally:
        if progress is not None:
            progress.close()
        stages.clear()  # the networks go: a long file's notes are written without their memory beside them
        del engine

    if stats.interrupted and not summary.total:  # nothing found: an existing file is worth more than an empty one
        done_s = stats.samples / source.sample_rate_hz
        raise DrumscribeError(f"interrupted at {done_s:.1f} s of {duration_s:.1f} s before any note was found; nothing "
                              f"written", code=EXIT_INTERRUPTED)
    _close_all(outputs, summary)
    if not gate.heard:
        peak = source.peak
        level = f"{20 * np.log10(peak):.0f} dBFS" if peak > 0 else "digital silence"
        print(f"drumscribe transcribe: '{args.audio}' is silent ({level}, below {SILENCE_PEAK_DBFS:.0f} dBFS); "
              f"wrote an empty '{args.output}'", file=sys.stderr)
        return EXIT_SILENT

    n_hits = summary.total
    print(f"wrote '{args.output}': {n_hits} notes, tempo {midi_sink.tempo_bpm:g} BPM"
          + (f"; events '{args.events}'" if args.events else "") + (f"; plot '{args.plot}'" if args.plot else "")
          + (f"; score '{args.score}'" if getattr(args, "score", None) else "")
          + (f"; audition '{args.audition}'" if getattr(args, "audition", None) else ""))
    if stats.interrupted:
        done_s = stats.samples / source.sample_rate_hz
        print(f"drumscribe transcribe: interrupted at {done_s:.1f} s of {duration_s:.1f} s; "
              f"'{args.output}' holds the {n_hits} notes found so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# evaluate


def cmd_evaluate(args) -> int:
    """The scores as text on stdout; `--json`: as JSON on stdout instead (the per-track lines on stderr);
    `--json PATH` (the older spelling): the text on stdout and the JSON written to PATH."""
    from drumscribe.offline import evaluate as ev
    from drumscribe.realtime.sources import AudioInputError

    from . import _common

    check_block_size(args.block_size)
    if not 0 < args.window_ms <= 1000:
        raise DrumscribeError(f"--window-ms {args.window_ms} is not in 0-1000 ms")
    for option, folder in (("--audio", args.audio), ("--annotations", args.annotations)):
        if not Path(folder).is_dir():
            raise DrumscribeError(f"{option} '{folder}' is not a folder")
    pairs = ev.find_tracks(args.audio, args.annotations)
    if not pairs:
        raise DrumscribeError(f"no audio file in '{args.audio}' has a <stem>.txt annotation in '{args.annotations}'")
    json_stdout = args.json == "-"
    json_path = None if json_stdout else args.json
    if json_path:
        check_outputs({"--json": json_path})
    if args.model is None:
        args.model = _common.default_model_path(live=False)
    references = []  # every annotation and audio file checked before the first is transcribed
    for audio_path, annotation_path in pairs:
        try:
            references.append(ev.load_annotations(annotation_path))
        except ev.AnnotationError as exc:
            raise DrumscribeError(one_line(exc)) from None
        _open_source(str(audio_path), args.block_size)
    checkpoint = load_model(args.model, threads=file_threads())
    window_s = args.window_ms / 1000.0
    lines = sys.stderr if json_stdout else sys.stdout  # stdout holds the JSON alone

    per_track = {}
    for (audio_path, _), reference in zip(pairs, references):
        source = _open_source(str(audio_path), args.block_size)
        progress = None
        if _common.want_progress(args.no_progress, audio_s=source.duration_s):
            progress = _common.AudioProgress(audio_path.stem, source.duration_s, source.sample_rate_hz)
            source.listeners.append(progress)
        try:
            hits = ev.transcribe_source(source, checkpoint, context=not args.no_context)
        except AudioInputError as exc:  # damaged audio past the header
            raise DrumscribeError(one_line(exc)) from None
        finally:
            if progress is not None:
                progress.close()
        per_track[audio_path.stem] = ev.score(reference, ev.hits_to_classes(hits), window_s=window_s)
        row = per_track[audio_path.stem]
        print(f"{audio_path.stem:<40.40} F3 {row['F3']['f']:.3f}  F5 {row['F5']['f']:.3f}", file=lines, flush=True)
    overall = ev.pool(list(per_track.values()))

    import json

    record = {"model": str(args.model), "context": not args.no_context, "window_s": window_s,
              "audio": str(args.audio), "annotations": str(args.annotations), "tracks": per_track, "overall": overall}
    if json_stdout:
        print(json.dumps(record, indent=2))
        return EXIT_OK
    print()
    print(ev.format_track_table(per_track))
    print()
    print(ev.format_table(overall, title=f"overall, {len(per_track)} tracks, window {args.window_ms:g} ms "
                                         f"(pooled: sums of hits over tracks)"))
    if json_path:
        from drumscribe.realtime.sinks import atomic_output

        try:
            with atomic_output(json_path) as tmp:
                tmp.write_text(json.dumps(record, indent=2) + "\n")
        except OSError as exc:
            raise DrumscribeError(f"--json: could not write '{json_path}' ({exc.strerror or exc}); any old file "
                                  f"there is untouched") from None
        print(f"wrote '{json_path}'")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# drum-maps


def cmd_drum_maps(args) -> int:
    """One line per map (preset name, plugin, source), then its notes; docs/drum-maps.md has the full table."""
    import re
    from urllib.parse import unquote

    from drumscribe.realtime.drums import DRUM_MAPS_DIR, DRUMS, DrumMapError, available_drum_maps, load_drum_map

    names = available_drum_maps()
    width = max(map(len, names), default=0)
    for name in names:
        try:
            drum_map = load_drum_map(name)
        except DrumMapError as exc:
            print(f"drumscribe drum-maps: {one_line(exc)}", file=sys.stderr)
            continue
        source = unquote(re.sub(r"https?://|/blob/[0-9a-f]{7,40}", "", drum_map.source)) or "(no source given)"
        print(f"{name:<{width}}  {drum_map.name}; source: {source}")
        print(" " * (width + 2) + ", ".join(f"{d} {drum_map.note(d)}" for d in DRUMS))
    print(f"\n{len(names)} maps in {DRUM_MAPS_DIR}; --drum-map also takes a JSON file of the same shape; "
          f"notes, articulations and sources of each: docs/drum-maps.md")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
