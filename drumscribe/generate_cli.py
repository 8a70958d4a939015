"""`drumscribe generate`: drum one-shots from the shipped generator (models/generator.py), a thin face over it.

    drumscribe generate CLASS -n N -o DIR [--seed S] [--knobs a,b,...] [--length-s L]
    drumscribe generate --like SAMPLE.wav -n N -o DIR [--spread X]
    drumscribe generate ... --loop [--bpm B]      play them in a loop; the keyboard turns the knobs

Every input is checked before anything is written; files get new names (`snare_s7_001.wav`, never over a file that
is there). Registered by drumscribe/cli.py; numpy and the model load inside the command, so `--help` stays instant.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ._common import EXIT_OK, DrumscribeError, one_line

DEFAULT_SPREAD = 0.5  # knobs' standard deviation around --like's (and --knobs') point, in knob units
DEFAULT_BPM = 120.0
KNOB_STEP = 0.25  # one key press
KEYS_UP, KEYS_DOWN = "qwertyui", "asdfghjk"  # knob 1..8: up, down
HELP_KEYS = ("keys: knob 1-{n} up with {up}, down with {down}; space: new random knobs; "
             "x or Ctrl-C: stop")


def register(commands) -> None:
    """Add the generate sub-command to drumscribe's sub-parsers (without importing numpy)."""
    g = commands.add_parser(
        "generate", help="make new drum one-shots from a few knobs",
        usage="drumscribe generate CLASS -n N -o DIR [--seed S] [--knobs a,b,...] [--length-s L]\n"
              "       drumscribe generate --like SAMPLE -n N -o DIR [--spread X]\n"
              "       drumscribe generate ... --loop [--bpm B]",
        description="Generate drum one-shots with the shipped autoencoder: a drum class and a few knobs make a "
                    "sound. Without --knobs each sound gets knobs drawn at random from the model's prior "
                    "(reproducible with --seed); --like encodes a sample and writes variations around its knobs. "
                    "Files are written into DIR as new .wav files (nothing is overwritten). --loop plays the "
                    "sounds in a loop on the audio output while keys turn the knobs.")
    g.add_argument("drum_class", nargs="?", metavar="CLASS",
                   help="kick, snare, rim, clap, hihat_closed, hihat_open, tom, crash, ride or percussion")
    g.add_argument("-n", type=int, default=1, metavar="N", help="how many one-shots (default: 1)")
    g.add_argument("-o", "--out", type=Path, metavar="DIR", help="folder to write them into (made if missing)")
    g.add_argument("--seed", type=int, help="random seed: the same seed, the same sounds (default: a fresh one)")
    g.add_argument("--knobs", metavar="a,b,...", help="the knobs, comma-separated, one value per knob (see "
                                                      "'drumscribe generate --list-knobs')")
    g.add_argument("--like", type=Path, metavar="SAMPLE", help="an audio file to encode: its class and knobs")
    g.add_argument("--spread", type=float, metavar="X",
                   help=f"variation around --like's or --knobs' knobs, in knob units (default: {DEFAULT_SPREAD} "
                        f"with --like, 0 with --knobs)")
    g.add_argument("--length-s", type=float, default=1.0, metavar="L", help="length of each sound (default: 1.0)")
    g.add_argument("--loop", action="store_true", help="play the sounds in a loop; keys turn the knobs")
    g.add_argument("--bpm", type=float, default=DEFAULT_BPM, metavar="B",
                   help=f"--loop's tempo, one sound a beat (default: {DEFAULT_BPM:g})")
    g.add_argument("--list-knobs", action="store_true", help="print the classes, the knob count and range; exit")
    g.add_argument("--model", metavar="PATH", help="generator bundle, a .onnx.npz file (default: the shipped one)")
    g.set_defaults(run=cmd_generate)


# ---------------------------------------------------------------------------------------------------------------
# checks (all before anything is written)


def parse_knobs(text: str, generator) -> list:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise DrumscribeError(f"--knobs '{text}' is not comma-separated numbers, e.g. "
                              f"{','.join(['0'] * generator.n_knobs)}") from None
    try:
        return list(generator.check_knobs(values))
    except ValueError as exc:
        raise DrumscribeError(f"--knobs: {one_line(exc).removeprefix('knobs: ')}") from None


