"""Forensic verification metrics: EER, Cllr, min-Cllr, DET and Tippett data, grouped-bootstrap intervals.

Convention: every likelihood ratio here is a **log10** likelihood ratio (``llr``),
``llr = log10 p(E | Hs) / p(E | Hd)``: ``Hs`` the same-source proposition (same microphone,
"target" trials), ``Hd`` the different-source one ("non-target" trials). ``llr > 0`` supports
``Hs``, ``llr < 0`` supports ``Hd``; 0 is no support either way. Scores (uncalibrated) only
need to be larger for ``Hs``.

The metrics follow the BOSARIS toolkit (Brümmer and de Villiers, 2011):

- ``eer``: the equal error rate of the ROC convex hull (ROCCH) of the scores, which is what
  the best monotone calibration of them achieves (so ties cannot be split in a lucky way).
- ``cllr``: the log-likelihood-ratio cost, ``0.5 * (mean_tar log2(1 + 1/LR) + mean_non log2(1 + LR))``,
  in bits. 0 for perfect, always-correct and infinitely confident LRs; 1 for a system that
  always says LR = 1; above 1 for a system that misleads.
- ``min_cllr``: the Cllr of the same scores after the optimal monotone calibration on the
  evaluation trials themselves (pool-adjacent-violators, PAV): the discrimination loss;
  ``cllr - min_cllr`` is the calibration loss. ``cllr >= min_cllr`` always.

Every metric takes optional trial ``weights`` (bootstrap multiplicities, :func:`bootstrap`).
"""

from __future__ import annotations

import numpy as np

LN10 = np.log(10.0)
LN2 = np.log(2.0)


def _as_trials(scores, is_target, weights=None):
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(is_target, dtype=bool).ravel()
    if s.shape != t.shape:
        raise ValueError(f"scores ({s.size}) and is_target ({t.size}) differ in length")
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != s.shape:
        raise ValueError(f"weights ({w.size}) and scores ({s.size}) differ in length")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    keep = w > 0
    return s[keep], t[keep], w[keep]


