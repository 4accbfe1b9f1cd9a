"""``micfp report``: an HTML page with PNG figures that turns a results set into answers.

The page answers the thesis's five questions in sentences filled from the numbers (nothing is
written in advance): can a microphone be identified, what differs between microphones, what
limits it, how the sound type matters, and how short a clip may be. Figures: accuracy and
identical-pair accuracy against clip length per sound type (95 % bands), the minimum clip length
reaching 95 % and 99 %, accuracy under noise and compression, confusion matrices, each
microphone's spectral signature relative to the mean, and the thesis baseline beside the
improved method.

:func:`analyse` computes every number the page shows (pure pandas/numpy); :func:`answers` turns
them into sentences; :func:`write_html_report` draws the figures and writes the page.
"""

from __future__ import annotations

import contextlib
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..artifacts.outputs import check_output_file
from ..artifacts.locks import shared

THRESHOLDS = (0.95, 0.99)
#: The improved method, when the grid has it: micfp's tuned linear model on channel features.
IMPROVED = ("channel", "micfp_lr")
PROTOCOL_ORDER = ("session", "grouped-kfold", "leave-sound-type-out", "random")
PROTOCOL_TITLES = {"session": "session (train day 1, test later sessions)",
                   "grouped-kfold": "grouped k-fold (30 s blocks)",
                   "leave-sound-type-out": "leave one sound type out", "random": "random 80/20 split (thesis)"}
METRICS = ("accuracy", "accuracy_lo", "accuracy_hi", "pair_accuracy", "pair_accuracy_lo", "pair_accuracy_hi",
           "macro_f1", "macro_f1_lo", "macro_f1_hi", "n_test")


# -- numbers ---------------------------------------------------------------------------------
def cells_frame(ds) -> pd.DataFrame:
    """One row per finished cell: its axes and metrics (cells never run are dropped)."""
    names = [m for m in METRICS if m in ds]
    df = ds[names].to_dataframe().reset_index()
    df = df[df["accuracy"].notna()].copy()
    for c in ("condition", "sound_type", "feature_set", "classifier", "protocol"):
        df[c] = df[c].astype(str)
    return df.reset_index(drop=True)


def _method_name(fs: str, clf: str) -> str:
    from .files import CLASSIFIER_TITLES

    return f"{CLASSIFIER_TITLES.get(clf, clf)} on {fs} features"


def choose_methods(df: pd.DataFrame, protocol: str) -> dict:
    """The improved method and the thesis baseline to compare.

    Improved: micfp_lr on channel features if run, else the best mean accuracy (clean, all sound
    types) under ``protocol``. Baseline: thesis features with the best of the thesis's
    classifiers (generous to the baseline), if run.
    """
    from ..evaluation.models import THESIS_CLASSIFIERS

    clean = df[(df["condition"] == "clean") & (df["sound_type"] == "all") & (df["protocol"] == protocol)
               & (df["clip_seconds"] > 0)]
    means = clean.groupby(["feature_set", "classifier"])["accuracy"].mean()
    if means.empty:
        means = df[df["condition"] == "clean"].groupby(["feature_set", "classifier"])["accuracy"].mean()
    improved = IMPROVED if IMPROVED in means.index else means.idxmax()
    base = means[[(fs, c) for fs, c in means.index if fs == "thesis" and c in THESIS_CLASSIFIERS]]
    baseline = base.idxmax() if not base.empty else None
    if baseline == improved:
        baseline = None
    return {"improved": tuple(improved), "baseline": tuple(baseline) if baseline else None,
            "selected_on_test": IMPROVED not in means.index}


