"""The one place that turns settings into a connected :class:`distributed.Client`."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

from .errors import ClusterError

DEFAULT_DASHBOARD = "127.0.0.1:8787"


@dataclass(frozen=True)
class ClusterSettings:
    """Where work runs.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``). Default: the environment
        variable ``DASK_SCHEDULER_ADDRESS``, else a new local cluster.
    workers : int
        Worker processes of a new local cluster.
    threads_per_worker : int
        One thread per process: the kernels are numpy/FFT bound and release the GIL little.
    memory_limit : str
        Per-worker memory limit of a local cluster (dask syntax, e.g. ``"4GiB"`` or ``"auto"``).
    dashboard_address : str
        Bound to 127.0.0.1 by default; another free port is used if this one is taken.
    """

    scheduler: str | None = None
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    dashboard_address: str = DEFAULT_DASHBOARD

    def address(self) -> str | None:
        return self.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


def _check_workers(client) -> None:
    """Fail clearly when workers cannot import this package or run another version of it."""
    from . import __version__

    def probe():
        try:
            import pipeline

            return pipeline.__version__
        except Exception as exc:  # pragma: no cover - runs on a worker
            return f"error: {exc}"

    try:
        versions = client.run(probe)
    except Exception as exc:
        raise ClusterError(f"cannot run on the workers: {exc}") from exc
    bad = {w: v for w, v in versions.items() if v != __version__}
    if bad:
        raise ClusterError(
            f"workers do not run micfp {__version__}: {bad}; install this checkout on every worker "
            "(pip install -e .) and restart them"
        )


@contextlib.contextmanager
def connect(settings: ClusterSettings | None = None, *, echo=None):
    """Yield a connected client; a local cluster made here is closed on exit.

    The dashboard link is printed (through ``echo``) before any work starts.
    """
    from distributed import Client, LocalCluster

    settings = settings or ClusterSettings()
    echo = echo or (lambda msg: print(msg, file=sys.stderr, flush=True))
    address = settings.address()
    cluster = None
    if address:
        try:
            client = Client(address, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        where = f"scheduler {address}"
    else:
        if settings.workers < 1:
            raise ClusterError(f"--workers must be at least 1, got {settings.workers}")
        with _quiet_port_warnings():
            cluster = LocalCluster(
                n_workers=settings.workers,
                threads_per_worker=settings.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=settings.dashboard_address,
                memory_limit=settings.memory_limit,
            )
        client = Client(cluster)
        where = f"local cluster, {settings.workers} worker processes"
    try:
        _check_workers(client)
        echo(f"Dask {where}; dashboard: {client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _quiet_port_warnings():
    import logging
    import warnings

    log = logging.getLogger("distributed.node")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)
