"""The evaluation grid of ``micfp evaluate`` and ``micfp demo``."""

from __future__ import annotations

import numpy as np

from ..artifacts.kinds import RESULTS_KIND
from .forensic_cell import FALSE_ALARM_RATES
from .metrics import group_accuracies, identical_groups, identical_pairs

#: Forensic metrics of the results set (each with ``_lo``/``_hi``): see docs/spec.md.
FORENSIC_METRICS = ("eer", "cllr", "min_cllr", "eer_identical", "cllr_identical", "min_cllr_identical")


def default_cells(clip_seconds, sound_types, protocols, classifiers=None, feature_sets=None,
                  segmentations=("fixed",)):
    """The evaluation grid of ``micfp evaluate``/``demo``: thesis features for the thesis's
    classifiers, channel features for the tuned ``micfp_*`` models and every feature set (``all``,
    among which it chooses) for ``micfp_auto``, unless feature sets are given.

    ``fixed`` gives a cell per clip length; ``silence`` one cell (the thesis's silence-split
    clips, clip length 0) per other axis.
    """
    from .cell import Cell
    from .models import AUTO, DEFAULT_CLASSIFIERS, THESIS_CLASSIFIERS

    classifiers = tuple(classifiers or DEFAULT_CLASSIFIERS)
    lengths = [(float(clip), "fixed") for clip in clip_seconds] if "fixed" in segmentations else []
    lengths += [(0.0, "silence")] if "silence" in segmentations else []
    cells = []
    for clip, seg in lengths:
        for st in sound_types:
            for prot in protocols:
                for clf in protocol_classifiers(prot, classifiers):
                    # micfp_auto chooses among every feature set of the cube unless sets are given
                    sets = feature_sets or (("thesis",) if clf in THESIS_CLASSIFIERS else
                                            ("all",) if clf == AUTO else ("channel",))
                    cells += [Cell(clip, st, fs, clf, prot, segmentation=seg) for fs in sets]
    return cells


def protocol_classifiers(protocol: str, classifiers) -> tuple[str, ...]:
    """The models a grid runs under ``protocol``: the score model under the forensic protocols
    (whatever classifiers the grid names), those with probabilities under enrolled-verification,
    else ``classifiers``."""
    from .models import WITHOUT_PROBABILITIES
    from .protocols import ENROLLED, FORENSIC_PROTOCOLS, SCORERS

    if protocol in FORENSIC_PROTOCOLS:
        return SCORERS
    if protocol == ENROLLED:
        return tuple(c for c in classifiers if c not in WITHOUT_PROBABILITIES)
    return tuple(classifiers)


#: The forensic curves of a results set: variable -> (record field, its key), NaN-padded along ``curve_point``.
CURVES = {"tippett_llr": ("tippett", "llr"), "tippett_target": ("tippett", "target"),
          "tippett_nontarget": ("tippett", "nontarget"), "det_p_miss": ("det", "p_miss"), "det_p_fa": ("det", "p_fa")}


def _curves(results: list[dict], axes: dict, dims: list[str], shape: tuple) -> dict[str, np.ndarray]:
    """Tippett and DET curves of the forensic cells as arrays (NaN where a cell has none)."""
    n = max((len(r[f][k]) for r in results for f, k in CURVES.values() if f in r), default=0)
    out = {name: np.full(shape + (n,), np.nan) for name in CURVES}
    for r in results:
        pos = tuple(axes[d].index(r["cell"][d]) for d in dims)
        for name, (f, k) in CURVES.items():
            if f in r:
                v = np.asarray(r[f][k], dtype=np.float64)
                out[name][pos + (slice(0, v.size),)] = v
    return out


def auto_choices(results: list[dict]) -> list[dict]:
    """What ``micfp_auto`` chose in each cell that ran it: the cell's axes (and condition), the
    winning ``method`` (``"<feature set> + <classifier>"``, folds joined by ``; `` when they differ)
    and each fold's choice with its cross-validation scores."""
    out = []
    for r in results:
        if not r.get("chosen"):
            continue
        methods = list(dict.fromkeys(f"{c['feature_set']} + {c['classifier']}" for c in r["chosen"]))
        out.append({**r["cell"], "condition": r.get("condition", "clean"), "method": "; ".join(methods),
                    "folds": r["chosen"]})
    return out


