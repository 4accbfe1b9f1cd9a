"""The verification and open-set protocols (pipeline.evaluation.forensic_cell) and their results variables."""

import numpy as np
import pandas as pd
import pytest

from forensic_helpers import MICS, synthetic
from pipeline.errors import ConfigError
from pipeline.evaluation.cell import Cell, run_cell

def test_verification_separates_unseen_microphones(rng):
    X, meta = synthetic(rng)
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "micfp_verify", "verification"), MICS, n_boot=30)
    assert r["n_folds"] == 6 and r["train_session"] == "day1"
    assert r["eer"] < 0.1 and r["cllr"] < 0.5
    assert r["min_cllr"] <= r["cllr"] + 1e-9
    assert r["eer_lo"] <= r["eer"] <= r["eer_hi"]
    # trials within the identical-model group: the two close units are harder than the rest
    assert list(r["groups"]) == ["Cond"] and r["eer_identical"] >= r["eer"]
    assert r["n_target"] > 0 and r["n_nontarget"] > r["n_target"]
    assert len(r["tippett"]["llr"]) == len(r["tippett"]["target"])


def test_verification_trials_are_between_sessions_and_probe_the_left_out_microphone(rng):
    from pipeline.identify.verification import leave_one_mic_out_scores

    X, meta = synthetic(rng, n_per=10)
    train = np.flatnonzero(meta["session"] == "day1")
    test = np.flatnonzero(meta["session"] != "day1")
    by_length = leave_one_mic_out_scores(X.astype(float), meta, train, test, max_trials=None, segment_clips=(1, 3))
    for n, t in by_length.items():
        sa, sb = t["rec_a"].str.split("-").str[0], t["rec_b"].str.split("-").str[0]
        assert (sa != sb).all() and not (sa == "day1").any() and not (sb == "day1").any()
        assert (t["mic_a"] == t["fold"]).all()
        # every probe segment of mic k (2 sessions x 10 // n) against every segment of the other session
        per_session = 10 // n
        assert len(t) == len(MICS) * 2 * per_session * per_session * len(MICS)


def test_open_set_flags_the_left_out_microphone(rng):
    X, meta = synthetic(rng, sessions=("day1", "day2"), unit_gap=3.0)  # no near-twin units
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "micfp_verify", "open-set"), MICS, n_boot=30)
    assert r["eer"] < 0.1
    assert len(r["unknown_detection"]) == len(r["false_alarm_rates"])
    assert np.all(np.diff(r["unknown_detection"]) >= 0)
    assert r["n_nontarget"] == (meta["session"] == "day2").sum()  # each clip is unknown once, in its own fold


def test_open_set_cannot_tell_a_left_out_unit_from_its_twin(rng):
    """The hard case the issue names: one unit of an identical pair left out looks like the other."""
    from pipeline.evaluation import forensic as fm
    from pipeline.evaluation.forensic_cell import open_set_scores

    X, meta = synthetic(rng, sessions=("day1", "day2"), unit_gap=0.6)
    s = open_set_scores(X.astype(float), meta, np.flatnonzero(meta["session"] == "day1"),
                        np.flatnonzero(meta["session"] == "day2"))
    per_fold = {k: fm.eer(g["score"], g["known"]) for k, g in s.groupby("fold")}
    assert per_fold[3] > 0.3 and per_fold[1] < 0.05
    # the cell reports the same per microphone, by name, and the report lists them worst first
    from pipeline.report.forensic import unknown_fold_lines

    r = run_cell(X, meta, Cell(2.0, "all", "channel", "micfp_verify", "open-set"), MICS, n_boot=0)
    got = {f["mic"]: f["eer"] for f in r["unknown_folds"]}
    assert set(got) == set(MICS.values()) and got["Cond #1"] > 0.3 and got["Dyn A"] < 0.05
    line = unknown_fold_lines([r])[0]
    assert line.index("Cond #") < line.index("Dyn A")


def test_results_set_holds_forensic_and_classification_cells(rng):
    from pipeline.evaluation.grid import results_dataset

    X, meta = synthetic(rng, n_per=20, sessions=("day1", "day2"))
    res = [run_cell(X, meta, Cell(2.0, "all", "channel", c, p), MICS, n_boot=10)
           for c, p in (("micfp_verify", "verification"), ("micfp_verify", "open-set"),
                        ("logistic_regression", "session"))]
    ds = results_dataset(res, MICS)
    v = ds.sel(clip_seconds=2.0, sound_type="all", feature_set="channel")
    assert np.isfinite(v["eer"].sel(classifier="micfp_verify", protocol="verification"))
    assert np.isfinite(v["cllr_identical"].sel(classifier="micfp_verify", protocol="verification"))
    assert np.isnan(v["accuracy"].sel(classifier="micfp_verify", protocol="verification"))
    assert np.isnan(v["eer"].sel(classifier="logistic_regression", protocol="session"))
    assert np.isfinite(v["unknown_detection"].sel(classifier="micfp_verify", protocol="open-set")).all()
    assert np.isfinite(v["det_p_miss"].sel(classifier="micfp_verify", protocol="verification")).any()


def test_the_grid_runs_the_score_model_under_forensic_protocols():
    from pipeline.evaluation.grid import default_cells

    cells = default_cells([2.0], ["all"], ["session", "verification"], ["svc", "micfp_lr"])
    assert {(c.classifier, c.protocol) for c in cells} == {
        ("svc", "session"), ("micfp_lr", "session"), ("micfp_verify", "verification")}


@pytest.mark.faults
@pytest.mark.parametrize("clf, prot", [("svc", "verification"), ("micfp_verify", "session")])
def test_a_classifier_under_a_forensic_protocol_is_refused(clf, prot):
    with pytest.raises(ConfigError, match="micfp_verify"):
        Cell(2.0, "all", "channel", clf, prot)


@pytest.mark.faults
def test_one_session_is_refused_with_one_line(rng):
    X, meta = synthetic(rng, n_per=10, sessions=("day1",))
    with pytest.raises(ConfigError, match="at least two sessions"):
        run_cell(X, meta, Cell(2.0, "all", "channel", "micfp_verify", "verification"), MICS, n_boot=0)


def test_trials_of_a_large_corpus_are_drawn_without_the_full_product():
    from pipeline.identify.verification import cross_session_trials

    n = 40_000  # 1.6e9 clip pairs: the full product would need tens of GB
    meta = pd.DataFrame({"label": np.arange(n) % 5, "session": np.where(np.arange(n) < n // 2, "d1", "d2"),
                         "recording": "r"})
    t = cross_session_trials(meta, np.arange(n), np.arange(n), max_trials=5_000)
    assert 4_000 <= len(t) <= 5_100
    assert abs(t["target"].mean() - 0.2) < 0.03
    assert (meta["session"].to_numpy()[t["a"]] != meta["session"].to_numpy()[t["b"]]).all()
