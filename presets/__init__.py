"""Data, no code: drum maps (drum_maps/*.json) and effect presets (effects/*.json), found through
importlib.resources as drumscribe.presets."""
