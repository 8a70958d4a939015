"""The hit decoder stage: the scores of each onset (realtime.scorer) in, drum hits out.

It decides, as the network's scores cannot alone: the exclusive groups (the hi-hat states, snare and side stick as
one), the in-song context (each onset blended with the most alike onsets of the same recording, files only), the
thresholds (the checkpoint's, the context's, a drum stem's by the song's drum share, lowered to the song's split
where the floors allow), double-trigger suppression, and each hit's MIDI velocity from its level. What the threshold
tuner changes is one frozen DecoderParams, given to `HitDecoder.with_params`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .types import DrumHit

VELOCITY_FLOOR_DB = -60.0  # a level at or below this is velocity 1
VELOCITY_CEILING_DB = -6.0  # ... at or above this, velocity 127; linear in dB between


def velocity_from_db(db, floor_db: float = VELOCITY_FLOOR_DB, ceiling_db: float = VELOCITY_CEILING_DB) -> np.ndarray:
    """MIDI velocity (1-127) of a level in dB, linear between the floor and the ceiling."""
    return np.clip(np.rint(1 + 126 * (np.asarray(db) - floor_db) / (ceiling_db - floor_db)), 1, 127)


def db_from_velocity(velocity, floor_db: float = VELOCITY_FLOOR_DB,
                     ceiling_db: float = VELOCITY_CEILING_DB) -> np.ndarray:
    """The level in dB a velocity stands for: the inverse of velocity_from_db."""
    return floor_db + (np.asarray(velocity, np.float64) - 1) / 126 * (ceiling_db - floor_db)



# Drums one player cannot sound at the same instant: one pedal, one stick on one snare. The network spreads its
# belief in "a hi-hat" over the three hi-hat states (a half-open stroke is partly closed, partly open), and in "a
# snare stroke" over snare and side stick, so such a group is decided as one: a hit when the group's summed
# probability passes the threshold of its likeliest member, which takes it.
EXCLUSIVE_GROUPS = (("hh_closed", "hh_pedal", "hh_open"), ("snare", "side_stick"))

# Drums a player can strike together, but seldom does, and over which the network's doubt spreads: a tom stroke
# between two tom pitches (a chord of toms on a song with one floor tom), a cymbal between crash and ride. Such a
# group is decided as one, without summing: its likeliest drum is a hit where it passes its threshold, another only
# where it also passes its own and comes near the likeliest, its probability at least DecoderParams.second_ratio
# (per drum) times the likeliest's. Ratio 0: each drum on its own; 1: only a tie.
RIVAL_GROUPS = (("tom_low", "tom_mid", "tom_high"), ("crash", "ride"))


def rival_passes(probs: np.ndarray, columns, ratios) -> np.ndarray:
    """Which of `columns` of each row of `probs` come near enough the row's likeliest of them: p >= ratio * max p,
    (rows, len(columns)) booleans (the likeliest always does)."""
    group = probs[:, columns]
    return group >= np.asarray(ratios, dtype=np.float64) * group.max(axis=1, keepdims=True)


def otsu_split(confidences, minimum: int = 8) -> float | None:
    """Otsu's split of confidences, made on their logits: the probability halfway (in logit) between the two groups
    whose between-group variance is largest, each group two values or more. None for fewer than `minimum` values."""
    c = np.asarray(confidences, dtype=np.float64).ravel()
    n = len(c)
    if n < max(minimum, 4):
        return None
    c = np.clip(c, 1e-6, 1.0 - 1e-6)
    x = np.sort(np.log(c / (1.0 - c)))
    total = np.cumsum(x)
    i = np.arange(2, n - 1)  # the lower group is x[:i]
    lower = total[i - 1] / i
    upper = (total[-1] - total[i - 1]) / (n - i)
    k = int(i[np.argmax(i * (n - i) * (lower - upper) ** 2)])
    return float(1.0 / (1.0 + np.exp(-(x[k - 1] + x[k]) / 2.0)))


def split_contrast(embedding: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> float:
    """How much more alike the onsets above a split sound among themselves than to those below it: the mean cosine
    similarity of the unit `embedding` rows over pairs of `upper` rows, less that over (upper, lower) pairs. A drum
    that plays gives its strokes a cluster of their own (one drum, struck again and again); where none plays, the
    split only cuts a band's notes in two, and the halves sound alike. NaN for fewer than 2 upper or 1 lower rows."""
    n_up, n_low = len(upper), len(lower)
    if n_up < 2 or n_low < 1:
        return float("nan")
    up = embedding[upper].sum(axis=0)
    within = (up @ up - n_up) / (n_up * (n_up - 1))
    return float(within - up @ embedding[lower].sum(axis=0) / (n_up * n_low))


