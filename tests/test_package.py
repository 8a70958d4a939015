"""One namespace: the wheel holds the drumscribe package (the repository's realtime/, models/, offline/ and presets/
as its subpackages, with the shipped weights and presets) and nothing beside it, and, installed on its own,
transcribes from another folder; no source of the repository changes the import path or imports the folders by
their old top-level names."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mido
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "example.mp3"
SUBPACKAGES = {"drumscribe": "drumscribe", "realtime": "drumscribe/realtime", "models": "drumscribe/models",
               "offline": "drumscribe/offline", "presets": "drumscribe/presets"}
"""Repository folder -> where its files sit in the wheel."""
SOURCE_DIRS = (*SUBPACKAGES, "tests", "bench", "experiments", "examples")
# what a checkout holds that a build must not see (.gitignore's): git, the venv, outputs of earlier builds and runs
# (a build/ left by an older layout would ship its stale files)
_NOT_COPIED = {".": {".git", ".venv", "build", "dist", "data", "runs", ".pytest_cache"},
               "examples": {"out"}, "bench": {"out", "cache"}}


def _pip(*args):
    run = subprocess.run([sys.executable, "-m", "pip", *args, "--no-index", "--disable-pip-version-check"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def build_wheel(tmp: Path) -> Path:
    """The wheel `pip wheel --no-deps .` builds from a clean copy of the checkout (made under `tmp`)."""
    source = tmp / "source"

    def ignore(folder, names):
        here = Path(folder).relative_to(REPO).as_posix()
        return {n for n in names if n in _NOT_COPIED.get(here, ()) or n == "__pycache__"
                or n.endswith((".egg-info", ".pyc"))}

    shutil.copytree(REPO, source, ignore=ignore)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source))
    (found,) = (tmp / "dist").glob("drumscribe-*.whl")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_the_drumscribe_package_only_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith("drumscribe/") and not re.match(r"drumscribe-[^/]+\.dist-info/", n)]
    assert not outside, f"the wheel installs files beside the drumscribe package: {outside}"
    shipped = [*(REPO / "models" / "weights").glob("*.pt"), *(REPO / "models" / "weights").glob("*.onnx.npz"),
               *(REPO / "presets").rglob("*.json")]
    shipped += [p for folder in SUBPACKAGES for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts]
    assert len(shipped) > 50
    expected = {f"{SUBPACKAGES[p.relative_to(REPO).parts[0]]}/{Path(*p.relative_to(REPO).parts[1:]).as_posix()}"
                for p in shipped}
    missing = sorted(expected - set(names))
    assert not missing, f"not in the wheel: {missing}"
    assert "drumscribe/models/weights/hitcnn.pt" in names and "drumscribe/presets/effects/dry.json" in names


def test_the_installed_wheel_transcribes_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    _pip("install", "--no-deps", "--target", str(site), str(wheel))
    assert {p.name for p in site.iterdir() if not p.name.endswith(".dist-info")} - {"bin"} == {"drumscribe"}
    out = tmp_path / "example.mid"
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = """if True:
        import sys
        from pathlib import Path

        site = Path(sys.argv[1]).resolve()
        import drumscribe
        assert Path(drumscribe.__file__).resolve().is_relative_to(site), drumscribe.__file__
        from drumscribe.cli import main

        assert main(["transcribe", sys.argv[2], "-o", sys.argv[3], "--no-progress"]) == 0
        from drumscribe.models import DEFAULT_MODEL_PATH
        from drumscribe.realtime.drums import DRUM_MAPS_DIR

        ours = {name: m for name, m in sys.modules.items()
                if name.split(".")[0] in ("drumscribe", "realtime", "models", "offline", "presets")}
        assert "drumscribe.realtime.engine" in ours and "drumscribe.models" in ours, sorted(ours)
        elsewhere = [name for name, m in ours.items()
                     if getattr(m, "__file__", None) and not Path(m.__file__).resolve().is_relative_to(site)]
        assert not elsewhere, elsewhere
        for path in (DEFAULT_MODEL_PATH, DRUM_MAPS_DIR):
            assert path.exists() and path.resolve().is_relative_to(site), path
    """
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy; the checkout is not on the path
    run = subprocess.run([sys.executable, "-c", code, str(site), str(EXAMPLE), str(out)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    notes = [m for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    assert len(notes) > 50
    assert {m.channel for m in notes} == {9}


def _sources():
    for folder in SOURCE_DIRS:
        yield from ((REPO / folder).rglob("*.py"))
    yield from REPO.glob("*.py")


def test_no_source_changes_the_import_path():
    """The code imports the installed package: no edit of sys.path, no PYTHONPATH handed to a child process
    (this file's own install test excepted, which points it at the installed copy on purpose)."""
    edits = re.compile(r"\bsys\.path\s*(\.\s*(insert|append|extend|remove|pop|clear)\b|(\[[^\]]*\])?\s*\+?=[^=])"
                       r"|\bsite\.addsitedir\b|[\"']PYTHONPATH[\"']\s*[:\]]")
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for path in _sources() if path.name != Path(__file__).name
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if edits.search(line)]
    assert not found, "\n".join(found)


def test_nothing_names_the_folders_as_top_level_packages():
    """Imports, and the modules `python -m` runs, are named drumscribe.realtime, drumscribe.offline, ..., never by
    the folder's bare name."""
    old = re.compile(r"^\s*(from|import)\s+(models|offline|realtime|presets)\b"
                     r"|-m[\"', ]+(models|offline|realtime)\.\w")
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for path in _sources() if path.name != Path(__file__).name
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if old.search(line)]
    assert not found, "\n".join(found)


def test_the_wheel_requires_torch_only_in_the_train_extra(wheel):
    """`pip install drumscribe` brings no torch (1.7 GB): inference runs on ONNX Runtime; torch (and onnx, for
    `train export`) come with the `train` extra."""
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = z.read(name).decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    plain = [r for r in requires if ";" not in r]
    assert "onnxruntime" in " ".join(plain) and len(plain) > 10, requires
    torch_lines = [r for r in requires if re.match(r"torch\b", r)]
    assert torch_lines and all(re.search(r";\s*extra\s*==\s*[\"']train[\"']", r) for r in torch_lines), torch_lines
    assert not [r for r in plain if re.match(r"(torch|onnx)\b(?!runtime)", r)], plain
    assert "Provides-Extra: train" in metadata
