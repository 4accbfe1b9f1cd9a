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


@pytest.mark.parametrize("cmd", ["demo", "simulate", "ingest", "features", "evaluate", "info", "train", "identify", "verify", "run",
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


def _recording_folder(root):
    import numpy as np
    import soundfile as sf

    for session in ("day1", "day2"):
        (root / session).mkdir(parents=True)
        for label in (1, 2):
            sf.write(root / session / f"rec-{label}.wav", np.zeros(16000, np.int16), 16000, subtype="PCM_16")
    (root / "mics.csv").write_text("label,name\n1,Mic one\n2,Mic two\n")
    return root


def test_info_describes_a_recordings_folder(tmp_path):
    """`micfp info` on a folder ingest would read: its layout, recordings and lengths, nothing written."""
    src = _recording_folder(tmp_path / "rec")
    before = sorted(p.name for p in src.rglob("*"))
    p = micfp("info", str(src))
    assert p.returncode == 0, p.stderr
    assert "kaggle layout, 4 recordings" in p.stdout and "16000 Hz" in p.stdout
    assert "Mic one" in p.stdout and "day2" in p.stdout
    assert sorted(p.name for p in src.rglob("*")) == before


@pytest.mark.faults
def test_info_on_a_recordings_folder_with_a_bad_file_names_it(tmp_path):
    src = _recording_folder(tmp_path / "rec")
    (src / "day2" / "rec-2.wav").write_bytes(b"RIFF not audio")
    p = micfp("info", str(src))
    assert p.returncode == 2 and "rec-2.wav" in p.stderr and "Traceback" not in p.stderr
