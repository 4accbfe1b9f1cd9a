"""Train one microphone model on a feature cube and calibrate its "unknown" threshold.

The model is saved, loaded and checked as a file by :mod:`pipeline.artifacts.model`
(:class:`~pipeline.artifacts.model.TrainedModel`, ``save_model``, ``load_model``).

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

import logging
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..features import clip_lengths
from ..artifacts.kinds import MODEL_KIND, mics_from_attrs, models_from_attrs
from ..artifacts.locks import reading
from ..artifacts.model import MODEL_VERSION, TrainedModel, package_versions

log = logging.getLogger(__name__)

#: What ``micfp train`` fits unless told otherwise: feature set and classifier chosen by grouped
#: cross-validation inside the training data (:mod:`pipeline.evaluation.auto`).
DEFAULT_CLASSIFIER = "micfp_auto"


@dataclass(frozen=True)
class TrainSettings:
    """What ``micfp train`` fits.

    Parameters
    ----------
    feature_set : str, optional
        Feature set of the cube to use (``channel``, ``spectral``, ``thesis`` or ``all``); for
        ``micfp_auto`` the sets it chooses among. Default: ``all`` for ``micfp_auto``, else ``channel``.
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

    feature_set: str | None = None
    clip_seconds: float = 2.0
    classifier: str = DEFAULT_CLASSIFIER
    sessions: tuple[str, ...] = ()
    sound_type: str = "all"
    mics: tuple[str, ...] = ()
    accept_rate: float = 0.99

    def __post_init__(self):
        from ..evaluation.models import AUTO, CLASSIFIERS

        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier {self.classifier!r}; choose from {', '.join(CLASSIFIERS)}")
        if self.feature_set is None:  # frozen: set the resolved default once, here
            object.__setattr__(self, "feature_set", "all" if self.classifier == AUTO else "channel")
        if not 0.5 <= self.accept_rate < 1.0:
            raise ConfigError(f"--accept-rate must be in [0.5, 1), got {self.accept_rate}")
        from ..features import relative

        if self.feature_set == relative.SET_NAME:  # `identify` gets one file: no session to compare with
            raise ConfigError(f"micfp train: {relative.SINGLE_FILE_REASON}")


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
    from ..evaluation.cell import Cell, column_sets, select, select_check

    cell = Cell(float(settings.clip_seconds), settings.sound_type, settings.feature_set, settings.classifier,
                "session", "fixed")
    select_check(cube, cell)
    X, meta = select(cube, cell)
    sessions = sorted(set(meta["session"]))
    train_sessions = list(settings.sessions) or sessions
    missing = [s for s in train_sessions if s not in sessions]
    if missing:
        raise ConfigError(f"session(s) {missing} not in the cube for this selection (has {sessions})")
    return cell, X, meta, train_sessions, column_sets(cube, cell)


def _verifier_columns(owners) -> np.ndarray | None:
    """Positions of the verifier's features (:data:`verification.VERIFIER_SET`) among the selection's
    columns (each owned by ``owners``), or None when the selection has none of them.

    The verifier keeps its own features whatever ``micfp_auto`` chooses for the classifier: its score
    model and calibration were measured on those. All the set's bands: on the tuning studio, leaving
    out the bands below 150, 330 or 1000 Hz raised the verifier's EER at 30 s from 0.052 to 0.077,
    0.081 and 0.159 (``micfp train`` on ``micfp simulate --studio dev``, day 1).
    """
    from .verification import VERIFIER_SET

    owners = np.asarray(owners).astype(str)
    return np.flatnonzero(owners == VERIFIER_SET) if (owners == VERIFIER_SET).any() else None


