"""Same-microphone verification: a microphone embedding, its comparison score and the score's calibration.

The score model (:class:`MicEmbedding`) is learned from many known microphones, so that the
microphone of the two recordings compared need not be one of them: a linear projection of
the clip features in which the spread between microphones is large relative to the spread
within one (content, level, day), i.e. linear discriminant analysis with a shrunk
within-microphone covariance. ``n_components`` may keep more directions than LDA's ``k - 1``
(up to all: the within-microphone whitening of WCCN), which can show ways a new microphone
differs from all training ones; on the simulator ``k - 1`` did best.

The comparison score of two sets of clips (two files, or one clip each) is the mean cosine
similarity over all pairs of their clips' embeddings (centred on the training clips, length
normalised), :func:`compare`: in [-1, 1], on the scale of one clip pair whatever the
number of clips, so a calibration learned on clip-pair trials does not overstate the evidence
of longer recordings (it understates it).

:class:`LLRCalibration` maps a score to a log10 likelihood ratio (logistic regression on
held-out trials, target and non-target trials weighted equally so the result does not carry
the trials' prior; see :mod:`pipeline.evaluation.forensic` for the convention).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from ..errors import ConfigError

LN10 = np.log(10.0)


class MicEmbedding(TransformerMixin, BaseEstimator):
    """Microphone embedding: standardise, then a shrunk-LDA projection, centred.

    Parameters
    ----------
    n_components : int or None
        Discriminant directions kept; ``None``: one fewer than the training microphones (classic
        LDA, measured best on the simulator: cross-day EER 0.32 against 0.33 keeping all).
    shrinkage : float
        Weight in [0, 1) of the identity (scaled to the mean variance) mixed into the
        within-microphone covariance: keeps directions the training microphones never vary
        in from being blown up.
    """

    def __init__(self, n_components: int | None = None, shrinkage: float = 0.1):
        self.n_components = n_components
        self.shrinkage = shrinkage

    def fit(self, X, y):
        from scipy.linalg import eigh

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        classes = np.unique(y)
        if classes.size < 2:
            raise ConfigError(f"the microphone embedding needs clips of at least two microphones, got {classes.size}")
        if not 0.0 <= self.shrinkage < 1.0:
            raise ConfigError(f"shrinkage must be in [0, 1), got {self.shrinkage}")
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 1e-9, X.std(axis=0), 1.0)
        Z = (X - self.mean_) / self.scale_
        idx = np.searchsorted(classes, y)
        means = np.stack([Z[idx == k].mean(axis=0) for k in range(classes.size)])
        within = Z - means[idx]
        sw = within.T @ within / max(len(Z) - classes.size, 1)
        sw = (1 - self.shrinkage) * sw + self.shrinkage * np.trace(sw) / sw.shape[0] * np.eye(sw.shape[0])
        counts = np.bincount(idx).astype(np.float64)
        sb = (means * counts[:, None]).T @ means / counts.sum()
        vals, vecs = eigh(sb, sw)  # vecs.T @ sw @ vecs = I
        order = np.argsort(vals)[::-1]
        n = classes.size - 1 if self.n_components is None else int(self.n_components)
        keep = order[: max(1, min(n, order.size))]
        self.components_ = vecs[:, keep]
        self.center_ = (Z @ self.components_).mean(axis=0)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        Z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return Z @ self.components_ - self.center_


class LLRCalibration(BaseEstimator):
    """Affine map of comparison scores to log10 likelihood ratios, fitted by logistic regression.

    Target and non-target trials get equal total weight, so the fitted log-odds are a
    log likelihood ratio (prior odds 1). Stored as two numbers, ``slope_`` and ``offset_``
    (natural-log units): ``llr = (slope_ * score + offset_) / ln 10``.
    """

    def __init__(self, C: float = 1e4):
        self.C = C

    def fit(self, scores, is_target):
        from sklearn.linear_model import LogisticRegression

        s = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
        t = np.asarray(is_target, dtype=bool)
        if t.all() or not t.any():
            raise ConfigError("calibration needs both same-microphone and different-microphone trials")
        lr = LogisticRegression(C=self.C, class_weight="balanced").fit(s, t)
        self.slope_ = float(lr.coef_[0, 0])
        self.offset_ = float(lr.intercept_[0])
        return self

    def llr(self, scores) -> np.ndarray:
        """log10 likelihood ratios of ``scores``."""
        return (self.slope_ * np.asarray(scores, dtype=np.float64) + self.offset_) / LN10


def unit_rows(E: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    n = np.linalg.norm(E, axis=1, keepdims=True)
    return E / np.where(n > 0, n, 1.0)


def compare(Ea: np.ndarray, Eb: np.ndarray) -> float:
    """Comparison score of two sets of clip embeddings: the mean cosine over all their clip pairs."""
    return float(unit_rows(np.atleast_2d(Ea)).mean(axis=0) @ unit_rows(np.atleast_2d(Eb)).mean(axis=0))


# -- trials ----------------------------------------------------------------------------------
def cross_session_trials(meta: pd.DataFrame, probe: np.ndarray, reference: np.ndarray, *,
                         max_trials: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Every clip pair (probe, reference) from different sessions, as a table of trials.

    Columns ``a``, ``b`` (row positions in ``meta``), ``target`` (same microphone),
    ``rec_a``, ``rec_b`` (their recordings, for the grouped bootstrap), ``mic_a``, ``mic_b``.
    With ``max_trials``, a seeded subsample that keeps the target share.
    """
    probe, reference = np.asarray(probe), np.asarray(reference)
    sess = pd.factorize(meta["session"])[0]
    a = np.repeat(probe, reference.size)
    b = np.tile(reference, probe.size)
    keep = sess[a] != sess[b]
    a, b = a[keep], b[keep]
    label = meta["label"].to_numpy()
    target = label[a] == label[b]
    if max_trials is not None and a.size > max_trials:
        rng = np.random.default_rng(seed)
        pick = []
        for sel in (np.flatnonzero(target), np.flatnonzero(~target)):
            n = int(round(max_trials * sel.size / a.size))
            pick.append(rng.choice(sel, size=max(min(n, sel.size), 1), replace=False) if sel.size else sel)
        k = np.sort(np.concatenate(pick))
        a, b, target = a[k], b[k], target[k]
    rec = meta["recording"].astype(str).to_numpy()
    return pd.DataFrame({"a": a, "b": b, "target": target, "rec_a": rec[a], "rec_b": rec[b],
                         "mic_a": label[a], "mic_b": label[b]})


