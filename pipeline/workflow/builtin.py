"""``micfp evaluate`` as a workflow: its grid and outputs, built in code rather than read from TOML.

``micfp demo`` (:mod:`pipeline.workflow.demo`), ``micfp evaluate`` and ``micfp run`` all run a
:class:`~pipeline.workflow.config.WorkflowConfig` through :func:`pipeline.workflow.run.run_workflow`:
one cell task, one results writer, one report.
"""

from __future__ import annotations

from ..artifacts.outputs import REPORT_KIND, resolve
from .config import CorpusConfig, GridSpec, WorkflowConfig


def grids_of(cells) -> tuple[GridSpec, ...]:
    """A grid of exactly ``cells`` (:class:`~pipeline.evaluation.cell.Cell`), in their order: one block per cell."""
    return tuple(GridSpec(clip_seconds=(float(c.clip_seconds),) if c.segmentation == "fixed" else (),
                          sound_types=(c.sound_type,), feature_sets=(c.feature_set,), classifiers=(c.classifier,),
                          protocols=(c.protocol,), segmentations=(c.segmentation,)) for c in cells)


def evaluate_workflow(cube, out, cells, *, n_boot: int = 500, max_train: int | None = None) -> WorkflowConfig:
    """The workflow of ``micfp evaluate CUBE OUT``: ``cells`` of an existing cube.

    The results set is ``OUT/results.zarr``, the report files are in ``OUT`` itself and the HTML
    report is ``OUT/index.html``; ``OUT`` is marked as a report folder.
    """
    return WorkflowConfig(name="evaluate", source=str(cube), out=resolve(out),
                          corpus=CorpusConfig("cube", path=resolve(cube)), features=None, grids=grids_of(cells),
                          bootstrap=n_boot, max_train_clips=max_train, results="results.zarr", report_dir=".",
                          html="index.html", out_kind=REPORT_KIND, out_what="report folder")


def check_evaluate_cells(wf: WorkflowConfig, cells) -> None:
    """Every cell asked for must be in the cube (``micfp evaluate`` refuses, where a TOML grid
    leaves combinations out with a note); the cube is read for its coordinates only."""
    from ..evaluation.cell import check_cells
    from ..artifacts.cube import open_rows

    check_cells(open_rows(str(wf.cube_path)), cells)
