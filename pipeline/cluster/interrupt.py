"""Ctrl-C: one line from micfp, not the tracebacks of every worker process and nanny.

In a terminal, Ctrl-C sends SIGINT to the whole foreground process group, so a local
cluster's worker processes would each raise ``KeyboardInterrupt`` in their event loop and
print it, and the cluster's shutdown logs warnings about killed workers and lost tasks. The
command's own process owns the interrupt: workers are started with SIGINT ignored (Python
keeps an ignored SIGINT ignored, and it is inherited across exec), and while an interrupted
command closes its cluster, distributed's loggers in this process are silenced.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading


@contextlib.contextmanager
def children_ignore_sigint():
    """While processes are spawned here, SIGINT is ignored, so they ignore it for good.

    This process's handler is restored afterwards. Only the main thread can change signal
    handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def silence_distributed() -> dict[str, int]:
    """Silence every ``distributed`` logger of this process; returns their levels for :func:`restore`."""
    names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    saved = {}
    for name in names:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.setLevel(logging.CRITICAL + 1)
    return saved


def restore(saved: dict[str, int]) -> None:
    """Put back the logger levels :func:`silence_distributed` changed."""
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