def check_args(args, generator) -> None:
    if args.n < 1:
        raise DrumscribeError(f"-n {args.n}: expected at least 1 one-shot")
    if args.n > 1000:
        raise DrumscribeError(f"-n {args.n}: expected at most 1000 one-shots a run")
    if args.like is None and args.drum_class is None:
        raise DrumscribeError("give a drum CLASS or --like SAMPLE")
    if args.like is not None and args.drum_class is not None:
        raise DrumscribeError(f"CLASS '{args.drum_class}' and --like exclude each other: --like takes the class "
                              f"of its sample")
    if args.like is not None and args.knobs is not None:
        raise DrumscribeError("--knobs and --like exclude each other: --like takes the knobs of its sample")
    if args.drum_class is not None and args.drum_class not in generator.classes:
        raise DrumscribeError(f"CLASS '{args.drum_class}' is not one of: {', '.join(generator.classes)}")
    if args.seed is not None and args.seed < 0:
        raise DrumscribeError(f"--seed {args.seed}: expected a whole number, 0 or more")
    if args.spread is not None and not 0 <= args.spread <= 10:
        raise DrumscribeError(f"--spread {args.spread:g}: expected 0 to 10 knob units")
    try:
        generator.check_length(args.length_s)
    except ValueError as exc:
        raise DrumscribeError(f"--length-s: {one_line(exc)}") from None
    if args.loop and not 20 <= args.bpm <= 400:
        raise DrumscribeError(f"--bpm {args.bpm:g}: expected 20 to 400")
    if args.out is None and not args.loop:
        raise DrumscribeError("-o DIR is required (where to write the sounds), unless --loop")
    if args.out is not None:
        out = args.out
        if out.exists() and not out.is_dir():
            raise DrumscribeError(f"-o '{out}' is a file; expected a folder")
        parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise DrumscribeError(f"-o '{out}': '{parent}' is not a writable folder")


def read_like(path: Path):
    """(audio, sample rate) of --like's file, or one line."""
    from drumscribe.offline.oneshots import SampleReadError, read_sample
    from drumscribe.realtime import SAMPLE_RATE_HZ

    if not path.is_file():
        raise DrumscribeError(f"--like '{path}' is not a file")
    try:
        audio = read_sample(path, max_seconds=5.0)
    except (SampleReadError, OSError) as exc:
        raise DrumscribeError(f"--like '{path}' cannot be read: {one_line(exc)}") from None
    if len(audio) == 0 or not abs(audio).max() > 1e-4:
        raise DrumscribeError(f"--like '{path}' is silent; expected a drum hit")
    return audio, SAMPLE_RATE_HZ


def plan(args, generator):
    """[(class, knobs)] of the sounds to make, and a label for their file names."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    if args.like is not None:
        audio, rate = read_like(args.like)
        drum_class, centre = generator.encode(audio, rate)
        spread = DEFAULT_SPREAD if args.spread is None else args.spread
        print(f"'{args.like}': {drum_class}, knobs {format_knobs(centre)}")
    elif args.knobs is not None:
        drum_class, centre = args.drum_class, np.asarray(parse_knobs(args.knobs, generator))
        spread = 0.0 if args.spread is None else args.spread
    else:
        drum_class, centre, spread = args.drum_class, None, None
    sounds = []
    for _ in range(args.n):
        if centre is None:
            knobs = generator.random_knobs(drum_class, rng)
        else:
            knobs = np.clip(centre + spread * rng.standard_normal(generator.n_knobs), *generator.knob_range)
        sounds.append((drum_class, knobs))
    return sounds, rng


def format_knobs(knobs) -> str:
    return ",".join(f"{v:.2f}" for v in knobs)


# ---------------------------------------------------------------------------------------------------------------
# writing: new names only


def write_new(folder: Path, stem: str, audio, rate: int) -> Path:
    """Write `audio` as FOLDER/STEM.wav, or STEM_2.wav... if that exists: a temporary file linked into place, so
    no existing file is replaced and no partial file is left."""
    import tempfile

    import soundfile as sf

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp.wav")
    os.close(fd)
    try:
        sf.write(tmp, audio, rate, subtype="PCM_24", format="WAV")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        for k in range(1, 100_000):
            target = folder / (f"{stem}.wav" if k == 1 else f"{stem}_{k}.wav")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
        raise DrumscribeError(f"-o '{folder}': no free name for {stem}.wav")
    finally:
        os.unlink(tmp)


def cmd_generate(args) -> int:
    from drumscribe.models.generator import GeneratorError, load_generator

    try:
        generator = load_generator(args.model)
    except GeneratorError as exc:
        raise DrumscribeError(f"--model: {one_line(exc)}" if args.model else one_line(exc)) from None
    if args.list_knobs:
        lo, hi = generator.knob_range
        print(f"classes: {', '.join(generator.classes)}")
        print(f"knobs: {generator.n_knobs}, each from {lo:g} to {hi:g}; sounds up to {generator.max_length_s:.2f} s "
              f"at {generator.sample_rate_hz} Hz")
        return EXIT_OK
    check_args(args, generator)
    sounds, rng = plan(args, generator)
    if args.loop:
        check_output_device()
    written = []
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DrumscribeError(f"-o '{args.out}' cannot be made ({exc.strerror or type(exc).__name__}); "
                                  f"expected a writable folder") from None
        label = f"s{args.seed}" if args.seed is not None else "r"
        for i, (drum_class, knobs) in enumerate(sounds):
            audio, rate = generator.generate(drum_class, knobs, seed=int(rng.integers(2**31)),
                                             length_s=args.length_s)
            try:
                path = write_new(args.out, f"{drum_class}_{label}_{i + 1:03d}", audio, rate)
            except OSError as exc:
                raise DrumscribeError(f"-o '{args.out}': {drum_class}_{label}_{i + 1:03d}.wav cannot be written "
                                      f"({exc.strerror or type(exc).__name__}); {len(written)} of {len(sounds)} "
                                      f"written before it") from None
            written.append(path)
            print(f"{path}  knobs {format_knobs(knobs)}")
    if args.loop:
        return run_loop(generator, sounds, bpm=args.bpm, length_s=args.length_s)
    print(f"wrote {len(written)} one-shot{'s' * (len(written) != 1)} to '{args.out}'", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------
# --loop


def check_output_device():
    """The default output device's name, or one line saying there is none."""
    try:
        import sounddevice as sd

        info = sd.query_devices(kind="output")
    except Exception as exc:  # PortAudio missing (OSError) or no default output (sd.PortAudioError, ValueError)
        raise DrumscribeError(f"--loop: no audio output device ({one_line(exc)}); expected a sound card "
                              f"or an audio server") from None
    if not info or info.get("max_output_channels", 0) < 1:
        raise DrumscribeError("--loop: the default audio device has no outputs; expected a sound card")
    return info["name"]


