"""Exceptions that the command line turns into one clear line and a non-zero exit."""

from __future__ import annotations

import unicodedata

#: Unicode categories that would break a message's line or hide text: control characters
#: (newline, carriage return, escape...) and the line and paragraph separators.
_UNPRINTABLE = {"Cc", "Zl", "Zp"}


def one_line(text: str) -> str:
    """``text`` with control characters escaped as :func:`repr` writes them (a newline as ``\\n``).

    File names may hold any character but ``/`` and NUL: a newline in one must not split a
    message into two lines, nor an escape sequence rewrite the terminal.
    """
    text = str(text)
    if all(c.isprintable() for c in text):  # the common case, without a per-character lookup
        return text
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


class MicfpError(Exception):
    """Base class: the message names the file or setting and the problem.

    The message is one line (control characters in it, e.g. a newline in a file name, are
    escaped by :func:`one_line`); ``details``, further one-line items such as the other problems
    of a corpus, follow on lines of their own.
    """

    exit_code = 2

    def __init__(self, message: str = "", details=()):
        self.message, self.details = one_line(message), tuple(one_line(d) for d in details)
        super().__init__("\n  ".join((self.message, *self.details)))

    def __reduce__(self):  # raised in a worker task: rebuilt on the client from both parts
        return type(self), (self.message, self.details)


class InputError(MicfpError):
    """Bad input data or path: unreadable, malformed, inconsistent."""


class ConfigError(MicfpError):
    """Invalid configuration, found before any compute starts."""


class IncompleteError(MicfpError):
    """A store or result set that was never finished (no completeness marker)."""


class ClusterError(MicfpError):
    """Cannot reach the scheduler, or workers that do not run the same code."""
