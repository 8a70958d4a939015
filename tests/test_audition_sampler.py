"""The audition sampler on real kits of all three kinds (a Hydrogen kit, a GM soundfont, a folder of one-shots made
here from the Hydrogen kit's samples): hits start on their notes, loudness follows velocity, a closed hi-hat chokes
an open one, Hydrogen mute groups choke, round robin alternates; and the three stage tests (block size, reset,
streaming = whole)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from drumscribe.realtime import SAMPLE_RATE_HZ
from drumscribe.realtime.audition import render_notes
from drumscribe.realtime.drums import load_drum_map
from drumscribe.realtime.kits import load_folder_kit, load_hydrogen_kit, render_sf2_kit
from drumscribe.realtime.sampler import NoteBlock, Sampler, note_blocks

from conftest import find_kit

SR = SAMPLE_RATE_HZ
TIMGM = "/usr/share/sounds/sf2/TimGM6mb.sf2"
GM = load_drum_map("general_midi")
N = GM.notes  # drum -> GM note

# Well separated notes at times on no grid, the crash last (it rings for seconds). The pedal hi-hat is left out: its
# samples are a soft "chick" that peaks 15-35 ms in (The Black Pearl), so no energy detector puts it on its note.
SEQUENCE = ["kick", "snare", "hh_closed", "tom_high", "tom_mid", "tom_low", "side_stick", "kick", "snare", "hh_open",
            "ride", "crash"]
NOTES = [(0.1003 + i * 0.4571 + (0.3 if drum == "crash" else 0.0), N[drum], 100) for i, drum in enumerate(SEQUENCE)]


# ---------------------------------------------------------------------------------------------------------------
# kits of every kind


@pytest.fixture(scope="session")
def hydrogen_kit():
    return load_hydrogen_kit(find_kit())


@pytest.fixture(scope="session")
def sf2_kit():
    from pathlib import Path

    if not Path(TIMGM).is_file():
        pytest.skip("TimGM6mb.sf2 is not installed (Debian package timgm6mb-soundfont)")
    return render_sf2_kit(TIMGM)


def _write(path, audio):
    sf.write(str(path), audio, SR, subtype="FLOAT")


@pytest.fixture(scope="session")
def folder_kit_dir(hydrogen_kit, tmp_path_factory):
    """A folder of one-shots named by drum, cut from the Hydrogen kit: velocity words, round robin, and files that
    name no drum (a clap, a text file) to be ignored."""
    folder = tmp_path_factory.mktemp("oneshots") / "my kit"
    folder.mkdir()
    first = {drum: insts[0] for drum, insts in hydrogen_kit.instruments.items()}
    for drum, inst in first.items():
        if drum in ("snare", "hh_closed"):
            continue
        _write(folder / f"{drum}.wav", inst.layers[-1].audio)
    _write(folder / "snare_soft.wav", first["snare"].layers[1].audio)
    _write(folder / "snare_hard.wav", first["snare"].layers[-1].audio)
    _write(folder / "hh_closed_1.wav", first["hh_closed"].layers[-1].audio)
    _write(folder / "hh_closed_2.wav", first["hh_closed"].layers[-2].audio)
    _write(folder / "clap.wav", first["snare"].layers[0].audio)
    (folder / "readme.txt").write_text("not a sample\n")
    (folder / "LICENSE").write_text("GPL-2 (samples of The Black Pearl 1.0 by Glen MacArthur)\n")
    return folder


@pytest.fixture(scope="session")
def folder_kit(folder_kit_dir):
    return load_folder_kit(folder_kit_dir)


KIT_KINDS = ("hydrogen", "sf2", "folder")


@pytest.fixture(params=KIT_KINDS)
def any_kit(request):
    return request.getfixturevalue(f"{request.param}_kit")


def render(kit, notes, *, block_size=4096, **sampler_options):
    return render_notes(notes, Sampler(kit, GM, **sampler_options), block_size_samples=block_size)


# ---------------------------------------------------------------------------------------------------------------
# an energy onset detector that knows nothing of the notes


def detect_onsets(audio, *, rise_db=12.0, window_ms=10.0, lookback_ms=30.0, refractory_ms=50.0) -> list:
    """Onset times (s) found from the audio alone: every millisecond, the RMS of the last 10 ms; a hit is a rise of
    `rise_db` over the quietest of the 30 ms before, half of it within 4 ms (two ringing toms beating rise slower).
    The onset is then the first sample after the quiet point above both 4x its RMS and a tenth of the hit's peak."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    x2 = np.concatenate([[0.0], np.cumsum(mono.astype(np.float64) ** 2)])
    hop, win = SR // 1000, int(SR * window_ms / 1000)
    ends = np.arange(win, len(mono) + 1, hop)
    level_db = 10 * np.log10((x2[ends] - x2[ends - win]) / win + 1e-14)
    back = int(lookback_ms)
    onsets, last_end = [], -(10**9)
    for k in range(back, len(ends)):
        quietest = k - back + int(np.argmin(level_db[k - back : k]))
        floor_db = level_db[quietest]
        sudden = level_db[k] - level_db[k - 4] >= rise_db / 2
        if level_db[k] - floor_db < rise_db or not sudden or ends[k] - last_end < refractory_ms * SR / 1000:
            continue
        start = ends[quietest] - win // 2
        peak = np.abs(mono[start : ends[k] + int(0.03 * SR)]).max()
        threshold = max(4 * 10 ** (floor_db / 20), 0.1 * peak)
        above = np.flatnonzero(np.abs(mono[start : ends[k]]) > threshold)
        onsets.append((start + int(above[0])) / SR if len(above) else ends[k] / SR)
        last_end = ends[k]
    return onsets


