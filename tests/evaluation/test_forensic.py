"""Forensic verification metrics (pipeline.evaluation.forensic) against known values."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.evaluation import forensic as fm


def test_perfectly_separated_scores_have_no_errors_and_no_discrimination_loss():
    s = np.r_[np.linspace(-3, -1, 20), np.linspace(1, 3, 30)]
    t = np.r_[np.zeros(20, bool), np.ones(30, bool)]
    assert fm.eer(s, t) == 0.0
    assert fm.min_cllr(s, t) == 0.0


def test_uninformative_scores_and_llrs():
    t = np.r_[np.zeros(40, bool), np.ones(10, bool)]
    assert fm.eer(np.zeros(50), t) == pytest.approx(0.5)
    assert fm.min_cllr(np.zeros(50), t) == pytest.approx(1.0)
    assert fm.cllr(np.zeros(50), t) == pytest.approx(1.0)  # LR = 1 always: one bit


def test_a_worked_example():
    # sorted labels non, tar, non, tar: PAV pools the middle two (posterior 0.5, LR 1)
    s, t = np.array([0.0, 1.0, 2.0, 3.0]), np.array([False, True, False, True])
    assert fm.min_cllr(s, t) == pytest.approx(0.5)
    assert fm.eer(s, t) == pytest.approx(0.25)
    # cllr of known LRs: targets LR 10 and 1, non-targets LR 0.1 and 1
    llr = np.array([-1.0, 1.0, 0.0, 0.0])
    want = 0.5 * (np.mean([np.log2(1 + 0.1), 1.0]) + np.mean([np.log2(1 + 0.1), 1.0]))
    assert fm.cllr(llr, t) == pytest.approx(want)


def test_reversed_scores_mislead_but_pav_cannot_use_them():
    s = np.r_[np.linspace(1, 3, 20), np.linspace(-3, -1, 20)]
    t = np.r_[np.zeros(20, bool), np.ones(20, bool)]
    assert fm.eer(s, t) == pytest.approx(0.5)  # the convex hull: never worse than chance
    assert fm.min_cllr(s, t) == pytest.approx(1.0)
    assert fm.cllr(s, t) > 1.0  # confident and wrong costs more than saying nothing


def test_tied_scores_are_one_level_whatever_their_order():
    s = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    a = fm.min_cllr(s, np.array([True, False, True, False, True]))
    b = fm.min_cllr(s, np.array([False, True, False, True, True]))
    assert a == pytest.approx(b)


def test_weights_are_repeated_trials():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=60), rng.random(60) < 0.4
    w = rng.integers(0, 3, 60)
    rep = np.repeat(np.arange(60), w)
    for f in (fm.eer, fm.min_cllr, fm.cllr):
        assert f(s, t, w) == pytest.approx(f(s[rep], t[rep]))


def test_det_and_tippett_curves_are_monotone():
    rng = np.random.default_rng(1)
    s = np.r_[rng.normal(2, 1, 300), rng.normal(-2, 1, 700)]
    t = np.r_[np.ones(300, bool), np.zeros(700, bool)]
    d = fm.det_points(s, t)
    assert np.all(np.diff(d["p_miss"]) >= 0) and np.all(np.diff(d["p_fa"]) <= 0)
    assert d["p_miss"][0] == 0 and d["p_fa"][0] == 1 and d["p_miss"][-1] == 1 and d["p_fa"][-1] == 0
    tp = fm.tippett(s, t)
    assert np.all(np.diff(tp["target"]) <= 0) and np.all(np.diff(tp["nontarget"]) <= 0)
    assert tp["misleading_target"] == pytest.approx(np.mean(s[t] < 0))


def test_bootstrap_intervals_bracket_the_estimate():
    rng = np.random.default_rng(2)
    n = 2000
    ga, gb = rng.integers(0, 20, n), rng.integers(0, 20, n)
    t = rng.random(n) < 0.3
    s = np.where(t, rng.normal(1.5, 1, n), rng.normal(-1.5, 1, n))
    out = fm.summary(s, s, t, ga, gb, n_boot=100)
    for k in ("eer", "cllr", "min_cllr"):
        assert out[f"{k}_lo"] <= out[k] <= out[f"{k}_hi"]
    assert out["n_target"] == t.sum()


@pytest.mark.faults
def test_one_kind_of_trial_only_is_refused():
    with pytest.raises(ValueError, match="both target and non-target"):
        fm.cllr(np.zeros(5), np.ones(5, bool))
    with pytest.raises(ValueError, match="finite"):
        fm.eer(np.array([0.0, np.nan]), np.array([True, False]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-20, 20), st.booleans()), min_size=2, max_size=60))
def test_cllr_is_never_below_min_cllr(trials):
    s = np.array([x for x, _ in trials])
    t = np.array([y for _, y in trials])
    if t.all() or not t.any():
        return
    assert fm.cllr(s, t) >= fm.min_cllr(s, t) - 1e-9
    assert 0.0 <= fm.eer(s, t) <= 0.5
    assert 0.0 <= fm.min_cllr(s, t) <= 1.0 + 1e-9
