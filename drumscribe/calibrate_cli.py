"""`drumscribe calibrate`: a kit profile from a take of each drum played in turn (realtime.profile)."""
from __future__ import annotations

import json

from ._common import DrumscribeError, add_live_input_options, add_model_option, load_model


def add_calibrate_command(commands) -> None:
    c = commands.add_parser(
        "calibrate", help="learn a kit profile from a take of each drum in turn",
        description="Read a take in which each drum of --sequence is played --hits times in turn (a pause of at "
                    "least twice the gap between strokes before the next drum), and write a kit profile (JSON) "
                    "that transcribe, transcribe --live and live take with --profile.")
    c.add_argument("take", metavar="TAKE", nargs="?",
                   help="the calibration take (wav, flac, mp3, ogg); with --live, also where the take is kept "
                        "(optional)")
    c.add_argument("--live", action="store_true",
                   help="record the take from the live input, drum by drum: a prompt for each drum, its strokes "
                        "counted, the next drum once --hits are played and a second is quiet")
    add_live_input_options(c, prefix="--live: ")
    c.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="--live: give up when a drum is not done in this long (default: 120)")
    c.add_argument("--sequence", required=True, metavar="DRUM,DRUM,...",
                   help="the drums in the order they are played (names as in 'drumscribe drum-maps')")
    c.add_argument("--hits", type=int, default=8, metavar="N", help="strokes of each drum (default: 8)")
    c.add_argument("--velocity", type=int, default=None, metavar="1-127",
                   help="the velocity the take was played at: each drum's level is shifted so that its strokes "
                        "come out at it (default: no shift)")
    c.add_argument("-o", "--output", required=True, metavar="JSON", help="the profile to write")
    add_model_option(c, default="the shipped model and the shipped live model, both")
    c.set_defaults(run=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.drums import DRUMS

    sequence = [d.strip() for d in args.sequence.split(",") if d.strip()]
    for d in sequence:
        if d not in DRUMS:
            raise DrumscribeError(f"--sequence: {d!r} is not a drum; drums are: {', '.join(DRUMS)}")
    if not sequence:
        raise DrumscribeError("--sequence is empty; expected drums such as kick,snare,hh_closed")
    if not 2 <= args.hits <= 64:
        raise DrumscribeError(f"--hits {args.hits} must be 2 to 64")
    if args.velocity is not None and not 1 <= args.velocity <= 127:
        raise DrumscribeError(f"--velocity {args.velocity} must be 1 to 127")
    import numpy as np

    from drumscribe.realtime.profile import CalibrationError, calibrate
    from drumscribe.realtime.sinks import atomic_output
    from drumscribe.realtime.sources import AudioInputError, FileSource

    if args.live:
        audio = _record_take(args, sequence)
        if args.take:
            import soundfile as sf

            with atomic_output(args.take) as tmp:
                sf.write(str(tmp), audio.astype(np.float32), SAMPLE_RATE_HZ, format="WAV")
    elif not args.take:
        raise DrumscribeError("calibrate: give the TAKE to read, or --live to record it")
    else:
        try:
            source = FileSource(args.take, block_size_samples=65536, sample_rate_hz=SAMPLE_RATE_HZ)
            audio = np.concatenate([np.asarray(b, dtype=np.float64) for b in source] or [np.zeros(0)])
        except AudioInputError as exc:
            raise DrumscribeError(str(exc)) from None
    if args.model:
        models = [(args.model, load_model(args.model))]
    else:
        from drumscribe.models import DEFAULT_MODEL_PATH

        from ._common import default_model_path

        models = [(DEFAULT_MODEL_PATH.name, load_model(str(DEFAULT_MODEL_PATH)))]
        live = default_model_path(live=True)
        models.append((live.rsplit("/", 1)[-1], load_model(live)))
    try:
        data = calibrate(audio, models, sequence, hits=args.hits, take_name=args.take, velocity=args.velocity)
    except CalibrationError as exc:
        raise DrumscribeError(f"{args.take or 'the live take'}: {exc}") from None
    with atomic_output(args.output) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    counts = ", ".join(f"{d} {v['hits']}" for d, v in data["drums"].items())
    print(f"wrote {args.output}: {counts} strokes; heads for {', '.join(name for name, _ in models)}")
    return 0


def profile_option(args, checkpoint=None):
    """The kit profile of --profile (realtime.profile), checked (with `checkpoint`: that it has the model's head),
    or None."""
    if not getattr(args, "profile", None):
        return None
    from drumscribe.realtime.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
        if checkpoint is not None:
            profile.head_for(checkpoint)
    except ProfileError as exc:
        raise DrumscribeError(f"--profile: {exc}") from None
    return profile


PAUSE_S = 3.0  # silence put between the drums of a live take, so that its groups stand apart


def _record_take(args, sequence):
    """The take from the live input, drum by drum (prompts on stdout), at the engine rate, PAUSE_S of silence
    between drums."""
    import os
    import threading
    import time

    import numpy as np

    from drumscribe.realtime import SAMPLE_RATE_HZ
    from drumscribe.realtime.live import RING_SECONDS, AudioInput, LiveInputError, LiveStats, RingBuffer
    from drumscribe.realtime.profile import StrokeCounter

    for name, value in (("OPENBLAS_NUM_THREADS", "1"), ("OMP_NUM_THREADS", "1"), ("JACK_NO_START_SERVER", "1")):
        os.environ.setdefault(name, value)  # as `drumscribe live`: one compute thread, never start a JACK server
    try:
        audio_input = AudioInput(args.input, channel=args.input_channel, sample_rate_hz=args.sample_rate,
                                 block_size_samples=256)
    except LiveInputError as exc:
        raise DrumscribeError(f"calibrate --live: {exc}") from None
    rate = int(audio_input.sample_rate_hz)
    ring, stats, wake = RingBuffer(int(RING_SECONDS * rate)), LiveStats(), threading.Event()
    block = np.zeros(256, dtype=np.float32)
    parts = []
    with audio_input:
        audio_input.start(ring, stats, wake)
        for number, drum in enumerate(sequence, start=1):
            counter = StrokeCounter(rate)
            print(f"[{number}/{len(sequence)}] play {drum} {args.hits} times, then wait", flush=True)
            started, said = time.monotonic(), 0
            while True:
                wake.wait(0.05)
                wake.clear()
                while ring.available() >= len(block) and ring.read_into(block):
                    counter.add(block)
                if audio_input.gone:
                    raise DrumscribeError("calibrate --live: the audio input went away; nothing written")
                strokes = counter.strokes_s()
                if len(strokes) != said:
                    said = len(strokes)
                    print(f"  {drum}: {said}", flush=True)
                heard_s = counter.samples / rate
                if said >= args.hits and heard_s - strokes[-1] >= 1.0:
                    break
                if time.monotonic() - started > args.timeout:
                    raise DrumscribeError(f"calibrate --live: {drum}: {said} of {args.hits} strokes heard in "
                                          f"{args.timeout:g} s; nothing written")
            parts += [counter.audio(), np.zeros(int(PAUSE_S * rate))]
    audio = np.concatenate(parts)
    if rate != SAMPLE_RATE_HZ:
        import soxr

        audio = soxr.resample(audio, rate, SAMPLE_RATE_HZ, quality="HQ")
    return np.asarray(audio, dtype=np.float64)
