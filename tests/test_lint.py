"""The code is ruff-clean, as pyproject.toml's [tool.ruff] configures it (`make lint` runs the same check)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["drumscribe", "models", "offline", "realtime", "presets", "bench", "experiments", "tests", "examples"]


def _ruff() -> list:
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return [found]


def test_every_folder_is_ruff_clean():
    result = subprocess.run(_ruff() + ["check", "--output-format", "concise", *PATHS], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_the_makefile_lints_the_same_folders():
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("LINT_PATHS"))
    assert line.split(":=", 1)[1].split() == PATHS