def trial_scores(E: np.ndarray, trials: pd.DataFrame) -> np.ndarray:
    """Clip-pair scores (cosine of the two clips' embeddings) of ``trials`` over embedded rows ``E``."""
    U = unit_rows(E)
    return np.einsum("ij,ij->i", U[trials["a"].to_numpy()], U[trials["b"].to_numpy()])


def leave_one_mic_out_scores(X: np.ndarray, meta: pd.DataFrame, train: np.ndarray, trial_rows: np.ndarray, *,
                             embedding: dict | None = None, max_trials: int | None = 20_000,
                             seed: int = 0) -> pd.DataFrame:
    """Trials scored by embeddings that never saw the probe microphone.

    For each microphone ``k`` in turn: fit :class:`MicEmbedding` on the ``train`` rows of the
    other microphones, then score every cross-session trial between a ``trial_rows`` clip of
    ``k`` (probe) and any ``trial_rows`` clip (reference). Returns the trials of all folds
    (:func:`cross_session_trials` columns, plus ``score`` and ``fold``, the left-out label).
    """
    label = meta["label"].to_numpy()
    out = []
    for k in np.unique(label[trial_rows]):
        fit_rows = train[label[train] != k]
        if np.unique(label[fit_rows]).size < 2:
            raise ConfigError(f"leaving microphone {k} out leaves fewer than two microphones to learn from")
        emb = MicEmbedding(**(embedding or {})).fit(X[fit_rows], label[fit_rows])
        probe = trial_rows[label[trial_rows] == k]
        trials = cross_session_trials(meta, probe, trial_rows, max_trials=max_trials, seed=seed + int(k))
        if trials.empty:
            continue
        rows = np.unique(np.r_[trials["a"].to_numpy(), trials["b"].to_numpy()])
        E = np.zeros((len(meta), emb.components_.shape[1]))
        E[rows] = emb.transform(X[rows])
        trials["score"] = trial_scores(E, trials)
        trials["fold"] = int(k)
        out.append(trials)
    if not out:
        raise ConfigError("no cross-session trials: verification needs clips of each microphone in two sessions")
    return pd.concat(out, ignore_index=True)


def cross_fold_llr(trials: pd.DataFrame) -> np.ndarray:
    """log10 LRs of each fold's trials from a calibration fitted on the other folds' trials only."""
    llr = np.empty(len(trials))
    fold = trials["fold"].to_numpy()
    for k in np.unique(fold):
        mine = fold == k
        cal = LLRCalibration().fit(trials["score"].to_numpy()[~mine], trials["target"].to_numpy()[~mine])
        llr[mine] = cal.llr(trials["score"].to_numpy()[mine])
    return llr
