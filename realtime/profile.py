"""Kit profiles: what drumscribe learns of one drum kit from a calibration take (`drumscribe calibrate`).

A calibration take holds each drum of a sequence played alone, a few times, in turn. From it the profile learns, per
network, a small per-kit head: for every drum, a logistic regression over the network's logits and (where the
network gives one) its embedding of an onset. It is fitted on the take's own hits and on a random performance
rendered from them (each hit's sound cut from the take and mixed with others, at random levels and offsets), so that
it knows this kit's strokes alone, together and over each other's tails. At run time `ProfileStage`, between the
onset scorer and the hit decoder, replaces each calibrated drum's probability by the head's, mapped so that the
head's even odds land on the decoder's threshold; drums the take did not play keep the network's. It can also shift
each drum's level so that the take's strokes come out at the velocity they were played at (`--velocity`).

A profile is JSON (`drumscribe_kit_profile`: its version), checked on load: a wrong field, drum or version is one
ProfileError line.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .drums import DRUMS

PROFILE_VERSION = 1
# The heads' L2 penalty on standardised features (as the summed log loss over the examples): strong where the
# embedding gives hundreds of features, which a take's few hundred examples would otherwise fit too closely. Chosen
# on one held-out kit (TimGM6mb, groove seed 3); bench/calibrate.py reports on the other (Colombo).
HEAD_L2 = 1.0
HEAD_L2_EMBEDDING = 100.0


class ProfileError(ValueError):
    """A kit profile that cannot be used; the message is one line for the user."""


def model_key(checkpoint) -> str:
    """A fingerprint of a checkpoint: its labels, feature and onset parameters, thresholds and network shape. A
    profile's head is learned on one network's outputs and used with that network only."""
    cfg = checkpoint.model.config
    text = json.dumps([list(checkpoint.labels), checkpoint.feature_params, checkpoint.onset_params,
                       [round(float(t), 6) for t in checkpoint.thresholds],
                       [cfg.n_mels, cfg.frames_before, cfg.frames_after, cfg.n_classes]], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Head:
    """One network's per-kit head: q = sigmoid(((x - mean) / scale) @ weights + bias) for the drums in `drums`, x
    the onset's `features` (its logits, levels and, embedding=True, its unit embedding)."""

    labels: tuple
    drums: tuple
    embedding: bool
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (features, drums)
    bias: np.ndarray  # (drums,)
    thresholds: np.ndarray  # (drums,) the network's decision the head corrects: its score starts at
    # logit(p) - logit(threshold), so that a head of zero weights decides as the network alone

    def prior(self, probs: np.ndarray) -> np.ndarray:
        """logit(p) - logit(threshold) of the head's drums: the network's own decision, as a score."""
        p = np.clip(np.asarray(probs, dtype=np.float64)[:, [self.labels.index(d) for d in self.drums]], 1e-6,
                    1.0 - 1e-6)
        t = self.thresholds
        return np.log(p / (1.0 - p)) - np.log(t / (1.0 - t))

    def probabilities(self, probs: np.ndarray, embedding: np.ndarray | None, levels_db: np.ndarray) -> np.ndarray:
        x = features(probs, embedding if self.embedding else None, levels_db)
        if x.shape[1] != len(self.mean):
            raise ProfileError(f"profile: the network gives {x.shape[1]} features, the profile's head expects "
                               f"{len(self.mean)}")
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias + self.prior(probs)
        return 1.0 / (1.0 + np.exp(-z))


def decision_thresholds(checkpoint) -> tuple:
    """The thresholds a checkpoint's file decoding decides at (its in-song context's where it has them)."""
    context = checkpoint.extra.get("context") or {}
    return tuple(context.get("thresholds") or checkpoint.thresholds)


