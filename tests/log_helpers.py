"""Collect what library code logs (the ``pipeline`` loggers), for tests that check its messages."""

from __future__ import annotations

import contextlib
import logging


class _Collect(logging.Handler):
    def __init__(self, msgs: list[str], level: int):
        super().__init__(level)
        self.msgs = msgs

    def emit(self, record: logging.LogRecord) -> None:
        self.msgs.append(record.getMessage())


@contextlib.contextmanager
def logged(name: str = "pipeline", level: int = logging.WARNING):
    """Yield a list that receives the messages logger ``name`` (and its children) logs at ``level`` or above."""
    msgs: list[str] = []
    logger = logging.getLogger(name)
    handler = _Collect(msgs, level)
    logger.addHandler(handler)
    try:
        yield msgs
    finally:
        logger.removeHandler(handler)