def test_onset_detector_can_fail(hydrogen_kit):
    """The check below is not vacuous: notes rendered 6 ms late are caught."""
    audio = render(hydrogen_kit, [(t + 0.006, n, v) for t, n, v in NOTES])
    onsets = np.array(detect_onsets(audio))
    errors = [np.abs(onsets - t).min() for t, _, _ in NOTES]
    assert max(errors) > 0.005


@pytest.mark.parametrize("kind", KIT_KINDS)
def test_hits_start_within_5_ms_of_their_notes(kind, request):
    kit = request.getfixturevalue(f"{kind}_kit")
    audio = render(kit, NOTES)
    onsets = np.array(detect_onsets(audio))
    for t, note, _ in NOTES:
        error = np.abs(onsets - t).min()
        assert error <= 0.005, f"{kind}: note {note} at {t:.4f} s: nearest onset {1000 * error:.1f} ms away"
    assert len(onsets) == len(NOTES), f"{kind}: {len(onsets)} onsets for {len(NOTES)} notes: {onsets}"


@pytest.mark.parametrize("kind", KIT_KINDS)
@pytest.mark.parametrize("drum", ["snare", "kick", "hh_closed"])
def test_loudness_follows_velocity(kind, drum, request):
    kit = request.getfixturevalue(f"{kind}_kit")
    velocities = list(range(7, 128, 8))  # 7, 15, ..., 127
    rms = []
    for velocity in velocities:
        audio = render(kit, [(0.05, N[drum], velocity)])
        head = audio[:, int(0.05 * SR) : int(0.15 * SR)]
        rms.append(float(np.sqrt(np.mean(head.astype(np.float64) ** 2))))
    assert all(b > a for a, b in zip(rms, rms[1:])), f"{kind} {drum}: RMS by velocity {np.round(rms, 4)}"
    assert rms[-1] / rms[0] > 4  # softest to loudest: more than 12 dB


@pytest.mark.parametrize("pedal", ["hh_closed", "hh_pedal"])
def test_closed_hi_hat_chokes_the_open_one(any_kit, pedal):
    open_at, close_at = 0.3, 0.45
    both = [(open_at, N["hh_open"], 110), (close_at, N[pedal], 90)]
    closed_alone = render(any_kit, [both[1]], choke=True)
    choked = render(any_kit, both)
    unchoked = render(any_kit, both, choke=False)
    window = slice(int((close_at + 0.015) * SR), int((close_at + 0.3) * SR))

    def residual_energy(audio):  # what the open hat adds after the closed hat struck
        n = max(audio.shape[1], closed_alone.shape[1])
        a = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
        b = np.pad(closed_alone, ((0, 0), (0, n - closed_alone.shape[1])))
        return float(np.sum((a - b)[:, window].astype(np.float64) ** 2))

    ringing = residual_energy(unchoked)
    assert ringing > 1e-4, "the open hat should still ring when the closed one strikes"
    assert residual_energy(choked) < 1e-6 * ringing
    # before the choke the two renders are the same
    before = slice(0, int(close_at * SR))
    assert np.array_equal(choked[:, before], unchoked[:, before])


