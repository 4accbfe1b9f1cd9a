"""Workflow configs (validation before compute), grid expansion, the results ledger, and runs on a
real two-process cluster: a re-run with one more clip length computes only the new cells."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cube_helpers import synthetic_cube
from pipeline.errors import ConfigError
from pipeline.artifacts.results import CLEAN
from pipeline.evaluation.cell import WorkCell
from pipeline.workflow.grid import availability_from_segments, expand_grid
from pipeline.workflow.config import load_workflow
from pipeline.workflow.ledger import ResultsLedger
from pipeline.artifacts.results import open_results

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path, text, name="wf.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


BASE = """
[workflow]
name = "t"
bootstrap = 20

[corpus]
simulate = { minutes_per_session = [1.0, 0.6], seed = 7 }

[[grid]]
clip_seconds = [1, 2]
sound_types = ["all", "each"]
feature_sets = ["thesis", "channel"]
classifiers = ["logistic_regression"]
protocols = ["session", "leave-sound-type-out"]
"""


# -- config validation -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["thesis", "ablation", "robustness", "thesis-scale", "forensic"])
def test_shipped_workflows_validate(name):
    wf = load_workflow(ROOT / "workflows" / f"{name}.toml")
    assert wf.name == name
    assert (ROOT / "workflows" / f"{name}.py").is_file()
    from pipeline.workflow.grid import check_before_compute

    cells, _ = check_before_compute(wf)  # no compute: segments come from the simulated plan
    assert cells


def test_ablation_grid_has_the_issue_axes():
    wf = load_workflow(ROOT / "workflows" / "ablation.toml")
    from pipeline.workflow.grid import check_before_compute

    cells, notes = check_before_compute(wf)
    axes = {k: {getattr(c.cell, k) for c in cells} for k in ("clip_seconds", "sound_type", "feature_set",
                                                              "classifier", "protocol")}
    assert axes["clip_seconds"] == {0.25, 0.5, 1.0, 2.0, 5.0}
    assert {"all", "sweep", "music", "speech1"} <= axes["sound_type"]
    assert axes["feature_set"] == {"thesis", "spectral", "channel"}
    assert {"logistic_regression", "micfp_lr"} <= axes["classifier"]
    assert axes["protocol"] == {"session", "grouped-kfold", "leave-sound-type-out"}
    assert any("leave-sound-type-out" in n for n in notes)


def test_thesis_scale_workflow_caps_training():
    wf = load_workflow(ROOT / "workflows" / "thesis-scale.toml")
    assert wf.max_train_clips == 20000 and wf.bootstrap == 200
    assert wf.corpus.minutes_per_session == (360.0, 90.0)
    assert load_workflow(ROOT / "workflows" / "ablation.toml").max_train_clips is None


def test_robustness_workflow_conditions():
    wf = load_workflow(ROOT / "workflows" / "robustness.toml")
    assert set(wf.conditions) == {CLEAN, "noise-40dB", "noise-20dB", "noise-10dB", "mp3-64k", "mp3-128k",
                                  "vorbis-64k", "vorbis-128k", "opus-24k", "opus-48k"}


@pytest.mark.parametrize("patch,message", [
    (("classifiers = [\"logistic_regression\"]", "classifiers = [\"logistic_regresion\"]"), "unknown classifier"),
    (("protocols = [", "protokols = ["), "unknown key 'protokols'"),
    (("[corpus]\nsimulate", "[corpus]\nstore = \"/nonexistent/a.zarr\"\nsimulate"), "exactly one of"),
    (("bootstrap = 20", "bootstrap = \"many\""), "expected an integer"),
    (("bootstrap = 20", "bootstrap = 20\nmax_train_clips = 0"), "max_train_clips must be a positive integer"),
    (("bootstrap = 20", "bootstrap = 20\nmax_train_clips = 1.5e4"), "max_train_clips = 15000.0: expected an integer"),
    (("clip_seconds = [1, 2]", "clip_seconds = [1, -2]"), "must be positive"),
    (("feature_sets = [\"thesis\", \"channel\"]", "feature_sets = [\"mfcc\"]"), "unknown feature set"),
    (("[[grid]]", "[robustness]\ncodecs = [{ codec = \"aac\", kbps = [64] }]\n\n[[grid]]"), "unknown codec"),
    (("[[grid]]", "[features]\nclip_seconds = [1]\n\n[[grid]]"), "clip length 2 s"),
    (("name = \"t\"", "name = \"t\"\n[workflow.extra]"), "expected"),
])
@pytest.mark.faults
def test_config_errors_name_the_file_and_key(tmp_path, patch, message):
    text = textwrap.dedent(BASE).replace(*patch)
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_workflow(p)
    assert str(p) in str(err.value)
    assert message in str(err.value)


@pytest.mark.faults
def test_bad_toml_and_missing_file(tmp_path):
    p = _write(tmp_path, "[workflow\nname=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_workflow(p)
    with pytest.raises(ConfigError, match="no such workflow file"):
        load_workflow(tmp_path / "nope.toml")


@pytest.mark.faults
def test_clip_longer_than_the_corpus_fails_before_compute(tmp_path):
    from pipeline.workflow.grid import check_before_compute

    wf = load_workflow(_write(tmp_path, BASE.replace("clip_seconds = [1, 2]", "clip_seconds = [1, 100]")))
    with pytest.raises(ConfigError, match="longer than every simulated recording"):
        check_before_compute(wf)


def test_robustness_conditions_need_definitions(tmp_path):
    p = _write(tmp_path, BASE.replace("protocols = [", "conditions = [\"noise\"]\nprotocols = ["))
    with pytest.raises(ConfigError, match="defines none"):
        load_workflow(p)


# -- grid expansion ----------------------------------------------------------------------
def _avail(types_by_session: dict[str, list[str]], clip=(1.0, 2.0)):
    from pipeline.features import FeatureConfig

    segs = {s: [(i * 40.0, i * 40.0 + 35.0, t) for i, t in enumerate(ts)] for s, ts in types_by_session.items()}
    return availability_from_segments(segs, 1000, FeatureConfig(clip_seconds=clip)), list(segs)


def test_expand_grid_counts_and_notes(tmp_path):
    wf = load_workflow(_write(tmp_path, BASE))
    avail, sessions = _avail({"day1": ["music", "speech", "sweep"], "day2": ["music", "speech"]})
    cells, notes = expand_grid(wf, avail, sessions)
    # session: (all + music + speech) x 2 clips x 2 sets; sweep is not in day2 -> left out;
    # leave-sound-type-out only with "all": 2 clips x 2 sets
    assert len(cells) == 3 * 2 * 2 + 2 * 2
    assert len({c.key for c in cells}) == len(cells)
    assert all(c.cell.sound_type == "all" for c in cells if c.cell.protocol == "leave-sound-type-out")
    assert not any(c.cell.sound_type == "sweep" for c in cells)
    assert any("sweep" in n and "test session" in n for n in notes)


def test_expand_grid_robustness_only_under_session(tmp_path):
    text = BASE.replace("protocols = [\"session\", \"leave-sound-type-out\"]",
                        "protocols = [\"session\", \"grouped-kfold\"]\nconditions = [\"clean\", \"noise\"]")
    text = text.replace("[[grid]]", "[robustness]\nsnr_db = [20, 10]\n\n[[grid]]")
    wf = load_workflow(_write(tmp_path, text))
    avail, sessions = _avail({"day1": ["music", "speech"], "day2": ["music", "speech"]})
    cells, notes = expand_grid(wf, avail, sessions)
    conds = {c.condition for c in cells}
    assert conds == {CLEAN, "noise-20dB", "noise-10dB"}
    assert all(c.cell.protocol == "session" for c in cells if c.condition != CLEAN)
    assert any("session protocol" in n for n in notes)


def test_expand_grid_runs_enrolled_verification_with_classifiers_that_have_probabilities(tmp_path):
    text = BASE.replace('classifiers = ["logistic_regression"]', 'classifiers = ["svc", "logistic_regression"]')
    text = text.replace('protocols = ["session", "leave-sound-type-out"]',
                        'protocols = ["enrolled-verification", "verification"]')
    text = text.replace('sound_types = ["all", "each"]', 'sound_types = ["all"]')
    wf = load_workflow(_write(tmp_path, text))
    avail, sessions = _avail({"day1": ["music"], "day2": ["music"]})
    cells, _ = expand_grid(wf, avail, sessions)
    # the thesis's SVC has no probabilities: not under enrolled-verification; verification runs its score model
    assert {(c.cell.classifier, c.cell.protocol) for c in cells} == {
        ("logistic_regression", "enrolled-verification"), ("micfp_verify", "verification")}


def test_unknown_sound_type_is_a_config_error(tmp_path):
    wf = load_workflow(_write(tmp_path, BASE.replace('["all", "each"]', '["whale song"]')))
    avail, sessions = _avail({"day1": ["music"], "day2": ["music"]})
    with pytest.raises(ConfigError, match="whale song"):
        expand_grid(wf, avail, sessions)


def test_silence_segmentation_gives_clip_zero(tmp_path):
    text = BASE.replace("clip_seconds = [1, 2]", "clip_seconds = [2]\nsegmentations = [\"fixed\", \"silence\"]")
    wf = load_workflow(_write(tmp_path, text))
    assert wf.features.segmentations == ("fixed", "silence")
    avail, sessions = _avail({"day1": ["music", "speech"], "day2": ["music", "speech"]}, clip=(2.0,))
    avail = pd.concat([avail, pd.DataFrame([{"session": s, "sound_type": "music", "clip_seconds": 0.0,
                                             "segmentation": "silence", "block": 0, "n": 3}
                                            for s in sessions])])
    cells, _ = expand_grid(wf, avail, sessions)
    sil = [c for c in cells if c.cell.segmentation == "silence"]
    assert sil and all(c.cell.clip_seconds == 0.0 for c in sil)


# -- ledger ----------------------------------------------------------------------------------
def test_ledger_skips_done_and_restarts_on_new_basis(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline")
    p = tmp_path / "r.cells.jsonl"
    led = ResultsLedger(p, {"store": "a"})
    led.record("k1", {"accuracy": np.float64(0.5), "cell": {"clip_seconds": 1.0}})
    with p.open("a") as fh:
        fh.write('{"key": "k2", "accur')  # a torn line from a killed run
    again = ResultsLedger(p, {"store": "a"})
    assert again.done("k1") and not again.done("k2")
    assert again.records["k1"]["accuracy"] == 0.5
    other = ResultsLedger(p, {"store": "b"})
    assert not other.done("k1")
    msgs = caplog.messages
    assert any("starting over" in m for m in msgs)


# -- worker side: cube cache and degraded cells (synthetic cubes, no cluster) ----------------


def test_cube_cache_loads_once_and_notices_a_rewrite(tmp_path):
    import os

    from pipeline.evaluation.cell import Cell
    from pipeline.evaluation.cell import _cell_task, CellTask
    from pipeline.artifacts.cube import cache_stats, cached_cube, clear_cache

    clear_cache()
    cube = synthetic_cube(tmp_path / "c.zarr")
    for clf in ("logistic_regression", "knn", "naive_bayes"):
        r = _cell_task(CellTask(cube, WorkCell(Cell(2.0, "all", "channel", clf, "session")), 10))
        assert r["n_test"] == 80 and r["condition"] == CLEAN and r["seconds"] > 0
    assert cache_stats() == {cube: 1}
    first = cached_cube(cube)
    synthetic_cube(tmp_path / "c.zarr", seed=1)  # recomputed in place
    st = os.stat(os.path.join(cube, "zarr.json"))
    os.utime(os.path.join(cube, "zarr.json"), ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = cached_cube(cube)
    assert cache_stats() == {cube: 2} and not np.array_equal(first.features.values, second.features.values)
    clear_cache()


def test_degraded_cell_data_trains_clean_tests_degraded(tmp_path):
    from pipeline.evaluation.cell import Cell
    from pipeline.evaluation.cell import _cell_task, cell_data, CellTask
    from pipeline.artifacts.cube import clear_cache

    clean = synthetic_cube(tmp_path / "clean.zarr")
    degraded = synthetic_cube(tmp_path / "deg.zarr", sessions=("day2",), offset=100.0, seed=5)
    cell = Cell(2.0, "music", "channel", "logistic_regression", "session")
    _, Xc, mc = cell_data(CellTask(clean, WorkCell(cell), 10))
    _, Xd, md = cell_data(CellTask(clean, WorkCell(cell, "noise-10dB"), 10, degraded))
    Xc, Xd = Xc.take(), Xd.take()  # the cell's rows are read when asked for
    assert len(md) == len(mc) == 80 and md["session"].iloc[0] == "day1"
    train = (md["session"] == "day1").to_numpy()
    np.testing.assert_array_equal(Xd[train], Xc[(mc["session"] == "day1").to_numpy()])
    assert (Xd[~train] > 50).all()  # every test clip comes from the degraded cube
    r = _cell_task(CellTask(clean, WorkCell(cell, "noise-10dB"), 10, degraded))
    assert r["condition"] == "noise-10dB" and r["n_test"] == 40 and r["n_train"] == 40
    r = _cell_task(CellTask(clean, WorkCell(cell, "noise-10dB"), 10, degraded, max_train=15))
    assert r["n_test"] == 40 and r["n_train"] == 15 and r["max_train_clips"] == 15  # the cap trims training only
    clear_cache()


# -- runs on the cluster ---------------------------------------------------------------------
RUN = """
[workflow]
name = "itest"
bootstrap = 20
report = false

