"""`drumscribe kits`, `drumscribe presets`, `drumscribe audition` and the `--audition` options of `transcribe`:
a thin face over realtime/audition.py, realtime/sampler.py and realtime/effects.py.

    drumscribe kits
    drumscribe presets
    drumscribe audition song.mid [-o out.wav | --play] [--kit NAME|PATH] [--effects PRESET|FILE]
                                 [--mix-with song.mp3 [--mix 0.5]] [--gain DRUM=DB ...] [--drum-map NAME]
    drumscribe transcribe song.mp3 -o song.mid --audition song-drums.wav [--kit ...] [--effects ...] [--mix 0.5]
    drumscribe live --monitor PRESET [--kit ...] [--monitor-output DEVICE]

`--mix` means the same in both commands, with the same default (DEFAULT_MIX): the balance of the rendering and the
original laid under it (`audition --mix-with AUDIO`, or the input of `transcribe`).

Heavy modules load inside the commands; every bad kit, preset or file is one line on stderr and exit 1.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from ._common import (
    EXIT_ERROR,
    EXIT_OK,
    DrumscribeError,
    add_drum_map_option,
    check_block_size,
    check_outputs,
    load_drum_map,
    one_line,
)

DEFAULT_MIX = 0.5
"""`--mix` of `audition --mix-with` and of `transcribe --audition`: the original and the rendering at equal peaks."""

# named here so that --help imports no numpy (tests/test_cli_consistency.py checks them against realtime.audition)
DEFAULT_KIT = "The Black Pearl 1.0"  # realtime.audition.DEFAULT_KITS[0]
RENDER_BLOCK_SIZE_SAMPLES = 8192  # realtime.audition.RENDER_BLOCK_SIZE_SAMPLES


def add_commands(commands) -> None:
    """Register `kits`, `presets` and `audition` on the drumscribe command's subparsers."""
    from drumscribe.realtime.effects import DEFAULT_PRESET  # light: numpy and pedalboard load with the first chain

    k = commands.add_parser("kits", help="list the drum kits audition can play",
                            description="The drum kits found on this machine: Hydrogen kits, the drum kits of sf2 "
                                        "soundfonts, and kits in $DRUMSCRIBE_KITS or ~/.local/share/drumscribe/kits "
                                        "(Hydrogen kits, .sf2 files or folders of one-shots named by drum).")
    k.set_defaults(run=cmd_kits)

    p = commands.add_parser("presets", help="list the effect presets, with what each does",
                            description="The effect presets of presets/effects/ (pedalboard plugin chains).")
    p.set_defaults(run=cmd_presets)

    a = commands.add_parser(
        "audition", help="play a drum .mid through a drum kit and an effects preset",
        description="Render the drum notes of a MIDI file (channel 10, or every channel when none is on 10) "
                    "through a drum kit and an effects preset, to a file or the speakers; with --mix-with, "
                    "lay the original audio under it from the same time zero to compare by ear.")
    a.add_argument("midi", help="the .mid file (e.g. what 'drumscribe transcribe' wrote)")
    out = a.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", metavar="AUDIO", help="write the rendering: .wav, .flac, .mp3 or .ogg")
    out.add_argument("--play", action="store_true", help="play it on the default audio output")
    _add_kit_options(a, default_effects=DEFAULT_PRESET)
    a.add_argument("--mix-with", metavar="AUDIO", help="the original audio (any rate) to lay under the rendering")
    _add_mix_option(a, needs="--mix-with", original="the original")
    a.add_argument("--gain", action="append", default=[], metavar="DRUM=DB",
                   help="level of one drum in dB, e.g. --gain kick=+3 --gain hh_closed=-4")
    add_drum_map_option(a, reading=True)
    a.add_argument("--block-size", type=int, default=RENDER_BLOCK_SIZE_SAMPLES, metavar="SAMPLES",
                   help=f"samples per rendering block; the sound is the same at any size "
                        f"(default: {RENDER_BLOCK_SIZE_SAMPLES})")
    a.set_defaults(run=cmd_audition)


def _add_kit_option(parser, *, needs: str = "") -> None:
    parser.add_argument("--kit", metavar="NAME|PATH",
                        help=(f"with {needs}: " if needs else "")
                        + "the drum kit: a name from 'drumscribe kits', a Hydrogen kit folder, an .sf2 file "
                          "(file.sf2:Jazz for one of its kits) or a folder of one-shots named by drum "
                          f"(default: {DEFAULT_KIT} when installed; 'drumscribe kits' names the default)")


