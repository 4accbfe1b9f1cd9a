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
