"""Exceptions that the command line turns into one clear line and a non-zero exit."""


class MicfpError(Exception):
    """Base class: the message names the file or setting and the problem."""

    exit_code = 2


class InputError(MicfpError):
    """Bad input data or path: unreadable, malformed, inconsistent."""


class ConfigError(MicfpError):
    """Invalid configuration, found before any compute starts."""


class IncompleteError(MicfpError):
    """A store or result set that was never finished (no completeness marker)."""


class ClusterError(MicfpError):
    """Cannot reach the scheduler, or workers that do not run the same code."""


#: Per command, the argument naming what it writes: named when the OS reports no path.
OUTPUT_ARGS = {"demo": "out", "simulate": "out", "ingest": "store", "features": "cube", "evaluate": "out",
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
