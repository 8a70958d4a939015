"""The drum mask: its streaming stage, its training renders (the drums known apart from the band) and its training."""
import numpy as np
import pytest
import torch

from drumscribe.models.unmix import DrumMask, DrumMaskConfig, numpy_weights
from drumscribe.realtime.types import FrameBlock
from drumscribe.realtime.unmix import DrumMaskStage, mask_to_extra, weights_from_extra


def _stream(stage, mel, block):
    outs = []
    for i in range(0, len(mel), block):
        onsets = tuple(k for k in range(i, min(i + block, 900)) if k % 97 == 0)  # onsets in the first 900 frames
        out = stage.process(FrameBlock(i, mel[i : i + block], onsets))
        if out is not None:
            outs.append(out)
    return outs


@pytest.mark.parametrize("group", [1, 64, 256])
def test_mask_stage_gives_the_network_s_frames_whatever_the_block_size(group):
    """Streamed in blocks of 1, 7, 64 and 300 frames, the stage gives the same frames, bit for bit, in order from
    frame 0, equal to DrumMask.apply on the whole spectrogram with silence around it; every onset passes once."""
    torch.manual_seed(0)
    model = DrumMask(DrumMaskConfig(channels=32)).eval()
    reach = model.config.reach_frames
    mel = np.abs(np.random.default_rng(0).normal(size=(900, 64))) * 2
    mel = np.concatenate((mel, np.zeros((reach + group, 64))))  # the engine's flush: silence after the stream
    with torch.no_grad():
        padded = np.concatenate((np.zeros((reach, 64)), mel, np.zeros((reach, 64))))
        reference = model.apply(torch.from_numpy(padded[None]).float())[0].double().numpy()[:900]
    results = []
    for block in (1, 7, 64, 300):
        outs = _stream(DrumMaskStage(numpy_weights(model), group_frames=group), mel, block)
        assert [o.start_frame for o in outs] == list(np.cumsum([0] + [len(o.mel) for o in outs[:-1]]))
        assert [k for o in outs for k in o.onsets] == list(range(0, 900, 97))
        results.append(np.concatenate([o.mel for o in outs])[:900])
    for other in results[1:]:
        assert np.array_equal(results[0], other)
    assert np.abs(results[0] - reference).max() < 1e-4
    assert np.abs(results[0] - mel[:900]).max() > 0.1  # a random mask does change the frames


def test_mask_rides_in_a_checkpoint_and_the_engine_runs_behind_it(tmp_path, checkpoint):
    """A checkpoint whose extra carries a drum mask gets the mask stage before its classifier (files and live),
    with the mask's weights exactly; without one, the chain is as it was."""
    import copy

    from drumscribe.models.unmix import save_mask
    from drumscribe.realtime.engine import LIVE, OFFLINE, build_stages

    torch.manual_seed(1)
    model = DrumMask(DrumMaskConfig(channels=16)).eval()
    save_mask(tmp_path / "mask.pt", model, {"note": "test"})
    spec = mask_to_extra(tmp_path / "mask.pt")
    for (w, b, d), (w2, b2, d2) in zip(numpy_weights(model), weights_from_extra(spec)):
        assert np.array_equal(w, w2) and np.array_equal(b, b2) and d == d2
    masked = copy.copy(checkpoint)
    masked.extra = {**checkpoint.extra, "drum_mask": spec}
    for scheduling in (OFFLINE, LIVE):
        stages = build_stages(masked, scheduling)
        assert isinstance(stages[-3], DrumMaskStage) and len(stages) == 5  # before the scorer and the decoder
        assert not any(isinstance(s, DrumMaskStage) for s in build_stages(checkpoint, scheduling))
    assert build_stages(masked, LIVE)[-3].latency_samples == model.config.reach_frames * 240 + 240


def test_augment_parts_keeps_augment_s_draws_and_puts_every_part_through_one_studio():
    """The whole recording comes out as `augment` makes it (older renders stay the same); a part that is all of
    it comes out the same; the drums apart of a clip with a band differ from the whole by the band alone."""
    from drumscribe.offline.render import augment, augment_parts

    rng = np.random.default_rng(0)
    whole = rng.normal(size=48000).astype(np.float32)
    for seed in range(8):
        alone = augment(whole, np.random.default_rng(seed))
        a, b = augment_parts([whole, whole.copy()], np.random.default_rng(seed))
        assert np.array_equal(alone, a) and np.array_equal(a, b)


def test_drums_apart_are_what_the_drums_contribute():
    """render_performance(drums_apart=True): without a band the drums apart are the whole clip, through the
    studio too; with one (no studio) the whole minus the drums is the band, at a level around the drums'."""
    from drumscribe.offline.render import render_performance

    from conftest import kick_and_hat_kit

    kit = kick_and_hat_kit()
    audio, hits, drums = render_performance(kit, np.random.default_rng(3), bars=2, style="groove", drums_apart=True)
    assert hits and np.array_equal(audio, drums)
    plain, plain_hits = render_performance(kit, np.random.default_rng(3), bars=2, style="groove")
    assert plain_hits == hits and np.array_equal(plain, audio)  # the same draws as without drums_apart
    audio, hits, drums = render_performance(kit, np.random.default_rng(4), bars=2, style="groove",
                                            accompaniment_prob=1.0, augment_strength=0.0, drums_apart=True)
    band = audio - drums
    level_db = 20 * np.log10(np.sqrt(np.mean(band**2)) / np.sqrt(np.mean(drums**2)))
    assert -10 <= level_db <= 10


@pytest.mark.slow
def test_mask_training_learns_to_take_out_the_band(tmp_path):
    """Clips of a real kit with a band (offline.unmix.render_kit), a short training: the masked whole comes out
    much nearer the drums alone than the whole was, on the clips trained on and on two it never saw."""
    from drumscribe.models.unmix import load_mask
    from drumscribe.offline.unmix import render_kit, train
    from drumscribe.realtime.features import FeatureParams, mel_basis

    from conftest import KIT_NAME, find_kit

    find_kit()  # skips without hydrogen-drumkits
    fp = FeatureParams()
    options = {"accompaniment_prob": 1.0, "lead_prob": 0.5}
    seen = render_kit(f"hydrogen:{KIT_NAME}", 10, 1, fp, mel_basis(fp), (), options)
    np.savez(tmp_path / "pairs.npz", mix=seen["mix"], drums=seen["drums"], lengths=seen["lengths"])
    info = train(tmp_path / "pairs.npz", tmp_path / "mask.pt", steps=400, frames=100, channels=32, threads=1)
    assert info["l1_masked"] < 0.6 * info["l1_unmasked"]
    model, _ = load_mask(tmp_path / "mask.pt")
    new = render_kit(f"hydrogen:{KIT_NAME}", 2, 2, fp, mel_basis(fp), (), options)
    mix, drums = new["mix"].astype(np.float64), new["drums"].astype(np.float64)
    reach = model.config.reach_frames
    x = np.concatenate((np.zeros((reach, 64)), mix, np.zeros((reach, 64))))  # two clips as one stream
    with torch.no_grad():
        out = model.apply(torch.from_numpy(x[None]).float())[0].numpy()
    assert np.abs(out - drums).mean() < 0.8 * np.abs(mix - drums).mean()
