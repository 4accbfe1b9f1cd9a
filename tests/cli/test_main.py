"""The command line: one clear line and a non-zero exit on bad input, no traceback."""

import subprocess
import sys

import pytest


def micfp(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.faults
def test_missing_store_is_one_line(tmp_path):
    p = micfp("features", str(tmp_path / "nope.zarr"), str(tmp_path / "cube.zarr"))
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0
    assert "nope.zarr" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.faults
def test_bad_clip_length_fails_before_compute(tmp_path):
    p = micfp("features", str(tmp_path / "x.zarr"), str(tmp_path / "c.zarr"), "--clip-seconds", "0")
    assert p.returncode == 2 and "clip length must be positive" in p.stderr


@pytest.mark.faults
def test_unknown_feature_set(tmp_path):
    p = micfp("features", str(tmp_path / "x.zarr"), str(tmp_path / "c.zarr"), "--feature-set", "mfcc")
    assert p.returncode == 2 and "unknown feature set 'mfcc'" in p.stderr


@pytest.mark.faults
def test_bad_max_train_clips_fails_before_compute(tmp_path):
    p = micfp("evaluate", str(tmp_path / "cube.zarr"), str(tmp_path / "out"), "--max-train-clips", "0")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "--max-train-clips must be a positive integer" in p.stderr and "Traceback" not in p.stderr


def test_info_on_non_store(tmp_path):
    (tmp_path / "f.txt").write_text("hello")
    p = micfp("info", str(tmp_path / "f.txt"))
    assert p.returncode != 0 and "f.txt" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("cmd", ["demo", "simulate", "ingest", "features", "evaluate", "info", "train", "identify", "run",
                                 "report", "cluster"])
def test_help(cmd):
    assert micfp(cmd, "--help").returncode == 0


def test_info_on_a_cube_and_a_results_set(tiny_cube, tmp_path):
    """`micfp info` opens each kind with its own opener: a cube, and a NetCDF results set too."""
    import xarray as xr

    from pipeline.artifacts.kinds import RESULTS_KIND
    from pipeline.artifacts.results import write_results

    p = micfp("info", tiny_cube)
    assert p.returncode == 0, p.stderr
    assert "feature cube" in p.stdout and "complete" in p.stdout and "feature sets:" in p.stdout
    ds = xr.Dataset({"accuracy": (("classifier",), [0.75])}, coords={"classifier": ["micfp_lr"]},
                    attrs={"micfp": {"kind": RESULTS_KIND, "mics": {"1": "a"}}})
    write_results(ds, tmp_path / "results.nc")
    p = micfp("info", str(tmp_path / "results.nc"))
    assert p.returncode == 0, p.stderr
    assert "results set" in p.stdout and "micfp_lr" in p.stdout and "0.75" in p.stdout
