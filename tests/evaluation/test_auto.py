"""micfp_auto: the feature set and classifier chosen by grouped CV inside the training data."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from pipeline.errors import ConfigError
from pipeline.evaluation.auto import (
    MicfpAuto,
    candidate_columns,
    candidates,
    fit_classifier,
    selection_groups,
    single_file_sets,
)
from pipeline.evaluation.cell import Cell, run_cell
from pipeline.evaluation.grid import default_cells, results_dataset
from pipeline.evaluation.models import AUTO, DEFAULT_CLASSIFIERS, make_model

MICS = {1: "Shure SM7B", 2: "t.bone MB 7 Beta", 3: "Neumann KM 184 #1", 4: "Neumann KM 184 #2", 5: "RODE NT1-A"}


def clip_table(n_per=40, sessions=("day1", "day2")):
    rows = [dict(mic=MICS[lab], label=lab, session=s, recording=f"{s}-mic{lab}", sound_type="music",
                 start_s=2.0 * k, clip_seconds=2.0) for s in sessions for k in range(n_per) for lab in MICS]
    return pd.DataFrame(rows)


def _two_sets(meta, rng, informative="spectral"):
    """6 channel and 6 spectral columns; only ``informative`` tells the microphones apart."""
    centers = rng.normal(size=(6, 6)) * 3
    good = centers[meta.label.values] + rng.normal(size=(len(meta), 6))
    noise = rng.normal(size=(len(meta), 6))
    X = np.hstack([noise, good] if informative == "spectral" else [good, noise])
    return X, ("channel",) * 6 + ("spectral",) * 6


def test_candidates_skip_sets_missing_from_the_columns():
    cols = ("thesis",) * 2 + ("channel",) * 3 + ("spectral",) * 2
    c = candidates(cols)
    assert "channel|micfp_lr" in c and "channel+spectral|micfp_svc" in c
    assert not any(x.startswith("session-relative") for x in c)  # not in the cube: skipped
    assert "session-relative|micfp_lr" in candidates(cols + ("session-relative",))
    assert candidate_columns(cols, "channel+spectral").tolist() == [2, 3, 4, 5, 6]
    assert "session-relative" not in single_file_sets()


def test_selection_groups_prefer_sessions():
    t = np.array([0, 0, 1, 1])
    assert selection_groups(t, ["a", "a", "a", "a"]).tolist() == [0, 0, 1, 1]  # one session: time blocks
    assert selection_groups(t, ["a", "a", "b", "b"]).tolist() == [0, 0, 1, 1]
    assert selection_groups(t, ["a", "b", "a", "b"]).tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("informative", ["spectral", "channel"])
def test_micfp_auto_chooses_the_informative_set(informative):
    meta = clip_table(n_per=30)
    X, cols = _two_sets(meta, np.random.default_rng(1), informative)
    y = meta.label.values
    groups = np.arange(len(meta)) // 50
    est = MicfpAuto(column_sets=cols, classifiers=("micfp_lr", "micfp_et")).fit(X, y, groups)
    assert est.chosen_feature_set_ in (informative, "channel+spectral")
    assert est.chosen_classifier_ in ("micfp_lr", "micfp_et")
    assert est.cv_scores_[f"{informative} + micfp_lr"] > 0.9
    other = "channel" if informative == "spectral" else "spectral"
    assert est.cv_scores_[f"{other} + micfp_lr"] < 0.5
    assert (est.predict(X) == y).mean() > 0.9 and est.predict_proba(X).shape == (len(y), 5)
    assert est.choice_["feature_set"] == est.chosen_feature_set_ and est.choice_["params"]
    # clone-able: parameters in __init__, state only after fit
    c = clone(est)
    assert c.get_params()["column_sets"] == cols and not hasattr(c, "model_")


def test_micfp_auto_refuses_columns_without_candidates():
    meta = clip_table(n_per=10)
    X = np.zeros((len(meta), 3))
    with pytest.raises(ConfigError, match="none of the candidate feature sets"):
        MicfpAuto(column_sets=("thesis",) * 3).fit(X, meta.label.values)
    with pytest.raises(ConfigError, match="column sets"):
        MicfpAuto(column_sets=("channel",) * 2).fit(X, meta.label.values)
    with pytest.raises(ConfigError, match="chooses its own pipeline"):
        make_model(AUTO, 5)
    with pytest.raises(ConfigError, match="feature set of each column"):
        fit_classifier(AUTO, X, meta.label.values, np.zeros(len(meta)), 5)


def test_run_cell_records_the_choice_and_results_name_it():
    meta = clip_table(n_per=30)
    X, cols = _two_sets(meta, np.random.default_rng(2), "spectral")
    r = run_cell(X, meta, Cell(2.0, "all", "all", AUTO, "session"), MICS, n_boot=20, columns=np.array(cols))
    assert r["accuracy"] > 0.9
    (fold,) = r["chosen"]
    assert "spectral" in fold["feature_set"] and fold["fold"].startswith("train day1")
    ds = results_dataset([r], MICS)
    (c,) = ds.attrs["micfp"]["auto_choices"]
    assert c["classifier"] == AUTO and c["method"] == f"{fold['feature_set']} + {fold['classifier']}"


def test_micfp_auto_is_the_default():
    assert AUTO in DEFAULT_CLASSIFIERS
    cells = default_cells((2.0,), ("all",), ("session",))
    auto = [c for c in cells if c.classifier == AUTO]
    assert [c.feature_set for c in auto] == ["all"]


@pytest.mark.faults
def test_session_relative_without_a_reference_is_not_a_candidate():
    """Clips recorded by one microphone at their moment have NaN session-relative features (no
    reference); micfp_auto must not weigh that set, even when its other values would win."""
    rng = np.random.default_rng(3)
    meta = clip_table(sessions=("day1",))
    X, sets = _two_sets(meta, rng, informative="channel")
    rel = np.eye(6)[meta.label.values] * 10.0  # a perfect set...
    rel[::7] = np.nan  # ...but some clips have no reference
    X = np.hstack([X, rel])
    sets = sets + ("session-relative",) * 6
    model = MicfpAuto(column_sets=sets).fit(X, meta.label.values, selection_groups(meta.start_s.values // 30))
    assert model.chosen_feature_set_ != "session-relative"
    assert not any(k.startswith("session-relative") for k in model.cv_scores_)
    # with a reference everywhere it is weighed
    X[:, 12:] = np.eye(6)[meta.label.values] * 10.0
    model = MicfpAuto(column_sets=sets).fit(X, meta.label.values, selection_groups(meta.start_s.values // 30))
    assert any(k.startswith("session-relative") for k in model.cv_scores_)
