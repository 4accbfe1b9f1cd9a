"""Names and number formats shared by the report's sentences, figures, tables and files."""

from __future__ import annotations

import numpy as np

CLASSIFIER_TITLES = {
    "svc": "SVC", "mlp": "MLP", "knn": "k-nearest neighbours", "random_forest": "Random forest",
    "gradient_boosting": "Gradient boosting", "logistic_regression": "Logistic regression",
    "naive_bayes": "Gaussian naive Bayes", "decision_tree": "Decision tree",
    "micfp_lr": "micfp (channel LR, tuned)",
    "micfp_svc": "micfp (RBF SVC, tuned)",
    "micfp_et": "micfp (extra trees, tuned)",
    "micfp_auto": "micfp auto (best by grouped CV)",
}
PROTOCOL_TITLES = {"session": "session (train day 1, test later sessions)",
                   "grouped-kfold": "grouped k-fold (30 s blocks)",
                   "leave-sound-type-out": "leave one sound type out", "random": "random 80/20 split (thesis)"}


def method_name(fs: str, clf: str) -> str:
    """A method as the page names it: ``"<classifier title> on <feature set> features"``."""
    return f"{CLASSIFIER_TITLES.get(clf, clf)} on {fs} features"


def chosen(result: dict) -> str:
    """What a ``micfp_auto`` cell chose (``"spectral + micfp_svc"``; folds joined by ``; `` when they
    differ), or ``""`` for a cell of a fixed method."""
    folds = result.get("chosen") or []
    return "; ".join(dict.fromkeys(f"{c['feature_set']} + {c['classifier']}" for c in folds))


def pct(x) -> str:
    """A fraction as a percentage with one decimal; ``n/a`` when missing."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def ci(r: dict, k: str = "accuracy") -> str:
    """Metric ``k`` of row ``r`` as a percentage with its 95 % interval (when it has one)."""
    lo, hi = r.get(f"{k}_lo", np.nan), r.get(f"{k}_hi", np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return pct(r.get(k))
    return f"{pct(r.get(k))} (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"


def sec(x: float) -> str:
    """A clip length in seconds."""
    return f"{x:g} s"


def hz(f: float) -> str:
    """A frequency in Hz or kHz."""
    return f"{f / 1000:.1f} kHz" if f >= 1000 else f"{f:.0f} Hz"


def fmt(v) -> str:
    """A table number in its shortest form; a dash when missing."""
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:g}"
