"""Workflows: a TOML config names a corpus, a feature config and an evaluation grid; run it.

A workflow is what users submit to a cluster (``micfp run workflows/ablation.toml``). Running it
does only the stages that are not done yet:

1. corpus: simulate a studio plan into ``<out>/audio.zarr``, use an existing store, or ingest
   a recordings folder (simulation and ingest resume from their shard ledgers);
2. the feature cube ``<out>/cube.zarr``: reused when it is complete and was made from the same
   audio with the same :class:`~pipeline.features.FeatureConfig`, recomputed otherwise (frame
   features are kept, so adding a clip length only redoes the cheap clip stage);
3. robustness conditions: degraded copies of the test session's recordings and their cubes in
   ``<out>/degraded/`` (:mod:`pipeline.robustness.stage`);
4. cells: every grid point not yet in the results ledger, one task each; a worker loads a cube
   once and keeps it in memory for all the cells it runs;
5. the results set ``<out>/results.zarr`` (or ``.nc``), the report files (metrics JSON/CSV,
   classification report, confusion matrices, summary table) and the HTML report.

``micfp demo`` and ``micfp evaluate`` are workflows too, built in code
(:mod:`pipeline.workflow.builtin`): the three commands run the same stages, the same cell task
(:func:`pipeline.evaluation.cell._cell_task`) and write the same results set and report.

Every config error is raised before any compute, naming the file and the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

from ..artifacts.kinds import mics_from_attrs, models_from_attrs
from ..artifacts.locks import LockedError, exclusive, lock_path, shared
from ..artifacts.outputs import mark_folder
from ..artifacts.results import CLEAN, RESULTS_KIND, write_results
from ..artifacts.swap import check_replaceable
from ..evaluation.cell import CellTask, WorkCell, run_cells
from ..version import __version__
from .config import WorkflowConfig
from .corpus import ensure_corpus, ensure_cube
from .grid import (
    availability_from_cube,
    check_before_compute,
    check_outputs,
    infeasible,
    plan_cells,
)
from .ledger import ResultsLedger, _condition_spec, results_set

log = logging.getLogger(__name__)


def run_workflow(wf: WorkflowConfig, client, *, quiet: bool = False, report: bool | None = None) -> dict:
    """Run the stages of a workflow that are not done yet; returns a summary dict.

    ``summary["computed"]`` / ``summary["skipped"]`` count cells run now and cells found finished;
    ``summary["records"]`` holds the results of the grid's cells, in grid order (what the report
    files and :func:`pipeline.report.files.summary_table` show). Holds the results set's write
    lock for the whole run (one run per results set and ledger), and the read lock of the audio
    store and of each cube from the time it is ready. ``report`` overrides ``wf.report``.
    """
    check_outputs(wf)
    # Marked before the results set's lock file appears in it: a new folder holding only a lock
    # file would not be recognised as micfp's.
    mark_folder(wf.out, wf.out_kind)
    with contextlib.ExitStack() as locks:
        locks.enter_context(exclusive(str(wf.results_path), what="results set"))
        check_replaceable(wf.results_path, RESULTS_KIND, "results set")  # before any compute
        return _run_workflow(wf, client, locks, quiet=quiet, report=report)


def _inputs(wf: WorkflowConfig, client, locks: contextlib.ExitStack, cells: list, timings: dict, *, quiet: bool):
    """The corpus and the cube, made or reused, read-locked: ``(store path or None, cube, cells)``."""
    from ..features import open_cube
    from ..artifacts.cube import cube_uid

    t = time.perf_counter()
    if wf.corpus.kind == "cube":  # an existing cube, used as it is
        locks.enter_context(shared(str(wf.cube_path), what="feature cube"))
        cube = open_cube(str(wf.cube_path))
        timings["features_s"] = time.perf_counter() - t
        return None, cube, cells
    store_path = ensure_corpus(wf, client, quiet=quiet)
    locks.enter_context(shared(store_path, what="audio store"))
    timings["corpus_s"] = time.perf_counter() - t
    if not cells:  # ingested corpus: sound types known only now
        cells, notes = plan_cells(wf, store_path)
        for n in notes:
            log.info(f"grid: {n}")
    t = time.perf_counter()
    cube = ensure_cube(store_path, wf.cube_path, wf.features, client, quiet=quiet)
    locks.enter_context(shared(str(wf.cube_path), what="feature cube"))
    if lock_path(str(wf.cube_path)) and cube_uid(str(wf.cube_path)) != cube.attrs["micfp"].get("uid"):
        raise LockedError(f"{wf.cube_path}: another run replaced this feature cube as this one started; re-run")
    timings["features_s"] = time.perf_counter() - t
    return store_path, cube, cells


def _basis(wf: WorkflowConfig, store_path: str | None, cube) -> dict:
    """What the results depend on besides the cell: the audio (or the given cube) and the settings."""
    from ..evaluation.protocols import TRAINING_DRAW

    if store_path is None:
        source = {"cube": cube.attrs["micfp"].get("uid")}
    else:
        from ..artifacts.store import AudioStore
        from ..robustness.stage import store_fingerprint

        source = {"store": store_fingerprint(AudioStore.open(store_path)),
                  "frame": dataclasses.asdict(wf.features.frame), "silence": dataclasses.asdict(wf.features.silence)}
    basis = {"version": __version__, **source, "bootstrap": wf.bootstrap,
             "robustness_seed": wf.degradations[0].seed if wf.degradations else None}
    if wf.max_train_clips is not None:  # only when set, so ledgers of uncapped runs stay valid
        basis["max_train_clips"] = wf.max_train_clips
        basis["training_draw"] = TRAINING_DRAW  # capped cells of an earlier draw are not reused
    return basis


def _run_workflow(wf: WorkflowConfig, client, locks: contextlib.ExitStack, *, quiet: bool,
                  report: bool | None) -> dict:
    import pandas as pd

    from ..evaluation.cell import check_cells
    from ..robustness.stage import degradation_info, degrade_store

    t_start = time.perf_counter()
    out = Path(wf.out)
    timings = {}
    cells, notes = check_before_compute(wf)  # before any compute
    for n in notes:
        log.info(f"grid: {n}")
    store_path, cube, cells = _inputs(wf, client, locks, cells, timings, quiet=quiet)
    sessions = [str(x) for x in pd.unique(cube.session.values)]
    # The exact clips are known now: drop cells the cube cannot serve (e.g. a silence split
    # that found no pieces), with a note, and check the rest against the cube's coordinates.
    avail = availability_from_cube(cube)
    why: dict[tuple, str | None] = {}
    for wc in cells:
        c = wc.cell
        k = (c.clip_seconds, c.sound_type, c.segmentation, c.protocol)
        if k not in why:
            why[k] = infeasible(c, avail, sessions)
    kept = [wc for wc in cells if why[(wc.cell.clip_seconds, wc.cell.sound_type, wc.cell.segmentation,
                                       wc.cell.protocol)] is None]
    if len(kept) < len(cells):
        log.info(f"grid: left out {len(cells) - len(kept)} more cells the cube has no clips for")
    cells = kept
    check_cells(cube, [wc.cell for wc in cells])
    mics = mics_from_attrs(cube.attrs)
    ledger = ResultsLedger(wf.results_path.with_name(wf.results_path.stem + ".cells.jsonl"),
                           _basis(wf, store_path, cube))

    # Robustness conditions: degraded copies of the test sessions (built or resumed; a finished
    # one is only opened). A degraded cell is done only if it was computed on the degraded audio
    # as it is now (same calibrated level, same source), so a rebuilt condition is re-evaluated.
    t = time.perf_counter()
    conditions = {CLEAN: {"kind": CLEAN}}
    used = {wc.condition for wc in cells} - {CLEAN}
    for name, deg in wf.conditions.items():
        if deg is not None and name in used:
            conditions[name] = degrade_store(store_path, str(out / "degraded" / f"{name}.zarr"), deg, sessions[1:],
                                             client, quiet=quiet)
    made_as = {name: _condition_spec(info) for name, info in conditions.items()}

    def done(wc: WorkCell) -> bool:
        rec = ledger.records.get(wc.key)
        return rec is not None and (wc.condition == CLEAN or rec.get("condition_spec") == made_as[wc.condition])

    todo = [wc for wc in cells if not done(wc)]
    log.info(f"cells: {len(cells)} in the grid, {len(cells) - len(todo)} already done, {len(todo)} to run")
    deg_cubes = {}
    for name in [n for n in conditions if n != CLEAN]:
        info = conditions[name]
        if info.get("kind") == "codec":
            log.info(f"robustness {name}: compression level {info['level']:.3f}, measured "
                     f"{info['kbps_measured']:.1f} kbit/s (asked {info['kbps']:g})")
        if any(wc.condition == name for wc in todo):
            dcube = out / "degraded" / f"{name}.cube.zarr"
            ensure_cube(str(out / "degraded" / f"{name}.zarr"), dcube, wf.features, client, quiet=quiet,
                        label=f"cube {name}")
            locks.enter_context(shared(str(dcube), what="feature cube"))
            deg_cubes[name] = str(dcube)
    for name in {r["condition"] for r in ledger.records.values()} - set(conditions):
        # a condition of an earlier grid: its cells stay in the results, described as they were made
        dst = out / "degraded" / f"{name}.zarr"
        conditions[name] = degradation_info(str(dst)) if dst.exists() else {}
    timings["robustness_s"] = time.perf_counter() - t

    t = time.perf_counter()
    from ..artifacts.cube import check_cube

    uid_of = {p: check_cube(p).attrs["micfp"].get("uid") for p in {str(wf.cube_path), *deg_cubes.values()}}
    tasks = [CellTask(str(wf.cube_path), wc, wf.bootstrap, deg_cubes.get(wc.condition), wf.max_train_clips,
                      tuple((p, uid_of[p]) for p in (str(wf.cube_path), deg_cubes.get(wc.condition)) if p))
             for wc in todo]
    attrs = {"workflow": wf.name, "config": wf.source, "cube": str(Path(wf.cube_path).resolve()),
             "store": str(store_path) if store_path else cube.attrs["micfp"].get("store"),
             "sessions": [str(s) for s in sessions], "basis": ledger.basis,
             "models": {str(k): v for k, v in models_from_attrs(cube.attrs).items()}}

    def record(key, result):
        ledger.record(key, {**result, "condition_spec": made_as.get(result["condition"])})

    failed = True
    try:
        run_cells(client, tasks, keys=[wc.key for wc in todo], on_result=record, quiet=quiet)
        failed = False
    finally:  # whatever finished is in the results set, even after an error or Ctrl-C
        if ledger.records:
            try:
                write_results(results_set(list(ledger.records.values()), mics, conditions, attrs), wf.results_path)
            except Exception as exc:
                if not failed:
                    raise
                log.warning(f"could not write {wf.results_path} after the failure: {exc}")
    timings["cells_s"] = time.perf_counter() - t
    log.info(f"results: {wf.results_path} ({len(ledger.records)} cells)")

    records = [cell_result(ledger.records[wc.key]) for wc in cells]
    summary = {"results": str(wf.results_path), "cells": len(cells), "computed": len(todo),
               "skipped": len(cells) - len(todo), "timings": timings, "records": records}
    if report if report is not None else wf.report:
        t = time.perf_counter()
        summary.update(write_reports(wf, records, mics))
        timings["report_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start
    return summary


#: Ledger fields that describe how a cell was run rather than its result (not in the report files).
_RUN_FIELDS = ("key", "seconds", "condition_spec")


def cell_result(record: dict) -> dict:
    """A ledger record as a cell's result for the report files: without how and when it was run."""
    return {k: v for k, v in record.items() if k not in _RUN_FIELDS}


def write_reports(wf: WorkflowConfig, records: list[dict], mics: dict[int, str]) -> dict:
    """The report files of the grid's cells (:func:`pipeline.report.files.write_report`) in
    ``<out>/<report_dir>`` and the HTML report of the results set at ``<out>/<html>``."""
    from ..report.files import write_report
    from ..report.html import write_html_report

    out = Path(wf.out)
    paths = write_report(records, mics, out / wf.report_dir, extra={"workflow": wf.name})
    html = write_html_report(wf.results_path, out / wf.html, metrics_csv=paths["csv"])
    # the HTML report draws its own figures (the forensic ones among them) next to the page
    figures = {Path(f).resolve() for f in paths["figures"]} | {f.resolve() for f in html.parent.glob("figures/*.png")}
    log.info(f"report: {out / wf.report_dir} ({len(figures)} figures), {html}")
    return {"report": str(html), "report_files": {k: str(v) for k, v in paths.items() if k != "figures"}}
