"""`drumscribe kits`, `presets`, `audition` and `transcribe --audition` through drumscribe.cli.main: good runs write
the audio they should (every kit kind, every output format, the original laid under from the same time zero); every
bad kit, preset, MIDI or audio file is one line on stderr, exit 1, no traceback and nothing written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from drumscribe.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.drums import load_drum_map
from drumscribe.realtime.sinks import hits_to_midi
from drumscribe.realtime.types import DrumHit

from conftest import find_kit, groove_events

REPO = Path(__file__).resolve().parent.parent
SR = SAMPLE_RATE_HZ
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *mentions, expect_code=EXIT_ERROR):
    assert code == expect_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err
    for word in mentions:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.fixture(scope="session")
def groove_mid(tmp_path_factory) -> Path:
    """The conftest groove (every drum, about 5 s) as a drumscribe .mid."""
    gm = load_drum_map()
    hits = [DrumHit(t, d, v, 1.0) for t, d, v in groove_events()]
    path = tmp_path_factory.mktemp("midi") / "groove.mid"
    hits_to_midi(hits, gm).save(str(path))
    return path


@pytest.fixture(scope="session")
def one_shot_folder(tmp_path_factory) -> Path:
    from drumscribe.realtime.kits import load_hydrogen_kit

    kit = load_hydrogen_kit(find_kit())
    folder = tmp_path_factory.mktemp("kits") / "pearl one-shots"
    folder.mkdir()
    for drum, instruments in kit.instruments.items():
        sf.write(str(folder / f"{drum}.wav"), instruments[0].layers[-1].audio, SR, subtype="FLOAT")
    sf.write(str(folder / "snare_soft.wav"), kit.instruments["snare"][0].layers[0].audio, SR, subtype="FLOAT")
    return folder


def read(path):
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.T, rate


# ---------------------------------------------------------------------------------------------------------------
# listing


def test_kits_lists_every_kind(capsys, one_shot_folder, monkeypatch):
    monkeypatch.setenv("DRUMSCRIBE_KITS", str(one_shot_folder.parent))
    code, out, err = run_cli(capsys, "kits")
    assert code == EXIT_OK, err
    assert "The Black Pearl 1.0" in out and "GPL-2" in out
    if TIMGM.is_file():
        assert "TimGM6mb:Jazz" in out
    assert "pearl one-shots" in out
    assert "default kit: The Black Pearl 1.0" in out


def test_presets_lists_every_preset_with_its_description(capsys):
    code, out, err = run_cli(capsys, "presets")
    assert code == EXIT_OK, err
    for name in ("dry", "studio", "room", "arena", "lo-fi", "gated", "dub"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "Reverb" in out


# ---------------------------------------------------------------------------------------------------------------
# audition


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg"])
def test_audition_writes_every_format(capsys, groove_mid, tmp_path, suffix):
    out = tmp_path / f"groove{suffix}"
    code, stdout, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--effects", "studio")
    assert code == EXIT_OK, err
    audio, rate = read(out)
    assert rate == SR and audio.shape[0] == 2
    assert audio.shape[1] / SR > 4.5  # the last note is at ~4.05 s, then its ring
    # the studio preset limits at -1 dBFS (0.89); a lossy codec's decoded waveform may overshoot that by about a dB
    ceiling = 1.0 if suffix in (".wav", ".flac") else 1.12
    assert 0.5 < np.abs(audio).max() <= ceiling
    assert f"wrote '{out}'" in stdout and "The Black Pearl 1.0" in stdout


def test_audition_with_every_kind_of_kit(capsys, groove_mid, one_shot_folder, tmp_path):
    kits = [str(find_kit()), str(one_shot_folder), str(find_kit() / "drumkit.xml")]
    if TIMGM.is_file():
        kits += [f"{TIMGM}:Jazz", "TimGM6mb:TR 808", "TimGM6mb:25"]
    renders = []
    for i, kit in enumerate(kits):
        out = tmp_path / f"k{i}.wav"
        code, stdout, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--kit", kit)
        assert code == EXIT_OK, (kit, err)
        renders.append(read(out)[0])
    assert not np.allclose(renders[0][:, :SR], renders[1][:, :SR])  # the folder kit differs from the full kit


def test_mix_with_lays_the_original_under_from_time_zero(capsys, groove_mid, tmp_path):
    """A click track at 44.1 kHz, mono: resampled to 48 kHz and laid under the drums with its clicks in place."""
    rate = 44100
    clicks_s = [0.5, 1.25, 3.0, 6.5]  # the last one after the drums have ended: the output runs on for it
    track = np.zeros(int(7.0 * rate), np.float32)
    for t in clicks_s:
        track[int(round(t * rate))] = 1.0
    original = tmp_path / "clicks.wav"
    sf.write(str(original), track, rate, subtype="FLOAT")
    out = tmp_path / "mixed.wav"
    code, _, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--mix-with", original, "--mix", "1")
    assert code == EXIT_OK, err
    audio, _ = read(out)
    assert audio.shape[1] >= int(7.0 * SR) - 1
    peaks = [int(np.argmax(np.abs(audio[0, int((t - 0.05) * SR) : int((t + 0.05) * SR)]))) + int((t - 0.05) * SR)
             for t in clicks_s]
    assert [abs(p - t * SR) <= 2 for p, t in zip(peaks, clicks_s)] == [True] * len(clicks_s), peaks
    # at mix 0.5 the result is half the (normalised) drums plus half the (normalised) resampled original
    drums_out, half_out = tmp_path / "drums.wav", tmp_path / "half.wav"
    assert run_cli(capsys, "audition", groove_mid, "-o", drums_out)[0] == EXIT_OK
    assert run_cli(capsys, "audition", groove_mid, "-o", half_out, "--mix-with", original)[0] == EXIT_OK
    drums, half = read(drums_out)[0], read(half_out)[0]
    resampled = soxr.resample(track, rate, SR, quality="HQ")
    expected = np.zeros_like(half)
    expected[:, : drums.shape[1]] += 0.5 * drums
    expected[:, : len(resampled)] += 0.5 * resampled * (10 ** (-1 / 20) / np.abs(resampled).max())
    peak = np.abs(expected).max()
    expected *= min(1.0, 10 ** (-1 / 20) / peak)
    assert np.abs(half - expected).max() < 1e-3  # 24-bit files


def test_drum_gain_changes_one_drum(capsys, tmp_path):
    mid = tmp_path / "kick.mid"
    hits_to_midi([DrumHit(0.1, "kick", 100, 1.0), DrumHit(0.6, "snare", 100, 1.0)], load_drum_map()).save(str(mid))
    plain, louder = tmp_path / "plain.wav", tmp_path / "louder.wav"
    assert run_cli(capsys, "audition", mid, "-o", plain)[0] == EXIT_OK
    assert run_cli(capsys, "audition", mid, "-o", louder, "--gain", "snare=-12")[0] == EXIT_OK
    a, b = read(plain)[0], read(louder)[0]  # each normalised to its own peak: compare snare to kick in each
    kick, snare = slice(int(0.1 * SR), int(0.5 * SR)), slice(int(0.6 * SR), int(0.9 * SR))

    def snare_to_kick_db(audio):
        return 20 * np.log10(np.abs(audio[:, snare]).max() / np.abs(audio[:, kick]).max())

    assert abs(snare_to_kick_db(b) - snare_to_kick_db(a) + 12) < 0.05


def test_transcribe_with_audition(capsys, groove_wav, checkpoint_path, tmp_path):
    mid, wav = tmp_path / "g.mid", tmp_path / "g-drums.wav"
    code, stdout, err = run_cli(capsys, "transcribe", groove_wav, "-o", mid, "--model", checkpoint_path,
                                "--audition", wav, "--kit", "The Black Pearl 1.0", "--effects", "room", "--mix", "0.3")
    assert code == EXIT_OK, err
    assert f"audition '{wav}'" in stdout
    audio, rate = read(wav)
    assert rate == SR and audio.shape[0] == 2
    assert audio.shape[1] >= len(sf.read(str(groove_wav))[0]) - 1  # the input laid under: at least as long


# ---------------------------------------------------------------------------------------------------------------
# bad input: one line, exit 1, nothing written


def _bad_kits(tmp: Path) -> dict:
    empty = tmp / "empty kit"
    empty.mkdir()
    no_drums = tmp / "claps"
    no_drums.mkdir()
    sf.write(str(no_drums / "clap.wav"), np.zeros(100, np.float32), SR)
    (no_drums / "notes.txt").write_text("hello")
    corrupt = tmp / "corrupt"
    corrupt.mkdir()
    (corrupt / "drumkit.xml").write_text("<drumkit_info><name>broken</name><instrumentList><instrument>")
    fake_sf2 = tmp / "fake.sf2"
    fake_sf2.write_bytes(b"not a soundfont at all" * 10)
    return {
        "missing folder": ([str(tmp / "no such kit")], ["--kit", "does not exist"]),
        "empty folder": ([str(empty)], ["has no audio file named for a drum", "holds no audio files"]),
        "folder with no drums": ([str(no_drums)], ["has no audio file named for a drum", "clap.wav"]),
        "corrupt drumkit.xml": ([str(corrupt)], ["is not valid XML"]),
        "unknown kit name": (["Nope Kit 9"], ["kit 'Nope Kit 9' is not a kit path nor one of:", "The Black Pearl"]),
        "missing sf2": ([str(tmp / "gone.sf2")], ["soundfont", "does not exist"]),
        "not an sf2": ([str(fake_sf2)], ["is not an sf2 soundfont"]),
        "unknown sf2 kit": ([f"{TIMGM}:Bongos"], ["has no drum kit 'Bongos'", "32 Jazz"]),
    }


BAD_KIT_CASES = ["missing folder", "empty folder", "folder with no drums", "corrupt drumkit.xml", "unknown kit name",
                 "missing sf2", "not an sf2", "unknown sf2 kit"]


@pytest.mark.parametrize("case", BAD_KIT_CASES)
def test_bad_kits(capsys, groove_mid, tmp_path, case):
    if case == "unknown sf2 kit" and not TIMGM.is_file():
        pytest.skip("TimGM6mb.sf2 is not installed")
    kit, mentions = _bad_kits(tmp_path)[case]
    out = tmp_path / "out.wav"
    code, _, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--kit", *kit)
    assert_one_line_error(code, err, *mentions)
    assert not out.exists()


def _preset_file(tmp: Path, case: str) -> Path:
    path = tmp / f"{case.replace(' ', '_')}.json"
    path.write_text({"unknown plugin": json.dumps({"plugins": [{"plugin": "Reverbb"}]}),
                     "unknown parameter": json.dumps({"plugins": [{"plugin": "Compressor", "treshold_db": -9}]}),
                     "bad JSON": '{"plugins": [', }[case])
    return path


@pytest.mark.parametrize("case,mentions", [
    ("unknown plugin", ["plugin 'Reverbb' is not one of: Bitcrush, Chorus, Clipping, Compressor"]),
    ("unknown parameter", ["parameter 'treshold_db' is not one of: attack_ms, ratio, release_ms, threshold_db"]),
    ("bad JSON", ["is not valid JSON"]),
])
def test_bad_preset_files(capsys, groove_mid, tmp_path, case, mentions):
    out = tmp_path / "out.wav"
    code, _, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--effects", _preset_file(tmp_path, case))
    assert_one_line_error(code, err, "--effects", *mentions)
    assert not out.exists()


def test_unknown_preset_name(capsys, groove_mid, tmp_path):
    code, _, err = run_cli(capsys, "audition", groove_mid, "-o", tmp_path / "o.wav", "--effects", "warehouse")
    assert_one_line_error(code, err, "effects preset 'warehouse' is not one of: arena, dry")


def test_bad_midi_files(capsys, tmp_path):
    junk = tmp_path / "junk.mid"
    junk.write_bytes(os.urandom(300))
    empty = tmp_path / "empty.mid"
    hits_to_midi([], load_drum_map(), tempo_bpm=120).save(str(empty))
    out = tmp_path / "o.wav"
    for midi, mention in ((tmp_path / "missing.mid", "does not exist"), (junk, "is not a readable MIDI file"),
                          (empty, "holds no notes"), (tmp_path, "is a folder")):
        code, _, err = run_cli(capsys, "audition", midi, "-o", out)
        assert_one_line_error(code, err, mention)
        assert not out.exists()


def test_bad_audio_to_mix_with(capsys, groove_mid, tmp_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(os.urandom(3000))
    out = tmp_path / "o.wav"
    for audio, mention in ((tmp_path / "missing.mp3", "does not exist"), (junk, "is not audio drumscribe can read")):
        code, _, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--mix-with", audio)
        assert_one_line_error(code, err, "--mix-with", mention)
        assert not out.exists()


@pytest.mark.parametrize("argv,mentions", [
    (["-o", "{tmp}/o.aac"], ["'.aac' is not one of: .wav, .flac, .mp3, .ogg"]),
    (["-o", "{tmp}/no/such/folder/o.wav"], ["does not exist"]),
    (["-o", "{tmp}/o.wav", "--mix", "0.5"], ["--mix needs --mix-with"]),
    (["-o", "{tmp}/o.wav", "--mix-with", "{mid}", "--mix", "2"], ["--mix 2 is not in 0-1"]),
    (["-o", "{tmp}/o.wav", "--gain", "kick3"], ["--gain 'kick3' is not DRUM=DB"]),
    (["-o", "{tmp}/o.wav", "--gain", "cowbell=+3"], ["drum 'cowbell' is not one of: kick"]),
    (["-o", "{tmp}/in.wav", "--mix-with", "{tmp}/in.wav"], ["is the input file"]),
    (["-o", "{tmp}/o.wav", "--drum-map", "nope"], ["drum map 'nope' is not one of"]),
])
def test_bad_options(capsys, groove_mid, tmp_path, argv, mentions):
    sf.write(str(tmp_path / "in.wav"), np.zeros(4800, np.float32), SR)
    before = (tmp_path / "in.wav").read_bytes()
    argv = [a.format(tmp=tmp_path, mid=groove_mid) for a in argv]
    code, _, err = run_cli(capsys, "audition", groove_mid, *argv)
    assert_one_line_error(code, err, *mentions)
    assert not (tmp_path / "o.wav").exists()
    assert (tmp_path / "in.wav").read_bytes() == before


def test_output_or_play_is_required(capsys, groove_mid):
    with pytest.raises(SystemExit) as info:
        main(["audition", str(groove_mid)])
    assert_one_line_error(info.value.code, capsys.readouterr().err,
                          "one of the arguments -o/--output --play is required", expect_code=EXIT_USAGE)


def test_transcribe_audition_checks_before_transcribing(capsys, groove_wav, checkpoint_path, tmp_path):
    mid = tmp_path / "g.mid"
    for extra, mention in ((["--audition", tmp_path / "d.wav", "--kit", tmp_path / "nokit"], "does not exist"),
                           (["--audition", tmp_path / "d.wav", "--effects", "warehouse"], "is not one of"),
                           (["--audition", tmp_path / "d.aac"], "'.aac' is not one of"),
                           (["--kit", "TimGM6mb"], "--kit needs --audition"),
                           (["--audition", mid], "is the same file as --output")):
        code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", mid, "--model", checkpoint_path, *extra)
        assert_one_line_error(code, err, mention)
        assert not mid.exists()


def test_play_without_an_output_device(groove_mid):
    """This machine has no sound card; JACK is pointed at a server that does not exist, so PortAudio sees no
    output at all (skipped on a machine that has one)."""
    env = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": "drumscribe-test-no-such-server",
           "OPENBLAS_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import sounddevice as sd; "
                            "print(sum(d['max_output_channels'] > 0 for d in sd.query_devices()))"],
                           env=env, capture_output=True, text=True, timeout=60)
    if probe.returncode == 0 and probe.stdout.strip() not in ("", "0"):
        pytest.skip("this machine has an audio output device")
    run = subprocess.run([sys.executable, "-m", "drumscribe", "audition", str(groove_mid), "--play"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert_one_line_error(run.returncode, run.stderr, "--play: no audio output device", "-o")


# ---------------------------------------------------------------------------------------------------------------
# issue 29: broken presets, notes nothing can play, special files, a full disk: one line, exit 1, and the
# output absent or untouched


def _bad_audition_inputs(tmp: Path, groove_mid: Path, case: str) -> dict:
    """case -> (argv after 'audition', words the line must hold); the files the cases need, made in tmp."""
    import mido

    (tmp / "gain.json").write_text(json.dumps({"plugins": [{"plugin": "Gain", "gain_db": 1000}]}))
    (tmp / "highpass.json").write_text(json.dumps({"plugins": [{"plugin": "HighpassFilter",
                                                                "cutoff_frequency_hz": 30000}]}))
    (tmp / "empty.json").write_text("{}")
    os.mkfifo(tmp / "pipe.json")
    piano = mido.MidiFile(type=0)
    track = mido.MidiTrack()
    piano.tracks.append(track)
    for note in (60, 64, 67):  # a C major chord on channel 1: no drum for any kit
        track.append(mido.Message("note_on", channel=0, note=note, velocity=90, time=0))
        track.append(mido.Message("note_off", channel=0, note=note, velocity=0, time=240))
    piano.save(str(tmp / "piano.mid"))
    os.mkfifo(tmp / "pipe.mid")
    os.mkfifo(tmp / "pipe.sf2")
    kit = tmp / "kit"
    shutil.copytree(find_kit(), kit)
    xml = (kit / "drumkit.xml").read_text()
    (kit / "drumkit.xml").write_text(xml.replace("<min>0</min>", "<min>soft</min>", 1))
    sf.write(str(tmp / "nan.wav"), np.full(4800, np.nan, np.float32), SR, subtype="FLOAT")
    late = mido.MidiFile(type=0, ticks_per_beat=480)  # 120 BPM: a note now, one two hours in
    late.tracks.append(mido.MidiTrack([mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
                                       mido.Message("note_on", channel=9, note=38, velocity=100,
                                                    time=2 * 3600 * 2 * 480)]))
    late.save(str(tmp / "late.mid"))
    if case == "original over an hour":  # 61 minutes of 8 kHz 8-bit silence: 29 MB
        with sf.SoundFile(str(tmp / "long.wav"), "w", 8000, 1, subtype="PCM_U8") as f:
            for _ in range(61):
                f.write(np.zeros(8000 * 60, np.float32))
    mid = str(groove_mid)
    return {
        "preset Gain 1000 dB": ([mid, "--effects", tmp / "gain.json"],
                                ["--effects", "effects preset 'gain.json': plugin 1 (Gain) parameter 'gain_db': 1000 "
                                              "is outside the allowed range -96 to 48 dB"]),
        "preset high-pass above Nyquist": ([mid, "--effects", tmp / "highpass.json"],
                                           ["'cutoff_frequency_hz': 30000 is outside the allowed range "
                                            "10 to 20000 Hz"]),
        "preset without plugins": ([mid, "--effects", tmp / "empty.json"], ["has no 'plugins' list"]),
        "preset that is a FIFO": ([mid, "--effects", tmp / "pipe.json"], ["is not a regular file"]),
        "MIDI of non-drum notes": ([tmp / "piano.mid"],
                                   ["piano.mid' holds no note kit 'The Black Pearl 1.0' has a drum for",
                                    "3 notes on keys 60, 64, 67", "there is nothing to play"]),
        "MIDI that is a FIFO": ([tmp / "pipe.mid"], ["pipe.mid' is not a regular file"]),
        "drum gain 1000 dB": ([mid, "--gain", "kick=1000"], ["--gain 'kick=1000': 1000 dB is not in -96 to 48 dB"]),
        "drum gain NaN": ([mid, "--gain", "snare=nan"], ["--gain 'snare=nan': nan dB is not in -96 to 48 dB"]),
        "soundfont that is a FIFO": ([mid, "--kit", tmp / "pipe.sf2"], ["--kit", "pipe.sf2' is not a regular file"]),
        "drumkit.xml with a word for a number": ([mid, "--kit", kit],
                                                 ["--kit", "drumkit.xml': instrument", "<min> 'soft' is not a number "
                                                  "in 0-1"]),
        "original of NaN": ([mid, "--mix-with", tmp / "nan.wav"], ["--mix-with", "non-finite"]),
        "last note two hours in": ([tmp / "late.mid"], ["the last note of", "late.mid' is at 2:00:00; audition "
                                                        "renders at most 1:00:00"]),
        "original over an hour": ([mid, "--mix-with", tmp / "long.wav"],
                                  ["--mix-with: the end of",
                                   "long.wav' is at 1:01:00; audition renders at most 1:00:00"]),
    }


BAD_AUDITION_CASES = ["preset Gain 1000 dB", "preset high-pass above Nyquist", "preset without plugins",
                      "preset that is a FIFO", "MIDI of non-drum notes", "MIDI that is a FIFO", "drum gain 1000 dB",
                      "drum gain NaN", "soundfont that is a FIFO", "drumkit.xml with a word for a number",
                      "original of NaN", "last note two hours in", "original over an hour"]


@pytest.mark.parametrize("existing", [False, True], ids=["new output", "existing output"])
@pytest.mark.parametrize("case", BAD_AUDITION_CASES)
def test_bad_audition_inputs_write_nothing(capsys, groove_mid, tmp_path, case, existing):
    argv, mentions = _bad_audition_inputs(tmp_path, groove_mid, case)[case]
    out = tmp_path / "out.wav"
    if existing:
        out.write_bytes(b"yesterday's render")
    code, stdout, err = run_cli(capsys, "audition", *argv, "-o", out)
    assert_one_line_error(code, err, *mentions)
    assert (out.read_bytes() == b"yesterday's render") if existing else not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.wav")]  # no temporary file left


def test_midi_of_non_drum_notes_is_refused_like_a_midi_of_no_notes(capsys, tmp_path):
    """Both exit 1 with one line ending 'there is nothing to play' and write nothing (the first used to give a
    44-byte silent WAV and exit 0)."""
    import mido

    empty = tmp_path / "empty.mid"
    hits_to_midi([], load_drum_map(), tempo_bpm=120).save(str(empty))
    piano = tmp_path / "piano.mid"
    midi = mido.MidiFile(type=0)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", channel=2, note=72, velocity=80)]))
    midi.save(str(piano))
    for path in (empty, piano):
        code, _, err = run_cli(capsys, "audition", path, "-o", tmp_path / "o.wav")
        assert_one_line_error(code, err, f"'{path}' holds no note", "there is nothing to play")
        assert not (tmp_path / "o.wav").exists()


def _small_tmpfs(tmp_path: Path, size: str = "64k") -> Path:
    """A tiny tmpfs mounted in tmp_path (root only), or a skip saying why not."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    return mount


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_a_full_disk_is_one_line_and_the_old_render_stays(capsys, groove_mid, tmp_path, suffix):
    """A render that does not fit: exit 1, one line naming the output and 'No space left on device', the file
    that was there byte for byte as it was, and no temporary file left behind."""
    mount = _small_tmpfs(tmp_path)
    try:
        old = mount / f"old{suffix}"
        old.write_bytes(os.urandom(20000))
        before = old.read_bytes()
        for out, kept in ((old, f"'{old}' was left as it was"), (mount / f"new{suffix}", "nothing was written")):
            code, stdout, err = run_cli(capsys, "audition", groove_mid, "-o", out, "--effects", "room")
            assert_one_line_error(code, err, f"--output: could not write '{out}' (No space left on device); " + kept)
            assert "wrote" not in stdout
        assert old.read_bytes() == before
        assert sorted(p.name for p in mount.iterdir()) == [old.name]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_transcribe_audition_on_a_full_disk_names_it_and_keeps_the_mid(capsys, groove_wav, checkpoint_path, tmp_path):
    """transcribe --audition to a disk with no room: exit 1, one line naming --audition and the reason, the .mid
    (on another disk) written, the old rendering left as it was."""
    mount = _small_tmpfs(tmp_path)
    try:
        wav, mid = mount / "drums.wav", tmp_path / "g.mid"
        wav.write_bytes(b"an earlier rendering")
        code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", mid, "--model", checkpoint_path,
                               "--audition", wav, "--no-progress")
        assert_one_line_error(code, err, f"--audition (could not write '{wav}' (No space left on device))",
                              f"wrote '{mid}'")
        assert wav.read_bytes() == b"an earlier rendering" and mid.stat().st_size > 100
        assert sorted(p.name for p in mount.iterdir()) == ["drums.wav"]
    finally:
        subprocess.run(["umount", str(mount)], check=False)
