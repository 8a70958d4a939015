"""`drumscribe devices` and `drumscribe live`: a thin face over realtime/live.py and realtime/midi_out.py.

    drumscribe devices
    drumscribe live [--input DEVICE] [--input-channel N] [--sample-rate HZ] [--block-size 128]
                    [--port-name drumscribe] [--midi-api auto|alsa|jack|coremidi|windows] [--to-port NAME]
                    [--record take.mid] [--events take.csv] [--drum-map NAME]

A live run ends with Ctrl-C (or SIGTERM, or --stop-after): exit 0, the take written. An input that vanishes
mid-stream ends it with one line and exit 1, the take still written. The take (--record, --events) is written once
a hit came: an input that cannot be opened or started, or a run with no hit, writes none and leaves an earlier
file at those paths as it was, and says so. Heavy modules load inside the commands.
"""
from __future__ import annotations

import os
import sys
import time

from ._common import (  # noqa: F401 (default_model_path: cli.py's transcribe imports it from here)
    EXIT_ERROR,
    EXIT_OK,
    DrumscribeError,
    add_block_size_option,
    add_drum_map_option,
    add_events_option,
    add_live_input_options,
    add_model_option,
    add_note_length_option,
    check_block_size,
    check_note_length,
    check_outputs,
    default_model_path,
    load_drum_map,
    load_model,
    one_line,
)

STATUS_INTERVAL_S = 0.25
"""How often the status line is redrawn on a terminal."""

STATUS_LOG_INTERVAL_S = 10.0
"""How often a status line is printed when stderr is not a terminal (a log)."""


def add_live_commands(commands) -> None:
    """Register `devices` and `live` on the drumscribe command's subparsers."""
    from drumscribe.models import LIVE_MODEL_PATH
    from drumscribe.realtime.midi_out import DEFAULT_PORT_NAME, MIDI_APIS

    d = commands.add_parser("devices", help="list audio inputs and outputs, MIDI APIs and MIDI ports",
                            description="The audio inputs `drumscribe live --input` can use, the audio outputs "
                                        "`--monitor-output` can use, and the MIDI APIs and ports `--midi-api` / "
                                        "`--to-port` can use, on this machine.")
    d.set_defaults(run=cmd_devices)

    live = commands.add_parser(
        "live", help="transcribe an audio input live to a MIDI port",
        description="Listen to an audio input and send each drum hit as a General-MIDI drum note (channel 10) "
                    "on a virtual MIDI port the moment it is decided; a DAW records the port. A status line "
                    "shows input level, hits per drum, latency and dropped blocks. Ctrl-C stops.")
    add_live_input_options(live)
    add_block_size_option(live)
    live.add_argument("--port-name", default=DEFAULT_PORT_NAME, metavar="NAME",
                      help=f"name of the virtual MIDI port a DAW sees (default: {DEFAULT_PORT_NAME})")
    live.add_argument("--midi-api", default="auto", choices=MIDI_APIS,
                      help="MIDI system: auto (ALSA sequencer on Linux, else JACK; CoreMIDI on macOS), "
                           "alsa, jack, coremidi or windows (default: auto)")
    live.add_argument("--to-port", metavar="NAME",
                      help="send to an existing MIDI port whose name contains NAME instead of opening a virtual "
                           "one (needed on Windows, e.g. a loopMIDI port)")
    live.add_argument("--record", metavar="MID", help="also write the performance to this .mid (kept on Ctrl-C)")
    add_events_option(live)
    add_drum_map_option(live)
    add_model_option(live, default=f"the shipped live model, {LIVE_MODEL_PATH.name}")
    live.add_argument("--profile", metavar="JSON", help="a kit profile from 'drumscribe calibrate' (default: none)")
    add_note_length_option(live)
    live.add_argument("--stop-after", type=float, metavar="SECONDS",
                      help="stop by itself after this many seconds (default: run until Ctrl-C)")
    from .audition_cli import add_monitor_options  # --monitor PRESET --kit NAME --monitor-output DEVICE

    add_monitor_options(live)
    live.set_defaults(run=cmd_live)


