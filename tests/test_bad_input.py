"""The bad-input matrix of issue 29: one row per case. Each row asserts the exit code, that stderr holds exactly one
non-empty line and no traceback (none at all after exit 0), and the state of every output afterwards: absent,
untouched (byte for byte what was there before), or complete.

Cheap rows and the fuzz run in this process through drumscribe.cli.main (stdout and stderr captured at the file
descriptors, so a decoder's own chatter counts); rows that can hang (FIFOs), interrupts, pipes and live input run
`drumscribe` in a child process with a time limit. The full-disk rows mount a 64 KiB tmpfs (root only; skipped
elsewhere, with the reason).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from badinput_cases import (
    FUZZ_EXTENSIONS,
    REPO,
    SHIPPED_MODEL,
    Absent,
    Audio,
    CharDevice,
    Csv,
    EmptyDir,
    Fifo,
    LinkTo,
    Midi,
    Png,
    Reference,
    Result,
    State,
    Untouched,
    broken_checkpoint,
    csv_rows,
    drumscribe_command,
    example_audio,
    fill_disk,
    fuzz_corpus,
    midi_notes,
    run_inprocess,
    run_subprocess,
    write_midi,
    write_oneshot_kit,
)

ABSENT, UNTOUCHED = Absent(), Untouched()
SHORT_S = 4.0  # the short input: the first 4 s of examples/example.mp3 (34 annotated hits)
LONG_S = 600.0  # the input the interrupts stop: ten minutes of the example tiled
NO_PROGRESS = "--no-progress"


# ---------------------------------------------------------------------------------------------------------------
# inputs


@dataclass
class Inputs:
    folder: Path
    short: Path  # 4 s of the example, 16-bit wav
    short2: Path  # another 3 s of it
    annotation: Path  # the MDB-style annotation of `short`
    all_nan: Path
    few_nan: Path  # a few NaN and inf samples in the short input
    text_mp3: Path
    kit: Path  # a folder kit: kick.wav, hh_closed.wav
    drum_mid: Path  # kick and hi-hat notes on channel 10
    empty_mid: Path
    non_drum_mid: Path  # notes on channel 1 on keys no drum uses


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Inputs:
    import soundfile as sf

    folder = tmp_path_factory.mktemp("inputs")
    audio, rate = example_audio()
    short = audio[: int(SHORT_S * rate)]
    sf.write(str(folder / "short.wav"), short, rate, subtype="PCM_16")
    sf.write(str(folder / "short2.wav"), audio[int(10 * rate) : int(13 * rate)], rate, subtype="PCM_16")
    truth = [line for line in (REPO / "examples" / "example.txt").read_text().splitlines()
             if line.strip() and float(line.split()[0]) < SHORT_S]
    (folder / "short.txt").write_text("\n".join(truth) + "\n")
    sf.write(str(folder / "all_nan.wav"), np.full(rate, np.nan, np.float32), rate, subtype="FLOAT")
    few = short.copy()
    few[[1000, 50_000, 90_000, 120_000]] = [np.nan, np.inf, -np.inf, np.nan]
    sf.write(str(folder / "few_nan.wav"), few, rate, subtype="FLOAT")
    (folder / "text.mp3").write_text("This is a text file that happens to be named .mp3.\n" * 40)
    write_oneshot_kit(folder / "kit")
    write_midi(folder / "drums.mid", [(0.1 + 0.25 * k, 36 if k % 2 == 0 else 42) for k in range(8)])
    write_midi(folder / "empty.mid", [])
    write_midi(folder / "non_drum.mid", [(0.1, 90), (0.5, 95), (1.0, 100), (1.5, 20)], channel=0)
    return Inputs(folder, folder / "short.wav", folder / "short2.wav", folder / "short.txt", folder / "all_nan.wav",
                  folder / "few_nan.wav", folder / "text.mp3", folder / "kit", folder / "drums.mid",
                  folder / "empty.mid", folder / "non_drum.mid")


@pytest.fixture(scope="session")
def reference(inputs, tmp_path_factory) -> Reference:
    """A good run on the short input: the notes and rows every 'complete' output of it must hold."""
    from drumscribe.cli import main

    folder = tmp_path_factory.mktemp("reference")
    mid, events = folder / "ref.mid", folder / "ref.csv"
    code = main(["transcribe", str(inputs.short), "-o", str(mid), "--events", str(events), NO_PROGRESS])
    assert code == 0, "the good run on the short input failed: the matrix has nothing to compare with"
    ref = Reference(notes=midi_notes(mid), rows=csv_rows(events), mid_bytes=mid.read_bytes(),
                    csv_bytes=events.read_bytes())
    assert len(ref.notes) >= 20, f"only {len(ref.notes)} notes in 4 s of a busy groove (34 annotated hits)"
    return ref


@pytest.fixture(scope="session")
def long_input(tmp_path_factory) -> Path:
    """Ten minutes of the example tiled (16-bit wav): still being transcribed when the interrupts arrive."""
    import soundfile as sf

    audio, rate = example_audio()
    path = tmp_path_factory.mktemp("long") / "long.wav"
    reps = int(np.ceil(LONG_S * rate / len(audio)))
    sf.write(str(path), np.tile(audio, reps)[: int(LONG_S * rate)], rate, subtype="PCM_16")
    return path


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A folder on a 64 KiB tmpfs of its own, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is a small tmpfs, and mounting one needs root")
    if shutil.which("mount") is None:
        pytest.skip("no 'mount' command here to mount a small tmpfs")
    folder = tmp_path / "full"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a 64 KiB tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# ---------------------------------------------------------------------------------------------------------------
# a row and its context


class Ctx:
    """What one row's argv builder works with: its own folder, the inputs, and the expectations it registers."""

    def __init__(self, tmp: Path, inputs: Inputs, reference: Reference):
        self.tmp, self.inputs, self.reference = tmp, inputs, reference
        self.expect: dict = {}  # path -> State it must be in afterwards
        self.before: dict = {}  # path -> bytes before the run (for Untouched)
        self.full: Path | None = None
        self.long: Path | None = None

    def path(self, name: str, base: Path | None = None) -> Path:
        path = (base or self.tmp) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def want(self, name: str, state: State, base: Path | None = None) -> str:
        """An output path and the state it must be in afterwards."""
        path = self.path(name, base)
        self.expect[path] = state
        return str(path)

    def existing(self, name: str, content: bytes | None = None, state: State = UNTOUCHED,
                 base: Path | None = None) -> str:
        """A file that is there before the run (known content), and the state it must be in afterwards."""
        path = self.path(name, base)
        path.write_bytes(content if content is not None else f"old content of {name}, never to be lost\n".encode())
        self.before[path] = path.read_bytes()
        self.expect[path] = state
        return str(path)

    def keep(self, path: Path) -> None:
        """A file the run must not touch (a shipped model, say)."""
        self.before[path] = Path(path).read_bytes()
        self.expect[path] = UNTOUCHED

    def copy(self, source: Path, name: str | None = None, base: Path | None = None) -> str:
        """A private copy of a session input; the run must leave it untouched."""
        path = self.path(name or source.name, base)
        if source.is_dir():
            shutil.copytree(source, path)
            return str(path)
        shutil.copyfile(source, path)
        self.before[path] = path.read_bytes()
        self.expect[path] = UNTOUCHED
        return str(path)


