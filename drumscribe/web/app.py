"""The HTTP side of `drumscribe web`: a FastAPI app serving the pages (static/) and the API under /api/.

The work itself is done by a service object (drumscribe/web_cli.py's WebService) that runs the commands' own code;
this module owns the HTTP: uploads (size-limited, kept in a temporary folder and removed once used), the results of
the last few jobs (in the same temporary folder, removed when the server stops), progress, and errors as one line
of JSON (`{"error": ...}`), never a traceback.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

MAX_UPLOAD_MB = 200
"""The most one request may upload (all files together), in MB: about 20 minutes of a wav, hours of an mp3."""
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_RESULTS = 12
"""Results kept for download (the oldest go first); each is a few files of a few hundred kB."""
MAX_JOBS = 200
"""Progress reports kept for GET /api/progress/{job} (the oldest go first)."""
MAX_GENERATE_S = 10.0
AUDIO_SUFFIXES = {".mp3", ".wav", ".flac", ".ogg", ".aif", ".aiff"}
STATIC_DIR = Path(__file__).resolve().parent / "static"
RESULT_FILES = {"drums.mid": "audio/midi", "events.csv": "text/csv", "score.musicxml":
                "application/vnd.recordare.musicxml+xml", "audition.wav": "audio/wav", "sorted.zip": "application/zip"}

log = logging.getLogger(__name__)


class BadInput(ValueError):
    """A user's mistake, said in one line: answered with HTTP 400 (or the given status) and {"error": line}."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _safe_name(name: str | None, default: str = "upload") -> str:
    """The last part of an uploaded file's name, with nothing a path could make of it."""
    base = re.sub(r"[^\w.\- ]+", "_", Path((name or "").replace("\\", "/")).name).strip(" .") or default
    return base[:120]


