"""Classify one-shot samples and sort a folder of them into one folder per class, safely.

`sort_folder` walks IN_DIR, copies (or moves) every audio file into OUT_DIR/<class>/ under its own name (a suffix on
a clash: it never overwrites), puts files it cannot decode in OUT_DIR/_unreadable/ and files the model is unsure of
in OUT_DIR/_unsure/, and records each file in OUT_DIR/manifest.csv before touching it. A file whose row is in the
manifest and whose destination exists is sorted: a re-run, or a run resumed after an interruption, skips it. `undo`
puts moved files back. Copies are made under a temporary name and linked into place, moves are a hard link and an
unlink, so a destination is either complete or absent and no step replaces an existing file.
"""
from __future__ import annotations

import csv
import errno
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .oneshots import AUDIO_EXTENSIONS, OneShotParams, SampleReadError, is_silent, oneshot_image, read_sample

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ("source", "destination", "class", "confidence", "reason", "action", "bytes")
UNSURE_DIR = "_unsure"
UNREADABLE_DIR = "_unreadable"
PARTIAL_SUFFIX = ".drumscribe-partial"
DEFAULT_MIN_CONFIDENCE = 0.6


class SortError(ValueError):
    """A problem with the folders, the manifest or a file operation; the message is one line for the user."""


# ---------------------------------------------------------------------------------------------------------------
# Classifying


@dataclass(frozen=True)
class Classification:
    path: Path
    label: str | None  # None: the file is unreadable or silent
    confidence: float  # probability of `label`
    probabilities: dict = field(default_factory=dict)  # every label -> probability, most likely first
    error: str = ""  # why there is no label

    def probabilities_array(self, labels) -> np.ndarray:
        return np.array([self.probabilities.get(label, 0.0) for label in labels])

    def as_dict(self) -> dict:
        return {"file": str(self.path), "class": self.label, "confidence": round(self.confidence, 4),
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
                **({"error": self.error} if self.error else {})}


class SampleClassifier:
    """A one-shot checkpoint with its front end: audio or files in, class probabilities out."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self.model = checkpoint.model.eval()
        self.labels = list(checkpoint.labels)
        self.params = OneShotParams.from_dict(checkpoint.feature_params)
        if checkpoint.mel_basis is None:
            from drumscribe.realtime.features import mel_basis

            self.basis = mel_basis(self.params.features)
        else:
            self.basis = np.asarray(checkpoint.mel_basis, np.float64)

    @classmethod
    def from_file(cls, path: str | Path) -> SampleClassifier:
        """Raises models.oneshot.CheckpointError (one line) for a missing or bad file."""
        from drumscribe.models.oneshot import CheckpointError, load_checkpoint

        checkpoint = load_checkpoint(path)
        try:
            return cls(checkpoint)
        except ValueError as exc:
            raise CheckpointError(f"model file '{path}' has bad feature parameters ({exc})") from None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return torch.softmax(self.model(torch.from_numpy(np.asarray(images, np.float32))), dim=1).numpy()

    def classify_audio(self, audio: np.ndarray, path: str | Path = "") -> Classification:
        """audio: mono at the checkpoint's sample rate."""
        if is_silent(audio, self.params):
            reason = "no samples" if not len(audio) else f"silent (peak below {self.params.silence_peak_db:g} dBFS)"
            return Classification(Path(path), None, 0.0, error=reason)
        probs = self.probabilities(oneshot_image(audio, self.params, self.basis)[None])[0]
        order = np.argsort(-probs, kind="stable")
        return Classification(Path(path), self.labels[order[0]], float(probs[order[0]]),
                              {self.labels[i]: float(probs[i]) for i in order})

    def classify_file(self, path: str | Path) -> Classification:
        """Never raises for a bad audio file: the Classification carries the reason instead."""
        try:
            audio = read_sample(path, sample_rate_hz=self.params.sample_rate_hz)
        except SampleReadError as exc:
            return Classification(Path(path), None, 0.0, error=str(exc))
        return self.classify_audio(audio, path)


# ---------------------------------------------------------------------------------------------------------------
# Folders


def _mode(path: Path) -> str:
    return stat.filemode(path.stat().st_mode)


