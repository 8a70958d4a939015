"""Several networks as one offline model (models.cnn.HitEnsemble, drumscribe train ensemble): the mean
of the members' probabilities, their embeddings side by side, through a checkpoint, an ONNX bundle and the engine."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drumscribe.models.cnn import (
    Checkpoint,
    HitCNN,
    HitCNNConfig,
    HitEnsemble,
    load_checkpoint,
    save_checkpoint,
)
from drumscribe.models.export import write_bundle
from drumscribe.models.runtime import load_bundle
from drumscribe.offline.ensemble import ensemble

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def members(checkpoint_path, tmp_path_factory):
    """The random test network and a second, other one (another seed, the contrast plane, a wider head), with
    different kits in their training records."""
    base = load_checkpoint(checkpoint_path)
    torch.manual_seed(99)
    other = HitCNN(HitCNNConfig(n_classes=len(base.labels), contrast_channel=True, hidden=64)).eval()
    folder = tmp_path_factory.mktemp("members")
    first, second = folder / "a.pt", folder / "b.pt"
    save_checkpoint(first, Checkpoint(**{**base.__dict__, "extra": {"data": {"kits": ["kit:A", "kit:B"]}}}))
    save_checkpoint(second, Checkpoint(**{**base.__dict__, "model": other, "extra": {"data": {"kits": ["kit:C"]}}}))
    return first, second


def test_ensemble_answers_the_mean_probability_and_both_embeddings(members):
    nets = [load_checkpoint(p).model for p in members]
    both = ensemble(members)
    windows = torch.randn(32, 64, 20, generator=torch.Generator().manual_seed(3)) * 3 + 1
    with torch.no_grad():
        logits, embedding = both.model.forward_with_embedding(windows)
        alone = [n.forward_with_embedding(windows) for n in nets]
    mean = torch.stack([torch.sigmoid(lg) for lg, _ in alone]).mean(0)
    assert torch.allclose(torch.sigmoid(logits), mean, atol=1e-6)
    assert torch.allclose(embedding, torch.cat([e for _, e in alone], dim=1), atol=1e-5)
    assert embedding.shape[1] == nets[0].config.hidden + nets[1].config.hidden
    assert torch.isfinite(logits).all()  # far-off logits too (the windows are loud: some members answer ~0 or ~1)


def test_a_member_votes_on_its_drums_only_through_checkpoint_and_bundle(members, tmp_path):
    """--member-classes: the second member votes on two drums; those get the mean of both members, every other
    drum the first member's probability alone, and the embedding is the first member's; the same from the saved
    checkpoint and its ONNX bundle."""
    first, second = members
    labels = load_checkpoint(first).labels
    nets = [load_checkpoint(p).model for p in members]
    run = _cli(first, second, "--member-classes", f"{second}={labels[0]},{labels[-1]}", "-o", tmp_path / "e.pt")
    assert run.returncode == 0, run.stderr
    ens = load_checkpoint(tmp_path / "e.pt")
    assert ens.extra["members"][1]["votes_on"] == [labels[0], labels[-1]]
    windows = torch.randn(16, 64, 20, generator=torch.Generator().manual_seed(4)) * 2 + 1
    with torch.no_grad():
        got = torch.sigmoid(ens.model(windows))
        alone = [torch.sigmoid(n(windows)) for n in nets]
    both = (alone[0] + alone[1]) / 2
    for i in range(len(labels)):
        expected = both[:, i] if i in (0, len(labels) - 1) else alone[0][:, i]
        assert torch.allclose(got[:, i], expected, atol=1e-6)
    assert not torch.allclose(got[:, 0], alone[0][:, 0], atol=1e-3)  # the vote counts
    with torch.no_grad():  # ... and nothing else: the embedding is the full voter's alone
        assert torch.allclose(ens.model.forward_with_embedding(windows)[1], nets[0].forward_with_embedding(windows)[1],
                              atol=1e-5)
    write_bundle(tmp_path / "e.pt")
    onnx = load_bundle(tmp_path / "e.pt").model.run_numpy(windows.numpy())
    assert np.allclose(1 / (1 + np.exp(-onnx)), got.numpy(), atol=1e-5)
    for bad, message in ((f"{second}=nodrum", "'nodrum' is not a drum"), (f"{tmp_path}/x.pt={labels[0]}", "not one of"),
                         (str(second), "expected PT=DRUM")):
        run = _cli(first, second, "--member-classes", bad, "-o", tmp_path / "f.pt")
        assert run.returncode == 2 and message in run.stderr.strip().splitlines()[-1], run.stderr


def test_ensemble_checkpoint_and_bundle_round_trip(members, tmp_path):
    path = tmp_path / "ens.pt"
    save_checkpoint(path, ensemble(members))
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, HitEnsemble) and len(loaded.model.members) == 2
    assert loaded.extra["data"]["kits"] == ["kit:A", "kit:B", "kit:C"]
    assert [m["source"] for m in loaded.extra["members"]] == ["a.pt", "b.pt"]
    write_bundle(path)  # checks ONNX Runtime's logits and embedding against torch's itself
    bundle = load_bundle(path)
    windows = np.random.default_rng(0).normal(1, 3, (8, 64, 20)).astype(np.float32)
    with torch.no_grad():
        want = loaded.model(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(bundle.model.run_numpy(windows), want, atol=1e-4)


def test_half_weights_halve_the_file_and_load_back_as_measured(members, tmp_path):
    """--half: the weights rounded to 16 bits, stored so; the file loads back to exactly the rounded model (what
    the thresholds were tuned on), stays 16-bit when saved again (as offline.tune_thresholds does), and its ONNX
    bundle agrees with it."""
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    assert _cli(*members, "-o", full).returncode == 0
    run = _cli(*members, "--half", "-o", half)
    assert run.returncode == 0, run.stderr
    assert half.stat().st_size < 0.6 * full.stat().st_size
    rounded, loaded = ensemble(members, half=True), load_checkpoint(half)
    assert loaded.extra["weights_dtype"] == "float16" and "weights_dtype" not in load_checkpoint(full).extra
    for (name, want), got in zip(rounded.model.state_dict().items(), loaded.model.state_dict().values()):
        assert got.dtype == want.dtype and torch.equal(got, want), name
    windows = torch.randn(16, 64, 20, generator=torch.Generator().manual_seed(5)) * 3 + 1
    with torch.no_grad():
        exact, rounded_logits = load_checkpoint(full).model(windows), loaded.model(windows)
    assert not torch.equal(exact, rounded_logits)  # the rounding did happen ...
    assert torch.allclose(torch.sigmoid(exact), torch.sigmoid(rounded_logits), atol=2e-3)  # ... and is small
    again = tmp_path / "again.pt"
    save_checkpoint(again, loaded)
    assert again.stat().st_size == pytest.approx(half.stat().st_size, rel=0.01)
    write_bundle(half)  # checks ONNX Runtime against torch itself
    with torch.no_grad():
        np.testing.assert_allclose(load_bundle(half).model.run_numpy(windows.numpy()),
                                   loaded.model(windows).numpy(), atol=1e-4)


def test_engine_transcribes_with_an_ensemble(members, groove):
    from drumscribe.realtime.engine import transcribe_array

    ckpt = ensemble(members)
    ckpt.thresholds = [0.0] * len(ckpt.labels)  # every onset gives hits: the ensemble's answers reach the sinks
    hits = transcribe_array(groove[0].astype(np.float64), ckpt)
    assert hits
    ckpt.model = ckpt.model.members[0]
    assert [h.confidence for h in transcribe_array(groove[0].astype(np.float64), ckpt)] != [h.confidence for h in hits]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "drumscribe", "train", "ensemble", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def test_members_with_other_windows_each_read_their_own_frames(members, checkpoint_path, tmp_path):
    """A member that sees more frames before the onset (or fewer after it) joins: the ensemble's window holds
    every member's, the onset frame aligned, and each member answers on its own frames of it exactly as alone;
    the same through the saved checkpoint and its ONNX bundle."""
    wide = load_checkpoint(checkpoint_path)
    torch.manual_seed(7)
    wide.model = HitCNN(HitCNNConfig(n_classes=len(wide.labels), frames_before=5, frames_after=12,
                                     contrast_channel=True)).eval()
    save_checkpoint(tmp_path / "wide.pt", wide)
    ens = ensemble([members[0], tmp_path / "wide.pt"])
    cfg, first = ens.model.config, load_checkpoint(members[0]).model.config
    assert (cfg.frames_before, cfg.frames_after) == (5, first.frames_after)
    windows = torch.randn(16, 64, cfg.n_frames, generator=torch.Generator().manual_seed(8)) * 2 + 1
    with torch.no_grad():
        got = torch.sigmoid(ens.model(windows))
        alone = [torch.sigmoid(load_checkpoint(members[0]).model(windows[..., 2:])),
                 torch.sigmoid(wide.model(windows[..., : 5 + 1 + 12]))]
    assert torch.allclose(got, torch.stack(alone).mean(0), atol=1e-6)
    save_checkpoint(tmp_path / "e.pt", ens)
    loaded = load_checkpoint(tmp_path / "e.pt")
    assert loaded.model.config.n_frames == cfg.n_frames
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(loaded.model(windows)), got, atol=1e-6)
    write_bundle(tmp_path / "e.pt")
    onnx = load_bundle(tmp_path / "e.pt").model.run_numpy(windows.numpy())
    np.testing.assert_allclose(1 / (1 + np.exp(-onnx)), got.numpy(), atol=1e-4)


def test_cli_writes_an_ensemble(members, tmp_path):
    out = tmp_path / "ens.pt"
    run = _cli(*members, "-o", out)
    assert run.returncode == 0, run.stderr
    assert isinstance(load_checkpoint(out).model, HitEnsemble)


@pytest.mark.slow
def test_cli_refuses_bad_members_in_one_line(members, checkpoint_path, tmp_path):
    ens = tmp_path / "ens.pt"
    save_checkpoint(ens, ensemble(members))
    odd = load_checkpoint(checkpoint_path)
    odd.labels = odd.labels[::-1]
    save_checkpoint(tmp_path / "odd.pt", odd)
    from drumscribe.realtime.features import FeatureParams, mel_basis

    narrow = load_checkpoint(checkpoint_path)  # 32 mel bands, its features and filterbank too (else it cannot load)
    narrow.model = HitCNN(HitCNNConfig(n_classes=len(odd.labels), n_mels=32)).eval()
    narrow.feature_params = FeatureParams(**{**narrow.feature_params, "n_mels": 32}).as_dict()
    narrow.mel_basis = mel_basis(FeatureParams(**narrow.feature_params))
    save_checkpoint(tmp_path / "narrow.pt", narrow)
    masked = load_checkpoint(checkpoint_path)
    masked.extra = {**masked.extra, "drum_mask": {"layers": [], "source": "mask.pt"}}
    save_checkpoint(tmp_path / "masked.pt", masked)
    cases = {
        (members[0],): "two or more",
        (members[0], tmp_path / "missing.pt"): "does not exist",
        (members[0], ens): "is an ensemble already",
        (members[0], tmp_path / "odd.pt"): "has labels",
        (members[0], tmp_path / "narrow.pt"): "reads other features",
        (members[0], tmp_path / "masked.pt"): "another drum mask",
    }
    for models, expected in cases.items():
        run = _cli(*models, "-o", tmp_path / "out.pt")
        assert run.returncode == 2, (models, run.stdout)
        lines = run.stderr.strip().splitlines()
        assert expected in lines[-1] and "Traceback" not in run.stderr, run.stderr
    run = _cli(*members, "-o", tmp_path / "no" / "such" / "dir" / "e.pt")
    assert run.returncode == 2 and "cannot write" in run.stderr and "Traceback" not in run.stderr


def test_training_refuses_to_start_from_an_ensemble(members):
    """`drumscribe train --init` grows one network from one network; an ensemble gets a clear refusal."""
    from drumscribe.offline.train import load_init

    with pytest.raises(ValueError, match="is an ensemble of 2 networks"):
        load_init(HitCNN(HitCNNConfig(n_classes=11)), ensemble(members).model)


def _onsets_and_windows(ckpt, audio):
    from drumscribe.realtime.features import FeatureParams, LogMelSpectrogram
    from drumscribe.realtime.onsets import OnsetDetector, OnsetParams
    from drumscribe.realtime.types import FrameBlock

    fp = FeatureParams(**ckpt.feature_params)
    mel = LogMelSpectrogram(fp, ckpt.mel_basis).process(audio).mel
    onsets = OnsetDetector(OnsetParams(**ckpt.onset_params), n_mels=fp.n_mels).process(FrameBlock(0, mel)).onsets
    cfg = ckpt.model.config
    padded = np.concatenate((np.zeros((cfg.frames_before, cfg.n_mels)), mel, np.zeros((64, cfg.n_mels))))
    windows = np.stack([padded[k : k + cfg.frames_before + cfg.frames_after + 1] for k in onsets])
    return mel, list(onsets), np.ascontiguousarray(windows.transpose(0, 2, 1), dtype=np.float32)


def _gated_hits(ckpt, mel, onsets, gate):
    """Every hit of the stage with the context's blending off (weight 0), thresholds 0 and the onset gate."""
    from drumscribe.realtime.decoder import ContextParams, DecoderParams, HitDecoder
    from drumscribe.realtime.scorer import OnsetScorer
    from drumscribe.realtime.types import FrameBlock

    context = ContextParams(weight=0.0, ahead_s=1.0, gate=gate)
    scorer = OnsetScorer(ckpt, batch_frames=400, embedding=True, gate=gate)
    stage = HitDecoder.for_checkpoint(ckpt, batch_frames=400, context=context,
                                      params=DecoderParams(thresholds=[0.0] * len(ckpt.labels), refractory_s=0.0))
    hits = stage.process(scorer.process(FrameBlock(0, mel, tuple(onsets))))
    return stage, hits + stage.process(scorer.process(FrameBlock(len(mel), np.zeros((2000, mel.shape[1])))))


