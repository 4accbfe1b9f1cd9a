"""One evaluation cell: its rows of the cube, its fit and score, and the cluster task that runs it.

Every command that evaluates (``micfp demo``, ``evaluate`` and ``run``) runs :func:`_cell_task`
on the cluster, one task per :class:`CellTask`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..artifacts.kinds import mics_from_attrs, models_from_attrs
from ..artifacts.locks import reading
from ..artifacts.results import CLEAN
from ..errors import ConfigError, InputError
from ..features import clip_lengths, relative
from ..features.sets import SINGLE_SETS
from .auto import choice, fit_classifier
from .files import file_accuracy
from .metrics import group_accuracies, identical_groups, identical_pairs, point_metrics, score
from .models import AUTO, CLASSIFIERS, WITHOUT_PROBABILITIES
from .protocols import (
    ENROLLED,
    FORENSIC_PROTOCOLS,
    PROTOCOLS,
    SCORERS,
    SESSION_PROTOCOLS,
    cap_training,
    check_max_train,
    protocol_splits,
    time_groups,
)

log = logging.getLogger(__name__)


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
        if self.protocol in FORENSIC_PROTOCOLS or self.classifier in SCORERS:
            if self.protocol not in FORENSIC_PROTOCOLS or self.classifier not in SCORERS:
                raise ConfigError(f"the {', '.join(FORENSIC_PROTOCOLS)} protocols run the score model "
                                  f"{', '.join(SCORERS)} and only they do; got {self.classifier!r} under "
                                  f"{self.protocol!r}")
        elif self.classifier not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier {self.classifier!r}; choose from {', '.join(CLASSIFIERS)}")
        elif self.protocol == ENROLLED and self.classifier in WITHOUT_PROBABILITIES:
            raise ConfigError(f"{ENROLLED} scores trials by posterior probabilities; classifier "
                              f"{self.classifier!r} has none")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose from {', '.join(PROTOCOLS)}")

    @property
    def key(self) -> tuple:
        return (self.clip_seconds, self.sound_type, self.feature_set, self.classifier, self.protocol)



# -- cells -----------------------------------------------------------------------------------
#: Clip coordinates a cell's table holds.
META_COLUMNS = ("mic", "label", "session", "recording", "sound_type", "start_s", "clip_seconds")


def select_rows(cube, cell: Cell):
    """A cell's feature rows, unread (:class:`~pipeline.artifacts.rows.FeatureRows`), and its clip table.

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
        cols = set_columns(cube.feature_set, cell.feature_set, with_session=cell.classifier == AUTO)
        features = cube.features
    else:
        c = cube
        sel = (c.segmentation == cell.segmentation).values
        if cell.segmentation == "fixed":
            sel &= clip_lengths.same(c.clip_seconds.values, cell.clip_seconds)
        if cell.sound_type != "all":
            sel &= (c.sound_type == cell.sound_type).values
        rows = np.flatnonzero(sel)
        cols = set_columns(c.feature_set.values, cell.feature_set, with_session=cell.classifier == AUTO)
        meta = pd.DataFrame({k: compact(c[k].values[rows]) for k in META_COLUMNS})
        features = c.features.data
        if hasattr(features, "dask"):  # a lazy xarray cube: read the cell's rows now, block by block
            features, rows = read_rows(features, rows, cols), np.arange(rows.size)
            cols = None
    if cols is not None and cols.size == 0:
        raise ConfigError(f"feature set {cell.feature_set!r} is not in the cube; recompute it with "
                          f"--feature-set {cell.feature_set}")
    if cell.feature_set == relative.SET_NAME:
        rows, meta = _with_reference(rows, meta, cell)
    if rows.size == 0:
        have = _cube_values(cube)
        raise ConfigError(f"no clips for {cell}: the cube has clip lengths {have['clip_seconds']} and sound types "
                          f"{sorted(have['sound_type'])}")
    return FeatureRows([(features, rows, cols)]), meta


def set_columns(owners, feature_set: str, *, with_session: bool = False) -> np.ndarray:
    """Columns of one feature set given each column's set.

    ``all`` is the single-clip sets; ``with_session`` adds the session sets (``session-relative``)
    to it, for ``micfp_auto``, which weighs them against the others and skips them where a clip has
    no reference.
    """
    owners = np.array([str(o) for o in np.asarray(owners)], dtype=object)  # any string dtype (StringDType from Zarr)
    if feature_set != "all":
        return np.flatnonzero(owners == feature_set)
    return np.flatnonzero(np.isin(owners, SINGLE_SETS + ((relative.SET_NAME,) if with_session else ())))