@dataclass(frozen=True)
class Row:
    build: Callable  # Ctx -> argv (without 'drumscribe')
    code: int | tuple  # the exit code, or the codes any of which is right
    mentions: tuple = ()  # strings the stderr line must contain
    how: str = "inprocess"  # or "subprocess", "pipe-head", "pipe-closed"
    timeout_s: float = 60.0
    sigint_after_s: float | None = None
    needs: tuple = ()  # "full_disk", "long_input"
    stdout_any: bool = False  # else stdout must be empty when the expected code is 1 or 2 (refused: no work done)
    check: Callable | None = None  # (ctx, result) -> '' or a problem: what the table cannot say


def transcribe(ctx: Ctx, *extra, audio: str | None = None, mid: State = ABSENT, out: str | None = None) -> list:
    """`transcribe SHORT -o out.mid --no-progress EXTRA`: out.mid in state `mid` afterwards (or `-o OUT`, whose
    state the caller registers)."""
    audio = audio or ctx.copy(ctx.inputs.short)
    return ["transcribe", audio, "-o", out or ctx.want("out.mid", mid), NO_PROGRESS, *extra]


def judge(row: Row, ctx: Ctx, result: Result) -> list:
    problems = []
    if result.timed_out:
        return [f"hung: still running after {row.timeout_s:g} s (killed)"]
    codes = row.code if isinstance(row.code, tuple) else (row.code,)
    if result.code not in codes:
        problems.append(f"exit {result.code}, expected {' or '.join(map(str, codes))}")
    lines = result.err_lines
    if "Traceback" in result.err:
        problems.append("a traceback on stderr")
    if row.how.startswith("pipe"):
        if len(lines) > 1 or "BrokenPipeError" in result.err or "Exception ignored" in result.err:
            problems.append(f"{len(lines)} lines on stderr about the closed pipe, expected at most one quiet line")
    elif result.code == 0 and lines:
        problems.append(f"exit 0 but {len(lines)} lines on stderr, expected none")
    elif result.code != 0 and len(lines) != 1:
        problems.append(f"{len(lines)} non-empty lines on stderr, expected exactly one")
    if len(lines) == 1 and result.code != 0:
        for word in row.mentions:
            if word.lower() not in lines[0].lower():
                problems.append(f"the message does not mention {word!r}")
    if not row.stdout_any and set(codes) <= {1, 2} and result.out.strip():
        problems.append(f"work was done before the refusal: stdout {result.out.strip()[:200]!r}")
    for path, state in ctx.expect.items():
        problem = state.check(path, ctx)
        if problem:
            problems.append(f"{path.relative_to(ctx.tmp) if path.is_relative_to(ctx.tmp) else path}: {problem}")
    for folder in {p.parent for p in ctx.expect} | ({ctx.full} if ctx.full else set()):
        if folder.is_dir() and folder.is_relative_to(ctx.tmp):
            leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
            if leftovers:
                problems.append(f"temporary files left in {folder.name}/: {leftovers}")
    if row.check is not None:
        problem = row.check(ctx, result)
        if problem:
            problems.append(problem)
    return problems


