"""drumscribe's streaming engine: sources -> stages -> sinks, the same for live input and files."""

SAMPLE_RATE_HZ = 48000
"""Every stage runs at this rate; sources resample to it."""

DEFAULT_BLOCK_SIZE_SAMPLES = 128
"""The block size a live audio interface delivers, and the one files are read in by default."""
