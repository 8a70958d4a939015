"""Train the drum mask (models.unmix): renders whose drums are known apart from the band playing with them.

    drumscribe train unmix render --out data/unmix.npz --clips-per-kit 24 --seed 71 [render options]
    drumscribe train unmix fit --data data/unmix.npz -o models/weights/drummask.pt

`render` plays clips as offline.dataset does (the training kits only, never a held-out one) and keeps, beside each
whole clip's log-mel spectrogram, that of its drums alone through the same studio (render.augment_parts): the
target. `train` fits the mask so that the whole clip's spectrogram, masked, comes out as the drums' (L1 on the
log-mel the hit classifier reads), on random one-second stretches of the clips.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from drumscribe.realtime.features import FeatureParams, log_mel, mel_basis

log = logging.getLogger(__name__)


def render_kit(spec: str, n_clips: int, seed: int, fp: FeatureParams, basis, pool: tuple, options: dict) -> dict:
    """n_clips clips on kit `spec`: the whole clip's log-mel and its drums' alone, float16, one after another."""
    from .dataset import _kit, _percussion
    from .render import render_performance

    rng = np.random.default_rng(seed)
    kit = _kit(spec)
    others = [_kit(s) for s in pool if s != spec]
    percussion = _percussion() if options.get("percussion_prob") else ()
    mix, drums, lengths = [], [], []
    for _ in range(n_clips):
        audio, _hits, alone = render_performance(kit, rng, other_kits=others, tune_semitones=1.5 if others else 0.0,
                                                 bus_mix_prob=0.5 if others else 0.0, percussion=percussion,
                                                 drums_apart=True, **options)
        mix.append(log_mel(audio.astype(np.float64), fp, basis).astype(np.float16))
        drums.append(log_mel(alone.astype(np.float64), fp, basis).astype(np.float16))
        lengths.append(len(mix[-1]))
    return {"mix": np.concatenate(mix), "drums": np.concatenate(drums), "lengths": np.array(lengths), "kit": spec}


def _job(args):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    t = time.time()
    out = render_kit(*args)
    log.warning("%s: %d clips, %.0f s of audio, %.0f s", args[0], args[1], out["lengths"].sum() * args[3].hop_samples
                / args[3].sample_rate_hz, time.time() - t)
    return out


def render(kits, clips_per_kit: int, out_path: Path, *, seed: int, workers: int = 2, mix_kits: bool = True,
           fp: FeatureParams | None = None, **options) -> dict:
    from concurrent.futures import ProcessPoolExecutor

    fp = fp or FeatureParams()
    basis = mel_basis(fp)
    pool = tuple(kits) if mix_kits else ()
    jobs = [(spec, clips_per_kit, seed * 1000 + i, fp, basis, pool, options) for i, spec in enumerate(kits)]
    with ProcessPoolExecutor(workers) as ex:
        parts = list(ex.map(_job, jobs))
    out = {
        "mix": np.concatenate([p["mix"] for p in parts]),
        "drums": np.concatenate([p["drums"] for p in parts]),
        "lengths": np.concatenate([p["lengths"] for p in parts]),
        "kits": np.array([p["kit"] for p in parts]),
        "feature_params": json.dumps(fp.as_dict()),
        "options": json.dumps(options),
    }
    np.savez(out_path, **out)
    return out


def train(data: Path, out: Path, *, steps: int = 6000, batch: int = 32, frames: int = 200, lr: float = 1e-3,
          channels: int = 96, seed: int = 0, threads: int = 2) -> dict:
    import torch

    from drumscribe.models.unmix import DrumMask, DrumMaskConfig, save_mask

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    z = np.load(data)
    mix, drums, lengths = z["mix"], z["drums"], z["lengths"]
    fp = FeatureParams(**json.loads(str(z["feature_params"]))) if "feature_params" in z else FeatureParams()
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    model = DrumMask(DrumMaskConfig(n_mels=mix.shape[1], channels=channels))
    r = model.config.reach_frames
    # every clip padded with silence (zeros) by the mask's reach each side, as a stream begins and ends
    pad = np.zeros((r, mix.shape[1]), np.float16)
    mix_p = np.concatenate([x for s, n in zip(starts, lengths) for x in (pad, mix[s : s + n], pad)])
    offsets = starts + r * (2 * np.arange(len(lengths)) + 1)  # where each clip begins in mix_p
    usable = lengths >= frames
    weights = np.where(usable, lengths - frames + 1, 0).astype(np.float64)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    t0, running = time.time(), None
    for step in range(steps):
        clips = rng.choice(len(lengths), size=batch, p=weights / weights.sum())
        at = rng.integers(0, lengths[clips] - frames + 1)
        x = np.stack([mix_p[offsets[c] + a - r : offsets[c] + a + frames + r] for c, a in zip(clips, at)])
        y = np.stack([drums[starts[c] + a : starts[c] + a + frames] for c, a in zip(clips, at)])
        x, y = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
        loss = (model.apply(x) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 200 == 0 or step == steps - 1:
            log.warning("step %d/%d  L1 %.4f  (%.0f s)", step, steps, running, time.time() - t0)
    # what the mask does, on the data: L1 of the whole clip against its drums, before and after
    with torch.no_grad():
        before = after = n = 0
        for c in range(0, len(lengths), max(1, len(lengths) // 200)):
            x = torch.from_numpy(mix_p[offsets[c] - r : offsets[c] + lengths[c] + r].astype(np.float32))[None]
            y = torch.from_numpy(drums[starts[c] : starts[c] + lengths[c]].astype(np.float32))[None]
            before += (x[:, r:-r] - y).abs().sum().item()
            after += (model.apply(x) - y).abs().sum().item()
            n += y.numel()
    info = {"data": str(data), "steps": steps, "batch": batch, "frames": frames, "lr": lr, "seed": seed,
            "seconds": round(time.time() - t0), "l1_unmasked": before / n, "l1_masked": after / n,
            "hours": float(lengths.sum()) * fp.hop_samples / fp.sample_rate_hz / 3600}
    save_mask(out, model, info)
    return info
