"""The options of ``micfp run`` and of workflow scripts (argparse only: no heavy imports)."""

from __future__ import annotations

from ..cluster.options import add_cluster_arguments


def add_run_arguments(p) -> None:
    """Add the options of ``micfp run`` (output, performance report, report, cluster) to parser ``p``."""
    p.add_argument("--out", default=None, help="output folder (default: the config's [workflow] out)")
    p.add_argument("--performance-report", metavar="FILE", default=None,
                   help="write Dask's HTML performance report of the run to FILE")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report at the end")
    add_cluster_arguments(p)