def test_onset_gate_drops_the_onsets_its_member_does_not_hear_and_no_other(members, groove, tmp_path):
    """ContextParams.gate: an onset whose every drum the gate member (the first voting on all) gives less than
    the gate has no hit; every other onset has the hits it had without the gate, at the same confidences; the
    ONNX bundle's gate network answers as torch's."""
    path = tmp_path / "ens.pt"
    save_checkpoint(path, ensemble(members))
    ckpt = load_checkpoint(path)
    mel, onsets, windows = _onsets_and_windows(ckpt, groove[0].astype(np.float64))
    assert len(onsets) > 20
    with torch.no_grad():
        heard = torch.sigmoid(ckpt.model.gate_logits(torch.from_numpy(windows))).numpy().max(axis=1)
        alone = torch.sigmoid(ckpt.model.members[0](torch.from_numpy(windows[..., : 20]))).numpy().max(axis=1)
    np.testing.assert_allclose(heard, alone, atol=1e-6)  # the gate member is the first, on its own frames
    # the gate: midway across the widest gap between two onsets' answers in the middle third (about half the onsets
    # below it), so that no onset lies within float noise of it whatever the batch sizes and the CPU
    ordered = np.sort(heard)
    third = len(ordered) // 3
    gap = third + int(np.argmax(np.diff(ordered[third : 2 * third + 1])))
    gate = float(ordered[gap] + ordered[gap + 1]) / 2
    assert ordered[gap + 1] - ordered[gap] > 1e-4
    stage, every = _gated_hits(ckpt, mel, onsets, 0.0)
    _, gated = _gated_hits(ckpt, mel, onsets, gate)
    to_onset = {stage.hop_samples * (k + 1 - stage.onset_offset_frames) / stage.sample_rate_hz: i
                for i, k in enumerate(onsets)}
    assert {to_onset[h.onset_s] for h in every} == set(range(len(onsets)))
    assert {to_onset[h.onset_s] for h in gated} == set(np.flatnonzero(heard >= gate).tolist())
    # the same hits at the same confidences: computed in other batches (the gate's onsets only), so within float
    # noise, not bit for bit
    kept = sorted((h.onset_s, h.drum, h.confidence) for h in every if heard[to_onset[h.onset_s]] >= gate)
    got = sorted((h.onset_s, h.drum, h.confidence) for h in gated)
    assert [(onset, drum) for onset, drum, _ in got] == [(onset, drum) for onset, drum, _ in kept]
    np.testing.assert_allclose([c for _, _, c in got], [c for _, _, c in kept], atol=1e-5)

    write_bundle(path)  # checks the gate network's logits against torch's itself
    bundle = load_bundle(path)
    assert bundle.model.has_gate
    np.testing.assert_allclose(bundle.model.run_gate(windows), ckpt.model.gate_logits(torch.from_numpy(windows))
                               .detach().numpy(), atol=1e-4)
    _, from_bundle = _gated_hits(bundle, mel, onsets, gate)
    assert {h.onset_s for h in from_bundle} == {h.onset_s for h in gated}