def _pick(df, *, protocol=None, method=None, condition="clean", sound_type=None, clip=None):
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
        sel = sel[np.isclose(sel["clip_seconds"], clip)]
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
        sel &= np.isclose(cube.clip_seconds.values, fixed.max())
    X = cube.features.isel(clip=np.flatnonzero(sel), feature=[list(cube.feature.values.astype(str)).index(f)
                                                              for f in feats]).values.astype(np.float64)
    mics = cube.mic.values[sel].astype(str)
    sessions = cube.session.values[sel].astype(str)
    frame = FrameSettings(**cube.attrs["micfp"]["config"]["frame"])
    edges = frame.band_edges
    centres = np.sqrt(edges[:-1] * edges[1:])[: len(feats)]
    labels = {v: int(k) for k, v in cube.attrs["micfp"]["mics"].items()}
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
    from ..evaluation.metrics import identical_pairs

    meta = ds.attrs.get("micfp", {})
    mics = {int(k): v for k, v in meta.get("mics", {}).items()}
    pair = [mics[k] for k in identical_pairs(mics)] if mics else list(meta.get("identical_pair", []))
    df = cells_frame(ds)
    if df.empty:
        raise InputError("the results set holds no finished cells")
    protocols = [p for p in PROTOCOL_ORDER if p in set(df["protocol"])]
    main = protocols[0]
    methods = choose_methods(df, main)
    imp = methods["improved"]
    a = {"mics": mics, "pair": pair, "chance": 1.0 / len(mics) if mics else float("nan"), "protocols": protocols,
         "main_protocol": main, **methods, "df": df}

    # The headline cell: pooled sound types and fixed clips if run, else whatever was.
    for st, fixed in (("all", True), ("all", False), (None, True), (None, False)):
        clean_all = _pick(df, protocol=main, method=imp, sound_type=st)
        clean_all = clean_all[clean_all["clip_seconds"] > 0] if fixed else clean_all
        if not clean_all.empty:
            break
    if clean_all.empty:
        raise InputError(f"no clean {main} results for {_method_name(*imp)} in the results set")
    longest = float(clean_all["clip_seconds"].max())
    a["longest"] = longest
    head = clean_all[np.isclose(clean_all["clip_seconds"], longest)].sort_values("accuracy").iloc[-1]
    a["headline"] = head.to_dict()
    a["by_protocol"] = {p: r.iloc[0].to_dict() for p in protocols
                        if not (r := _pick(df, protocol=p, method=imp, sound_type="all", clip=longest)).empty}
    if methods["baseline"]:
        a["baseline_by_protocol"] = {
            p: r.iloc[0].to_dict() for p in protocols
            if not (r := _pick(df, protocol=p, method=methods["baseline"], sound_type="all", clip=longest)).empty}
    else:
        a["baseline_by_protocol"] = {}

    # Minimum clip length per sound type (improved method, main protocol, clean).
    curves = _pick(df, protocol=main, method=imp)
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
        at = per_type[np.isclose(per_type["clip_seconds"], clip)].set_index("sound_type")
        a["sound_types"] = {"clip_seconds": clip, "accuracy": at["accuracy"].to_dict(),
                            "lo": at["accuracy_lo"].to_dict(), "hi": at["accuracy_hi"].to_dict(),
                            "n": at["n_test"].astype(int).to_dict()}
    lsto = _pick(df, protocol="leave-sound-type-out", method=imp, sound_type="all")
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
                               & np.isclose(df["clip_seconds"], clip)].groupby(["feature_set", "classifier"]):
            clean = g[g["condition"] == "clean"]
            if clean.empty:
                continue
            for _, r in g.iterrows():
                rows.append({"feature_set": fs, "classifier": clf, "condition": r["condition"],
                             "accuracy": r["accuracy"], "lo": r["accuracy_lo"], "hi": r["accuracy_hi"],
                             "drop": float(clean["accuracy"].iloc[0] - r["accuracy"]), **info.get(r["condition"], {})})
        a["robustness"] = {"clip_seconds": clip, "rows": pd.DataFrame(rows), "conditions": info}

    # Confusions: which pair of microphones is mixed up most (headline cell).
    conf = _confusion(ds, head)
    if conf is not None:
        names = [str(x) for x in ds.true_mic.values]
        rates = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
        off = rates - np.diag(np.diag(rates))
        i, j = np.unravel_index(np.argmax(off), off.shape)
        a["confused"] = {"true": names[i], "pred": names[j], "rate": float(off[i, j]),
                         "recall": {n: float(rates[k, k]) for k, n in enumerate(names)}}
    a["signature"] = signature(cube_path)
    if a["signature"] is not None:
        a["signature_summary"] = _signature_summary(a["signature"], pair)
    return a


