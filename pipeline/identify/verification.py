"""Same-microphone verification: a microphone embedding, its comparison score and the score's calibration.

The score model (:class:`MicEmbedding`) is learned from many known microphones, so that the
microphone of the two recordings compared need not be one of them: a linear projection of
the clip features in which the spread between microphones is large relative to the spread
within one (content, level, day), i.e. linear discriminant analysis with a shrunk
within-microphone covariance. ``n_components`` may keep more directions than LDA's ``k - 1``
(up to all: the within-microphone whitening of WCCN), which can show ways a new microphone
differs from all training ones; on the simulator ``k - 1`` did best.

The comparison score of two recordings is the cosine similarity of their segments' embeddings
(a segment: consecutive clips, its embedding the mean of their length-normalised embeddings,
centred on the training clips), averaged over all pairs of segments, :func:`compare`. Longer
segments average out more of what the content adds, so evidence grows with duration; the
calibration is fitted per segment length (:data:`SEGMENT_CLIPS`), and a file longer than the
longest is compared as several segments whose scores are averaged, which keeps the score on
the scale of the calibrated trials (understating, never overstating, the evidence of longer
recordings).

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


def segment_means(E: np.ndarray, clips: int) -> np.ndarray:
    """Embeddings of consecutive segments of ``clips`` clips (the mean of their unit clip embeddings).

    A trailing part shorter than a segment is left out; fewer clips than one segment give none.
    """
    U = unit_rows(np.atleast_2d(E))
    n = U.shape[0] // clips
    return U[: n * clips].reshape(n, clips, -1).mean(axis=1)


def compare(Ea: np.ndarray, Eb: np.ndarray, clips: int = 1) -> float:
    """Comparison score of two files' clip embeddings: the mean cosine over all pairs of their segments.

    Each file is cut into consecutive segments of ``clips`` clips (:func:`segment_means`), so the
    score is on the scale of segment-pair trials of that length, whatever the files' durations.
    """
    A, B = unit_rows(segment_means(Ea, clips)), unit_rows(segment_means(Eb, clips))
    if not len(A) or not len(B):
        raise ValueError(f"a file has fewer than {clips} clips")
    return float(A.mean(axis=0) @ B.mean(axis=0))


# -- trials ----------------------------------------------------------------------------------
def cross_session_trials(meta: pd.DataFrame, probe: np.ndarray, reference: np.ndarray, *,
                         max_trials: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Every clip pair (probe, reference) from different sessions, as a table of trials.

    Columns ``a``, ``b`` (row positions in ``meta``), ``target`` (same microphone),
    ``rec_a``, ``rec_b`` (their recordings, for the grouped bootstrap), ``mic_a``, ``mic_b``.
    With ``max_trials``, a seeded subsample that keeps the target share (both sides are thinned
    first when their product would exceed four times ``max_trials``, so memory stays bounded).
    """
    probe, reference = np.asarray(probe), np.asarray(reference)
    rng = np.random.default_rng(seed)
    if max_trials is not None and probe.size * reference.size > 4 * max_trials:
        # Thin both sides first (uniformly, so the target share stays): the full product of a large
        # corpus's clips (10,000 x 200,000) would not fit in memory before the subsample below.
        scale = np.sqrt(4 * max_trials / (probe.size * reference.size))
        n_p = int(min(probe.size, max(1, np.ceil(probe.size * scale))))
        n_r = int(min(reference.size, max(1, np.ceil(4 * max_trials / n_p))))
        probe = np.sort(rng.choice(probe, n_p, replace=False))
        reference = np.sort(rng.choice(reference, n_r, replace=False))
    sess = pd.factorize(meta["session"])[0]
    a = np.repeat(probe, reference.size)
    b = np.tile(reference, probe.size)
    keep = sess[a] != sess[b]
    a, b = a[keep], b[keep]
    label = meta["label"].to_numpy()
    target = label[a] == label[b]
    if max_trials is not None and a.size > max_trials:
        pick = []
        for sel in (np.flatnonzero(target), np.flatnonzero(~target)):
            n = int(round(max_trials * sel.size / a.size))
            pick.append(rng.choice(sel, size=max(min(n, sel.size), 1), replace=False) if sel.size else sel)
        k = np.sort(np.concatenate(pick))
        a, b, target = a[k], b[k], target[k]
    rec = meta["recording"].astype(str).to_numpy()
    return pd.DataFrame({"a": a, "b": b, "target": target, "rec_a": rec[a], "rec_b": rec[b],
                         "mic_a": label[a], "mic_b": label[b]})


