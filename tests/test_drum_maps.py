"""Every shipped drum map loads, gives every drum drumscribe reports a note in 0-127, names its source, and keeps
its drums and articulations on distinct notes; `drumscribe drum-maps` lists them all."""
import json

import pytest

from drumscribe.cli import EXIT_OK, main
from drumscribe.realtime.drums import ARTICULATIONS, DRUMS, DrumMapError, available_drum_maps, load_drum_map

MAPS = available_drum_maps()


def test_at_least_ten_maps():
    assert len(MAPS) >= 10, MAPS
    assert {"general_midi", "superior_drummer_3"} <= set(MAPS)


@pytest.mark.parametrize("name", MAPS)
def test_map_gives_every_drum_a_note(name):
    drum_map = load_drum_map(name)
    for drum in DRUMS:
        note = drum_map.note(drum)
        assert isinstance(note, int) and 0 <= note <= 127, (drum, note)
    assert drum_map.name and drum_map.description
    assert drum_map.source, f"{name} does not say where its notes come from"


@pytest.mark.parametrize("name", MAPS)
def test_map_notes_are_distinct(name):
    """Two drums on one note, or an articulation on a drum's note, would be a misread layout."""
    drum_map = load_drum_map(name)
    notes = [drum_map.note(d) for d in DRUMS] + list(drum_map.articulations.values())
    assert len(notes) == len(set(notes)), sorted(notes)
    assert set(drum_map.articulations) <= set(ARTICULATIONS)


def test_general_midi_is_unchanged():
    """The default map: its notes are the GM percussion key map's, as every .mid written so far used."""
    gm = load_drum_map("general_midi")
    assert gm.notes == {"kick": 36, "snare": 38, "side_stick": 37, "hh_closed": 42, "hh_pedal": 44, "hh_open": 46,
                        "tom_low": 43, "tom_mid": 47, "tom_high": 50, "crash": 49, "ride": 51}


def test_plugins_that_differ_from_gm():
    """Spot checks against the sources: where a plugin's layout departs from General MIDI."""
    assert load_drum_map("addictive_drums_2").note("side_stick") == 42  # 37 is a rimshot in AD2
    assert load_drum_map("addictive_drums_2").articulations["ride_choke"] == 63
    assert load_drum_map("ezdrummer_3").articulations["crash_choke"] == 50  # so the high tom is not 50
    assert load_drum_map("ezdrummer_3").note("tom_high") == 48
    assert load_drum_map("getgood_drums_modern_massive").note("kick") == 24


def _write(tmp_path, **data):
    base = {"name": "t", "description": "d", "notes": {d: 30 + i for i, d in enumerate(DRUMS)}}
    base.update(data)
    path = tmp_path / "map.json"
    path.write_text(json.dumps(base))
    return path


def test_json_map_without_the_new_fields_still_loads(tmp_path):
    drum_map = load_drum_map(str(_write(tmp_path)))
    assert drum_map.source == "" and drum_map.articulations == {}


@pytest.mark.parametrize("articulations, words", [
    ({"cowbell": 56}, ["unknown articulation 'cowbell'"]),
    ({"ride_bell": 128}, ["128", "ride_bell", "0-127"]),
    ({"ride_bell": True}, ["True", "ride_bell"]),
    ([53], ["'articulations' must be an object"]),
])
def test_bad_articulations_are_one_clear_error(tmp_path, articulations, words):
    with pytest.raises(DrumMapError) as info:
        load_drum_map(str(_write(tmp_path, articulations=articulations)))
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_drum_maps_command_lists_every_map_with_plugin_and_source(capsys):
    code = main(["drum-maps"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK and not err
    lines = out.splitlines()
    for name in MAPS:
        drum_map = load_drum_map(name)
        header = [line for line in lines if line.startswith(name + " ")]
        assert len(header) == 1, name
        assert drum_map.name in header[0] and "source:" in header[0]
    assert f"{len(MAPS)} maps" in out