def _scalar(v):
    v = np.asarray(v).item()
    return v.decode() if isinstance(v, bytes) else v


def _confusion(ds, row) -> np.ndarray | None:
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


# -- sentences -------------------------------------------------------------------------------
def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def _ci(r: dict, k: str = "accuracy") -> str:
    lo, hi = r.get(f"{k}_lo", np.nan), r.get(f"{k}_hi", np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return _pct(r.get(k))
    return f"{_pct(r.get(k))} (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"


def _sec(x: float) -> str:
    return f"{x:g} s"


def _hz(f: float) -> str:
    return f"{f / 1000:.1f} kHz" if f >= 1000 else f"{f:.0f} Hz"


def answers(a: dict) -> list[tuple[str, str]]:
    """The five questions, each answered in sentences built from :func:`analyse`'s numbers."""
    imp = _method_name(*a["improved"])
    main = a["main_protocol"]
    h = a["headline"]
    chance = a["chance"]
    n_mics = len(a["mics"])
    out = []

    # 1. Possible?
    lo = h.get("accuracy_lo", np.nan)
    if np.isfinite(lo) and lo >= 0.9:
        verdict = "Yes."
    elif np.isfinite(lo) and lo > chance:
        verdict = "Partly: clearly better than chance, but not reliably."
    elif h["accuracy"] > chance:
        verdict = "Not shown: the accuracy is above chance, but its confidence interval reaches chance level."
    else:
        verdict = "No: the accuracy is at chance level."
    s = (f"{verdict} Under the {PROTOCOL_TITLES.get(main, main)} protocol, {imp} names the right microphone out of "
         f"{n_mics} for {_ci(h)} of {int(h['n_test'])} test clips of {_sec(a['longest'])} (chance: {_pct(chance)}).")
    others = [f"{p} {_ci(r)}" for p, r in a["by_protocol"].items() if p != main]
    if others:
        s += " Other protocols: " + "; ".join(others) + "."
    out.append(("Can a microphone be identified from its recordings alone?", s))

    # 2. What differs?
    ss = a.get("signature_summary")
    if ss:
        parts = [f"{m} {v['db']:+.1f} dB at {_hz(v['freq'])}" for m, v in ss["per_mic"].items()]
        s = (f"Their long-term spectra, level-normalised: the microphones differ most at {_hz(ss['widest']['freq'])}, "
             f"where they span {ss['widest']['db']:.1f} dB. Each microphone's largest departure from the mean: "
             + "; ".join(parts) + ".")
        if "pair" in ss:
            p = ss["pair"]
            s += (f" The two units of the same model ({' and '.join(p['mics'])}) differ by {p['mean_db']:.2f} dB on "
                  f"average (at most {p['max_db']:.2f} dB, at {_hz(p['freq'])}), against {ss['other_mean_db']:.2f} dB "
                  "between microphones of different models.")
    else:
        rec = a.get("confused", {}).get("recall", {})
        s = ("No feature cube with channel features was available for spectral signatures. Per-microphone recall: "
             + "; ".join(f"{m} {_pct(v)}" for m, v in rec.items()) + ".")
    out.append(("How do the microphones differ in the sound they capture?", s))

    # 3. What limits it?
    bits = []
    if a["pair"] and np.isfinite(h.get("pair_accuracy", np.nan)):
        bits.append(f"the identical pair ({' and '.join(a['pair'])}) is told apart in {_ci(h, 'pair_accuracy')} of "
                    f"its clips, against {_pct(h['accuracy'])} overall")
    if "confused" in a and a["confused"]["rate"] > 0:
        c = a["confused"]
        bits.append(f"the most frequent confusion is {c['true']} taken for {c['pred']} "
                    f"({_pct(c['rate'])} of its clips)")
    if ss and "session_shift" in ss and "pair" in ss:
        sh = ss["session_shift"]
        bits.append(f"the same microphone's spectrum moves by {sh['mean_db']:.2f} dB on average between sessions "
                    f"{' and '.join(sh['sessions'])} (re-positioning), "
                    + ("more than" if sh["mean_db"] > ss["pair"]["mean_db"] else "less than")
                    + f" the {ss['pair']['mean_db']:.2f} dB between the identical units")
    for by, m in ((a["by_protocol"], a["improved"]), (a["baseline_by_protocol"], a["baseline"])):
        rand, sess = by.get("random"), by.get("session")
        if rand is not None and sess is not None:
            bits.append(f"with {_method_name(*m)}, a random split of clips scores {_pct(rand['accuracy'])} against "
                        f"{_pct(sess['accuracy'])} when testing on another session: the difference is content and "
                        "session leaking into the random split")
            break
    rob = a.get("robustness")
    if rob is not None and not rob["rows"].empty:
        r = rob["rows"]
        r = r[(r["feature_set"] == a["improved"][0]) & (r["classifier"] == a["improved"][1])]
        for kind, label in (("noise", "noise added to the test audio"), ("codec", "lossy compression of the test audio")):
            k = r[r["condition_kind"] == kind] if "condition_kind" in r.columns else r.iloc[0:0]
            if not k.empty:
                w, b = k.loc[k["drop"].idxmax()], k.loc[k["drop"].idxmin()]
                mild = (f"{100 * b['drop']:.1f} points with {b['condition']} ({_pct(b['accuracy'])}) to "
                        if len(k) > 1 else "")
                bits.append(f"{label} costs {mild}{100 * w['drop']:.1f} points with "
                            f"{w['condition']} ({_pct(w['accuracy'])}), {_sec(rob['clip_seconds'])} clips")
    s = ("What limits it: " + "; ".join(bits) + ".") if bits else "The results set holds no cells that isolate a limit."
    out.append(("What limits or hinders telling them apart?", s[0].upper() + s[1:]))

    # 4. Sound type.
    st = a.get("sound_types")
    if st:
        acc = st["accuracy"]
        best, worst = max(acc, key=acc.get), min(acc, key=acc.get)
        s = (f"With {_sec(st['clip_seconds'])} clips, {best} gives the highest accuracy ({_pct(acc[best])}) "
             f"and {worst} the lowest ({_pct(acc[worst])}); "
             + ", ".join(f"{t} {_pct(v)} (n = {st['n'][t]})" for t, v in sorted(acc.items())) + ".")
    else:
        s = (f"This grid pools the sound types (pooled accuracy {_pct(h['accuracy'])}); a grid with "
             "sound_types = [\"each\"] (workflows/ablation.toml) compares them.")
    if "unseen_sound_type" in a:
        u = a["unseen_sound_type"]
        s += (f" Trained without a sound type and tested on it, accuracy is {_ci(u)}, against {_pct(h['accuracy'])} "
              "when every sound type is seen in training.")
    out.append(("How do speech, noise and other kinds of sound affect the result?", s))

    # 5. Minimum length.
    mc = a["min_clip"]
    lengths = ", ".join(_sec(x) for x in a["clip_lengths"])
    parts = []
    for stype in (["all"] if "all" in mc else []) + sorted(k for k in mc if k != "all"):
        m = mc[stype]
        name = "all sound types pooled" if stype == "all" else stype
        reached = [f"{_sec(m[f'{t:.2f}'])} for {t * 100:g} %" for t in THRESHOLDS if np.isfinite(m[f"{t:.2f}"])]
        if reached:
            parts.append(f"{name}: " + ", ".join(reached))
        elif m["best_accuracy"] >= THRESHOLDS[0]:
            parts.append(f"{name}: {THRESHOLDS[0] * 100:g} % reached at {_sec(m['best_clip'])} "
                         f"({_pct(m['best_accuracy'])}) but not kept at longer clips ({_pct(m['longest_accuracy'])} "
                         f"at {_sec(max(a['clip_lengths']))})")
        else:
            parts.append(f"{name}: {THRESHOLDS[0] * 100:g} % not reached (best {_pct(m['best_accuracy'])} at "
                         f"{_sec(m['best_clip'])})")
    s = (f"Tested clip lengths: {lengths} ({imp}, {main} protocol). Shortest length reaching and keeping the accuracy: "
         + "; ".join(parts) + ".")
    out.append(("What minimum length of recording is needed?", s))
    return out


# -- figures ---------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    _plt().close(fig)
    return path


def _clip_axis(ax, clips) -> None:
    """Log-scaled clip-length axis labelled at the tested lengths only."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ticks = sorted(set(clips))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{x:g}" for x in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("clip length (s)")


def fig_clip_curves(a: dict, protocol: str, path: Path) -> Path | None:
    """Accuracy and identical-pair accuracy against clip length, one line per sound type."""
    df = _pick(a["df"], protocol=protocol, method=a["improved"])
    df = df[df["clip_seconds"] > 0]
    if df["clip_seconds"].nunique() < 2:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, sharey=True)
    for ax, k, title in ((axes[0], "accuracy", "accuracy"), (axes[1], "pair_accuracy", "identical-pair accuracy")):
        for st, g in sorted(df.groupby("sound_type"), key=lambda t: (t[0] != "all", t[0])):
            g = g.sort_values("clip_seconds")
            line, = ax.plot(g["clip_seconds"], g[k], marker="o", lw=2.2 if st == "all" else 1.3,
                            color="black" if st == "all" else None, label=st)
            if g[f"{k}_lo"].notna().any():
                ax.fill_between(g["clip_seconds"], g[f"{k}_lo"], g[f"{k}_hi"], color=line.get_color(), alpha=0.15)
        for t in THRESHOLDS:
            ax.axhline(t, color="grey", ls=":", lw=0.8)
        _clip_axis(ax, df["clip_seconds"])
        ax.set_title(title)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("fraction of test clips")
    axes[1].legend(title="sound type", fontsize=8, loc="lower right")
    fig.suptitle(f"{_method_name(*a['improved'])}, {PROTOCOL_TITLES.get(protocol, protocol)} (95 % bands)")
    return _save(fig, path)


def fig_methods(a: dict, protocol: str, path: Path) -> Path | None:
    """Accuracy against clip length for every feature set x classifier (all sound types, clean)."""
    df = _pick(a["df"], protocol=protocol, sound_type="all")
    df = df[df["clip_seconds"] > 0]
    if df["clip_seconds"].nunique() < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
    for (fs, clf), g in df.groupby(["feature_set", "classifier"]):
        g = g.sort_values("clip_seconds")
        line, = ax.plot(g["clip_seconds"], g["accuracy"], marker="o", label=f"{clf} / {fs}",
                        lw=2.2 if (fs, clf) == tuple(a["improved"]) else 1.2)
        ax.fill_between(g["clip_seconds"], g["accuracy_lo"], g["accuracy_hi"], color=line.get_color(), alpha=0.1)
    ax.axhline(a["chance"], color="grey", ls="--", lw=0.8, label="chance")
    _clip_axis(ax, df["clip_seconds"])
    ax.set(ylabel="accuracy", ylim=(0, 1.02),
           title=f"Every method, all sound types, {protocol} protocol")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def fig_min_clip(a: dict, path: Path) -> Path | None:
    """Minimum clip length reaching 95 % and 99 % per sound type (hatched: not reached)."""
    mc = a["min_clip"]
    if not mc:
        return None
    plt = _plt()
    types = (["all"] if "all" in mc else []) + sorted(k for k in mc if k != "all")
    top = max(a["clip_lengths"]) if a["clip_lengths"] else 1.0
    fig, ax = plt.subplots(figsize=(8, 4.4), dpi=100)
    x = np.arange(len(types))
    for i, t in enumerate(THRESHOLDS):
        vals = np.array([mc[s][f"{t:.2f}"] for s in types])
        reached = np.isfinite(vals)
        ax.bar(x[reached] + (i - 0.5) * 0.38, vals[reached], 0.38, label=f"{t * 100:g} %", color=f"C{i}")
        ax.bar(x[~reached] + (i - 0.5) * 0.38, np.full((~reached).sum(), top * 1.15), 0.38, color="none",
               edgecolor=f"C{i}", hatch="//", label=f"{t * 100:g} % not reached" if (~reached).any() else None)
    ax.set_xticks(x)
    ax.set_xticklabels(types, rotation=20)
    ax.set_ylabel("minimum clip length (s)")
    ax.set_ylim(0, top * 1.3)
    ax.set_title(f"Shortest clip reaching and keeping the accuracy\n{_method_name(*a['improved'])}, "
                 f"{a['main_protocol']} protocol (hatched: not reached up to {_sec(top)})", fontsize=10)
    ax.legend(fontsize=8, ncol=4, loc="upper center")
    return _save(fig, path)


def fig_robustness(a: dict, path: Path) -> Path | None:
    """Accuracy under each noise level and codec setting (session protocol, all sound types)."""
    rob = a.get("robustness")
    if rob is None or rob["rows"].empty:
        return None
    rows = rob["rows"]
    info = rob["conditions"]

    def order(c):
        i = info.get(c, {})
        kind = i.get("condition_kind", "clean")
        return ({"clean": 0, "noise": 1, "codec": 2}.get(kind, 3), -(i.get("snr_db") or 0) if kind == "noise" else 0,
                i.get("codec", ""), -(i.get("kbps_requested") or 0))

    conds = sorted(rows["condition"].unique(), key=order)
    methods = list(rows.groupby(["feature_set", "classifier"]).groups)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(conds) + 2), 4.2), dpi=100)
    w = 0.8 / max(1, len(methods))
    for k, (fs, clf) in enumerate(methods):
        g = rows[(rows["feature_set"] == fs) & (rows["classifier"] == clf)].set_index("condition").reindex(conds)
        xs = np.arange(len(conds)) + (k - (len(methods) - 1) / 2) * w
        err = np.vstack([g["accuracy"] - g["lo"], g["hi"] - g["accuracy"]]).clip(min=0)
        ax.bar(xs, g["accuracy"], w, yerr=np.nan_to_num(err), capsize=2, label=f"{clf} / {fs}")
    labels = []
    for c in conds:
        i = info.get(c, {})
        km = i.get("kbps_measured")
        labels.append(f"{c}\n({km:.0f} kbit/s)" if km is not None and np.isfinite(km) else c)
    ax.set_xticks(np.arange(len(conds)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.axhline(a["chance"], color="grey", ls="--", lw=0.8)
    ax.set(ylim=(0, 1.02), ylabel="accuracy",
           title=f"Test material degraded (training clean), {_sec(rob['clip_seconds'])} clips, session protocol")
    ax.legend(fontsize=7)
    return _save(fig, path)


def fig_signature(a: dict, path: Path) -> Path | None:
    """Each microphone's long-term spectrum relative to the mean of all microphones."""
    sig = a.get("signature")
    if sig is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    for k, m in enumerate(sig["mics"]):
        ax.semilogx(sig["freqs"], sig["relative_db"][k], label=m, lw=1.6, ls="--" if m in a["pair"][1:] else "-")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="band centre frequency (Hz)", ylabel="dB relative to the mean of all microphones",
           title=f"Spectral signatures (level-normalised LTAS, 1/6 octave, {_sec(sig['clip_seconds'])} clips)")
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_baseline(a: dict, path: Path) -> Path | None:
    """The thesis baseline beside the improved method, per protocol (all sound types, clean)."""
    from ..evaluation.models import THESIS_CLASSIFIERS

    df = _pick(a["df"], sound_type="all", clip=a["longest"])
    base = df[(df["feature_set"] == "thesis") & df["classifier"].isin(THESIS_CLASSIFIERS)]
    imp = _pick(df, method=a["improved"])
    if base.empty or imp.empty:
        return None
    protocols = [p for p in a["protocols"] if p in set(df["protocol"])]
    series = [(f"{clf} / thesis", base[base["classifier"] == clf]) for clf in sorted(base["classifier"].unique())]
    series.append((f"{a['improved'][1]} / {a['improved'][0]} (improved)", imp))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7, 2.2 * len(protocols) + 2), 4.4), dpi=100)
    w = 0.85 / len(series)
    for k, (label, g) in enumerate(series):
        g = g.set_index("protocol").reindex(protocols)
        xs = np.arange(len(protocols)) + (k - (len(series) - 1) / 2) * w
        err = np.vstack([g["accuracy"] - g["accuracy_lo"], g["accuracy_hi"] - g["accuracy"]]).clip(min=0)
        ax.bar(xs, g["accuracy"], w, yerr=np.nan_to_num(err), capsize=2, label=label,
               color="C3" if "improved" in label else None, alpha=1.0 if "improved" in label else 0.75)
    ax.set_xticks(np.arange(len(protocols)))
    ax.set_xticklabels(protocols)
    ax.axhline(a["chance"], color="grey", ls="--", lw=0.8)
    ax.set(ylim=(0, 1.02), ylabel="accuracy", title=f"Thesis baseline vs improved method ({_sec(a['longest'])} clips)")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def fig_confusions(ds, a: dict, folder: Path) -> list[tuple[str, Path]]:
    """Confusion matrices of the improved method and the baseline (headline cell settings)."""
    from .files import plot_confusion

    names = [str(x) for x in ds.true_mic.values]
    out = []
    h = a["headline"]
    methods = [("improved", a["improved"])] + ([("baseline", a["baseline"])] if a["baseline"] else [])
    for p in a["protocols"]:
        for tag, m in methods:
            r = _pick(a["df"], protocol=p, method=m, sound_type="all", clip=h["clip_seconds"])
            if r.empty:
                continue
            row = r.iloc[0]
            conf = _confusion(ds, row).astype(int)
            title = f"{_method_name(*m)}\n{p} protocol, {_sec(row['clip_seconds'])} clips, acc {row['accuracy']:.2f}"
            out.append((title, plot_confusion(conf, names, title, folder / f"confusion-{tag}-{p}.png")))
    return out