def check_writable_dir(path: Path, what: str) -> None:
    """A folder we may create files in: its mode allows writing (even for root) and a probe file can be made."""
    if not path.is_dir():
        raise SortError(f"{what} '{path}' is not a folder")
    if not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK | os.X_OK):
        raise SortError(f"{what} '{path}' is read-only ({_mode(path)}); expected a folder that can be written")
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".drumscribe-probe-")
    except OSError as exc:
        raise SortError(f"{what} '{path}' cannot be written ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


_SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_file_kind(path: Path) -> str | None:
    """What a path that is not a regular file is ('a FIFO (named pipe)', ...), following links; None for a regular
    file, a folder or a path that does not exist (a broken link). Reading a FIFO would wait for a writer forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((what for test, what in _SPECIAL_FILES if test(mode)), None)


def find_audio_files(in_dir: Path) -> tuple[list, int, list]:
    """(audio files below in_dir in path order, number of other files, (path, what) of the special files named as
    audio: FIFOs, sockets and devices, which are neither read nor moved). Hidden files and folders are left out;
    symbolic links to folders are not followed."""
    audio, others, special = [], 0, []
    for root, dirs, files in os.walk(in_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
                others += 1
            elif (kind := special_file_kind(Path(root) / name)) is not None:
                special.append((Path(root) / name, kind))
            else:
                audio.append(Path(root) / name)
    return audio, others, special


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _unique_destination(folder: Path, name: str, reserved: set) -> Path:
    """folder/name, or folder/<stem>_2<suffix>, _3... : a path that neither exists nor is reserved."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    k = 1
    while candidate in reserved or os.path.lexists(candidate):
        k += 1
        candidate = folder / f"{stem}_{k}{suffix}"
    reserved.add(candidate)
    return candidate


# ---------------------------------------------------------------------------------------------------------------
# The manifest


def read_manifest(path: Path) -> list:
    """The rows of a manifest (dicts of MANIFEST_FIELDS), oldest first."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [name for name in MANIFEST_FIELDS if name not in (reader.fieldnames or [])]
            if missing:
                raise SortError(f"'{path}' is not a sort manifest: it has no '{missing[0]}' column "
                                f"(expected: {', '.join(MANIFEST_FIELDS)})")
            return list(reader)
    except OSError as exc:
        raise SortError(f"manifest '{path}' cannot be read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SortError(f"manifest '{path}' is not a readable CSV file ({exc})") from None


def _check_manifest_is_a_file(path: Path) -> None:
    kind = special_file_kind(path)
    if kind is not None:  # reading or appending to a FIFO would wait forever
        raise SortError(f"manifest '{path}' is {kind}, not a regular file; expected OUT_DIR/{MANIFEST_NAME}")


def current_rows(rows: list) -> list:
    """The rows that still describe a file: the last row of each source, unless a later row took its destination."""
    last_of_source = {row["source"]: i for i, row in enumerate(rows)}
    last_of_destination = {row["destination"]: i for i, row in enumerate(rows) if row["destination"]}
    return [row for i, row in enumerate(rows)
            if last_of_source[row["source"]] == i
            and (not row["destination"] or last_of_destination[row["destination"]] == i)]


class _ManifestWriter:
    """Appends rows and forces each to disk before the file operation it announces."""

    def __init__(self, path: Path):
        new = not path.exists() or path.stat().st_size == 0
        self.file = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, fieldnames=MANIFEST_FIELDS)
        if new:
            self.writer.writeheader()
            self._sync()

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self._sync()

    def _sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


def _write_manifest(path: Path, rows: list) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows({k: row.get(k, "") for k in MANIFEST_FIELDS} for row in rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------------------------
# File operations that never replace a file


def _copy_into_place(source: Path, destination: Path) -> None:
    """Copy under a temporary name, then link it to `destination` (fails rather than replace an existing file)."""
    tmp = destination.parent / f".{destination.name}{PARTIAL_SUFFIX}"
    try:
        shutil.copyfile(source, tmp)
        shutil.copystat(source, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.link(tmp, destination)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _move_into_place(source: Path, destination: Path) -> None:
    """Hard-link `source` at `destination`, then unlink `source`; across file systems, copy then unlink."""
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        _copy_into_place(source, destination)
    try:
        os.unlink(source)
    except OSError:
        os.unlink(destination)  # the source stays where it was: undo our half of the move
        raise


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
        import filecmp

        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# sort and undo


@dataclass
class SortSummary:
    out_dir: Path
    manifest: Path
    counts: dict = field(default_factory=dict)  # destination folder -> files sorted there in this run
    already_sorted: int = 0  # files a previous run sorted
    left_in_place: list = field(default_factory=list)  # (source, reason) of files that could not be moved or read
    other_files: int = 0  # files below IN_DIR that are not audio (left alone)
    planned: list = field(default_factory=list)  # manifest rows of this run (what a dry run would do)
    dry_run: bool = False

    @property
    def sorted(self) -> int:
        return sum(self.counts.values())


def sort_folder(in_dir: str | Path, out_dir: str | Path, classifier: SampleClassifier, *, move: bool = False,
                dry_run: bool = False, min_confidence: float = DEFAULT_MIN_CONFIDENCE, progress=None) -> SortSummary:
    """Sort the audio files below in_dir into out_dir/<class>/ (see the module's doc).

    progress: called as progress(done, total) after each file. A KeyboardInterrupt leaves every file either sorted
    (with its manifest row) or untouched; running again finishes the job.
    """
    in_dir, out_dir = Path(in_dir).absolute(), Path(out_dir).absolute()
    if not 0.0 <= min_confidence <= 1.0:
        raise SortError(f"--min-confidence {min_confidence} is not in 0-1")
    if not in_dir.exists():
        raise SortError(f"IN_DIR '{in_dir}' does not exist")
    if not in_dir.is_dir():
        raise SortError(f"IN_DIR '{in_dir}' is not a folder")
    if _inside(out_dir.resolve(), in_dir.resolve()):
        raise SortError(f"OUT_DIR '{out_dir}' lies inside IN_DIR '{in_dir}'; choose an OUT_DIR outside it")
    if out_dir.exists() and not out_dir.is_dir():
        raise SortError(f"OUT_DIR '{out_dir}' exists and is not a folder")
    if move and not dry_run and (not in_dir.stat().st_mode & 0o222 or not os.access(in_dir, os.W_OK)):
        raise SortError(f"IN_DIR '{in_dir}' is read-only ({_mode(in_dir)}): --move cannot take files out of it "
                        f"(without --move, sort copies them)")
    manifest = out_dir / MANIFEST_NAME
    files, other_files, special = find_audio_files(in_dir)
    if not files and not manifest.exists():
        raise SortError(f"IN_DIR '{in_dir}' holds no audio files (expected {', '.join(AUDIO_EXTENSIONS[:6])}...)")
    if not dry_run:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SortError(f"OUT_DIR '{out_dir}' cannot be created ({exc.strerror or exc})") from None
        check_writable_dir(out_dir, "OUT_DIR")
    summary = SortSummary(out_dir=out_dir, manifest=manifest, dry_run=dry_run, other_files=other_files)
    summary.left_in_place += [(path, f"it is {kind}, not a regular file; left where it is") for path, kind in special]

    if os.path.lexists(manifest):
        _check_manifest_is_a_file(manifest)
    rows = current_rows(read_manifest(manifest)) if manifest.exists() else []
    done = set()
    for row in rows:
        source, destination = Path(row["source"]), Path(row["destination"]) if row["destination"] else None
        if destination is None or not os.path.lexists(destination):
            continue  # announced but never done (interrupted, or left in place): sort it again
        if row["action"] == "move" and os.path.lexists(source) and not dry_run:
            if _same_file(source, destination):  # interrupted between the link and the unlink: finish the move
                os.unlink(source)
            else:
                continue  # a new file now lies at the source path: sort it too
        done.add(row["source"])
    if not dry_run:
        for partial in out_dir.rglob(f".*{PARTIAL_SUFFIX}"):  # copies an interruption cut short
            partial.unlink()

    reserved = set()
    writer = None if dry_run else _ManifestWriter(manifest)
    try:
        for n, source in enumerate(files):
            if str(source) in done:
                summary.already_sorted += 1
            else:
                _sort_one(source, out_dir, classifier, summary, reserved, writer, move=move,
                          min_confidence=min_confidence)
            if progress is not None:
                progress(n + 1, len(files))
    finally:
        if writer is not None:
            writer.close()
    return summary


def _sort_one(source: Path, out_dir: Path, classifier: SampleClassifier, summary: SortSummary, reserved: set,
              writer, *, move: bool, min_confidence: float) -> None:
    result = classifier.classify_file(source)
    if result.label is None and not result.error.startswith(("silent", "no samples")):
        folder, reason = UNREADABLE_DIR, result.error
    elif result.label is None:
        folder, reason = UNSURE_DIR, result.error
    elif result.confidence < min_confidence:
        folder, reason = UNSURE_DIR, f"confidence {result.confidence:.2f} below {min_confidence:g}"
    else:
        folder, reason = result.label, ""
    if (out_dir / folder).resolve() == source.parent.resolve():  # sorting OUT_DIR/_unsure/ again: it stays
        summary.already_sorted += 1
        return
    try:
        size = str(source.lstat().st_size)
    except OSError as exc:  # vanished since the walk
        summary.left_in_place.append((source, exc.strerror or str(exc)))
        return
    if not source.exists():
        summary.left_in_place.append((source, f"a symbolic link to '{os.readlink(source)}', which does not exist"))
        return
    row = {"source": str(source), "destination": "", "class": result.label or "",
           "confidence": f"{result.confidence:.4f}" if result.label else "", "reason": reason,
           "action": "move" if move else "copy", "bytes": size}
    if move and (not source.parent.stat().st_mode & 0o222 or not os.access(source.parent, os.W_OK)):
        why = f"folder '{source.parent}' is read-only ({_mode(source.parent)}); left in place"
        summary.left_in_place.append((source, why))
        if writer is not None:
            writer.write({**row, "reason": why, "action": "none"})
        return
    target_dir = out_dir / folder
    row["destination"] = str(_unique_destination(target_dir, source.name, reserved))
    summary.planned.append(row)
    if writer is None:  # dry run
        summary.counts[folder] = summary.counts.get(folder, 0) + 1
        return
    if not target_dir.exists():
        target_dir.mkdir()
    check_writable_dir(target_dir, "destination folder")
    writer.write(row)
    destination = Path(row["destination"])
    try:
        (_move_into_place if move else _copy_into_place)(source, destination)
    except FileExistsError:
        raise SortError(f"'{destination}' appeared while sorting (another program is writing there); "
                        f"'{source}' was left where it is; run sort again") from None
    except OSError as exc:
        raise SortError(f"cannot {'move' if move else 'copy'} '{source}' to '{destination}' "
                        f"({exc.strerror or exc}); that file was left where it is") from None
    summary.counts[folder] = summary.counts.get(folder, 0) + 1


@dataclass
class UndoSummary:
    restored: int = 0
    already_back: int = 0  # moved back by an earlier, interrupted undo
    copies_left: int = 0  # copies stay: their originals were never touched
    problems: list = field(default_factory=list)  # one line each: files undo left where they are


def undo(manifest_path: str | Path, *, progress=None) -> UndoSummary:
    """Move every moved file back to where it came from (never replacing a file there), then drop those rows from
    the manifest and remove the class folders left empty."""
    manifest = Path(manifest_path).absolute()
    if not manifest.exists():
        raise SortError(f"manifest '{manifest}' does not exist")
    if manifest.is_dir():
        raise SortError(f"manifest '{manifest}' is a folder; expected OUT_DIR/{MANIFEST_NAME}")
    _check_manifest_is_a_file(manifest)
    check_writable_dir(manifest.parent, "OUT_DIR")
    rows = current_rows(read_manifest(manifest))
    folders = {Path(row["destination"]).parent for row in rows if row["destination"]}
    summary, keep, n = UndoSummary(), [], 0
    newest_first = rows[::-1]  # a file sorted again from _unsure/ goes back there first, then home
    try:
        for n, row in enumerate(newest_first):
            if row["action"] == "move" and row["destination"]:
                if not _undo_move(row, summary):
                    keep.append(row)
            else:
                summary.copies_left += row["action"] == "copy" and os.path.lexists(row["destination"])
                keep.append(row)
            if progress is not None:
                progress(n + 1, len(rows))
    except BaseException:
        keep += newest_first[n:]  # the row in hand too: a second undo sees whether its file is back
        raise
    finally:
        if keep:
            _write_manifest(manifest, keep[::-1])
        elif manifest.exists():
            manifest.unlink()
        for folder in sorted(folders):  # class folders that sorting made and undo emptied
            if folder.parent == manifest.parent and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return summary


def _undo_move(row: dict, summary: UndoSummary) -> bool:
    """True when the file is back at its source (or already was)."""
    source, destination = Path(row["source"]), Path(row["destination"])
    there = os.path.lexists(destination)
    if not there:
        if os.path.lexists(source):
            summary.already_back += 1
            return True
        summary.problems.append(f"'{destination}' is gone (deleted or moved since sorting); nothing to put back "
                                f"at '{source}'")
        return False
    if os.path.lexists(source):
        if _same_file(source, destination):  # an undo interrupted between the link and the unlink
            os.unlink(destination)
            summary.restored += 1
            return True
        summary.problems.append(f"'{source}' exists again; left '{destination}' where it is")
        return False
    if row.get("bytes") and str(destination.lstat().st_size) != row["bytes"]:
        summary.problems.append(f"'{destination}' changed since sorting ({destination.lstat().st_size} bytes, "
                                f"sorted {row['bytes']}); left it where it is")
        return False
    try:
        source.parent.mkdir(parents=True, exist_ok=True)
        _move_into_place(destination, source)
    except OSError as exc:
        summary.problems.append(f"cannot move '{destination}' back to '{source}' ({exc.strerror or exc})")
        return False
    summary.restored += 1
    return True
