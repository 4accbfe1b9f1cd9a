"""`micfp evaluate`, `demo` and `run` share one path: the same cell task, results writer and report.

`micfp evaluate CUBE OUT ...` is a workflow built in code; the same grid written as a TOML
workflow on the same cube gives the same results set, number for number.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

pytestmark = pytest.mark.cluster

#: What legitimately differs between the two results sets: the cells' wall time, and the
#: attributes naming the run (the workflow's name and where its config came from).
RUN_VARIABLES = ("cell_seconds",)
RUN_ATTRS = ("workflow", "config")

ONE_CELL = """
[workflow]
name = "one-cell"

[corpus]
cube = "{cube}"

[[grid]]
clip_seconds = [2]
feature_sets = ["channel"]
classifiers = ["micfp_lr"]
protocols = ["session"]
"""


def _comparable(ds: xr.Dataset) -> tuple[xr.Dataset, dict]:
    meta = {k: v for k, v in ds.attrs["micfp"].items() if k not in RUN_ATTRS}
    ds = ds.drop_vars(list(RUN_VARIABLES))
    ds.attrs = {}
    return ds, meta


def test_evaluate_and_a_one_cell_workflow_give_identical_results(tiny_cube, client, tmp_path, capsys):
    from pipeline.artifacts.results import open_results
    from pipeline.cli import main

    addr = client.scheduler.address
    ev_out, run_out = tmp_path / "evaluate", tmp_path / "run"
    assert main(["evaluate", tiny_cube, str(ev_out), "--clip-seconds", "2", "--classifiers", "micfp_lr",
                 "--feature-set", "channel", "--protocol", "session", "--scheduler", addr]) == 0
    ev_stdout, ev_stderr = capsys.readouterr()
    # the library's messages (logging) reach stderr through the handler the CLI configures
    assert "cells: 1 in the grid, 0 already done, 1 to run" in ev_stderr
    cfg = tmp_path / "one-cell.toml"
    cfg.write_text(ONE_CELL.format(cube=tiny_cube))
    assert main(["run", str(cfg), "--out", str(run_out), "--scheduler", addr]) == 0
    run_stdout = capsys.readouterr().out

    ev, ev_meta = _comparable(open_results(ev_out / "results.zarr"))
    run, run_meta = _comparable(open_results(run_out / "results.zarr"))
    assert ev.sizes["classifier"] == 1 and np.isfinite(ev.accuracy.values).all()
    xr.testing.assert_identical(ev, run)
    assert ev_meta == run_meta  # same cube, sessions, mics, basis (bootstrap, code version)

    # the same report files from the same writer, and the same summary table on stdout
    for out, folder in ((ev_out, ev_out), (run_out, run_out / "report")):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert [r["cell"]["classifier"] for r in metrics["results"]] == ["micfp_lr"]
        assert (folder / "metrics.csv").is_file() and (folder / "classification_report.csv").is_file()
        assert (folder / "summary.txt").read_text().startswith("classifier")
    assert (ev_out / "index.html").is_file() and (run_out / "report" / "index.html").is_file()
    table = [line for line in ev_stdout.splitlines() if "micfp (channel LR, tuned)" in line]
    assert table and table == [line for line in run_stdout.splitlines() if "micfp (channel LR, tuned)" in line]


@pytest.mark.faults
def test_evaluate_refuses_a_cell_the_cube_cannot_serve_before_compute(tiny_cube, tmp_path, capsys):
    """A clip length the cube lacks is an error naming it (a TOML grid would leave it out with a note)."""
    from pipeline.cli import main

    code = main(["evaluate", tiny_cube, str(tmp_path / "out"), "--clip-seconds", "3", "--classifiers", "micfp_lr",
                 "--scheduler", "tcp://127.0.0.1:1"])  # no cluster is contacted: the check comes first
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "clip length 3.0 s is not in the cube" in err[0]
    assert not (tmp_path / "out" / "results.zarr").exists()


def test_evaluate_the_silence_split_clips(tiny_cube, client, tmp_path, capsys):
    """The thesis's own path end to end: `micfp evaluate --segmentation silence` scores the cube's
    silence-split clips (clip length 0 in the results set)."""
    from pipeline.artifacts.results import open_results
    from pipeline.cli import main

    out = tmp_path / "silence"
    assert main(["evaluate", tiny_cube, str(out), "--segmentation", "silence", "--classifiers", "micfp_lr",
                 "--feature-set", "channel", "--protocol", "session",
                 "--scheduler", client.scheduler.address]) == 0, capsys.readouterr().err
    ds = open_results(out / "results.zarr")
    assert ds.clip_seconds.values.tolist() == [0.0]
    assert np.isfinite(ds.accuracy.sel(clip_seconds=0.0).values).any()


@pytest.mark.faults
def test_a_silence_only_cube_says_how_to_evaluate_it():
    """A cube of silence-split clips only: the fixed-length default names the option that works."""
    from pipeline.errors import ConfigError
    from pipeline.evaluation.cell import Cell, select_check

    have = {"feature_set": ["channel"], "clip_seconds": [], "sound_type": ["speech"], "session": ["a", "b"]}
    with pytest.raises(ConfigError, match=r"clip length 2.0 s is not in the cube \(has \[\]\); it holds only "
                                          r"silence-split clips: evaluate them with --segmentation silence"):
        select_check(None, Cell(2.0, "all", "channel", "micfp_lr", "session"), have=have)
    select_check(None, Cell(0.0, "all", "channel", "micfp_lr", "session", segmentation="silence"), have=have)
