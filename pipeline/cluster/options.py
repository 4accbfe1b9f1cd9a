"""The cluster options of the command line and of workflow scripts (argparse only: no dask import)."""

from __future__ import annotations


def add_cluster_arguments(p) -> None:
    """The cluster options of a command (``--scheduler``, ``--cluster``, ``--workers``, ``--memory-limit``)."""
    g = p.add_argument_group("cluster")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="existing Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else a new local cluster)")
    g.add_argument("--cluster", metavar="NAME",
                   help="cluster profile: local, remote, slurm, pbs, kubernetes, any of `micfp cluster profiles`, "
                        "or a YAML file (default: $MICFP_CLUSTER, else config micfp.cluster: local)")
    g.add_argument("--workers", type=int, default=None,
                   help="worker processes of a new local cluster (default: config micfp.local.n-workers, 2)")
    g.add_argument("--memory-limit", default=None, help="per-worker memory limit of a local cluster (default auto)")


def connect_from_args(args):
    """:func:`connect` with the options of :func:`add_cluster_arguments` (an ``argparse`` namespace)."""
    from .connect import ClusterSettings, connect

    return connect(ClusterSettings(scheduler=args.scheduler, workers=args.workers, memory_limit=args.memory_limit,
                                   cluster=args.cluster))
