"""Realism check of the simulator: can simple and better features tell the microphones apart?

Train on day 1, test on day 2, 2-second clips inside programme items, three feature sets:

- ``baseline``: mean over frames of the 1/6-octave LTAS (dB), StandardScaler + LogisticRegression;
- ``channel``: level-normalised LTAS mean plus the 10th percentile over frames of each band
  (quiet-frame / self-noise spectrum), StandardScaler + RBF SVC;
- ``thesis``: mean of 20 MFCCs at 22,050 Hz + mean ZCR + mean RMS, StandardScaler + LogisticRegression.

Used by the slow test and to fill the numbers in docs/simulator.md::

    python -m pipeline.simulate.realism 4 2 0
"""

from __future__ import annotations

import sys

import numpy as np

from .studio import StudioPlan, render_block

PAIR = (3, 4)


def clip_starts(plan: StudioPlan, session: str, clip_s: float = 2.0) -> list[tuple[int, str]]:
    """Start sample and sound type of each whole clip inside a programme item."""
    sr, L = plan.sample_rate, int(clip_s * plan.sample_rate)
    out = []
    for a, b, kind in plan.segments(session):
        a, b = int(round(a * sr)), int(round(b * sr))
        out += [(s, kind) for s in range(a, b - L + 1, L)]
    return out


def clip_features(plan: StudioPlan, session: str, clip_s: float = 2.0, thesis: bool = True):
    """Per-clip features of all five microphones: dict of arrays plus ``label`` and ``sound_type``."""
    from pipeline.features.frames import FrameSettings, frame_features

    s = FrameSettings(sample_rate=plan.sample_rate)
    lt = s.index("ltas_")
    y = render_block(plan, session, 0, plan.n_samples(session))
    L = int(clip_s * plan.sample_rate)
    feats = {"baseline": [], "channel": [], "thesis": [], "label": [], "sound_type": []}
    for m in range(y.shape[0]):
        for start, kind in clip_starts(plan, session, clip_s):
            c = y[m, start : start + L]
            band = frame_features(c, s)[:, lt]
            mean = band.mean(axis=0)
            level = mean.mean()
            feats["baseline"].append(mean)
            feats["channel"].append(np.concatenate([mean - level, np.percentile(band, 10, axis=0) - level]))
            feats["thesis"].append(_thesis(c, plan.sample_rate) if thesis else np.zeros(22))
            feats["label"].append(m + 1)
            feats["sound_type"].append(kind)
    return {k: np.asarray(v) for k, v in feats.items()}


def _thesis(c: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    z = librosa.resample(c.astype(np.float32) / 32768, orig_sr=sr, target_sr=22050)
    mf = librosa.feature.mfcc(y=z, sr=22050, n_mfcc=20).mean(axis=1)
    return np.concatenate([mf, [librosa.feature.zero_crossing_rate(z).mean(), librosa.feature.rms(y=z).mean()]])


def _classifier(kind: str):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "channel":
        return make_pipeline(StandardScaler(), SVC(C=10.0))
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Overall, model-level (KM 184 units merged), identical-pair and per-microphone accuracy."""
    merge = lambda v: np.where(v == PAIR[1], PAIR[0], v)  # noqa: E731
    pair = np.isin(y_true, PAIR)
    return {
        "overall": float((y_pred == y_true).mean()),
        "models": float((merge(y_pred) == merge(y_true)).mean()),
        "pair": float((y_pred[pair] == y_true[pair]).mean()),
        "per_mic": {int(m): float((y_pred[y_true == m] == m).mean()) for m in np.unique(y_true)},
    }


def measure(plan: StudioPlan, clip_s: float = 2.0, thesis: bool = True) -> dict:
    """Train on the plan's first session, test on its second; scores per feature set."""
    train = clip_features(plan, plan.sessions[0], clip_s, thesis)
    test = clip_features(plan, plan.sessions[1], clip_s, thesis)
    out = {"n_train_clips": int(len(train["label"])), "n_test_clips": int(len(test["label"]))}
    for kind in ("baseline", "channel") + (("thesis",) if thesis else ()):
        clf = _classifier(kind).fit(train[kind], train["label"])
        out[kind] = scores(test["label"], clf.predict(test[kind]))
    return out


if __name__ == "__main__":
    a, b, seed = (float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (4.0, 2.0, 0)
    import json

    print(json.dumps(measure(StudioPlan(minutes_per_session=(a, b), seed=seed)), indent=1))
