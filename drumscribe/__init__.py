"""drumscribe: drum audio in, General-MIDI drum notes out. The command line lives in drumscribe.cli."""
import os as _os
import sys as _sys

__version__ = "0.1.0"

EARLY_INTERRUPTS = []
"""Ctrl-C received while the `drumscribe` command starts (before its main() runs): main() ends at once, with the
one line and the exit code of any interrupt, not a traceback from the middle of an import."""


def _defer_early_interrupts() -> None:
    import signal

    if _os.path.basename(_sys.argv[0] if _sys.argv else "") != "drumscribe":
        return  # imported as a library (tests, a notebook): leave Ctrl-C alone
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: EARLY_INTERRUPTS.append(signum))
    except ValueError:  # not the main thread
        pass


_defer_early_interrupts()
