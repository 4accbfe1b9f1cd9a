"""Where micfp's messages go: the ``pipeline`` loggers, shown on stderr by the command line.

Library modules log with ``logging.getLogger(__name__)``; nothing is shown until an entry
point (the ``micfp`` command, a workflow script) calls :func:`configure_logging` once.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """A handler writing to the current ``sys.stderr`` (looked up per message, so a replaced
    stream, as in tests that capture output, is honoured)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler sets it; the current sys.stderr is used instead
        pass


def configure_logging(debug: bool = False) -> None:
    """Show the ``pipeline`` loggers' messages on stderr, plain (INFO; DEBUG with ``debug``).

    Idempotent: calling it again only changes the level.
    """
    logger = logging.getLogger("pipeline")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