class KnobLoop:
    """The loop's state without any audio: the sounds' knobs, the keys that turn them, and the blocks of a
    pattern that plays each sound once a beat, in turn. The audio callback only calls `next_block`."""

    def __init__(self, generator, sounds, *, bpm: float, length_s: float, seed: int = 0):
        import numpy as np

        self.generator = generator
        self.sounds = [(c, np.asarray(k, dtype=np.float64)) for c, k in sounds]
        self.offset = np.zeros(generator.n_knobs)
        self.beat_samples = max(1, int(round(60.0 / bpm * generator.sample_rate_hz)))
        self.length_s = length_s
        self.rng = np.random.default_rng(seed)
        self.buffers = [self._render(c, k) for c, k in self.sounds]
        self.position = 0  # samples into the pattern

    def knobs(self, i: int):
        import numpy as np

        return np.clip(self.sounds[i][1] + self.offset, *self.generator.knob_range)

    def _render(self, drum_class, knobs):
        import numpy as np

        audio, _ = self.generator.generate(drum_class, np.clip(knobs, *self.generator.knob_range),
                                           seed=int(self.rng.integers(2**31)), length_s=self.length_s)
        return audio[: self.beat_samples]

    def key(self, ch: str) -> bool:
        """Apply a key press; True when the sounds changed (they are re-rendered), False for other keys."""
        import numpy as np

        n = self.generator.n_knobs
        lo, hi = self.generator.knob_range
        if ch in KEYS_UP[:n] or ch in KEYS_DOWN[:n]:
            i = (KEYS_UP + KEYS_DOWN).index(ch) % len(KEYS_UP)
            self.offset[i] += KNOB_STEP if ch in KEYS_UP else -KNOB_STEP
            self.offset[i] = float(np.clip(self.offset[i], lo - hi, hi - lo))
        elif ch == " ":
            self.sounds = [(c, self.generator.random_knobs(c, self.rng)) for c, _ in self.sounds]
            self.offset[:] = 0
        else:
            return False
        self.buffers = [self._render(c, self.knobs(i)) for i, (c, _) in enumerate(self.sounds)]
        return True

    def next_block(self, frames: int):
        """The next `frames` samples of the pattern (float32 mono)."""
        import numpy as np

        out = np.zeros(frames, dtype=np.float32)
        buffers = self.buffers  # one read: a key press swaps the list whole
        period = self.beat_samples * len(buffers)
        done = 0
        while done < frames:
            pos = self.position % period
            beat, into = divmod(pos, self.beat_samples)
            take = min(frames - done, self.beat_samples - into)
            sound = buffers[beat]
            part = sound[into: into + take]
            out[done: done + len(part)] = part
            done += take
            self.position += take
        return out


def run_loop(generator, sounds, *, bpm: float, length_s: float) -> int:
    import sounddevice as sd

    loop = KnobLoop(generator, sounds, bpm=bpm, length_s=length_s)

    def callback(outdata, frames, _time, _status):
        outdata[:, 0] = loop.next_block(frames)

    n = generator.n_knobs
    print(HELP_KEYS.format(n=n, up=KEYS_UP[:n], down=KEYS_DOWN[:n]), file=sys.stderr)
    try:
        with sd.OutputStream(samplerate=generator.sample_rate_hz, channels=1, dtype="float32", callback=callback):
            for ch in _keys():
                if ch in ("x", "\x03", "\x1b"):
                    break
                if loop.key(ch):
                    print("knobs " + "  ".join(format_knobs(loop.knobs(i)) for i in range(len(loop.sounds))),
                          file=sys.stderr)
    except sd.PortAudioError as exc:
        raise DrumscribeError(f"--loop: the audio output failed ({one_line(exc)})") from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _keys():
    """Key presses from the terminal, one character at a time (lines from a pipe)."""
    if not sys.stdin.isatty():
        for line in sys.stdin:
            yield from line.rstrip("\n")
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            ch = sys.stdin.read(1)
            if not ch:
                return
            yield ch
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
