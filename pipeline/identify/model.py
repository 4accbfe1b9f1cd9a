"""Train one microphone model on a feature cube, calibrate its "unknown" threshold, save and load it.

A saved model is a skops file (no code runs on load; only an explicit allow-list of the
scikit-learn types micfp produces is accepted) holding the fitted pipeline, the open-set
statistics and the metadata ``micfp identify`` needs to compute the same features: feature set
and names, clip length, frame settings, microphone names, package versions.

Open set: besides the classifier's probabilities, a file gets a squared standardised distance
(per dimension) to the mean of a microphone's training clips in the pipeline's scaled feature
space, each feature scaled by its pooled within-microphone spread. The clip-level
threshold is the ``accept_rate`` quantile of held-out known-microphone clips' distances to their
own microphone, held out by session when the training selection has several sessions, else by
time-block folds. A clip's distance is noisy (its content moves it), so the decision is made per
file: the distance of the mean of the file's clip residuals to the winning microphone
(:func:`file_distance`), against the threshold ``tau``, the ``accept_rate`` quantile of the same
statistic over held-out known-microphone pseudo-files (the clips of one recording within one
30 s block). Above it: "unknown microphone".
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..report.files import json_default
from ..artifacts.locks import reading
from .model_checks import check_archive, check_openset

MODEL_KIND = "micfp-model"
MODEL_VERSION = 1
DEFAULT_CLASSIFIER = "micfp_et"

#: Every type a micfp model file may contain; anything else is refused before loading. Kept in step
#: with :func:`evaluate.make_model` by ``tests/identify/test_model.py``.
TRUSTED_TYPES = (
    "pipeline.evaluation.evaluate._finite",
    "pipeline.evaluate._finite",  # models saved before the package was grouped by stage
    "numpy.random.mtrand.RandomState",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn.decomposition._pca.PCA",
    "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.feature_selection._variance_threshold.VarianceThreshold",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.svm._classes.SVC",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._tree.Tree",
)


@dataclass(frozen=True)
class TrainSettings:
    """What ``micfp train`` fits.

    Parameters
    ----------
    feature_set : str
        Feature set of the cube to use (``channel``, ``spectral``, ``thesis`` or ``all``).
    clip_seconds : float
        Clip length (fixed segmentation); ``micfp identify`` cuts files into clips of it.
    classifier : str
        One of :data:`evaluate.CLASSIFIERS`.
    sessions : tuple of str
        Training sessions (empty: all). Clips of the other sessions are scored as held-out data.
    sound_type : str
        A sound type or ``all``.
    mics : tuple of str
        Microphones to train on, by name or label (empty: all in the cube).
    accept_rate : float
        Share of held-out known-microphone pseudo-files the open-set threshold keeps.
    """

    feature_set: str = "channel"
    clip_seconds: float = 2.0
    classifier: str = DEFAULT_CLASSIFIER
    sessions: tuple[str, ...] = ()
    sound_type: str = "all"
    mics: tuple[str, ...] = ()
    accept_rate: float = 0.99

    def __post_init__(self):
        from ..evaluation.evaluate import CLASSIFIERS

        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier {self.classifier!r}; choose from {', '.join(CLASSIFIERS)}")
        if not 0.5 <= self.accept_rate < 1.0:
            raise ConfigError(f"--accept-rate must be in [0.5, 1), got {self.accept_rate}")


@dataclass
class TrainedModel:
    """A fitted pipeline with its open-set statistics and metadata (see :func:`save_model`)."""

    estimator: object
    openset: dict
    meta: dict = field(default_factory=dict)

    @property
    def mics(self) -> dict[int, str]:
        return {int(k): v for k, v in self.meta["mics"].items()}

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(self.estimator.classes_)

    def frame_settings(self):
        from ..features.frames import FrameSettings

        return FrameSettings(**self.meta["frame"])


# -- open set: pure numpy on a fitted pipeline ---------------------------------------------
def embed(estimator, X) -> np.ndarray:
    """The pipeline's preprocessing (everything before the classifier) applied to ``X``."""
    return np.asarray(estimator[:-1].transform(X), dtype=np.float64)


