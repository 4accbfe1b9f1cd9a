"""The tables of ``micfp report``, as pandas frames of display strings (the page template lays them out)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .analysis import THRESHOLDS
from .labels import fmt

#: The columns of the every-cell table, in order.
CELL_COLUMNS = ("condition", "protocol", "feature_set", "classifier", "sound_type", "clip_seconds", "accuracy",
                "accuracy_lo", "accuracy_hi", "macro_f1", "pair_accuracy", "n_test")


def min_clip_table(a: dict) -> pd.DataFrame | None:
    """Per sound type: the minimum clip length reaching each threshold (point and CI lower bound)."""
    mc = a["min_clip"]
    if not mc:
        return None
    rows = [{"sound type": st, **{f"≥{t * 100:g} % (point)": fmt(v[f"{t:.2f}"]) for t in THRESHOLDS},
             **{f"≥{t * 100:g} % (CI lower bound)": fmt(v[f"{t:.2f}_lo"]) for t in THRESHOLDS},
             "best accuracy": f"{v['best_accuracy']:.3f} at {v['best_clip']:g} s"} for st, v in mc.items()]
    return pd.DataFrame(rows)


def conditions_table(a: dict) -> pd.DataFrame | None:
    """One row per test condition: its kind, noise level, codec and requested/measured bit rate."""
    rob = a.get("robustness")
    if rob is None:
        return None
    return pd.DataFrame([{"condition": c, **{k: (fmt(v) if isinstance(v, float) else v) for k, v in i.items()}}
                         for c, i in rob["conditions"].items()])


def cells_table(a: dict) -> pd.DataFrame:
    """Every finished cell with its accuracy (95 % CI), macro F1 and identical-pair accuracy, sorted by its axes."""
    # results sets written before macro F1 was kept lack the column: shown as missing
    table = a["df"].reindex(columns=list(CELL_COLUMNS))
    table = table.sort_values(["condition", "protocol", "feature_set", "classifier", "sound_type", "clip_seconds"])
    for c in ("accuracy", "accuracy_lo", "accuracy_hi", "macro_f1", "pair_accuracy"):
        table[c] = table[c].map(lambda v: f"{v:.3f}" if np.isfinite(v) else "–")
    return table
