"""The forensic part of a report: Tippett and DET plots, EER and Cllr with intervals, and what an LR means.

Drawn from a results set's forensic variables (``eer``, ``cllr``, ``min_cllr``, their bounds,
``tippett_*``, ``det_*``, ``unknown_detection``; see docs/spec.md), so the report needs nothing
but the results set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.protocols import LR_PROTOCOLS
from .figures import _plt

AXES = ("condition", "clip_seconds", "sound_type", "feature_set", "classifier", "protocol")

#: The evaluative-reporting paragraph: what a likelihood ratio means and what it does not.
MEANING = (
    "micfp reports the evidence of a comparison as a likelihood ratio (LR), given as log10 LR: how much "
    "more probable the measured similarity of the two recordings is if the same microphone recorded both "
    "than if two different microphones did. A log10 LR of 2 means the observations are 100 times more "
    "probable under the same-microphone proposition; -2 means 100 times more probable under the "
    "different-microphones proposition; 0 means they do not help decide. The LR is not the probability "
    "that the microphone is the same: that probability also depends on the other information in the case "
    "(how many microphones could have made the recording, what else is known), which is for the court or "
    "the investigator to weigh, not for micfp. The LR is only as good as its calibration, measured here on "
    "microphones the score model never saw: Cllr (0 perfect, 1 no information, above 1 misleading) says how "
    "much the reported LRs can be trusted, min-Cllr how much the comparison could deliver if perfectly "
    "calibrated, and the EER how often a decision at the equal-error threshold would be wrong. Under "
    "enrolled-verification the claimed microphone was enrolled from reference recordings of another session "
    "(casework with the suspect microphone in hand), so its numbers do not carry over to two recordings of "
    "microphones micfp never saw; under verification they do. Intervals are "
    "95 % bootstrap intervals over recordings, not over trials, because trials sharing a recording are not "
    "independent. The numbers hold for recordings like the evaluation's (their duration, content and "
    "conditions); a case whose recordings differ from them needs its own validation.")


def forensic_frame(ds) -> pd.DataFrame:
    """One row per forensic cell of a results set: its axes, EER, Cllr, min-Cllr (with bounds) and counts."""
    if "eer" not in ds:
        return pd.DataFrame()
    names = [v for v in ds.data_vars if ds[v].dims == ds["eer"].dims
             and v.startswith(("eer", "cllr", "min_cllr", "n_target", "n_nontarget"))]
    df = ds[names].to_dataframe().reset_index()
    df = df[df["eer"].notna()]
    return df.reset_index(drop=True)


def _cell(ds, row) -> dict:
    return {d: row[d] for d in AXES if d in ds.dims}


def _ci(row, k) -> str:
    v = row.get(k, np.nan)
    if not np.isfinite(v):
        return "n/a"
    lo, hi = row.get(k + "_lo", np.nan), row.get(k + "_hi", np.nan)
    return f"{v:.3f} [{lo:.3f}-{hi:.3f}]" if np.isfinite(lo) else f"{v:.3f}"


def forensic_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table of the report: per forensic cell, EER, Cllr, min-Cllr (95 % CIs), identical-model group."""
    rows = []
    for _, r in df.iterrows():
        rows.append({"protocol": r["protocol"], "clip s": f"{r['clip_seconds']:g}", "sound type": r["sound_type"],
                     "features": r["feature_set"], "trials same / different": f"{r['n_target']} / {r['n_nontarget']}",
                     "EER": _ci(r, "eer"), "Cllr": _ci(r, "cllr"), "min Cllr": _ci(r, "min_cllr"),
                     "identical model: EER": _ci(r, "eer_identical"),
                     "identical model: Cllr": _ci(r, "cllr_identical")})
    return pd.DataFrame(rows)