def song_splits(times: np.ndarray, probs: np.ndarray, rows, columns, *, behind: float, ahead: float,
                minimum: int = 8, candidates_from: float = 0.05, embedding: np.ndarray | None = None,
                contrast: float = 0.0) -> np.ndarray:
    """For each of `rows`: otsu_split of the candidates of one class group, the values of `probs`
    (onsets in time order, after the exclusive groups) in `columns` that reach `candidates_from`, over the onsets whose
    time lies from `behind` before the row's to `ahead` after it (times and spans in one unit). NaN where too few,
    and, with `contrast` > 0, where the onsets above the split do not sound apart from the other candidates by that
    much (split_contrast of the onsets' unit `embedding`): no drum of the group plays there."""
    out = np.full(len(rows), np.nan)
    done = {}
    for j, r in enumerate(rows):
        lo = int(np.searchsorted(times, times[r] - behind, side="left"))
        hi = int(np.searchsorted(times, times[r] + ahead, side="right"))
        if (lo, hi) not in done:
            values = probs[lo:hi][:, columns]
            split = otsu_split(values[values >= candidates_from], minimum)
            if split is not None and contrast > 0:
                top = values.max(axis=1)
                upper = np.flatnonzero(top >= split)
                lower = np.flatnonzero((top >= candidates_from) & (top < split))
                if not split_contrast(embedding[lo:hi], upper, lower) >= contrast:
                    split = None
            done[(lo, hi)] = np.nan if split is None else split
        out[j] = done[(lo, hi)]
    return out


