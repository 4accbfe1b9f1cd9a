"""Write new, then swap: an artifact is replaced whole, never rewritten in place.

A writer builds the new version in a temporary sibling (:func:`temp_sibling`), marks it
complete there, then :func:`swap_in` renames the old version aside, renames the new one into
place and removes the old one. A reader therefore finds the old complete version or the new
complete one, never a mix, and a run that dies before the swap leaves the old version intact.
The caller holds the artifact's exclusive lock (:mod:`pipeline.locks`); under it no reader
opens the artifact mid-swap.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path

from ..errors import InputError
from .kinds import replaceable

log = logging.getLogger(__name__)


def check_replaceable(path: str | Path, kind: str, what: str) -> None:
    """Refuse to replace ``path`` unless it is absent or a micfp artifact of ``kind``.

    The test is :func:`pipeline.artifacts.kinds.replaceable`, the one micfp applies before any write.

    Raises
    ------
    InputError
        When something else (another program's data, another micfp artifact) is there.
    """
    if not replaceable(path, kind):
        raise InputError(f"{path}: exists and is not a micfp {what}; choose another path")


def temp_sibling(path: str | Path) -> str:
    """A fresh temporary name beside ``path`` for its next version (``PATH.tmp-<uuid>``)."""
    return f"{str(path).rstrip('/')}.tmp-{uuid.uuid4().hex}"


def remove_stale(path: str | Path) -> None:
    """Remove the temporary and set-aside versions of ``path`` left by runs that died.

    Call only under the exclusive lock of ``path``: then no live run owns them.
    """
    p = Path(str(path).rstrip("/"))
    for pattern in (f"{p.name}.tmp-*", f"{p.name}.old-*"):
        for q in p.parent.glob(pattern):
            if re.fullmatch(r"[0-9a-f]{32}", q.name.rsplit("-", 1)[-1]):  # our names only
                log.info("removing %s, left by an interrupted run", q)
                _remove(q)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def discard(path: str | Path) -> None:
    """Rename ``path`` aside and delete it in the background (large Zarr folders take a while).

    Renamed first, so a new version can take the name at once; the thread is not a daemon, so
    the interpreter finishes the deletion before exiting.
    """
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        return
    doomed = Path(f"{str(p).rstrip('/')}.old-{uuid.uuid4().hex}")
    os.rename(p, doomed)
    threading.Thread(target=_remove, args=(doomed,), name="micfp-remove").start()


def swap_in(tmp: str | Path, path: str | Path, kind: str, what: str) -> None:
    """Replace ``path`` by the complete new version ``tmp`` (the old one, if any, is removed).

    Parameters
    ----------
    tmp : path
        The new version, complete (from :func:`temp_sibling`).
    path : path
        The artifact; if it exists it must be a micfp ``kind`` (checked again here).
    kind, what : str
        Its kind marker and its name for messages.
    """
    check_replaceable(path, kind, what)
    discard(path)
    os.rename(tmp, path)