def features(probs: np.ndarray, embedding: np.ndarray | None, levels_db: np.ndarray) -> np.ndarray:
    """An onset's features for a head: its logits; every drum's band level (realtime.scorer.LoudnessMeter) less
    the loudest of them (the sound's spectral shape, whatever the stroke's strength), and the loudest; then its
    unit embedding where given. (n, 2 drums + 1 [+ width])."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-6, 1.0 - 1e-6)
    levels = np.asarray(levels_db, dtype=np.float64)
    loudest = levels.max(axis=1, keepdims=True)
    parts = [np.log(p / (1.0 - p)), levels - loudest, loudest]
    if embedding is not None:
        parts.append(np.asarray(embedding, np.float64))
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class KitProfile:
    """A loaded profile: the take's drums, per drum its velocity offset (dB), and one Head per network key."""

    sequence: tuple
    velocity_offsets_db: dict
    heads: dict  # model key -> Head
    names: dict  # model key -> the model's name when calibrated (for messages)
    path: str = ""

    def head_for(self, checkpoint) -> Head:
        key = model_key(checkpoint)
        if key not in self.heads:
            made = ", ".join(f"{name} ({k})" for k, name in self.names.items()) or "none"
            raise ProfileError(f"profile '{self.path}' was not calibrated with this model ({key}); it holds: {made}; "
                               f"run drumscribe calibrate again with this --model")
        head = self.heads[key]
        if tuple(checkpoint.labels) != head.labels:
            raise ProfileError(f"profile '{self.path}': the model's drums {list(checkpoint.labels)} are not the "
                               f"profile's {list(head.labels)}")
        return head

    def stage_for(self, checkpoint, thresholds) -> ProfileStage:
        """The ProfileStage of this checkpoint's head, its even odds at the decoder's `thresholds`."""
        return ProfileStage(self.head_for(checkpoint), thresholds, self.velocity_offsets_db)


def _check(cond: bool, path, what: str) -> None:
    if not cond:
        raise ProfileError(f"profile '{path}': {what}")


def profile_from_dict(data, path="") -> KitProfile:
    """A KitProfile from parsed JSON, every field checked (ProfileError naming the field, value and expectation)."""
    _check(isinstance(data, dict), path, f"expected a JSON object, got {type(data).__name__}")
    version = data.get("drumscribe_kit_profile")
    _check(version == PROFILE_VERSION, path,
           f"'drumscribe_kit_profile' is {version!r}; expected version {PROFILE_VERSION}")
    known = {"drumscribe_kit_profile", "take", "sequence", "drums", "models"}
    extra = sorted(set(data) - known)
    if extra:
        raise ProfileError(f"profile '{path}': unknown field {extra[0]!r}; expected: {', '.join(sorted(known))}")
    sequence = data.get("sequence")
    _check(isinstance(sequence, list) and sequence and all(isinstance(d, str) for d in sequence), path,
           f"'sequence' is {sequence!r}; expected a list of drum names")
    for d in sequence:
        _check(d in DRUMS, path, f"'sequence' names unknown drum {d!r}; drums are: {', '.join(DRUMS)}")
    drums = data.get("drums")
    _check(isinstance(drums, dict), path, "'drums' must be an object, drum -> {hits, level_db, velocity_offset_db}")
    offsets = {}
    for d, entry in drums.items():
        _check(d in DRUMS, path, f"'drums' names unknown drum {d!r}; drums are: {', '.join(DRUMS)}")
        _check(isinstance(entry, dict), path, f"'drums.{d}' must be an object")
        off = entry.get("velocity_offset_db", 0.0)
        _check(isinstance(off, (int, float)) and not isinstance(off, bool) and abs(off) <= 60, path,
               f"'drums.{d}.velocity_offset_db' is {off!r}; expected a number of dB, -60 to 60")
        offsets[d] = float(off)
    models = data.get("models")
    _check(isinstance(models, dict) and models, path, "'models' must be an object, model key -> head")
    heads, names = {}, {}
    for key, m in models.items():
        where = f"'models.{key}'"
        _check(isinstance(m, dict), path, f"{where} must be an object")
        for name in ("labels", "embedding", "mean", "scale", "weights", "bias"):
            _check(name in m, path, f"{where} has no {name!r}")
        labels = m["labels"]
        _check(isinstance(labels, list) and all(lab in DRUMS for lab in labels), path,
               f"{where}.labels {labels!r} are not drums of: {', '.join(DRUMS)}")
        weights, bias = m["weights"], m["bias"]
        _check(isinstance(weights, dict) and isinstance(bias, dict) and set(weights) == set(bias) and weights, path,
               f"{where}: 'weights' and 'bias' must be objects over the same drums")
        for d in weights:
            _check(d in labels, path, f"{where}.weights names drum {d!r}, not one of the model's {labels}")
        try:
            mean = np.asarray(m["mean"], dtype=np.float64)
            scale = np.asarray(m["scale"], dtype=np.float64)
            w = np.stack([np.asarray(weights[d], dtype=np.float64) for d in weights], axis=1)
            b = np.array([float(bias[d]) for d in weights])
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"profile '{path}': {where} holds a value that is not a number ({exc})") from None
        n = len(labels)
        _check(mean.ndim == 1 and len(mean) >= n and scale.shape == mean.shape and w.shape[0] == len(mean), path,
               f"{where}: mean, scale and each drum's weights must be {len(mean)} numbers alike (at least {n})")
        _check(bool(m["embedding"]) == (len(mean) > 2 * n + 1) and len(mean) >= 2 * n + 1, path,
               f"{where}: 'embedding' is {m['embedding']!r} but the head has {len(mean)} features for {n} drums")
        _check(np.isfinite(w).all() and np.isfinite(b).all() and np.isfinite(mean).all() and (scale > 0).all(),
               path, f"{where}: weights, bias and mean must be finite and scale > 0")
        thresholds = m.get("thresholds")
        _check(isinstance(thresholds, dict) and set(thresholds) == set(weights)
               and all(isinstance(t, (int, float)) and 0 < t < 1 for t in thresholds.values()), path,
               f"{where}: 'thresholds' must be an object over the weights' drums, each 0 < t < 1")
        heads[key] = Head(tuple(labels), tuple(weights), bool(m["embedding"]), mean, scale, w, b,
                          np.array([float(thresholds[d]) for d in weights]))
        names[key] = str(m.get("name", ""))
    return KitProfile(tuple(sequence), offsets, heads, names, str(path))


