"""Checkpoint files are written whole or not at all: a temporary file beside the target, flushed to the disk, then
renamed over it. An interrupted or failed write leaves the old file as it was and no temporary file behind.

models/ imports nothing of the project, so its save functions use this rather than realtime.sinks.atomic_output.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path in the folder of `path` for the caller to write; when the block ends without an
    exception, the file is synced to the disk and renamed over `path` (keeping the old file's permissions), else
    it is removed and `path` is untouched. A symlink at `path` is written through: its target is replaced, the
    link stays. A directory, FIFO or device at `path` is refused (OSError) before anything is written."""
    target = Path(os.path.realpath(path))
    mode = None
    if target.exists():
        st = target.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "is a directory, expected a file path", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, "is not a regular file (a FIFO or a device?); expected a file path", str(path))
        mode = stat.S_IMODE(st.st_mode)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself, on the disk (not every file system lets a folder sync)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
