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


def exit_status(run, *, debug: bool = False) -> int:
    """Run a command (``run()``) and return its exit status; an error becomes one line on stderr.

    Parameters
    ----------
    run : callable
        The command; returns an exit status (``None`` means 0).
    debug : bool
        Re-raise errors (a traceback) instead of printing one line.

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
        print(f"micfp: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1