def load_profile(path) -> KitProfile:
    """A profile file, checked (ProfileError: one line)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ProfileError(f"profile '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"profile '{path}' cannot be read as JSON ({' '.join(str(exc).split())})") from None
    return profile_from_dict(data, path)


class ProfileStage:
    """Streaming stage between the onset scorer and the hit decoder: ScoredOnsets in, the same with each calibrated
    drum's probability replaced by the kit profile's head's, p = sigmoid(logit(q) + logit(threshold)) so that the
    head's even odds meet the decoder's threshold, and each drum's level shifted by the profile's offset."""

    latency_samples = 0

    def __init__(self, head: Head, thresholds, velocity_offsets_db: dict | None = None):
        self.head = head
        t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-4, 1 - 1e-4)
        self.columns = np.array([head.labels.index(d) for d in head.drums])
        self.shift = np.log(t[self.columns] / (1.0 - t[self.columns]))
        offsets = velocity_offsets_db or {}
        self.offsets_db = np.array([offsets.get(d, 0.0) for d in head.labels])

    def reset(self) -> None:
        pass  # no streaming state

    def process(self, scores):
        if scores is None or not len(scores.onsets):
            return scores
        q = np.clip(self.head.probabilities(scores.probs, scores.embedding, scores.levels_db), 1e-9, 1 - 1e-9)
        probs = np.array(scores.probs, dtype=np.float64)
        probs[:, self.columns] = 1.0 / (1.0 + np.exp(-(np.log(q / (1.0 - q)) + self.shift)))
        levels = scores.levels_db + self.offsets_db if self.offsets_db.any() else scores.levels_db
        return replace(scores, probs=probs, levels_db=levels)


# ---------------------------------------------------------------------------------------------------------------
# calibration


class CalibrationError(ValueError):
    """A take that cannot be calibrated from; the message is one line for the user."""


def score_audio(audio: np.ndarray, checkpoint, *, embedding: bool, block_size_samples: int = 4096) -> tuple:
    """(onset times s, probabilities, unit embedding or None, levels dB) of every onset the checkpoint's chain
    finds in `audio` (the engine rate), each onset scored alone (no context, no decoder)."""
    from .engine import OFFLINE, build_stages, tail_samples

    stages = build_stages(checkpoint, replace(OFFLINE, context=False))[:-1]
    scorer = stages[-1]
    scorer.embedding = embedding
    hop = checkpoint.feature_params["hop_samples"]
    rate = checkpoint.feature_params["sample_rate_hz"]
    found = []

    def run(block):
        out = block
        for stage in stages:
            out = stage.process(out)
            if out is None:
                return
        if len(out.onsets):
            found.append(out)

    tail = np.zeros(tail_samples(stages) + block_size_samples)
    signal = np.concatenate([np.asarray(audio, dtype=np.float64), tail])
    for start in range(0, len(signal), block_size_samples):
        run(signal[start : start + block_size_samples])
    left = scorer.drain()
    if left is not None and len(left.onsets):
        found.append(left)
    if not found:
        width = 0
        return np.zeros(0), np.zeros((0, len(checkpoint.labels))), (np.zeros((0, width)) if embedding else None), \
            np.zeros((0, len(checkpoint.labels)))
    onsets = np.array([k for s in found for k in s.onsets])
    times = hop * (onsets + 1 - checkpoint.onset_offset_frames) / rate
    probs = np.concatenate([s.probs for s in found])
    emb = np.concatenate([s.embedding for s in found]) if embedding else None
    levels = np.concatenate([s.levels_db for s in found])
    order = np.argsort(times, kind="stable")
    return times[order], probs[order], None if emb is None else emb[order], levels[order]


RISE_DB = 4.0  # a take's onset is a stroke where the audio's slope has this much more power around it
RISE_AFTER_S = (-0.01, 0.02)  # (from the onset: the detector's time may be a frame or two off the attack)
RISE_BEFORE_S = (-0.07, -0.02)  # than before it (a ringing drum's tail gives onset candidates too)
HIT_PROBABILITY = 0.3  # ... or where the network gives some drum this much (a soft attack on a ringing cymbal)
SOFT_RISE_DB = 0.5  # and the power rises by this much at least (a decaying tail's falls)
QUIET_DB = 50.0  # and its power after is no more than this below the loudest stroke's
DOUBLE_S = 0.1  # a stroke within this of the one before is the same stroke (a second onset candidate)


def take_strokes(audio: np.ndarray, times: np.ndarray, probs: np.ndarray, rate: int) -> np.ndarray:
    """Indices of a take's strokes among its onsets (RISE_DB, HIT_PROBABILITY, SOFT_RISE_DB, QUIET_DB, DOUBLE_S)."""
    slope = np.diff(np.asarray(audio, dtype=np.float64), prepend=0.0) ** 2
    power = np.zeros((len(times), 2))
    for i, t in enumerate(times):
        spans = [(max(int((t + a) * rate), 0), max(int((t + b) * rate), 1)) for a, b in (RISE_AFTER_S, RISE_BEFORE_S)]
        power[i] = [slope[a:b].mean() if a < min(b, len(slope)) else 0.0 for a, b in spans]
    power += 1e-20
    rise_db = 10 * np.log10(power[:, 0] / power[:, 1])
    after_db = 10 * np.log10(power[:, 0])
    floor = after_db.max() - QUIET_DB if len(times) else 0.0
    keep = []
    soft = (probs.max(axis=1) >= HIT_PROBABILITY) & (rise_db >= SOFT_RISE_DB)
    for i in np.flatnonzero(((rise_db >= RISE_DB) | soft) & (after_db >= floor)):
        if keep and times[i] - times[keep[-1]] < DOUBLE_S:
            continue
        keep.append(int(i))
    return np.array(keep, dtype=np.int64)


