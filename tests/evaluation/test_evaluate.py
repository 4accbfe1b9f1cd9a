"""Protocols, leakage, metrics and CIs, without a cluster."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from pipeline.errors import ConfigError
from pipeline.evaluation.cell import Cell, cell_cost, run_cell
from pipeline.evaluation.grid import results_dataset
from pipeline.evaluation.metrics import identical_pairs, point_metrics, score
from pipeline.evaluation.models import make_model
from pipeline.evaluation.protocols import GROUP_SECONDS, cap_training, check_max_train, protocol_splits, time_groups

MICS = {1: "Shure SM7B", 2: "t.bone MB 7 Beta", 3: "Neumann KM 184 #1", 4: "Neumann KM 184 #2", 5: "RODE NT1-A"}


def clip_table(n_per=40, sessions=("day1", "day2"), types=("speech1", "music")):
    rows = []
    for s in sessions:
        for k in range(n_per):
            for lab in MICS:
                rows.append(dict(mic=MICS[lab], label=lab, session=s, recording=f"{s}-mic{lab}",
                                 sound_type=types[k % len(types)], start_s=2.0 * k, clip_seconds=2.0))
    return pd.DataFrame(rows)


def test_identical_pairs():
    assert identical_pairs(MICS) == [3, 4]
    assert identical_pairs({1: "a", 2: "b"}) == []


def test_point_metrics_match_sklearn(rng):
    y = rng.integers(1, 6, 300)
    p = np.where(rng.random(300) < 0.7, y, rng.integers(1, 6, 300))
    m = point_metrics(y, p, [1, 2, 3, 4, 5], [3, 4])
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, p, average="weighted"))
    sel = np.isin(y, [3, 4])
    assert m["pair_accuracy"] == pytest.approx(np.mean(y[sel] == p[sel]))


def test_bootstrap_interval_contains_point(rng):
    y = rng.integers(1, 6, 500)
    p = np.where(rng.random(500) < 0.8, y, 1)
    s = score(y, p, [1, 2, 3, 4, 5], [3, 4], np.arange(500) // 10, n_boot=200)
    assert s["accuracy_lo"] <= s["accuracy"] <= s["accuracy_hi"]
    assert s["accuracy_hi"] - s["accuracy_lo"] < 0.2
    assert np.asarray(s["confusion"]).sum() == 500


def test_bootstrap_equals_resampling_the_clips_of_whole_blocks(rng):
    # score() sums per-block counts; the reference concatenates the resampled blocks' clips
    y = rng.integers(1, 6, 900)
    p = np.where(rng.random(900) < 0.75, y, rng.integers(1, 7, 900))  # 6: a label outside the model
    groups = rng.integers(0, 40, 900)
    labels, pair, n_boot = [1, 2, 3, 4, 5], [3, 4], 50
    s = score(y, p, labels, pair, groups, n_boot=n_boot, seed=3)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(uniq.size)]
    draws = np.random.default_rng(3)
    acc, pair_acc, f1 = [], [], []
    for _ in range(n_boot):
        pick = np.concatenate([members[g] for g in draws.integers(0, uniq.size, uniq.size)])
        m = point_metrics(y[pick], p[pick], labels, pair)
        acc.append(m["accuracy"])
        pair_acc.append(m["pair_accuracy"])
        f1.append(m["macro_f1"])
    for key, ref in (("accuracy", acc), ("pair_accuracy", pair_acc), ("macro_f1", f1)):
        assert s[f"{key}_lo"] == pytest.approx(np.quantile(ref, 0.025), abs=1e-12)
        assert s[f"{key}_hi"] == pytest.approx(np.quantile(ref, 0.975), abs=1e-12)


def test_cell_cost_runs_the_long_cells_first():
    def cell(classifier="logistic_regression", protocol="session", seconds=2.0):
        return Cell(seconds, "all", "channel", classifier, protocol)

    assert cell_cost(cell("svc")) > cell_cost(cell(protocol="grouped-kfold"))
    assert cell_cost(cell(protocol="grouped-kfold")) > cell_cost(cell())
    assert cell_cost(cell(seconds=0.5)) > cell_cost(cell(seconds=5.0))
    assert cell_cost(Cell(0.0, "all", "channel", "logistic_regression", "session", "silence")) > 0


def test_session_split_separates_sessions():
    meta = clip_table()
    (_, tr, te), = protocol_splits(meta, "session")
    assert set(meta.session[tr]) == {"day1"} and set(meta.session[te]) == {"day2"}


def test_grouped_kfold_never_straddles_a_time_block():
    meta = clip_table()
    groups = time_groups(meta)
    # the five microphones' simultaneous clips share a group
    assert meta.assign(g=groups).groupby(["session", "start_s"]).g.nunique().max() == 1
    for _, tr, te in protocol_splits(meta, "grouped-kfold"):
        assert not set(groups[tr]) & set(groups[te])



@given(st.lists(st.tuples(st.sampled_from(["day1", "day2", "x y"]), st.floats(0, 5000, allow_nan=False)),
                max_size=60))
@settings(max_examples=60, deadline=None)
def test_time_groups_number_each_session_and_block_in_order_of_appearance(pairs):
    meta = pd.DataFrame(pairs, columns=["session", "start_s"])
    block = np.floor(meta["start_s"].to_numpy() / GROUP_SECONDS).astype(np.int64)
    expected = pd.factorize(meta["session"].to_numpy(object) + ":" + block.astype(str))[0]
    assert np.array_equal(time_groups(meta), expected)

def test_leave_sound_type_out():
    meta = clip_table()
    folds = list(protocol_splits(meta, "leave-sound-type-out"))
    assert len(folds) == 2
    for _, tr, te in folds:
        assert not set(meta.sound_type[tr]) & set(meta.sound_type[te])


def test_random_split_is_thesis_stratified_80_20():
    meta = clip_table()
    (_, tr, te), = protocol_splits(meta, "random")
    assert len(te) == pytest.approx(0.2 * len(meta), abs=1)
    assert meta.label[te].value_counts().nunique() <= 2


@pytest.mark.faults
def test_protocol_errors():
    with pytest.raises(ConfigError, match="two sessions"):
        list(protocol_splits(clip_table(sessions=("day1",)), "session"))
    with pytest.raises(ConfigError, match="unknown classifier"):
        Cell(2.0, "all", "channel", "xgboost", "session")


def test_scaler_and_pca_fitted_inside_fold():
    """No leakage: a test set with a huge offset must not move the fitted scaler."""
    meta = clip_table()
    X = np.random.default_rng(0).normal(size=(len(meta), 12))
    (_, tr, te), = protocol_splits(meta, "session")
    X2 = X.copy()
    X2[te] += 1e6
    m1 = make_model("logistic_regression", 5).fit(X[tr], meta.label.values[tr])
    m2 = make_model("logistic_regression", 5).fit(X2[tr], meta.label.values[tr])
    np.testing.assert_allclose(m1.named_steps["scale"].mean_, m2.named_steps["scale"].mean_)
    np.testing.assert_allclose(m1.named_steps["pca"].components_, m2.named_steps["pca"].components_)


def test_run_cell_learns_a_separable_problem():
    meta = clip_table()
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 10)) * 3
    X = centers[meta.label.values] + rng.normal(size=(len(meta), 10))
    for clf in ("logistic_regression", "micfp_lr"):
        r = run_cell(X, meta, Cell(2.0, "all", "channel", clf, "session"), MICS, n_boot=50)
        assert r["accuracy"] > 0.9
        assert r["n_test"] == (meta.session == "day2").sum()


def test_per_mic_intervals_and_fold_spread():
    meta = clip_table()
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 10)) * 1.5
    X = centers[meta.label.values] + rng.normal(size=(len(meta), 10))
    r = run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "grouped-kfold"), MICS, n_boot=100)
    assert len(r["folds"]) == 5 and r["fold_accuracy"] == [f["accuracy"] for f in r["folds"]]
    spread = r["fold_spread"]["accuracy"]
    assert spread["mean"] == pytest.approx(np.mean(r["fold_accuracy"])) and spread["std"] > 0
    for m in r["per_mic"].values():
        for k in ("precision", "recall", "f1"):
            assert m[f"{k}_lo"] <= m[k] <= m[f"{k}_hi"]
    assert sum(m["support"] for m in r["per_mic"].values()) == r["n_test"] == len(meta)


def test_tuned_svc_and_trees_learn():
    meta = clip_table(n_per=20)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 10)) * 3
    X = centers[meta.label.values] + rng.normal(size=(len(meta), 10))
    for clf in ("micfp_svc", "micfp_et"):
        assert run_cell(X, meta, Cell(2.0, "all", "channel", clf, "session"), MICS, n_boot=20)["accuracy"] > 0.9


def test_random_protocol_is_reproducible():
    meta = clip_table()
    X = np.random.default_rng(3).normal(size=(len(meta), 12)) + meta.label.values[:, None] * 0.3
    cell = Cell(2.0, "all", "thesis", "mlp", "random")
    a, b = run_cell(X, meta, cell, MICS, n_boot=10), run_cell(X, meta, cell, MICS, n_boot=10)
    assert a["confusion"] == b["confusion"]


# -- training cap ------------------------------------------------------------------------------
def _separable(meta, seed=0, spread=3.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, 10)) * spread
    return centers[meta.label.values] + rng.normal(size=(len(meta), 10))


def test_cap_training_keeps_label_x_sound_type_proportions():
    meta = clip_table(n_per=60, types=("speech1", "music", "music", "music", "sweep"))
    meta.loc[meta.index[(meta.sound_type == "sweep") & (meta.label == 2)][0], "sound_type"] = "rare"  # 1 of 600
    tr = np.flatnonzero(meta.session == "day1")
    kept = cap_training(tr, meta, 100)
    assert kept.size == 100 and np.all(np.diff(kept) > 0) and set(kept) <= set(tr)
    full = meta.iloc[tr].groupby(["label", "sound_type"]).size()
    got = meta.iloc[kept].groupby(["label", "sound_type"]).size().reindex(full.index, fill_value=0)
    assert (got >= 1).all()  # every (label, sound type) keeps a clip, the rare one too
    assert np.all(np.abs(got - full * 100 / tr.size) < 1)  # proportions kept up to rounding


def test_cap_training_is_seeded_and_a_no_op_under_the_cap():
    meta = clip_table(n_per=60)
    tr = np.flatnonzero(meta.session == "day1")
    a, b = cap_training(tr, meta, 50), cap_training(tr, meta, 50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, cap_training(tr, meta, 50, seed=1))
    for cap in (None, tr.size, tr.size + 1):
        np.testing.assert_array_equal(cap_training(tr, meta, cap), tr)


def test_cap_training_folds_share_their_draws():
    # Each fold's subsample is uniform within its training clips, but the draw is coordinated:
    # five capped folds use little more than one fold's worth of distinct clips.
    meta = clip_table(n_per=400)
    splits = list(protocol_splits(meta, "grouped-kfold"))
    kept = [cap_training(tr, meta, 400) for _, tr, _ in splits]
    assert len(kept) == 5 and all(k.size == 400 for k in kept)
    union = np.unique(np.concatenate(kept))
    assert union.size < 1.5 * 400  # independent draws: about 5 x 400 x (1 - overlap) ~ 1,500
    for (_, tr, _), k in zip(splits, kept):
        assert set(k) <= set(tr)


@pytest.mark.faults
def test_cap_training_rejects_bad_caps():
    meta = clip_table(n_per=10)
    tr = np.arange(len(meta))
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="positive integer"):
            check_max_train(bad)
    assert check_max_train(None) is None and check_max_train(np.int64(7)) == 7
    with pytest.raises(ConfigError, match="10 .label, sound type. groups"):
        cap_training(tr, meta, 9)  # 5 labels x 2 sound types: one clip each is already 10


@pytest.mark.parametrize("protocol", ["session", "grouped-kfold", "leave-sound-type-out"])
def test_run_cell_caps_training_never_test(protocol):
    meta = clip_table(n_per=40)
    X = _separable(meta)
    cell = Cell(2.0, "all", "channel", "logistic_regression", protocol)
    full = run_cell(X, meta, cell, MICS, n_boot=10)
    capped = run_cell(X, meta, cell, MICS, n_boot=10, max_train=60)
    assert full["max_train_clips"] is None and capped["max_train_clips"] == 60
    assert capped["n_test"] == full["n_test"]  # test sets are never subsampled
    assert [f["n_test"] for f in capped["folds"]] == [f["n_test"] for f in full["folds"]]
    assert all(f["n_train"] == 60 for f in capped["folds"])
    assert capped["n_train"] == 60 * len(capped["folds"]) < full["n_train"]
    assert full["n_train"] == sum(f["n_train"] for f in full["folds"])
    for _, tr, te in protocol_splits(meta, protocol):
        kept = cap_training(tr, meta, 60)
        assert set(kept) <= set(tr) and not set(kept) & set(te)
    assert capped["accuracy"] > 0.9


def test_results_dataset_records_n_train_and_the_cap():
    meta = clip_table(n_per=20)
    X = _separable(meta)
    cells = [Cell(2.0, "all", "channel", "logistic_regression", p) for p in ("session", "grouped-kfold")]
    results = [run_cell(X, meta, c, MICS, n_boot=5, max_train=50) for c in cells]
    ds = results_dataset(results, MICS)
    assert ds.attrs["micfp"]["max_train_clips"] == 50
    assert int(ds.n_train.sel(protocol="session").squeeze()) == 50
    assert int(ds.n_train.sel(protocol="grouped-kfold").squeeze()) == results[1]["n_train"]
    assert results_dataset([run_cell(X, meta, cells[0], MICS, n_boot=5)], MICS).attrs["micfp"]["max_train_clips"] \
        is None


def test_read_rows_block_by_block_equals_fancy_indexing(rng):
    import dask.array as da
    import xarray as xr

    from pipeline.evaluation.cell import read_rows

    full = rng.standard_normal((1000, 12)).astype(np.float32)
    rows = np.sort(rng.choice(1000, 437, replace=False))
    cols = np.array([0, 3, 4, 11])
    lazy = xr.DataArray(da.from_array(full, chunks=(128, 12)), dims=("clip", "feature"))
    for source in (lazy, xr.DataArray(full, dims=("clip", "feature"))):
        got = read_rows(source, rows, cols, step=50)
        assert got.dtype == np.float32 and np.array_equal(got, full[rows][:, cols])