def test_hydrogen_mute_group_chokes(hydrogen_kit, tmp_path):
    """A Hydrogen 1.x kit (instrumentComponent layers) whose two toms share muteGroup 3: the high tom cuts the low."""
    tom_low = hydrogen_kit.instruments["tom_low"][0].layers[-1].audio
    tom_high = hydrogen_kit.instruments["tom_high"][0].layers[-1].audio
    _write(tmp_path / "low.wav", tom_low)
    _write(tmp_path / "high.wav", tom_high)

    def instrument(i, name, file, group):
        return (f"<instrument><id>{i}</id><name>{name}</name><volume>1</volume><gain>1</gain>"
                f"<muteGroup>{group}</muteGroup><instrumentComponent><component_id>0</component_id>"
                f"<layer><filename>{file}</filename><min>0</min><max>1</max><gain>1</gain></layer>"
                f"</instrumentComponent></instrument>")

    (tmp_path / "drumkit.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?><drumkit_info xmlns='http://www.hydrogen-music.org/drumkit'>"
        "<name>mute test</name><license>GPL</license><instrumentList>"
        + instrument(0, "Tom Low", "low.wav", 3) + instrument(1, "Tom Hi", "high.wav", 3)
        + "</instrumentList></drumkit_info>")
    kit = load_hydrogen_kit(tmp_path)
    assert kit.instruments["tom_low"][0].choke_group == 3
    notes = [(0.1, N["tom_low"], 100), (0.3, N["tom_high"], 100)]
    high_alone = render(kit, notes[1:])
    window = slice(int(0.32 * SR), int(0.8 * SR))
    choked = render(kit, notes)[:, window] - high_alone[:, window]
    ringing = render(kit, notes, choke=False)[:, window] - high_alone[:, window]
    assert np.sum(ringing.astype(np.float64) ** 2) > 1e-3
    assert np.abs(choked).max() == 0.0


def test_folder_kit_names_layers_and_round_robin(folder_kit, folder_kit_dir):
    assert folder_kit.kind == "folder" and folder_kit.licence.startswith("GPL-2")
    assert set(folder_kit.drums) == {"kick", "snare", "side_stick", "hh_closed", "hh_pedal", "hh_open", "tom_low",
                                     "tom_mid", "tom_high", "crash", "ride"}
    snare = folder_kit.instruments["snare"][0]
    assert [(round(la.min_velocity * 127), round(la.max_velocity * 127)) for la in snare.layers] == [(0, 75), (75, 127)]
    # two closed hats at one velocity alternate, note after note
    sampler = Sampler(folder_kit, GM)
    hats = folder_kit.instruments["hh_closed"][0].layers
    picked = [sampler._layer("hh_closed", folder_kit.instruments["hh_closed"][0], 0.8) for _ in range(4)]
    assert [next(i for i, h in enumerate(hats) if h is layer) for layer in picked] == [0, 1, 0, 1]


def test_unknown_notes_are_counted_not_played(hydrogen_kit):
    sampler = Sampler(hydrogen_kit, GM)
    out = sampler.process(NoteBlock(256, ((0, 39, 100), (10, 39, 90), (20, 81, 100))))  # clap, triangle
    assert not out.any()
    assert sampler.skipped_notes == {39: 2, 81: 1}
    # General-MIDI aliases the drum map does not use still play: 35 is a kick, 40 a snare
    assert Sampler(hydrogen_kit, GM).process(NoteBlock(256, ((0, 35, 100), (0, 40, 100)))).any()


def test_note_block_is_checked():
    with pytest.raises(ValueError, match="offset"):
        NoteBlock(64, ((64, 36, 100),))
    with pytest.raises(ValueError, match="velocity"):
        NoteBlock(64, ((0, 36, 0),))


# ---------------------------------------------------------------------------------------------------------------
# the three stage tests


def _stream(sampler, notes, block_size, total):
    sampler.reset()
    blocks = note_blocks(notes, block_size_samples=block_size, sample_rate_hz=SR)
    out = [sampler.process(next(blocks)) for _ in range(-(-total // block_size))]
    return np.concatenate(out, axis=1)[:, :total]


@pytest.mark.parametrize("block_size", [1, 64, 65, 128, 4096])
def test_same_output_whatever_the_block_size(any_kit, block_size):
    notes = NOTES if block_size > 1 else NOTES[:3]  # block size 1 on the first second only
    total = int((notes[-1][0] + 0.5) * SR)
    sampler = Sampler(any_kit, GM)
    whole = sampler.process(NoteBlock(total, tuple((int(round(t * SR)), n, v) for t, n, v in notes)))
    assert np.array_equal(_stream(sampler, notes, block_size, total), whole)


def test_same_output_after_reset(any_kit):
    sampler = Sampler(any_kit, GM)
    total = int(2.0 * SR)
    first = _stream(sampler, NOTES, 128, total)
    sampler.process(NoteBlock(1000, ((0, N["crash"], 127),)))  # leave a voice ringing and a round robin moved
    assert np.array_equal(_stream(sampler, NOTES, 128, total), first)


def test_many_voices_are_bounded(hydrogen_kit):
    """A hundred crashes in a second: the oldest fade out instead of piling up."""
    sampler = Sampler(hydrogen_kit, GM, max_voices=16)
    notes = tuple((i * 480, N["crash"], 100) for i in range(100))
    sampler.process(NoteBlock(48000, notes))
    assert sum(v.stop_at is None for v in sampler.voices) <= 16
