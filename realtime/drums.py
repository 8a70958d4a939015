"""The drum vocabulary and the drum maps that turn drums into MIDI notes."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

DRUMS = (
    "kick",
    "snare",
    "side_stick",
    "hh_closed",
    "hh_pedal",
    "hh_open",
    "tom_low",
    "tom_mid",
    "tom_high",
    "crash",
    "ride",
)
"""Every drum the classifier can report, in the order of its outputs."""

# The five coarse classes of MDB Drums style annotations (KD SD HH TT CY) that each drum scores as.
SCORE_CLASS = {
    "kick": "KD",
    "snare": "SD",
    "side_stick": "SD",
    "hh_closed": "HH",
    "hh_pedal": "HH",
    "hh_open": "HH",
    "tom_low": "TT",
    "tom_mid": "TT",
    "tom_high": "TT",
    "crash": "CY",
    "ride": "CY",
}

ARTICULATIONS = {
    "snare_rimshot": "snare",
    "hh_half_open": "hh_open",
    "hh_pedal_splash": "hh_pedal",
    "ride_bell": "ride",
    "ride_edge": "ride",
    "ride_choke": "ride",
    "crash_choke": "crash",
}
"""Articulations a drum map may name beside its drums (optional), each with the drum it is a way of playing.
The classifier does not report them (yet); a map lists them so that its table tells the whole layout."""

DRUM_MAPS_DIR = Path(str(files("drumscribe.presets") / "drum_maps"))
DEFAULT_DRUM_MAP = "general_midi"


class DrumMapError(ValueError):
    """A drum map file that cannot be used."""


@dataclass(frozen=True)
class DrumMap:
    """Which MIDI note each drum is sent as."""

    name: str
    description: str
    notes: dict
    source: str = ""
    """Where the notes come from (a manual page, an official map file, a public map repository)."""
    articulations: dict = field(default_factory=dict)
    """Optional notes of ARTICULATIONS (a ride bell, a crash choke, ...) where the plugin has them."""

    def note(self, drum: str) -> int:
        return self.notes[drum]


def available_drum_maps() -> list[str]:
    return sorted(p.stem for p in DRUM_MAPS_DIR.glob("*.json"))


def load_drum_map(name_or_path: str = DEFAULT_DRUM_MAP) -> DrumMap:
    """Load a drum map by preset name or from a JSON file path, checking every drum has a valid note."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DRUM_MAPS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise DrumMapError(
                f"drum map '{name_or_path}' is not one of: {', '.join(available_drum_maps())}"
            )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DrumMapError(f"drum map file '{path}' cannot be read as JSON: {exc}") from None
    notes = data.get("notes") if isinstance(data, dict) else None
    if not isinstance(notes, dict):
        raise DrumMapError(f"drum map '{path}' has no 'notes' object mapping drums to MIDI notes")
    unknown = sorted(set(notes) - set(DRUMS))
    if unknown:
        raise DrumMapError(f"drum map '{path}' names unknown drum '{unknown[0]}'; drums are: {', '.join(DRUMS)}")
    missing = [d for d in DRUMS if d not in notes]
    if missing:
        raise DrumMapError(f"drum map '{path}' has no note for drum '{missing[0]}'")
    _check_notes(path, notes)
    articulations = data.get("articulations", {})
    if not isinstance(articulations, dict):
        raise DrumMapError(f"drum map '{path}': 'articulations' must be an object mapping articulations to notes")
    unknown = sorted(set(articulations) - set(ARTICULATIONS))
    if unknown:
        raise DrumMapError(f"drum map '{path}' names unknown articulation '{unknown[0]}'; articulations are: "
                           f"{', '.join(ARTICULATIONS)}")
    _check_notes(path, articulations)
    for key in ("name", "description", "source"):
        if not isinstance(data.get(key, ""), str):
            raise DrumMapError(f"drum map '{path}': '{key}' must be a string, got {data[key]!r}")
    return DrumMap(name=data.get("name", path.stem), description=data.get("description", ""), notes=dict(notes),
                   source=data.get("source", ""), articulations=dict(articulations))


def _check_notes(path: Path, notes: dict) -> None:
    for drum, note in notes.items():
        if isinstance(note, bool) or not isinstance(note, int) or not 0 <= note <= 127:
            raise DrumMapError(f"drum map '{path}': note {note!r} for '{drum}' is not an integer 0-127")