def run_row(row: Row, argv: list, capfd) -> Result:
    if row.how == "inprocess":
        return run_inprocess(argv, capfd, timeout_s=row.timeout_s)
    if row.how == "subprocess":
        return run_subprocess(argv, timeout_s=row.timeout_s, sigint_after_s=row.sigint_after_s)
    if row.how == "pipe-closed":  # stdout is a pipe whose reader has gone before the first write
        read, write = os.pipe()
        os.close(read)
        try:
            return run_subprocess(argv, timeout_s=row.timeout_s, stdout=write)
        finally:
            os.close(write)
    if row.how == "pipe-head":  # drumscribe ... | head -1
        start = time.monotonic()
        first = subprocess.Popen(drumscribe_command() + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)
        head = subprocess.Popen(["head", "-1"], stdin=first.stdout, stdout=subprocess.PIPE)
        first.stdout.close()
        first.stdout = None
        head.communicate(timeout=row.timeout_s)
        try:
            _, err = first.communicate(timeout=row.timeout_s)
        except subprocess.TimeoutExpired:
            first.kill()
            return Result(None, "", first.communicate()[1].decode(errors="replace"), timed_out=True)
        return Result(first.returncode, "", err.decode(errors="replace"), seconds=time.monotonic() - start)
    raise ValueError(row.how)


# ---------------------------------------------------------------------------------------------------------------
# the rows, by the numbered items of issue 29


def _device_node(ctx: Ctx) -> str:
    """A private /dev/null (char 1,3) in the row's folder when root may make one; else the real /dev/null."""
    if os.geteuid() == 0:
        node = ctx.path("null")
        os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))
    else:
        node = Path("/dev/null")
    ctx.expect[node] = CharDevice(os.stat(node).st_rdev)
    return str(node)


def _fifo(ctx: Ctx, name: str) -> str:
    path = ctx.path(name)
    os.mkfifo(path)
    ctx.expect[path] = Fifo()
    return str(path)


def _folder(ctx: Ctx, name: str) -> str:
    path = ctx.path(name)
    path.mkdir()
    ctx.expect[path] = EmptyDir()
    return str(path)


def out_symlink(ctx: Ctx) -> list:
    ctx.existing("real/target.mid", state=Midi(reference=True))
    link = ctx.path("links/out.mid")
    os.symlink("../real/target.mid", link)
    ctx.expect[link] = LinkTo("../real/target.mid")
    return ["transcribe", ctx.copy(ctx.inputs.short), "-o", str(link), NO_PROGRESS]


def events_symlink(ctx: Ctx) -> list:
    ctx.existing("real/target.csv", state=Csv(reference=True))
    link = ctx.path("links/out.csv")
    os.symlink(str(ctx.tmp / "real/target.csv"), link)
    ctx.expect[link] = LinkTo(str(ctx.tmp / "real/target.csv"))
    return transcribe(ctx, "--events", str(link), mid=Midi(reference=True))


def sort_fifo(ctx: Ctx) -> list:
    """A FIFO named .wav beside a good file: the good file is sorted, the FIFO stays where it is, a FIFO (exit 1,
    one line naming it, or exit 0 passing it over as not a file to sort)."""
    in_dir = ctx.path("in")
    in_dir.mkdir()
    good = ctx.copy(ctx.inputs.short, "good.wav", base=in_dir)
    _fifo(ctx, "in/song.wav")
    out_dir = ctx.path("sorted")
    ctx.expect[out_dir] = Sorted(copies={good: None})
    return ["sort", str(in_dir), str(out_dir), NO_PROGRESS]


