"""``micfp_auto``: the feature set and classifier chosen by grouped cross-validation of the training data.

:class:`MicfpAuto` is a scikit-learn estimator. It receives the union of its candidate feature
sets as columns, with the set each column belongs to (``column_sets``), scores every candidate
(feature set x classifier, :data:`AUTO_FEATURE_SETS` x :data:`AUTO_CLASSIFIERS`; a set absent
from the columns is skipped) by dask-ml's GridSearchCV over group folds of its training data
only, and refits the winner with its own hyper-parameter search (:func:`models.fit_model`).
The groups reward what generalises across days: sessions when the training data holds two or
more, else 30 s time blocks (:func:`selection_groups`).

Nothing here looks at test data: each fold of a protocol fits its own :class:`MicfpAuto` on its
training clips, so a cell's choice can differ between folds; :func:`choice` reports it.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import ConfigError
from .models import AUTO, RANDOM_STATE, fit_model, make_model

log = logging.getLogger(__name__)

#: Candidate feature sets, cheapest first; ``+`` joins sets. A set the columns do not hold is skipped.
AUTO_FEATURE_SETS = ("channel", "spectral", "channel+spectral", "session-relative")
#: Feature sets that need every microphone of a session at once: ``micfp train`` leaves them out
#: (``micfp identify`` sees one file).
SESSION_SETS = ("session-relative",)
#: Candidate classifiers, cheapest first (ties go to the earlier candidate).
AUTO_CLASSIFIERS = ("micfp_lr", "micfp_et", "micfp_svc")
#: Folds of the selection's cross-validation.
AUTO_FOLDS = 3
#: Training clips the selection scores candidates on (a seeded draw; the winner is refitted on all).
AUTO_MAX_SELECT = 6000


def selection_groups(groups, sessions=None) -> np.ndarray:
    """Groups of the selection's folds: the sessions when there are two or more, else ``groups``.

    Folds by session make a candidate win for what carries over to another day (positions moved,
    other content); 30 s time blocks (:func:`protocols.time_groups`) are the fallback for a single
    training session.
    """
    import pandas as pd

    if sessions is not None and len(pd.unique(np.asarray(sessions))) >= 2:
        return pd.factorize(np.asarray(sessions))[0]
    return np.asarray(groups)


def candidate_columns(column_sets, feature_set: str) -> np.ndarray:
    """Column positions of a candidate feature set (``a+b``: the columns of both, in column order)."""
    owners = np.asarray(column_sets, dtype=object)
    return np.flatnonzero(np.isin(owners, feature_set.split("+")))


def candidates(column_sets, feature_sets=AUTO_FEATURE_SETS, classifiers=AUTO_CLASSIFIERS) -> list[str]:
    """``"<feature set>|<classifier>"`` for every candidate whose feature sets are all among the columns."""
    have = set(np.asarray(column_sets, dtype=object).tolist())
    sets = [fs for fs in feature_sets if all(s in have for s in fs.split("+"))]
    return [f"{fs}|{clf}" for fs in sets for clf in classifiers]


def _quick_model(classifier: str, n_classes: int):
    """A candidate's pipeline at the centre of its grid; the SVC without Platt scaling (only its
    labels are scored here, and the calibration's inner folds would cost five more fits)."""
    model = make_model(classifier, n_classes)
    clf = model.named_steps["clf"]
    if hasattr(clf, "estimator") and clf.estimator is not None:
        model.set_params(clf=clf.estimator)
    return model


def _usable(X, column_sets, feature_set: str) -> bool:
    """Whether a candidate set has values for every training clip: a session set has none for a clip
    recorded by one microphone at its moment (NaN), and then it cannot be weighed fairly."""
    if not set(feature_set.split("+")) & set(SESSION_SETS):
        return True
    return bool(np.isfinite(X[:, candidate_columns(column_sets, feature_set)]).all())


