"""The session-relative feature set: the kernel's invariants, the cube stage, evaluation and refusals."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.errors import ConfigError
from pipeline.features import relative
from pipeline.features import sets as fsets
from pipeline.features.frames import FrameSettings

S = FrameSettings()

_values = hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 5)),
                     elements=st.floats(-80, 20, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(_values, st.integers(1, 4), st.integers(0, 2**31))
def test_relative_sums_to_zero_and_ignores_common_spectra(X, n_groups, seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, X.shape[0])
    rel = relative.relative_to_mean(X, groups)
    sizes = np.bincount(groups)[groups]
    assert np.isnan(rel[sizes < 2]).all()
    for g in np.unique(groups[sizes >= 2]):
        np.testing.assert_allclose(rel[groups == g].sum(axis=0), 0, atol=1e-3)
    # a spectrum common to every microphone of a moment (the played sound, the room) cancels
    common = rng.normal(0, 20, (n_groups, X.shape[1]))
    np.testing.assert_allclose(relative.relative_to_mean(X + common[groups], groups), rel, atol=1e-3)


def test_mean_is_over_the_microphones_present():
    X = np.array([[1.0], [3.0], [8.0], [5.0]])
    rel = relative.relative_to_mean(X, np.array([0, 0, 0, 1]))
    np.testing.assert_allclose(rel[:3, 0], [-3, -1, 4])
    assert np.isnan(rel[3, 0])


def test_usable_rows_need_a_second_microphone_at_the_moment():
    meta = pd.DataFrame({"session": ["a", "a", "a", "b"], "start_s": [0.0, 0.0, 2.0, 0.0],
                         "clip_seconds": [2.0] * 4, "mic": ["m1", "m2", "m1", "m1"]})
    assert relative.usable_rows(meta).tolist() == [True, True, False, False]


def test_set_layout_and_band_frequencies():
    names = fsets.set_names("session-relative", S)
    assert all(n.startswith("rel_") for n in names) and len(set(names)) == len(names)
    freq = fsets.feature_frequencies(names, S)
    bands = fsets.relative_bands(S)
    nb = bands.size
    # only the bands from relative.MIN_HZ up: below it the level moves with the microphone's position
    assert 0 < nb < S.band_edges.size - 1 and S.band_centres[bands].min() >= relative.MIN_HZ
    np.testing.assert_allclose(freq[:nb], S.band_centres[bands])
    np.testing.assert_allclose(freq[nb:2 * nb], S.band_centres[bands])
    assert fsets.expand("all") == ("thesis", "spectral", "channel")
    assert fsets.expand(("session-relative", "channel")) == ("channel", "session-relative")


@pytest.mark.faults
def test_single_file_paths_refuse_the_set():
    from pipeline.features.signal import clip_features
    from pipeline.identify.model import TrainSettings

    with pytest.raises(ConfigError, match="needs a whole session"):
        TrainSettings(feature_set="session-relative")
    with pytest.raises(ConfigError, match="needs a whole session"):
        clip_features(np.zeros(96000, np.float32), 1.0, "session-relative", S)


@pytest.fixture(scope="module")
def relative_cube(tmp_path_factory, client, tiny_store):
    from pipeline.features import FeatureConfig, compute_cube

    path = tmp_path_factory.mktemp("relcube") / "cube.zarr"
    compute_cube(tiny_store, str(path), FeatureConfig(feature_sets=("channel", "session-relative"),
                                                      clip_seconds=(2.0,)), client, quiet=True)
    return str(path)


@pytest.mark.cluster
def test_cube_relative_features_match_the_kernel(relative_cube):
    from pipeline.artifacts.cube import open_cube

    cube = open_cube(relative_cube)
    rel = cube.features.sel(feature=cube.feature_set == "session-relative").values
    bands = fsets.relative_bands(S)
    ch = cube.features.sel(feature=[f"ltas_mean_{k:02d}" for k in bands]).values
    ch = ch - ch.mean(axis=1, keepdims=True)  # the set's level is over its own bands
    keys = pd.DataFrame({"s": cube.session.values, "t": cube.start_s.values})
    groups = keys.groupby(["s", "t"]).ngroup().to_numpy()
    expect = relative.relative_to_mean(ch, groups)
    np.testing.assert_allclose(rel[:, : ch.shape[1]], expect, atol=1e-3)
    assert np.isfinite(rel).all()  # every moment of the simulated studio has all five microphones
    assert np.isfinite(cube.frequency_hz.sel(feature=f"rel_ltas_mean_{bands[0]:02d}").values)


@pytest.mark.cluster
def test_evaluate_session_relative_and_all_excludes_it(relative_cube):
    from pipeline.artifacts.cube import open_rows
    from pipeline.artifacts.kinds import mics_from_attrs
    from pipeline.evaluation.cell import Cell, run_cell, select, select_rows

    rows = open_rows(relative_cube)
    cell = Cell(2.0, "all", "session-relative", "micfp_lr", "session")
    X, meta = select(rows, cell)
    assert X.shape[1] == len(fsets.set_names("session-relative", S)) and np.isfinite(X).all()
    res = run_cell(X, meta, cell, mics_from_attrs(rows.attrs), n_boot=10)
    assert res["accuracy"] > 0.5
    all_rows, _ = select_rows(rows, Cell(2.0, "all", "all", "micfp_lr", "session"))
    assert all_rows.take().shape[1] == len(fsets.set_names("channel", S))


@pytest.mark.faults
def test_single_microphone_moments_are_left_out_or_refused():
    from pipeline.evaluation.cell import Cell, _with_reference

    cell = Cell(2.0, "all", "session-relative", "micfp_lr", "session")
    meta = pd.DataFrame({"session": ["a", "a", "a"], "start_s": [0.0, 0.0, 2.0], "clip_seconds": [2.0] * 3,
                         "mic": ["m1", "m2", "m1"]})
    rows, kept = _with_reference(np.arange(3), meta, cell)
    assert rows.tolist() == [0, 1] and len(kept) == 2
    with pytest.raises(ConfigError, match="one microphone only"):
        _with_reference(np.arange(1), meta.iloc[2:].reset_index(drop=True), cell)


def test_workflows_accept_the_set(tmp_path):
    """A workflow grid may name the set; the feature stage then computes it (and `all` does not include it)."""
    from pipeline.workflow.config import load_workflow

    text = """
[workflow]
name = "t"

[corpus]
simulate = { minutes_per_session = [1.0, 0.6], seed = 7 }

[[grid]]
clip_seconds = [2]
sound_types = ["all"]
feature_sets = ["session-relative", "channel"]
classifiers = ["micfp_lr"]
protocols = ["session"]
"""
    p = tmp_path / "wf.toml"
    p.write_text(text)
    wf = load_workflow(p)
    assert "session-relative" in wf.features.feature_sets
    p.write_text(text.replace("[[grid]]", '[features]\nfeature_sets = ["all"]\n\n[[grid]]'))
    with pytest.raises(ConfigError, match="computes only"):
        load_workflow(p)