@dataclass(frozen=True)
class ContextParams:
    """In-song context decoding (files only): a drum sounds alike every time it is struck in one recording, so each
    onset's probabilities are blended with those of the onsets of the same recording that the network hears most
    alike (cosine similarity of its hidden layer, HitCNN.forward_with_embedding). A quiet hi-hat the network gives
    0.45 alone, whose nearest neighbours in the song are hi-hats it gives 0.9, passes; a kick whose top end looks
    like a hat alone, but whose neighbours are plain kicks, does not. Uses no labels. Neighbours come from up to
    `behind_s` before the onset and `ahead_s` after it, so an onset is decided `ahead_s` late."""

    neighbours: int = 5  # the k most alike onsets
    weight: float = 0.5  # p' = (1 - weight) p + weight * (similarity-weighted mean of the neighbours' p)
    ahead_s: float = 8.0  # neighbours up to this long after the onset (the decision waits for them)
    behind_s: float = 60.0  # ... and this long before it (the memory)
    exclude_s: float = 0.05  # not within this of the onset: another candidate of the same stroke is no evidence
    thresholds: tuple = ()  # per-class thresholds tuned with this decoding; empty: the checkpoint's own
    # A second set for drums heard alone (a drum stem), where the stages measure the drum share of the song
    # (realtime.unmix.DrumShareStage, over the same neighbourhood): below stem_share[0] the set above, from
    # stem_share[1] on this one, in between a blend. Empty: the set above everywhere.
    stem_thresholds: tuple = ()
    stem_share: tuple = (0.8, 0.93)
    # The onset gate (an ensemble of networks): its first all-drums member (models.cnn.HitEnsemble.gate_logits) hears
    # every onset first, and one it gives every drum less than this is dropped (no hit, no neighbour); the whole
    # ensemble hears the rest. Most onset candidates are no drum, so this saves most of their cost. 0: no gate.
    gate: float = 0.0
    # Song-level thresholds: a song the networks hear less surely as a whole (drums under a loud band) gets lower
    # thresholds of its own. Per class group (realtime.drums.SCORE_CLASS), each onset's threshold becomes
    # min(threshold, max(floor, split)), split = otsu_split of the group's candidates (decoded probability >=
    # split_from) among the onsets from split_behind_s (default behind_s) before it to split_ahead_s after it, when
    # there are split_min of them. `floors` has one value per drum; 1.0 leaves a drum's threshold as it is; empty: no
    # drum adapts.
    floors: tuple = ()
    split_ahead_s: float = 30.0
    split_behind_s: float | None = None  # the split's window back; None: behind_s (never more: the memory)
    split_min: int = 8
    split_from: float = 0.05
    # ... and only where the onsets above the split sound apart from the rest by this much (split_contrast of the
    # hidden layer, as the blend's similarity): a recording, or a long stretch, without that drum keeps the
    # thresholds above. 0: no such check.
    split_contrast: float = 0.0
    # The rival groups' rule (RIVAL_GROUPS, DecoderParams.second_ratio) tuned with this decoding: per drum; empty:
    # the checkpoint's own (DecodingParams.second_ratio, that of each onset decided alone)
    second_ratio: tuple = ()

    def __post_init__(self):
        if self.neighbours < 1:
            raise ValueError(f"context neighbours {self.neighbours} must be >= 1")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"context weight {self.weight} must be between 0 and 1")
        for name in ("ahead_s", "behind_s", "exclude_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"context {name} {getattr(self, name)} must be >= 0")
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "stem_thresholds", tuple(float(t) for t in self.stem_thresholds))
        object.__setattr__(self, "stem_share", tuple(float(t) for t in self.stem_share))
        object.__setattr__(self, "floors", tuple(float(f) for f in self.floors))
        object.__setattr__(self, "second_ratio", tuple(float(r) for r in self.second_ratio))
        if any(not 0.0 <= r <= 1.0 for r in self.second_ratio):
            raise ValueError(f"context second_ratio {self.second_ratio} must be shares, 0 to 1 (0: no rival rule)")
        if any(not 0.0 <= f <= 1.0 for f in self.floors):
            raise ValueError(f"context floors {self.floors} must be probabilities, 0 to 1 (1: no song-level threshold)")
        if self.split_ahead_s < 0 or self.split_min < 4 or not 0.0 <= self.split_from < 1.0:
            raise ValueError(f"context split: ahead {self.split_ahead_s} s must be >= 0, at least {self.split_min} "
                             f"candidates must be >= 4, from {self.split_from} must be 0 <= p < 1")
        if self.split_behind_s is not None and not 0.0 <= self.split_behind_s <= self.behind_s:
            raise ValueError(f"context split_behind_s {self.split_behind_s} must be >= 0 and no more than behind_s "
                             f"{self.behind_s} (what the decoding remembers)")
        if not 0.0 <= self.split_contrast < 2.0:
            raise ValueError(f"context split_contrast {self.split_contrast} must be >= 0 and < 2 (a difference of "
                             f"two mean cosine similarities)")
        if len(self.stem_share) != 2 or not 0.0 <= self.stem_share[0] < self.stem_share[1] <= 1.0:
            raise ValueError(f"context stem_share {self.stem_share} must be two shares, 0 <= low < high <= 1")
        if not 0.0 <= self.gate < 1.0:
            raise ValueError(f"context gate {self.gate} must be a probability, 0 <= gate < 1")

    def as_dict(self) -> dict:
        return {**asdict(self), "thresholds": list(self.thresholds), "stem_thresholds": list(self.stem_thresholds),
                "stem_share": list(self.stem_share), "floors": list(self.floors),
                "second_ratio": list(self.second_ratio)}

    @property
    def adapts(self) -> bool:
        """Whether any drum's threshold follows the song (floors)."""
        return any(f < 1.0 for f in self.floors)