class StrokeCounter:
    """Counts the strokes of audio as it arrives (`drumscribe calibrate --live`), by the rise rule of take_strokes
    without a network: 5 ms frames of the slope's power, a stroke where the frames around one hold RISE_DB more
    than those before, no more than QUIET_DB below the loudest stroke and above `floor_db` (dB of mean square),
    DOUBLE_S apart. `add` keeps every sample; `count` and `last_stroke_s` read them all again (a take is short)."""

    def __init__(self, rate: int, floor_db: float = -70.0):
        self.rate = rate
        self.floor_db = floor_db
        self.hop = max(1, int(0.005 * rate))
        self.chunks = []
        self.samples = 0

    def add(self, block: np.ndarray) -> None:
        self.chunks.append(np.asarray(block, dtype=np.float64).copy())
        self.samples += len(block)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0)

    def strokes_s(self) -> list:
        x = self.audio()
        n = len(x) // self.hop
        if n < 16:
            return []
        slope = np.diff(x, prepend=0.0)[: n * self.hop] ** 2
        power = slope.reshape(n, self.hop).mean(axis=1) + 1e-20
        total = np.concatenate([[0.0], np.cumsum(power)])
        i = np.arange(14, n - 4)
        after = (total[i + 4] - total[i - 2]) / 6  # -10 ms to +20 ms
        before = (total[i - 4] - total[i - 14]) / 10  # -70 ms to -20 ms
        after_db = 10 * np.log10(after)
        rise = after_db - 10 * np.log10(before)
        candidates = i[(rise >= RISE_DB) & (after_db >= self.floor_db)]
        if not len(candidates):
            return []
        loudest = after_db[candidates - 14].max()
        out = []
        for k in candidates[after_db[candidates - 14] >= loudest - QUIET_DB]:
            t = k * self.hop / self.rate
            if not out or t - out[-1] >= DOUBLE_S:
                out.append(t)
        return out