def fit_openset(estimator, X, y) -> dict:
    """Per-class means and the pooled within-class (diagonal) precision in the embedded space."""
    Z = embed(estimator, X)
    classes = np.asarray(estimator.classes_)
    y = np.asarray(y)
    means = np.stack([Z[y == c].mean(axis=0) for c in classes])
    resid = Z - means[np.searchsorted(classes, y)]
    # Diagonal, not a full (shrunk) covariance: the full one learns that whole-spectrum tilts are
    # ordinary (the played content makes them) and so discounts a new channel's response, which
    # is such a tilt; per-feature scales keep it visible.
    var = np.maximum(resid.var(axis=0), 1e-6)
    return {"classes": classes.astype(np.int64), "means": means, "precision": np.diag(1.0 / var)}


def openset_distance(estimator, openset: dict, X, labels) -> np.ndarray:
    """Squared standardised distance per dimension of each row of ``X`` to the class in ``labels``.

    About 1 for clips like the training clips of that microphone; large for other microphones.
    """
    Z = embed(estimator, X)
    idx = np.searchsorted(openset["classes"], np.asarray(labels))
    diff = Z - openset["means"][idx]
    return np.einsum("ij,jk,ik->i", diff, openset["precision"], diff) / Z.shape[1]


# -- training ------------------------------------------------------------------------------
def _selection(cube, settings: TrainSettings):
    from ..evaluation.evaluate import Cell, select, select_check

    cell = Cell(float(settings.clip_seconds), settings.sound_type, settings.feature_set, settings.classifier,
                "session", "fixed")
    select_check(cube, cell)
    X, meta = select(cube, cell)
    sessions = sorted(set(meta["session"]))
    train_sessions = list(settings.sessions) or sessions
    missing = [s for s in train_sessions if s not in sessions]
    if missing:
        raise ConfigError(f"session(s) {missing} not in the cube for this selection (has {sessions})")
    return cell, X, meta, train_sessions


