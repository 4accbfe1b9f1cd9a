"""Metrics with numpy: confusion matrices, point metrics and block-bootstrap intervals."""

from __future__ import annotations

import re
import warnings

import numpy as np


# -- metrics ---------------------------------------------------------------------------------
def identical_groups(mics: dict[int, str], models: dict[int, str] | None = None) -> dict[str, list[int]]:
    """Identical-model groups ``{model: [labels]}``: microphones sharing a make and model.

    Declared groups come first: ``models`` (``mics.csv``'s ``model`` column, ``{label: model}``)
    groups the microphones that share a value, any number of groups of any size. Without it, the
    fallback is the name rule: names equal but for a ``#N`` suffix (``Neumann KM 184 #1``/``#2``).
    Only groups of two or more microphones of ``mics`` count.
    """
    groups: dict[str, list[int]] = {}
    for label, name in sorted(mics.items()):
        key = models.get(label) if models else re.sub(r"\s*#\s*\d+\s*$", "", name)
        if key:
            groups.setdefault(str(key), []).append(label)
    return {k: v for k, v in groups.items() if len(v) > 1}


def identical_pairs(mics: dict[int, str], models: dict[int, str] | None = None) -> list[int]:
    """Labels of every microphone in an identical-model group (:func:`identical_groups`), sorted."""
    return sorted(lab for labs in identical_groups(mics, models).values() for lab in labs)


def group_accuracies(confusion, labels, groups: dict[str, list[int]]) -> dict[str, float]:
    """Accuracy on each identical-model group's clips, from a confusion matrix (rows true, in ``labels`` order).

    Like ``pair_accuracy``, any wrong label counts as an error; NaN for a group without test clips.
    """
    cm = np.asarray(confusion, dtype=float)
    out = {}
    for name, members in groups.items():
        idx = [list(labels).index(m) for m in members if m in labels]
        n = cm[idx].sum()
        out[name] = float(cm[idx, idx].sum() / n) if n else float("nan")
    return out


def _codes(y, labels) -> np.ndarray:
    """Position of each value of ``y`` in ``labels`` (-1 where absent), vectorised."""
    labels, y = np.asarray(labels), np.asarray(y)
    if labels.size == 0:
        return np.full(y.shape, -1, np.int64)
    order = np.argsort(labels, kind="stable")
    pos = np.minimum(np.searchsorted(labels[order], y), labels.size - 1)
    return np.where(labels[order][pos] == y, order[pos], -1).astype(np.int64)


