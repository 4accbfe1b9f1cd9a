"""Readers and writers of one artifact exclude each other: shared and exclusive locks.

Each local artifact (audio store, frame store, feature cube, results set) has a lock file
beside it, ``.NAME.micfp-lock``, locked with :func:`fcntl.flock`:

- a writer holds it **exclusive** for its whole command (``ingest``, ``simulate``, the cube of
  ``features``, the results of ``run``/``evaluate``), so no other run reads or writes the
  artifact meanwhile;
- a reader holds it **shared** for its whole command (``features`` on its store, ``evaluate``,
  ``train``, ``report``, ``info`` and ``run`` on what they read), so readers coexist but no
  writer starts while one reads.

Locks are taken on the client only and never wait: a conflict raises :class:`LockedError` at
once, naming the path and the holder. The kernel releases a lock when its process dies, so a
killed run never blocks the resume (no stale-lock takeover needed). Lock files are never
removed: removing a flock file while another process opens it would let two runs each lock a
different file of the same name. Within one process locks are re-entrant (a writer may read
what it writes; a process holding the exclusive lock may take the shared one).

Remote outputs (fsspec URLs other than ``file://``) are not locked: object stores offer no
shared lock; one run per remote artifact is the user's responsibility there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import inspect
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MicfpError

SHARED = "shared"
EXCLUSIVE = "exclusive"
#: Bytes of the holder record written at the start of the lock file (padded, one write).
_RECORD = 256


class LockedError(MicfpError):
    """Another live run is writing (or reading) the same artifact."""


@dataclass
class _Held:
    fd: int
    modes: list[str] = field(default_factory=list)


_HELD: dict[Path, _Held] = {}
_GUARD = threading.RLock()  # _HELD is shared by the threads of a process


def lock_path(path: str) -> Path | None:
    """Where the lock of ``path`` lives; ``None`` for remote (fsspec URL) artifacts."""
    if "://" in str(path) and not str(path).startswith("file://"):
        return None
    p = Path(os.path.abspath(str(path).removeprefix("file://").rstrip("/") or "/"))
    return p.parent / f".{p.name}.micfp-lock"


def holder(path: str) -> dict:
    """The last holder recorded in the lock file of ``path`` (pid, host, mode, since); ``{}`` if none."""
    lp = lock_path(path)
    return _record(lp) if lp else {}


def _record(lp: Path) -> dict:
    try:
        return json.loads(lp.read_bytes()[:_RECORD].rstrip(b"\0 ") or b"{}")
    except (OSError, ValueError):
        return {}


def _mine(h: dict) -> bool:
    return h.get("pid") == os.getpid() and h.get("host") == socket.gethostname()


def _alive(h: dict) -> bool:
    """Whether the holder recorded in ``h`` may still run (a process on another host: assumed)."""
    if h.get("host") != socket.gethostname():
        return bool(h)
    try:
        os.kill(int(h.get("pid", -1)), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _refusal(path: str, what: str, mode: str) -> LockedError:
    h = holder(path)
    by = "another micfp run"
    if _alive(h):
        by = f"micfp pid {h.get('pid', '?')}"
        if h.get("host") != socket.gethostname():
            by += f" on {h.get('host')}"
    doing = {SHARED: "read", EXCLUSIVE: "written"}.get(h.get("mode"), "used")
    wants = "read" if mode == SHARED else "write"
    return LockedError(f"{path}: this {what} is being {doing} by {by}; wait for it to finish before you {wants} it")


def _open(lp: Path, path: str, mode: str) -> int | None:
    try:
        if mode == EXCLUSIVE:
            lp.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if mode == SHARED and exc.errno == errno.ENOENT:  # no folder: nothing to read, nor to lock
            return None
        if mode == SHARED and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            # A reader of a location it may not write: lock through a read-only descriptor if
            # the lock file exists, else read unlocked (this user cannot rewrite it either).
            with contextlib.suppress(OSError):
                return os.open(lp, os.O_RDONLY)
            return None
        raise MicfpError(f"{path}: cannot lock here ({exc.strerror}); choose a writable location") from exc


def _acquire(lp: Path, path: str, what: str, mode: str) -> bool:
    """Take the lock (or one more level of it); ``False`` when a reader cannot lock here."""
    with _GUARD:
        held = _HELD.get(lp)
        if held is not None:  # re-entrant: any mode under exclusive, shared under shared
            if mode == EXCLUSIVE and EXCLUSIVE not in held.modes:
                # Converting a flock is not atomic (a failed upgrade drops the shared lock), so a
                # run never writes what it is reading.
                raise LockedError(f"{path}: this run is reading this {what}, so it cannot also write it")
            held.modes.append(mode)
            return True
        fd = _open(lp, path, mode)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if mode == EXCLUSIVE else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refusal(path, what, mode) from None
        except OSError as exc:  # e.g. a file system without flock
            os.close(fd)
            raise MicfpError(f"{path}: cannot lock here ({exc.strerror}); choose a local file system") from exc
        me = {"pid": os.getpid(), "host": socket.gethostname(), "mode": mode, "since": time.time()}
        # One padded write at offset 0 (no truncation), so a concurrent reader of the record
        # sees the old or the new one. A reader keeps the record of a live earlier reader, so
        # the record names a reader that still holds the lock as long as one does.
        if mode == EXCLUSIVE or not _reading(holder(path)):
            with contextlib.suppress(OSError):
                os.pwrite(fd, json.dumps(me).encode().ljust(_RECORD)[:_RECORD], 0)
        _HELD[lp] = _Held(fd, [mode])
        return True


def _reading(h: dict) -> bool:
    return h.get("mode") == SHARED and not _mine(h) and _alive(h)


def _release(lp: Path, mode: str) -> None:
    with _GUARD:
        held = _HELD[lp]
        held.modes.remove(mode)  # this level's mode (threads of a process share the entry)
        if not held.modes:
            del _HELD[lp]
            if _mine(_record(lp)):
                with contextlib.suppress(OSError):  # so no refusal names a run that let go
                    os.pwrite(held.fd, b" " * _RECORD, 0)
            os.close(held.fd)  # releases the flock; the file stays (see the module docstring)


@contextlib.contextmanager
def _hold(path: str, what: str, mode: str):
    lp = lock_path(path)
    if lp is None:  # remote: no lock (see the module docstring)
        yield
        return
    if not _acquire(lp, str(path), what, mode):
        yield
        return
    try:
        yield
    finally:
        _release(lp, mode)


def exclusive(path: str, *, what: str = "output"):
    """Context manager: hold the write lock of ``path`` (no other run reads or writes it).

    Parameters
    ----------
    path : str
        The artifact (a local path; fsspec URLs are not locked).
    what : str
        What it is, for the error message (``"audio store"``, ``"feature cube"``...).

    Raises
    ------
    LockedError
        At once, when another process holds the lock of ``path`` (shared or exclusive), or this
        process holds only the shared one.
    """
    return _hold(path, what, EXCLUSIVE)


def shared(path: str, *, what: str = "input"):
    """Context manager: hold the read lock of ``path`` (other readers may too; no writer).

    Parameters
    ----------
    path : str
        The artifact (a local path; fsspec URLs are not locked).
    what : str
        What it is, for the error message.

    Raises
    ------
    LockedError
        At once, when another process holds the exclusive lock of ``path``.
    """
    return _hold(path, what, SHARED)


def held(path: str) -> str | None:
    """The mode in which this process holds the lock of ``path`` (strongest), else ``None``."""
    lp = lock_path(path)
    with _GUARD:
        h = _HELD.get(lp) if lp else None
        return None if h is None else (EXCLUSIVE if EXCLUSIVE in h.modes else SHARED)


def locked(param: str, what: str = "output", *, reads: tuple[tuple[str, str], ...] = ()):
    """Decorator: hold the write lock of the path passed as argument ``param`` during the call,
    and the read lock of each ``(argument, what)`` in ``reads`` (arguments that are ``None`` skip)."""

    def wrap(func):
        sig = inspect.signature(func)

        @functools.wraps(func)
        def inner(*args, **kwargs):
            bound = sig.bind(*args, **kwargs).arguments
            with contextlib.ExitStack() as stack:
                stack.enter_context(exclusive(str(bound[param]), what=what))
                for name, kind in reads:
                    if bound.get(name) is not None:
                        stack.enter_context(shared(str(bound[name]), what=kind))
                return func(*args, **kwargs)

        return inner

    return wrap


def reading(param: str, what: str = "input"):
    """Decorator: hold the read lock of the path passed as argument ``param`` during the call."""

    def wrap(func):
        sig = inspect.signature(func)

        @functools.wraps(func)
        def inner(*args, **kwargs):
            with shared(str(sig.bind(*args, **kwargs).arguments[param]), what=what):
                return func(*args, **kwargs)

        return inner

    return wrap
