"""Several trained drum-hit networks as one offline model: their probabilities averaged at each onset.

    drumscribe train ensemble A.pt B.pt [...] -o runs/ensemble.pt [--member-classes B.pt=crash,ride]
        [--half]

With `--member-classes`, a member votes on the drums named alone (say, a network whose renders taught it cymbals
and cost it the kick under a band); each drum's probability is the mean of the members that vote on it.
The members must read the same features (mel bands) and answer the same labels; they may see different frames
around the onset (the ensemble's window spans them all, each member reads its own frames of it).
The first member gives the onset settings, the thresholds and the in-song context settings; tune the thresholds
for the ensemble afterwards (`drumscribe train tune --model runs/ensemble.pt --context
-o ...`), as for any new network. `extra["members"]` keeps each member's training record; `extra["data"]["kits"]`
is the union of their kits, so the held-out-kit test still sees every kit any member trained on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def ensemble(paths, member_classes: dict | None = None, half: bool = False) -> object:
    """A Checkpoint whose model is a models.cnn.HitEnsemble of the checkpoints at `paths`; `member_classes` maps a
    path to the drums that member votes on (the others vote on every drum). `half`: its weights rounded to 16-bit
    floats, and saved so (`extra["weights_dtype"]`), half the file."""
    from drumscribe.models.cnn import HALF, HitEnsemble, load_checkpoint, round_to_half
    from drumscribe.models.runtime import file_sha256

    members = [load_checkpoint(p) for p in paths]
    first = members[0]
    for path, ckpt in zip(paths, members):
        if isinstance(ckpt.model, HitEnsemble):
            raise ValueError(f"'{path}' is an ensemble already: give its members")
        if ckpt.labels != first.labels:
            raise ValueError(f"'{path}' has labels {ckpt.labels}, the first model {first.labels}")
        if ckpt.decoding.drum_mask != first.decoding.drum_mask:
            raise ValueError(f"'{path}' reads the spectrogram behind another drum mask than the first model, or "
                             "behind one where it does not (offline.unmix): the members must read the same input")
        if ckpt.feature_params != first.feature_params or not np.array_equal(ckpt.mel_basis, first.mel_basis):
            raise ValueError(f"'{path}' reads other features than the first model "
                             f"({ckpt.feature_params} against {first.feature_params})")
    model = HitEnsemble([c.model.config for c in members])
    for net, ckpt in zip(model.members, members):
        net.load_state_dict(ckpt.model.state_dict())
    if member_classes:
        weights = np.ones((len(members), len(first.labels)), np.float32)
        for path, drums in member_classes.items():
            if path not in [str(p) for p in paths]:
                raise ValueError(f"--member-classes '{path}': not one of the members")
            unknown = sorted(set(drums) - set(first.labels))
            if unknown:
                raise ValueError(f"--member-classes '{path}': '{unknown[0]}' is not a drum of the models "
                                 f"({', '.join(first.labels)})")
            weights[[str(p) for p in paths].index(path)] = [d in drums for d in first.labels]
        model.set_class_weights(weights)
    model.eval()
    if half:
        round_to_half(model)
    kits = sorted({k for c in members for k in c.extra.get("data", {}).get("kits", [])})
    votes = {str(p): list((member_classes or {}).get(str(p), first.labels)) for p in paths}
    records = [{"source": Path(p).name, "source_sha256": file_sha256(p), "votes_on": votes[str(p)],
                **{k: c.extra[k] for k in ("data", "train_config", "device", "train_seconds") if k in c.extra}}
               for p, c in zip(paths, members)]
    extra = {k: v for k, v in first.extra.items() if k not in ("data", "train_config", "history", "train_seconds")}
    extra.update(data={"kits": kits}, members=records)
    if half:
        extra["weights_dtype"] = HALF
    else:
        extra.pop("weights_dtype", None)
    return type(first)(model=model, labels=list(first.labels), feature_params=dict(first.feature_params),
                       onset_params=dict(first.onset_params), mel_basis=first.mel_basis,
                       thresholds=list(first.thresholds), onset_offset_frames=first.onset_offset_frames, extra=extra)