def _confusion_codes(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    ok = (t >= 0) & (p >= 0)
    return np.bincount(t[ok] * k + p[ok], minlength=k * k).reshape(k, k).astype(float)


def _confusion(y_true, y_pred, labels) -> np.ndarray:
    return _confusion_codes(_codes(y_true, labels), _codes(y_pred, labels), len(labels))


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 (zero_division=0, as scikit-learn) and support from a confusion matrix."""
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(predicted > 0, tp / predicted, 0.0)
        rec = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    return prec, rec, f1, support


def point_metrics(y_true, y_pred, labels, pair) -> dict:
    """Accuracy, macro/weighted F1 (as scikit-learn, zero_division=0) and identical-pair accuracy.

    Identical-pair accuracy scores the clips of the same-model units on their own: the share of
    them assigned to the right unit (any wrong label counts as an error).
    Computed from one confusion matrix with numpy.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct, in_pair = y_true == y_pred, np.isin(y_true, pair)
    return _metrics_from(_confusion(y_true, y_pred, labels), correct.sum(), correct.size,
                         (correct & in_pair).sum(), in_pair.sum())


def _metrics_from(cm: np.ndarray, n_correct, n, n_pair_correct, n_pair) -> dict:
    """:func:`point_metrics` from a confusion matrix and counts of (correct) clips and
    (correct) identical-pair clips."""
    _, _, f1, support = _per_class(cm)
    return {
        "accuracy": float(n_correct / n) if n else np.nan,
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() else np.nan,
        "pair_accuracy": float(n_pair_correct / n_pair) if n_pair else np.nan,
    }


def score(y_true, y_pred, labels, pair, groups, *, n_boot: int = 500, seed: int = 0, level: float = 0.95) -> dict:
    """Point metrics with block-bootstrap confidence intervals.

    Resampling whole time blocks (``groups``) rather than clips respects that neighbouring
    clips, and the five microphones' simultaneous clips, are not independent. Per-microphone
    precision, recall and F1 get intervals from the same resamples.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``weighted_f1``, ``pair_accuracy``, each with ``_lo``/``_hi``;
        ``per_mic`` ({label: precision, recall, f1 with bounds, support}); ``confusion`` (rows
        true, columns predicted, in ``labels`` order); ``n_test``.
    """
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    labels = list(labels)
    point = point_metrics(y_true, y_pred, labels, pair)
    cm = _confusion(y_true, y_pred, labels)
    prec, rec, f1, support = _per_class(cm)
    uniq, inv = np.unique(groups, return_inverse=True)
    k, n_groups = len(labels), uniq.size
    # A resample is a multiset of whole blocks, so its counts are weighted sums of per-block
    # counts: each resample costs O(blocks), not O(clips). Exactly the counts of the
    # concatenated resampled clips.
    t_code, p_code = _codes(y_true, labels), _codes(y_pred, labels)
    ok = (t_code >= 0) & (p_code >= 0)
    block_cm = np.bincount(inv[ok] * k * k + t_code[ok] * k + p_code[ok],
                           minlength=n_groups * k * k).reshape(n_groups, k * k).astype(float)
    correct, in_pair = y_true == y_pred, np.isin(y_true, pair)
    block_counts = np.stack([np.bincount(inv, weights=w, minlength=n_groups) for w in
                             (correct, np.ones(inv.size), correct & in_pair, in_pair)], axis=1)
    rng = np.random.default_rng(seed)
    boots = {k: [] for k in point}
    per_boot = {k: [] for k in ("precision", "recall", "f1")}
    for _ in range(n_boot if n_groups > 1 else 0):
        w = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups).astype(float)
        bcm = (w @ block_cm).reshape(k, k)
        for key, v in _metrics_from(bcm, *(w @ block_counts)).items():
            boots[key].append(v)
        bp, br, bf, bs = _per_class(bcm)
        # undefined (never predicted / absent) in a resample: no value there, not a zero
        per_boot["precision"].append(np.where(bcm.sum(axis=0) > 0, bp, np.nan))
        per_boot["recall"].append(np.where(bs > 0, br, np.nan))
        per_boot["f1"].append(np.where(bs > 0, bf, np.nan))
    a = (1 - level) / 2
    out = {}
    for k, v in point.items():
        b = np.asarray(boots[k], float)
        b = b[np.isfinite(b)]
        out[k] = float(v)
        out[f"{k}_lo"] = float(np.quantile(b, a)) if b.size else float("nan")
        out[f"{k}_hi"] = float(np.quantile(b, 1 - a)) if b.size else float("nan")
    bounds = {}
    for k in per_boot:
        arr = np.asarray(per_boot[k], float).reshape(-1, len(labels))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no interval
            bounds[k] = (np.nanquantile(arr, a, axis=0) if arr.size else np.full(len(labels), np.nan),
                         np.nanquantile(arr, 1 - a, axis=0) if arr.size else np.full(len(labels), np.nan))
    out["per_mic"] = {}
    for i, lab in enumerate(labels):
        row = {}
        for k, v in (("precision", prec), ("recall", rec), ("f1", f1)):
            row[k] = float(v[i])
            row[f"{k}_lo"], row[f"{k}_hi"] = float(bounds[k][0][i]), float(bounds[k][1][i])
        row["support"] = int(support[i])
        out["per_mic"][int(lab)] = row
    out["confusion"] = cm.astype(np.int64).tolist()
    out["n_test"] = int(y_true.size)
    return out