class Sorted(State):
    """OUT_DIR of a sort holds its manifest and a byte-identical copy of each file of `copies` (source -> the
    folder it must be in, None: any), and nothing else."""

    def __init__(self, copies: dict):
        self.copies = copies

    def check(self, path, ctx):
        found = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if not p.is_dir()) \
            if path.exists() else []
        rest = [f for f in found if f != "manifest.csv"]
        for source, folder in self.copies.items():
            name = Path(source).name
            where = [f for f in rest if Path(f).name == name and (folder is None or Path(f).parent.name == folder)]
            if len(where) != 1:
                return f"'{name}' is not in {folder or 'a class folder'}/ exactly once: {found}"
            if (path / where[0]).read_bytes() != Path(source).read_bytes():
                return f"{where[0]} differs from its source"
            rest.remove(where[0])
        return "" if not rest else f"also sorted: {rest}"

    def __str__(self):
        return "sorted as expected"


def sort_nan(which: str) -> Callable:
    """Non-finite audio in `sort`: never classified as a drum. The README's contract for a file sort cannot use is
    _unreadable/ (a byte-identical copy; the source stays), not an exit 1."""

    def build(ctx: Ctx) -> list:
        in_dir = ctx.path("in")
        source = ctx.copy(getattr(ctx.inputs, which), base=in_dir)
        out_dir = ctx.path("sorted")
        ctx.expect[out_dir] = Sorted(copies={source: "_unreadable"})
        return ["sort", str(in_dir), str(out_dir), NO_PROGRESS]

    return build


def _full_disk_check(*, failed: str, maybe_written: tuple) -> Callable:
    """The message names the output that was not written, and every output that was (a changed file)."""

    def check(ctx: Ctx, result: Result) -> str:
        line = result.err_lines[0] if len(result.err_lines) == 1 else ""
        problems = [] if failed in line else [f"the message does not say '{failed}' was not written"]
        for name in maybe_written:
            path = next(p for p in ctx.expect if p.name == name)
            written = path.exists() and ctx.before.get(path) != path.read_bytes()
            if written and name not in line:
                problems.append(f"'{name}' was written but the message does not say so")
        return "; ".join(problems)

    return check


def events_full_disk(ctx: Ctx) -> list:
    old_rows = "".join(f"{k * 0.5:.4f},{k * 0.5 + 0.1:.4f},kick,36,100,0.9000\n" for k in range(200))
    events = ctx.existing("events.csv", ("onset_s,emitted_s,drum,midi_note,velocity,confidence\n"
                                         + old_rows).encode(), base=ctx.full)
    fill_disk(ctx.full)
    mid = ctx.existing("out.mid", state=UNTOUCHED | Midi(reference=True))  # on a disk with room
    return ["transcribe", ctx.copy(ctx.inputs.short), "-o", mid, "--events", events, NO_PROGRESS]


def plot_full_disk(ctx: Ctx) -> list:
    mid = ctx.want("out.mid", ABSENT | Midi(reference=True), base=ctx.full)
    png = ctx.want("out.png", ABSENT, base=ctx.full)
    fill_disk(ctx.full, leave_bytes=8192)  # room for the .mid, not for the figure
    return ["transcribe", ctx.copy(ctx.inputs.short), "-o", mid, "--plot", png, NO_PROGRESS]


def mid_full_disk(ctx: Ctx) -> list:
    mid = ctx.existing("out.mid", base=ctx.full)
    fill_disk(ctx.full)
    return ["transcribe", ctx.copy(ctx.inputs.short), "-o", mid, NO_PROGRESS]


def audition_full_disk(ctx: Ctx) -> list:
    out = ctx.want("out.wav", ABSENT, base=ctx.full)
    fill_disk(ctx.full)
    return ["audition", ctx.copy(ctx.inputs.drum_mid), "-o", out, "--kit", ctx.copy(ctx.inputs.kit, "kit"),
            "--effects", "dry"]


def interrupt(ctx: Ctx, *, mid_run: bool) -> list:
    """Ctrl-C while transcribing ten minutes, over an existing .mid and events CSV: they stay as they were, or
    hold the notes found so far (never an empty .mid); mid-run, some notes were found."""
    found = (Midi(min_notes=1), Csv(min_rows=1))
    mid = ctx.existing("out.mid", ctx.reference.mid_bytes, state=found[0] if mid_run else UNTOUCHED | found[0])
    events = ctx.existing("out.csv", ctx.reference.csv_bytes, state=found[1] if mid_run else UNTOUCHED | found[1])
    return ["transcribe", str(ctx.long), "-o", mid, "--events", events, NO_PROGRESS]


def _interrupt_check(ctx: Ctx, result: Result) -> str:
    return "" if result.note.startswith("SIGINT sent") else result.note


def checkpoint(name: str, mid: State = ABSENT, **changes) -> Callable:
    def build(ctx: Ctx) -> list:
        model = broken_checkpoint(ctx.path(name), **changes)
        return transcribe(ctx, "--model", str(model), mid=mid)

    return build


