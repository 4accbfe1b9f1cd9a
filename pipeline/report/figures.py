"""The figures of ``micfp report`` and of the evaluation files: every matplotlib call of micfp.

Each ``fig_*`` function draws one PNG from :func:`~.analysis.analyse`'s numbers and returns its
path, or None when the results set holds nothing to draw; :func:`plot_confusion` draws a confusion
matrix in the thesis's style.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis import THRESHOLDS, confusion, pick, rank_methods, row_normalised
from .labels import PROTOCOL_TITLES, method_name, sec


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(conf, names, title: str, path: Path, *, normalise: bool = False) -> Path:
    """A confusion matrix in the thesis's style (scikit-learn display, blue map, counts).

    ``normalise``: each row as fractions of the true microphone's clips (:func:`row_normalised`),
    so microphones with few test clips read on the same scale.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    disp = ConfusionMatrixDisplay(row_normalised(conf) if normalise else np.asarray(conf), display_labels=names)
    disp.plot(ax=ax, cmap="Blues", colorbar=True, values_format=".2f" if normalise else "d", xticks_rotation=35)
    if normalise:
        disp.im_.set_clim(0, 1)
    ax.set_title(title)
    return _save(fig, path)


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
    df = pick(a["df"], protocol=protocol, method=a["improved"])
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
    fig.suptitle(f"{method_name(*a['improved'])}, {PROTOCOL_TITLES.get(protocol, protocol)} (95 % bands)")
    return _save(fig, path)


#: At most this many methods in the every-method figure besides the thesis baseline (the rest are in the table).
METHODS_SHOWN = 4


def fig_methods(a: dict, protocol: str, path: Path) -> Path | None:
    """Accuracy against clip length for the best few methods and the thesis baseline (all sound types, clean).

    The best :data:`METHODS_SHOWN` by mean accuracy (:func:`~.analysis.rank_methods`) and the thesis
    baseline; bands only for the improved method and the baseline, so the lines stay readable.
    """
    df = pick(a["df"], protocol=protocol, sound_type="all")
    df = df[df["clip_seconds"] > 0]
    if df["clip_seconds"].nunique() < 2:
        return None
    ranked = list(rank_methods(df).index)
    shown = ranked[:METHODS_SHOWN]
    if a["baseline"] and tuple(a["baseline"]) in ranked and tuple(a["baseline"]) not in shown:
        shown.append(tuple(a["baseline"]))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
    for m in shown:
        g = pick(df, method=m).sort_values("clip_seconds")
        tag = " (improved)" if m == tuple(a["improved"]) else " (thesis baseline)" if m == a["baseline"] else ""
        main = tag != ""
        line, = ax.plot(g["clip_seconds"], g["accuracy"], marker="o", label=method_name(*m) + tag,
                        lw=2.2 if main else 1.0, alpha=1.0 if main else 0.8)
        if main:
            ax.fill_between(g["clip_seconds"], g["accuracy_lo"], g["accuracy_hi"], color=line.get_color(), alpha=0.12)
    ax.axhline(a["chance"], color="grey", ls="--", lw=0.8, label="chance")
    _clip_axis(ax, df["clip_seconds"])
    rest = len(ranked) - len(shown)
    ax.set(ylabel="accuracy", ylim=(0, 1.02),
           title=f"Best methods, all sound types, {PROTOCOL_TITLES.get(protocol, protocol)}"
                 + (f"\n({rest} more in the table of every cell)" if rest else ""))
    ax.legend(fontsize=7, loc="lower right")
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
    ax.set_title(f"Shortest clip reaching and keeping the accuracy\n{method_name(*a['improved'])}, "
                 f"{a['main_protocol']} protocol (hatched: not reached up to {sec(top)})", fontsize=10)
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
           title=f"Test material degraded (training clean), {sec(rob['clip_seconds'])} clips, session protocol")
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
           title=f"Spectral signatures (level-normalised LTAS, 1/6 octave, {sec(sig['clip_seconds'])} clips)")
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_baseline(a: dict, path: Path) -> Path | None:
    """The thesis baseline beside the improved method, per protocol (all sound types, clean)."""
    from ..evaluation.models import THESIS_CLASSIFIERS

    df = pick(a["df"], sound_type="all", clip=a["longest"])
    base = df[(df["feature_set"] == "thesis") & df["classifier"].isin(THESIS_CLASSIFIERS)]
    imp = pick(df, method=a["improved"])
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
    ax.set(ylim=(0, 1.02), ylabel="accuracy", title=f"Thesis baseline vs improved method ({sec(a['longest'])} clips)")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def fig_confusions(ds, a: dict, folder: Path) -> list[tuple[str, Path]]:
    """Confusion matrices of the improved method and the baseline (headline cell settings), counts and
    row-normalised."""
    names = [str(x) for x in ds.true_mic.values]
    out = []
    h = a["headline"]
    methods = [("improved", a["improved"])] + ([("baseline", a["baseline"])] if a["baseline"] else [])
    for p in a["protocols"]:
        for tag, m in methods:
            r = pick(a["df"], protocol=p, method=m, sound_type="all", clip=h["clip_seconds"])
            if r.empty:
                continue
            row = r.iloc[0]
            conf = confusion(ds, row).astype(int)
            title = f"{method_name(*m)}\n{p} protocol, {sec(row['clip_seconds'])} clips, acc {row['accuracy']:.2f}"
            out.append((title, plot_confusion(conf, names, title, folder / f"confusion-{tag}-{p}.png")))
            # beside the counts: each true microphone's clips as fractions
            frac = title + "\nfraction of each true microphone's clips"
            out.append((frac, plot_confusion(conf, names, frac, folder / f"confusion-{tag}-{p}-normalised.png",
                                             normalise=True)))
    return out
