"""models.oneshot.join_checkpoints: one ensemble of networks trained apart (the shipped one-shot model is one)."""
import numpy as np
import pytest
import torch

from drumscribe.models.oneshot import (
    CheckpointError,
    OneShotCheckpoint,
    OneShotCNN,
    OneShotConfig,
    join_checkpoints,
    load_checkpoint,
    save_checkpoint,
)

LABELS = ["kick", "snare", "hihat"]


def write_net(path, seed, labels=LABELS, hidden=16):
    torch.manual_seed(seed)
    net = OneShotCNN(OneShotConfig(n_mels=16, n_frames=12, n_classes=len(labels), channels=(4, 8), hidden=hidden))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.5)
    save_checkpoint(path, OneShotCheckpoint(model=net.eval(), labels=labels, feature_params={"n_mels": 16},
                                            extra={"seed": seed}))
    return net.eval()


def test_joined_checkpoint_averages_its_members(tmp_path):
    nets = [write_net(tmp_path / f"{k}.pt", k) for k in range(2)]
    joined = join_checkpoints([tmp_path / "0.pt", tmp_path / "1.pt"], tmp_path / "joined.pt")
    loaded = load_checkpoint(tmp_path / "joined.pt")
    assert loaded.model.config.members == 2 and loaded.labels == LABELS
    assert [j["seed"] for j in loaded.extra["joined"]] == [0, 1] == [j["seed"] for j in joined.extra["joined"]]
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(5, 16, 12)).astype(np.float32))
    with torch.no_grad():
        expected = torch.stack([torch.softmax(n(x), dim=1) for n in nets]).mean(dim=0)
        got = torch.softmax(loaded.model(x), dim=1)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got.numpy(), torch.softmax(nets[0](x), dim=1).detach().numpy(), atol=1e-3)


@pytest.mark.parametrize("other", ["labels", "shape"])
def test_join_refuses_checkpoints_that_do_not_fit(tmp_path, other):
    write_net(tmp_path / "a.pt", 0)
    write_net(tmp_path / "b.pt", 1, **({"labels": ["kick", "snare", "tom"]} if other == "labels" else {"hidden": 8}))
    with pytest.raises(CheckpointError, match="b.pt"):
        join_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "joined.pt")
    assert not (tmp_path / "joined.pt").exists()
