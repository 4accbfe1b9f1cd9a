"""Closing a local cluster quietly: every worker process exits in its own time, before the scheduler.

distributed's ``LocalCluster.close`` closes each nanny with its default timeout of 5 s, and the
nanny kills a worker process still running after 0.8 of it ("Worker process still alive after
4.0 seconds, killing"). A micfp worker has numba, librosa and scikit-learn loaded, and its
interpreter teardown, a few full garbage collections over every object they created, took
0.7-2 s on an idle two-core machine and over 4 s on a busy one. So:

- :class:`QuickExitPlugin` collects once and then freezes the collector when a worker closes:
  the teardown's collections skip the frozen objects (0.3-0.6 s instead of 2-4 s under load);
- :func:`close_local_cluster` closes the workers first, each with ``micfp.local.close-timeout``
  (30 s) to exit, then the scheduler, so that no worker outlives it (a worker whose scheduler
  vanished would log a ``CommClosedError`` traceback from its heartbeat).

Its own module so that ``import pipeline`` does not import distributed.
"""

from __future__ import annotations

import asyncio
import gc

from distributed.diagnostics.plugin import WorkerPlugin

#: Seconds a closing worker may take to exit when the local profile has no ``close-timeout``.
DEFAULT_CLOSE_TIMEOUT = 30.0


class QuickExitPlugin(WorkerPlugin):
    """Freezes the garbage collector when a worker closes, so that its process exits quickly.

    Collects first, so cyclic garbage is still finalised (files closed); what is left is in use
    until the process exits, and the interpreter's teardown collections need not visit it.
    """

    name = "micfp-quick-exit"
    idempotent = True

    def teardown(self, worker) -> None:
        gc.collect()
        gc.freeze()


#: Seconds a worker may take to exit after Ctrl-C (running tasks are abandoned, not awaited).
INTERRUPT_CLOSE_TIMEOUT = 10.0


def close_local_cluster(cluster, timeout: float = DEFAULT_CLOSE_TIMEOUT, *, abandon: bool = False) -> None:
    """Close a :class:`distributed.LocalCluster`: its workers, then its scheduler.

    Parameters
    ----------
    cluster : distributed.LocalCluster
        A cluster of nanny-managed worker processes, its client already closed.
    timeout : float
        Seconds each worker process has to finish its tasks and exit before its nanny kills
        it (the local profile's ``close-timeout``). Workers close in parallel.
    abandon : bool
        After Ctrl-C: workers do not wait for their running tasks, but still exit on their own.
        A killed worker process cannot unlink the semaphores it registered with Python's
        resource tracker, which then warns about them at exit, after micfp's one line.
    """

    async def close_workers():
        nannies = list(cluster.workers.values())
        if abandon:
            await asyncio.gather(*(n.process.kill(timeout=timeout, executor_wait=False, reason="micfp-interrupt")
                                   for n in nannies if getattr(n, "process", None) is not None))
        await asyncio.gather(*(n.close(timeout=timeout, reason="micfp-close") for n in nannies))

    try:
        cluster.sync(close_workers)
    finally:  # the scheduler (and any worker left) in any case
        cluster.close(timeout=2 * timeout)