class _Candidate(ClassifierMixin, BaseEstimator):
    """One candidate of the selection: the columns of a feature set, fed to one classifier."""

    def __init__(self, column_sets=(), candidate="channel|micfp_lr", n_classes=2):
        self.column_sets = column_sets
        self.candidate = candidate
        self.n_classes = n_classes

    def fit(self, X, y):
        fs, clf = self.candidate.split("|")
        self.columns_ = candidate_columns(self.column_sets, fs)
        self.model_ = _quick_model(clf, self.n_classes).fit(np.asarray(X)[:, self.columns_], y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(np.asarray(X)[:, self.columns_])


class MicfpAuto(ClassifierMixin, BaseEstimator):
    """Choose a feature set and classifier by grouped cross-validation of the training data, then fit it.

    Parameters
    ----------
    column_sets : tuple of str
        The feature set of each column of ``X`` (the cube's ``feature_set`` coordinate).
    feature_sets : tuple of str
        Candidate feature sets (``a+b`` joins two); those not among ``column_sets`` are skipped.
    classifiers : tuple of str
        Candidate classifiers (``micfp_*`` names of :mod:`.models`).
    n_splits : int
        Group folds of the selection.
    max_select_clips : int or None
        Training clips the candidates are scored on (seeded draw); None: all.
    random_state : int
        Seed of that draw.

    Attributes
    ----------
    chosen_feature_set_, chosen_classifier_ : str
        The winner.
    chosen_columns_ : ndarray
        Its columns of ``X``.
    chosen_params_ : dict
        The winner's tuned hyper-parameters (its final classifier step).
    cv_scores_ : dict
        Mean fold accuracy of every candidate, ``"<feature set> + <classifier>"`` -> score.
    cv_method_ : str
        How the folds were made.
    model_ : Pipeline
        The winner refitted (and tuned) on all training clips.
    """

    def __init__(self, column_sets=(), feature_sets=AUTO_FEATURE_SETS, classifiers=AUTO_CLASSIFIERS,
                 n_splits=AUTO_FOLDS, max_select_clips=AUTO_MAX_SELECT, random_state=RANDOM_STATE):
        self.column_sets = column_sets
        self.feature_sets = feature_sets
        self.classifiers = classifiers
        self.n_splits = n_splits
        self.max_select_clips = max_select_clips
        self.random_state = random_state

    def fit(self, X, y, groups=None, *, scheduler="synchronous"):
        """Score the candidates over group folds of ``(X, y)``, then fit and tune the winner on all of it.

        ``groups``: fold groups (:func:`selection_groups`); default one group per clip.
        """
        X, y = np.asarray(X), np.asarray(y)
        if len(self.column_sets) != X.shape[1]:
            raise ConfigError(f"{AUTO}: {X.shape[1]} feature columns but {len(self.column_sets)} column sets")
        groups = np.arange(y.size) if groups is None else np.asarray(groups)
        cands = [c for c in candidates(self.column_sets, self.feature_sets, self.classifiers)
                 if _usable(X, self.column_sets, c.split("|")[0])]
        if not cands:
            raise ConfigError(f"{AUTO}: none of the candidate feature sets {', '.join(self.feature_sets)} is "
                              f"in the features (have {', '.join(sorted(set(map(str, self.column_sets))))})")
        n_classes = np.unique(y).size
        self.cv_scores_, self.cv_method_ = self._select(X, y, groups, cands, n_classes, scheduler)
        best = max(cands, key=lambda c: (self.cv_scores_.get(_label(c), -np.inf), -cands.index(c)))
        self.chosen_feature_set_, self.chosen_classifier_ = best.split("|")
        self.chosen_columns_ = candidate_columns(self.column_sets, self.chosen_feature_set_)
        log.info(f"{AUTO}: chose {_label(best)} ({self.cv_method_}; "
                 + ", ".join(f"{k} {v:.3f}" for k, v in self.cv_scores_.items()) + ")")
        self.model_ = fit_model(self.chosen_classifier_, X[:, self.chosen_columns_], y, groups, n_classes,
                                scheduler=scheduler)
        clf = self.model_.named_steps["clf"]
        self.chosen_params_ = {k: v for k, v in clf.get_params(deep=False).items()
                               if isinstance(v, (int, float, str, bool, type(None)))}
        self.classes_ = self.model_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def _select(self, X, y, groups, cands, n_classes, scheduler) -> tuple[dict, str]:
        """Mean fold accuracy per candidate (dask-ml GridSearchCV over the candidates) and the fold method."""
        from dask_ml.model_selection import GridSearchCV
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import GroupKFold

        rows = np.arange(y.size)
        if self.max_select_clips and y.size > self.max_select_clips:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(y.size, self.max_select_clips, replace=False))
        n_groups = np.unique(groups[rows]).size
        if len(cands) == 1 or n_groups < 2:
            return {}, "no selection (one candidate or one group)"
        k = min(self.n_splits, n_groups)
        search = GridSearchCV(_Candidate(tuple(self.column_sets), cands[0], n_classes), {"candidate": cands},
                              cv=GroupKFold(n_splits=k), scoring="accuracy", refit=False, scheduler=scheduler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            search.fit(X[rows], y[rows], groups=groups[rows])
        res = search.cv_results_
        scores = {_label(c["candidate"]): float(s) for c, s in zip(res["params"], res["mean_test_score"])}
        return scores, f"{k}-fold grouped CV over {n_groups} groups, {rows.size} clips"

    def predict(self, X):
        return self.model_.predict(np.asarray(X)[:, self.chosen_columns_])

    def predict_proba(self, X):
        return self.model_.predict_proba(np.asarray(X)[:, self.chosen_columns_])

    @property
    def choice_(self) -> dict:
        """What was chosen and why, JSON-ready (:func:`choice`)."""
        return {"feature_set": self.chosen_feature_set_, "classifier": self.chosen_classifier_,
                "params": self.chosen_params_, "cv_scores": self.cv_scores_, "cv_method": self.cv_method_}


def single_file_sets(feature_sets=AUTO_FEATURE_SETS) -> tuple[str, ...]:
    """The candidate feature sets computable from one file alone (no :data:`SESSION_SETS`)."""
    return tuple(fs for fs in feature_sets if not set(fs.split("+")) & set(SESSION_SETS))


def _label(candidate: str) -> str:
    return candidate.replace("|", " + ")


def choice(model) -> dict | None:
    """A fitted model's choice (:attr:`MicfpAuto.choice_`), None for a fixed model."""
    return model.choice_ if isinstance(model, MicfpAuto) else None


def fit_classifier(name: str, X, y, groups, n_classes: int, *, column_sets=None, sessions=None,
                   feature_sets=AUTO_FEATURE_SETS, scheduler="synchronous"):
    """Fit classifier ``name``: :class:`MicfpAuto` for ``micfp_auto``, else :func:`models.fit_model`.

    Parameters
    ----------
    column_sets : sequence of str
        For ``micfp_auto``: the feature set of each column of ``X``.
    sessions : array-like, optional
        For ``micfp_auto``: each clip's session; two or more make the selection's folds sessions
        (:func:`selection_groups`), else ``groups`` (time blocks) are used.
    feature_sets : tuple of str
        For ``micfp_auto``: its candidate feature sets.
    """
    if name != AUTO:
        return fit_model(name, X, y, groups, n_classes, scheduler=scheduler)
    if column_sets is None:
        raise ConfigError(f"{AUTO} needs the feature set of each column")
    return MicfpAuto(column_sets=tuple(str(s) for s in column_sets), feature_sets=tuple(feature_sets)).fit(
        X, y, selection_groups(groups, sessions), scheduler=scheduler)