def _add_kit_options(parser, *, default_effects: str | None) -> None:
    from drumscribe.realtime.effects import DEFAULT_PRESET

    _add_kit_option(parser, needs="" if default_effects else "--audition")
    parser.add_argument("--effects", default=default_effects, metavar="PRESET|FILE",
                        help=("" if default_effects else "with --audition: ")
                        + f"the effects preset: a name from 'drumscribe presets' or a preset .json "
                          f"(default: {default_effects or DEFAULT_PRESET})")


def _add_mix_option(parser, *, needs: str, original: str) -> None:
    """`--mix`, the one balance of `audition --mix-with` and `transcribe --audition`, default DEFAULT_MIX: None
    when not given (the commands tell a --mix given without what it needs from one left out)."""
    parser.add_argument("--mix", type=float, metavar="0-1",
                        help=f"with {needs}: the balance of {original} laid under the rendering, from 0 (the "
                             f"rendering alone) to 1 ({original} alone) (default: {DEFAULT_MIX:g})")


def add_transcribe_options(t) -> None:
    """`transcribe --audition OUT [--kit] [--effects] [--mix]`: hear the transcription as it was written."""
    t.add_argument("--audition", metavar="AUDIO",
                   help="also render the transcription through a drum kit to this .wav/.flac/.mp3/.ogg")
    _add_kit_options(t, default_effects=None)
    _add_mix_option(t, needs="--audition", original="the input")


def add_monitor_options(live) -> None:
    """`live --monitor PRESET [--kit] [--monitor-output DEVICE]`: hear every hit as it is decided."""
    live.add_argument("--monitor", metavar="PRESET|FILE",
                      help="play every hit at once on a drum kit through this effects preset (e.g. dry, studio; "
                           "see 'drumscribe presets'), on the system's default audio output or --monitor-output; "
                           "the start-up line names the output")
    _add_kit_option(live, needs="--monitor")
    live.add_argument("--monitor-output", metavar="DEVICE",
                      help="with --monitor: the audio output to play on, an index or name substring from the "
                           "outputs 'drumscribe devices' lists (default: the system's default output)")


def prepare_monitor(args, drum_map):
    """Check and load what `live --monitor` needs before the input opens; returns `open() -> [MonitorSink]`."""
    if not getattr(args, "monitor", None):
        for option in ("kit", "monitor_output"):
            if getattr(args, option, None):
                raise DrumscribeError(f"--{option.replace('_', '-')} needs --monitor PRESET")
        return lambda: []
    from drumscribe.realtime.audition import load_kit, resolve_kit
    from drumscribe.realtime.effects import load_preset
    from drumscribe.realtime.monitor import MonitorError, MonitorSink

    with _user_errors("--monitor"):
        preset = load_preset(args.monitor)
    with _user_errors("--kit"):
        kit = load_kit(resolve_kit(args.kit))

    def open_monitor():
        sink = MonitorSink(kit, preset, drum_map, block_size_samples=args.block_size)
        try:
            sink.open(args.monitor_output)
        except MonitorError as exc:
            raise DrumscribeError(one_line(exc)) from None
        return [sink]

    return open_monitor


def transcribe_outputs(args) -> dict:
    return {"--audition": getattr(args, "audition", None)}


def prepare_transcribe(args, drum_map):
    """Check and load what `transcribe --audition` needs before any transcribing; returns
    `sinks(audio, sample_rate_hz) -> [AuditionSink]` (an empty list without --audition)."""
    if not getattr(args, "audition", None):
        for option in ("kit", "effects"):
            if getattr(args, option, None):
                raise DrumscribeError(f"--{option} needs --audition AUDIO (the file to render the transcription to)")
        if getattr(args, "mix", None) is not None:
            raise DrumscribeError("--mix needs --audition AUDIO (the file to render the transcription to)")
        return lambda audio, sample_rate_hz: []
    from drumscribe.realtime.audition import AuditionSink, check_output_format, load_kit, resolve_kit
    from drumscribe.realtime.effects import DEFAULT_PRESET, load_preset

    with _user_errors("--audition"):
        check_output_format(args.audition)
    _check_mix(args.mix)
    if args.mix is None:
        args.mix = DEFAULT_MIX  # before cli.py's _audition_original reads it (the input is decoded when mix > 0)
    with _user_errors("--effects"):
        preset = load_preset(args.effects or DEFAULT_PRESET)
    with _user_errors("--kit"):
        kit = load_kit(resolve_kit(args.kit))

    def sinks(audio, sample_rate_hz):
        original = audio if args.mix > 0 and len(audio) else None
        return [AuditionSink(args.audition, kit, preset, drum_map, original=original, mix=args.mix,
                             sample_rate_hz=sample_rate_hz)]

    return sinks