def preset_file(name: str, text: str, *, command: str = "audition") -> Callable:
    def build(ctx: Ctx) -> list:
        preset = ctx.path(name)
        preset.write_text(text)
        if command == "audition":
            return ["audition", ctx.copy(ctx.inputs.drum_mid), "-o", ctx.want("out.wav", ABSENT), "--kit",
                    ctx.copy(ctx.inputs.kit, "kit"), "--effects", str(preset)]
        return transcribe(ctx, "--audition", ctx.want("out.wav", ABSENT), "--kit", ctx.copy(ctx.inputs.kit, "kit"),
                          "--effects", str(preset))

    return build


def drum_map_file(name: str, text: str, *, command: str = "transcribe") -> Callable:
    def build(ctx: Ctx) -> list:
        drum_map = ctx.path(name)
        drum_map.write_text(text)
        if command == "transcribe":
            return transcribe(ctx, "--drum-map", str(drum_map))
        return ["audition", ctx.copy(ctx.inputs.drum_mid), "-o", ctx.want("out.wav", ABSENT), "--kit",
                ctx.copy(ctx.inputs.kit, "kit"), "--drum-map", str(drum_map)]

    return build


def evaluate_second_bad(content: bytes) -> Callable:
    def build(ctx: Ctx) -> list:
        audio, notes = ctx.path("audio"), ctx.path("annotations")
        audio.mkdir()
        notes.mkdir()
        ctx.copy(ctx.inputs.short, "a.wav", base=audio)
        ctx.copy(ctx.inputs.short2, "b.wav", base=audio)
        ctx.copy(ctx.inputs.annotation, "a.txt", base=notes)
        ctx.existing("b.txt", content, base=notes)
        return ["evaluate", "--audio", str(audio), "--annotations", str(notes), "--json",
                ctx.want("scores.json", ABSENT)]

    return build


def train_args(*, config: bytes | None, out: bool = True) -> Callable:
    """Item 8 (and 12: the shipped model is never the default output, and stays as it is)."""

    def build(ctx: Ctx) -> list:
        ctx.keep(SHIPPED_MODEL)
        data = ctx.existing("windows.npz", b"onset,drum\n0.1,kick\n")  # a text file where windows belong
        argv = ["train", "--data", data, "--val", data, "--epochs", "1"]
        if out:
            argv += ["-o", ctx.want("model.pt", ABSENT)]
        if config is not None:
            argv += ["--config", ctx.existing("config.json", config)]
        return argv

    return build


def sort_usage(*args: str) -> Callable:
    def build(ctx: Ctx) -> list:
        for name in ("in", "out"):
            ctx.path(name).mkdir(exist_ok=True)
        manifest = ctx.existing("out/manifest.csv", b"source,destination,class,confidence,reason,action,bytes\n")
        paths = {"IN": str(ctx.tmp / "in"), "OUT": str(ctx.tmp / "out"), "MANIFEST": manifest}
        return ["sort", *(paths.get(a, a) for a in args)]

    return build


def live_record(*, existing: bool) -> Callable:
    """Item 13: the input fails at start. The take is written (README) or not (code); either way an existing take
    is never replaced by an empty one."""

    def build(ctx: Ctx) -> list:
        take = ctx.existing("take.mid") if existing else ctx.want("take.mid", ABSENT | Midi())
        return ["live", "--input", "no such input device 29", "--record", take]

    return build


