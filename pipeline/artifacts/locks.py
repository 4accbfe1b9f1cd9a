"""One writer per output: an exclusive lock file beside each store a command writes.

Two runs writing the same store at once would interleave shards and ledgers. The second run
fails at once with a clear message instead; a lock left by a run that died (its process is
gone) is taken over, so a killed run never blocks the resume.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import socket
import time
from pathlib import Path

from ..errors import MicfpError


_HELD: set[Path] = set()


class LockedError(MicfpError):
    """Another live run is writing the same output."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(path: str) -> Path | None:
    """Where the lock of ``path`` lives; ``None`` for remote (fsspec URL) outputs."""
    if "://" in str(path) and not str(path).startswith("file://"):
        return None
    p = Path(str(path).removeprefix("file://")).absolute()
    return p.parent / f".{p.name}.micfp-lock"


@contextlib.contextmanager
def exclusive(path: str, *, what: str = "output"):
    """Hold the write lock of ``path`` for the duration of the block.

    Raises
    ------
    LockedError
        When another live process on this host holds it.
    """
    lp = lock_path(path)
    if lp is None or lp in _HELD:  # object stores: no atomic create; re-entrant within a process
        yield
        return
    lp.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    for _ in range(2):
        try:
            fd = os.open(lp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lp.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            pid = int(holder.get("pid", -1))
            same_host = holder.get("host") == me["host"]
            if same_host and pid > 0 and not _alive(pid):
                lp.unlink(missing_ok=True)  # stale: its run died; take over
                continue
            raise LockedError(
                f"{path}: another micfp run (pid {pid} on {holder.get('host', '?')}) is writing this {what}; "
                f"wait for it to finish, or remove {lp} if that run is gone"
            ) from None
        except OSError as exc:
            raise MicfpError(f"{path}: cannot write here ({exc.strerror}); choose a writable location") from exc
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    _HELD.add(lp)
    try:
        yield
    finally:
        _HELD.discard(lp)
        with contextlib.suppress(OSError):
            if json.loads(lp.read_text()).get("pid") == me["pid"]:
                lp.unlink()


def locked(param: str, what: str = "output"):
    """Decorator: hold the write lock of the path passed as argument ``param`` during the call."""

    def wrap(func):
        sig = inspect.signature(func)

        @functools.wraps(func)
        def inner(*args, **kwargs):
            path = sig.bind(*args, **kwargs).arguments[param]
            with exclusive(str(path), what=what):
                return func(*args, **kwargs)

        return inner

    return wrap