def split_take(times: np.ndarray, sequence, hits: int) -> list:
    """The strokes' times split into len(sequence) groups, in order, at the longest gaps: [(drum, index array)].
    CalibrationError (one line) where the groups do not stand apart or a group's count is far from `hits`."""
    n = len(sequence)
    if len(times) < n:
        raise CalibrationError(f"the take has {len(times)} strokes for {n} drums ({', '.join(sequence)}); expected "
                               f"about {hits} of each")
    gaps = np.diff(times)
    cuts = np.sort(np.argsort(gaps)[::-1][: n - 1]) if n > 1 else np.zeros(0, dtype=int)
    bounds = [0, *(cuts + 1).tolist(), len(times)]
    groups = [(sequence[g], np.arange(bounds[g], bounds[g + 1])) for g in range(n)]
    low, high = max(2, hits // 2), hits + max(2, hits // 2)
    for g, (drum, idx) in enumerate(groups):
        if not low <= len(idx) <= high:
            at = f"{times[idx[0]]:.1f}-{times[idx[-1]]:.1f} s"
            raise CalibrationError(f"group {g + 1} ({drum}, {at}) has {len(idx)} strokes; expected {hits} (from "
                                   f"{low} to {high}): play each drum {hits} times, with a pause of at least twice "
                                   f"the gap between strokes before the next drum")
    if n > 1:
        between = gaps[cuts].min()
        within = max((gaps[idx[:-1]].max() for _, idx in groups if len(idx) > 1), default=0.0)
        if between < 1.5 * within:
            raise CalibrationError(f"the pauses between drums ({between:.2f} s at the shortest) are not clearly longer "
                                   f"than the gaps between strokes of one drum ({within:.2f} s at the longest); "
                                   f"pause at least twice as long before the next drum")
    return groups


def render_from_take(audio: np.ndarray, strokes: list, rng: np.random.Generator, *, events: int = 300,
                     rate: int = 48000) -> tuple:
    """A random performance played with the take's own strokes: (audio, [(time s, drums)]). `strokes` is
    [(drum, start sample, stop sample)]. Each event is one to three drums at once, at -9 to +3 dB, 0.08-0.6 s
    after the one before (over its tail)."""
    by_drum = {}
    for drum, a, b in strokes:
        by_drum.setdefault(drum, []).append((a, b))
    names = sorted(by_drum)
    t = 0.3
    events_out = []
    parts = []
    for _ in range(events):
        k = int(rng.choice([1, 2, 2, 3], p=[0.3, 0.35, 0.2, 0.15])) if len(names) > 1 else 1
        drums = list(rng.choice(names, size=min(k, len(names)), replace=False))
        if "hh_closed" in drums and "hh_open" in drums:  # one hi-hat
            drums.remove("hh_open")
        events_out.append((t, tuple(drums)))
        for d in drums:
            a, b = by_drum[d][rng.integers(len(by_drum[d]))]
            parts.append((int(t * rate), audio[a:b] * 10 ** (rng.uniform(-9, 3) / 20)))
        t += rng.uniform(0.08, 0.6) if rng.random() < 0.7 else rng.uniform(0.6, 1.2)
    out = np.zeros(int((t + 2.0) * rate))
    for at, seg in parts:
        n = min(len(seg), len(out) - at)
        out[at : at + n] += seg[:n]
    return out, events_out


def fit_head(x: np.ndarray, y: np.ndarray, *, l2: float = HEAD_L2, offset: np.ndarray | None = None) -> tuple:
    """(mean, scale, weights, bias) of logistic regressions, one per column of y, on features x (L-BFGS), each
    column's score `offset` plus the regression's (None: no offset)."""
    from scipy.optimize import minimize

    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-3
    z = (x - mean) / scale
    n, f = z.shape
    d = y.shape[1]

    def loss(theta):
        w = theta[: f * d].reshape(f, d)
        b = theta[f * d :]
        s = z @ w + b if offset is None else z @ w + b + offset
        p = 1.0 / (1.0 + np.exp(-s))
        value = np.mean(np.logaddexp(0, s) - y * s) * d + 0.5 * l2 * (w * w).sum() / n
        grad_s = (p - y) / n
        gw = z.T @ grad_s + l2 * w / n
        gb = grad_s.sum(axis=0)
        return value, np.concatenate([gw.ravel(), gb])

    res = minimize(loss, np.zeros(f * d + d), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    theta = res.x
    return mean, scale, theta[: f * d].reshape(f, d), theta[f * d :]


MATCH_S = 0.03  # an onset within this of a rendered event is that event's


def training_set(audio: np.ndarray, checkpoint, sequence, hits: int, *, seed: int = 0, events: int = 300,
                 embedding: bool | None = None) -> tuple:
    """A head's examples from a take: (features, targets (onsets, drums), drums, {drum: [stroke levels dB]},
    strokes found, whether the features hold the embedding (None: where the network gives one))."""
    labels = list(checkpoint.labels)
    missing = [d for d in sequence if d not in labels]
    if missing:
        raise CalibrationError(f"--sequence: drum {missing[0]!r} is not one the model reports ({', '.join(labels)})")
    rate = checkpoint.feature_params["sample_rate_hz"]
    use_embedding = embedding
    if use_embedding is None:
        try:
            score_audio(audio[:rate], checkpoint, embedding=True)
            use_embedding = True
        except ValueError:  # an ONNX bundle written without the embedding output: no embedding
            use_embedding = False
    times, probs, emb, levels = score_audio(audio, checkpoint, embedding=use_embedding)
    idx = take_strokes(audio, times, probs, rate)
    groups = split_take(times[idx], list(sequence), hits)
    # each stroke's sound: from 20 ms before its onset to the next stroke's (at most 1.5 s), faded out
    starts = times[idx]
    strokes, labelled, level_db = [], {}, {}
    for drum, g in groups:
        for j in g:
            a = max(0, int((starts[j] - 0.02) * rate))
            b = int(min(starts[j + 1] - 0.01 if j + 1 < len(starts) else starts[j] + 1.5, starts[j] + 1.5) * rate)
            b = min(b, len(audio))
            if b - a > int(0.03 * rate):
                strokes.append((drum, a, b))
            labelled[int(idx[j])] = drum
            level_db.setdefault(drum, []).append(float(levels[idx[j], labels.index(drum)]))
    rng = np.random.default_rng(seed)
    fade = np.ones(1)
    segs = np.array(audio, dtype=np.float64)
    for _, a, b in strokes:  # a 10 ms fade at each cut's end
        n = min(int(0.01 * rate), b - a)
        fade = np.linspace(1.0, 0.0, n)
        segs[b - n : b] = segs[b - n : b] * fade
    rendered, rendered_events = render_from_take(segs, strokes, rng, events=events, rate=rate)
    peak = np.abs(rendered).max()
    if peak > 0.99:
        rendered *= 0.99 / peak
    r_times, r_probs, r_emb, r_levels = score_audio(rendered, checkpoint, embedding=use_embedding)
    drums = [d for d in labels if d in set(sequence)]
    column = {d: i for i, d in enumerate(drums)}
    rows_x, rows_y = [], []
    # the take: each stroke its drum; every other onset no drum
    x_take = features(probs, emb, levels)
    for i in range(len(times)):
        y = np.zeros(len(drums))
        if i in labelled:
            y[column[labelled[i]]] = 1.0
        rows_x.append(x_take[i])
        rows_y.append(y)
    # the rendered performance: each onset the drums of the event within MATCH_S, else none
    x_r = features(r_probs, r_emb, r_levels)
    ev_t = np.array([t for t, _ in rendered_events])
    for i, t in enumerate(r_times):
        y = np.zeros(len(drums))
        j = int(np.argmin(np.abs(ev_t - t)))
        if abs(ev_t[j] - t) <= MATCH_S:
            for d in rendered_events[j][1]:
                y[column[d]] = 1.0
        rows_x.append(x_r[i])
        rows_y.append(y)
    return np.array(rows_x), np.array(rows_y), drums, level_db, len(idx), use_embedding


def calibrate_model(audio: np.ndarray, checkpoint, sequence, hits: int, *, seed: int = 0, name: str = "",
                    events: int = 300) -> tuple:
    """One network's head from a take: ({json of the head}, {drum: [stroke levels dB]}, strokes found)."""
    labels = list(checkpoint.labels)
    x, y, drums, level_db, strokes, use_embedding = training_set(audio, checkpoint, sequence, hits, seed=seed,
                                                                 events=events)
    column = {d: i for i, d in enumerate(drums)}
    thresholds = decision_thresholds(checkpoint)
    t = np.array([thresholds[labels.index(d)] for d in drums])
    prior = x[:, [labels.index(d) for d in drums]] - np.log(t / (1.0 - t))
    mean, scale, w, b = fit_head(x, y, l2=HEAD_L2_EMBEDDING if use_embedding else HEAD_L2, offset=prior)
    head = {"name": name, "labels": labels, "embedding": use_embedding,
            "trained_on": {"onsets": len(x), "with_a_drum": int((y.sum(axis=1) > 0).sum())},
            "mean": _rounded(mean), "scale": _rounded(scale),
            "weights": {d: _rounded(w[:, column[d]]) for d in drums},
            "bias": {d: round(float(b[column[d]]), 6) for d in drums},
            "thresholds": {d: round(float(t[column[d]]), 6) for d in drums}}
    return head, level_db, strokes


def _rounded(values) -> list:
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64)]


