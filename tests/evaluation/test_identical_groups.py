"""Identical-model groups: declared (mics.csv model column) or by the #N name rule; per-group accuracy."""

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.cell import Cell, run_cell
from pipeline.evaluation.grid import results_dataset
from pipeline.evaluation.metrics import group_accuracies, identical_groups, identical_pairs

NAMED = {1: "Shure SM7B", 2: "t.bone MB 7 Beta", 3: "Neumann KM 184 #1", 4: "Neumann KM 184 #2", 5: "RODE NT1-A"}


def test_declared_models_override_the_name_rule():
    assert identical_groups(NAMED) == {"Neumann KM 184": [3, 4]}  # fallback: #N names
    models = {1: "SM58", 2: "SM58", 3: "KM 184", 4: "KM 184", 5: "SM58"}
    assert identical_groups(NAMED, models) == {"SM58": [1, 2, 5], "KM 184": [3, 4]}
    assert identical_pairs(NAMED, models) == [1, 2, 3, 4, 5]
    assert identical_groups(NAMED, {1: "a", 2: "b"}) == {}  # declared, all different: no group


def test_group_accuracies_from_a_confusion_matrix():
    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 5, 5]])
    acc = group_accuracies(cm, [1, 2, 3], {"g": [1, 2], "h": [3]})
    assert acc["g"] == pytest.approx(17 / 20) and acc["h"] == pytest.approx(0.5)
    assert np.isnan(group_accuracies(np.zeros((2, 2)), [1, 2], {"g": [1, 2]})["g"])


def test_every_group_is_scored_in_the_results():
    rows = [dict(mic=NAMED[lab], label=lab, session=s, recording=f"{s}-{lab}", sound_type="music", start_s=2.0 * k,
                 clip_seconds=2.0) for s in ("day1", "day2") for k in range(30) for lab in NAMED]
    meta = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 8)) * 3
    X = centers[meta.label.values] + rng.normal(size=(len(meta), 8))
    models = {1: "SM58", 2: "SM58", 3: "KM 184", 4: "KM 184", 5: "NT1"}
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "micfp_lr", "session"), NAMED, n_boot=20, mic_models=models)
    assert set(r["group_accuracy"]) == {"SM58", "KM 184"}
    ds = results_dataset([r], NAMED, models)
    assert list(ds.identical_group.values) == ["SM58", "KM 184"]
    got = ds["group_accuracy"].sel(identical_group="KM 184").values.ravel()[0]
    assert got == pytest.approx(r["group_accuracy"]["KM 184"])
    assert ds.attrs["micfp"]["identical_groups"] == {"SM58": ["Shure SM7B", "t.bone MB 7 Beta"],
                                                     "KM 184": ["Neumann KM 184 #1", "Neumann KM 184 #2"]}
