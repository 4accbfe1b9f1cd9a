"""Run a list of independent tasks on the cluster with a terminal progress line.

Every stage (simulation, ingest, frame features, clip features, evaluation cells) is a set
of independent tasks whose results the client records as they arrive; that record is what
lets an interrupted run resume without redoing finished work.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


class Progress:
    """``stage: done/total [ETA]`` on one terminal line (plain lines when not a TTY)."""

    def __init__(self, stage: str, total: int, stream=None):
        self.stage, self.total, self.done = stage, total, 0
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._last = 0.0
        self.show(force=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.show(force=self.done == self.total)

    def show(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        el = now - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else float("nan")
        eta_s = "" if self.done in (0, self.total) else f" ETA {eta:5.0f}s"
        msg = f"{self.stage}: {self.done}/{self.total} [{el:5.1f}s{eta_s}]"
        if self.tty:
            self.stream.write("\r" + msg + ("\n" if self.done == self.total else ""))
        elif force or self.done:
            self.stream.write(msg + "\n")
        self.stream.flush()


def run_tasks(client, stage: str, func: Callable, args: Sequence[tuple], *, on_result: Callable | None = None,
              keys: Sequence[Any] | None = None, pure: bool = False, quiet: bool = False,
              cost: Sequence[float] | None = None) -> list:
    """Submit ``func(*a)`` for each ``a`` in ``args``; call ``on_result(key, result)`` as each lands.

    Returns the results in the order of ``args``. The first failing task raises (the rest are
    cancelled); results already passed to ``on_result`` stay recorded.

    ``cost`` (an estimate per task, any unit) runs the costliest tasks first: with tasks of
    unequal length, a long task started last would leave the other workers idle at the end.
    """
    from distributed import as_completed

    keys = list(keys) if keys is not None else list(range(len(args)))
    progress = Progress(stage, len(args), stream=open("/dev/null", "w") if quiet else None)
    if not args:
        return []
    if cost is None:  # one graph for all (a submit per task cost the client 4 ms each, map 2.5)
        futures = client.map(func, *map(list, zip(*args)), pure=pure)
    else:
        futures = [None] * len(args)
        order = sorted(range(len(args)), key=lambda i: -cost[i])
        for rank, i in enumerate(order):  # dask runs higher priorities first
            futures[i] = client.submit(func, *args[i], pure=pure, priority=len(args) - rank)
    index = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(futures)
    pending = as_completed(futures)
    try:
        for fut in pending:
            i = index[fut.key]
            results[i] = fut.result()
            # Drop the future at once: while it lives, its worker keeps the task's arguments
            # and result, so memory would grow with the number of tasks done.
            futures[i] = None
            if on_result is not None:
                on_result(keys[i], results[i])
            progress.advance()
    except BaseException:
        client.cancel([f for f in futures if f is not None])
        raise
    return results


class BatchedRecord:
    """An ``on_result`` for :func:`run_tasks` that writes a resume ledger in batches.

    Ledgers are JSON attributes rewritten whole on every write (about 7 ms of client time
    each), so writing one per task result costs seconds per stage on the client, which shares
    the machine's cores with the workers. ``write(items)`` gets the ``(key, result)`` pairs
    finished since the last write, at most every ``interval`` seconds, and the rest when the
    ``with`` block ends, also after a failure or an interrupt: a resumed run redoes at most
    ``interval`` seconds of tasks, never loses a recorded one.
    """

    def __init__(self, write: Callable[[list], None], interval: float = 1.0):
        self.write, self.interval = write, interval
        self.items: list = []
        self._last = time.perf_counter()

    def __call__(self, key, result) -> None:
        self.items.append((key, result))
        if time.perf_counter() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        self._last = time.perf_counter()
        if self.items:
            items, self.items = self.items, []
            self.write(items)

    def __enter__(self) -> "BatchedRecord":
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or ``None`` where there is none."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def trim_memory() -> None:
    """Give the process's free heap memory back to the OS (glibc ``malloc_trim``; elsewhere a no-op).

    Called by tasks whose working set is large (evaluation cells) before they start: memory
    freed by earlier tasks in the middle of the heap is otherwise kept, and the next task's
    peak adds to it. Takes milliseconds.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
