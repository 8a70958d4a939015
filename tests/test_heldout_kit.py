"""The shipped model on grooves played by kits that training never heard (kick, snare, hi-hat F at 50 ms).

The v0 issue asks for F3 >= 0.9 here, and this test asserts it. The shipped model (five networks, two of them on
wider windows), with the in-song context decoding files get, measures 0.909 (KD 0.969, SD 0.936, HH 0.865: the
hi-hat is still the weak drum). The models before it measured 0.908 (three and five networks), 0.885 (two
networks), 0.887 (one network with the context decoding), 0.879 (each onset decided alone) and 0.861 (the narrower
network before that).
"""
import numpy as np
import pytest

from drumscribe.models import DEFAULT_MODEL_PATH
from drumscribe.offline.evaluate import hits_to_classes, played_to_classes, pool, score
from drumscribe.offline.render import HELD_OUT_KITS, available, generate_pattern, load_kit, render_hits
from drumscribe.realtime.engine import transcribe_array

HELD_OUT_HYDROGEN = "hydrogen:ColomboAcousticDrumkit"


@pytest.fixture(scope="module")
def checkpoint():
    import torch

    from drumscribe.models.cnn import load_checkpoint

    torch.set_num_threads(1)
    return load_checkpoint(DEFAULT_MODEL_PATH)


def test_held_out_kits_are_never_trained_on(checkpoint):
    trained = set(checkpoint.extra["data"]["kits"])
    assert trained.isdisjoint(HELD_OUT_KITS)


@pytest.fixture(scope="module")
def grooves(checkpoint):
    """[(played hits, transcribed hits)] of three grooves at 84, 112 and 140 BPM on the held-out Hydrogen kit."""
    assert available(HELD_OUT_HYDROGEN), "hydrogen-drumkits is not installed (make setup installs it)"
    kit = load_kit(HELD_OUT_HYDROGEN)
    rng = np.random.default_rng(2024)
    out = []
    for tempo in (84, 112, 140):
        hits, duration = generate_pattern(rng, bars=8, tempo_bpm=tempo, style="groove", drums_available=kit.drums)
        audio = render_hits(hits, kit, duration_s=duration, rng=rng)
        audio = 0.5 * audio / np.abs(audio).max()
        out.append((hits, transcribe_array(audio.astype(np.float64), checkpoint)))
    return out


def test_groove_on_held_out_kit_transcribes_kick_snare_hihat(grooves):
    scores = [score(played_to_classes(hits), hits_to_classes(found)) for hits, found in grooves]
    total = pool(scores)
    f3 = total["F3"]["f"]
    figures = f"F3 {f3:.3f} on the held-out kit: " + ", ".join(f"{c} {total[c]['f']:.3f}" for c in ("KD", "SD", "HH"))
    print(figures)  # pytest -s shows the measured level
    assert f3 >= 0.9, figures


def test_velocity_follows_the_played_velocity_on_held_out_kit(grooves):
    """Velocity is the hit's energy in its drum's band over the 40 ms from its onset plus a per-drum offset, both
    fitted on training kits only (offline/calibrate_velocity.py --frames 8 --reduce sum). Played and transcribed
    velocities of the hits found as the drum that was played must rank alike. The accuracy issue asks Spearman
    >= 0.8: bench/accuracy.py measures 0.825 on its six grooves on this kit with the shipped model (0.811 with the
    loudest of five frames, the measure before; 0.831 with two networks, 0.838 with one and its context decoding,
    0.836 with the narrow network), these three measure 0.763 over 259 hits (the measure before: 0.753; 0.758
    with two networks, 0.753 with one, 0.803 with the narrow network, 0.773 with the model before that), so this
    guards >= 0.75."""
    from scipy.stats import spearmanr

    pairs = []
    for hits, found in grooves:
        for f in found:
            near = [h for h in hits if h.drum == f.drum and abs(h.time_s - f.onset_s) < 0.03]
            if near:
                pairs.append((near[0].velocity, f.velocity))
    assert len(pairs) > 200
    rho = spearmanr(*np.array(pairs).T)[0]
    print(f"velocity Spearman {rho:.3f} over {len(pairs)} hits")
    assert rho >= 0.75, f"velocity Spearman {rho:.3f} over {len(pairs)} hits on the held-out kit"