def fig_tippett(llr, target, nontarget, title: str, path: Path) -> Path:
    """Tippett plot: share of same- and different-microphone trials with log10 LR at or above each value."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    ax.plot(llr, target, label="same microphone (Hs true)", color="tab:blue")
    ax.plot(llr, nontarget, label="different microphones (Hd true)", color="tab:red")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("log10 likelihood ratio")
    ax.set_ylabel("share of trials with log10 LR ≥ x")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def fig_det(p_miss, p_fa, title: str, path: Path, *, eer: float | None = None, labels=("miss", "false alarm")) -> Path:
    """DET plot: miss against false-alarm rate on normal-deviate axes, the EER point marked."""
    from scipy.stats import norm

    plt = _plt()
    eps = 1e-4
    x, y = norm.ppf(np.clip(p_fa, eps, 1 - eps)), norm.ppf(np.clip(p_miss, eps, 1 - eps))
    fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=110)
    ax.plot(x, y, color="tab:blue")
    if eer is not None and np.isfinite(eer):
        e = norm.ppf(np.clip(eer, eps, 1 - eps))
        ax.plot([e], [e], "o", color="tab:red", label=f"EER {eer:.1%}")
        ax.legend(fontsize=8)
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    ax.set_xticks(norm.ppf(ticks), [f"{t:.0%}" if t >= 0.01 else f"{t:.1%}" for t in ticks], fontsize=7)
    ax.set_yticks(norm.ppf(ticks), [f"{t:.0%}" if t >= 0.01 else f"{t:.1%}" for t in ticks], fontsize=7)
    lim = norm.ppf([0.0005, 0.97])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="grey", lw=0.6, ls=":")
    ax.set_xlabel(f"{labels[1]} rate")
    ax.set_ylabel(f"{labels[0]} rate")
    ax.set_title(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _slug(cell: dict) -> str:
    return "-".join(str(cell[d]).replace(" ", "_").replace("/", "_") for d in AXES if d in cell)


def forensic_figures(ds, figs_dir: Path) -> list[tuple[Path, str]]:
    """Tippett (cells with LRs) and DET (every forensic cell) PNGs of every forensic cell: ``[(path, alt)]``."""
    df = forensic_frame(ds)
    out = []
    for _, r in df.iterrows():
        cell = _cell(ds, r)
        sel = ds.sel({k: v for k, v in cell.items()})
        title = f"{r['protocol']}, {r['feature_set']} features, {r['clip_seconds']:g} s clips, {r['sound_type']}"
        if r["protocol"] in LR_PROTOCOLS:
            llr = sel["tippett_llr"].values
            ok = np.isfinite(llr)
            out.append((fig_tippett(llr[ok], sel["tippett_target"].values[ok], sel["tippett_nontarget"].values[ok],
                                    f"Tippett: {title}", figs_dir / f"tippett-{_slug(cell)}.png"), f"Tippett plot, {title}"))
        pm, pf = sel["det_p_miss"].values, sel["det_p_fa"].values
        ok = np.isfinite(pm) & np.isfinite(pf)
        labels = ("miss", "false alarm") if r["protocol"] in LR_PROTOCOLS else (
            "known called unknown", "unknown accepted")
        out.append((fig_det(pm[ok], pf[ok], f"DET: {title}", figs_dir / f"det-{_slug(cell)}.png", eer=r["eer"],
                            labels=labels), f"DET plot, {title}"))
    return out


def unknown_fold_lines(records: list[dict]) -> list[str]:
    """Per open-set cell record: each microphone's EER as the unknown one (``unknown_folds``), worst first."""
    lines = []
    for r in records:
        if not r.get("unknown_folds"):
            continue
        c = r["cell"]
        folds = sorted(r["unknown_folds"], key=lambda f: -f["eer"])
        lines.append(f"open-set on {c['clip_seconds']:g} s clips, {c['feature_set']} features, each microphone as the "
                     "unknown one (EER): " + ", ".join(f"{f['mic']} {f['eer']:.2f}" for f in folds))
    return lines


def forensic_summary(df: pd.DataFrame) -> str:
    """Plain-language lines on the measured performance, then :data:`MEANING`."""
    lines = []
    for _, r in df.iterrows():
        what = (f"{r['protocol']} on {r['clip_seconds']:g} s clips of {r['sound_type']} sound, {r['feature_set']} "
                f"features")
        if r["protocol"] in LR_PROTOCOLS:
            trials = ("questioned clips against microphones enrolled in another session"
                      if r["protocol"] != "verification" else "trials between sessions")
            lines.append(f"{what}: EER {_ci(r, 'eer')}, Cllr {_ci(r, 'cllr')}, min-Cllr {_ci(r, 'min_cllr')} over "
                         f"{r['n_target']} same- and {r['n_nontarget']} different-microphone {trials}; units of one model against each other: EER {_ci(r, 'eer_identical')}, "
                         f"Cllr {_ci(r, 'cllr_identical')}.")
        else:
            lines.append(f"{what}: EER of the unknown-microphone detector {_ci(r, 'eer')} ({r['n_target']} "
                         f"known- and {r['n_nontarget']} unknown-microphone clips).")
    return "\n".join(lines + ["", MEANING])