def _weighted_counts(t: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    n_tar, n_non = float(w[t].sum()), float(w[~t].sum())
    if n_tar <= 0 or n_non <= 0:
        raise ValueError("need both target and non-target trials")
    return n_tar, n_non


def pav(scores, is_target, weights=None):
    """The optimal monotone (isotonic) map of scores to target posteriors, by pool-adjacent-violators.

    Tied scores are pooled first (they must get one posterior), so the result cannot depend on
    the order of tied trials.

    Returns
    -------
    levels : numpy.ndarray
        Distinct scores, ascending.
    posterior : numpy.ndarray
        The (weighted) share of target trials each level gets after PAV, non-decreasing.
    tar, non : numpy.ndarray
        Weighted target and non-target counts at each level.
    """
    from sklearn.isotonic import isotonic_regression

    s, t, w = _as_trials(scores, is_target, weights)
    levels, inv = np.unique(s, return_inverse=True)
    tar = np.bincount(inv, weights=w * t, minlength=levels.size)
    non = np.bincount(inv, weights=w * ~t, minlength=levels.size)
    total = tar + non
    posterior = isotonic_regression(tar / total, sample_weight=total, increasing=True)
    return levels, np.clip(posterior, 0.0, 1.0), tar, non


def rocch(scores, is_target, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the ROC convex hull as ``(p_miss, p_fa)``, from ``(0, 1)`` to ``(1, 0)``.

    The hull's vertices are the thresholds between the blocks of :func:`pav`.
    """
    s, t, w = _as_trials(scores, is_target, weights)
    n_tar, n_non = _weighted_counts(t, w)
    _, post, tar, non = pav(s, t, w)
    # block boundaries: where the PAV posterior changes
    ends = np.flatnonzero(np.r_[np.diff(post) != 0, True])
    ctar, cnon = np.cumsum(tar)[ends], np.cumsum(non)[ends]
    p_miss = np.r_[0.0, ctar / n_tar]
    p_fa = np.r_[1.0, 1.0 - cnon / n_non]
    return p_miss, p_fa


def eer(scores, is_target, weights=None) -> float:
    """Equal error rate of the ROC convex hull (BOSARIS ``rocch2eer``), in [0, 0.5]."""
    pm, pf = rocch(scores, is_target, weights)
    for k in range(pm.size - 1):
        a0, b0, a1, b1 = pm[k], pf[k], pm[k + 1], pf[k + 1]
        if (a0 - b0) <= 0 <= (a1 - b1):  # p_miss - p_fa crosses zero on this segment
            d = (a1 - a0) - (b1 - b0)
            frac = 0.0 if d == 0 else (b0 - a0) / d
            return float(a0 + frac * (a1 - a0))
    return 0.5  # unreachable: the hull runs from (0, 1) to (1, 0)


def _log2_1p_exp10(x: np.ndarray) -> np.ndarray:
    """``log2(1 + 10**x)`` without overflow."""
    return np.logaddexp(0.0, x * LN10) / LN2


def cllr(llr, is_target, weights=None) -> float:
    """Log-likelihood-ratio cost (bits) of log10 LRs ``llr``; see the module notes."""
    s, t, w = _as_trials(llr, is_target, weights)
    n_tar, n_non = _weighted_counts(t, w)
    c_tar = float((w[t] * _log2_1p_exp10(-s[t])).sum() / n_tar)
    c_non = float((w[~t] * _log2_1p_exp10(s[~t])).sum() / n_non)
    return 0.5 * (c_tar + c_non)


def min_cllr(scores, is_target, weights=None) -> float:
    """Cllr after the optimal monotone calibration of ``scores`` on these very trials (PAV).

    The PAV posteriors are turned into LRs by dividing out the trials' prior odds, as BOSARIS's
    ``opt_loglr``. A level with only target (non-target) trials gets an infinite LR (its
    trials then cost nothing), never one of the other kind.
    """
    s, t, w = _as_trials(scores, is_target, weights)
    n_tar, n_non = _weighted_counts(t, w)
    levels, post, tar, non = pav(s, t, w)
    prior_odds = n_tar / n_non
    with np.errstate(divide="ignore", invalid="ignore"):
        # 1/LR at each level for the target term, LR for the non-target term (0 where infinite the other way)
        inv_lr = np.where(post > 0, (1.0 - post) / post * prior_odds, np.inf)
        lr = np.where(post < 1, post / (1.0 - post) / prior_odds, np.inf)
        c_tar = np.where(tar > 0, tar * np.log2(1.0 + inv_lr), 0.0).sum() / n_tar
        c_non = np.where(non > 0, non * np.log2(1.0 + lr), 0.0).sum() / n_non
    return float(0.5 * (c_tar + c_non))


def det_points(scores, is_target, weights=None, n_points: int = 200) -> dict:
    """Points of the DET (and ROC) curve: ``p_miss`` and ``p_fa`` at ``n_points`` thresholds.

    The thresholds are quantiles of all the scores (with the extremes), so the curve's detail
    goes where the trials are; both rates are non-increasing/non-decreasing along it.
    """
    s, t, w = _as_trials(scores, is_target, weights)
    n_tar, n_non = _weighted_counts(t, w)
    thr = np.unique(np.quantile(s, np.linspace(0.0, 1.0, n_points)))
    thr = np.r_[thr, np.inf]
    order = np.argsort(s, kind="stable")
    ss, tt, ww = s[order], t[order], w[order]
    below = np.searchsorted(ss, thr, side="left")  # trials with score < threshold: rejected
    ctar = np.r_[0.0, np.cumsum(ww * tt)]
    cnon = np.r_[0.0, np.cumsum(ww * ~tt)]
    return {"threshold": thr[:-1].tolist() + [float("inf")], "p_miss": (ctar[below] / n_tar).tolist(),
            "p_fa": (1.0 - cnon[below] / n_non).tolist()}


def tippett(llr, is_target, n_points: int = 200) -> dict:
    """Tippett data: for each proposition, the share of its trials with log10 LR at or above each value.

    Returns
    -------
    dict
        ``llr`` (the common grid of values), ``target`` and ``nontarget`` (shares at or above it),
        and the rates of misleading evidence: ``misleading_target`` (share of same-source
        trials with llr < 0) and ``misleading_nontarget`` (different-source trials with llr > 0).
    """
    s, t, _ = _as_trials(llr, is_target)
    grid = np.linspace(min(s.min(), -1.0), max(s.max(), 1.0), n_points)
    out = {"llr": grid.tolist()}
    for name, sel in (("target", t), ("nontarget", ~t)):
        v = np.sort(s[sel])
        out[name] = (1.0 - np.searchsorted(v, grid, side="left") / max(v.size, 1)).tolist()
    out["misleading_target"] = float(np.mean(s[t] < 0)) if t.any() else float("nan")
    out["misleading_nontarget"] = float(np.mean(s[~t] > 0)) if (~t).any() else float("nan")
    return out


def trial_weights(groups_a: np.ndarray, groups_b: np.ndarray | None, n_groups: int, rng) -> np.ndarray:
    """Bootstrap weights of trials between two recordings: the product of their multiplicities.

    Resampling recordings (not trials) keeps the dependence between trials that share a
    recording: a recording drawn twice counts every trial it takes part in twice.
    ``groups_b`` None: one-sided trials (a clip against a fixed reference), weighted by ``groups_a``'s.
    """
    m = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups).astype(np.float64)
    return m[groups_a] if groups_b is None else m[groups_a] * m[groups_b]


def bootstrap(metrics: dict, groups_a, groups_b, *, n_boot: int = 200, seed: int = 0,
              level: float = 0.95) -> dict:
    """Percentile intervals of trial metrics by resampling the recordings the trials compare.

    Parameters
    ----------
    metrics : dict
        ``{name: f(weights) -> float}``: each metric as a function of trial weights.
    groups_a, groups_b : array-like of hashable
        The recording of each trial's two sides (``groups_b`` None: one-sided trials).
    n_boot, seed, level
        Resamples, their seed and the interval's coverage.

    Returns
    -------
    dict
        ``{name_lo: float, name_hi: float}`` (NaN when fewer than two recordings or every
        resample lacked a kind of trial).
    """
    a = np.asarray(groups_a)
    b = np.asarray(groups_b) if groups_b is not None else a[:0]
    uniq, inv = np.unique(np.r_[a, b], return_inverse=True)
    ga, gb = inv[: a.size], (inv[a.size:] if groups_b is not None else None)
    rng = np.random.default_rng(seed)
    boots = {k: [] for k in metrics}
    for _ in range(n_boot if uniq.size > 1 else 0):
        w = trial_weights(ga, gb, uniq.size, rng)
        for k, f in metrics.items():
            try:
                boots[k].append(f(w))
            except ValueError:  # a resample without targets or non-targets: no value
                pass
    q = (1 - level) / 2
    out = {}
    for k, v in boots.items():
        v = np.asarray(v, dtype=np.float64)
        out[f"{k}_lo"] = float(np.quantile(v, q)) if v.size else float("nan")
        out[f"{k}_hi"] = float(np.quantile(v, 1 - q)) if v.size else float("nan")
    return out


def summary(scores, llr, is_target, groups_a=None, groups_b=None, *, n_boot: int = 200, seed: int = 0) -> dict:
    """``eer`` (of the scores), ``cllr`` (of the llr), ``min_cllr`` with grouped-bootstrap bounds and counts."""
    s = np.asarray(scores, dtype=np.float64)
    lr = np.asarray(llr, dtype=np.float64)
    t = np.asarray(is_target, dtype=bool)
    fns = {"eer": lambda w=None: eer(s, t, w), "cllr": lambda w=None: cllr(lr, t, w),
           "min_cllr": lambda w=None: min_cllr(s, t, w)}
    out = {k: f() for k, f in fns.items()}
    if groups_a is not None and n_boot:
        out.update(bootstrap(fns, groups_a, groups_b, n_boot=n_boot, seed=seed))
    out["n_target"], out["n_nontarget"] = int(t.sum()), int((~t).sum())
    return out