def _setup_threads() -> None:
    """One compute thread (the live path is faster and steadier so), and never start a JACK server by accident."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("JACK_NO_START_SERVER", "1")


def _setup_logging() -> None:
    import logging

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="drumscribe: %(message)s", stream=sys.stderr)


# ---------------------------------------------------------------------------------------------------------------
# devices


def _print_audio_devices(title: str, list_devices, error) -> None:
    """One line per audio device `list_devices()` finds (the default marked *), or why there are none."""
    print(title)
    try:
        rows = list_devices()
    except error as exc:
        rows = []
        print(f"  (cannot be listed: {exc})")
    if not rows:
        print("  none (no sound card or audio server found)")
    for row in rows:
        mark = "*" if row["default"] else " "
        print(f"  {mark}{row['index']:>3}  {row['name']}  ({row['hostapi']}, {row['channels']} ch, "
              f"{row['default_rate_hz']:g} Hz)")


def cmd_devices(args) -> int:
    _setup_threads()
    from drumscribe.realtime.live import LiveInputError, list_audio_inputs
    from drumscribe.realtime.midi_out import MidiOutputError, list_midi, resolve_api
    from drumscribe.realtime.monitor import MonitorError, list_audio_outputs

    _print_audio_devices("audio inputs:", list_audio_inputs, LiveInputError)
    _print_audio_devices("\naudio outputs (live --monitor-output):", list_audio_outputs, MonitorError)
    print("\nMIDI APIs (--midi-api):")
    for row in list_midi():
        if row["available"]:
            kind = "virtual ports" if row["virtual_ports"] else "existing ports only (--to-port)"
            ports = ", ".join(f"'{p}'" for p in row["ports"]) or "none"
            print(f"  {row['api']:<9} available, {kind}; ports: {ports}")
        else:
            print(f"  {row['api']:<9} unavailable: {row['reason']}")
    try:
        print(f"\n--midi-api auto uses: {resolve_api('auto')}")
    except MidiOutputError as exc:
        print(f"\n--midi-api auto: {exc}")
    print("* marks the default audio input and output")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# live


def cmd_live(args) -> int:
    _setup_threads()
    _setup_logging()
    check_block_size(args.block_size)
    check_note_length(args.note_length_ms)
    if args.stop_after is not None and not args.stop_after > 0:
        raise DrumscribeError(f"--stop-after {args.stop_after} must be > 0 seconds")
    if args.input_channel < 1:
        raise DrumscribeError(f"--input-channel {args.input_channel} must be 1 or more")
    from drumscribe.realtime.live import MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ

    if args.sample_rate is not None and not MIN_INPUT_RATE_HZ <= args.sample_rate <= MAX_INPUT_RATE_HZ:
        raise DrumscribeError(f"--sample-rate {args.sample_rate} is not in {MIN_INPUT_RATE_HZ}-{MAX_INPUT_RATE_HZ} Hz")
    drum_map = load_drum_map(args.drum_map)
    check_outputs({"--record": args.record, "--events": args.events})
    from .audition_cli import prepare_monitor

    open_monitor = prepare_monitor(args, drum_map)
    checkpoint = load_model(args.model or default_model_path(live=True))
    from .calibrate_cli import profile_option

    profile = profile_option(args, checkpoint)  # a bad profile is said before any device opens

    from drumscribe.realtime.live import AudioInput, LiveInputError, LiveSession, TakeSink, latency_bound_s, lookahead_s
    from drumscribe.realtime.midi_out import MidiOutputError, MidiPortSink
    from drumscribe.realtime.sinks import CsvEventsSink, MidiFileSink

    outputs = [path for path in (args.record, args.events) if path]
    try:
        audio_input = AudioInput(args.input, channel=args.input_channel, sample_rate_hz=args.sample_rate,
                                 block_size_samples=args.block_size)
    except LiveInputError as exc:
        raise DrumscribeError(one_line(exc) + _nothing_recorded(outputs)) from None
    try:
        midi = MidiPortSink(drum_map, api=args.midi_api, port_name=args.port_name, to_port=args.to_port,
                            note_length_s=args.note_length_ms / 1000.0)
    except MidiOutputError as exc:
        raise DrumscribeError(one_line(exc) + _nothing_recorded(outputs)) from None
    # the take's files are made at the first hit: a run that records nothing replaces no earlier take
    takes = []
    if args.record:
        takes.append(TakeSink(args.record, lambda: MidiFileSink(args.record, drum_map,
                                                                note_length_s=args.note_length_ms / 1000.0)))
    if args.events:
        takes.append(TakeSink(args.events, lambda: CsvEventsSink(args.events, drum_map)))
    try:
        monitors = open_monitor()
    except DrumscribeError as exc:
        midi.close()  # the port goes away
        raise DrumscribeError(f"{exc}{_nothing_recorded(outputs)}") from None
    except BaseException:
        midi.close()
        raise
    session = LiveSession(checkpoint, audio_input, [midi, *takes, *monitors], midi_sinks=[midi],
                          block_size_samples=args.block_size, profile=profile)

    import signal

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    failure = start_failure = None
    started = time.monotonic()
    try:
        try:
            session.start()
        except LiveInputError as exc:
            start_failure = one_line(exc)
        else:
            resampled = "" if audio_input.sample_rate_hz == 48000 else ", resampled to 48000 Hz"
            deadline = time.monotonic() + 1.0
            while session.worker.realtime_priority is None and time.monotonic() < deadline:
                time.sleep(0.01)
            priority = "real-time" if session.worker.realtime_priority else "normal (no real-time permission)"
            monitor = "".join(f" and monitor on {sink.description}" for sink in monitors)
            print(f"drumscribe live: {audio_input.description}{resampled} -> MIDI {midi.port_description}{monitor}; "
                  f"look-ahead {lookahead_s(checkpoint) * 1e3:.0f} ms, latency bound "
                  f"{latency_bound_s(checkpoint, args.block_size) * 1e3:.0f} ms; worker priority {priority}; "
                  f"Ctrl-C stops", file=sys.stderr, flush=True)
            failure = _status_loop(session, args.stop_after, started)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second Ctrl-C must not cut the take short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            session.close()
        except Exception as exc:  # a file of the take could not be written: that is the failure to report
            unwritten = [take for take in takes if take.error is not None]
            what = ", ".join(f"'{take.path}' ({_reason(take.error)})" for take in unwritten) or one_line(exc)
            failure = failure or (f"could not write {what}; an earlier file there is left as it was"
                                  if unwritten else f"could not close the run: {what}")
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    code = EXIT_OK
    if start_failure is not None:  # nothing was played: one line, as for any input that cannot be used
        print(f"drumscribe live: {start_failure}{_nothing_recorded(outputs)}", file=sys.stderr, flush=True)
        code = EXIT_ERROR
    else:
        _print_end(session, takes, time.monotonic() - started, with_outputs=failure is None)
        if failure is not None:
            print(f"drumscribe live: {failure}{_take_report(takes)}", file=sys.stderr, flush=True)
            code = EXIT_ERROR
    if session.abandoned:
        # a vanished device's driver hangs or aborts in PortAudio's exit handler: everything is written, leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _status_loop(session, stop_after_s, started) -> str | None:
    """Redraw the status line until Ctrl-C, --stop-after or a failure; returns the failure's line, if any."""
    from drumscribe.realtime.live import format_status

    tty = sys.stderr.isatty()
    last_log = time.monotonic()
    while True:
        time.sleep(STATUS_INTERVAL_S)
        reason = session.check()
        if reason is not None:
            if tty:
                sys.stderr.write("\n")
            return reason
        now = time.monotonic()
        if tty:
            line = format_status(session.stats)
            sys.stderr.write("\r" + line[:200] + "\x1b[K")
            sys.stderr.flush()
        elif now - last_log >= STATUS_LOG_INTERVAL_S:
            print(format_status(session.stats), file=sys.stderr, flush=True)
            last_log = now
        if stop_after_s is not None and now - started >= stop_after_s:
            if tty:
                sys.stderr.write("\n")
            return None