P = pytest.param
ROWS = [
    # 2. special files as outputs
    P(Row(lambda c: transcribe(c, out=_device_node(c)), (0, 1),
          how="subprocess", stdout_any=True), id="out-dev-null"),
    P(Row(lambda c: transcribe(c, out=_fifo(c, "out.mid")), 1, ("out.mid",),
          how="subprocess", timeout_s=60), id="out-fifo"),
    P(Row(lambda c: transcribe(c, "--events", _fifo(c, "out.csv")), 1, ("out.csv",), how="subprocess"),
      id="events-fifo"),
    P(Row(out_symlink, 0, how="subprocess"), id="out-symlink-written-through"),
    P(Row(events_symlink, 0), id="events-symlink-written-through"),
    P(Row(lambda c: transcribe(c, out=_folder(c, "outdir")), 1, ("outdir",)),
      id="out-directory"),
    P(Row(lambda c: transcribe(c, "--events", _folder(c, "events")), 1, ("events",)), id="events-directory"),
    P(Row(lambda c: transcribe(c, "--plot", _fifo(c, "plot.png")), 1, ("plot.png",), how="subprocess"),
      id="plot-fifo"),
    # 7. special files as inputs
    P(Row(lambda c: transcribe(c, audio=_fifo(c, "song.wav")), 1, ("song.wav",), how="subprocess",
          timeout_s=30), id="in-fifo-transcribe"),
    P(Row(lambda c: ["classify", _fifo(c, "song.wav")], 1, ("song.wav",), how="subprocess", timeout_s=30),
      id="in-fifo-classify"),
    P(Row(sort_fifo, (0, 1), ("song.wav",), how="subprocess", timeout_s=30, stdout_any=True), id="in-fifo-sort"),
    P(Row(lambda c: transcribe(c, audio=_folder(c, "song.wav")), 1, ("song.wav",)), id="in-directory-transcribe"),
    P(Row(lambda c: ["classify", _folder(c, "song.wav")], 1, ("song.wav",)), id="in-directory-classify"),
    # 3. a full disk (and 8: audition on a full disk)
    P(Row(events_full_disk, 1, ("events.csv",), needs=("full_disk",), stdout_any=True,
          check=_full_disk_check(failed="events.csv", maybe_written=("out.mid",))), id="full-disk-events-csv"),
    P(Row(plot_full_disk, 1, ("out.png",), needs=("full_disk",), stdout_any=True,
          check=_full_disk_check(failed="out.png", maybe_written=("out.mid",))), id="full-disk-plot"),
    P(Row(mid_full_disk, 1, ("out.mid",), needs=("full_disk",), stdout_any=True), id="full-disk-mid"),
    P(Row(audition_full_disk, 1, ("out.wav",), needs=("full_disk",), stdout_any=True), id="full-disk-audition"),
    # 4. interrupts: Ctrl-C at several moments, the first within 100 ms of the start
    *[P(Row(lambda c: interrupt(c, mid_run=False), 130, ("interrupt",), how="subprocess", sigint_after_s=t,
            needs=("long_input",), stdout_any=True, check=_interrupt_check), id=f"sigint-at-{t}s")
      for t in (0.05, 0.3, 0.8)],
    P(Row(lambda c: interrupt(c, mid_run=True), 130, ("interrupt",), how="subprocess", sigint_after_s=4.0,
          needs=("long_input",), stdout_any=True, check=_interrupt_check), id="sigint-mid-run-keeps-notes"),
    # 5. non-finite audio
    P(Row(lambda c: transcribe(c, "--events", c.want("out.csv", ABSENT), audio=c.copy(c.inputs.all_nan)), 1,
          ("all_nan.wav",)), id="nan-all-transcribe"),
    P(Row(lambda c: transcribe(c, "--events", c.want("out.csv", ABSENT), audio=c.copy(c.inputs.few_nan)), 1,
          ("few_nan.wav",)), id="nan-few-transcribe"),
    P(Row(lambda c: ["classify", c.copy(c.inputs.all_nan)], 1, ("all_nan.wav",)), id="nan-all-classify"),
    P(Row(lambda c: ["classify", c.copy(c.inputs.few_nan)], 1, ("few_nan.wav",)), id="nan-few-classify"),
    P(Row(sort_nan("all_nan"), 0, stdout_any=True), id="nan-all-sort-to-unreadable"),
    P(Row(sort_nan("few_nan"), 0, stdout_any=True), id="nan-few-sort-to-unreadable"),
    # 6. a text file named .mp3
    P(Row(lambda c: transcribe(c, audio=c.copy(c.inputs.text_mp3)), 1, ("text.mp3",),
          check=lambda c, r: _not_audio_message(r)), id="text-as-mp3-transcribe"),
    P(Row(lambda c: ["classify", c.copy(c.inputs.text_mp3)], 1, ("text.mp3",),
          check=lambda c, r: _not_audio_message(r)), id="text-as-mp3-classify"),
    # 8. checkpoints that load but have bad fields
    P(Row(checkpoint("resaved.pt", mid=Midi(min_notes=1)), 0, stdout_any=True),
      id="checkpoint-resaved-unaltered-works"),
    P(Row(checkpoint("thresholds.pt", thresholds="x"), 1, ("thresholds.pt",)), id="checkpoint-thresholds-x"),
    P(Row(checkpoint("short.pt", thresholds=[0.5, 0.5]), 1, ("short.pt",)), id="checkpoint-thresholds-too-few"),
    P(Row(checkpoint("labels.pt", labels=[]), 1, ("labels.pt",)), id="checkpoint-labels-empty"),
    P(Row(checkpoint("hop.pt", feature_params=lambda fp: {**fp, "hop_samples": 0}), 1, ("hop.pt",)),
      id="checkpoint-feature-params-hop-0"),
    P(Row(checkpoint("mels.pt", feature_params=lambda fp: {**fp, "n_mels": "many"}), 1, ("mels.pt",)),
      id="checkpoint-feature-params-n-mels-text"),
    P(Row(checkpoint("fp.pt", feature_params="x"), 1, ("fp.pt",)), id="checkpoint-feature-params-not-a-dict"),
    P(Row(lambda c: transcribe(c, "--model", c.existing("text.pt")), 1, ("text.pt",)), id="checkpoint-text-file"),
    P(Row(lambda c: transcribe(c, "--model", _fifo(c, "model.pt")), 1, ("model.pt",), how="subprocess",
          timeout_s=30), id="checkpoint-fifo-transcribe"),
    P(Row(lambda c: ["classify", c.copy(c.inputs.short), "--model", _fifo(c, "model.pt")], 1, ("model.pt",),
          how="subprocess", timeout_s=30), id="checkpoint-fifo-classify"),
    P(Row(checkpoint("label.pt", labels=lambda labels: ["cowbell", *labels[1:]]), 1, ("label.pt", "cowbell")),
      id="checkpoint-unknown-label"),
    P(Row(checkpoint("onset.pt", onset_params=lambda op: {**op, "sparkle": 1}), 1, ("onset.pt", "onset_params")),
      id="checkpoint-onset-params-unknown-key"),
    P(Row(lambda c: evaluate_second_bad(b"0.1\tKD\n")(c) + ["--model", str(broken_checkpoint(
        c.path("thresholds.pt"), thresholds="x"))], 1, ("thresholds.pt",)), id="checkpoint-thresholds-x-evaluate"),
    P(Row(train_args(config=None), 1, ("windows.npz",)), id="train-data-text-file"),
    P(Row(train_args(config=None, out=False), 1, ("windows.npz",)), id="train-data-text-file-default-output"),
    P(Row(train_args(config=b"epochs = 3\n"), 1, ("config.json",)), id="train-config-not-json"),
    # 8. presets: effects and drum maps
    P(Row(preset_file("gain.json", '{"plugins": [{"plugin": "Gain", "gain_db": 1000}]}'), 1, ("gain.json",)),
      id="effects-gain-1000db-audition"),
    P(Row(preset_file("gain.json", '{"plugins": [{"plugin": "Gain", "gain_db": 1000}]}', command="transcribe"),
          1, ("gain.json",)), id="effects-gain-1000db-transcribe-audition"),
    P(Row(preset_file("unknown.json", '{"plugins": [{"plugin": "Fuzzinator", "drive": 3}]}'), 1,
          ("unknown.json",)), id="effects-unknown-plugin"),
    P(Row(preset_file("notjson.json", "plugins: [Reverb]\n"), 1, ("notjson.json",)), id="effects-not-json"),
    P(Row(drum_map_file("map.json", "kick = 36\n"), 1, ("map.json",)), id="drum-map-not-json"),
    P(Row(drum_map_file("map.json", '{"notes": "kick 36"}'), 1, ("map.json",)), id="drum-map-notes-not-object"),
    P(Row(drum_map_file("map.json", (REPO / "presets/drum_maps/general_midi.json").read_text().replace(
        '"kick": 36', '"kick": 200')), 1, ("map.json",)), id="drum-map-note-200"),
    P(Row(drum_map_file("map.json", "[36, 38]", command="audition"), 1, ("map.json",)),
      id="drum-map-bad-audition"),
    # 9. broken annotations: found before any track is transcribed (stdout stays empty)
    P(Row(evaluate_second_bad(b"0.1\tKD\n0.5\tSD\n0.9\tXX\n"), 1, ("b.txt",)),
      id="evaluate-second-annotation-bad-class"),
    P(Row(evaluate_second_bad(b"0.1\tKD\nhalf past\tSD\n"), 1, ("b.txt",)), id="evaluate-second-annotation-bad-time"),
    P(Row(evaluate_second_bad(b"\xff\xfe\x00\x01binary"), 1, ("b.txt",)), id="evaluate-second-annotation-not-text"),
    # 9. arguments checked before any work
    P(Row(lambda c: transcribe(c, "--plot", c.want("x.xyz", ABSENT)), 1, ("xyz",)), id="plot-unknown-format"),
    P(Row(lambda c: transcribe(c, "--plot", c.want("out.png", Png()), "--events",
                               c.want("out.csv", Csv(reference=True)), mid=Midi(reference=True)), 0, stdout_any=True),
      id="all-outputs-good-input-works"),
    *[P(Row(lambda c, v=v: transcribe(c, "--note-length-ms", v), 1, ("--note-length-ms",)),
        id=f"note-length-ms-{v}") for v in ("inf", "nan", "0", "-1")],
    # 10. exit codes
    P(Row(sort_usage(), 2), id="sort-usage-no-folders"),
    P(Row(sort_usage("IN"), 2), id="sort-usage-one-folder"),
    P(Row(sort_usage("IN", "OUT", "IN"), 2), id="sort-usage-three-folders"),
    P(Row(sort_usage("--undo", "MANIFEST", "IN"), 2), id="sort-usage-undo-with-folders"),
    P(Row(lambda c: ["audition", c.copy(c.inputs.non_drum_mid), "-o", c.want("out.wav", ABSENT), "--kit",
                     c.copy(c.inputs.kit, "kit")], 1, ("non_drum.mid",)), id="audition-only-non-drum-notes"),
    P(Row(lambda c: ["audition", c.copy(c.inputs.empty_mid), "-o", c.want("out.wav", ABSENT), "--kit",
                     c.copy(c.inputs.kit, "kit")], 1, ("empty.mid",)), id="audition-no-notes"),
    P(Row(lambda c: ["audition", c.copy(c.inputs.drum_mid), "-o", c.want("out.wav", Audio()), "--kit",
                     c.copy(c.inputs.kit, "kit")], 0, stdout_any=True), id="audition-drum-notes-works"),
    P(Row(lambda c: ["drum-maps"], (0, 1, 141, -signal.SIGPIPE), how="pipe-head"), id="drum-maps-pipe-head-1"),
    P(Row(lambda c: ["drum-maps"], (0, 1, 141, -signal.SIGPIPE), how="pipe-closed"), id="drum-maps-pipe-closed"),
    # 13. live --record when the input fails at start
    P(Row(live_record(existing=False), 1, how="subprocess"), id="live-record-input-fails"),
    P(Row(live_record(existing=True), 1, how="subprocess"), id="live-record-input-fails-keeps-old-take"),
]


