"""The enrolled-verification protocol (pipeline.evaluation.enrolled): questioned clips against enrolled microphones."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forensic_helpers import MICS, synthetic
from pipeline.errors import ConfigError
from pipeline.evaluation.cell import Cell, run_cell
from pipeline.evaluation.enrolled import enrolled_trials, posterior_log_odds


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_log_odds_are_finite_and_increasing(p):
    p = np.sort(np.asarray(p))
    s = posterior_log_odds(p)
    assert np.isfinite(s).all()
    assert (np.diff(s) >= 0).all()


def test_each_clip_is_a_trial_against_every_enrolled_microphone(rng):
    _, meta = synthetic(rng, n_per=3, sessions=("day1", "day2"))
    rows = np.flatnonzero(meta["session"] == "day2")
    classes = np.array(sorted(MICS))
    proba = rng.dirichlet(np.ones(classes.size), rows.size)
    t = enrolled_trials(proba, classes, rows, meta)
    assert len(t) == rows.size * classes.size
    assert t["target"].sum() == rows.size  # exactly one claimed microphone is the clip's
    assert (t["target"] == (t["mic_a"] == t["mic_b"])).all()
    assert (t["fold"] == t["mic_b"]).all()
    first = t[t["a"] == rows[0]]
    np.testing.assert_allclose(first["score"], posterior_log_odds(proba[0]))


def test_enrolled_microphones_are_verified_across_sessions(rng):
    X, meta = synthetic(rng, n_per=30, sessions=("day1", "day2"))
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "enrolled-verification"), MICS,
                 n_boot=20)
    assert r["train_session"] == "day1" and r["n_folds"] == len(MICS)
    assert r["n_target"] == (meta["session"] == "day2").sum()
    assert r["n_nontarget"] == (len(MICS) - 1) * r["n_target"]
    assert r["eer"] < 0.05 and r["cllr"] < 0.3
    assert r["min_cllr"] <= r["cllr"] + 1e-9
    assert list(r["groups"]) == ["Cond"] and np.isfinite(r["eer_identical"])
    # the LRs point the right way: same-microphone trials mostly above 0, the others mostly below
    llr = np.asarray(r["tippett"]["llr"])
    assert np.interp(0.0, llr, r["tippett"]["target"]) > 0.9
    assert np.interp(0.0, llr, r["tippett"]["nontarget"]) < 0.1


def test_a_microphone_that_cannot_be_told_apart_gets_no_evidence(rng):
    # "Cond #2" is the same channel as "Cond #1": trials between them must not favour either
    X, meta = synthetic(rng, n_per=30, sessions=("day1", "day2"), unit_gap=0.0)
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "enrolled-verification"), MICS,
                 n_boot=0)
    assert r["eer_identical"] > 0.3


@pytest.mark.faults
def test_a_classifier_without_probabilities_is_refused(rng, monkeypatch):
    from pipeline.evaluation import auto

    class NoProba:
        classes_ = np.array(sorted(MICS))

    X, meta = synthetic(rng, n_per=5, sessions=("day1", "day2"))
    monkeypatch.setattr(auto, "fit_classifier", lambda *a, **k: NoProba())
    with pytest.raises(ConfigError, match="posterior probabilities"):
        run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "enrolled-verification"), MICS,
                 n_boot=0)


@pytest.mark.faults
def test_one_session_is_refused_with_one_line(rng):
    X, meta = synthetic(rng, n_per=10, sessions=("day1",))
    with pytest.raises(ConfigError, match="at least two sessions"):
        run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "enrolled-verification"), MICS,
                 n_boot=0)


def test_the_trials_are_capped(rng, monkeypatch):
    from pipeline.evaluation import enrolled

    X, meta = synthetic(rng, n_per=20, sessions=("day1", "day2"))
    monkeypatch.setattr(enrolled, "MAX_TRIALS", 60)
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "enrolled-verification"), MICS,
                 n_boot=0)
    assert r["n_target"] + r["n_nontarget"] == 60


@pytest.mark.faults
def test_a_classifier_without_probabilities_is_refused_before_compute():
    with pytest.raises(ConfigError, match="posterior probabilities"):
        Cell(2.0, "all", "thesis", "svc", "enrolled-verification")


def test_the_grid_runs_classifiers_with_probabilities_under_enrolled_verification():
    from pipeline.evaluation.grid import default_cells
    from pipeline.evaluation.models import CLASSIFIERS, WITHOUT_PROBABILITIES, make_model

    cells = default_cells([2.0], ["all"], ["enrolled-verification", "session"], ["svc", "knn", "micfp_auto"])
    assert {(c.classifier, c.protocol) for c in cells} == {
        ("knn", "enrolled-verification"), ("micfp_auto", "enrolled-verification"),
        ("svc", "session"), ("knn", "session"), ("micfp_auto", "session")}
    # the list of classifiers without probabilities is the truth about their pipelines
    for name in CLASSIFIERS:
        if name != "micfp_auto":
            assert hasattr(make_model(name, 5), "predict_proba") == (name not in WITHOUT_PROBABILITIES), name
