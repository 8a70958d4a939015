"""Network definitions, checkpoint files and the shipped weights. Imports nothing of the project."""
from importlib.resources import files
from pathlib import Path

WEIGHTS_DIR = Path(str(files("drumscribe.models") / "weights"))
"""The shipped weights (package data; a real folder in a regular or editable install, which torch.load needs)."""
DEFAULT_MODEL_PATH = WEIGHTS_DIR / "hitcnn.pt"
"""The shipped offline drum-hit model."""
LIVE_MODEL_PATH = WEIGHTS_DIR / "hitcnn_live.pt"
"""The shipped live drum-hit model: a short look-ahead (HitCNNConfig.frames_after) for notes within ~10 ms."""
