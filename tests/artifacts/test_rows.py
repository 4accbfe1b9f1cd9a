"""Row access to stored cubes (pipeline/artifacts/rows.py): what cells read on workers."""

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cube_helpers import synthetic_cube
from pipeline.artifacts.rows import FeatureRows, RowRun, row_runs
from pipeline.evaluation.cell import Cell, run_cell, select, select_rows


@pytest.fixture
def stored(tmp_path, rng):
    full = rng.standard_normal((1000, 12)).astype(np.float32)
    arr = zarr.create_array(str(tmp_path / "f.zarr"), shape=full.shape, chunks=(128, 12), dtype="float32")
    arr[:] = full
    return full, arr


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # read only
@given(data=st.data())
def test_take_equals_fancy_indexing_in_any_order(stored, data):
    full, arr = stored
    index = np.array(data.draw(st.lists(st.integers(0, 999), max_size=300)), np.int64)
    cols = np.array(sorted(data.draw(st.sets(st.integers(0, 11), min_size=1))))
    for rows in (FeatureRows([(arr, np.arange(1000), cols)]), FeatureRows([(full, np.arange(1000), cols)])):
        got = rows.take(index)
        assert got.dtype == np.float32 and np.array_equal(got, full[index][:, cols])


def test_pieces_subset_and_concatenation(stored, rng):
    full, arr = stored
    a = FeatureRows([(arr, np.arange(100, 400), None)])
    b = FeatureRows.of(full[:50] + 100)
    mask = rng.random(len(a)) < 0.3
    both = a.subset(mask) + b
    want = np.concatenate([full[100:400][mask], full[:50] + 100])
    assert both.shape == want.shape and np.array_equal(both.take(), want)
    index = rng.permutation(len(both))[:80]
    assert np.array_equal(both.take(index), want[index])
    with pytest.raises(ValueError, match="width"):
        FeatureRows([(arr, np.arange(3), None), (arr, np.arange(3), np.array([0]))])
    with pytest.raises(ValueError, match="mask of 3 rows"):
        a.subset(np.ones(3, bool))


def test_reads_one_chunk_at_a_time_and_keeps_the_last(stored, monkeypatch):
    full, arr = stored
    rows = FeatureRows([(arr, np.arange(1000), None)])
    seen = []
    real = zarr.Array.__getitem__

    def spy(self, sel):
        seen.append(sel)
        return real(self, sel)

    monkeypatch.setattr(zarr.Array, "__getitem__", spy)
    for a in range(0, 1000, 50):  # consecutive prediction batches
        assert np.array_equal(rows.take(np.arange(a, a + 50)), full[a : a + 50])
    assert seen == [slice(c * 128, (c + 1) * 128) for c in range(8)]  # each chunk decoded once, alone


def test_row_runs():
    seg = np.array(["fixed"] * 5 + ["silence"] * 2, dtype=object)
    length = np.array([0.5, 0.5, 2.0, 2.0, 0.5, 0.0, 0.0])
    assert row_runs(seg, length) == [RowRun("fixed", 0.5, 0, 2), RowRun("fixed", 2.0, 2, 4),
                                     RowRun("fixed", 0.5, 4, 5), RowRun("silence", 0.0, 5, 7)]
    assert row_runs(seg[:0], length[:0]) == []


def test_cube_rows_select_like_the_xarray_cube(tiny_cube):
    from pipeline.artifacts.cube import open_cube, open_rows

    cube, rows_cube = open_cube(tiny_cube), open_rows(tiny_cube)
    assert rows_cube.runs and rows_cube.attrs["micfp"]["row_groups"]  # recorded by compute_cube
    assert rows_cube.runs == row_runs(cube.segmentation.values, cube.clip_seconds.values)  # one run per group
    assert rows_cube.values("session") == [str(s) for s in dict.fromkeys(cube.session.values)]
    st_ = str(cube.sound_type.values[0])
    for cell in (Cell(1.0, "all", "channel", "logistic_regression", "session"),
                 Cell(2.0, st_, "spectral", "logistic_regression", "session"),
                 Cell(2.0, "all", "all", "logistic_regression", "session"),
                 Cell(0.0, "all", "channel", "logistic_regression", "session", "silence")):
        X, meta = select(cube, cell)
        R, meta_r = select_rows(rows_cube, cell)
        assert R.shape == X.shape and np.array_equal(R.take(), X)
        assert meta.equals(meta_r)


