"""Whole files: calibrated file-level probabilities from clip probabilities, and accuracy by file length.

A file of ``n`` clips gets, for each microphone ``c``, the score

    s_c = alpha * n**beta * mean_i log p_ic

and its probabilities are ``softmax(s)``. ``beta = 1`` is the sum of the clips' log-probabilities
(the product of their likelihoods, as if clips were independent evidence); ``beta = 0`` their mean
(as if every clip repeated the same evidence). Clips of one file share room, position and
content, so the truth lies between: :func:`fit_file_calibration` learns ``alpha`` (a temperature)
and ``beta`` by minimising the log-loss of held-out pseudo-files of several lengths (runs of
consecutive held-out clips of one recording), the way ``micfp train`` calibrates. Agreeing clips
then give a probability that grows with the file's length towards 1, and conflicting clips a
lower one.

:func:`file_accuracy` scores test clips as files of given durations (contiguous runs of
consecutive clips of one recording): the ``file_accuracy`` of the session protocol's results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: File durations (s) the session protocol's results score (those a recording is long enough for).
FILE_SECONDS = (2.0, 10.0, 30.0, 60.0, 300.0)
#: Pseudo-file lengths (clips) calibration learns from.
CALIBRATION_CLIPS = (1, 2, 4, 8, 16, 32, 64, 128)
#: The uncalibrated default: the mean log-probability (what ``mean-log`` aggregation does).
UNCALIBRATED = {"alpha": 1.0, "beta": 0.0}


def file_scores(logp: np.ndarray, n, params: dict) -> np.ndarray:
    """Calibrated file log-scores ``alpha * n**beta * mean log p`` (rows: files, columns: classes).

    ``logp`` holds each file's mean clip log-probability per class; ``n`` its clip counts.
    """
    n = np.asarray(n, float).reshape(-1, 1)
    return params["alpha"] * n ** params["beta"] * np.atleast_2d(logp)


def softmax(s: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def file_probabilities(proba: np.ndarray, params: dict | None) -> np.ndarray:
    """Calibrated probabilities of one file from its clips' probabilities (rows sum to 1)."""
    logp = np.log(np.clip(proba, 1e-12, 1.0)).mean(axis=0, keepdims=True)
    return softmax(file_scores(logp, [proba.shape[0]], params or UNCALIBRATED))[0]


def runs(meta: pd.DataFrame, n_clips: int) -> np.ndarray:
    """A file id per clip: runs of ``n_clips`` consecutive clips of one recording (by ``start_s``).

    A recording's last, incomplete run gets -1 (not a file of that length).
    """
    out = np.full(len(meta), -1, np.int64)
    order = np.lexsort((meta["start_s"].to_numpy(), pd.factorize(meta["recording"])[0]))
    rec = pd.factorize(meta["recording"])[0][order]
    # position of each clip within its recording, in time order
    starts = np.r_[0, np.flatnonzero(np.diff(rec)) + 1]
    pos = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    size = np.bincount(rec)[rec]
    full = pos < (size // n_clips) * n_clips
    block = rec.astype(np.int64) * (order.size + 1) + pos // n_clips
    ids = pd.factorize(block[full])[0]
    out[order[full]] = ids
    return out


def _pseudo_files(meta: pd.DataFrame, logp: np.ndarray, codes: np.ndarray, n_clips: int):
    """Mean log-probabilities, clip counts and true class codes of the files :func:`runs` makes."""
    fid = runs(meta, n_clips)
    keep = fid >= 0
    if not keep.any():
        return None
    f = fid[keep]
    n_files = f.max() + 1
    sums = np.zeros((n_files, logp.shape[1]))
    np.add.at(sums, f, logp[keep])
    counts = np.bincount(f, minlength=n_files)
    truth = np.zeros(n_files, np.int64)
    truth[f] = codes[keep]
    return sums / counts[:, None], counts, truth


def fit_file_calibration(meta: pd.DataFrame, logp: np.ndarray, codes: np.ndarray,
                         lengths=CALIBRATION_CLIPS) -> dict:
    """Learn ``alpha`` and ``beta`` (:func:`file_scores`) from held-out clips.

    Parameters
    ----------
    meta : DataFrame
        The held-out clips' ``recording`` and ``start_s``.
    logp : ndarray
        Their log-probabilities (clips x classes), from models that did not train on them.
    codes : ndarray
        Column of each clip's true class in ``logp``.
    lengths : sequence of int
        Pseudo-file lengths in clips; each length weighs the same in the log-loss.

    Returns
    -------
    dict
        ``alpha``, ``beta``, ``n_files`` (pseudo-files used), ``log_loss`` (mean over lengths) and
        ``log_loss_mean_log`` (the same for uncalibrated mean-log aggregation, for comparison).
    """
    from scipy.optimize import minimize

    sets = [p for n in lengths if (p := _pseudo_files(meta, logp, codes, n)) is not None]

    def loss(params):
        total = 0.0
        for m, n, t in sets:
            s = file_scores(m, n, params)
            s = s - s.max(axis=1, keepdims=True)
            total += float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(t.size), t]))
        return total / len(sets)

    # alpha > 0 and 0 <= beta <= 1, optimised on (log alpha, beta)
    res = minimize(lambda v: loss({"alpha": np.exp(v[0]), "beta": v[1]}), x0=[0.0, 0.5], method="L-BFGS-B",
                   bounds=[(-5.0, 5.0), (0.0, 1.0)])
    alpha, beta = float(np.exp(res.x[0])), float(res.x[1])
    return {"alpha": alpha, "beta": beta, "n_files": int(sum(len(t) for _, _, t in sets)),
            "lengths": [int(n) for n in lengths], "log_loss": loss({"alpha": alpha, "beta": beta}),
            "log_loss_mean_log": loss(UNCALIBRATED)}


def file_accuracy(meta: pd.DataFrame, y_true: np.ndarray, logp: np.ndarray, classes: np.ndarray,
                  clip_seconds: float, file_seconds=FILE_SECONDS) -> dict[float, dict]:
    """Accuracy of whole files of each duration: runs of consecutive test clips of one recording.

    A file's microphone is the class with the highest summed clip log-probability (``logp``;
    one-hot votes for a model without probabilities). Durations shorter than a clip or longer
    than every recording are left out.

    Returns
    -------
    dict
        ``{file seconds: {"accuracy", "n_files"}}``.
    """
    out = {}
    if clip_seconds <= 0:
        return out
    codes = np.searchsorted(classes, y_true)
    for fs in file_seconds:
        n = int(round(fs / clip_seconds))
        if n < 1 or abs(n * clip_seconds - fs) > 1e-6 * fs:
            continue
        p = _pseudo_files(meta, logp, codes, n)
        if p is None:
            continue
        m, _, t = p
        out[float(fs)] = {"accuracy": float(np.mean(m.argmax(axis=1) == t)), "n_files": int(t.size)}
    return out