[corpus]
store = "{store}"

[features]
feature_sets = ["channel"]
{robustness}
[[grid]]
clip_seconds = {clips}
sound_types = ["all"]
feature_sets = ["channel"]
classifiers = ["logistic_regression"]
protocols = ["session"]
conditions = {conditions}
"""
CLEAN_ONLY = {"robustness": "", "conditions": '["clean"]'}
WITH_NOISE = {"robustness": "\n[robustness]\nsnr_db = [10]\n", "conditions": '["clean", "noise"]'}


def test_run_then_rerun_with_one_more_clip_length(client, tiny_store, tmp_path, caplog):
    from pipeline.cli import main
    from pipeline.artifacts.cube import cache_stats
    from pipeline.workflow.run import run_workflow

    out = tmp_path / "out"
    cfg = _write(tmp_path, RUN.format(store=tiny_store, clips="[2]", **CLEAN_ONLY))
    perf = tmp_path / "perf.html"
    addr = client.scheduler.address
    assert main(["run", str(cfg), "--out", str(out), "--scheduler", addr, "--performance-report", str(perf)]) == 0
    assert perf.read_text().lstrip().lower().startswith("<!doctype html") or "<html" in perf.read_text()[:2000]
    ds = open_results(out / "results.zarr")
    assert list(ds.condition.values) == ["clean"]
    acc = ds.accuracy.sel(clip_seconds=2.0, sound_type="all", feature_set="channel", classifier="logistic_regression",
                          protocol="session")
    assert np.isfinite(acc.values).all() and (ds.n_test > 0).all()
    assert ds.attrs["micfp"]["kind"] == "micfp-results"
    # every worker loaded the cube at most once, however many cells it ran
    loads = client.run(cache_stats)
    assert all(v.get(str((out / "cube.zarr").resolve()), v.get(str(out / "cube.zarr"), 0)) <= 1
               for v in loads.values())

    # one more clip length: the cube is recomputed (frames reused), only the new cells run
    cfg.write_text(RUN.format(store=tiny_store, clips="[1, 2]", **CLEAN_ONLY))
    from pipeline.workflow.config import load_workflow as lw

    caplog.set_level(logging.INFO, logger="pipeline")
    caplog.clear()
    summary = run_workflow(lw(cfg, out=str(out)), client, quiet=True)
    msgs = caplog.messages
    assert summary["computed"] == 1 and summary["skipped"] == 1
    assert any("computing" in m for m in msgs)  # the cube, for the new clip length
    ds2 = open_results(out / "results.zarr")
    assert sorted(ds2.clip_seconds.values.tolist()) == [1.0, 2.0]
    assert np.isfinite(ds2.accuracy.values).sum() == 2
    # the old cells were not recomputed: identical numbers
    np.testing.assert_array_equal(ds2.accuracy.sel(clip_seconds=2.0).values, ds.accuracy.sel(clip_seconds=2.0).values)

    # nothing left: a third run computes nothing and reuses the cube
    caplog.set_level(logging.INFO, logger="pipeline")
    caplog.clear()
    summary = run_workflow(lw(cfg, out=str(out)), client, quiet=True)
    msgs = caplog.messages
    assert summary["computed"] == 0 and summary["skipped"] == 2
    assert any("up to date" in m for m in msgs)

    # a training cap is part of the basis: every cell is recomputed, and the results say so
    cfg.write_text(RUN.format(store=tiny_store, clips="[1, 2]", **CLEAN_ONLY).replace(
        "bootstrap = 20", "bootstrap = 20\nmax_train_clips = 50"))
    caplog.set_level(logging.INFO, logger="pipeline")
    caplog.clear()
    summary = run_workflow(lw(cfg, out=str(out)), client, quiet=True)
    msgs = caplog.messages
    assert summary["computed"] == 2 and any("starting over" in m for m in msgs)
    ds3 = open_results(out / "results.zarr")
    assert ds3.attrs["micfp"]["max_train_clips"] == 50 and ds3.attrs["micfp"]["basis"]["max_train_clips"] == 50
    assert set(ds3.n_train.values[np.isfinite(ds3.accuracy.values)].tolist()) == {50}
    np.testing.assert_array_equal(ds3.n_test.values, ds2.n_test.values)


@pytest.mark.slow
def test_robustness_run_trains_clean_tests_degraded(client, tiny_store, tmp_path):
    from pipeline.workflow.config import load_workflow as lw
    from pipeline.workflow.run import run_workflow

    out = tmp_path / "out"
    cfg = _write(tmp_path, RUN.format(store=tiny_store, clips="[2]", **WITH_NOISE))
    summary = run_workflow(lw(cfg, out=str(out)), client, quiet=True, report=True)
    assert summary["computed"] == 2
    ds = open_results(out / "results.zarr")
    assert list(ds.condition.values) == ["clean", "noise-10dB"]
    assert ds.snr_db.sel(condition="noise-10dB") == 10.0 and ds.condition_kind.sel(condition="noise-10dB") == "noise"
    assert (ds.n_test > 0).all()
    assert Path(summary["report"]).is_file()
    _check_degraded_cells(out)


def _check_degraded_cells(out: Path) -> None:
    """A degraded cell trains on the clean day-1 clips and tests on the degraded day-2 clips."""
    from pipeline.evaluation.cell import Cell
    from pipeline.evaluation.cell import cell_data, CellTask

    cell = WorkCell(Cell(2.0, "all", "channel", "logistic_regression", "session"), "noise-10dB")
    clean = CellTask(str(out / "cube.zarr"), WorkCell(cell.cell), 10)
    noisy = CellTask(str(out / "cube.zarr"), cell, 10, str(out / "degraded" / "noise-10dB.cube.zarr"))
    _, Xc, mc = cell_data(clean)
    _, Xn, mn = cell_data(noisy)
    Xc, Xn = Xc.take(), Xn.take()
    assert len(mc) == len(mn)
    train = (mn["session"] == "day1").to_numpy()
    np.testing.assert_array_equal(Xn[train], Xc[(mc["session"] == "day1").to_numpy()])  # training stays clean
    assert not np.allclose(Xn[~train], Xc[(mc["session"] != "day1").to_numpy()])  # test clips are degraded
    assert mn["session"].iloc[0] == "day1"  # the session protocol trains on the first session it meets


def test_cli_run_reports_config_errors_in_one_line(tmp_path, capsys):
    from pipeline.cli import main

    p = _write(tmp_path, BASE.replace("logistic_regression", "nope"))
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown classifier 'nope'" in err[0] and str(p) in err[0]


def test_cli_run_script_forwards_arguments(tmp_path, monkeypatch):
    """``micfp run x.py`` runs the script with the options, as ``python x.py`` would."""
    from pipeline.cli import main

    script = tmp_path / "echo_args.py"
    log = tmp_path / "argv.json"
    script.write_text(f"import json, sys\njson.dump(sys.argv[1:], open({str(log)!r}, 'w'))\nsys.exit(3)\n")
    assert main(["run", str(script), "--out", "X", "--scheduler", "tcp://127.0.0.1:1"]) == 3
    argv = json.loads(log.read_text())
    assert argv[argv.index("--out") + 1] == "X" and argv[argv.index("--scheduler") + 1] == "tcp://127.0.0.1:1"


@pytest.mark.faults
def test_workflow_script_runs_without_the_cli_and_reports_errors_in_one_line(tmp_path):
    """``workflows/<name>.py`` (``script_main``) is a library call: the CLI is never imported."""
    import subprocess
    import sys

    p = _write(tmp_path, BASE.replace("logistic_regression", "nope"))
    code = ("import sys\nfrom pipeline.workflow.script import script_main\n"
            f"rc = script_main({str(p)!r}, ['--out', {str(tmp_path / 'o')!r}, '--workers', '1'])\n"
            "print(rc, 'pipeline.cli' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False"], proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "unknown classifier 'nope'" in err[0] and str(p) in err[0]


def test_recordings_corpus_is_planned_before_compute(tmp_path):
    """A recordings folder is checked by the ingest planner and its segments expand the grid."""
    import soundfile as sf

    from pipeline.workflow.grid import check_before_compute

    rng = np.random.default_rng(0)
    root = tmp_path / "rec"
    for session, secs in (("day1", 40), ("day2", 30)):
        (root / session).mkdir(parents=True)
        for mic in range(1, 6):
            sf.write(root / session / f"take-{mic}.wav", (rng.standard_normal(secs * 8000) * 0.1).astype(np.float32),
                     8000, subtype="PCM_16")
        (root / session / "segments.csv").write_text(f"start_s,end_s,sound_type\n0,15,speech\n15,{secs},music\n")
    text = BASE.replace('simulate = { minutes_per_session = [1.0, 0.6], seed = 7 }',
                        f'recordings = {{ path = "{root}", resample = 48000 }}')
    wf = load_workflow(_write(tmp_path, text))
    cells, notes = check_before_compute(wf)
    assert {c.cell.sound_type for c in cells} == {"all", "speech", "music"}
    no_rate = _write(tmp_path, text.replace(", resample = 48000", ""), "rate.toml")
    with pytest.raises(ConfigError, match="resample = 48000"):
        check_before_compute(load_workflow(no_rate))
    bad = _write(tmp_path, BASE.replace('simulate = { minutes_per_session = [1.0, 0.6], seed = 7 }',
                                        f'recordings = {{ path = "{root}", colour = "red" }}'), "bad.toml")
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load_workflow(bad)