@contextlib.contextmanager
def _user_errors(option: str = ""):
    """The one-line errors of the audition modules as DrumscribeError, prefixed with the option they came from."""
    from drumscribe.realtime.audition import AuditionError
    from drumscribe.realtime.drums import DrumMapError
    from drumscribe.realtime.effects import EffectsError
    from drumscribe.realtime.kits import KitError
    from drumscribe.realtime.sampler import SamplerError
    from drumscribe.realtime.sinks import OutputPathError

    try:
        yield
    except (AuditionError, DrumMapError, EffectsError, KitError, SamplerError, OutputPathError) as exc:
        message = one_line(exc)
        raise DrumscribeError(f"{option}: {message}" if option and not message.startswith(option)
                              else message) from None


def _check_mix(mix) -> None:
    if mix is not None and not 0.0 <= mix <= 1.0:
        raise DrumscribeError(f"--mix {mix:g} is not in 0-1 (0: the rendering alone, 1: the original alone)")


def _parse_gains(values: list) -> dict:
    from drumscribe.realtime.drums import DRUMS
    from drumscribe.realtime.sampler import DRUM_GAIN_RANGE_DB

    gains = {}
    for value in values:
        drum, sep, db = value.partition("=")
        try:
            gain = float(db)
        except ValueError:
            gain = None
        if not sep or gain is None:
            raise DrumscribeError(f"--gain '{value}' is not DRUM=DB, e.g. kick=+3")
        if drum not in DRUMS:
            raise DrumscribeError(f"--gain '{value}': drum '{drum}' is not one of: {', '.join(DRUMS)}")
        low, high = DRUM_GAIN_RANGE_DB
        if not low <= gain <= high:  # also NaN
            raise DrumscribeError(f"--gain '{value}': {gain:g} dB is not in {low:g} to {high:g} dB")
        gains[drum] = gain
    return gains


# ---------------------------------------------------------------------------------------------------------------
# kits, presets


def cmd_kits(args) -> int:
    from drumscribe.realtime.audition import USER_KIT_DIRS_ENV, default_kit, find_kits, user_kit_dirs
    from drumscribe.realtime.kits import HYDROGEN_KIT_DIRS, SF2_DIRS

    kits = find_kits()
    groups = (("hydrogen", "Hydrogen kits", HYDROGEN_KIT_DIRS), ("sf2", "sf2 soundfont kits", SF2_DIRS),
              ("folder", "one-shot folders", user_kit_dirs()))
    for kind, title, dirs in groups:
        mine = [k for k in kits if k.kind == kind]
        print(f"{title} ({', '.join(str(d) for d in dirs if d.is_dir()) or 'no such folder here'}):")
        if not mine:
            print("  (none)")
        width = max((len(k.name) for k in mine), default=0) + 2
        for info in mine:
            what = f"{info.drums} drums" if info.drums else f"GM kit {info.preset}"
            print(f"  {info.name:<{width}}{what:<12}{info.licence}")
    try:
        default = default_kit(kits).name
    except Exception:
        default = "none"
    print(f"\ndefault kit: {default}. --kit also takes a path: a Hydrogen kit folder, an .sf2 (file.sf2:Jazz), or a "
          f"folder of one-shots named by drum (kick.wav, snare_soft.wav, hh_closed_2.wav, ...); "
          f"${USER_KIT_DIRS_ENV} lists more folders to search")
    return EXIT_OK


