"""The Dask worker plugin that warms numba's cache on every worker (see :mod:`pipeline.jit`).

Its own module so that ``import pipeline`` does not import distributed.
"""

from __future__ import annotations

import asyncio

from distributed.diagnostics.plugin import WorkerPlugin

from ..jit import warm_up


class WarmUpPlugin(WorkerPlugin):
    """Runs :func:`pipeline.jit.warm_up` on each worker when it joins, before it gets tasks.

    Workers of one host share the cache directory and its lock, so they warm up one after
    another; the first compiles, the others find the stamp current. The warm-up runs in a
    thread, so the worker keeps answering the scheduler meanwhile.
    """

    name = "micfp-numba-warm-up"
    idempotent = True

    async def setup(self, worker):
        await asyncio.get_running_loop().run_in_executor(None, warm_up)
