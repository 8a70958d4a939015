"""Network definitions, checkpoint files and the shipped weights. Imports nothing of the project."""
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL_PATH = WEIGHTS_DIR / "hitcnn.pt"
"""The shipped offline drum-hit model."""
LIVE_MODEL_PATH = WEIGHTS_DIR / "hitcnn_live.pt"
"""The shipped live drum-hit model: a short look-ahead (HitCNNConfig.frames_after) for notes within ~10 ms."""