def cmd_presets(args) -> int:
    from drumscribe.realtime.effects import EFFECTS_DIR, EffectsError, available_presets, load_preset

    status = EXIT_OK
    names = available_presets()
    width = max((len(n) for n in names), default=0) + 2
    for name in names:
        try:
            preset = load_preset(name)
        except EffectsError as exc:
            print(f"drumscribe presets: {one_line(exc)}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        print(f"{name:<{width}}{preset.description}")
        chain = " > ".join(spec.plugin for spec in preset.plugins) or "(no plugins)"
        print(f"{'':<{width}}{chain}")
    print(f"\npresets live in {EFFECTS_DIR}; --effects also takes a .json file of the same shape (any of "
          f"pedalboard's streaming plugins, or your own VST3 via \"plugin\": \"VST3\", \"path\": ...)")
    return status


# ---------------------------------------------------------------------------------------------------------------
# audition


def cmd_audition(args) -> int:
    check_block_size(args.block_size)
    if args.mix is not None and not args.mix_with:
        raise DrumscribeError("--mix needs --mix-with AUDIO (the original to lay under the rendering)")
    _check_mix(args.mix)
    mix = DEFAULT_MIX if args.mix is None else args.mix
    gains = _parse_gains(args.gain)
    drum_map = load_drum_map(args.drum_map)

    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.audition import (
        check_output_device,
        check_output_format,
        check_render_length,
        load_kit,
        load_original,
        mix_under,
        normalise,
        play,
        read_midi_notes,
        render_notes,
        resolve_kit,
        write_audio,
    )
    from drumscribe.realtime.effects import EffectChain, load_preset
    from drumscribe.realtime.sampler import Sampler

    if args.output:
        with _user_errors("--output"):
            check_output_format(args.output)
        inputs = [p for p in (args.midi, args.mix_with) if p]
        for path in inputs:
            if Path(path).exists() and Path(path).resolve() == Path(args.output).resolve():
                raise DrumscribeError(f"--output '{args.output}' is the input file '{path}'; "
                                      f"choose another output path")
        check_outputs({"--output": args.output})
    if args.play:
        with _user_errors():
            check_output_device(2, SAMPLE_RATE_HZ)
    with _user_errors():
        notes = read_midi_notes(args.midi)
        check_render_length(max(t for t, _, _ in notes), f"the last note of '{args.midi}'")
    with _user_errors("--effects"):
        preset = load_preset(args.effects)
    with _user_errors("--mix-with"):
        original = load_original(args.mix_with, SAMPLE_RATE_HZ) if args.mix_with else None
    with _user_errors("--kit"):
        info = resolve_kit(args.kit)
        kit = load_kit(info, sample_rate_hz=SAMPLE_RATE_HZ)
    with _user_errors():
        sampler = Sampler(kit, drum_map, sample_rate_hz=SAMPLE_RATE_HZ, drum_gain_db=gains)
    if not any(sampler.plays(note) for _, note, _ in notes):  # as for a MIDI with no notes: nothing to play
        keys = sorted({note for _, note, _ in notes})
        shown = ", ".join(map(str, keys[:12])) + (", ..." if len(keys) > 12 else "")
        raise DrumscribeError(f"MIDI file '{args.midi}' holds no note kit '{info.name}' has a drum for "
                              f"({len(notes)} notes on keys {shown}; drum map {args.drum_map}); there is nothing "
                              f"to play")
    with _user_errors():
        chain = EffectChain(preset, sample_rate_hz=SAMPLE_RATE_HZ)
        min_s = original.shape[1] / SAMPLE_RATE_HZ if original is not None else 0.0
        audio = normalise(render_notes(notes, sampler, chain, block_size_samples=args.block_size,
                                       min_duration_s=min_s))
        if original is not None:
            audio = mix_under(audio, original, mix)

    if sampler.skipped_notes:
        keys = ", ".join(f"{note} (x{n})" for note, n in sorted(sampler.skipped_notes.items()))
        print(f"drumscribe audition: skipped {sum(sampler.skipped_notes.values())} notes on keys kit "
              f"'{info.name}' has no drum for: {keys}", file=sys.stderr)
    played = len(notes) - sum(sampler.skipped_notes.values())
    what = (f"{audio.shape[1] / SAMPLE_RATE_HZ:.1f} s, {played} notes on '{info.name}' through '{preset.name}'"
            + (f", '{Path(args.mix_with).name}' under it at mix {mix:g}" if original is not None else ""))
    if args.output:
        existed = os.path.lexists(args.output)
        try:
            with _user_errors("--output"):
                write_audio(args.output, audio, SAMPLE_RATE_HZ)
        except DrumscribeError as exc:
            raise DrumscribeError(f"{exc}; " + (f"'{args.output}' was left as it was" if existed
                                                else "nothing was written")) from None
        print(f"wrote '{args.output}': {what}")
    if args.play:
        with _user_errors():
            print(f"playing {what} (Ctrl-C stops)", flush=True)
            play(audio, SAMPLE_RATE_HZ)
    return EXIT_OK