def _with_gate(checkpoint, gate):
    import copy

    from drumscribe.realtime.decoder import ContextParams

    out = copy.copy(checkpoint)
    out.extra = {**checkpoint.extra, "context": ContextParams(gate=gate).as_dict()}
    return out


def test_onset_gate_needs_an_ensemble_and_a_probability(checkpoint):
    from drumscribe.realtime.decoder import ContextParams
    from drumscribe.realtime.engine import OFFLINE, build_stages
    from drumscribe.realtime.scorer import OnsetScorer

    with pytest.raises(ValueError, match="gate"):
        ContextParams(gate=1.0)
    with pytest.raises(ValueError, match="one network"):
        OnsetScorer(checkpoint, gate=0.05)
    with pytest.raises(ValueError, match="one network"):  # the engine's chain asks the scorer
        build_stages(_with_gate(checkpoint, 0.05), OFFLINE)
    OnsetScorer(checkpoint, gate=0.0)  # off: any model


@pytest.mark.parametrize("args, message", [
    (["--gate", "0.05"], "give --context too"),
    (["--context", "--gate", "1.5"], "must be a probability"),
    (["--context", "--gate", "0.05"], "one network"),
    (["--split-contrast", "0.07"], "give --context too"),
    (["--context", "--split-contrast", "-1"], "split_contrast -1.0 must be >= 0"),
    (["--context", "--split-window", "90", "30"], "--split-window 90 30: context split_behind_s 90.0 must be"),
])
def test_tune_cli_refuses_a_gate_it_cannot_use_in_one_line(checkpoint_path, args, message):
    run = subprocess.run([sys.executable, "-m", "drumscribe", "train", "tune", "--model", str(checkpoint_path),
                          *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert message in run.stderr.strip().splitlines()[-1]
