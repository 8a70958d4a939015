"""`drumscribe web`: the transcriber, the sample generator and the sorter in the browser, served on this machine.

The HTTP side (routes, uploads, temporary files) is drumscribe/web/app.py; this module is the CLI face: it parses,
and it hands the app a `WebService` whose methods run the same code as the commands (transcribe through cli.py's
source, stages, sinks and `_transcribe`; audition through `cmd_audition`; sort through offline/sorting.py). cli.py
passes itself in when registering the command, so no module imports cli.py back (tests/test_layers.py).
"""
from __future__ import annotations

import io
import threading
from pathlib import Path

from ._common import DrumscribeError, file_threads, load_drum_map, load_model, one_line

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def add_web_command(commands, cli) -> None:
    """Register `web`; `cli` is the drumscribe.cli module (its transcribe path, passed in rather than imported)."""
    w = commands.add_parser("web", help="open the transcriber, generator and sorter in the browser",
                            description="Start a local web server (FastAPI with uvicorn) with three pages: "
                                        "transcribe (drop audio, see and hear the drum roll, download .mid, score "
                                        "and events), generate (the one-shot generator's knobs) and sort (one-shots "
                                        "into classes, as a zip); the same as an HTTP API under /api/ "
                                        "(docs/web.md). Everything runs on this machine.")
    w.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="PORT",
                   help=f"the port to listen on, 1-65535 (default: {DEFAULT_PORT}; 0 picks a free one)")
    w.add_argument("--host", default=DEFAULT_HOST, metavar="ADDRESS",
                   help=f"the address to listen on (default: {DEFAULT_HOST}, this machine only; 0.0.0.0 opens it to "
                        f"the network, with no login)")
    w.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    w.set_defaults(run=cmd_web, cli=cli)


