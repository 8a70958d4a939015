"""`drumscribe train fit` under torchrun: DistributedDataParallel on 2 CPU processes (gloo), one shard of the windows
per process, the checkpoint written by process 0 alone; and the pieces of it (the shards, torchrun's environment,
a batch that does not split) checked quickly in this process."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from drumscribe.offline.train import Distributed, TrainConfig, TrainError, distributed_from_env, shard_order

KIT = "sf2:/usr/share/sounds/sf2/FluidR3_GM.sf2:128:0"  # a training kit


@pytest.mark.parametrize("world", [2, 3])
def test_the_shards_are_disjoint_cover_every_window_and_change_each_epoch(world):
    n, cfg = 101, TrainConfig(seed=5)
    shards = [shard_order(n, 0, cfg, Distributed(rank=r, local_rank=r, world_size=world)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)
    joined = np.concatenate(shards)
    assert set(joined.tolist()) == set(range(n))
    assert len(joined) - len(set(joined.tolist())) == len(joined) - n < world  # only the padding repeats
    again = shard_order(n, 0, cfg, Distributed(rank=0, local_rank=0, world_size=world))
    assert again.tolist() == shards[0].tolist()  # every process draws the same permutation
    assert shard_order(n, 1, cfg, Distributed(rank=0, local_rank=0, world_size=world)).tolist() != again.tolist()


def test_torchruns_environment_or_none():
    assert distributed_from_env({}) is None
    assert distributed_from_env({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) is None  # one process: as alone
    assert distributed_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Distributed(3, 1, 4)
    with pytest.raises(TrainError, match="WORLD_SIZE '2', RANK None: expected whole numbers"):
        distributed_from_env({"WORLD_SIZE": "2"})


def test_a_batch_that_does_not_split_over_the_processes_is_refused_before_any_work(monkeypatch, tmp_path):
    from drumscribe.offline import train

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(train, "init_distributed", lambda *a: pytest.fail("joined a process group"))
    with pytest.raises(TrainError, match="--batch-size 33 does not split evenly over 2 processes"):
        train.train(TrainConfig(batch_size=33, out=str(tmp_path / "m.pt")))
    assert list(tmp_path.iterdir()) == []


def _bce(model, x, y, cfg, offset) -> float:
    from drumscribe.offline.train import predict

    p = np.clip(predict(model, x, cfg, offset, "cpu"), 1e-6, 1 - 1e-6)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_epoch(tmp_path):
    import torch

    from drumscribe.models.cnn import HitCNN, load_checkpoint
    from drumscribe.offline.train import load_windows

    data = tmp_path / "data" / "train.npz"
    data.parent.mkdir()
    run = subprocess.run([sys.executable, "-m", "drumscribe", "train", "render", "--out", data, "--clips-per-kit",
                          "3", "--kit", KIT, "--workers", "1", "--seed", "3"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    out_dir = tmp_path / "runs"
    out_dir.mkdir()
    out = out_dir / "ddp.pt"
    fit = ["--data", data, "--val", tmp_path / "none.npz", "-o", out, "--epochs", "1", "--batch-size", "32",
           "--channels", "4", "8", "--hidden", "16", "--threads", "1", "--seed", "0", "--lr", "0.005"]
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "drumscribe", "train", "fit", *map(str, fit)], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr.count("epoch 1: loss") == 1 and "2 processes" in run.stderr, run.stderr  # process 0 logs
    assert sorted(p.name for p in out_dir.iterdir()) == ["ddp.pt"]  # one writer, no leftovers

    ckpt = load_checkpoint(out)
    assert ckpt.extra["distributed"] == {"processes": 2, "backend": "gloo", "batch_per_process": 16}
    assert [h["epoch"] for h in ckpt.extra["history"]] == [1]

    # the loss fell: the trained network against the one it started from (same seed, same input normalisation)
    cfg = TrainConfig(frames_before=3, frames_after=16)
    x, y, _, offset = load_windows(str(data), cfg.frames_before, cfg.frames_after)
    torch.manual_seed(0)
    start = HitCNN(ckpt.model.config)
    start.band_mean.copy_(ckpt.model.band_mean)
    start.band_std.copy_(ckpt.model.band_std)
    before, after = _bce(start, x, y, cfg, offset), _bce(ckpt.model, x, y, cfg, offset)
    print(f"\nloss on the training windows: {before:.4f} at the start, {after:.4f} after one epoch on 2 processes")
    assert after < 0.9 * before
