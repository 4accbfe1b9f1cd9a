"""End to end on a real multi-process cluster: the demo, the cube schema, re-runs, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def demo(tmp_path_factory, client):
    from pipeline.workflow.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, "tiny", client, seed=3, n_boot=100, quiet=True)
    return out, result


def test_demo_beats_chance(demo):
    out, result = demo
    by_clf = {r["cell"]["classifier"]: r for r in result["results"]}
    assert set(by_clf) >= {"svc", "logistic_regression", "micfp_auto"}
    best = by_clf["micfp_auto"]
    assert best["accuracy"] > 0.4 and best["accuracy_lo"] > 0.2  # chance is 0.2 with five microphones
    assert best["cell"]["protocol"] == "session" and best["cell"]["feature_set"] == "all"
    (choice,) = best["chosen"]  # what micfp_auto chose inside day 1, recorded with the cell
    assert choice["classifier"] in ("micfp_lr", "micfp_et", "micfp_svc") and choice["cv_scores"]
    # whole files of the session protocol: 2 s files are the clips themselves
    files = {f["file_seconds"]: f for f in best["file_accuracy"]}
    assert files[2.0]["accuracy"] == pytest.approx(best["accuracy"]) and 10.0 in files
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert len(metrics["results"]) == 9
    assert (out / "report" / "metrics.csv").read_text().count("\n") == 10
    pngs = list((out / "report").rglob("*.png"))
    assert len(pngs) == 10 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cube_schema(demo):
    import pipeline

    out, _ = demo
    cube = pipeline.open_cube(out / "cube.zarr")
    assert cube.features.dims == ("clip", "feature") and cube.features.dtype == np.float32
    for c in ("mic", "label", "session", "recording", "sound_type", "clip_seconds", "start_s", "segmentation"):
        assert cube[c].dims == ("clip",), c
    assert cube.feature_set.dims == ("feature",)
    assert not np.isnan(cube.clip_seconds.values).any()
    assert set(cube.mic.values) == {"Shure SM7B", "t.bone MB 7 Beta", "Neumann KM 184 #1", "Neumann KM 184 #2",
                                    "RODE NT1-A"}
    # the queries docs/spec.md promises
    nt1a = cube.features.sel(clip=cube.mic == "RODE NT1-A")
    assert nt1a.sizes["clip"] == (cube.mic == "RODE NT1-A").sum()
    assert cube.where(cube.clip_seconds == 2, drop=True).sizes["clip"] == cube.sizes["clip"]
    assert cube.features.groupby("mic").mean().sizes["mic"] == 5
    df = cube.features.isel(clip=slice(0, 10)).to_pandas()
    assert df.shape == (10, cube.sizes["feature"])
    # the demo computes every set: the single-clip ones and session-relative (features.sets.DEFAULT_FEATURE_SETS)
    assert set(cube.feature_set.values) == {"thesis", "spectral", "channel", "session-relative"}


def test_demo_rerun_same_out(demo, client):
    from pipeline.workflow.demo import run_demo
    from pipeline.artifacts.store import AudioStore

    out, first = demo
    again = run_demo(out, "tiny", client, seed=3, n_boot=100, quiet=True)
    assert [r["accuracy"] for r in again["results"]] == [r["accuracy"] for r in first["results"]]
    assert again["timings"]["simulate_s"] < first["timings"]["simulate_s"] + 5
    assert AudioStore.open(str(out / "audio.zarr")).complete


def test_cli_demo_on_existing_scheduler(tmp_path, client):
    """`micfp demo --scheduler ADDRESS`: the console script attaches to a running cluster."""
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": ""}
    cmd = [sys.executable, "-m", "pipeline.cli", "demo", "--scale", "tiny", "--out", str(tmp_path / "o"),
           "--scheduler", client.scheduler.address]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "dashboard: http://" in p.stderr
    assert "identical pair" in p.stdout and "micfp auto (best by grouped CV)" in p.stdout
    assert "all -> " in p.stdout  # the demo table names the method micfp_auto chose
    assert (tmp_path / "o" / "report" / "metrics.json").exists()
