"""Entry points of workflows: ``micfp run`` and the ``workflows/<name>.py`` scripts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..errors import ConfigError
from .config import load_workflow
from .grid import check_before_compute, check_outputs
from .run import run_workflow

log = logging.getLogger(__name__)


# -- entry points ----------------------------------------------------------------------------
def run_from_args(args, connect) -> int:
    """``micfp run``: validate the workflow, connect, run it (optionally under a performance report).

    ``args`` carries ``workflow``, ``out``, ``performance_report``, ``no_report`` and the cluster
    options; ``connect(args)`` yields a client (it prints the dashboard link first).
    """
    path = Path(args.workflow)
    if path.suffix == ".py":
        return run_script(path, _forwarded(args))
    if path.suffix != ".toml":
        raise ConfigError(f"{path}: a workflow is a .toml config or a .py script")
    run_config(load_workflow(path, out=args.out), args, connect)
    return 0


def run_config(wf, args, connect) -> dict:
    """Check a workflow, connect, run it and print its summary table: ``micfp run``, ``demo`` and ``evaluate``.

    Every check that needs no compute is made before a cluster starts. ``args`` may carry
    ``performance_report`` (a file for Dask's performance report) and ``no_report`` (skip the
    report files and the HTML report); ``connect(args)`` yields a client.
    """
    import contextlib

    check_outputs(wf)
    check_before_compute(wf)  # every config error before a cluster is even started
    perf = getattr(args, "performance_report", None)
    with connect(args) as client:
        ctx = contextlib.nullcontext()
        if perf:
            from distributed import performance_report

            Path(perf).parent.mkdir(parents=True, exist_ok=True)
            ctx = performance_report(filename=str(perf))
        with ctx:
            summary = run_workflow(wf, client, report=False if getattr(args, "no_report", False) else None)
    if perf:
        log.info(f"performance report: {perf}")
    print_summary(summary)
    return summary


def print_summary(summary: dict) -> None:
    """The end of every run: the cells' summary table on stdout, counts and timings logged."""
    from ..report.files import summary_table

    print(summary_table(summary["records"]), flush=True)
    t = summary["timings"]
    log.info(f"done: {summary['computed']} cells computed, {summary['skipped']} reused; "
             + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()))


def _forwarded(args) -> list[str]:
    argv = []
    for opt in ("out", "performance_report", "scheduler", "cluster", "workers", "memory_limit"):
        v = getattr(args, opt, None)
        if v is not None:
            argv += [f"--{opt.replace('_', '-')}", str(v)]
    if getattr(args, "no_report", False):
        argv.append("--no-report")
    if getattr(args, "debug", False):
        argv.insert(0, "--debug")
    return argv


def run_script(path: Path, argv: list[str]) -> int:
    """Run a workflow script (``workflows/<name>.py``) as ``python <script> <argv>`` would."""
    import runpy

    if not path.is_file():
        raise ConfigError(f"{path}: no such workflow script")
    old = sys.argv
    sys.argv = [str(path), *argv]
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    return 0


def script_main(config: str | Path, argv: list[str] | None = None) -> int:
    """What ``workflows/<name>.py`` runs: ``micfp run <name>.toml`` with the script's arguments.

    Accepts ``--debug`` anywhere and the options of ``micfp run`` (``--out``, ``--scheduler``,
    ``--cluster``, ``--workers``, ``--memory-limit``, ``--performance-report``, ``--no-report``).
    """
    import argparse

    from ..cluster.options import connect_from_args
    from ..errors import exit_status
    from ..logs import configure_logging
    from .options import add_run_arguments

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = argparse.ArgumentParser(prog=Path(sys.argv[0]).name, description=f"micfp run {config}")
    add_run_arguments(parser)
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.workflow, args.debug = str(config), debug
    configure_logging(debug)
    return exit_status(lambda: run_from_args(args, connect_from_args), debug=debug, output=getattr(args, "out", None))
