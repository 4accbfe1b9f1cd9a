"""Train and score classifiers on the feature cube under honest protocols.

Every model is a scikit-learn :class:`~sklearn.pipeline.Pipeline`, so cleaning, scaling and PCA
are fitted inside each training fold and never see test clips. An evaluation *cell* (clip
length x sound type x feature set x classifier x protocol) is one task on the cluster; the
results of all cells form an xarray Dataset (docs/spec.md, "Results set").
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..artifacts.kinds import RESULTS_KIND
from ..artifacts.locks import reading

PROTOCOLS = ("random", "session", "grouped-kfold", "leave-sound-type-out")
THESIS_CLASSIFIERS = ("svc", "mlp", "knn", "random_forest", "gradient_boosting", "logistic_regression",
                      "naive_bayes", "decision_tree")
#: The improved models, meant for level-free channel features and tuned with dask-ml's GridSearchCV
#: over time-block group folds of the training data: a regularised linear model, an RBF SVC and
#: extremely randomised trees.
TUNED_CLASSIFIERS = ("micfp_lr", "micfp_svc", "micfp_et")
CLASSIFIERS = THESIS_CLASSIFIERS + TUNED_CLASSIFIERS
#: What ``micfp evaluate``/``demo`` run unless told otherwise: the thesis's eight and micfp's model.
DEFAULT_CLASSIFIERS = THESIS_CLASSIFIERS + ("micfp_lr",)
#: Hyper-parameter grids searched (GroupKFold over time blocks, macro F1) for the tuned models.
PARAM_GRIDS = {
    "micfp_lr": {"clf__C": [0.01, 0.1, 1.0, 10.0]},
    "micfp_svc": {"clf__C": [1.0, 10.0, 100.0], "clf__gamma": ["scale", 3e-3, 1e-3]},
    "micfp_et": {"clf__max_features": ["sqrt", 0.3]},
}
RANDOM_STATE = 42
#: How :func:`cap_training` draws (recorded in a workflow ledger's basis): one seeded key per
#: clip, shared by the folds. Session 4 and earlier drew each fold independently.
TRAINING_DRAW = "shared-keys"
GROUP_SECONDS = 30.0


@dataclass(frozen=True)
class Cell:
    """One point of an evaluation grid."""

    clip_seconds: float
    sound_type: str  # a sound type, or "all"
    feature_set: str
    classifier: str
    protocol: str
    segmentation: str = "fixed"

    def __post_init__(self):
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier {self.classifier!r}; choose from {', '.join(CLASSIFIERS)}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")

    @property
    def key(self) -> tuple:
        return (self.clip_seconds, self.sound_type, self.feature_set, self.classifier, self.protocol)


# -- models ----------------------------------------------------------------------------------
def make_model(name: str, n_classes: int, *, pca_components: int | None = 8):
    """The classifier pipeline: clean (NaN/inf -> 0, drop constant columns), scale, PCA, classify.

    The eight thesis classifiers keep the thesis's defaults (random_state 42, k = number of
    microphones). The tuned ``micfp_*`` models skip PCA (the channel's fingerprint lives in small
    directions PCA would drop) and start from the centre of their :data:`PARAM_GRIDS`.
    """
    from sklearn.decomposition import PCA
    from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
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
        # probability=True: Platt-scaled probabilities for ``micfp identify``
        "micfp_svc": lambda: SVC(C=10.0, gamma="scale", probability=True, cache_size=SVC_CACHE_MB,
                                 random_state=RANDOM_STATE),
        "micfp_et": lambda: ExtraTreesClassifier(n_estimators=300, random_state=RANDOM_STATE),
    }
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


# -- metrics ---------------------------------------------------------------------------------
def identical_pairs(mics: dict[int, str]) -> list[int]:
    """Labels of microphones sharing a make and model (names equal but for a ``#N`` suffix)."""
    models: dict[str, list[int]] = {}
    for label, name in mics.items():
        models.setdefault(re.sub(r"\s*#\s*\d+\s*$", "", name), []).append(label)
    return sorted(lab for labs in models.values() if len(labs) > 1 for lab in labs)


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


# -- cells -----------------------------------------------------------------------------------
#: Clip coordinates a cell's table holds.
META_COLUMNS = ("mic", "label", "session", "recording", "sound_type", "start_s", "clip_seconds")


def select_rows(cube, cell: Cell):
    """A cell's feature rows, unread (:class:`~pipeline.features.rows.FeatureRows`), and its clip table.

    ``cube`` is an xarray cube (:func:`~pipeline.features.cube.open_cube`) or a cube opened for
    row access (:func:`~pipeline.features.cube.open_rows`); from the latter only the cell's own
    row group is read, and features only when a fold asks for them.
    """
    from ..artifacts.rows import CubeRows, FeatureRows, compact

    if isinstance(cube, CubeRows):
        rows = cube.rows(cell.segmentation, cell.clip_seconds if cell.segmentation == "fixed" else None)
        meta = cube.clips(rows, META_COLUMNS)
        if cell.sound_type != "all":
            keep = (meta["sound_type"] == cell.sound_type).to_numpy()
            rows, meta = rows[keep], meta[keep].reset_index(drop=True)
            meta = meta.apply(lambda col: col.cat.remove_unused_categories()
                              if isinstance(col.dtype, pd.CategoricalDtype) else col)
        cols = cube.columns(cell.feature_set)
        features = cube.features
    else:
        c = cube
        sel = (c.segmentation == cell.segmentation).values
        if cell.segmentation == "fixed":
            sel &= np.isclose(c.clip_seconds.values, cell.clip_seconds)
        if cell.sound_type != "all":
            sel &= (c.sound_type == cell.sound_type).values
        rows = np.flatnonzero(sel)
        cols = np.arange(c.sizes["feature"]) if cell.feature_set == "all" else np.flatnonzero(
            (c.feature_set == cell.feature_set).values)
        meta = pd.DataFrame({k: compact(c[k].values[rows]) for k in META_COLUMNS})
        features = c.features.data
        if hasattr(features, "dask"):  # a lazy xarray cube: read the cell's rows now, block by block
            features, rows = read_rows(features, rows, cols), np.arange(rows.size)
            cols = None
    if cols is not None and cols.size == 0:
        raise ConfigError(f"feature set {cell.feature_set!r} is not in the cube; recompute it with "
                          f"--feature-set {cell.feature_set}")
    if rows.size == 0:
        have = _cube_values(cube)
        raise ConfigError(f"no clips for {cell}: the cube has clip lengths {have['clip_seconds']} and sound types "
                          f"{sorted(have['sound_type'])}")
    return FeatureRows([(features, rows, cols)]), meta


def select(cube, cell: Cell):
    """Feature matrix and clip table of one cell (numpy/pandas, loaded)."""
    rows, meta = select_rows(cube, cell)
    return rows.take(), meta


#: Rows of a lazy cube read per step by :func:`read_rows` (about one 8 MB cube chunk).
READ_ROWS = 8_192


def read_rows(features, rows: np.ndarray, columns: np.ndarray, step: int = READ_ROWS) -> np.ndarray:
    """``features[rows][:, columns]`` as one float32 array, read ``step`` rows at a time.

    A lazy (dask-backed) cube is read block by block into the preallocated result, so memory
    is the result plus about one chunk, not the result twice as a single fancy-indexed dask
    selection would hold it (its pieces and their concatenation).
    """
    data = features.data if hasattr(features, "data") else features
    if not hasattr(data, "dask"):  # in memory already
        return np.asarray(data[rows][:, columns], dtype=np.float32)
    out = np.empty((rows.size, columns.size), np.float32)
    for a in range(0, rows.size, step):
        out[a : a + step] = np.asarray(data[rows[a : a + step]][:, columns].compute())
    return out


def run_cell(X, meta: pd.DataFrame, cell: Cell, mics: dict[int, str], *, n_boot: int = 500,
             max_train: int | None = None) -> dict:
    """Fit and score one cell over all folds of its protocol.

    ``X`` is the cell's feature matrix, or its unread rows (:func:`select_rows`). Features are
    read in two passes in row order, whatever the number of folds: first the training clips of
    every fold (all folds are fitted), then the test clips, one prediction batch at a time.
    With a training cap, memory is then bounded by the cap, not by the cell's clips.

    The headline metrics pool the folds' test predictions (block-bootstrap intervals, see
    :func:`score`); ``folds`` holds each fold's own metrics and ``fold_spread`` their mean and
    standard deviation, the second kind of interval for protocols with several folds.

    ``max_train`` caps each fold's training clips (:func:`cap_training`; ``None``: all of them);
    the result records it as ``max_train_clips`` and the clips actually fitted on, summed over
    folds, as ``n_train`` (each fold's own count is in ``folds``).
    """
    from ..artifacts.rows import FeatureRows

    X = FeatureRows.of(X)
    labels = sorted(mics)
    pair = identical_pairs(mics)
    y = meta["label"].to_numpy()
    groups = time_groups(meta)
    splits = []
    for name, tr, te in protocol_splits(meta, cell.protocol):
        if len(np.unique(y[tr])) < 2 or te.size == 0:
            raise ConfigError(f"protocol {cell.protocol} leaves a fold without training classes or test clips "
                              f"for {cell}")
        splits.append((name, cap_training(tr, meta, max_train), te))
    # pass 1: the training clips of all folds at once
    used = np.unique(np.concatenate([tr for _, tr, _ in splits]))
    X_used = X.take(used)
    X.release()  # the last decoded cube chunk is not needed while fitting
    models = [fit_model(cell.classifier, X_used if tr.size == used.size else X_used[np.searchsorted(used, tr)],
                        y[tr], groups[tr], len(labels))  # one fold: its rows are all of them, no copy
              for _, tr, _ in splits]
    del X_used
    # pass 2: the test clips, each predicted by the model of its fold
    pred = predict_folds(models, X, [te for _, _, te in splits], len(meta))
    y_true, y_pred, g_test, folds = [], [], [], []
    for (name, tr, te), p in zip(splits, pred):
        y_true.append(y[te])
        y_pred.append(p)
        g_test.append(groups[te])
        folds.append({"fold": name, "n_train": int(tr.size), "n_test": int(te.size),
                      **point_metrics(y[te], p, labels, pair)})
    y_true, y_pred, g_test = map(np.concatenate, (y_true, y_pred, g_test))
    out = score(y_true, y_pred, labels, pair, g_test, n_boot=n_boot)
    out["folds"] = folds
    out["fold_accuracy"] = [f["accuracy"] for f in folds]
    out["fold_spread"] = {k: {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0}
                          for k in ("accuracy", "macro_f1", "pair_accuracy")
                          for v in [np.array([f[k] for f in folds], float)] if np.isfinite(v).any()}
    out["n_train"] = sum(f["n_train"] for f in folds)
    out["max_train_clips"] = max_train
    out["cell"] = asdict(cell)
    return out


#: Test clips predicted at once: the pipeline's float64 copies of a batch stay small
#: (10,000 x 244 features: 20 MB each).
PREDICT_BATCH = 10_000


def predict_folds(models: list, X, tests: list[np.ndarray], n_rows: int | None = None,
                  batch: int = PREDICT_BATCH) -> list[np.ndarray]:
    """Predictions of each fold's model on its test rows: ``[models[k].predict(X[tests[k]])]``.

    ``X`` is a matrix or :class:`~pipeline.features.rows.FeatureRows`. Rows are read once, in row
    order, ``batch`` at a time (memory does not grow with the test set); when folds share test
    rows, one pass per fold.
    """
    from ..artifacts.rows import FeatureRows

    X = FeatureRows.of(X)
    n_rows = len(X) if n_rows is None else n_rows
    fold = np.full(n_rows, -1, np.int64)
    for k, te in enumerate(tests):
        if (fold[te] >= 0).any():  # overlapping test sets: fold by fold
            return [predict_folds([m], X, [t], n_rows, batch)[0] for m, t in zip(models, tests)]
        fold[te] = k
    rows = np.flatnonzero(fold >= 0)
    out = None
    for a in range(0, rows.size, batch):
        part = rows[a : a + batch]
        Xb, owner = X.take(part), fold[part]
        for k in np.unique(owner):
            mine = owner == k
            p = models[k].predict(Xb[mine])
            if out is None:
                out = np.empty(n_rows, p.dtype)
            out[part[mine]] = p
    return [out[te] if out is not None else np.zeros(0, np.int64) for te in tests]


#: Rough fit cost of each classifier relative to logistic regression on the same clips (the
#: tuned models fit a grid of candidates per fold), for ordering cells longest first.
FIT_COST = {"logistic_regression": 1.0, "naive_bayes": 0.3, "decision_tree": 1.0, "knn": 3.0, "svc": 12.0,
            "mlp": 8.0, "random_forest": 6.0, "gradient_boosting": 15.0, "micfp_lr": 12.0, "micfp_svc": 150.0,
            "micfp_et": 20.0}
PROTOCOL_FOLDS = {"random": 1, "session": 1, "grouped-kfold": 5, "leave-sound-type-out": 5}


def cell_cost(cell: Cell) -> float:
    """Relative cost of a cell: classifier x folds x clip count (more, shorter clips cost more).

    Only the order matters (:func:`pipeline.cluster.runner.run_tasks` starts the costliest first);
    measured on the thesis-scale ablation, where one SVC cell took 11 s and logistic
    regression cells 0.3-4.6 s.
    """
    length = cell.clip_seconds if cell.clip_seconds > 0 else 1.0
    return FIT_COST.get(cell.classifier, 1.0) * PROTOCOL_FOLDS.get(cell.protocol, 1) * (1.0 + 1.0 / max(length, 0.1))


def _cell_task(cube_path: str, cell: Cell, n_boot: int, max_train: int | None = None,
               uid: str | None = None) -> dict:
    from ..artifacts.outputs import verify_seen
    from ..cluster.runner import trim_memory
    from ..artifacts.cube import cached_cube

    verify_seen(cube_path, uid)  # the client's cube, not one at the same path in the worker's folder
    trim_memory()  # what earlier tasks freed, before this cell's peak adds to it
    cube = cached_cube(cube_path)  # opened once per worker process, read without a client
    mics = {int(k): v for k, v in cube.attrs["micfp"]["mics"].items()}
    X, meta = select_rows(cube, cell)
    return run_cell(X, meta, cell, mics, n_boot=n_boot, max_train=max_train)


@reading("cube_path", "feature cube")
def evaluate(cube_path: str, cells: list[Cell], client, *, n_boot: int = 500, max_train: int | None = None,
             quiet: bool = False) -> list[dict]:
    """Run ``cells`` as tasks on the cluster; returns one result dict per cell, in order.

    ``max_train`` caps the training clips of every fit (:func:`cap_training`; default no cap).
    """
    from ..artifacts.cube import open_rows
    from ..cluster.runner import run_tasks
    from ..artifacts.outputs import resolve

    check_max_train(max_train)
    cube_path = resolve(cube_path)  # workers may run in another folder
    cube = open_rows(cube_path)  # for the checks: no clip coordinates loaded
    check_cells(cube, cells)  # fail before compute on a cell the cube cannot serve
    uid = cube.attrs["micfp"].get("uid")
    return run_tasks(client, "evaluate: cells", _cell_task, [(cube_path, c, n_boot, max_train, uid) for c in cells],
                     quiet=quiet, cost=[cell_cost(c) for c in cells])


def _cube_values(cube) -> dict[str, list]:
    """Feature sets, clip lengths, sound types and sessions of an xarray or row-access cube."""
    from ..artifacts.rows import CubeRows

    if isinstance(cube, CubeRows):
        return {"feature_set": [str(v) for v in pd.unique(cube.feature_set)], "clip_seconds": cube.clip_lengths,
                "sound_type": cube.values("sound_type"), "session": cube.values("session")}
    return {"feature_set": [str(v) for v in pd.unique(cube.feature_set.values)],
            "clip_seconds": sorted(set(cube.clip_seconds.values.tolist())),
            "sound_type": [str(v) for v in pd.unique(cube.sound_type.values)],
            "session": [str(v) for v in pd.unique(cube.session.values)]}


def check_cells(cube, cells) -> None:
    """:func:`select_check` every cell, reading the cube's coordinate values once."""
    have = _cube_values(cube)
    for cell in cells:
        select_check(cube, cell, have=have)


def select_check(cube, cell: Cell, *, have: dict | None = None) -> None:
    """Validate a cell against the cube's coordinates without loading features.

    ``have``: the cube's :func:`_cube_values`, when checking many cells (:func:`check_cells`).
    """
    have = have or _cube_values(cube)
    if cell.feature_set != "all" and cell.feature_set not in have["feature_set"]:
        raise ConfigError(f"feature set {cell.feature_set!r} is not in the cube; recompute it with "
                          f"--feature-set {cell.feature_set}")
    if cell.segmentation == "fixed" and not np.isclose(have["clip_seconds"], cell.clip_seconds).any():
        raise ConfigError(f"clip length {cell.clip_seconds} s is not in the cube (has {have['clip_seconds']})")
    if cell.sound_type != "all" and cell.sound_type not in have["sound_type"]:
        raise ConfigError(f"sound type {cell.sound_type!r} is not in the cube (has {sorted(have['sound_type'])})")
    if cell.protocol == "session" and len(have["session"]) < 2:
        raise ConfigError(f"session protocol needs two sessions; the cube has {sorted(have['session'])}")


def results_dataset(results: list[dict], mics: dict[int, str]):
    """Results of many cells as the results Dataset of docs/spec.md (NaN where a cell was not run).

    ``n_train`` holds the training clips each cell fitted on (summed over folds) and
    ``attrs["micfp"]["max_train_clips"]`` the training cap (None: uncapped; a sorted list if the
    cells were run with different caps).
    """
    import xarray as xr

    cells = [r["cell"] for r in results]
    dims = ["clip_seconds", "sound_type", "feature_set", "classifier", "protocol"]
    axes = {d: sorted({c[d] for c in cells}, key=lambda v: (isinstance(v, str), v)) for d in dims}
    shape = tuple(len(axes[d]) for d in dims)
    labels = sorted(mics)
    names = [mics[k] for k in labels]
    metrics = ["accuracy", "macro_f1", "weighted_f1", "pair_accuracy"]
    data = {}
    for m in metrics:
        for suffix in ("", "_lo", "_hi"):
            data[m + suffix] = np.full(shape, np.nan)
    data["n_test"] = np.zeros(shape, np.int64)
    data["n_train"] = np.zeros(shape, np.int64)
    conf = np.zeros(shape + (len(labels), len(labels)), np.int64)
    for r in results:
        pos = tuple(axes[d].index(r["cell"][d]) for d in dims)
        for k in data:
            data[k][pos] = r.get(k, 0) if k == "n_train" else r[k]  # 0: a record made without run_cell's count
        conf[pos] = np.asarray(r["confusion"])
    ds = xr.Dataset({k: (dims, v) for k, v in data.items()},
                    coords={**{d: np.asarray(axes[d], dtype=object if d != "clip_seconds" else float)
                               for d in dims},
                            "true_mic": np.asarray(names, dtype=object), "pred_mic": np.asarray(names, dtype=object)})
    ds["confusion"] = (dims + ["true_mic", "pred_mic"], conf)
    caps = sorted({r.get("max_train_clips") for r in results}, key=lambda v: (v is not None, v or 0))
    ds.attrs["micfp"] = {"kind": RESULTS_KIND, "complete": True, "mics": {str(k): v for k, v in mics.items()},
                         "identical_pair": [mics[k] for k in identical_pairs(mics)],
                         "max_train_clips": caps[0] if len(caps) == 1 else caps}
    return ds