def column_sets(cube, cell: Cell) -> np.ndarray:
    """The feature set of each column of a cell's feature rows (:func:`select_rows`), as strings."""
    from ..artifacts.rows import CubeRows

    owners = np.asarray(cube.feature_set if isinstance(cube, CubeRows) else cube.feature_set.values).astype(str)
    return owners[set_columns(owners, cell.feature_set, with_session=cell.classifier == AUTO)]


def _with_reference(rows: np.ndarray, meta: pd.DataFrame, cell: Cell):
    """The rows of a session-relative cell that have a reference (another microphone at that moment)."""
    keep = relative.usable_rows(meta)
    if not keep.any():
        raise ConfigError(f"no clips for {cell} have session-relative features: each moment was recorded by "
                          "one microphone only (the set needs two or more microphones per session)")
    if not keep.all():
        log.info("%s: %d of %d clips left out (recorded by one microphone only at that moment)",
                 cell, int((~keep).sum()), keep.size)
        rows, meta = rows[keep], meta[keep].reset_index(drop=True)
    return rows, meta


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
             max_train: int | None = None, columns=None, mic_models: dict[int, str] | None = None) -> dict:
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

    ``columns``: the feature set of each column (:func:`column_sets`), which ``micfp_auto`` chooses
    among; its choice in each fold is recorded as ``chosen`` (one entry per fold).

    ``mic_models``: declared microphone models (``{label: model}``, :func:`metrics.identical_groups`);
    ``pair_accuracy`` pools every identical-model group and ``group_accuracy`` holds each group's.
    """
    from ..artifacts.rows import FeatureRows

    if cell.protocol in FORENSIC_PROTOCOLS:
        from .forensic_cell import run_forensic_cell

        return run_forensic_cell(X, meta, cell, mics, n_boot=n_boot, mic_models=mic_models)
    if cell.protocol == ENROLLED:
        from .enrolled import run_enrolled_cell

        return run_enrolled_cell(X, meta, cell, mics, n_boot=n_boot, max_train=max_train, columns=columns,
                                 mic_models=mic_models)
    X = FeatureRows.of(X)
    labels = sorted(mics)
    pair = identical_pairs(mics, mic_models)
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
    sessions = meta["session"].to_numpy()
    models = [fit_classifier(cell.classifier, X_used if tr.size == used.size else X_used[np.searchsorted(used, tr)],
                             y[tr], groups[tr], len(labels), column_sets=columns, sessions=sessions[tr])
              for _, tr, _ in splits]  # one fold: its rows are all of them, no copy
    del X_used
    # pass 2: the test clips, each predicted by the model of its fold; under the session protocol
    # with probabilities, so that runs of clips can be scored as whole files too
    tests = [te for _, _, te in splits]
    by_file = cell.protocol == "session" and cell.segmentation == "fixed" and cell.clip_seconds > 0
    proba = None
    if by_file and all(hasattr(m, "predict_proba") for m in models):
        proba = predict_folds(models, X, tests, len(meta), method="predict_proba")
        pred = [np.asarray(m.classes_)[p.argmax(axis=1)] for m, p in zip(models, proba)]
    else:
        pred = predict_folds(models, X, tests, len(meta))
    y_true, y_pred, g_test, folds = [], [], [], []
    for (name, tr, te), p in zip(splits, pred):
        y_true.append(y[te])
        y_pred.append(p)
        g_test.append(groups[te])
        folds.append({"fold": name, "n_train": int(tr.size), "n_test": int(te.size),
                      **point_metrics(y[te], p, labels, pair)})
    y_true, y_pred, g_test = map(np.concatenate, (y_true, y_pred, g_test))
    out = score(y_true, y_pred, labels, pair, g_test, n_boot=n_boot)
    out["group_accuracy"] = group_accuracies(out["confusion"], labels, identical_groups(mics, mic_models))
    if by_file:
        out["file_accuracy"] = _file_accuracy(meta, y, splits, models, pred, proba, cell.clip_seconds)
    out["folds"] = folds
    out["fold_accuracy"] = [f["accuracy"] for f in folds]
    out["fold_spread"] = {k: {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0}
                          for k in ("accuracy", "macro_f1", "pair_accuracy")
                          for v in [np.array([f[k] for f in folds], float)] if np.isfinite(v).any()}
    out["n_train"] = sum(f["n_train"] for f in folds)
    out["max_train_clips"] = max_train
    chosen = [dict(fold=name, **c) for (name, _, _), m in zip(splits, models) if (c := choice(m))]
    if chosen:
        out["chosen"] = chosen
    out["cell"] = asdict(cell)
    return out


def _file_accuracy(meta, y, splits, models, pred, proba, clip_seconds) -> list[dict]:
    """Whole-file accuracy by file length (:func:`files.file_accuracy`) of a one-fold protocol's test
    clips: summed clip log-probabilities, or votes for a model without probabilities."""
    (_, _, te), model, p = splits[0], models[0], pred[0]
    classes = np.asarray(model.classes_)
    if proba is not None:
        logp = np.log(np.clip(proba[0], 1e-12, 1.0))
    else:
        logp = (p[:, None] == classes[None, :]).astype(float)
    acc = file_accuracy(meta.iloc[te].reset_index(drop=True), y[te], logp, classes, clip_seconds)
    return [{"file_seconds": k, **v} for k, v in acc.items()]


#: Test clips predicted at once: the pipeline's float64 copies of a batch stay small
#: (10,000 x 244 features: 20 MB each).
PREDICT_BATCH = 10_000


def predict_folds(models: list, X, tests: list[np.ndarray], n_rows: int | None = None,
                  batch: int = PREDICT_BATCH, method: str = "predict") -> list[np.ndarray]:
    """Predictions of each fold's model on its test rows: ``[models[k].predict(X[tests[k]])]``
    (``method="predict_proba"``: the probabilities, rows of the model's ``classes_``).

    ``X`` is a matrix or :class:`~pipeline.artifacts.rows.FeatureRows`. Rows are read once, in row
    order, ``batch`` at a time (memory does not grow with the test set); when folds share test
    rows, one pass per fold.
    """
    from ..artifacts.rows import FeatureRows

    X = FeatureRows.of(X)
    n_rows = len(X) if n_rows is None else n_rows
    fold = np.full(n_rows, -1, np.int64)
    for k, te in enumerate(tests):
        if (fold[te] >= 0).any():  # overlapping test sets: fold by fold
            return [predict_folds([m], X, [t], n_rows, batch, method)[0] for m, t in zip(models, tests)]
        fold[te] = k
    rows = np.flatnonzero(fold >= 0)
    out = None
    for a in range(0, rows.size, batch):
        part = rows[a : a + batch]
        Xb, owner = X.take(part), fold[part]
        for k in np.unique(owner):
            mine = owner == k
            p = getattr(models[k], method)(Xb[mine])
            if out is None:
                out = np.empty((n_rows,) + p.shape[1:], p.dtype)
            out[part[mine]] = p
    return [out[te] if out is not None else np.zeros(0, np.int64) for te in tests]


#: Rough fit cost of each classifier relative to logistic regression on the same clips (the
#: tuned models fit a grid of candidates per fold), for ordering cells longest first.
FIT_COST = {"logistic_regression": 1.0, "naive_bayes": 0.3, "decision_tree": 1.0, "knn": 3.0, "svc": 12.0,
            "mlp": 8.0, "random_forest": 6.0, "gradient_boosting": 15.0, "micfp_lr": 12.0, "micfp_svc": 150.0,
            "micfp_et": 20.0, "micfp_verify": 2.0,
            "micfp_auto": 300.0}
PROTOCOL_FOLDS = {"random": 1, "session": 1, "grouped-kfold": 5, "leave-sound-type-out": 5, "verification": 5,
                  "open-set": 5, ENROLLED: 1}


def cell_cost(cell: Cell) -> float:
    """Relative cost of a cell: classifier x folds x clip count (more, shorter clips cost more).

    Only the order matters (:func:`pipeline.cluster.runner.run_tasks` starts the costliest first);
    measured on the thesis-scale ablation, where one SVC cell took 11 s and logistic
    regression cells 0.3-4.6 s.
    """
    length = cell.clip_seconds if cell.clip_seconds > 0 else 1.0
    return FIT_COST.get(cell.classifier, 1.0) * PROTOCOL_FOLDS.get(cell.protocol, 1) * (1.0 + 1.0 / max(length, 0.1))




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
    if cell.segmentation == "fixed" and not clip_lengths.contains(have["clip_seconds"], cell.clip_seconds):
        hint = ("; it holds only silence-split clips: evaluate them with --segmentation silence"
                if not have["clip_seconds"] else "")
        raise ConfigError(f"clip length {cell.clip_seconds} s is not in the cube (has {have['clip_seconds']}){hint}")
    if cell.sound_type != "all" and cell.sound_type not in have["sound_type"]:
        raise ConfigError(f"sound type {cell.sound_type!r} is not in the cube (has {sorted(have['sound_type'])})")
    if cell.protocol in SESSION_PROTOCOLS and len(have["session"]) < 2:
        raise ConfigError(f"{cell.protocol} protocol needs two sessions; the cube has {sorted(have['session'])}")



# -- the cell task: what a worker runs for every cell of demo, evaluate and run --------------
@dataclass(frozen=True)
class WorkCell:
    """One cell of a workflow: an evaluation cell under a condition (``clean`` or degraded)."""

    cell: Cell
    condition: str = CLEAN

    @property
    def key(self) -> str:
        c = self.cell
        return json.dumps([float(c.clip_seconds), c.sound_type, c.feature_set, c.classifier, c.protocol,
                           c.segmentation, self.condition])


@dataclass(frozen=True)
class CellTask:
    """What a worker needs for one cell: the cubes to read (paths) and the cell."""

    cube: str
    work: WorkCell
    n_boot: int
    degraded_cube: str | None = None
    max_train: int | None = None
    uids: tuple = ()  # (path, uid) of the cubes as the client made them, checked by the worker


def cell_data(task: CellTask):
    """The cube, a cell's feature rows (unread, :class:`~pipeline.artifacts.rows.FeatureRows`) and
    its clip table; with a degraded cube, its clips replace the test session's."""
    from ..artifacts.outputs import verify_seen
    from ..artifacts.cube import cached_cube

    for path, uid in task.uids:
        verify_seen(path, uid)  # the client's cube, not one at the same path in the worker's folder
    cube = cached_cube(task.cube)  # opened once per worker process, read without a client
    cell = task.work.cell
    X, meta = select_rows(cube, cell)
    if task.degraded_cube is None:
        return cube, X, meta
    train = pd.unique(meta["session"])[0]  # the session protocol's training session
    keep = (meta["session"] == train).to_numpy()
    Xd, md = select_rows(cached_cube(task.degraded_cube), cell)
    test = (md["session"] != train).to_numpy()
    if not test.any():
        raise InputError(f"{task.degraded_cube}: no degraded test clips for {cell}")
    # Training clips first: the session protocol trains on the first session it meets.
    meta = pd.concat([meta[keep], md[test]], ignore_index=True)
    return cube, X.subset(keep) + Xd.subset(test), meta


def _cell_task(task: CellTask) -> dict:
    """Run one cell on a worker: :func:`run_cell` on the task's rows, with its condition and wall time."""
    from ..cluster.runner import trim_memory

    trim_memory()  # what earlier tasks freed, before this cell's peak adds to it
    t0 = time.perf_counter()
    cube, X, meta = cell_data(task)
    mics = mics_from_attrs(cube.attrs)
    result = run_cell(X, meta, task.work.cell, mics, n_boot=task.n_boot, max_train=task.max_train,
                      columns=column_sets(cube, task.work.cell), mic_models=models_from_attrs(cube.attrs))
    result["condition"] = task.work.condition
    result["seconds"] = time.perf_counter() - t0
    return result


def run_cells(client, tasks: list[CellTask], *, keys=None, on_result=None, quiet: bool = False) -> list[dict]:
    """Run :func:`_cell_task` for every task on the cluster, costliest first; results in order.

    ``on_result(key, result)`` is called as each cell lands (``keys`` default: the task positions).
    """
    from ..cluster.runner import run_tasks

    # Costliest cells first, so no long cell starts last. Each worker keeps a few cubes open,
    # so cells of different conditions can interleave.
    return run_tasks(client, "cells", _cell_task, [(t,) for t in tasks], keys=keys, on_result=on_result,
                     quiet=quiet, cost=[cell_cost(t.work.cell) for t in tasks])


@reading("cube_path", "feature cube")
def evaluate(cube_path: str, cells: list[Cell], client, *, n_boot: int = 500, max_train: int | None = None,
             quiet: bool = False) -> list[dict]:
    """Run ``cells`` of one cube on the cluster (the cell task of every command); one result per cell, in order.

    ``max_train`` caps the training clips of every fit (:func:`cap_training`; default no cap).
    Nothing is written: ``micfp evaluate`` runs a workflow (:mod:`pipeline.workflow.builtin`).
    """
    from ..artifacts.outputs import resolve
    from ..artifacts.cube import open_rows

    check_max_train(max_train)
    cube_path = resolve(cube_path)  # workers may run in another folder
    cube = open_rows(cube_path)  # for the checks: no clip coordinates loaded
    check_cells(cube, cells)  # fail before compute on a cell the cube cannot serve
    uids = ((cube_path, cube.attrs["micfp"].get("uid")),)
    return run_cells(client, [CellTask(cube_path, WorkCell(c), n_boot, max_train=max_train, uids=uids)
                              for c in cells], quiet=quiet)