def _calibration_cv(meta: pd.DataFrame):
    """Held-out folds for calibration: by session when there are several, else time blocks."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    from ..evaluation.evaluate import time_groups

    sessions = meta["session"].to_numpy()
    if len(set(sessions)) > 1:
        return LeaveOneGroupOut(), pd.factorize(sessions)[0], "leave-one-session-out"
    groups = time_groups(meta)
    k = min(5, len(np.unique(groups)))
    if k < 2:
        raise ConfigError("calibration needs at least two 30 s time blocks of training clips")
    return GroupKFold(n_splits=k), groups, f"{k}-fold grouped (30 s blocks)"


def calibrate(estimator, X, y, meta: pd.DataFrame, mics: dict[int, str], settings: TrainSettings, *,
              client=None, n_boot: int = 200) -> dict:
    """Held-out scores and the open-set threshold from out-of-fold predictions.

    Runs scikit-learn's ``cross_validate`` (on the joblib Dask backend when ``client`` is given)
    on clones of the fitted pipeline with its tuned parameters, then scores each held-out fold.
    """
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate

    from ..evaluation.evaluate import identical_pairs, score, time_groups

    cv, groups, how = _calibration_cv(meta)
    kw = dict(groups=groups, cv=cv, scoring=("accuracy", "f1_macro"), return_estimator=True, return_indices=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if client is not None:
            with joblib.parallel_backend("dask"):
                res = cross_validate(clone(estimator), X, y, n_jobs=-1, **kw)
        else:
            res = cross_validate(clone(estimator), X, y, **kw)
    k = np.unique(y).size
    y_pred = np.empty_like(y)
    key = meta["recording"].astype(str).to_numpy() + ":" + time_groups(meta).astype(str)
    meds = []
    for est, tr, te in zip(res["estimator"], res["indices"]["train"], res["indices"]["test"]):
        if est.classes_.size != k:
            raise ConfigError(f"calibration ({how}) leaves a fold without clips of some microphone; "
                              "train on sessions that all hold every microphone")
        proba = est.predict_proba(X[te])
        y_pred[te] = est.classes_[proba.argmax(axis=1)]
        # pseudo-files: the held-out clips of one recording within one 30 s block, scored as
        # `micfp identify` scores a file
        meds.append(_file_distances(est, fit_openset(est, X[tr], y[tr]), X[te],
                                    np.log(np.clip(proba, 1e-12, 1.0)), key[te]))
    med = pd.concat(meds)
    tau = float(np.quantile(med, settings.accept_rate))
    scores = score(y, y_pred, sorted(mics), identical_pairs(mics), time_groups(meta), n_boot=n_boot)
    return {
        "method": how,
        "tau": tau,
        "file_accept_rate": float(np.mean(med <= tau)),
        "n_files": int(med.size),
        "fold_accuracy": [float(v) for v in res["test_accuracy"]],
        "fold_macro_f1": [float(v) for v in res["test_f1_macro"]],
        **{k: scores[k] for k in ("accuracy", "accuracy_lo", "accuracy_hi", "macro_f1", "macro_f1_lo",
                                  "macro_f1_hi", "pair_accuracy", "pair_accuracy_lo", "pair_accuracy_hi")},
    }


def score_heldout(model: TrainedModel, cube, clip_index: np.ndarray, feature_index: np.ndarray, *,
                  n_boot: int = 200) -> dict:
    """Predict held-out clips of the cube lazily with dask-ml's ``ParallelPostFit`` and score them.

    The features stay a dask array of the cube's Zarr chunks; each block is predicted where it
    lives (on the cluster when a client is active). Clips are scored one by one; the unknown
    threshold is applied as ``micfp identify`` does, to 30 s pseudo-files of each recording (for
    which the selected features are gathered here: one clip length of one feature set is small).
    """
    import dask
    from dask_ml.wrappers import ParallelPostFit

    from ..evaluation.evaluate import identical_pairs, score, time_groups

    Xd = cube.features.isel(clip=clip_index, feature=feature_index).data
    ppf = ParallelPostFit(estimator=model.estimator)
    proba_d = ppf.predict_proba(Xd)
    proba, X = dask.compute(proba_d, Xd)  # the features too: file distances need whole pseudo-files
    meta = pd.DataFrame({c: cube[c].values[clip_index] for c in ("session", "start_s", "label", "recording")})
    y = meta["label"].to_numpy()
    pred = model.classes[proba.argmax(axis=1)]
    mics = model.mics
    known = np.isin(y, list(mics))
    key = meta["recording"].astype(str).to_numpy() + ":" + time_groups(meta).astype(str)
    med = _file_distances(model.estimator, model.openset, X, np.log(np.clip(proba, 1e-12, 1.0)), key)
    file_known = pd.Series(known).groupby(key).first()[med.index]
    ok = med.to_numpy() <= model.openset["tau"]
    out = {"sessions": sorted(set(meta["session"])), "n_clips": int(y.size), "n_files": int(med.size),
           "file_accept_rate": float(np.mean(ok[file_known.to_numpy()])) if file_known.any() else float("nan"),
           # pseudo-files of microphones the model never saw: the share the threshold turns away
           "unknown_file_reject_rate": (float(np.mean(~ok[~file_known.to_numpy()])) if (~file_known).any()
                                        else float("nan"))}
    if known.any():
        s = score(y[known], pred[known], sorted(mics), identical_pairs(mics), time_groups(meta[known]),
                  n_boot=n_boot)
        out.update({c: s[c] for c in ("accuracy", "accuracy_lo", "accuracy_hi", "macro_f1", "macro_f1_lo",
                                      "macro_f1_hi", "pair_accuracy", "pair_accuracy_lo", "pair_accuracy_hi",
                                      "confusion")})
    return out


def file_distance(estimator, openset: dict, X, label) -> float:
    """Open-set distance of a whole file (rows of ``X``) to microphone ``label``.

    The clips' residuals from the microphone's training mean are averaged before the
    norm: what the played content adds to each clip largely averages out over a file, a different
    channel does not.
    """
    Z = embed(estimator, X)
    i = int(np.searchsorted(openset["classes"], label))
    r = (Z - openset["means"][i]).mean(axis=0)
    return float(r @ openset["precision"] @ r / Z.shape[1])


def _file_distances(estimator, openset: dict, X, logp: np.ndarray, key: np.ndarray) -> pd.Series:
    """Per pseudo-file (rows sharing ``key``): the winner by mean log-probability, its distance."""
    out = {}
    for k, rows in pd.Series(np.arange(len(key))).groupby(key):
        rows = rows.to_numpy()
        win = openset["classes"][int(np.argmax(logp[rows].mean(axis=0)))]
        out[k] = file_distance(estimator, openset, X[rows], win)
    return pd.Series(out)


def _block_distances(Xb, estimator, openset):
    # distance of each clip to every microphone's training mean, (n, k)
    classes = openset["classes"]
    return np.stack([openset_distance(estimator, openset, Xb, np.full(Xb.shape[0], c)) for c in classes], axis=1)


@reading("cube_path", "feature cube")
def train_model(cube_path: str, settings: TrainSettings, client=None, *, echo=None) -> TrainedModel:
    """Fit, calibrate and (when sessions are held out) score one model on a feature cube.

    Parameters
    ----------
    cube_path : str
        A complete feature cube holding ``settings.feature_set`` and ``settings.clip_seconds``.
    settings : TrainSettings
    client : distributed.Client, optional
        Tuning (dask-ml GridSearchCV), the calibration folds (joblib Dask backend) and held-out
        prediction (ParallelPostFit) run on its cluster; without it, everything runs here.
    echo : callable, optional
        Progress messages.
    """
    import dask

    from ..version import __version__
    from ..evaluation.evaluate import fit_model, time_groups
    from ..artifacts.cube import open_cube
    from ..features.frames import FrameSettings

    echo = echo or (lambda m: None)
    t0 = time.perf_counter()
    cube = open_cube(cube_path)
    cell, X, meta, train_sessions = _selection(cube, settings)
    all_mics = {int(k): v for k, v in cube.attrs["micfp"]["mics"].items()}
    chosen = _chosen_mics(settings.mics, all_mics, cube_path)
    is_train = (meta["session"].isin(train_sessions) & meta["label"].isin(chosen)).to_numpy()
    Xtr, mtr = X[is_train], meta[is_train].reset_index(drop=True)
    y = mtr["label"].to_numpy()
    mics = {lab: all_mics[lab] for lab in sorted(set(y.tolist()))}
    if len(mics) < 2:
        raise ConfigError(f"{cube_path}: the training selection holds {len(mics)} microphone(s); need two")
    echo(f"train: {settings.classifier} on {len(y)} clips of {len(mics)} microphones "
         f"(sessions {', '.join(train_sessions)}, {settings.feature_set} features, {settings.clip_seconds:g} s)")
    groups = time_groups(mtr)
    estimator = fit_model(settings.classifier, Xtr, y, groups, len(mics),
                          scheduler=client if client is not None else "synchronous")
    openset = fit_openset(estimator, Xtr, y)
    echo("train: calibrating on held-out folds")
    cal = calibrate(estimator, Xtr, y, mtr, mics, settings, client=client)
    openset["tau"] = cal["tau"]
    cfg = cube.attrs["micfp"]["config"]
    frame = FrameSettings(**cfg["frame"])
    fsel = np.ones(cube.sizes["feature"], bool) if settings.feature_set == "all" else (
        cube.feature_set == settings.feature_set).values
    names = [str(n) for n in cube.feature.values[fsel]]
    meta_out = {
        "kind": MODEL_KIND, "version": MODEL_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {**asdict(settings), "sessions": list(train_sessions)},
        "feature_set": settings.feature_set, "features": names, "clip_seconds": float(settings.clip_seconds),
        "frame": asdict(frame), "sample_rate": frame.sample_rate,
        "mics": {str(k): v for k, v in mics.items()}, "cube": str(cube_path),
        "n_train_clips": int(len(y)), "params": _params(estimator),
        "calibration": cal, "versions": package_versions(),
    }
    model = TrainedModel(estimator, openset, meta_out)
    held = np.flatnonzero(~meta["session"].isin(train_sessions).to_numpy())
    if held.size:
        echo(f"train: predicting {held.size} held-out clips with ParallelPostFit")
        clip_sel = _fixed_selection(cube, settings)[held]
        with dask.config.set(scheduler=client) if client is not None else dask.config.set(scheduler="threads"):
            model.meta["heldout"] = score_heldout(model, cube, clip_sel, np.flatnonzero(fsel))
    model.meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    model.meta["micfp"] = __version__
    return model


def _chosen_mics(wanted, all_mics: dict[int, str], cube_path) -> list[int]:
    """Labels of the microphones named (by name or label) in ``wanted``; all when empty."""
    if not wanted:
        return sorted(all_mics)
    by_name = {v: k for k, v in all_mics.items()}
    out = []
    for w in wanted:
        w = str(w).strip()
        if w in by_name:
            out.append(by_name[w])
        elif w.isdigit() and int(w) in all_mics:
            out.append(int(w))
        else:
            raise ConfigError(f"{cube_path}: no microphone {w!r} (has {', '.join(f'{k}: {v}' for k, v in sorted(all_mics.items()))})")
    return sorted(set(out))


def _fixed_selection(cube, settings: TrainSettings) -> np.ndarray:
    """Cube clip indices of :func:`evaluate.select`'s rows, in the same order."""
    sel = (cube.segmentation == "fixed").values & np.isclose(cube.clip_seconds.values, settings.clip_seconds)
    if settings.sound_type != "all":
        sel &= (cube.sound_type == settings.sound_type).values
    return np.flatnonzero(sel)