@dataclass(frozen=True)
class DecoderParams:
    """What the decoder decides with, all of it that the threshold tuner changes (offline.tune_thresholds): one
    threshold per drum, and optionally a second set for drum stems (ContextParams.stem_thresholds, weighted by the
    song's drum share) and song-level floors (ContextParams.floors); the double-trigger time; the velocity range.
    The checkpoint's values: `DecoderParams.of(checkpoint, context)`; others: `dataclasses.replace`."""

    thresholds: tuple  # per drum, in the checkpoint's label order
    stem_thresholds: tuple = ()  # per drum, for drum stems (in-song context only); empty: none
    floors: tuple = ()  # per drum, how far the song's split may lower its threshold (in-song context only); empty or
    # 1.0: never
    refractory_s: float = 0.030  # a drum found again within this (in whole frames) of its last hit is dropped; 0: never
    # per drum, how near its rival group's likeliest drum a drum's probability must come for a second hit of that
    # group at one onset (RIVAL_GROUPS; 0: any, as every other drum); empty: no rule
    second_ratio: tuple = ()
    velocity_floor_db: float = VELOCITY_FLOOR_DB
    velocity_ceiling_db: float = VELOCITY_CEILING_DB

    def __post_init__(self):
        for name in ("thresholds", "stem_thresholds", "floors", "second_ratio"):
            object.__setattr__(self, name, tuple(float(t) for t in getattr(self, name)))
        if any(not 0.0 <= r <= 1.0 for r in self.second_ratio):
            raise ValueError(f"decoder second_ratio {self.second_ratio} must be shares, 0 to 1 (0: no rival rule)")
        if any(not 0.0 <= f <= 1.0 for f in self.floors):
            raise ValueError(f"decoder floors {self.floors} must be probabilities, 0 to 1 (1: no song-level threshold)")
        if not self.refractory_s >= 0:
            raise ValueError(f"decoder refractory_s {self.refractory_s} must be >= 0")
        if not self.velocity_floor_db < self.velocity_ceiling_db:
            raise ValueError(f"velocity floor {self.velocity_floor_db} dB must be below the ceiling "
                             f"{self.velocity_ceiling_db} dB")

    @classmethod
    def of(cls, checkpoint, context: ContextParams | None = None, **changes) -> DecoderParams:
        """The checkpoint's decoding: its thresholds and rival rule (DecodingParams.second_ratio), or with `context`
        the context's where it has them, with its stem thresholds and floors (ContextParams.thresholds,
        second_ratio, stem_thresholds, floors), then `changes`."""
        n = len(checkpoint.labels)
        thresholds = tuple(checkpoint.thresholds)
        second = tuple(checkpoint.decoding.second_ratio)
        stem, floors = (), ()
        if context is not None:
            for name, values in (("thresholds", context.thresholds), ("stem thresholds", context.stem_thresholds),
                                 ("floors", context.floors), ("second_ratio", context.second_ratio)):
                if values and len(values) != n:
                    raise ValueError(f"context {name}: {len(values)} values for {n} drums")
            thresholds = context.thresholds or thresholds
            second = context.second_ratio or second
            stem, floors = context.stem_thresholds, context.floors
        return cls(**{"thresholds": thresholds, "stem_thresholds": stem, "floors": floors, "second_ratio": second,
                      **changes})


@dataclass
class DecisionLog:
    """What a decoder records of each onset it decides, for the threshold tuner (offline.tune_thresholds): `gates`,
    onset_s -> the weight of the stem thresholds there (0 without them), and (with `embeddings` a dict) onset_s ->
    the onset's unit embedding (in-song context only)."""

    gates: dict = field(default_factory=dict)
    embeddings: dict | None = None


def _grown(old: np.ndarray, start: int, stop: int, capacity: int, row_shape: tuple) -> np.ndarray:
    """A store of `capacity` rows holding old[start:stop] at its front."""
    store = np.zeros((capacity, *row_shape), dtype=old.dtype)
    if stop > start:
        store[: stop - start] = old[start:stop]
    return store


class _Bank:
    """(context) The scored onsets waiting to be decided or to serve as neighbours, in frame order: frame,
    probabilities, unit embedding, the decoded probabilities (blended, exclusive groups applied; filled in later) and
    each one's levels, in arrays that grow at the back and are cut at the front, so that a decision reads its
    neighbours by slicing, not by stacking thousands of rows each time."""

    def __init__(self):
        self.frames = np.zeros(0, dtype=np.int64)
        self.probs = np.zeros((0, 0))
        self.embedding = np.zeros((0, 0))
        self.decoded = np.zeros((0, 0))
        self.levels = []  # each onset's level (dB) of every drum
        self.start = 0  # rows before it are forgotten
        self.stop = 0  # rows from it on are free

    def __len__(self) -> int:
        return self.stop - self.start

    def add(self, onsets: list, probs: np.ndarray, embedding: np.ndarray, levels: list) -> None:
        n = len(onsets)
        if self.stop + n > len(self.frames):  # move the live rows to the front, growing when they fill half
            live = len(self)
            if 2 * (live + n) > len(self.frames):
                capacity = max(2 * (live + n), 1024)
                self.frames = _grown(self.frames, self.start, self.stop, capacity, ())
                self.probs, self.embedding, self.decoded = (
                    _grown(old, self.start, self.stop, capacity, (width,))
                    for old, width in ((self.probs, probs.shape[1]), (self.embedding, embedding.shape[1]),
                                       (self.decoded, probs.shape[1])))
            else:  # in place: a long song's store is not allocated again and again
                for store in (self.frames, self.probs, self.embedding, self.decoded):
                    store[:live] = store[self.start : self.stop].copy()
            self.levels = self.levels[self.start : self.stop]
            self.start, self.stop = 0, live
        end = self.stop + n
        self.frames[self.stop : end] = onsets
        self.probs[self.stop : end] = probs
        self.embedding[self.stop : end] = embedding
        self.decoded[self.stop : end] = 0.0
        self.levels += levels
        self.stop = end

    def frame(self, i: int) -> int:
        """The frame of the i-th live row."""
        return int(self.frames[self.start + i])

    def forget(self, n: int) -> None:
        """Drop the first n live rows."""
        self.start += n


