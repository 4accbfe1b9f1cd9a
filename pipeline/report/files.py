"""Report files from evaluation results: confusion-matrix figures, metrics JSON/CSV, summary table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import plot_confusion
from .labels import CLASSIFIER_TITLES, chosen

#: The metrics of :func:`metrics_frame`: classification, then forensic (verification, open-set).
METRICS = ("accuracy", "macro_f1", "weighted_f1", "pair_accuracy", "eer", "cllr", "min_cllr", "eer_identical",
           "cllr_identical", "min_cllr_identical")


def metrics_frame(results: list[dict]) -> pd.DataFrame:
    """One row per cell: the cell's axes and its metrics with confidence bounds."""
    rows = []
    for r in results:
        row = dict(r["cell"])
        if "condition" in r:  # a workflow's test conditions (noise, codecs): otherwise rows would repeat
            row["condition"] = r["condition"]
        for k in METRICS:
            for s in ("", "_lo", "_hi"):
                row[k + s] = r.get(k + s, np.nan)  # a forensic cell has no accuracy, a classifier no EER
        for k in ("n_test", "n_target", "n_nontarget"):
            row[k] = r.get(k, 0)
        # spread over folds: the second kind of interval, for protocols with several folds
        for k, v in r.get("fold_spread", {}).items():
            row[f"{k}_fold_mean"], row[f"{k}_fold_std"] = v["mean"], v["std"]
        row["n_folds"] = len(r.get("folds", [])) or None
        row["chosen"] = chosen(r)  # micfp_auto's winning feature set + classifier ("" for a fixed method)
        rows.append(row)
    return pd.DataFrame(rows)


def per_mic_frame(results: list[dict], mics: dict[int, str]) -> pd.DataFrame:
    """The classification-report table: precision, recall, F1 and support per microphone and cell."""
    rows = []
    for r in results:
        for lab, m in r.get("per_mic", {}).items():
            rows.append({**r["cell"], "mic": mics[int(lab)], "label": int(lab), **m})
    return pd.DataFrame(rows)


def _slug(*parts) -> str:
    return "-".join(str(p).replace(" ", "_").replace("/", "_") for p in parts)


def write_report(results: list[dict], mics: dict[int, str], out_dir, *, extra: dict | None = None) -> dict:
    """Write ``metrics.json``, ``metrics.csv``, ``classification_report.csv``, ``summary.txt``
    (:func:`summary_table`) and confusion PNGs.

    Returns the paths written. Figures: one per cell, plus per (feature set, protocol, clip
    length) a consolidated matrix summed over the thesis's classifiers, as in the thesis.
    """
    from ..evaluation.models import THESIS_CLASSIFIERS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [mics[k] for k in sorted(mics)]
    paths = {}
    payload = {"mics": {str(k): v for k, v in mics.items()}, "results": results, **(extra or {})}
    (out / "metrics.json").write_text(json.dumps(payload, indent=1, default=json_default))
    paths["json"] = out / "metrics.json"
    metrics_frame(results).to_csv(out / "metrics.csv", index=False)
    paths["csv"] = out / "metrics.csv"
    per_mic_frame(results, mics).to_csv(out / "classification_report.csv", index=False)
    paths["classification_report"] = out / "classification_report.csv"
    (out / "summary.txt").write_text(summary_table(results) + "\n")
    paths["summary"] = out / "summary.txt"
    forensic = [r for r in results if "eer" in r]
    results = [r for r in results if "eer" not in r]
    if forensic:  # the forensic cells' numbers and what an LR means
        from .forensic import forensic_summary, unknown_fold_lines

        text = "\n".join([forensic_summary(metrics_frame(forensic)), "", *unknown_fold_lines(forensic)])
        (out / "forensic.txt").write_text(text.rstrip() + "\n")
        paths["forensic"] = out / "forensic.txt"
    figs = []
    groups: dict[tuple, np.ndarray] = {}
    for r in results:
        c = r["cell"]
        title = (f"{CLASSIFIER_TITLES.get(c['classifier'], c['classifier'])}\n"
                 f"{c['feature_set']} features, {c['protocol']} protocol, {c['clip_seconds']:g} s clips\n"
                 f"accuracy {r['accuracy']:.2f} [{r['accuracy_lo']:.2f}-{r['accuracy_hi']:.2f}]")
        figs.append(plot_confusion(r["confusion"], names, title, out / "confusion" / (
            _slug(c["feature_set"], c["protocol"], c["sound_type"], f"{c['clip_seconds']:g}s", c["classifier"]) + ".png")))
        if c["classifier"] in THESIS_CLASSIFIERS:
            key = (c["feature_set"], c["protocol"], c["sound_type"], c["clip_seconds"])
            groups[key] = groups.get(key, 0) + np.asarray(r["confusion"])
    for (fset, prot, st, clip), conf in groups.items():
        acc = np.trace(conf) / conf.sum()
        figs.append(plot_confusion(conf, names, f"Consolidated: all thesis classifiers\n{fset} features, {prot} "
                                   f"protocol, {clip:g} s clips\naccuracy {acc:.2f}",
                                   out / (_slug("consolidated", fset, prot, st, f"{clip:g}s") + ".png")))
    paths["figures"] = figs
    return paths


def json_default(o):
    """``json.dumps(default=...)`` for numpy scalars and arrays, tuples and sets."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _ci(r, k) -> str:
    v, lo, hi = r.get(k, np.nan), r.get(k + "_lo", np.nan), r.get(k + "_hi", np.nan)
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.3f} [{lo:.2f}-{hi:.2f}]" if np.isfinite(lo) else f"{v:.3f}"


def summary_table(results: list[dict]) -> str:
    """Plain-text tables: accuracy, macro F1 and identical-pair accuracy per classifier (95 % CIs), then
    EER, Cllr and min-Cllr of the forensic cells (verification, open-set), overall and identical-model."""
    def cells(r):
        c = r["cell"]  # a micfp_auto row names the method it chose: ``all -> spectral + micfp_svc``
        return [CLASSIFIER_TITLES.get(c["classifier"], c["classifier"]),
                c["feature_set"] + (f" -> {chosen(r)}" if chosen(r) else ""), c["protocol"],
                f"{c['clip_seconds']:g}", str(r["n_test"])]

    forensic = [r for r in results if "eer" in r]
    results = [r for r in results if "eer" not in r]
    header = ["classifier", "features", "protocol", "clip s", "n test", "accuracy [95% CI]", "macro F1 [95% CI]",
              "identical pair [95% CI]"]
    tables = []
    if results or not forensic:
        tables.append(_text_table(header, [cells(r) + [_ci(r, "accuracy"), _ci(r, "macro_f1"),
                                                       _ci(r, "pair_accuracy")] for r in results]))
    if forensic:
        header = header[:4] + ["n trials", "EER [95% CI]", "Cllr [95% CI]", "min Cllr [95% CI]",
                               "identical model: EER", "Cllr"]
        tables.append(_text_table(header, [cells(r) + [_ci(r, k) for k in ("eer", "cllr", "min_cllr", "eer_identical",
                                                                           "cllr_identical")] for r in forensic]))
    return "\n\n".join(tables)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