def calibrate(audio: np.ndarray, checkpoints: list, sequence, *, hits: int = 8, take_name: str = "",
              velocity: int | None = None, seed: int = 0) -> dict:
    """A profile (as JSON data) from a take at the engine rate, with one head per (name, checkpoint)."""
    from .decoder import db_from_velocity

    for d in sequence:
        if d not in DRUMS:
            raise CalibrationError(f"--sequence: {d!r} is not a drum; drums are: {', '.join(DRUMS)}")
    if len(set(sequence)) != len(sequence):
        raise CalibrationError(f"--sequence names a drum twice: {','.join(sequence)}")
    models, levels, strokes = {}, {}, 0
    for name, checkpoint in checkpoints:
        head, levels, strokes = calibrate_model(audio, checkpoint, sequence, hits, seed=seed, name=name)
        models[model_key(checkpoint)] = head
    drums = {}
    for d in sequence:
        median = float(np.median(levels[d]))
        offset = 0.0 if velocity is None else float(db_from_velocity(velocity)) - median
        drums[d] = {"hits": len(levels[d]), "level_db": round(median, 2), "velocity_offset_db": round(offset, 2)}
    return {"drumscribe_kit_profile": PROFILE_VERSION, "take": take_name, "sequence": list(sequence),
            "drums": drums, "models": models}