def cmd_web(args) -> int:
    if not 0 <= args.port <= 65535:
        raise DrumscribeError(f"--port {args.port} is not in 1-65535 (or 0 for a free port)")
    try:
        import uvicorn

        from drumscribe.web.app import create_app
    except ModuleNotFoundError as exc:
        raise DrumscribeError(f"needs {exc.name}, which is not installed here; install it with: "
                              f"pip install 'drumscribe[web]'") from None
    import socket

    try:  # bound here, so a taken port or a bad address is one line, and --port 0 knows its port before the banner
        infos = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
        sock = socket.socket(infos[0][0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(128)  # a browser that comes before uvicorn waits in the queue instead of being refused
    except OSError as exc:
        raise DrumscribeError(f"--host {args.host} --port {args.port}: cannot listen there "
                              f"({exc.strerror or one_line(exc)}); expected a free port on an address of this "
                              f"machine") from None
    import signal

    from ._common import threading_is_main

    if threading_is_main():  # a stop before uvicorn takes the signals over still removes the temporary folder
        signal.signal(signal.SIGTERM, _exit_quietly)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    app = create_app(WebService(args.cli))
    reach = ("only this machine can reach it" if host in ("127.0.0.1", "::1", "localhost")
             else "other machines on the network can reach it too, with no login")
    print(f"drumscribe web: serving on {url} ({reach}; --host chooses the address); Ctrl-C stops", flush=True)
    if not args.no_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stopped gracefully, then passed Ctrl-C on
        pass
    finally:
        app.state.cleanup()
        sock.close()
    print("drumscribe web: stopped", flush=True)
    return 0


def _exit_quietly(signum, frame):
    raise SystemExit(0)


class WebService:
    """What the pages do, as the commands do it. Methods raise `drumscribe.web.app.BadInput` with one line for a
    user's mistake (a file that is not audio, an unknown drum map, ...)."""

    def __init__(self, cli):
        self.cli = cli
        self._checkpoint = None
        self._model_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one transcription at a time: they share the CPU cores and the model
        self._generator = None

    # -- what the page offers ----------------------------------------------------------------------------------
    def info(self) -> dict:
        from drumscribe.realtime.audition import default_kit, find_kits
        from drumscribe.realtime.drums import DEFAULT_DRUM_MAP, available_drum_maps
        from drumscribe.realtime.effects import DEFAULT_PRESET, available_presets

        kits = find_kits()
        try:
            default = default_kit(kits).name
        except Exception:
            default = None
        return {"drum_maps": available_drum_maps(), "default_drum_map": DEFAULT_DRUM_MAP,
                "kits": [k.name for k in kits], "default_kit": default,
                "presets": available_presets(), "default_preset": DEFAULT_PRESET,
                "generator": self.generator_info(), "sort": self.sort_info()}

    # -- transcribe ----------------------------------------------------------------------------------------------
    def transcribe(self, audio: Path, out_dir: Path, *, title: str, drum_map: str, progress=None) -> dict:
        """Transcribe `audio` into out_dir/{drums.mid, events.csv, score.musicxml} exactly as `drumscribe
        transcribe IN -o drums.mid --events events.csv --score score.musicxml --drum-map MAP` does; returns the
        notes of the .mid, its bar and beat lines and the duration. `progress(fraction)` sees the decoding."""
        from .web.app import BadInput

        cli = self.cli
        mid, csv, score = out_dir / "drums.mid", out_dir / "events.csv", out_dir / "score.musicxml"
        args = cli.build_parser().parse_args(["transcribe", str(audio), "-o", str(mid), "--events", str(csv),
                                              "--score", str(score), "--drum-map", drum_map, "--no-progress"])
        args.audio, args.argv = args.audio[0], []
        try:
            with self._run_lock:
                return self._transcribe(args, title, progress)
        except DrumscribeError as exc:
            raise BadInput(str(exc).replace(str(audio), title)) from None

    def _transcribe(self, args, title: str, progress) -> dict:
        from drumscribe.offline.score import ScoreSink
        from drumscribe.realtime.audition import read_midi_notes
        from drumscribe.realtime.drums import DRUMS
        from drumscribe.realtime.sinks import CsvEventsSink, MidiFileSink, SummarySink

        from ._common import check_block_size
        from .live_cli import default_model_path

        cli = self.cli
        check_block_size(args.block_size)
        drum_map = load_drum_map(args.drum_map)
        seen = {"samples": 0, "total": 1}

        def listener(chunk):
            seen["samples"] += len(chunk)
            if progress is not None:
                progress(min(1.0, seen["samples"] / seen["total"]))

        source = cli._open_source(args.audio, args.block_size, listeners=[listener])
        seen["total"] = max(1, round(source.duration_s * source.sample_rate_hz))
        stages = cli._stages(args, self._model(default_model_path(live=False)))
        summary = SummarySink(io.StringIO(), drum_map=drum_map)
        midi_sink = MidiFileSink(args.output, drum_map, note_length_s=args.note_length_ms / 1000.0,
                                 tempo_bpm=args.tempo, tempo_map=args.tempo_map, quantize=None)
        outputs = [("--output", midi_sink), ("--events", CsvEventsSink(args.events, drum_map)),
                   ("--score", ScoreSink(args.score, midi_sink, title=title))]
        try:
            code = cli._transcribe(args, stages, source, outputs, summary)
        except BaseException:
            cli._abort_all([sink for _, sink in outputs] + [summary])
            raise
        names = {drum_map.note(d): d for d in reversed(DRUMS)}  # a note two drums share: the first drum's name
        notes = [{"time_s": round(t, 6), "note": n, "velocity": v, "drum": names.get(n, str(n))}
                 for t, n, v in read_midi_notes(args.output)] if code == 0 else []
        duration_s = source.duration_s
        grid = midi_sink.grid
        return {"duration_s": duration_s, "silent": code != 0, "drum_map": args.drum_map,
                "tempo_bpm": round(float(midi_sink.tempo_bpm), 3) if midi_sink.tempo_bpm else None,
                "bars_s": [round(float(x), 4) for x in grid.bar_lines_s(duration_s)] if grid else [],
                "beats_s": [round(float(x), 4) for x in grid.beat_lines_s(duration_s)] if grid else [],
                "lanes": [{"drum": d, "note": drum_map.note(d)} for d in DRUMS
                          if any(n["note"] == drum_map.note(d) for n in notes)],
                "notes": notes}

    def _model(self, path):
        with self._model_lock:  # loaded once and kept, as a batch worker keeps it (drumscribe/batch.py)
            if self._checkpoint is None:
                self._checkpoint = (path, load_model(path, threads=file_threads()))
            return self._checkpoint[1]

    def audition(self, mid: Path, out_wav: Path, *, kit: str | None, preset: str | None, drum_map: str) -> None:
        """Render the .mid through a kit and an effects preset, as `drumscribe audition MID -o OUT.wav` does."""
        from . import audition_cli
        from .web.app import BadInput

        argv = ["audition", str(mid), "-o", str(out_wav), "--drum-map", drum_map]
        argv += ["--kit", kit] if kit else []
        argv += ["--effects", preset] if preset else []
        args = self.cli.build_parser().parse_args(argv)
        try:
            audition_cli.cmd_audition(args)
        except DrumscribeError as exc:
            raise BadInput(str(exc).replace(str(mid), "the transcription")) from None

    # -- sort ------------------------------------------------------------------------------------------------------
    def sort_info(self) -> dict:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            from .train_cli import INSTALL_TRAIN

            return {"available": False, "reason": f"sorting needs PyTorch, which is not installed here; install it "
                                                  f"with: {INSTALL_TRAIN}"}
        return {"available": True}

    def sort(self, in_dir: Path, out_dir: Path, *, min_confidence: float, progress=None) -> list:
        """Sort the one-shots of in_dir into out_dir/<class>/ as `drumscribe sort IN OUT` does (copies); returns
        one row per file: file, class, confidence, reason."""
        from .samples_cli import _load_classifier
        from .web.app import BadInput

        info = self.sort_info()
        if not info["available"]:
            raise BadInput(info["reason"])
        from drumscribe.offline import sorting

        try:
            classifier = _load_classifier(None)
            sorting.sort_folder(in_dir, out_dir, classifier, min_confidence=min_confidence, progress=progress)
            rows = sorting.current_rows(sorting.read_manifest(out_dir / sorting.MANIFEST_NAME))
        except (DrumscribeError, sorting.SortError) as exc:
            raise BadInput(one_line(exc).replace(str(in_dir), "the upload")) from None
        result = []
        for row in rows:
            result.append({"file": str(Path(row["source"]).relative_to(in_dir)) if row["source"] else "",
                           "class": row["class"], "confidence": float(row["confidence"] or 0.0),
                           "reason": row["reason"],
                           "destination": str(Path(row["destination"]).relative_to(out_dir))
                           if row["destination"] else ""})
        return result

    # -- generate --------------------------------------------------------------------------------------------------
    def generator(self):
        from .web.app import BadInput

        if self._generator is None:
            try:
                from drumscribe.offline.generator import load_generator
            except ImportError as exc:
                raise BadInput(f"the sample generator is not available here ({one_line(exc)})") from None
            try:
                self._generator = load_generator()
            except ModuleNotFoundError as exc:
                raise BadInput(f"the sample generator needs {exc.name}, which is not installed here") from None
            except Exception as exc:  # a missing or damaged weights file, say
                raise BadInput(f"the sample generator could not load ({one_line(exc)})") from None
        return self._generator

    def generator_info(self) -> dict:
        from .web.app import BadInput

        try:
            g = self.generator()
        except BadInput as exc:
            return {"available": False, "reason": str(exc)}
        low, high = g.knob_range
        return {"available": True, "classes": list(g.classes), "n_knobs": int(g.n_knobs),
                "knob_range": [float(low), float(high)]}

    def generate(self, drum_class: str, knobs, seed, length_s: float):
        from .web.app import BadInput

        g = self.generator()
        if drum_class not in g.classes:
            raise BadInput(f"class '{drum_class}' is not one of: {', '.join(g.classes)}")
        if knobs is not None and len(knobs) != g.n_knobs:
            raise BadInput(f"knobs: got {len(knobs)} values, expected {g.n_knobs} (comma-separated)")
        low, high = g.knob_range
        if knobs is not None and any(not low <= k <= high for k in knobs):
            raise BadInput(f"knobs {','.join(f'{k:g}' for k in knobs)}: each must be in {low:g}-{high:g}")
        try:
            return g.generate(drum_class, knobs=knobs, seed=seed, length_s=length_s)
        except ValueError as exc:
            raise BadInput(one_line(exc)) from None

    def encode(self, audio: Path, title: str) -> dict:
        from drumscribe.realtime.sources import AudioInputError, decode_audio

        from .web.app import BadInput

        g = self.generator()
        try:
            import soundfile

            data, rate = soundfile.read(str(audio), dtype="float32", always_2d=True)
            mono = data.mean(axis=1)
        except Exception:  # not a format soundfile reads: the engine's decoder (mp3 through its fallback)
            try:
                from drumscribe.realtime import SAMPLE_RATE_HZ

                mono, rate = decode_audio(str(audio)).astype("float32"), SAMPLE_RATE_HZ
            except AudioInputError as exc:
                raise BadInput(one_line(exc).replace(str(audio), title)) from None
        if not len(mono):
            raise BadInput(f"'{title}' holds no audio samples; expected a one-shot with sound in it")
        try:
            drum_class, knobs = g.encode(mono, int(rate))
        except ValueError as exc:
            raise BadInput(one_line(exc)) from None
        return {"class": drum_class, "knobs": [float(k) for k in knobs]}
