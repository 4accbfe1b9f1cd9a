"""``micfp demo``: the whole pipeline on a simulated studio, end to end on the cluster.

A workflow built in code (:func:`demo_workflow`): simulate, features, the evaluation grid of
``micfp evaluate`` under the session protocol, results set and report.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts.outputs import RUN_KIND, resolve
from ..features.sets import DEFAULT_FEATURE_SETS
from .builtin import grids_of
from .config import CorpusConfig, WorkflowConfig

#: Minutes per session (day 1 trains, day 2 tests) of each demo scale.
SCALES = {"tiny": (1.5, 1.0), "small": (4.0, 2.0), "thesis": (360.0, 90.0)}
DEMO_CLIP_SECONDS = 2.0


def demo_workflow(out, scale: str, *, seed: int = 0, n_boot: int = 500) -> WorkflowConfig:
    """The demo as a workflow: ``out/audio.zarr``, ``out/cube.zarr``, the report files and the
    results set in ``out/report/``, the HTML report ``out/index.html``."""
    from ..evaluation.grid import default_cells
    from ..features import FeatureConfig

    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    cells = default_cells((DEMO_CLIP_SECONDS,), ("all",), ("session",))
    return WorkflowConfig(name=f"demo-{scale}", source="micfp demo", out=resolve(out),
                          corpus=CorpusConfig("simulate", minutes_per_session=SCALES[scale], seed=seed),
                          features=FeatureConfig(feature_sets=DEFAULT_FEATURE_SETS, clip_seconds=(DEMO_CLIP_SECONDS,)),
                          grids=grids_of(cells), bootstrap=n_boot, results="report/results.zarr",
                          report_dir="report", html="index.html", out_kind=RUN_KIND, out_what="demo output folder")


def run_demo(out: Path, scale: str, client, *, seed: int = 0, n_boot: int = 500, quiet: bool = False) -> dict:
    """Simulate, compute features, evaluate under the session protocol and write the report.

    Re-running into the same ``out`` resumes: finished shards, frame blocks and cells are reused.
    Returns :func:`~pipeline.workflow.run.run_workflow`'s summary, with the cells' results as
    ``results`` and the simulation's time as ``timings["simulate_s"]``.
    """
    from .run import run_workflow

    summary = run_workflow(demo_workflow(out, scale, seed=seed, n_boot=n_boot), client, quiet=quiet)
    summary["timings"]["simulate_s"] = summary["timings"]["corpus_s"]
    return {**summary, "results": summary["records"]}
