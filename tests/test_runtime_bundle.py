"""The ONNX bundles beside the shipped checkpoints (models/runtime.py): in sync with them, the same hits as torch,
and a `transcribe` that never imports torch."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drumscribe.models import DEFAULT_MODEL_PATH, LIVE_MODEL_PATH
from drumscribe.models.export import write_bundle
from drumscribe.models.runtime import bundle_path, load_bundle

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", [DEFAULT_MODEL_PATH, LIVE_MODEL_PATH], ids=["offline", "live"])
def test_shipped_bundles_match_their_checkpoints(path):
    """After changing a shipped .pt, `drumscribe train export` must be rerun; this fails until it is."""
    assert bundle_path(path).is_file(), f"no {bundle_path(path).name}: run drumscribe train export {path}"
    assert load_bundle(path) is not None, \
        f"{bundle_path(path).name} is stale: run drumscribe train export {path}"


def _groove():
    from drumscribe.offline.render import generate_pattern, load_kit, render_hits

    kit = load_kit("hydrogen:ColomboAcousticDrumkit")
    rng = np.random.default_rng(7)
    hits, duration = generate_pattern(rng, bars=4, tempo_bpm=120, style="groove", drums_available=kit.drums)
    audio = render_hits(hits, kit, duration_s=duration, rng=rng)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float64)


@pytest.mark.parametrize("path", [DEFAULT_MODEL_PATH, LIVE_MODEL_PATH], ids=["offline", "live"])
def test_bundle_gives_the_hits_torch_gives(path):
    import torch

    from drumscribe.models.cnn import load_checkpoint
    from drumscribe.realtime.engine import LIVE, OFFLINE, transcribe_array

    torch.set_num_threads(1)
    audio = _groove()
    scheduling = LIVE if path == LIVE_MODEL_PATH else OFFLINE
    by_torch = transcribe_array(audio, load_checkpoint(path), scheduling=scheduling)
    by_onnx = transcribe_array(audio, load_bundle(path), scheduling=scheduling)
    assert len(by_torch) > 20
    assert [(h.onset_s, h.drum, h.velocity) for h in by_onnx] == [(h.onset_s, h.drum, h.velocity) for h in by_torch]
    np.testing.assert_allclose([h.confidence for h in by_onnx], [h.confidence for h in by_torch], atol=1e-4)


def test_more_threads_for_files_give_the_same_hits():
    """Files run the network on more ONNX Runtime threads (drumscribe.cli.file_threads); the hits must not change."""
    from drumscribe.realtime.engine import OFFLINE, transcribe_array

    audio = _groove()
    one = transcribe_array(audio, load_bundle(DEFAULT_MODEL_PATH, threads=1), scheduling=OFFLINE)
    two = transcribe_array(audio, load_bundle(DEFAULT_MODEL_PATH, threads=2), scheduling=OFFLINE)
    assert len(one) > 20
    assert [(h.onset_s, h.drum, h.velocity) for h in two] == [(h.onset_s, h.drum, h.velocity) for h in one]
    np.testing.assert_allclose([h.confidence for h in two], [h.confidence for h in one], atol=1e-5)
    assert load_bundle(DEFAULT_MODEL_PATH, threads=2).model.session.get_session_options().intra_op_num_threads == 2


def test_stale_or_damaged_bundle_is_not_used(tmp_path):
    pt = tmp_path / "model.pt"
    shutil.copy(DEFAULT_MODEL_PATH, pt)
    assert load_bundle(pt) is None  # no bundle yet
    write_bundle(pt)
    assert load_bundle(pt) is not None
    with open(pt, "ab") as f:  # the checkpoint changes after the bundle was written
        f.write(b"\0")
    assert load_bundle(pt) is None
    bundle_path(pt).write_bytes(b"not a bundle")
    shutil.copy(DEFAULT_MODEL_PATH, pt)
    assert load_bundle(pt) is None


def test_transcribe_with_the_shipped_model_never_imports_torch(tmp_path):
    import soundfile as sf

    wav = tmp_path / "groove.wav"
    sf.write(str(wav), _groove()[: 48000 * 4], 48000)
    code = ("import sys\nfrom drumscribe.cli import main\ncode = main(['transcribe', sys.argv[1], '-o', sys.argv[2], "
            "'--no-progress'])\nprint('torch' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", code, str(wav), str(tmp_path / "groove.mid")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "False 0", out.stdout + out.stderr