def test_cube_rows_of_a_cube_without_recorded_groups(tmp_path):
    """Cubes written before the row groups were recorded (or by hand) are read the same way."""
    import xarray as xr

    from pipeline.artifacts.cube import open_rows

    path = synthetic_cube(tmp_path / "c.zarr")
    rows_cube = open_rows(path)
    assert "row_groups" not in rows_cube.attrs["micfp"]
    assert rows_cube.runs == [RowRun("fixed", 2.0, 0, 160)] and rows_cube.clip_lengths == [2.0]
    cell = Cell(2.0, "music", "channel", "logistic_regression", "session")
    R, meta = select_rows(rows_cube, cell)
    X, meta_x = select(xr.open_zarr(path, consolidated=False).load(), cell)
    assert np.array_equal(R.take(), X) and list(meta["sound_type"].unique()) == ["music"] and len(meta) == 80
    assert sorted(rows_cube.values("sound_type")) == ["music", "speech"]


def test_run_cell_on_unread_rows_equals_the_matrix(tiny_cube):
    from pipeline.artifacts.cube import open_rows

    from pipeline.artifacts.kinds import mics_from_attrs

    mics = mics_from_attrs(open_rows(tiny_cube).attrs)
    for protocol in ("session", "grouped-kfold"):
        cell = Cell(1.0, "all", "channel", "logistic_regression", protocol)
        R, meta = select_rows(open_rows(tiny_cube), cell)
        a = run_cell(R, meta, cell, mics, n_boot=20, max_train=60)
        b = run_cell(R.take(), meta, cell, mics, n_boot=20, max_train=60)
        assert a == b



def test_small_cube_loads_without_the_inherited_distributed_scheduler(tiny_cube):
    """A worker may inherit ``scheduler: dask.distributed`` from its parent's dask config (a
    client created earlier in that process) without having a client itself; loading a small
    cube in a cell task must not depend on it."""
    import subprocess
    import sys

    code = ("import dask; dask.config.set(scheduler='dask.distributed')\n"
            "from pipeline.artifacts.cube import cached_cube\n"
            f"print(int(cached_cube({str(tiny_cube)!r}).sizes['clip']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) > 0

def test_large_cubes_are_opened_for_row_access_on_workers(tiny_cube, monkeypatch):
    from pipeline.artifacts import cube as cube_mod
    from pipeline.artifacts.rows import CubeRows
    from pipeline.evaluation.cell import CellTask, WorkCell, _cell_task

    cell = Cell(1.0, "all", "channel", "logistic_regression", "session")
    cube_mod.clear_cache()
    small = _cell_task(CellTask(tiny_cube, WorkCell(cell), 20))
    assert not isinstance(cube_mod.cached_cube(tiny_cube), CubeRows)  # a small cube is held in memory
    cube_mod.clear_cache()
    monkeypatch.setattr(cube_mod, "CUBE_LOAD_LIMIT", 0)
    large = _cell_task(CellTask(tiny_cube, WorkCell(cell), 20))
    assert isinstance(cube_mod.cached_cube(tiny_cube), CubeRows)
    large.pop("seconds"), small.pop("seconds")  # wall time differs
    assert large == small
    cube_mod.clear_cache()


@pytest.mark.faults
def test_a_cell_the_cube_cannot_serve_is_a_clear_error(tmp_path):
    from pipeline.errors import ConfigError
    from pipeline.artifacts.cube import open_rows

    cube = open_rows(synthetic_cube(tmp_path / "c.zarr"))
    with pytest.raises(ConfigError, match=r"no clips for .*clip lengths \[2.0\] and sound types \['music', 'speech'\]"):
        select_rows(cube, Cell(2.0, "sweep", "channel", "logistic_regression", "session"))
    with pytest.raises(ConfigError, match="feature set 'spectral' is not in the cube"):
        select_rows(cube, Cell(2.0, "all", "spectral", "logistic_regression", "session"))
