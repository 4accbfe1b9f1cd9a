"""The classifiers: scikit-learn pipelines (clean, scale, PCA, classify) and their tuning."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError

THESIS_CLASSIFIERS = ("svc", "mlp", "knn", "random_forest", "gradient_boosting", "logistic_regression",
                      "naive_bayes", "decision_tree")
#: The improved models, meant for level-free channel features and tuned with dask-ml's GridSearchCV
#: over time-block group folds of the training data: a regularised linear model, an RBF SVC and
#: extremely randomised trees.
TUNED_CLASSIFIERS = ("micfp_lr", "micfp_svc", "micfp_et")
#: The default model: feature set and classifier chosen by grouped cross-validation inside the
#: training data (:mod:`pipeline.evaluation.auto`).
AUTO = "micfp_auto"
CLASSIFIERS = THESIS_CLASSIFIERS + TUNED_CLASSIFIERS + (AUTO,)
#: What ``micfp evaluate``/``demo`` run unless told otherwise: the thesis's eight and micfp's model.
DEFAULT_CLASSIFIERS = THESIS_CLASSIFIERS + (AUTO,)
#: Hyper-parameter grids searched (GroupKFold over time blocks, macro F1) for the tuned models.
PARAM_GRIDS = {
    "micfp_lr": {"clf__C": [0.01, 0.1, 1.0, 10.0]},
    # the SVC sits inside CalibratedClassifierCV (see make_model): its parameters are nested
    "micfp_svc": {"clf__estimator__C": [1.0, 10.0, 100.0], "clf__estimator__gamma": ["scale", 3e-3, 1e-3]},
    "micfp_et": {"clf__max_features": ["sqrt", 0.3]},
}
RANDOM_STATE = 42
#: Classifiers without probabilities (the thesis's SVC keeps its default, probability-free): they
#: cannot score the ``enrolled-verification`` protocol's trials.
WITHOUT_PROBABILITIES = ("svc",)


# -- models ----------------------------------------------------------------------------------
def make_model(name: str, n_classes: int, *, pca_components: int | None = 8):
    """The classifier pipeline: clean (NaN/inf -> 0, drop constant columns), scale, PCA, classify.

    The eight thesis classifiers keep the thesis's defaults (random_state 42, k = number of
    microphones). The tuned ``micfp_*`` models skip PCA (the channel's fingerprint lives in small
    directions PCA would drop) and start from the centre of their :data:`PARAM_GRIDS`.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    clf = {
        "svc": lambda: SVC(cache_size=SVC_CACHE_MB, random_state=RANDOM_STATE),
        "mlp": lambda: MLPClassifier(random_state=RANDOM_STATE, max_iter=500),
        "knn": lambda: KNeighborsClassifier(n_neighbors=n_classes),
        "random_forest": lambda: RandomForestClassifier(n_estimators=100, random_state=RANDOM_STATE),
        "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=100, learning_rate=0.1,
                                                                random_state=RANDOM_STATE),
        "logistic_regression": lambda: LogisticRegression(random_state=RANDOM_STATE, max_iter=1000),
        "naive_bayes": GaussianNB,
        "decision_tree": lambda: DecisionTreeClassifier(random_state=RANDOM_STATE),
        "micfp_lr": lambda: LogisticRegression(C=1.0, max_iter=5000, random_state=RANDOM_STATE),
        # Platt-scaled probabilities for ``micfp identify``: what SVC(probability=True) did (deprecated
        # in scikit-learn 1.9): the SVC fitted on all the data, a sigmoid fitted on out-of-fold
        # decision values (ensemble=False; cv=5 folds, as libsvm's internal Platt scaling used)
        "micfp_svc": lambda: CalibratedClassifierCV(
            SVC(C=10.0, gamma="scale", cache_size=SVC_CACHE_MB, random_state=RANDOM_STATE),
            method="sigmoid", cv=5, ensemble=False),
        "micfp_et": lambda: ExtraTreesClassifier(n_estimators=300, random_state=RANDOM_STATE),
    }
    if name == AUTO:
        raise ConfigError(f"{AUTO} chooses its own pipeline: fit it with pipeline.evaluation.auto.fit_classifier")
    if name not in clf:
        raise ConfigError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    steps = [("clean", FunctionTransformer(_finite, feature_names_out="one-to-one")),
             # copy=False: the scaler's input is always the selector's own new array
             ("drop_constant", VarianceThreshold(0.0)), ("scale", StandardScaler(copy=False))]
    if name in THESIS_CLASSIFIERS and pca_components:
        steps.append(("pca", PCA(n_components=pca_components, random_state=RANDOM_STATE)))
    steps.append(("clf", clf[name]()))
    return Pipeline(steps)


#: scikit-learn's SVC kernel cache, MB per fit (its default is 200). On 20,000 training clips
#: of 2 s channel features (the thesis-scale ablation's SVC cell) a fit took the same time
#: with 100 MB (10.4 vs 10.5 s) and the cell's peak memory fell from +296 to +202 MB.
SVC_CACHE_MB = 100


def _finite(X):
    """A float64 copy of ``X`` with NaN and infinities set to 0."""
    out = np.asarray(X).astype(np.float64)
    if not np.isfinite(out.sum()):  # one fast reduction; the scan only when something is off
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def tune(model, X, y, groups, *, param_grid: dict | None = None, n_splits: int = 3, scheduler="synchronous"):
    """Tune ``model`` with dask-ml's GridSearchCV over group folds of the training data only.

    Parameters
    ----------
    model : Pipeline
        From :func:`make_model`; its ``clf`` step is searched.
    X, y, groups : array-like
        Training clips, labels and time-block groups (:func:`time_groups`): no block is on both
        sides of an inner split.
    param_grid : dict, optional
        Default: the micfp_lr grid of :data:`PARAM_GRIDS`.
    scheduler : str or Client
        ``"synchronous"`` inside a cluster task (the default); a Client spreads the search's
        fits over the cluster.

    Returns
    -------
    Pipeline
        The best pipeline refitted on all of ``X``.
    """
    from dask_ml.model_selection import GridSearchCV
    from sklearn.model_selection import GroupKFold

    param_grid = param_grid or PARAM_GRIDS["micfp_lr"]
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return model.fit(X, y)
    cv = GroupKFold(n_splits=min(n_splits, n_groups))
    search = GridSearchCV(model, param_grid, cv=cv, scoring="f1_macro", refit=True, scheduler=scheduler)
    search.fit(X, y, groups=groups)
    return search.best_estimator_


def fit_model(name: str, X, y, groups, n_classes: int, *, scheduler="synchronous"):
    """Build and fit the pipeline of classifier ``name`` (tuned models through :func:`tune`).

    Convergence and constant-feature warnings are silenced: they are expected on tiny folds.
    """
    from sklearn.exceptions import ConvergenceWarning

    model = make_model(name, n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        if name in TUNED_CLASSIFIERS:
            return tune(model, X, y, groups, param_grid=PARAM_GRIDS[name], scheduler=scheduler)
        return model.fit(X, y)