def results_dataset(results: list[dict], mics: dict[int, str], models: dict[int, str] | None = None):
    """Results of many cells as the results Dataset of docs/spec.md (NaN where a cell was not run).

    ``file_accuracy`` and ``n_files`` (cell dims x ``file_seconds``): the session protocol's accuracy
    on whole files of each length (runs of consecutive test clips of one recording).
    ``group_accuracy`` (cell dims x ``identical_group``) holds each identical-model group's accuracy
    (:func:`metrics.identical_groups` of ``mics`` and the declared ``models``), from the confusion
    matrices; ``attrs["micfp"]["identical_groups"]`` names each group's microphones.

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
    metrics = ["accuracy", "macro_f1", "weighted_f1", "pair_accuracy", *FORENSIC_METRICS]
    data = {}
    for m in metrics:
        for suffix in ("", "_lo", "_hi"):
            data[m + suffix] = np.full(shape, np.nan)
    for k in ("n_test", "n_train", "n_target", "n_nontarget"):
        data[k] = np.zeros(shape, np.int64)
    conf = np.zeros(shape + (len(labels), len(labels)), np.int64)
    detection = np.full(shape + (len(FALSE_ALARM_RATES),), np.nan)
    for r in results:
        pos = tuple(axes[d].index(r["cell"][d]) for d in dims)
        for k in data:
            # a classification cell has no forensic metrics and a forensic cell no accuracy: NaN (0 for counts)
            data[k][pos] = r.get(k, 0 if data[k].dtype.kind == "i" else np.nan)
        if "confusion" in r:
            conf[pos] = np.asarray(r["confusion"])
        if "unknown_detection" in r:
            detection[pos] = r["unknown_detection"]
    ds = xr.Dataset({k: (dims, v) for k, v in data.items()},
                    coords={**{d: np.asarray(axes[d], dtype=object if d != "clip_seconds" else float)
                               for d in dims},
                            "true_mic": np.asarray(names, dtype=object), "pred_mic": np.asarray(names, dtype=object)})
    ds["confusion"] = (dims + ["true_mic", "pred_mic"], conf)
    if any(r.get("file_accuracy") for r in results):  # session protocol: whole files by length
        from .files import FILE_SECONDS

        facc = np.full(shape + (len(FILE_SECONDS),), np.nan)
        nfiles = np.zeros(shape + (len(FILE_SECONDS),), np.int64)
        for r in results:
            pos = tuple(axes[d].index(r["cell"][d]) for d in dims)
            for f in r.get("file_accuracy", []):
                if f["file_seconds"] in FILE_SECONDS:
                    i = FILE_SECONDS.index(f["file_seconds"])
                    facc[pos + (i,)], nfiles[pos + (i,)] = f["accuracy"], f["n_files"]
        ds["file_accuracy"] = (dims + ["file_seconds"], facc)
        ds["n_files"] = (dims + ["file_seconds"], nfiles)
        ds = ds.assign_coords(file_seconds=np.asarray(FILE_SECONDS, float))
    groups = identical_groups(mics, models)
    if groups:
        gacc = np.full(shape + (len(groups),), np.nan)
        for r in results:
            if "confusion" not in r:  # a forensic cell: its groups' EER and Cllr are *_identical
                continue
            pos = tuple(axes[d].index(r["cell"][d]) for d in dims)
            gacc[pos] = list(group_accuracies(r["confusion"], labels, groups).values())
        ds["group_accuracy"] = (dims + ["identical_group"], gacc)
        ds = ds.assign_coords(identical_group=np.asarray(list(groups), dtype=object))
    ds["unknown_detection"] = (dims + ["false_alarm_rate"], detection)
    ds = ds.assign_coords(false_alarm_rate=np.asarray(FALSE_ALARM_RATES, float))
    curves = _curves(results, axes, dims, shape)
    for name, curve in curves.items():
        ds[name] = (dims + ["curve_point"], curve)
    ds = ds.assign_coords(curve_point=np.arange(next(iter(curves.values())).shape[-1]))
    caps = sorted({r.get("max_train_clips") for r in results}, key=lambda v: (v is not None, v or 0))
    ds.attrs["micfp"] = {"kind": RESULTS_KIND, "complete": True, "mics": {str(k): v for k, v in mics.items()},
                         "identical_pair": [mics[k] for k in identical_pairs(mics, models)],
                         "identical_groups": {g: [mics[k] for k in labs] for g, labs in groups.items()},
                         "models": {str(k): v for k, v in (models or {}).items()},
                         "max_train_clips": caps[0] if len(caps) == 1 else caps}
    if choices := auto_choices(results):
        ds.attrs["micfp"]["auto_choices"] = choices
    return ds