def _nothing_recorded(outputs) -> str:
    """The end of the line of a run that never started, for --record/--events: no take, the old one kept."""
    if not outputs:
        return ""
    kept = [f"'{path}'" for path in outputs if os.path.lexists(path)]
    return "; nothing was recorded, so no take was written" + (
        f" ({', '.join(kept)} left as {'it was' if len(kept) == 1 else 'they were'})" if kept else "")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or one_line(exc)


def _take_report(takes) -> str:
    """The end of the failure line: where the take is, or why there is none."""
    written = [f"'{take.path}'" for take in takes if take.written]
    if written:
        return f"; the take is in {' and '.join(written)}"
    if takes and all(take.hits == 0 for take in takes):
        return "; no hit was recorded, so no take was written" + _kept(takes)
    return ""


def _kept(takes) -> str:
    kept = [f"'{take.path}'" for take in takes if not take.written and os.path.lexists(take.path)]
    return f" ({', '.join(kept)} left as {'it was' if len(kept) == 1 else 'they were'})" if kept else ""


def _print_end(session, takes, elapsed_s, *, with_outputs: bool = True) -> None:
    stats = session.stats
    p50, p99, worst = stats.compute_percentiles_ms()
    median, _ = stats.latency_ms()
    latency = "" if median != median else f", latency median {median:.1f} ms"
    print(f"drumscribe live: {elapsed_s:.0f} s, {stats.hits} hits, {stats.blocks_done} blocks "
          f"(compute p50 {p50:.2f} / p99 {p99:.2f} / max {worst:.2f} ms){latency}, "
          f"dropped {stats.dropped_blocks} (ring) + {stats.input_overflows} (input overflow)"
          + (f"; {stats.startup_overflows} input overflow(s) as the input started, before the first block, not "
             f"counted" if stats.startup_overflows else ""), file=sys.stderr, flush=True)
    if not with_outputs:  # the failure line says what became of the take
        return
    for take in takes:
        if take.written:
            print(f"wrote '{take.path}' ({take.hits} hits)", file=sys.stderr, flush=True)
    if takes and not any(take.written for take in takes):
        print(f"drumscribe live: no hit was recorded, so no take was written{_kept(takes)}", file=sys.stderr,
              flush=True)
