"""One function reads every artifact's kind; one test says whether micfp may replace a path."""

import json
import os

import pytest
import zarr

from pipeline.artifacts import kinds
from pipeline.artifacts.kinds import (CUBE_KIND, MODEL_KIND, REPORT_KIND, RESULTS_KIND, STORE_KIND, mics_from_attrs,
                                      read_kind, replaceable)


def test_every_kind_is_defined_once_in_kinds():
    """No module of the package spells a kind marker itself: each is a constant of artifacts/kinds.py."""
    from pathlib import Path

    import pipeline

    names = {v for k, v in vars(kinds).items() if k.endswith("_KIND")}
    assert len(names) == len([k for k in vars(kinds) if k.endswith("_KIND")])  # distinct values
    root = Path(pipeline.__file__).parent
    offenders = [f"{p.relative_to(root)}: {name}" for p in root.rglob("*.py") if p.name != "kinds.py"
                 for name in names if f'"{name}"' in p.read_text() or f"'{name}'" in p.read_text()]
    assert not offenders


def test_read_kind_of_each_artifact(tmp_path):
    import skops.io as sio
    import xarray as xr

    zarr.open_group(str(tmp_path / "s.zarr"), mode="w", attributes={"micfp": {"kind": STORE_KIND}})
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / kinds.FOLDER_MARKER).write_text(json.dumps({"kind": REPORT_KIND}))
    ds = xr.Dataset({"accuracy": ("cell", [0.5])}, attrs={"micfp": json.dumps({"kind": RESULTS_KIND})})
    ds.to_netcdf(tmp_path / "r.nc", engine="scipy")
    sio.dump({"kind": MODEL_KIND}, tmp_path / "m.skops")
    sio.dump({"kind": "someone-else"}, tmp_path / "other.skops")
    (tmp_path / "plain.txt").write_text("hello")
    zarr.open_group(str(tmp_path / "theirs.zarr"), mode="w")
    assert read_kind(tmp_path / "s.zarr") == STORE_KIND
    assert read_kind(str(tmp_path / "report")) == REPORT_KIND
    assert read_kind(tmp_path / "r.nc") == RESULTS_KIND
    assert read_kind(tmp_path / "m.skops") == MODEL_KIND
    for other in ("other.skops", "plain.txt", "theirs.zarr", "missing"):
        assert read_kind(tmp_path / other) is None


def test_replaceable(tmp_path):
    zarr.open_group(str(tmp_path / "c.zarr"), mode="w", attributes={"micfp": {"kind": CUBE_KIND}})
    (tmp_path / "empty").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "thesis.tex").write_text("precious")
    os.symlink(tmp_path / "c.zarr", tmp_path / "link.zarr")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / ".results.zarr.micfp-lock").write_text("")  # a run locked its results set inside
    assert replaceable(tmp_path / "new.zarr", CUBE_KIND) and replaceable(tmp_path / "empty", CUBE_KIND)
    assert replaceable(tmp_path / "locked", REPORT_KIND)  # only micfp's lock files in it
    assert replaceable(tmp_path / "c.zarr", CUBE_KIND) and replaceable(tmp_path / "c.zarr", (STORE_KIND, CUBE_KIND))
    assert not replaceable(tmp_path / "c.zarr", STORE_KIND)  # another micfp artifact
    assert not replaceable(tmp_path / "data", CUBE_KIND)  # someone else's data
    assert not replaceable(tmp_path / "link.zarr", CUBE_KIND)  # never written through a link


@pytest.mark.faults
def test_the_swap_and_the_output_check_agree_on_what_may_be_replaced(tmp_path):
    """``check_output`` (before compute) and ``check_replaceable`` (at the swap) use one test: an empty
    folder is replaced by both, another kind of artifact refused by both."""
    from pipeline.artifacts.outputs import check_output
    from pipeline.artifacts.swap import check_replaceable
    from pipeline.errors import InputError

    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", CUBE_KIND, what="feature cube")
    check_replaceable(tmp_path / "empty", CUBE_KIND, "feature cube")  # refused before: no kind marker
    zarr.open_group(str(tmp_path / "s.zarr"), mode="w", attributes={"micfp": {"kind": STORE_KIND}})
    with pytest.raises(InputError, match="not a micfp feature cube"):
        check_output(tmp_path / "s.zarr", CUBE_KIND, what="feature cube")
    with pytest.raises(InputError, match="not a micfp feature cube"):
        check_replaceable(tmp_path / "s.zarr", CUBE_KIND, "feature cube")


def test_mics_from_attrs():
    meta = {"kind": CUBE_KIND, "mics": {"1": "a", "12": "b"}}
    assert mics_from_attrs({"micfp": meta}) == mics_from_attrs(meta) == {1: "a", 12: "b"}
    assert mics_from_attrs({"micfp": json.dumps(meta)}) == {1: "a", 12: "b"}  # a NetCDF results set's attrs
    assert mics_from_attrs({"micfp": "0.3.0", "mics": {"2": "c"}}) == {2: "c"}  # a model's meta
    assert mics_from_attrs({}) == {}


@pytest.mark.faults
def test_a_file_that_only_looks_like_a_results_set_is_refused_in_one_line(tmp_path):
    from pipeline.artifacts.results import check_results_output
    from pipeline.errors import InputError

    (tmp_path / "results.nc").write_bytes(b"CDF\x01" + b"\xff" * 64)  # a NetCDF magic number, then junk
    assert read_kind(tmp_path / "results.nc") is None
    with pytest.raises(InputError, match="results.nc: exists and is not a micfp results set"):
        check_results_output(tmp_path / "results.nc")
