"""The numbers of ``micfp report``: every figure the page states, computed from a results set.

:func:`analyse` gathers them (pure pandas/numpy, plus the feature cube for spectral signatures);
:mod:`.answers` turns them into sentences, :mod:`.figures` into PNGs and :mod:`.tables` into
tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts.kinds import mics_from_attrs
from ..errors import InputError
from ..features.clip_lengths import same
from .labels import method_name

THRESHOLDS = (0.95, 0.99)
#: micfp's default model: ``micfp_auto`` choosing among every feature set of the cube. The report
#: quotes the best method of the grid (:func:`choose_methods`); this one wins only a tie.
IMPROVED = ("all", "micfp_auto")
PROTOCOL_ORDER = ("session", "grouped-kfold", "leave-sound-type-out", "random")
METRICS = ("accuracy", "accuracy_lo", "accuracy_hi", "pair_accuracy", "pair_accuracy_lo", "pair_accuracy_hi",
           "macro_f1", "macro_f1_lo", "macro_f1_hi", "n_test")


def cells_frame(ds) -> pd.DataFrame:
    """One row per finished cell: its axes and metrics (cells never run are dropped)."""
    names = [m for m in METRICS if m in ds]
    df = ds[names].to_dataframe().reset_index()
    df = df[df["accuracy"].notna()].copy()
    for c in ("condition", "sound_type", "feature_set", "classifier", "protocol"):
        df[c] = df[c].astype(str)
    return df.reset_index(drop=True)


def choose_methods(df: pd.DataFrame, protocol: str) -> dict:
    """The best method of the grid under ``protocol`` and the thesis baseline to compare it with.

    Both are ranked by mean accuracy over the protocol's clean cells of pooled sound types and
    fixed clips (every clean cell when it has none), ties broken by the identical-pair accuracy
    and then in favour of :data:`IMPROVED`. Improved: the best method of the grid. Baseline:
    thesis features with the best of the thesis's classifiers (generous to the baseline), if run.
    Besides the two methods: their mean accuracies, the number of methods ranked and the runner-up.
    """
    from ..evaluation.models import THESIS_CLASSIFIERS

    clean = df[(df["condition"] == "clean") & (df["sound_type"] == "all") & (df["protocol"] == protocol)
               & (df["clip_seconds"] > 0)]
    if clean.empty:
        clean = df[df["condition"] == "clean"]
    ranked = rank_methods(clean)
    improved = ranked.index[0]
    thesis = [m for m in ranked.index if m[0] == "thesis" and m[1] in THESIS_CLASSIFIERS]
    baseline = thesis[0] if thesis and thesis[0] != improved else None  # None: the baseline won
    runner_up = ranked.index[1] if len(ranked) > 1 else None
    return {"improved": tuple(improved), "baseline": tuple(baseline) if baseline else None,
            # the improved method is whichever scored best on these test results
            "selected_on_test": len(ranked) > 1, "n_methods": len(ranked),
            "improved_accuracy": float(ranked.loc[[improved], "accuracy"].iloc[0]),
            "baseline_accuracy": float(ranked.loc[[baseline], "accuracy"].iloc[0]) if baseline else float("nan"),
            "runner_up": tuple(runner_up) if runner_up else None,
            "runner_up_accuracy": float(ranked.loc[[runner_up], "accuracy"].iloc[0]) if runner_up else float("nan")}


def rank_methods(cells: pd.DataFrame) -> pd.DataFrame:
    """Methods (feature set, classifier) best first: mean accuracy, then mean identical-pair accuracy."""
    g = cells.groupby(["feature_set", "classifier"])
    ranked = pd.DataFrame({"accuracy": g["accuracy"].mean(),
                           "pair_accuracy": g["pair_accuracy"].mean() if "pair_accuracy" in cells else np.nan})
    ranked["preferred"] = [m[1] == IMPROVED[1] for m in ranked.index]  # micfp_auto, on whichever sets
    return ranked.sort_values(["accuracy", "pair_accuracy", "preferred"], ascending=False, na_position="last")


def row_normalised(conf: np.ndarray) -> np.ndarray:
    """A confusion matrix as fractions of each true microphone's clips (rows of a microphone without
    test clips stay 0)."""
    conf = np.asarray(conf, dtype=float)
    return conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)


def pick(df, *, protocol=None, method=None, condition="clean", sound_type=None, clip=None):
    """The rows of ``df`` matching every given axis (``method`` is a (feature set, classifier) pair)."""
    sel = df
    if condition is not None:
        sel = sel[sel["condition"] == condition]
    if protocol is not None:
        sel = sel[sel["protocol"] == protocol]
    if method is not None:
        sel = sel[(sel["feature_set"] == method[0]) & (sel["classifier"] == method[1])]
    if sound_type is not None:
        sel = sel[sel["sound_type"] == sound_type]
    if clip is not None:
        sel = sel[same(sel["clip_seconds"], clip)]
    return sel


def min_clip_length(curve: pd.DataFrame, threshold: float, column: str = "accuracy") -> float:
    """Shortest clip length whose ``column`` reaches ``threshold`` and stays there for longer clips.

    NaN when no tested length reaches it. "Stays" guards against a lucky short length.
    """
    c = curve[curve["clip_seconds"] > 0].sort_values("clip_seconds")
    ok = (c[column].to_numpy() >= threshold)
    if not ok.any() or not ok[-1]:
        return float("nan")
    last_fail = np.flatnonzero(~ok)
    i = last_fail[-1] + 1 if last_fail.size else 0
    return float(c["clip_seconds"].to_numpy()[i])


def signature(cube_path: str | None) -> dict | None:
    """Each microphone's level-normalised long-term spectrum minus the mean over microphones.

    From the ``ltas_mean_*`` features of the cube, one clip length (the longest fixed one, so
    every stretch of audio counts once). Returns band centres (Hz), the per-microphone curves
    (dB), and per-session curves for the session-to-session shift; None without a usable cube.
    """
    if not cube_path or not Path(cube_path).exists():
        return None
    from ..features import open_cube
    from ..features.frames import FrameSettings

    try:
        cube = open_cube(cube_path)
    except Exception:
        return None
    feats = [str(f) for f in cube.feature.values if str(f).startswith("ltas_mean_")]
    if not feats:
        return None
    fixed = cube.clip_seconds.values[cube.segmentation.values.astype(str) == "fixed"]
    sel = cube.segmentation.values.astype(str) == "fixed"
    if fixed.size:
        sel &= same(cube.clip_seconds.values, fixed.max())
    X = cube.features.isel(clip=np.flatnonzero(sel), feature=[list(cube.feature.values.astype(str)).index(f)
                                                              for f in feats]).values.astype(np.float64)
    mics = cube.mic.values[sel].astype(str)
    sessions = cube.session.values[sel].astype(str)
    frame = FrameSettings(**cube.attrs["micfp"]["config"]["frame"])
    edges = frame.band_edges
    centres = np.sqrt(edges[:-1] * edges[1:])[: len(feats)]
    labels = {v: k for k, v in mics_from_attrs(cube.attrs).items()}
    order = sorted(set(mics), key=lambda m: labels.get(m, 0))
    per_mic = np.array([np.nanmean(X[mics == m], axis=0) for m in order])
    rel = per_mic - per_mic.mean(axis=0)
    by_session = {}
    for s in pd.unique(sessions):
        rows = [np.nanmean(X[(mics == m) & (sessions == s)], axis=0) if ((mics == m) & (sessions == s)).any()
                else np.full(len(feats), np.nan) for m in order]
        by_session[str(s)] = np.array(rows)
    return {"freqs": centres, "mics": order, "relative_db": rel, "by_session": by_session,
            "clip_seconds": float(fixed.max()) if fixed.size else 0.0}


def analyse(ds, cube_path: str | None = None) -> dict:
    """Every number the report states, from the results set (and the cube for signatures)."""
    from ..artifacts.kinds import models_from_attrs
    from ..evaluation.metrics import identical_groups

    meta = ds.attrs.get("micfp", {})
    mics = {int(k): v for k, v in meta.get("mics", {}).items()}
    groups = ({g: [mics[k] for k in labs] for g, labs in identical_groups(mics, models_from_attrs(meta)).items()}
              if mics else {"identical pair": list(meta.get("identical_pair", []))})
    pair = [m for names in groups.values() for m in names]
    df = cells_frame(ds)
    if df.empty:
        raise InputError("the results set holds no finished cells")
    protocols = [p for p in PROTOCOL_ORDER if p in set(df["protocol"])]
    main = protocols[0]
    methods = choose_methods(df, main)
    imp = methods["improved"]
    a = {"mics": mics, "pair": pair, "groups": {g: v for g, v in groups.items() if v}, "chance": 1.0 / len(mics) if mics else float("nan"), "protocols": protocols,
         "main_protocol": main, **methods, "df": df}

    # The headline cell: pooled sound types and fixed clips if run, else whatever was.
    for st, fixed in (("all", True), ("all", False), (None, True), (None, False)):
        clean_all = pick(df, protocol=main, method=imp, sound_type=st)
        clean_all = clean_all[clean_all["clip_seconds"] > 0] if fixed else clean_all
        if not clean_all.empty:
            break
    if clean_all.empty:
        raise InputError(f"no clean {main} results for {method_name(*imp)} in the results set")
    longest = float(clean_all["clip_seconds"].max())
    a["longest"] = longest
    head = clean_all[same(clean_all["clip_seconds"], longest)].sort_values("accuracy").iloc[-1]
    a["headline"] = head.to_dict()
    a["group_accuracy"] = _along(ds, "group_accuracy", "identical_group", head)
    a["file_accuracy"] = {float(k): v for k, v in _along(ds, "file_accuracy", "file_seconds", head).items()
                          if np.isfinite(v)}
    a["by_protocol"] = {p: r.iloc[0].to_dict() for p in protocols
                        if not (r := pick(df, protocol=p, method=imp, sound_type="all", clip=longest)).empty}
    # each protocol's own best method (the answers quote it beside the main protocol's)
    a["best_by_protocol"] = {}
    for p in protocols:
        m = choose_methods(df, p)["improved"]
        r = pick(df, protocol=p, method=m, sound_type="all")
        r = r[r["clip_seconds"] > 0] if (r["clip_seconds"] > 0).any() else r
        if not r.empty:
            a["best_by_protocol"][p] = {"method": m, **r.loc[r["clip_seconds"].idxmax()].to_dict()}
    if methods["baseline"]:
        a["baseline_by_protocol"] = {
            p: r.iloc[0].to_dict() for p in protocols
            if not (r := pick(df, protocol=p, method=methods["baseline"], sound_type="all", clip=longest)).empty}
    else:
        a["baseline_by_protocol"] = {}

    # Minimum clip length per sound type (improved method, main protocol, clean).
    curves = pick(df, protocol=main, method=imp)
    curves = curves[curves["clip_seconds"] > 0]
    a["clip_lengths"] = sorted(set(curves["clip_seconds"]))
    mins = {}
    for st, c in curves.groupby("sound_type"):
        mins[st] = {f"{t:.2f}": min_clip_length(c, t) for t in THRESHOLDS}
        mins[st].update({f"{t:.2f}_lo": min_clip_length(c, t, "accuracy_lo") for t in THRESHOLDS})
        best = c.loc[c["accuracy"].idxmax()]
        mins[st]["best_accuracy"] = float(best["accuracy"])
        mins[st]["best_clip"] = float(best["clip_seconds"])
        mins[st]["longest_accuracy"] = float(c.sort_values("clip_seconds")["accuracy"].iloc[-1])
    a["min_clip"] = mins

    # Sound types at the longest length every sound type has.
    per_type = curves[curves["sound_type"] != "all"]
    if not per_type.empty:
        # The longest length every sound type has with at least 30 test clips each (short
        # sound types give few long clips, and their accuracy is then mostly noise).
        by = per_type.groupby("clip_seconds").agg(types=("sound_type", "nunique"), n=("n_test", "min"))
        by = by[by["types"] == by["types"].max()]
        ok = by[by["n"] >= 30]
        clip = float(ok.index.max() if not ok.empty else by["n"].idxmax())
        at = per_type[same(per_type["clip_seconds"], clip)].set_index("sound_type")
        a["sound_types"] = {"clip_seconds": clip, "accuracy": at["accuracy"].to_dict(),
                            "lo": at["accuracy_lo"].to_dict(), "hi": at["accuracy_hi"].to_dict(),
                            "n": at["n_test"].astype(int).to_dict()}
    lsto = pick(df, protocol="leave-sound-type-out", method=imp, sound_type="all")
    if not lsto.empty:
        r = lsto.loc[(lsto["clip_seconds"] - longest).abs().idxmin()]
        a["unseen_sound_type"] = r.to_dict()

    # Robustness: every condition's accuracy relative to clean, per method, at one clip length.
    rob = df[(df["condition"] != "clean") & (df["protocol"] == "session") & (df["sound_type"] == "all")]
    if not rob.empty:
        clip = float(rob["clip_seconds"].max())
        info = {str(c): {k: _scalar(ds[k].sel(condition=c).values) for k in
                         ("condition_kind", "snr_db", "codec", "kbps_requested", "kbps_measured") if k in ds}
                for c in ds.condition.values}
        rows = []
        for (fs, clf), g in df[(df["protocol"] == "session") & (df["sound_type"] == "all")
                               & same(df["clip_seconds"], clip)].groupby(["feature_set", "classifier"]):
            clean = g[g["condition"] == "clean"]
            if clean.empty:
                continue
            for _, r in g.iterrows():
                rows.append({"feature_set": fs, "classifier": clf, "condition": r["condition"],
                             "accuracy": r["accuracy"], "lo": r["accuracy_lo"], "hi": r["accuracy_hi"],
                             "drop": float(clean["accuracy"].iloc[0] - r["accuracy"]), **info.get(r["condition"], {})})
        a["robustness"] = {"clip_seconds": clip, "rows": pd.DataFrame(rows), "conditions": info}

    # Confusions: which pair of microphones is mixed up most (headline cell).
    conf = confusion(ds, head)
    if conf is not None:
        names = [str(x) for x in ds.true_mic.values]
        rates = row_normalised(conf)
        off = rates - np.diag(np.diag(rates))
        i, j = np.unravel_index(np.argmax(off), off.shape)
        a["confused"] = {"true": names[i], "pred": names[j], "rate": float(off[i, j]),
                         "recall": {n: float(rates[k, k]) for k, n in enumerate(names)}}
    a["auto"] = auto_choice(meta.get("auto_choices", []), df, main)
    a["signature"] = signature(cube_path)
    if a["signature"] is not None:
        a["signature_summary"] = _signature_summary(a["signature"], pair)
    return a


def auto_choice(choices: list[dict], df: pd.DataFrame, protocol: str) -> dict | None:
    """What ``micfp_auto`` chose in its headline cell under ``protocol`` (clean, pooled sound types,
    longest fixed clips when run), with that cell's accuracy; None when it was not run.

    Returns ``method`` (e.g. ``"spectral + micfp_svc"``), ``cv_method``, ``cv_scores`` (its first
    fold's, best first), ``feature_set``/``classifier`` of the cell and its ``accuracy`` row.
    """
    mine = [c for c in choices if c["protocol"] == protocol and c.get("condition", "clean") == "clean"]
    if not mine:
        return None
    best = max(mine, key=lambda c: (c["sound_type"] == "all", c["clip_seconds"] > 0, c["clip_seconds"]))
    row = pick(df, protocol=protocol, method=(best["feature_set"], best["classifier"]),
               sound_type=best["sound_type"], clip=best["clip_seconds"])
    fold = best["folds"][0]
    return {"method": best["method"], "cv_method": fold.get("cv_method", ""),
            "cv_scores": dict(sorted(fold.get("cv_scores", {}).items(), key=lambda kv: -kv[1])),
            "cell": (best["feature_set"], best["classifier"]), "clip_seconds": best["clip_seconds"],
            "row": row.iloc[0].to_dict() if not row.empty else None}


def _along(ds, var: str, dim: str, row) -> dict:
    """``var`` of the cell ``row`` names, along its extra dimension ``dim`` (``{}`` when absent):
    each identical-model group's accuracy, or the accuracy of whole files by length."""
    if var not in ds:
        return {}
    sel = {d: row[d] for d in ("condition", "clip_seconds", "sound_type", "feature_set", "classifier", "protocol")
           if d in ds[var].dims}
    v = ds[var].sel(sel)
    keys = v[dim].values
    return {(str(k) if dim != "file_seconds" else float(k)): float(x) for k, x in zip(keys, v.values)}


def _scalar(v):
    v = np.asarray(v).item()
    return v.decode() if isinstance(v, bytes) else v


def confusion(ds, row) -> np.ndarray | None:
    """The confusion matrix of the cell ``row`` names, or None when the results set has none."""
    if "confusion" not in ds:
        return None
    sel = {"condition": row["condition"], "clip_seconds": row["clip_seconds"], "sound_type": row["sound_type"],
           "feature_set": row["feature_set"], "classifier": row["classifier"], "protocol": row["protocol"]}
    return np.asarray(ds["confusion"].sel(sel).values, dtype=float)


def _signature_summary(sig: dict, pair: list[str]) -> dict:
    f, rel, mics = sig["freqs"], sig["relative_db"], sig["mics"]
    out = {"per_mic": {}}
    for k, m in enumerate(mics):
        b = int(np.nanargmax(np.abs(rel[k])))
        out["per_mic"][m] = {"freq": float(f[b]), "db": float(rel[k, b]),
                             "spread": float(np.nanmax(rel[k]) - np.nanmin(rel[k]))}
    spread = np.nanmax(rel, axis=0) - np.nanmin(rel, axis=0)
    b = int(np.nanargmax(spread))
    out["widest"] = {"freq": float(f[b]), "db": float(spread[b])}
    in_pair = [m for m in pair if m in mics]
    if len(in_pair) >= 2:
        d = np.abs(rel[mics.index(in_pair[0])] - rel[mics.index(in_pair[1])])
        b = int(np.nanargmax(d))
        out["pair"] = {"mics": in_pair[:2], "max_db": float(d[b]), "freq": float(f[b]), "mean_db": float(np.nanmean(d))}
        # Between microphones of different models, for scale.
        others = [float(np.nanmean(np.abs(rel[i] - rel[j]))) for i in range(len(mics)) for j in range(i + 1, len(mics))
                  if not (mics[i] in in_pair and mics[j] in in_pair)]
        out["other_mean_db"] = float(np.mean(others)) if others else float("nan")
    sessions = sig["by_session"]
    if len(sessions) >= 2:
        s = list(sessions)
        shift = np.abs(sessions[s[0]] - sessions[s[1]])
        out["session_shift"] = {"sessions": s[:2], "mean_db": float(np.nanmean(shift)),
                                "max_db": float(np.nanmax(shift))}
    return out
