"""The command line: good files of every shape transcribe; every bad input gives one line on stderr, a non-zero
exit and no traceback; Ctrl-C leaves a valid .mid."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from drumscribe.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SILENT, EXIT_USAGE, main
from drumscribe.realtime import SAMPLE_RATE_HZ

REPO = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *, expect_code=EXIT_ERROR, mentions=()):
    assert code == expect_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err
    for word in mentions:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def midi_notes(path) -> list:
    midi = mido.MidiFile(str(path))
    assert midi.type == 1
    return [m for track in midi.tracks for m in track if m.type == "note_on" and m.velocity > 0]


# ---------------------------------------------------------------------------------------------------------------
# good input


def test_transcribe_writes_mid_csv_and_plot(capsys, groove_wav, checkpoint_path, tmp_path):
    out, csv, png = tmp_path / "g.mid", tmp_path / "g.csv", tmp_path / "g.png"
    code, stdout, err = run_cli(capsys, "transcribe", groove_wav, "-o", out, "--events", csv, "--plot", png,
                                "--model", checkpoint_path)
    assert code == EXIT_OK, err
    notes = midi_notes(out)
    assert notes and all(m.channel == 9 for m in notes)
    rows = csv.read_text().splitlines()
    assert rows[0] == "onset_s,emitted_s,drum,midi_note,velocity,confidence"
    assert len(rows) - 1 == len(notes) or len(rows) - 1 >= len(notes)  # same-tick same-note hits merge in MIDI
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "drum hits" in stdout and str(out) in stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_context_decoding_latency_is_in_the_events(capsys, groove_wav, tmp_path):
    """The shipped model decides a file's onsets with the in-song context, which waits ahead_s for the onsets
    after each one, or for the file's end: `emitted_s` says so. --no-context decides each onset alone and releases
    it sooner."""
    import csv as csvlib

    import soundfile as sf

    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint

    ahead_s = load_checkpoint(DEFAULT_MODEL_PATH).extra["context"]["ahead_s"]
    end_s = sf.info(str(groove_wav)).duration
    assert end_s < ahead_s  # so every onset waits for the end
    rows = {}
    for flags in ((), ("--no-context",)):
        events = tmp_path / f"e{len(flags)}.csv"
        code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", "--events", events, *flags)
        assert code == EXIT_OK, err
        rows[flags] = [(float(r["onset_s"]), float(r["emitted_s"])) for r in csvlib.DictReader(events.open())]
        assert rows[flags]
    assert all(emitted >= min(onset + ahead_s, end_s) for onset, emitted in rows[()])
    assert max(emitted - onset for onset, emitted in rows[("--no-context",)]) < ahead_s


def test_drum_map_changes_notes(capsys, groove_wav, checkpoint_path, tmp_path):
    gm, sd3 = tmp_path / "gm.mid", tmp_path / "sd3.mid"
    assert run_cli(capsys, "transcribe", groove_wav, "-o", gm, "--model", checkpoint_path)[0] == EXIT_OK
    assert run_cli(capsys, "transcribe", groove_wav, "-o", sd3, "--model", checkpoint_path,
                   "--drum-map", "superior_drummer_3")[0] == EXIT_OK
    def timed_notes(path, remap=None):
        out, now = [], 0
        for m in mido.MidiFile(str(path)).tracks[1]:
            now += m.time
            if m.type == "note_on":
                out.append((now, (remap or {}).get(m.note, m.note)))
        return sorted(out)

    gm_notes = timed_notes(gm)
    assert gm_notes
    # the maps differ only in the high tom: 50 in General MIDI, 48 in Superior Drummer 3
    assert timed_notes(sd3, {48: 50}) == gm_notes
    assert all(note != 50 for _, note in timed_notes(sd3))


@pytest.mark.parametrize("rate_hz", (8000, 22050, 96000, 192000))
@pytest.mark.parametrize("channels", (1, 2, 6))
def test_any_rate_and_channel_count_transcribes(capsys, groove, checkpoint_path, tmp_path, rate_hz, channels):
    import soxr

    audio = groove[0][: 2 * SAMPLE_RATE_HZ]
    resampled = soxr.resample(audio, SAMPLE_RATE_HZ, rate_hz)
    gains = np.linspace(1.0, 0.5, channels)
    data = (resampled[:, None] * gains[None, :]).astype(np.float32)
    path = tmp_path / f"in_{rate_hz}_{channels}.wav"
    sf.write(str(path), data, rate_hz, subtype="PCM_24")
    out = tmp_path / "out.mid"
    code, _, err = run_cli(capsys, "transcribe", path, "-o", out, "--model", checkpoint_path)
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    midi_notes(out)


def test_mp3_and_flac_transcribe(capsys, groove, checkpoint_path, tmp_path):
    for suffix, kwargs in ((".mp3", {"format": "MP3"}), (".flac", {})):
        path = tmp_path / f"g{suffix}"
        sf.write(str(path), groove[0][: 2 * SAMPLE_RATE_HZ].astype(np.float32), 44100 if suffix == ".mp3" else 48000,
                 **kwargs)
        code, _, err = run_cli(capsys, "transcribe", path, "-o", tmp_path / "o.mid", "--model", checkpoint_path)
        assert code == EXIT_OK, err


def test_silence_gives_an_empty_valid_mid(capsys, checkpoint_path, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros((3 * 44100, 2), np.float32), 44100)
    out, csv = tmp_path / "s.mid", tmp_path / "s.csv"
    code, _, err = run_cli(capsys, "transcribe", path, "-o", out, "--events", csv, "--model", checkpoint_path)
    assert_one_line_error(code, err, expect_code=EXIT_SILENT, mentions=("silent", "s.mid"))
    assert midi_notes(out) == []
    assert csv.read_text().splitlines() == ["onset_s,emitted_s,drum,midi_note,velocity,confidence"]


# ---------------------------------------------------------------------------------------------------------------
# bad input: one line, non-zero exit, no traceback, nothing written


def test_missing_file(capsys, checkpoint_path, tmp_path):
    code, _, err = run_cli(capsys, "transcribe", tmp_path / "nope.mp3", "-o", tmp_path / "o.mid",
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("nope.mp3", "does not exist"))
    assert not (tmp_path / "o.mid").exists()


def test_directory_as_input(capsys, checkpoint_path, tmp_path):
    code, _, err = run_cli(capsys, "transcribe", tmp_path, "-o", tmp_path / "o.mid", "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("directory",))


@pytest.mark.parametrize("content", (b"", b"this is a text file, not audio\n" * 50, os.urandom(4096)),
                         ids=("zero-bytes", "text", "random-bytes"))
def test_file_that_is_not_audio(capsys, checkpoint_path, tmp_path, content):
    path = tmp_path / "song.mp3"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "transcribe", path, "-o", tmp_path / "o.mid", "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("song.mp3",))
    assert not (tmp_path / "o.mid").exists()


def test_audio_file_without_samples(capsys, checkpoint_path, tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros((0, 2), np.float32), 44100)
    code, _, err = run_cli(capsys, "transcribe", path, "-o", tmp_path / "o.mid", "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("empty.wav", "no audio"))
    assert not (tmp_path / "o.mid").exists()


def test_sample_rate_out_of_range(capsys, checkpoint_path, tmp_path):
    path = tmp_path / "low.wav"
    sf.write(str(path), np.zeros(4000, np.float32) + 0.1, 4000)
    code, _, err = run_cli(capsys, "transcribe", path, "-o", tmp_path / "o.mid", "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("4000 Hz", "8000"))


@pytest.mark.parametrize("where", ("missing-folder", "a-directory", "the-input"))
def test_unwritable_output_is_caught_before_transcribing(capsys, groove_wav, tmp_path, where):
    out = {"missing-folder": tmp_path / "no" / "such" / "o.mid", "a-directory": tmp_path,
           "the-input": groove_wav}[where]
    started = time.monotonic()
    # a model path that does not exist: the output check must come first, before the model is even loaded
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", out, "--model", tmp_path / "absent.pt")
    assert_one_line_error(code, err, mentions=("--output",))
    assert time.monotonic() - started < 5


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_folder(capsys, groove_wav, checkpoint_path, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", folder / "o.mid", "--model", checkpoint_path)
        assert_one_line_error(code, err, mentions=("--output",))
    finally:
        folder.chmod(0o700)


def test_unwritable_events_and_plot(capsys, groove_wav, checkpoint_path, tmp_path):
    for option in ("--events", "--plot"):
        code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", option,
                               tmp_path / "nowhere" / "x", "--model", checkpoint_path)
        assert_one_line_error(code, err, mentions=(option,))
        assert not (tmp_path / "o.mid").exists()


def test_bad_drum_map(capsys, groove_wav, checkpoint_path, tmp_path):
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", "--drum-map", "roland_td99",
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("roland_td99", "general_midi"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"notes": {"kick": 36, "snare": 300}}')
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", "--drum-map", broken,
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("broken.json",))
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", "--drum-map", junk,
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("junk.json",))


@pytest.mark.parametrize("kind", ("missing", "garbage", "directory", "wrong-pickle"))
def test_bad_model(capsys, groove_wav, tmp_path, kind):
    path = {"missing": tmp_path / "absent.pt", "garbage": tmp_path / "garbage.pt", "directory": tmp_path,
            "wrong-pickle": tmp_path / "other.pt"}[kind]
    if kind == "garbage":
        path.write_bytes(b"\x00\x01 definitely not a checkpoint" * 10)
    if kind == "wrong-pickle":
        import torch

        torch.save({"weights": torch.zeros(3)}, path)
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", "--model", path)
    assert_one_line_error(code, err, mentions=("--model" if kind != "missing" else str(path),))
    assert not (tmp_path / "o.mid").exists()


def test_missing_shipped_model_says_so(capsys, groove_wav, tmp_path):
    from drumscribe.models import DEFAULT_MODEL_PATH

    if DEFAULT_MODEL_PATH.exists():
        pytest.skip("the shipped model exists")
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid")
    assert_one_line_error(code, err, mentions=("--model",))


@pytest.mark.parametrize("size", ("0", "-5", "100000000"))
def test_bad_block_size(capsys, groove_wav, checkpoint_path, tmp_path, size):
    code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / "o.mid", "--block-size", size,
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("--block-size",))


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe"])
    assert exit_info.value.code == EXIT_USAGE
    assert_one_line_error(EXIT_USAGE, capsys.readouterr().err, expect_code=EXIT_USAGE, mentions=("IN",))
    code = main(["transcribe", "song.mp3"])  # -o is optional (song.mid beside it): the missing input is the error
    assert_one_line_error(code, capsys.readouterr().err, mentions=("song.mp3",))
    with pytest.raises(SystemExit):
        main(["transcribe", "song.mp3", "-o", "x.mid", "--block-size", "lots"])
    assert_one_line_error(EXIT_USAGE, capsys.readouterr().err, expect_code=EXIT_USAGE, mentions=("lots",))


# ---------------------------------------------------------------------------------------------------------------
# the console script itself


def _env():
    return dict(os.environ)


def test_help_is_instant_and_imports_no_heavy_module():
    code = ("import sys, contextlib, io\nfrom drumscribe.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n    except SystemExit: pass\n"
            "    try: main(['transcribe', '--help'])\n    except SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'librosa', 'soundfile') if m in sys.modules))")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=_env(),
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert time.monotonic() - started < 10


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("RIFF but not really")
    result = subprocess.run([sys.executable, "-m", "drumscribe", "transcribe", str(bad), "-o", str(tmp_path / "o.mid")],
                            capture_output=True, text=True, cwd=REPO, env=_env(), timeout=120)
    assert result.returncode == EXIT_ERROR
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_ctrl_c_leaves_a_valid_mid(long_wav, checkpoint_path, tmp_path):
    out = tmp_path / "long.mid"
    proc = subprocess.Popen([sys.executable, "-m", "drumscribe", "transcribe", str(long_wav), "-o", str(out),
                             "--model", str(checkpoint_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=_env())
    chunks = []

    def read_stderr():
        while True:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                return
            chunks.append(chunk.decode(errors="replace"))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    # a long file always gets a progress bar ("long.wav: 12%|...| 21/180 s"): wait until some seconds of audio
    # (several classifier batches) are done, whatever the load on the machine
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = re.findall(r"long\.wav:.*?\|\s*(\d+)/\d+ s", "".join(chunks))
        if done and int(done[-1]) >= 10:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the transcription finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
    reader.join(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    err = "".join(chunks)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert "interrupted" in err.strip().splitlines()[-1], err
    notes = midi_notes(out)  # a valid type-1 file
    assert notes, f"the hits found before Ctrl-C are in the file: {err.strip().splitlines()[-1]}"
    assert "notes found so far" in err.strip().splitlines()[-1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------------------------------------------------
# drum-maps, evaluate, train


def test_drum_maps_lists_both(capsys):
    code, out, _ = run_cli(capsys, "drum-maps")
    assert code == EXIT_OK
    assert "general_midi" in out and "superior_drummer_3" in out and "tom_high 48" in out


def test_evaluate_prints_table_and_json(capsys, groove, groove_wav, checkpoint_path, tmp_path):
    import json
    import shutil

    from drumscribe.realtime.drums import SCORE_CLASS

    audio_dir, ann_dir = tmp_path / "audio", tmp_path / "ann"
    audio_dir.mkdir()
    ann_dir.mkdir()
    shutil.copy(groove_wav, audio_dir / "groove.wav")
    (audio_dir / "unannotated.wav").write_bytes(groove_wav.read_bytes())
    lines = [f"{t:.4f}\t{SCORE_CLASS[d]}" for t, d, _ in groove[1]]
    (ann_dir / "groove.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.json"
    code, stdout, err = run_cli(capsys, "evaluate", "--audio", audio_dir, "--annotations", ann_dir,
                                "--model", checkpoint_path, "--json", out)
    assert code == EXIT_OK, err
    assert "F3" in stdout and "F5" in stdout and "groove" in stdout
    record = json.loads(out.read_text())
    assert set(record["tracks"]) == {"groove"}
    assert record["overall"]["F5"]["n_ref"] == sum(1 for _, d, _ in groove[1] if SCORE_CLASS[d] != "OT")


def test_evaluate_scores_the_decoding_transcribe_uses(capsys, groove, groove_wav, tmp_path):
    """evaluate decodes as transcribe does: with the shipped model's in-song context, or each onset alone with
    --no-context; its counts are those of the engine run each way."""
    import json
    import shutil
    from dataclasses import replace

    from drumscribe.models import DEFAULT_MODEL_PATH
    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.offline.evaluate import hits_to_classes
    from drumscribe.realtime.drums import SCORE_CLASS
    from drumscribe.realtime.engine import OFFLINE, transcribe_array
    from drumscribe.realtime.sources import decode_audio

    audio_dir, ann_dir = tmp_path / "audio", tmp_path / "ann"
    audio_dir.mkdir()
    ann_dir.mkdir()
    shutil.copy(groove_wav, audio_dir / "groove.wav")
    (ann_dir / "groove.txt").write_text("".join(f"{t:.4f}\t{SCORE_CLASS[d]}\n" for t, d, _ in groove[1]))
    checkpoint = load_checkpoint(DEFAULT_MODEL_PATH)
    audio = decode_audio(groove_wav)
    for flags, context in (((), True), (("--no-context",), False)):
        out = tmp_path / f"scores{len(flags)}.json"
        code, _, err = run_cli(capsys, "evaluate", "--audio", audio_dir, "--annotations", ann_dir, "--json", out,
                               *flags)
        assert code == EXIT_OK, err
        record = json.loads(out.read_text())
        assert record["context"] is context
        hits = transcribe_array(audio, checkpoint, scheduling=replace(OFFLINE, context=context))
        expected = sum(len(t) for c, t in hits_to_classes(hits).items() if c != "OT")
        assert record["overall"]["F5"]["n_est"] == expected


def test_evaluate_bad_folders(capsys, tmp_path, checkpoint_path):
    code, _, err = run_cli(capsys, "evaluate", "--audio", tmp_path / "none", "--annotations", tmp_path,
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("--audio",))
    code, _, err = run_cli(capsys, "evaluate", "--audio", tmp_path, "--annotations", tmp_path,
                           "--model", checkpoint_path)
    assert_one_line_error(code, err, mentions=("annotation",))