def _not_audio_message(result: Result) -> str:
    """Item 6: say it is not audio drumscribe can read, not that it is missing or a pipe."""
    line = result.err_lines[0].lower() if result.err_lines else ""
    if "not audio" not in line and "not an audio" not in line:
        return f"the message does not say the file is not audio: {line!r}"
    for wrong in ("does not exist", "regular file", "pipe"):
        if wrong in line:
            return f"the message says {wrong!r}: {line!r}"
    return ""


@pytest.mark.parametrize("row", ROWS)
def test_bad_input(row: Row, tmp_path, capfd, request, inputs, reference):
    ctx = Ctx(tmp_path, inputs, reference)
    if "full_disk" in row.needs:
        ctx.full = request.getfixturevalue("full_disk")
    if "long_input" in row.needs:
        ctx.long = request.getfixturevalue("long_input")
    argv = [str(a) for a in row.build(ctx)]
    result = run_row(row, argv, capfd)
    problems = judge(row, ctx, result)
    assert not problems, (f"drumscribe {' '.join(argv)}\n  " + "\n  ".join(problems)
                          + (f"\n  ({result.note})" if result.note else "")
                          + f"\n--- stderr (exit {result.code}, {result.seconds:.1f} s) ---\n{result.err[-3000:]}")


# ---------------------------------------------------------------------------------------------------------------
# fuzz: 30 random byte files per audio extension