def _params(estimator) -> dict:
    clf = estimator[-1]
    return {k: v for k, v in clf.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}


def package_versions() -> dict:
    import numpy
    import sklearn
    import skops

    from ..version import __version__

    return {"micfp": __version__, "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "skops": skops.__version__}


# -- save / load ---------------------------------------------------------------------------
def _is_model(path) -> bool:
    """True when ``path`` is a micfp model file (its skops schema names micfp's kind)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return MODEL_KIND.encode() in z.read("schema.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def check_model_output(path, *, inputs=()) -> Path:
    """Check that micfp may write the model file ``path`` (new, or a micfp model it replaces)."""
    from ..artifacts.outputs import check_output_file

    return Path(check_output_file(path, inputs=inputs, what="model file", ours=_is_model))


def save_model(model: TrainedModel, path) -> Path:
    """Write ``model`` as a skops file (metadata as JSON inside it)."""
    import skops.io as sio

    path = check_model_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"kind": MODEL_KIND, "version": MODEL_VERSION, "estimator": model.estimator,
               "openset": {k: (np.asarray(v) if k != "tau" else float(v)) for k, v in model.openset.items()},
               "meta_json": json.dumps(model.meta, default=json_default)}
    tmp = path.with_name(path.name + ".tmp")
    sio.dump(payload, tmp)
    tmp.replace(path)
    return path


def load_model(path) -> TrainedModel:
    """Load a model written by :func:`save_model`, refusing anything else.

    Raises
    ------
    InputError
        Missing or unreadable file, an archive that unpacks to far more than its size (nothing
        is loaded), a type outside :data:`TRUSTED_TYPES` (nothing is loaded), not a micfp model,
        trained with incompatible package versions, or open-set arrays that do not fit.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no model file here (make one with `micfp train CUBE {path}`)")
    check_archive(path)  # before anything is unpacked
    try:
        untrusted = sio.get_untrusted_types(file=path)
        types = file_types(path)
    except Exception as exc:
        raise InputError(f"{path}: not a skops model file ({type(exc).__name__}: {exc})") from exc
    # skops itself trusts most of scikit-learn; micfp trusts only what it produces
    refused = sorted({t for t, loader in types if not _allowed(t, loader)} | (set(untrusted) - set(TRUSTED_TYPES)))
    if refused:
        raise InputError(f"{path}: untrusted type(s) {', '.join(refused)} refused; only micfp's own models load")
    try:
        _import_legacy_modules(untrusted)
        payload = sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise InputError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("kind") != MODEL_KIND:
        raise InputError(f"{path}: not a micfp model file")
    if payload.get("version") != MODEL_VERSION:
        raise InputError(f"{path}: model format version {payload.get('version')}, this micfp reads "
                         f"{MODEL_VERSION}; retrain with `micfp train`")
    try:
        meta = json.loads(payload["meta_json"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: model metadata is missing or malformed") from exc
    check_versions(meta.get("versions", {}), path)
    model = TrainedModel(payload["estimator"], dict(payload["openset"]), meta)
    _check_consistent(model, path)
    check_openset(model.openset, model.estimator, path)
    return model


#: Old module paths (before the package was grouped by stage) that saved models may name.
LEGACY_MODULES = {"pipeline.evaluate": "pipeline.evaluation.evaluate"}


def _import_legacy_modules(types) -> None:
    """Make the old module paths a model file names importable: skops imports functions by path."""
    import importlib
    import sys

    for old, new in LEGACY_MODULES.items():
        if any(t.startswith(old + ".") for t in types):
            sys.modules.setdefault(old, importlib.import_module(new))


def file_types(path) -> set[tuple[str, str]]:
    """Every ``(module.name, skops loader)`` a skops file refers to, read from its schema (no loading)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        schema = json.loads(z.read("schema.json"))
    out: set[tuple[str, str]] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node:
                out.add((f"{node.get('__module__')}.{node['__class__']}", str(node.get("__loader__"))))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


_BUILTINS = {f"builtins.{n}" for n in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType",
                                       "slice", "set", "frozenset", "complex", "bytes")}


def _allowed(name: str, loader: str) -> bool:
    if name in TRUSTED_TYPES or name in _BUILTINS:
        return True
    # numpy arrays, scalars and dtypes are stored as data (.npy without pickles, or JSON)
    return name.startswith("numpy.") and loader in ("NdArrayNode", "DTypeNode", "JsonNode")


def check_versions(saved: dict, path) -> None:
    """Refuse a model from another micfp/numpy major or another scikit-learn minor version."""
    now = package_versions()

    def part(v, n):
        return tuple(str(v).split(".")[:n])

    for pkg, n in (("micfp", 1), ("numpy", 1), ("scikit-learn", 2)):
        if pkg not in saved:
            raise InputError(f"{path}: model metadata lacks the {pkg} version; retrain with `micfp train`")
        if part(saved[pkg], n) != part(now[pkg], n):
            raise InputError(f"{path}: trained with {pkg} {saved[pkg]}, this is {now[pkg]}; retrain the model "
                             f"with `micfp train` in this environment")


def _check_consistent(model: TrainedModel, path) -> None:
    """The metadata must describe the estimator and match this micfp's feature code."""
    from ..features import sets as fsets

    meta = model.meta
    try:
        frame = model.frame_settings()
        names, _ = fsets.feature_layout(meta["feature_set"], frame)
    except Exception as exc:
        raise InputError(f"{path}: model metadata does not describe a feature layout this micfp knows: {exc}") \
            from exc
    if names != meta["features"]:
        raise InputError(f"{path}: the model's {len(meta['features'])} {meta['feature_set']} features differ from "
                         f"this micfp's ({len(names)}); retrain the model with `micfp train`")
    n_in = getattr(model.estimator, "n_features_in_", len(names))
    classes = sorted(int(c) for c in model.classes)
    if n_in != len(names) or classes != sorted(model.mics):
        raise InputError(f"{path}: model metadata does not match its estimator (features {n_in} vs "
                         f"{len(names)}, classes {classes} vs {sorted(model.mics)})")