class HitDecoder:
    """Streaming stage: ScoredOnsets (realtime.scorer.OnsetScorer) in, the DrumHits decided during that block out.

    Every drum whose probability passes its threshold (an exclusive group, such as the hi-hat states, as one: see
    EXCLUSIVE_GROUPS) becomes a hit, at the velocity of its level; a second drum of a rival group (the toms, the
    cymbals: RIVAL_GROUPS) only where it comes near that group's likeliest. A drum found again within
    `refractory_s` (whole frames) of its last hit is a double trigger and dropped. With `context` (ContextParams),
    each onset is decided only once the onsets up to `context.ahead_s` after it are scored, on its probabilities
    blended with those of the most alike onsets around it; with floors, once the onsets `split_ahead_s` after those
    are blended too.
    Onsets come in batches fixed by frame index (the scorer's `batch_frames` and look-ahead), and the decoder waits
    in whole batches, so that nothing depends on the block size.
    """

    def __init__(self, labels, params: DecoderParams, *, hop_samples: int, sample_rate_hz: int,
                 onset_offset_frames: int, frames_after: int, batch_frames: int = 1,
                 context: ContextParams | None = None, exclusive_groups=EXCLUSIVE_GROUPS,
                 rival_groups=RIVAL_GROUPS, log: DecisionLog | None = None):
        if batch_frames < 1:
            raise ValueError(f"batch_frames {batch_frames} must be >= 1")
        self.labels = list(labels)
        self.context = context
        self.hop_samples = hop_samples
        self.sample_rate_hz = sample_rate_hz
        self.onset_offset_frames = onset_offset_frames
        self.frames_after = frames_after
        self.batch_frames = batch_frames
        index = {label: i for i, label in enumerate(self.labels)}
        self.exclusive = [np.array([index[d] for d in group if d in index]) for group in exclusive_groups]
        self.exclusive = [g for g in self.exclusive if len(g) > 1]
        self.rival_columns = [np.array([index[d] for d in group if d in index]) for group in rival_groups]
        self.rival_columns = [g for g in self.rival_columns if len(g) > 1]
        self.frames_per_s = sample_rate_hz / hop_samples
        self.ahead_frames = self.behind_frames = self.exclude_frames = 0
        if context is not None:
            self.ahead_frames = round(context.ahead_s * self.frames_per_s)
            self.behind_frames = round(context.behind_s * self.frames_per_s)
            self.exclude_frames = round(context.exclude_s * self.frames_per_s)
        self.log = log
        self._configure(params)
        self.reset()

    @classmethod
    def for_checkpoint(cls, checkpoint, *, batch_frames: int = 1, context: ContextParams | None = None,
                       params: DecoderParams | None = None, log: DecisionLog | None = None) -> HitDecoder:
        """The decoder of a checkpoint's scores (OnsetScorer(checkpoint, batch_frames=...)): at its own
        DecoderParams.of(checkpoint, context) unless `params` are given."""
        fp = checkpoint.feature_params
        return cls(checkpoint.labels, DecoderParams.of(checkpoint, context) if params is None else params,
                   hop_samples=fp["hop_samples"], sample_rate_hz=fp["sample_rate_hz"],
                   onset_offset_frames=checkpoint.onset_offset_frames,
                   frames_after=checkpoint.model.config.frames_after,
                   batch_frames=batch_frames, context=context, log=log)

    def with_params(self, params: DecoderParams, *, log: DecisionLog | None = None) -> HitDecoder:
        """A fresh decoder (no streaming state) like this one, deciding with `params` and recording into `log`. It
        waits as this one does: song-level floors need a decoder whose context has them (ContextParams.floors)."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.log = log
        out._configure(params, wait_frames=self.wait_frames)
        out.reset()
        return out

    def _configure(self, params: DecoderParams, wait_frames: int | None = None) -> None:
        """The settings that follow from `params` (checked against the drums), and (None) the wait they need."""
        n = len(self.labels)
        for name in ("thresholds", "stem_thresholds", "floors", "second_ratio"):
            values = getattr(params, name)
            if (values or name == "thresholds") and len(values) != n:
                raise ValueError(f"decoder {name.replace('_', ' ')}: {len(values)} values for {n} drums")
        if self.context is None and (params.stem_thresholds or any(f < 1.0 for f in params.floors)):
            raise ValueError("decoder stem thresholds and floors belong to the in-song context decoding (files): "
                             "this decoder decides each onset alone")
        self.params = params
        self.thresholds = np.asarray(params.thresholds, dtype=np.float64)
        self.stem_thresholds = np.asarray(params.stem_thresholds, dtype=np.float64) if params.stem_thresholds else None
        # the rival groups where any drum's ratio is > 0: (columns, ratios)
        ratios = np.asarray(params.second_ratio, dtype=np.float64)
        self.rivals = [(g, ratios[g]) for g in self.rival_columns if len(ratios) and (ratios[g] > 0).any()]
        self.refractory_frames = 0 if params.refractory_s == 0 else max(
            1, round(params.refractory_s * self.sample_rate_hz / self.hop_samples))
        # (context) song-level thresholds: per class group, the drums' columns and floors, where any floor is < 1
        self.split_groups = []
        if params.floors:
            from .drums import SCORE_CLASS

            floors = np.asarray(params.floors, dtype=np.float64)
            for name in dict.fromkeys(SCORE_CLASS[d] for d in self.labels if d in SCORE_CLASS):
                columns = np.array([i for i, d in enumerate(self.labels) if SCORE_CLASS.get(d) == name])
                if (floors[columns] < 1.0).any():
                    self.split_groups.append((columns, floors[columns]))
            stray = [d for d, f in zip(self.labels, floors) if f < 1.0 and d not in SCORE_CLASS]
            if stray:
                raise ValueError(f"context floors: {', '.join(stray)} belong to no class group (realtime.drums)")
        self.split_frames = self.split_behind_frames = 0
        if self.context is not None:
            c = self.context
            self.split_frames = round(c.split_ahead_s * self.frames_per_s)
            self.split_behind_frames = round((c.behind_s if c.split_behind_s is None else c.split_behind_s)
                                             * self.frames_per_s)
        # (context) an onset is blended once the onsets ahead_frames after it are scored, and decided once those
        # split_frames after it are blended, where any threshold follows the song
        if wait_frames is None:
            wait_frames = self.ahead_frames + (self.split_frames if self.split_groups else 0)
        elif self.split_groups and wait_frames < self.ahead_frames + self.split_frames:
            raise ValueError("decoder floors: this decoder does not wait for the song's split (its context has no "
                             "floors); build it with the floors")
        self.wait_frames = wait_frames
        # the wait for the song around an onset, once it is scored: all of it released by drain() without more audio
        self.latency_samples = self.held_samples = wait_frames * self.hop_samples

    def reset(self) -> None:
        self.last_hit_frame = {}  # drum -> onset frame of its last hit
        self.bank = _Bank()  # (context) scored onsets in frame order
        self.unblended = 0  # (context) bank[unblended:] wait for the onsets after them to be blended with
        self.undecided = 0  # (context) bank[undecided:unblended] are blended and wait for the song-level thresholds
        self.shares = []  # (context) DrumShareStage's (first frame, last frame needed, drum power, power), in order

    def _batch(self, onset: int) -> int:
        """The scorer's batch of an onset (realtime.scorer.OnsetScorer._batch): fixed by frame index alone."""
        return (onset + self.frames_after + self.batch_frames) // self.batch_frames

    def process(self, scores) -> list:
        """The hits decided once `scores` (realtime.scorer.ScoredOnsets, or None) have come in."""
        if scores is None:
            return []
        if self.context is None:
            if not len(scores.onsets):
                return []
            return self._decide(list(scores.onsets), self._grouped(scores.probs), scores.levels_db)
        self.shares.extend(scores.drum_share)
        if len(scores.onsets):
            self.bank.add(list(scores.onsets), scores.probs, scores.embedding, list(scores.levels_db))
        # an onset is blended once every onset up to ahead_frames after it is scored, and decided once every
        # onset up to split_frames after it is blended (in groups fixed by frame index alone, so that the
        # arithmetic never depends on the block size)
        hits = self._settle(scores.frames_done // self.batch_frames)
        waiting = self.bank.frame(self.undecided) if self.undecided < len(self.bank) else scores.frames_done
        self._forget(min(waiting, scores.frames_done))
        return hits

    def drain(self) -> list:
        """For a stream that ends without its flush (Ctrl-C), so that what was heard is not lost: (context) decide
        every scored onset still waiting, with the neighbours at hand."""
        return self._settle(complete=None) if self.context is not None else []

    def _settle(self, complete: int | None) -> list:
        """(context) Blend, then decide, the onsets whose wait is over, group by group (None: every onset held)."""
        last = complete if complete is not None else np.iinfo(np.int64).max
        while (done := self._ready(self.unblended, len(self.bank), self.ahead_frames, last)) > self.unblended:
            self._blend(done)
        hits = []
        while (done := self._ready(self.undecided, self.unblended, self.wait_frames, last)) > self.undecided:
            hits += self._decide_rows(done)
        return hits

    def _ready(self, first: int, stop: int, wait_frames: int, complete: int) -> int:
        """The end of the group of bank[first:stop] that shares bank[first]'s batch `wait_frames` later, where that
        batch has completed (else `first`): a whole group at a time, so that nothing depends on the block size."""
        if first >= stop:
            return first
        group = self._batch(self.bank.frame(first) + wait_frames)
        if group > complete:
            return first
        done = first
        while done < stop and self._batch(self.bank.frame(done) + wait_frames) == group:
            done += 1
        return done

    def _grouped(self, probs: np.ndarray) -> np.ndarray:
        """Exclusive groups decided as one: each group's summed probability (at most 1) on its likeliest member."""
        probs = probs.copy()
        for group in self.exclusive:
            best = group[np.argmax(probs[:, group], axis=1)]
            total = np.minimum(probs[:, group].sum(axis=1), 1.0)
            probs[:, group] = 0.0
            probs[np.arange(len(probs)), best] = total
        return probs

    def _blend(self, stop: int) -> None:
        """Blend bank[unblended:stop]: each onset's probabilities with its most alike neighbours' (then grouped)."""
        if stop <= self.unblended:
            return
        b = self.bank
        frames = b.frames[b.start : b.stop]
        c = self.context
        first = self.unblended
        lo = np.searchsorted(frames, frames[first] - self.behind_frames, side="left")
        hi = np.searchsorted(frames, frames[stop - 1] + self.ahead_frames, side="right")
        probs = b.probs[b.start + lo : b.start + hi]  # the candidates, from lo on
        embedding = b.embedding[b.start + lo : b.start + hi]
        rows = np.arange(first, stop) - lo
        gap = frames[None, lo:hi] - frames[rows + lo, None]  # (onsets to blend, candidate neighbours)
        near = (gap <= self.ahead_frames) & (gap >= -self.behind_frames) & (np.abs(gap) >= max(self.exclude_frames, 1))
        similarity = np.where(near, np.ascontiguousarray(embedding[rows]) @ embedding.T, -np.inf)
        k = min(c.neighbours, similarity.shape[1])
        best = np.argpartition(-similarity, k - 1, axis=1)[:, :k]  # the k most alike, in no particular order
        weights = np.take_along_axis(similarity, best, axis=1)
        weights = np.where(np.isfinite(weights), np.maximum(weights, 1e-6), 0.0)
        total = weights.sum(axis=1, keepdims=True)
        neighbours = np.einsum("nk,nkc->nc", weights, probs[best]) / np.maximum(total, 1e-12)
        blended = np.where(total > 0, (1.0 - c.weight) * probs[rows] + c.weight * neighbours, probs[rows])
        b.decoded[b.start + first : b.start + stop] = self._grouped(blended)
        self.unblended = stop

    def _decide_rows(self, stop: int) -> list:
        """Decide bank[undecided:stop] (blended): at the thresholds (blended by drum share where there are two
        sets), lowered to the song's where the floors allow."""
        if stop <= self.undecided:
            return []
        b = self.bank
        first = self.undecided
        probs = b.decoded[b.start + first : b.start + stop]
        onsets = [int(k) for k in b.frames[b.start + first : b.start + stop]]
        levels = b.levels[b.start + first : b.start + stop]
        if self.log is not None and self.log.embeddings is not None:
            for onset, e in zip(onsets, b.embedding[b.start + first : b.start + stop]):
                self.log.embeddings[self._onset_s(onset)] = e.copy()
        gate = None if self.stem_thresholds is None else self._stem_weight(np.asarray(onsets))
        if gate is None:
            thresholds = np.repeat(self.thresholds[None], len(probs), axis=0)
        else:
            thresholds = gate[:, None] * self.stem_thresholds + (1.0 - gate[:, None]) * self.thresholds
        c = self.context
        for columns, floors in self.split_groups:
            # only where the split can change a decision: a drum at or above its floor but under its threshold
            where = np.flatnonzero(((probs[:, columns] >= floors)
                                    & (probs[:, columns] < thresholds[:, columns])).any(axis=1))
            if not len(where):
                continue
            live = slice(b.start, b.stop)
            split = song_splits(b.frames[live], b.decoded[live], where + first, columns,
                                behind=self.split_behind_frames, ahead=self.split_frames, minimum=c.split_min,
                                candidates_from=c.split_from, embedding=b.embedding[live],
                                contrast=c.split_contrast)
            known = np.isfinite(split)
            lowered = np.minimum(thresholds[where[known]][:, columns], np.maximum(floors, split[known, None]))
            thresholds[where[known][:, None], columns[None]] = lowered
        self.undecided = stop
        return self._decide(onsets, probs, levels, gate, thresholds=thresholds)

    def _stem_weight(self, onsets: np.ndarray) -> np.ndarray:
        """How far each onset's song is a drum stem, 0-1 (ContextParams.stem_share): its drum share over the
        measured stretches within the context window, those whose mask needed no frame past the window's end.
        No stretch (or only silence) measured yet: 0, the thresholds for any song."""
        if not self.shares:
            return np.zeros(len(onsets))
        first, needed, drums, power = np.asarray(self.shares).T
        inside = (first[None] >= onsets[:, None] - self.behind_frames) & (
            needed[None] <= onsets[:, None] + self.ahead_frames)
        total = inside @ power
        share = np.where(total > 0, (inside @ drums) / np.maximum(total, 1e-30), 0.0)
        low, high = self.context.stem_share
        return np.where(total > 0, np.clip((share - low) / (high - low), 0.0, 1.0), 0.0)

    def _forget(self, oldest_needed: int) -> None:
        """Drop the decided onsets no later onset can have as a neighbour."""
        frames = self.bank.frames[self.bank.start : self.bank.start + self.undecided]
        cut = int(np.searchsorted(frames, oldest_needed - self.behind_frames - 8, side="left"))
        if cut:
            self.bank.forget(cut)
            self.undecided -= cut
            self.unblended -= cut
        oldest = self.bank.frame(self.undecided) if self.undecided < len(self.bank) else oldest_needed
        drop = 0
        while drop < len(self.shares) and self.shares[drop][0] < min(oldest, oldest_needed) - self.behind_frames - 8:
            drop += 1
        if drop:
            del self.shares[:drop]

    def _decide(self, onsets: list, probs: np.ndarray, levels_db, gate: np.ndarray | None = None, *,
                thresholds: np.ndarray | None = None) -> list:
        """The hits of scored onsets, their probabilities with the exclusive groups decided as one (_grouped):
        thresholds (the params', or per onset as given; `gate`, each onset's weight of the stem thresholds, is
        recorded in the log), the rival groups' rule (RIVAL_GROUPS), double-trigger suppression, each hit at the
        velocity of its drum's level."""
        hits = []
        if thresholds is None:
            thresholds = np.broadcast_to(self.thresholds, probs.shape)
        passes = probs >= thresholds
        for columns, ratios in self.rivals:
            passes[:, columns] &= rival_passes(probs, columns, ratios)
        for i, (onset, p) in enumerate(zip(onsets, probs)):
            onset_s = self._onset_s(onset)
            if self.log is not None:
                self.log.gates[onset_s] = 0.0 if gate is None else float(gate[i])
            found = np.flatnonzero(passes[i])
            if not len(found):
                continue
            v = velocity_from_db(levels_db[i], self.params.velocity_floor_db, self.params.velocity_ceiling_db)
            for c in found:
                drum = self.labels[c]
                last = self.last_hit_frame.get(drum)
                if last is not None and onset - last < self.refractory_frames:
                    continue
                self.last_hit_frame[drum] = onset
                hits.append(DrumHit(onset_s, drum, int(v[c]), float(p[c])))
        return hits

    def _onset_s(self, onset: int) -> float:
        return (self.hop_samples * (onset + 1 - self.onset_offset_frames)) / self.sample_rate_hz