FUZZ = fuzz_corpus()


@pytest.mark.parametrize("name,ext,data", [P(n, e, d, id=f"fuzz-{n}") for n, e, d in FUZZ])
def test_fuzz(name, ext, data, tmp_path, capfd, inputs, reference):
    """Junk named as audio: exit 1 with one line naming the file and nothing written, or (when a decoder finds
    audio in it) exit 0 or 3 with complete outputs. Never a traceback, never a hang."""
    ctx = Ctx(tmp_path, inputs, reference)
    audio = ctx.existing(f"junk.{ext}", data)
    mid, events = tmp_path / "out.mid", tmp_path / "out.csv"
    argv = ["transcribe", audio, "-o", mid, "--events", events, NO_PROGRESS]
    result = run_inprocess(argv, capfd, timeout_s=60)
    codes = (0, 1, 3)
    states = {1: (ABSENT, ABSENT)}.get(result.code, (Midi(), Csv()))
    ctx.expect[mid], ctx.expect[events] = states
    row = Row(lambda c: argv, codes, (f"junk.{ext}",) if result.code == 1 else (), stdout_any=result.code != 1)
    problems = judge(row, ctx, result)
    assert not problems, (f"drumscribe {' '.join(map(str, argv))} ({len(data)} bytes)\n  " + "\n  ".join(problems)
                          + f"\n--- stderr (exit {result.code}) ---\n{result.err[-3000:]}")


def test_fuzz_corpus_is_what_the_issue_asks():
    """30 files per extension, the same bytes every run, and not all of one kind."""
    assert [sum(1 for _, e, _ in FUZZ if e == ext) for ext in FUZZ_EXTENSIONS] == [30] * 4
    assert [d for _, _, d in fuzz_corpus()] == [d for _, _, d in FUZZ]
    heads = {d[:4] for _, _, d in FUZZ}
    assert {b"RIFF", b"fLaC", b"OggS", b"ID3\x03"} <= heads
