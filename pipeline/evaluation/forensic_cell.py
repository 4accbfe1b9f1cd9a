"""The forensic evaluation cells: ``verification`` and ``open-set`` protocols.

Both run through the cell task like every other protocol (:func:`pipeline.evaluation.cell.run_cell`
hands them here) with the score model ``micfp_verify`` (:mod:`pipeline.identify.verification`).
The first session of the cell's clips trains (as under the ``session`` protocol); every fold
leaves one microphone out of training, so each trial or test clip involves a microphone the
score model never saw.

- ``verification``: same/different-microphone trials between clips of different sessions
  (between the test sessions when there are three or more, else between the training and the
  test session), the probe clip always of the left-out microphone. Scores become log10 LRs by a
  logistic-regression calibration fitted on the other folds' trials only. Results: ``eer``,
  ``cllr``, ``min_cllr`` (recording-grouped bootstrap bounds), the same over the trials within
  identical-model groups (``*_identical``; each group in ``groups``), Tippett and DET data.
- ``open-set``: the known microphones are enrolled from their training-session clips; every
  test-session clip is scored by its distance to the nearest of them
  (:class:`pipeline.identify.unknown.UnknownMicDetector`); the left-out microphone's clips must
  come out below the known ones'. Results: ``eer`` of this unknown detector and
  its detection rate at fixed false-alarm rates (``unknown_detection``), with the curve, and each
  microphone's EER when it is the unknown one (``unknown_folds``).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from ..errors import ConfigError
from . import forensic as fm

#: False-alarm rates (known-microphone clips called unknown) at which the open-set results
#: report the detection rate of unknown-microphone clips.
FALSE_ALARM_RATES = (0.01, 0.05, 0.1, 0.2)
#: Trials per verification fold at most (a seeded subsample keeping the target share).
MAX_TRIALS_PER_FOLD = 20_000


def model_groups(mics: dict[int, str], models: dict[int, str] | None = None) -> dict[int, str]:
    """Identical-model group of each microphone in one (:func:`metrics.identical_groups`: the declared
    ``models``, else names equal but for ``#N``)."""
    from .metrics import identical_groups

    return {lab: g for g, labs in identical_groups(mics, models).items() for lab in labs}


def split_sessions(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str]:
    sessions = list(pd.unique(meta["session"]))
    if len(sessions) < 2:
        raise ConfigError(f"the forensic protocols need clips of at least two sessions, the cell has {sessions}")
    is_train = (meta["session"] == sessions[0]).to_numpy()
    return np.flatnonzero(is_train), np.flatnonzero(~is_train), str(sessions[0])


def run_forensic_cell(X, meta: pd.DataFrame, cell, mics: dict[int, str], *, n_boot: int = 500,
                      mic_models: dict[int, str] | None = None) -> dict:
    """Run a ``verification`` or ``open-set`` cell on its (loaded) feature rows ``X``."""
    from ..artifacts.rows import FeatureRows

    X = np.asarray(FeatureRows.of(X).take(np.arange(len(meta))), dtype=np.float64)
    if cell.protocol == "verification":
        out = verification_result(X, meta, mics, n_boot=n_boot, mic_models=mic_models)
    elif cell.protocol == "open-set":
        out = open_set_result(X, meta, n_boot=n_boot)
    else:
        raise ConfigError(f"protocol {cell.protocol!r} is not a forensic protocol")
    out["cell"] = asdict(cell)
    return out


def verification_result(X: np.ndarray, meta: pd.DataFrame, mics: dict[int, str], *, n_boot: int = 500,
                        mic_models: dict[int, str] | None = None) -> dict:
    """Cross-session verification trials scored leave-one-microphone-out, calibrated across folds."""
    from ..identify.verification import cross_fold_llr, leave_one_mic_out_scores

    train, test, train_session = split_sessions(meta)
    trial_rows = test if meta["session"].iloc[test].nunique() > 1 else np.arange(len(meta))
    trials = leave_one_mic_out_scores(X, meta, train, trial_rows, max_trials=MAX_TRIALS_PER_FOLD)
    if trials["fold"].nunique() < 2:
        raise ConfigError("verification needs at least two microphones with clips in two sessions")
    trials["llr"] = cross_fold_llr(trials)
    return {"train_session": train_session, "n_folds": int(trials["fold"].nunique()),
            **trial_results(trials, mics, mic_models, n_boot)}


def trial_results(trials: pd.DataFrame, mics: dict[int, str], mic_models: dict[int, str] | None,
                  n_boot: int) -> dict:
    """Metrics of scored, calibrated trials (``score``, ``llr``, ``target``, ``rec_a``, ``rec_b``, ``mic_a``,
    ``mic_b``): EER, Cllr and min-Cllr with bounds, Tippett and DET data, and the same metrics over the
    trials within each identical-model group (``groups``) and pooled over them (``*_identical``)."""
    out = {**_trial_metrics(trials, n_boot), "tippett": fm.tippett(trials["llr"], trials["target"]),
           "det": fm.det_points(trials["score"], trials["target"])}
    groups = model_groups(mics, mic_models)
    ga, gb = trials["mic_a"].map(groups), trials["mic_b"].map(groups)
    within = (ga.notna() & (ga == gb)).to_numpy()
    out["groups"] = {}
    for name in sorted(set(groups.values())):
        sel = within & (ga == name).to_numpy()
        if sel.any() and trials["target"][sel].nunique() == 2:
            out["groups"][name] = _trial_metrics(trials[sel], n_boot)
    if len(out["groups"]) == 1:  # one identical-model group (the simulator's pair): pooled is that group
        pooled = next(iter(out["groups"].values()))
    else:
        pooled = _trial_metrics(trials[within], n_boot) if within.any() and trials["target"][within].nunique() == 2 \
            else {}
    for k in ("eer", "cllr", "min_cllr"):
        for s in ("", "_lo", "_hi"):
            out[f"{k}_identical{s}"] = pooled.get(k + s, float("nan"))
    out["n_test"] = int(len(trials))
    return out


def _trial_metrics(trials: pd.DataFrame, n_boot: int) -> dict:
    return fm.summary(trials["score"].to_numpy(), trials["llr"].to_numpy(), trials["target"].to_numpy(),
                      trials["rec_a"].to_numpy(), trials["rec_b"].to_numpy(), n_boot=n_boot)


def left_out_detectors(X: np.ndarray, label: np.ndarray, train: np.ndarray, test: np.ndarray,
                       embedding: dict | None = None):
    """Each test microphone ``k`` in turn with the detector fitted on the other microphones' training clips.

    Yields ``(k, detector)``, the detector a fitted
    :class:`pipeline.identify.unknown.UnknownMicDetector`.
    """
    from ..identify.unknown import UnknownMicDetector

    for k in np.unique(label[test]):
        fit_rows = train[label[train] != k]
        if np.unique(label[fit_rows]).size < 2:
            raise ConfigError(f"leaving microphone {k} out leaves fewer than two known microphones")
        yield int(k), UnknownMicDetector(embedding=embedding).fit(X[fit_rows], label[fit_rows])


def open_set_scores(X: np.ndarray, meta: pd.DataFrame, train: np.ndarray, test: np.ndarray,
                    embedding: dict | None = None) -> pd.DataFrame:
    """Each test clip's score against the enrolled known microphones, each microphone left out in turn.

    The score is :meth:`pipeline.identify.unknown.UnknownMicDetector.score_samples`: minus the
    Mahalanobis distance to the nearest known microphone in the embedding fitted on them.

    Returns one row per (fold, test clip): ``fold`` (the unknown microphone), ``row``, ``known``
    (the clip's microphone was enrolled), ``score``, ``recording``.
    """
    label = meta["label"].to_numpy()
    rec = meta["recording"].astype(str).to_numpy()
    return pd.concat([pd.DataFrame({"fold": k, "row": test, "known": label[test] != k,
                                    "score": detector.score_samples(X[test]), "recording": rec[test]})
                      for k, detector in left_out_detectors(X, label, train, test, embedding)], ignore_index=True)


def detection_at(det: dict, rates=FALSE_ALARM_RATES) -> list[float]:
    """Unknown-detection rate at each false-alarm rate, from :func:`forensic.det_points` of the open-set scores.

    Known clips are the targets, so a false alarm (a known clip called unknown) is a miss of the
    detector's scores and a detected unknown is a correctly rejected non-target: at each rate,
    the best ``1 - p_fa`` among thresholds with ``p_miss`` at most that rate.
    """
    pm, pf = np.asarray(det["p_miss"]), np.asarray(det["p_fa"])
    return [float(np.max(1.0 - pf[pm <= r])) if (pm <= r).any() else 0.0 for r in rates]


def open_set_result(X: np.ndarray, meta: pd.DataFrame, *, n_boot: int = 500) -> dict:
    """EER and detection curve of the unknown-microphone detector, pooled over the left-out folds."""
    train, test, train_session = split_sessions(meta)
    s = open_set_scores(X, meta, train, test)
    known = s["known"].to_numpy()
    score = s["score"].to_numpy()
    rec = s["recording"].to_numpy()
    fns = {"eer": lambda w=None: fm.eer(score, known, w), "min_cllr": lambda w=None: fm.min_cllr(score, known, w)}
    out = {k: f() for k, f in fns.items()}
    # one-sided trials: a clip against the enrolled set, so its recording is resampled once
    out.update(fm.bootstrap(fns, rec, None, n_boot=n_boot))
    det = fm.det_points(score, known)
    # each microphone's own EER as the unknown one: which microphones the detector can turn away (a
    # unit whose twin stays enrolled cannot be, and bounds the pooled EER from below)
    names = dict(zip(meta["label"].to_numpy(), meta["mic"].astype(str)))
    fold = s["fold"].to_numpy()
    out["unknown_folds"] = [{"mic": names[int(k)], "eer": fm.eer(score[fold == k], known[fold == k])}
                            for k in np.unique(fold)]
    out.update({"train_session": train_session, "n_folds": int(s["fold"].nunique()), "n_test": int(len(s)),
                "n_target": int(known.sum()), "n_nontarget": int((~known).sum()),
                "false_alarm_rates": list(FALSE_ALARM_RATES), "unknown_detection": detection_at(det),
                "det": det})
    return out
