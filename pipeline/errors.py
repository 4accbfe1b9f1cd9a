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


#: Per command, the argument naming what it writes: named when the OS reports no path.
OUTPUT_ARGS = {"demo": "out", "simulate": "out", "ingest": "store", "features": "cube", "evaluate": "out", "export": "out",
               "train": "model", "run": "out", "report": "html"}
_FULL = (28, 122)  # ENOSPC, EDQUOT


def os_error_message(exc: OSError, output=None) -> str:
    """One line for an operating-system error: the path, then the OS's reason.

    ``write()`` failing on a full disk carries no file name; ``output`` (what the command
    writes) is named then.
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _FULL:
        reason += " (free some space, or write elsewhere)"
    if exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return f"{where}: {reason}"
    if output:
        return f"{output}: {reason} (while writing it)"
    return reason


def exit_status(run, *, debug: bool = False, output=None) -> int:
    """Run a command (``run()``) and return its exit status; an error becomes one line on stderr.

    Parameters
    ----------
    run : callable
        The command; returns an exit status (``None`` means 0).
    debug : bool
        Re-raise errors (a traceback) instead of printing one line.
    output : str, optional
        What the command writes: named when an operating-system error carries no path.

    Returns
    -------
    int
        The command's status, the error's ``exit_code``, 130 when interrupted, else 1.
    """
    import sys

    try:
        return int(run() or 0)
    except MicfpError as exc:
        if debug:
            raise
        print(f"micfp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("micfp: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback, unless --debug
        if debug:
            raise
        if isinstance(exc, OSError) and exc.errno is not None:  # permission, disk full: the path, the reason
            msg = one_line(os_error_message(exc, output))
        else:
            msg = f"{type(exc).__name__}: {one_line(exc)} (run with --debug for the traceback)"
        print(f"micfp: error: {msg}", file=sys.stderr)
        return 1