class _Store:
    """The temporary folder: uploads/<id>/ (removed after each request) and results/<id>/ (the last MAX_RESULTS)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="drumscribe-web-"))
        self.results: OrderedDict[str, Path] = OrderedDict()
        self.progress: OrderedDict[str, dict] = OrderedDict()  # job -> stage and fraction, the last MAX_JOBS
        self.lock = threading.Lock()

    def report(self, job: str, stage: str, fraction: float) -> None:
        if not job:
            return
        with self.lock:
            self.progress[job[:64]] = {"stage": stage, "fraction": round(fraction, 3)}
            self.progress.move_to_end(job[:64])
            while len(self.progress) > MAX_JOBS:
                self.progress.popitem(last=False)

    def new_upload_dir(self) -> Path:
        path = self.root / "uploads" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def new_result(self) -> tuple[str, Path]:
        key = uuid.uuid4().hex
        path = self.root / "results" / key
        path.mkdir(parents=True)
        with self.lock:
            self.results[key] = path
            while len(self.results) > MAX_RESULTS:
                _, old = self.results.popitem(last=False)
                shutil.rmtree(old, ignore_errors=True)
        return key, path

    def drop_result(self, key: str) -> None:
        with self.lock:
            path = self.results.pop(key, None)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def result(self, key: str) -> Path:
        with self.lock:
            path = self.results.get(key)
        if path is None:
            raise BadInput(f"result '{key}' is not here (the server keeps the last {MAX_RESULTS}); run it again",
                           404)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


async def _save_upload(upload: UploadFile, folder: Path, total: list, *, name: str | None = None) -> Path:
    """Copy an upload into `folder` under its safe name, counting toward MAX_UPLOAD_BYTES (`total` is [bytes])."""
    target = folder / (name or _safe_name(upload.filename))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while chunk := await upload.read(1 << 20):
            total[0] += len(chunk)
            if total[0] > MAX_UPLOAD_BYTES:
                raise BadInput(f"the upload is over the limit of {MAX_UPLOAD_MB} MB", 413)
            out.write(chunk)
    return target


def _check_audio_name(name: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise BadInput(f"'{name}' is not an audio file (its type '{suffix or 'none'}' is not one of: "
                       f"{', '.join(sorted(AUDIO_SUFFIXES))})", 415)


def _wav_bytes(audio, sample_rate_hz: int) -> bytes:
    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(audio, dtype=np.float32), int(sample_rate_hz), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def create_app(service) -> FastAPI:
    """The app; `service` does the work (see drumscribe/web_cli.py's WebService). `app.state.cleanup()` removes the
    temporary folder (also done when the app shuts down)."""
    store = _Store()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.cleanup()

    app = FastAPI(title="drumscribe web", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",  # no CDN page
                  lifespan=lifespan)
    app.state.cleanup = store.cleanup
    app.state.store = store

    @app.exception_handler(BadInput)
    async def _bad_input(request: Request, exc: BadInput):
        return _error(str(exc), exc.status)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):  # a bug of ours: one line, the traceback in the log
        log.exception("drumscribe web: %s %s", request.method, request.url.path)
        return _error(f"internal error ({type(exc).__name__}); the server's terminal has the details", 500)

    @app.middleware("http")
    async def _limit(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + 64 * 1024:
            return _error(f"the upload ({int(length) / 1e6:.0f} MB) is over the limit of {MAX_UPLOAD_MB} MB", 413)
        return await call_next(request)

    # -- pages -------------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/info")
    def info():
        return {**service.info(), "max_upload_mb": MAX_UPLOAD_MB}

    @app.get("/api/progress/{job}")
    def progress(job: str):
        with store.lock:
            return store.progress.get(job, {"stage": "unknown", "fraction": 0.0})

    # -- transcribe ----------------------------------------------------------------------------------------------
    @app.post("/api/transcribe")
    async def transcribe(request: Request, audio: Annotated[UploadFile, File()],
                         drum_map: Annotated[str, Form()] = "general_midi", job: Annotated[str, Form()] = ""):
        from starlette.concurrency import run_in_threadpool

        title = _safe_name(audio.filename, "audio")
        _check_audio_name(title)
        upload = store.new_upload_dir()
        key, out_dir = store.new_result()
        try:
            store.report(job, "uploading", 0.0)
            path = await _save_upload(audio, upload, [0], name="input" + Path(title).suffix.lower())
            (out_dir / "drum_map.txt").write_text(drum_map)

            def report(fraction: float) -> None:
                store.report(job, "transcribing", fraction)

            result = await run_in_threadpool(service.transcribe, path, out_dir, title=title, drum_map=drum_map,
                                             progress=report)
        except BaseException:
            store.drop_result(key)
            raise
        finally:
            shutil.rmtree(upload, ignore_errors=True)
            store.report(job, "done", 1.0)
        stem = Path(title).stem
        if "application/json" not in request.headers.get("accept", ""):
            return FileResponse(out_dir / "drums.mid", media_type="audio/midi", filename=f"{stem}.mid")
        files = {"mid": f"/api/results/{key}/drums.mid?name={stem}.mid",
                 "csv": f"/api/results/{key}/events.csv?name={stem}.csv",
                 "musicxml": f"/api/results/{key}/score.musicxml?name={stem}.musicxml"}
        return {"id": key, "name": title, **result, "files": files}

    @app.post("/api/audition")
    async def audition(id: Annotated[str, Form()], kit: Annotated[str, Form()] = "",
                       preset: Annotated[str, Form()] = ""):
        from starlette.concurrency import run_in_threadpool

        folder = store.result(id)
        drum_map = (folder / "drum_map.txt").read_text() if (folder / "drum_map.txt").exists() else None
        wav = folder / "audition.wav"
        await run_in_threadpool(service.audition, folder / "drums.mid", wav, kit=kit or None, preset=preset or None,
                                drum_map=drum_map or "general_midi")
        return FileResponse(wav, media_type="audio/wav", filename="audition.wav")

    @app.get("/api/results/{key}/{filename}")
    def result_file(key: str, filename: str, name: str = Query("")):
        if filename not in RESULT_FILES:
            raise BadInput(f"'{filename}' is not one of: {', '.join(RESULT_FILES)}", 404)
        path = store.result(key) / filename
        if not path.is_file():
            raise BadInput(f"'{filename}' was not made for this result", 404)
        return FileResponse(path, media_type=RESULT_FILES[filename], filename=_safe_name(name, filename))

    # -- generate ------------------------------------------------------------------------------------------------
    @app.get("/api/generate")
    def generate(drum_class: str = Query(..., alias="class"), knobs: str = Query(""), seed: int | None = None,
                 length_s: float = 1.0):
        import math

        if not (math.isfinite(length_s) and 0.05 <= length_s <= MAX_GENERATE_S):
            raise BadInput(f"length_s {length_s:g} is not in 0.05-{MAX_GENERATE_S:g} s")
        values = None
        if knobs.strip():
            try:
                values = [float(k) for k in knobs.split(",")]
            except ValueError:
                raise BadInput(f"knobs '{knobs}' is not a comma-separated list of numbers") from None
            if not all(math.isfinite(v) for v in values):
                raise BadInput(f"knobs '{knobs}' holds a value that is not a finite number")
        audio, rate = service.generate(drum_class, values, seed, length_s)
        return Response(_wav_bytes(audio, rate), media_type="audio/wav",
                        headers={"Content-Disposition": f'attachment; filename="{drum_class}.wav"'})

    @app.post("/api/encode")
    async def encode(audio: Annotated[UploadFile, File()]):
        from starlette.concurrency import run_in_threadpool

        title = _safe_name(audio.filename, "sample")
        _check_audio_name(title)
        upload = store.new_upload_dir()
        try:
            path = await _save_upload(audio, upload, [0], name="input" + Path(title).suffix.lower())
            return await run_in_threadpool(service.encode, path, title)
        finally:
            shutil.rmtree(upload, ignore_errors=True)

    # -- sort ------------------------------------------------------------------------------------------------------
    @app.post("/api/sort")
    async def sort(files: Annotated[list[UploadFile], File()], min_confidence: Annotated[float, Form()] = 0.6,
                   job: Annotated[str, Form()] = ""):
        import math

        from starlette.concurrency import run_in_threadpool

        if not (math.isfinite(min_confidence) and 0.0 <= min_confidence <= 1.0):
            raise BadInput(f"min_confidence {min_confidence:g} is not in 0-1")
        upload = store.new_upload_dir()
        key, out_dir = store.new_result()
        try:
            in_dir, total, kept = upload / "in", [0], 0
            for item in files:
                # a folder's files keep their relative path (webkitRelativePath); each part made safe
                parts = [_safe_name(p) for p in (item.filename or "").replace("\\", "/").split("/") if p not in
                         ("", ".", "..")]
                if not parts or Path(parts[-1]).suffix.lower() not in AUDIO_SUFFIXES:
                    continue
                name, n = Path(*parts), 1
                while (in_dir / name).exists():  # two files of one name: both kept
                    n += 1
                    name = Path(*parts[:-1], f"{Path(parts[-1]).stem}-{n}{Path(parts[-1]).suffix}")
                await _save_upload(item, in_dir, total, name=str(name))
                kept += 1
            if not kept:
                raise BadInput(f"none of the {len(files)} files is an audio file ({', '.join(sorted(AUDIO_SUFFIXES))})",
                               415)

            def report(done: int, count: int) -> None:
                store.report(job, "sorting", done / max(1, count))

            sorted_dir = out_dir / "sorted"
            rows = await run_in_threadpool(service.sort, in_dir, sorted_dir, min_confidence=min_confidence,
                                           progress=report)
            await run_in_threadpool(shutil.make_archive, str(out_dir / "sorted"), "zip", sorted_dir)
            shutil.rmtree(sorted_dir, ignore_errors=True)
        except BaseException:
            store.drop_result(key)
            raise
        finally:
            shutil.rmtree(upload, ignore_errors=True)
            store.report(job, "done", 1.0)
        return {"id": key, "rows": rows, "zip": f"/api/results/{key}/sorted.zip?name=sorted.zip"}

    return app
