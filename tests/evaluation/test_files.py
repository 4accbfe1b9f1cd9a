"""Whole files: calibrated file probabilities and accuracy by file length."""

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.files import (
    UNCALIBRATED,
    file_accuracy,
    file_probabilities,
    fit_file_calibration,
    runs,
)


def clips(n_rec=4, n=20, clip=2.0):
    return pd.DataFrame({"recording": np.repeat([f"r{i}" for i in range(n_rec)], n),
                         "start_s": np.tile(np.arange(n) * clip, n_rec)})


def test_runs_are_consecutive_clips_of_one_recording():
    meta = clips(n_rec=2, n=5).sample(frac=1.0, random_state=0).reset_index(drop=True)  # any order
    fid = runs(meta, 2)
    for f in np.unique(fid[fid >= 0]):
        part = meta[fid == f]
        assert part["recording"].nunique() == 1 and np.ptp(part["start_s"]) == 2.0
    assert (fid == -1).sum() == 2  # each recording's fifth clip: no complete run


def test_agreeing_clips_grow_confident_conflicting_clips_do_not():
    params = {"alpha": 1.0, "beta": 0.7}
    clip = np.array([0.44, 0.3, 0.26])  # every clip mildly favours the first microphone
    ps = [file_probabilities(np.tile(clip, (n, 1)), params)[0] for n in (1, 5, 30, 240)]
    assert all(b > a for a, b in zip(ps, ps[1:])) and ps[-1] > 0.99
    assert file_probabilities(np.tile(clip, (240, 1)), UNCALIBRATED)[0] == pytest.approx(0.44, abs=0.02)
    conflicting = np.array([[0.44, 0.3, 0.26], [0.3, 0.44, 0.26]] * 120)
    assert file_probabilities(conflicting, params)[0] < 0.6


def test_calibration_learns_how_much_clips_of_one_file_agree():
    """Synthetic: each file has one offset shared by its clips (room, position) and small
    per-clip noise. The fitted probabilities match the observed accuracy of held-out files."""
    k, n_rec, n = 4, 400, 32

    def simulate(seed):
        r = np.random.default_rng(seed)
        truth = r.integers(0, k, n_rec)
        shared = r.normal(0, 1.0, (n_rec, k))  # what a recording's clips share
        logits = shared[:, None, :] + r.normal(0, 1.0, (n_rec, n, k))
        logits[np.arange(n_rec), :, truth] += 1.0
        logp = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
        meta = clips(n_rec, n)
        return meta, logp.reshape(-1, k), np.repeat(truth, n)

    meta, logp, codes = simulate(1)
    cal = fit_file_calibration(meta, logp, codes)
    assert 0.0 < cal["beta"] < 1.0 and cal["log_loss"] < cal["log_loss_mean_log"]
    # on new files of 16 clips: mean predicted probability of the winner ~ its accuracy
    meta2, logp2, codes2 = simulate(2)
    fid = runs(meta2, 16)
    conf, hit = [], []
    for f in np.unique(fid):
        rows = fid == f
        p = file_probabilities(np.exp(logp2[rows]), cal)
        conf.append(p.max())
        hit.append(p.argmax() == codes2[rows][0])
    assert np.mean(conf) == pytest.approx(np.mean(hit), abs=0.05)


def test_file_accuracy_by_length():
    meta = clips(n_rec=3, n=30, clip=2.0)
    classes = np.array([1, 2, 3])
    y = np.repeat(classes, 30)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (90, 3))
    logits[np.arange(90), y - 1] += 0.8
    acc = file_accuracy(meta, y, logits, classes, 2.0)
    assert set(acc) == {2.0, 10.0, 30.0, 60.0}  # 300 s: longer than every recording
    assert acc[2.0]["n_files"] == 90 and acc[60.0]["n_files"] == 3
    assert acc[60.0]["accuracy"] >= acc[2.0]["accuracy"]
    assert file_accuracy(meta, y, logits, classes, 0.0) == {}
