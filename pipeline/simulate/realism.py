"""Realism check of the simulator: can simple and better features tell the microphones apart?

Train on day 1, test on day 2, 2-second clips inside programme items (the clips of
:mod:`pipeline.features`: frame features once per recording, then clip statistics):

- ``baseline``: the long-term average spectrum (mean over frames of the 1/6-octave log band
  powers) + StandardScaler + LogisticRegression, **one model per sound type** (the thesis
  worked on windows of one programme at a time), scores pooled over the types;
- ``baseline_pooled``: the same with one model for all sound types together (reported: a
  linear model cannot put one hyperplane through sweep, low-frequency and broadband clips);
- ``channel``: the pipeline's ``channel`` set + ``micfp_svc`` (RBF SVC tuned by grouped
  cross-validation inside day 1, exactly as ``micfp evaluate`` fits it);
- ``thesis``: the thesis's 22 features (librosa at 22,050 Hz) + LogisticRegression.

Used by the slow test and to fill the numbers in docs/simulator.md::

    python -m pipeline.simulate.realism 30 8 0
"""

from __future__ import annotations

import sys

import numpy as np

from .studio import StudioPlan, render_block

PAIR = (3, 4)
KINDS = ("baseline", "baseline_pooled", "channel", "thesis")


def clip_starts(plan: StudioPlan, session: str, clip_s: float = 2.0) -> list[tuple[int, str]]:
    """Start sample and sound type of each whole clip inside a programme item."""
    sr, L = plan.sample_rate, int(clip_s * plan.sample_rate)
    out = []
    for a, b, kind in plan.segments(session):
        a, b = int(round(a * sr)), int(round(b * sr))
        out += [(s, kind) for s in range(a, b - L + 1, L)]
    return out


def clip_features(plan: StudioPlan, session: str, clip_s: float = 2.0, thesis: bool = True) -> dict:
    """Per-clip features of all five microphones of a session.

    Returns
    -------
    dict
        ``"ltas"`` (LTAS mean, dB), ``"channel"`` (the pipeline's channel set), ``"thesis"``
        (zeros unless ``thesis``), ``"label"``, ``"sound_type"`` and ``"group"`` (30 s time
        block, shared by the microphones, for grouped cross-validation).
    """
    from pipeline.evaluation.protocols import GROUP_SECONDS
    from pipeline.features import sets
    from pipeline.features.clips import reduce_frames
    from pipeline.features.frames import FrameSettings, frame_features

    s = FrameSettings(sample_rate=plan.sample_rate)
    lt = s.index("ltas_")
    sr, L = plan.sample_rate, int(clip_s * plan.sample_rate)
    starts = clip_starts(plan, session, clip_s)
    f0 = np.array([a // s.hop for a, _ in starts], np.int64)
    f1 = f0 + s.n_frames(L)
    y = render_block(plan, session, 0, plan.n_samples(session))
    out: dict[str, list] = {k: [] for k in ("ltas", "channel", "thesis")}
    for m in range(y.shape[0]):
        stats = reduce_frames(frame_features(y[m], s), f0, f1, percentiles=sets.needs_percentiles("channel"))
        out["ltas"].append(stats["mean"][:, lt])
        out["channel"].append(sets.from_frame_stats("channel", stats, s))
        out["thesis"].append(np.stack([sets.thesis_features(y[m, a : a + L], sr) if thesis else np.zeros(22)
                                       for a, _ in starts]))
    n_mics = y.shape[0]
    res = {k: np.concatenate(v) for k, v in out.items()}
    res["label"] = np.repeat(np.arange(1, n_mics + 1), len(starts))
    res["sound_type"] = np.tile(np.array([k for _, k in starts]), n_mics)
    res["group"] = np.tile(np.array([a // int(GROUP_SECONDS * sr) for a, _ in starts]), n_mics)
    return res


def _lr():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def predict(kind: str, train: dict, test: dict) -> np.ndarray:
    """Fit the ``kind`` model on ``train`` and predict the labels of ``test``."""
    if kind == "baseline":
        pred = np.zeros(len(test["label"]), np.int64)
        for st in np.unique(test["sound_type"]):
            a, b = train["sound_type"] == st, test["sound_type"] == st
            pred[b] = _lr().fit(train["ltas"][a], train["label"][a]).predict(test["ltas"][b])
        return pred
    if kind == "baseline_pooled":
        return _lr().fit(train["ltas"], train["label"]).predict(test["ltas"])
    if kind == "thesis":
        return _lr().fit(train["thesis"], train["label"]).predict(test["thesis"])
    if kind == "channel":
        from pipeline.evaluation.models import fit_model

        model = fit_model("micfp_svc", train["channel"], train["label"], train["group"], len(np.unique(train["label"])))
        return model.predict(test["channel"])
    raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")


def scores(y_true: np.ndarray, y_pred: np.ndarray, sound_type: np.ndarray | None = None) -> dict:
    """Overall, model-level (KM 184 units merged), identical-pair and per-microphone accuracy."""
    merge = lambda v: np.where(v == PAIR[1], PAIR[0], v)  # noqa: E731
    pair = np.isin(y_true, PAIR)
    out = {
        "overall": float((y_pred == y_true).mean()),
        "models": float((merge(y_pred) == merge(y_true)).mean()),
        "pair": float((y_pred[pair] == y_true[pair]).mean()),
        "per_mic": {int(m): float((y_pred[y_true == m] == m).mean()) for m in np.unique(y_true)},
    }
    if sound_type is not None:
        out["per_sound_type"] = {str(t): float((y_pred[sound_type == t] == y_true[sound_type == t]).mean())
                                 for t in np.unique(sound_type)}
    return out


def measure(plan: StudioPlan, clip_s: float = 2.0, thesis: bool = True, kinds=KINDS) -> dict:
    """Train on the plan's first session, test on its second; scores per feature set."""
    train = clip_features(plan, plan.sessions[0], clip_s, thesis)
    test = clip_features(plan, plan.sessions[1], clip_s, thesis)
    out = {"n_train_clips": int(len(train["label"])), "n_test_clips": int(len(test["label"]))}
    for kind in kinds:
        if kind == "thesis" and not thesis:
            continue
        out[kind] = scores(test["label"], predict(kind, train, test), test["sound_type"])
    return out


if __name__ == "__main__":
    a, b, seed = (float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (30.0, 8.0, 0)
    import json

    print(json.dumps(measure(StudioPlan(minutes_per_session=(a, b), seed=seed)), indent=1))
