"""The ``enrolled-verification`` protocol: questioned clips against microphones enrolled from references.

This is the casework question when the examiner holds the suspect microphone: reference
recordings are made with it (and a background population of other microphones is on file),
and a questioned recording from another day is compared with it. The cell's classifier (the
default ``micfp_auto``, any classifier with probabilities) is fitted on the first session's
clips of every microphone (the enrolment); each clip of the other sessions is then a trial
against every enrolled microphone, a same-microphone trial when it is that microphone's.

The trial's score is the log posterior odds of the claimed microphone. Scores become log10
likelihood ratios by the logistic-regression calibration of :mod:`pipeline.identify.verification`,
fitted per claimed microphone on the trials of the other claimed microphones only
(:func:`~pipeline.identify.verification.cross_fold_llr`), so no trial's LR has seen its own
label. Results are those of the ``verification`` protocol (:func:`forensic_cell.trial_results`):
``eer``, ``cllr``, ``min_cllr`` with recording-bootstrap bounds, per identical-model group, and
Tippett and DET data.

Unlike ``verification`` (clip against clip, microphones the score model never saw), the claimed
microphone here was enrolled, so the numbers hold for casework with the suspect microphone in
hand, not for two recordings of unknown microphones.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from ..errors import ConfigError

#: Trials per cell at most: test clips are subsampled (seeded) beyond ``MAX_TRIALS / microphones``.
MAX_TRIALS = 200_000
#: Posterior probabilities are clipped to [EPS, 1 - EPS] before their log odds: a classifier's 0 or 1
#: would give infinite scores, and no calibration can use them.
EPS = 1e-9


def posterior_log_odds(proba: np.ndarray) -> np.ndarray:
    """Log odds ``log p - log(1 - p)`` of each probability, clipped to [:data:`EPS`, 1 - :data:`EPS`]."""
    p = np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def enrolled_trials(proba: np.ndarray, classes: np.ndarray, rows: np.ndarray, meta: pd.DataFrame) -> pd.DataFrame:
    """Trials of each test clip (``rows`` of ``meta``) against every enrolled microphone (``classes``).

    Returns the trial table of :func:`pipeline.identify.verification.cross_session_trials`
    (``a``: the clip's row, ``b``: the claimed microphone's position in ``classes``, ``target``,
    ``rec_a``, ``rec_b`` (``"enrolled:<label>"``: the reference side is the enrolment), ``mic_a``,
    ``mic_b``) with ``score`` (posterior log odds of the claimed microphone) and ``fold`` (the
    claimed microphone: the calibration folds).
    """
    classes = np.asarray(classes)
    k = classes.size
    b = np.tile(np.arange(k), len(rows))  # the claimed microphone of each trial, clip by clip
    true = np.repeat(meta["label"].to_numpy()[rows], k)
    claimed = classes[b]
    enrolment = np.array([f"enrolled:{c}" for c in classes])
    return pd.DataFrame({"a": np.repeat(rows, k), "b": b, "target": true == claimed,
                         "rec_a": np.repeat(meta["recording"].astype(str).to_numpy()[rows], k),
                         "rec_b": enrolment[b], "mic_a": true, "mic_b": claimed,
                         "score": posterior_log_odds(proba).ravel(), "fold": claimed})


def run_enrolled_cell(X, meta: pd.DataFrame, cell, mics: dict[int, str], *, n_boot: int = 500,
                      max_train: int | None = None, columns=None, mic_models: dict[int, str] | None = None,
                      seed: int = 0) -> dict:
    """Run an ``enrolled-verification`` cell on its feature rows ``X`` (loaded or not).

    Parameters mirror :func:`pipeline.evaluation.cell.run_cell`; ``seed`` draws the test clips
    kept when the trials would exceed :data:`MAX_TRIALS`.
    """
    from ..artifacts.rows import FeatureRows
    from ..identify.verification import cross_fold_llr
    from .auto import choice, fit_classifier
    from .forensic_cell import split_sessions, trial_results
    from .protocols import cap_training, time_groups

    X = FeatureRows.of(X)
    train, test, train_session = split_sessions(meta)
    y = meta["label"].to_numpy()
    train = cap_training(train, meta, max_train)
    if np.unique(y[train]).size < 2:
        raise ConfigError(f"{cell.protocol} needs clips of at least two microphones in session {train_session}")
    model = fit_classifier(cell.classifier, X.take(train), y[train], time_groups(meta)[train], len(mics),
                           column_sets=columns, sessions=meta["session"].to_numpy()[train])
    if not hasattr(model, "predict_proba"):
        raise ConfigError(f"{cell.protocol} scores trials by posterior probabilities; classifier "
                          f"{cell.classifier!r} has none")
    classes = np.asarray(model.classes_)
    test = test[np.isin(y[test], classes)]  # a microphone never enrolled has no same-microphone trial
    if test.size == 0:
        raise ConfigError(f"{cell.protocol}: no test clips of an enrolled microphone outside session {train_session}")
    if test.size * classes.size > MAX_TRIALS:
        rng = np.random.default_rng(seed)
        test = np.sort(rng.choice(test, MAX_TRIALS // classes.size, replace=False))
    # the test rows are bounded by MAX_TRIALS / microphones: read at once
    proba = model.predict_proba(X.take(test))
    trials = enrolled_trials(proba, classes, test, meta)
    trials["llr"] = cross_fold_llr(trials)
    out = {"train_session": train_session, "n_folds": int(classes.size), "n_train": int(train.size),
           "max_train_clips": max_train, **trial_results(trials, mics, mic_models, n_boot)}
    if c := choice(model):
        out["chosen"] = [dict(fold=f"train {train_session}", **c)]
    out["cell"] = asdict(cell)
    return out
