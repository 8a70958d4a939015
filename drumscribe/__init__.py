"""drumscribe: drum audio in, General-MIDI drum notes out. The command line lives in drumscribe.cli."""

__version__ = "0.1.0"
