"""drumscribe's streaming engine: sources -> stages -> sinks, the same for live input and files."""

SAMPLE_RATE_HZ = 48000
"""Every stage runs at this rate; sources resample to it."""

DEFAULT_BLOCK_SIZE_SAMPLES = 128
"""The block size a live audio interface delivers, and the one files are read in by default."""

RESAMPLE_QUALITY = "LQ"
"""soxr quality of the live resampler (realtime/live.py), and of a file read as the live input would be
(`transcribe --live`, realtime/sources.py). 'LQ' releases each block as it comes (about 2 ms of delay at 44.1 kHz, a
passband to about 80 % of Nyquist, above the spectrogram's 17 kHz for 44.1 kHz input); 'HQ' and 'MQ' release
their output in bursts of ~900 samples, which adds 13 ms of delay on average (measured with 118-sample blocks)."""
