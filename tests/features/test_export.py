"""``micfp export``: a cube's clips as Parquet or CSV, round-tripping its features and coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.features.export import COORDS, EXPORT_KIND, INDEX

pytest.importorskip("pyarrow")


def reference(cube_path, **isel):
    from pipeline.features import open_cube

    cube = open_cube(cube_path).isel(**isel)
    coords = pd.DataFrame({n: cube[n].values for n in COORDS}, index=pd.RangeIndex(cube.sizes["clip"]))
    return cube, coords, cube.features.to_pandas()


def check_round_trip(table: pd.DataFrame, cube, coords: pd.DataFrame, feats: pd.DataFrame, rows: np.ndarray):
    assert table.index.name == INDEX and np.array_equal(table.index.values, rows)
    assert list(table.columns) == [*COORDS, *feats.columns]
    np.testing.assert_array_equal(table[list(feats.columns)].to_numpy(np.float32), feats.to_numpy())
    for name in COORDS:
        got, want = table[name].to_numpy(), coords[name].to_numpy()
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got.astype(float), want, rtol=0, atol=1e-12)
        else:
            assert [str(x) for x in got] == [str(x) for x in want], name


def test_export_parquet_round_trips_the_cube(tiny_cube, client, tmp_path, capsys):
    out = tmp_path / "features.parquet"
    assert main(["export", tiny_cube, str(out), "--scheduler", client.scheduler.address]) == 0
    cube, coords, feats = reference(tiny_cube)
    assert f"{cube.sizes['clip']} clips x {cube.sizes['feature']} features" in capsys.readouterr().out
    parts = sorted(p.name for p in out.iterdir() if p.suffix == ".parquet")
    assert parts and parts[0] == "part.000000.parquet"
    check_round_trip(pd.read_parquet(out), cube, coords, feats, np.arange(cube.sizes["clip"]))
    # an earlier export is replaced, whole
    assert main(["export", tiny_cube, str(out), "--segmentation", "silence", "--scheduler",
                 client.scheduler.address]) == 0
    rows = np.flatnonzero(cube.segmentation.values == "silence")
    check_round_trip(pd.read_parquet(out), cube, coords.iloc[rows], feats.iloc[rows], rows)


def test_export_csv_selects_clips_and_features(tiny_cube, client, tmp_path):
    out = tmp_path / "channel.csv"
    args = ["export", tiny_cube, str(out), "--feature-set", "channel", "--clip-seconds", "2",
            "--scheduler", client.scheduler.address]
    assert main(args) == 0
    cube, coords, feats = reference(tiny_cube)
    rows = np.flatnonzero(cube.clip_seconds.values == 2.0)
    cols = cube.feature_set.values == "channel"
    check_round_trip(pd.read_csv(out, index_col=INDEX), cube, coords.iloc[rows], feats.iloc[rows, cols], rows)
    before = out.stat().st_mtime_ns
    assert main(args) == 0 and out.stat().st_mtime_ns != before  # micfp's own CSV is replaced


def test_export_one_file_per_partition_in_order(tiny_cube, client, tmp_path, monkeypatch):
    """A cube stored in many blocks: one Parquet file per block, read back in clip order."""
    import pipeline.features.cube as cube_module
    from pipeline.features.export import export_cube, plan_export

    opened = cube_module.open_cube

    def in_blocks(path, **kw):
        cube = opened(path, **kw)
        return cube.assign(features=cube.features.chunk({"clip": 20}))

    monkeypatch.setattr(cube_module, "open_cube", in_blocks)
    out = tmp_path / "blocks.parquet"
    plan = plan_export(tiny_cube, out, clip_seconds=(1.0, 0.0))
    assert not out.exists()  # planned, not computed
    cube, coords, feats = reference(tiny_cube)
    rows = np.flatnonzero(np.isin(cube.clip_seconds.values, (1.0, 0.0)))
    assert plan.table.npartitions > 10 and plan.n_clips == rows.size  # more than ten: part names sort as numbers
    export_cube(tiny_cube, str(out), clip_seconds=(1.0, 0.0))
    assert len([p for p in out.iterdir() if p.suffix == ".parquet"]) == plan.table.npartitions
    check_round_trip(pd.read_parquet(out), cube, coords.iloc[rows], feats.iloc[rows], rows)


@pytest.mark.faults
def test_export_refuses_a_foreign_output(tiny_cube, tmp_path, capsys):
    foreign_csv = tmp_path / "theirs.csv"
    foreign_csv.write_text("a,b\n1,2\n")
    foreign_dir = tmp_path / "theirs.parquet"
    foreign_dir.mkdir()
    (foreign_dir / "data.parquet").write_bytes(b"not ours")
    for out in (foreign_csv, foreign_dir):
        # refused before a cluster starts: the scheduler named is never reached
        assert main(["export", tiny_cube, str(out), "--scheduler", "tcp://127.0.0.1:9"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{out}: exists and is not a micfp feature export" in err
    assert foreign_csv.read_text() == "a,b\n1,2\n" and (foreign_dir / "data.parquet").read_bytes() == b"not ours"


@pytest.mark.faults
@pytest.mark.parametrize("out, options, message", [
    ("x.txt", [], "x.txt: give an output ending in .parquet or .csv"),
    ("x.csv", ["--clip-seconds", "3"], "clip length 3 s is not in the cube (has 0, 1, 2"),
    ("x.csv", ["--segmentation", "silence", "--clip-seconds", "2"], "no clip is both of segmentation silence"),
    ("{cube}/x.csv", [], "is the input"),
])
def test_export_bad_requests_are_one_line(tiny_cube, tmp_path, capsys, out, options, message):
    target = out.format(cube=tiny_cube) if "{cube}" in out else str(tmp_path / out)
    assert main(["export", tiny_cube, target, *options, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / out).exists()


def test_folder_marker_kind(tiny_cube, client, tmp_path):
    from pipeline.artifacts.kinds import read_kind as artifact_kind

    out = tmp_path / "m.parquet"
    assert main(["export", tiny_cube, str(out), "--feature-set", "thesis", "--scheduler",
                 client.scheduler.address]) == 0
    assert artifact_kind(out) == EXPORT_KIND