# -- the page --------------------------------------------------------------------------------
def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:g}"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}img{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
.answers dt{font-weight:600;margin-top:.8em}.answers dd{margin-left:1.2em}.note{color:#666;font-size:.9em}"""


#: What marks an HTML page as micfp's (only such a page is replaced).
GENERATOR = '<meta name="generator" content="micfp">'


def _is_html_report(path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return GENERATOR in head or "<title>micfp report:" in head


def write_html_report(results, html_path=None, *, cube: str | None = None) -> Path:
    """Write the report page and its PNG figures; returns the HTML path.

    Parameters
    ----------
    results : str or Path
        A results set (``results.zarr`` or ``.nc``), from ``micfp run`` or ``micfp evaluate``.
    html_path : str or Path, optional
        Default ``report/index.html`` beside the results set; figures go to ``figures/`` beside it.
    cube : str, optional
        The feature cube for spectral signatures; default the cube named in the results set.
    """
    from ..artifacts.results import open_results

    results = Path(results)
    html_path = Path(html_path) if html_path else results.parent / "report" / "index.html"
    html_path = Path(check_output_file(html_path, inputs=(results,), what="HTML report", ours=_is_html_report))
    ds = open_results(results)
    meta = ds.attrs["micfp"]
    figs_dir = html_path.parent / "figures"
    if figs_dir.exists() and html_path.exists():  # old figures of micfp's report here (checked above)
        for old in figs_dir.glob("*.png"):
            old.unlink()
    cube = cube or meta.get("cube")
    with shared(cube, what="feature cube") if cube else contextlib.nullcontext():
        a = analyse(ds, cube)
    qa = answers(a)

    sections = []
    rel = lambda p: html.escape(str(Path(p).relative_to(html_path.parent)))  # noqa: E731

    def img(p, alt):
        return f'<p><img src="{rel(p)}" alt="{html.escape(alt)}"></p>' if p else ""

    dl = "".join(f"<dt>{i}. {html.escape(q)}</dt><dd>{html.escape(ans)}</dd>" for i, (q, ans) in enumerate(qa, 1))
    sections.append(f'<h2>The five questions</h2><dl class="answers">{dl}</dl>')
    note = (" It was chosen as the best on the same test results, so its numbers are optimistic."
            if a["selected_on_test"] else "")
    sections.append(f'<p class="note">Improved method: {html.escape(_method_name(*a["improved"]))}; thesis baseline: '
                    f'{html.escape(_method_name(*a["baseline"])) if a["baseline"] else "not in this grid"} (the best '
                    f'thesis classifier on thesis features).{note} Intervals are 95 % block-bootstrap intervals over '
                    "30 s blocks of test audio.</p>")

    parts = [img(fig_clip_curves(a, p, figs_dir / f"clip-length-{p}.png"), f"accuracy against clip length, {p}")
             for p in a["protocols"]]
    parts += [img(fig_methods(a, a["main_protocol"], figs_dir / "methods.png"), "every method against clip length")]
    if any(parts):
        sections.append("<h2>Accuracy against clip length</h2>" + "".join(parts))
    mc = a["min_clip"]
    if mc:
        rows = [{"sound type": st, **{f"≥{t * 100:g} % (point)": _fmt(v[f"{t:.2f}"]) for t in THRESHOLDS},
                 **{f"≥{t * 100:g} % (CI lower bound)": _fmt(v[f"{t:.2f}_lo"]) for t in THRESHOLDS},
                 "best accuracy": f"{v['best_accuracy']:.3f} at {v['best_clip']:g} s"} for st, v in mc.items()]
        sections.append("<h2>Minimum clip length</h2>" + img(fig_min_clip(a, figs_dir / "min-clip-length.png"),
                                                              "minimum clip length")
                        + _table(pd.DataFrame(rows)) + '<p class="note">Seconds; the shortest tested length from '
                        "which on the accuracy stays at or above the threshold; – not reached.</p>")
    rob = a.get("robustness")
    if rob is not None:
        info = pd.DataFrame([{"condition": c, **{k: (_fmt(v) if isinstance(v, float) else v) for k, v in i.items()}}
                             for c, i in rob["conditions"].items()])
        sections.append("<h2>Noise and compression</h2>" + img(fig_robustness(a, figs_dir / "robustness.png"),
                                                                "accuracy under noise and compression")
                        + _table(info) + '<p class="note">Only the test session is degraded; models train on clean '
                        "audio. Bit rates are measured from the encoded bytes.</p>")
    sig = fig_signature(a, figs_dir / "spectral-signature.png")
    if sig:
        sections.append("<h2>What differs between microphones</h2>" + img(sig, "spectral signatures"))
    base = fig_baseline(a, figs_dir / "baseline-vs-improved.png")
    if base:
        sections.append("<h2>Thesis baseline and improved method</h2>" + img(base, "baseline vs improved"))
    confs = fig_confusions(ds, a, figs_dir)
    if confs:
        sections.append("<h2>Confusion matrices</h2>" + "".join(img(p, t) for t, p in confs))
    table = a["df"][["condition", "protocol", "feature_set", "classifier", "sound_type", "clip_seconds", "accuracy",
                     "accuracy_lo", "accuracy_hi", "pair_accuracy", "n_test"]].copy()
    table = table.sort_values(["condition", "protocol", "feature_set", "classifier", "sound_type", "clip_seconds"])
    for c in ("accuracy", "accuracy_lo", "accuracy_hi", "pair_accuracy"):
        table[c] = table[c].map(lambda v: f"{v:.3f}" if np.isfinite(v) else "–")
    sections.append(f"<h2>Every cell ({len(table)})</h2>" + _table(table))

    title = f"micfp report: {meta.get('workflow', results.name)}"
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR}"
            f"<title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class=\"note\">Results: {html.escape(str(results))}; {len(a['df'])} cells; microphones: "
            f"{html.escape(', '.join(a['mics'].values()))}.</p>" + "".join(sections) + "</body></html>")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(page, encoding="utf-8")
    (html_path.parent / "answers.json").write_text(json.dumps([{"question": q, "answer": t} for q, t in qa], indent=1))
    return html_path
