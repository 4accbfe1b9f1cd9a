"""Honest evaluation protocols: train/test splits, time-block groups and the training cap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .models import RANDOM_STATE

PROTOCOLS = ("random", "session", "grouped-kfold", "leave-sound-type-out", "verification", "open-set",
             "enrolled-verification")
#: Protocols scored as forensic trials (:mod:`pipeline.evaluation.forensic_cell`), by a score model
#: of :data:`SCORERS` rather than a classifier.
FORENSIC_PROTOCOLS = ("verification", "open-set")
#: The casework protocol (:mod:`pipeline.evaluation.enrolled`): a questioned clip against a microphone
#: enrolled from its reference recordings, scored by the cell's classifier and calibrated to LRs.
ENROLLED = "enrolled-verification"
#: Protocols whose results are likelihood ratios (``llr``, Tippett data) and verification metrics.
LR_PROTOCOLS = ("verification", ENROLLED)
#: Protocols that need a training session and a test session.
SESSION_PROTOCOLS = ("session", *FORENSIC_PROTOCOLS, ENROLLED)
SCORERS = ("micfp_verify",)
#: How :func:`cap_training` draws (recorded in a workflow ledger's basis): one seeded key per
#: clip, shared by the folds. Session 4 and earlier drew each fold independently.
TRAINING_DRAW = "shared-keys"
GROUP_SECONDS = 30.0


# -- protocols -------------------------------------------------------------------------------
def time_groups(meta: pd.DataFrame, seconds: float = GROUP_SECONDS) -> np.ndarray:
    """Contiguous time blocks per session, shared by all microphones recorded at once.

    Clips of every microphone from the same stretch of programme get the same group, so no
    stretch of content is ever on both sides of a split.
    """
    block = np.floor(meta["start_s"].to_numpy() / seconds).astype(np.int64)
    block -= block.min(initial=0)  # non-negative, so (session, block) -> one integer is one-to-one
    # one integer key per (session, block), not a string per clip (228,050 for a 0.5 s cell)
    session = pd.factorize(meta["session"])[0].astype(np.int64)
    return pd.factorize(session * (int(block.max(initial=0)) + 1) + block)[0]


def protocol_splits(meta: pd.DataFrame, protocol: str, *, n_splits: int = 5, train_sessions=None):
    """Yield ``(fold name, train index, test index)`` for a protocol.

    - ``random``: the thesis's stratified 80/20 split, random_state 42 (kept for comparison).
    - ``session``: train on ``train_sessions`` (default: the first), test on the others.
    - ``grouped-kfold``: GroupKFold over 30 s time blocks (:func:`time_groups`).
    - ``leave-sound-type-out``: each sound type in turn is the unseen test material.
    """
    from sklearn.model_selection import GroupKFold, train_test_split

    idx = np.arange(len(meta))
    y = meta["label"].to_numpy()
    if protocol == "random":
        tr, te = train_test_split(idx, test_size=0.2, stratify=y, random_state=RANDOM_STATE)
        yield "random", np.sort(tr), np.sort(te)
    elif protocol == "session":
        sessions = list(pd.unique(meta["session"]))
        train = list(train_sessions or sessions[:1])
        test = [s for s in sessions if s not in train]
        if not test:
            raise ConfigError(f"session protocol needs at least two sessions, the cube has {sessions}")
        is_train = meta["session"].isin(train).to_numpy()
        yield f"train {'+'.join(train)} test {'+'.join(test)}", idx[is_train], idx[~is_train]
    elif protocol == "grouped-kfold":
        groups = time_groups(meta)
        k = min(n_splits, len(np.unique(groups)))
        if k < 2:
            raise ConfigError("grouped-kfold needs at least two 30 s time blocks")
        for i, (tr, te) in enumerate(GroupKFold(n_splits=k).split(idx, y, groups)):
            yield f"fold {i + 1}/{k}", tr, te
    elif protocol == "leave-sound-type-out":
        types = list(pd.unique(meta["sound_type"]))
        if len(types) < 2:
            raise ConfigError(f"leave-sound-type-out needs at least two sound types, the selection has {types}")
        for t in types:
            te = meta["sound_type"].to_numpy() == t
            yield f"unseen {t}", idx[~te], idx[te]
    else:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")



# -- training cap ----------------------------------------------------------------------------
def check_max_train(max_clips, what: str = "max_train_clips") -> int | None:
    """Validate a training cap: ``None`` (no cap) or a positive integer.

    Parameters
    ----------
    max_clips : int or None
        The cap to check.
    what : str
        How the caller's user names the setting, for the error message.

    Returns
    -------
    int or None
        ``max_clips`` as a Python int, or None.

    Raises
    ------
    ConfigError
        For anything else (zero, negative, a float, a bool).
    """
    if max_clips is None:
        return None
    if isinstance(max_clips, bool) or not isinstance(max_clips, (int, np.integer)) or max_clips < 1:
        raise ConfigError(f"{what} must be a positive integer (leave it unset for no cap), got {max_clips!r}")
    return int(max_clips)


def cap_training(train_index, meta: pd.DataFrame, max_clips: int | None, seed: int = RANDOM_STATE) -> np.ndarray:
    """A seeded subsample of at most ``max_clips`` training clips, stratified by label x sound type.

    Bounds the cost of each fit on a large corpus. Every (label, sound type) stratum keeps its
    share of the training clips (largest-remainder rounding) and at least one clip. Only
    training indices are ever passed in: test sets are never subsampled.

    The draw is coordinated across folds: each clip of ``meta`` gets one seeded random key,
    and a stratum keeps its clips with the smallest keys. Each fold's subsample is still a
    uniform draw from its own training clips, but the folds of one cell share most of theirs:
    five grouped folds capped at 20,000 clips use about 25,000 distinct clips, not up to
    100,000, so a cell's memory stays near the cap (:func:`run_cell` reads them at once).

    Parameters
    ----------
    train_index : array-like of int
        Row positions in ``meta`` of one fold's training clips.
    meta : pandas.DataFrame
        The cell's clip table, with ``label`` and ``sound_type`` columns.
    max_clips : int or None
        The cap; ``None`` means no cap.
    seed : int
        Seed of the draw within each stratum (default :data:`RANDOM_STATE`).

    Returns
    -------
    numpy.ndarray
        The kept training indices, sorted; ``train_index`` itself when there is no cap or the
        fold already fits under it.

    Raises
    ------
    ConfigError
        If ``max_clips`` is not a positive integer, or is smaller than the number of strata
        (one clip each would already exceed it).
    """
    tr = np.asarray(train_index)
    cap = check_max_train(max_clips)
    if cap is None or tr.size <= cap:
        return tr
    inv = meta.iloc[tr].groupby(["label", "sound_type"], sort=True, dropna=False).ngroup().to_numpy()
    sizes = np.bincount(inv)
    n_strata = sizes.size
    if n_strata > cap:
        raise ConfigError(f"max_train_clips {cap} is below the {n_strata} (label, sound type) groups of the "
                          "training clips: each must keep at least one")
    quota = cap * sizes / tr.size
    take = np.maximum(np.floor(quota).astype(np.int64), 1)
    short = cap - int(take.sum())
    if short > 0:  # hand out the rounding remainder to the most under-served strata (ties: stratum order)
        take[np.argsort(take - quota, kind="stable")[:short]] += 1
    while short < 0:  # the minimum of one overshot: trim the most over-served strata that can spare a clip
        over = np.where(take > 1, take - quota, -np.inf)
        take[int(np.argmax(over))] -= 1
        short += 1
    keys = np.random.default_rng(seed).random(len(meta))[tr]
    kept = []
    for k in range(n_strata):
        mine = np.flatnonzero(inv == k)
        if take[k] < mine.size:
            mine = mine[np.argpartition(keys[mine], take[k] - 1)[: take[k]]]
        kept.append(tr[mine])
    return np.sort(np.concatenate(kept))