def _calibration_cv(meta: pd.DataFrame):
    """Held-out folds for calibration: by session when there are several, else time blocks."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    from ..evaluation.protocols import time_groups

    sessions = meta["session"].to_numpy()
    if len(set(sessions)) > 1:
        return LeaveOneGroupOut(), pd.factorize(sessions)[0], "leave-one-session-out"
    groups = time_groups(meta)
    k = min(5, len(np.unique(groups)))
    if k < 2:
        raise ConfigError("calibration needs at least two 30 s time blocks of training clips")
    return GroupKFold(n_splits=k), groups, f"{k}-fold grouped (30 s blocks)"


def calibrate(estimator, X, y, meta: pd.DataFrame, mics: dict[int, str], settings: TrainSettings, *,
              client=None, n_boot: int = 200, models: dict[int, str] | None = None) -> dict:
    """Held-out scores and the open-set threshold from out-of-fold predictions.

    Runs scikit-learn's ``cross_validate`` (on the joblib Dask backend when ``client`` is given)
    on clones of the fitted pipeline with its tuned parameters, then scores each held-out fold.
    """
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate

    from ..evaluation.files import fit_file_calibration
    from ..evaluation.metrics import identical_pairs, score
    from ..evaluation.protocols import time_groups

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
    logp_all = np.zeros((y.size, k))
    key = meta["recording"].astype(str).to_numpy() + ":" + time_groups(meta).astype(str)
    meds = []
    for est, tr, te in zip(res["estimator"], res["indices"]["train"], res["indices"]["test"]):
        if est.classes_.size != k:
            raise ConfigError(f"calibration ({how}) leaves a fold without clips of some microphone; "
                              "train on sessions that all hold every microphone")
        proba = est.predict_proba(X[te])
        y_pred[te] = est.classes_[proba.argmax(axis=1)]
        logp_all[te] = np.log(np.clip(proba, 1e-12, 1.0))
        # pseudo-files: the held-out clips of one recording within one 30 s block, scored as
        # `micfp identify` scores a file
        meds.append(_file_distances(est, fit_openset(est, X[tr], y[tr]), X[te],
                                    np.log(np.clip(proba, 1e-12, 1.0)), key[te]))
    med = pd.concat(meds)
    tau = float(np.quantile(med, settings.accept_rate))
    # whole-file probabilities: temperature and length exponent from held-out pseudo-files
    file_cal = fit_file_calibration(meta, logp_all, np.searchsorted(np.unique(y), y))
    scores = score(y, y_pred, sorted(mics), identical_pairs(mics, models), time_groups(meta), n_boot=n_boot)
    return {
        "method": how,
        "tau": tau,
        "file": file_cal,
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

    from ..evaluation.metrics import identical_pairs, score
    from ..evaluation.protocols import time_groups

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
        s = score(y[known], pred[known], sorted(mics), identical_pairs(mics, models_from_attrs(model.meta)),
                  time_groups(meta[known]), n_boot=n_boot)
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
def train_model(cube_path: str, settings: TrainSettings, client=None) -> TrainedModel:
    """Fit, calibrate and (when sessions are held out) score one model on a feature cube.

    Parameters
    ----------
    cube_path : str
        A complete feature cube holding ``settings.feature_set`` and ``settings.clip_seconds``.
    settings : TrainSettings
    client : distributed.Client, optional
        Tuning (dask-ml GridSearchCV), the calibration folds (joblib Dask backend) and held-out
        prediction (ParallelPostFit) run on its cluster; without it, everything runs here.
        Progress is logged (INFO).
    """
    import dask

    from ..version import __version__
    from ..artifacts.cube import open_cube
    from ..evaluation.auto import choice, fit_classifier, single_file_sets
    from ..evaluation.cell import set_columns
    from ..evaluation.models import AUTO
    from ..evaluation.protocols import time_groups
    from ..features.frames import FrameSettings

    t0 = time.perf_counter()
    cube = open_cube(cube_path)
    cell, X, meta, train_sessions, owners = _selection(cube, settings)
    all_mics = mics_from_attrs(cube.attrs)
    chosen = _chosen_mics(settings.mics, all_mics, cube_path)
    is_train = (meta["session"].isin(train_sessions) & meta["label"].isin(chosen)).to_numpy()
    Xtr, mtr = X[is_train], meta[is_train].reset_index(drop=True)
    y = mtr["label"].to_numpy()
    mics = {lab: all_mics[lab] for lab in sorted(set(y.tolist()))}
    models = {lab: m for lab, m in models_from_attrs(cube.attrs).items() if lab in mics}
    if len(mics) < 2:
        raise ConfigError(f"{cube_path}: the training selection holds {len(mics)} microphone(s); need two")
    log.info(f"train: {settings.classifier} on {len(y)} clips of {len(mics)} microphones "
             f"(sessions {', '.join(train_sessions)}, {settings.feature_set} features, {settings.clip_seconds:g} s)")
    groups = time_groups(mtr)
    estimator = fit_classifier(settings.classifier, Xtr, y, groups, len(mics), column_sets=owners,
                               sessions=mtr["session"].to_numpy(), feature_sets=single_file_sets(),
                               scheduler=client if client is not None else "synchronous")
    # the columns of X (the cell's): ``all`` is the single-clip sets, and for micfp_auto also the session
    # sets, which single_file_sets() keeps out of its candidates
    fsel = set_columns(cube.feature_set.values, settings.feature_set, with_session=settings.classifier == AUTO)
    feature_set, auto = settings.feature_set, choice(estimator)
    verifier_cols = _verifier_columns(owners)
    Xv = Xtr[:, verifier_cols] if verifier_cols is not None else None
    vnames = [str(n) for n in cube.feature.values[fsel[verifier_cols]]] if verifier_cols is not None else None
    if auto:  # the model file holds the winner alone, and identify computes only its features
        Xtr, fsel = Xtr[:, estimator.chosen_columns_], fsel[estimator.chosen_columns_]
        feature_set = _set_names(auto["feature_set"])
        estimator = estimator.model_
        log.info(f"train: micfp_auto chose {auto['feature_set']} + {auto['classifier']} ({auto['cv_method']})")
    openset = fit_openset(estimator, Xtr, y)
    log.info("train: calibrating on held-out folds")
    cal = calibrate(estimator, Xtr, y, mtr, mics, settings, client=client, models=models)
    openset["tau"] = cal["tau"]
    cfg = cube.attrs["micfp"]["config"]
    frame = FrameSettings(**cfg["frame"])
    names = [str(n) for n in cube.feature.values[fsel]]
    meta_out = {
        "kind": MODEL_KIND, "version": MODEL_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {**asdict(settings), "sessions": list(train_sessions)},
        "feature_set": feature_set, "features": names, "clip_seconds": float(settings.clip_seconds),
        "auto": auto,  # micfp_auto's choice (None for a named classifier)
        "frame": asdict(frame), "sample_rate": frame.sample_rate,
        "mics": {str(k): v for k, v in mics.items()}, "cube": str(cube_path),
        "models": {str(k): v for k, v in models.items()},
        "n_train_clips": int(len(y)), "params": _params(estimator),
        "calibration": cal, "versions": package_versions(),
    }
    log.info("train: the verifier (score model and its calibration on leave-one-microphone-out trials)")
    from .verification import VERIFIER_SET, fit_verifier

    if Xv is None:  # no channel columns in the selection: the verifier uses the model's own features
        Xv, vset, vnames = Xtr, feature_set, names
    else:
        vset = VERIFIER_SET
    emb, llr_cals, meta_out["verification"] = fit_verifier(Xv, mtr)
    meta_out["verification"].update(feature_set=vset, features=vnames)
    model = TrainedModel(estimator, openset, meta_out, {"embedding": emb, "calibration": llr_cals,
                                                        "segment_clips": meta_out["verification"]["segment_clips"]})
    held = np.flatnonzero(~meta["session"].isin(train_sessions).to_numpy())
    if held.size:
        log.info(f"train: predicting {held.size} held-out clips with ParallelPostFit")
        clip_sel = _fixed_selection(cube, settings)[held]
        with dask.config.set(scheduler=client) if client is not None else dask.config.set(scheduler="threads"):
            model.meta["heldout"] = score_heldout(model, cube, clip_sel, fsel)
    model.meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    model.meta["micfp"] = __version__
    return model


def _set_names(feature_set: str):
    """A chosen feature set as the model file names it: one set's name, or the list of a joined ``a+b``."""
    from ..features.sets import expand

    parts = feature_set.split("+")
    return parts[0] if len(parts) == 1 else list(expand(parts))


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
    sel = (cube.segmentation == "fixed").values & clip_lengths.same(cube.clip_seconds.values, settings.clip_seconds)
    if settings.sound_type != "all":
        sel &= (cube.sound_type == settings.sound_type).values
    return np.flatnonzero(sel)


def _params(estimator) -> dict:
    clf = estimator[-1]
    return {k: v for k, v in clf.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