def segments(meta: pd.DataFrame, rows: np.ndarray, clips: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Consecutive segments of ``clips`` clips within each recording, from ``rows`` of ``meta``.

    Returns the segment of each row of ``meta`` (-1: not in one) and a table of segments with the
    columns :func:`cross_session_trials` needs (``label``, ``session``, ``recording``), in
    the order of the segment numbers.
    """
    rows = np.asarray(rows)
    sub = meta.iloc[rows].assign(_row=rows).sort_values(["recording", "start_s"], kind="stable")
    pos = sub.groupby("recording", sort=False).cumcount().to_numpy() // clips
    size = sub.assign(_pos=pos).groupby(["recording", "_pos"], sort=False)["_row"].transform("size").to_numpy()
    keep = size == clips
    key = pd.factorize(pd.MultiIndex.from_arrays([sub["recording"].to_numpy()[keep], pos[keep]]))[0]
    seg = np.full(len(meta), -1, np.int64)
    seg[sub["_row"].to_numpy()[keep]] = key
    first = sub[keep].groupby(key, sort=True).head(1)
    table = first[["label", "session", "recording"]].reset_index(drop=True)
    return seg, table


def leave_one_mic_out_scores(X: np.ndarray, meta: pd.DataFrame, train: np.ndarray, trial_rows: np.ndarray, *,
                             embedding: dict | None = None, max_trials: int | None = 20_000, seed: int = 0,
                             segment_clips=1) -> pd.DataFrame | dict:
    """Trials scored by embeddings that never saw the probe microphone.

    For each microphone ``k`` in turn: fit :class:`MicEmbedding` on the ``train`` rows of the
    other microphones, then score every cross-session trial between a segment of ``k`` (probe)
    and any segment (reference), segments of ``segment_clips`` consecutive ``trial_rows`` clips
    (:func:`segments`). Returns the trials of all folds (:func:`cross_session_trials` columns,
    ``a`` and ``b`` numbering segments, plus ``score`` and ``fold``, the left-out label); a dict
    ``{clips: trials}`` when ``segment_clips`` is a tuple of lengths.
    """
    lengths = (segment_clips,) if np.isscalar(segment_clips) else tuple(segment_clips)
    label = meta["label"].to_numpy()
    segs = {n: segments(meta, trial_rows, n) for n in lengths}
    out = {n: [] for n in lengths}
    for k in np.unique(label[trial_rows]):
        fit_rows = train[label[train] != k]
        if np.unique(label[fit_rows]).size < 2:
            raise ConfigError(f"leaving microphone {k} out leaves fewer than two microphones to learn from")
        emb = MicEmbedding(**(embedding or {})).fit(X[fit_rows], label[fit_rows])
        U = unit_rows(emb.transform(X[trial_rows]))
        for n, (seg, table) in segs.items():
            probe = np.flatnonzero(table["label"].to_numpy() == k)
            trials = cross_session_trials(table, probe, np.arange(len(table)), max_trials=max_trials,
                                          seed=seed + int(k))
            if trials.empty:
                continue
            inside = seg[trial_rows] >= 0
            E = np.zeros((len(table), U.shape[1]))
            np.add.at(E, seg[trial_rows][inside], U[inside])
            E = unit_rows(E)  # the mean of its clips' unit embeddings, to unit length
            trials["score"] = np.einsum("ij,ij->i", E[trials["a"].to_numpy()], E[trials["b"].to_numpy()])
            trials["fold"] = int(k)
            out[n].append(trials)
    if not out[lengths[0]]:
        raise ConfigError("no cross-session trials: verification needs clips of each microphone in two sessions")
    res = {n: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for n, v in out.items()}
    return res[lengths[0]] if np.isscalar(segment_clips) else res


def cross_fold_llr(trials: pd.DataFrame) -> np.ndarray:
    """log10 LRs of each fold's trials from a calibration fitted on the other folds' trials only."""
    llr = np.empty(len(trials))
    fold = trials["fold"].to_numpy()
    for k in np.unique(fold):
        mine = fold == k
        cal = LLRCalibration().fit(trials["score"].to_numpy()[~mine], trials["target"].to_numpy()[~mine])
        llr[mine] = cal.llr(trials["score"].to_numpy()[mine])
    return llr


# -- the verifier of a model file ------------------------------------------------------------
#: Segment lengths, in clips, the verifier is calibrated for (2, 6, 14 and 30 s with 2 s clips):
#: ``micfp verify`` compares two files as segments of the longest of them both files hold.
SEGMENT_CLIPS = (1, 3, 7, 15)
#: The feature set the verifier embeds (``micfp train`` fits it on these columns whatever the
#: classifier uses; a model file names them in ``meta["verification"]["features"]``).
VERIFIER_SET = "channel"


def fit_verifier(X: np.ndarray, meta: pd.DataFrame, *, embedding: dict | None = None, seed: int = 0,
                 segment_clips=SEGMENT_CLIPS):
    """Fit the score model on all of ``X`` and a calibration per segment length on held-out trials.

    Returns ``(embedding, calibrations, info)``: ``calibrations`` one :class:`LLRCalibration` per
    length of ``info["segment_clips"]``. Each is fitted on trials scored leave-one-microphone-out
    (:func:`leave_one_mic_out_scores`), so it has seen only scores of microphones the embedding
    never saw, as ``micfp verify`` meets them. Trials are between sessions, or between 30 s
    blocks when the clips hold one session. ``info["lengths"]`` holds, per length, the trial
    counts and the cross-validated ``eer``, ``cllr`` and ``min_cllr`` (each fold calibrated on
    the others, :func:`cross_fold_llr`); a length without both kinds of trials is left out.
    """
    from ..evaluation import forensic as fm
    from ..evaluation.protocols import time_groups

    meta = meta.reset_index(drop=True)
    how = "leave-one-microphone-out, trials between sessions"
    trial_meta = meta
    if meta["session"].nunique() < 2:
        trial_meta = meta.assign(session=time_groups(meta).astype(str))
        how = "leave-one-microphone-out, trials between 30 s blocks (one session)"
    rows = np.arange(len(meta))
    X = np.asarray(X, dtype=np.float64)
    by_length = leave_one_mic_out_scores(X, trial_meta, rows, rows, embedding=embedding, seed=seed,
                                         segment_clips=tuple(segment_clips))
    cals, lengths = [], []
    info = {"method": how, "segment_clips": [], "lengths": {}}
    for n, trials in by_length.items():
        if trials.empty or trials["target"].nunique() < 2 or trials["fold"].nunique() < 2:
            continue
        trials["llr"] = cross_fold_llr(trials)
        s, t = trials["score"].to_numpy(), trials["target"].to_numpy()
        cal = LLRCalibration().fit(s, t)
        cals.append(cal)
        lengths.append(int(n))
        info["lengths"][str(n)] = {"n_target": int(t.sum()), "n_nontarget": int((~t).sum()), "eer": fm.eer(s, t),
                                   "cllr": fm.cllr(trials["llr"].to_numpy(), t), "min_cllr": fm.min_cllr(s, t),
                                   "slope": cal.slope_, "offset": cal.offset_}
    if not cals:
        raise ConfigError("the verifier's calibration needs same- and different-microphone trials of at least "
                          "two microphones")
    info["segment_clips"] = lengths
    info.update({k: info["lengths"][str(lengths[0])][k] for k in ("eer", "cllr", "min_cllr", "n_target",
                                                                    "n_nontarget")})
    emb = MicEmbedding(**(embedding or {})).fit(X, meta["label"].to_numpy())
    info["dimensions"] = int(emb.components_.shape[1])
    return emb, cals, info


def segment_length(n_a: int, n_b: int, lengths) -> int:
    """The longest calibrated segment length (clips) both files hold; the shortest if neither holds one."""
    fit = [n for n in lengths if n <= min(n_a, n_b)]
    return max(fit) if fit else min(lengths)


def check_verifier(verification: dict, n_features: int, path) -> None:
    """The verifier of a loaded model file must be micfp's: its two estimators, fitted, of the model's width."""
    from ..errors import InputError

    emb, cals = verification.get("embedding"), verification.get("calibration")
    lengths = verification.get("segment_clips")
    if not isinstance(emb, MicEmbedding) or not isinstance(cals, list) or not cals \
            or not all(isinstance(c, LLRCalibration) for c in cals) or not isinstance(lengths, list) \
            or len(lengths) != len(cals) or not all(isinstance(n, int) and n >= 1 for n in lengths):
        raise InputError(f"{path}: the model's verifier is not micfp's; retrain with `micfp train`")
    comp = np.asarray(getattr(emb, "components_", np.zeros((0, 0))))
    if comp.ndim != 2 or comp.shape[0] != n_features or not np.all(np.isfinite(comp)) \
            or not np.isfinite([[getattr(c, "slope_", np.nan), getattr(c, "offset_", np.nan)] for c in cals]).all():
        raise InputError(f"{path}: the model's verifier does not fit its {n_features} features; retrain with "
                         "`micfp train`")
