"""Where micfp may write, checked before any compute; and which artifact a worker sees.

Every command resolves each output with :func:`check_output` (folders and Zarr artifacts) or
:func:`check_output_file` (single files) before a cluster starts or a byte is written:

* a local path is made absolute on the client, so workers started in another folder write
  (and read) the client's artifact, never one in their own working directory;
* something that micfp did not create is never replaced: an existing plain file, a symbolic
  link, or a non-empty folder without micfp's kind marker of the expected kind is refused;
* an output that is an input, contains one or lies inside one, or the current folder, is refused.

Artifacts carry a random ``uid`` in their ``micfp`` metadata; the client passes it with each
task and the worker checks it once per process with :func:`verify_seen`, so a worker that sees
another (or no) artifact at the path fails with one line instead of writing into it.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

from ..errors import InputError

# Kinds are defined once, in .kinds; imported here for the modules that name them with check_output.
from .kinds import (FOLDER_MARKER, PARTS_KIND, REPORT_KIND, RUN_KIND, TLS_KIND, WAV_KIND,  # noqa: E402,F401
                    read_kind, replaceable)

_SEEN: set[tuple[str, str]] = set()


def is_url(path) -> bool:
    """True for fsspec URLs (``s3://...``) other than ``file://``."""
    return "://" in str(path) and not str(path).startswith("file://")


def resolve(path) -> str:
    """``path`` as the client sees it: absolute for local paths, URLs unchanged."""
    path = str(path)
    if is_url(path):
        return path
    return os.path.abspath(path.removeprefix("file://"))


def new_uid() -> str:
    """A fresh artifact identity."""
    return uuid.uuid4().hex


def mark_folder(path, kind: str) -> None:
    """Write the folder marker of ``kind`` into ``path`` (created if missing)."""
    os.makedirs(path, exist_ok=True)
    marker = os.path.join(path, FOLDER_MARKER)
    if not os.path.exists(marker):
        with open(marker, "w", encoding="utf-8") as f:
            json.dump({"kind": kind}, f)


def _inside(a: str, b: str) -> bool:
    """True when ``a`` is ``b`` or lies inside it."""
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def _check_common(path, inputs, what: str) -> str:
    p = resolve(path)
    if is_url(p):
        return p
    if os.path.islink(p.rstrip(os.sep)):
        raise InputError(f"{path}: the {what} path is a symbolic link; micfp does not write through links "
                         f"(give the real path {os.path.realpath(p)})")
    cwd = os.getcwd()
    if _inside(cwd, p):
        raise InputError(f"{path}: the {what} would be the current folder or one that contains it; "
                         "give a new sub-folder")
    for i in inputs:
        if i is None:
            continue
        q = resolve(i)
        if not is_url(q) and (_inside(p, q) or _inside(q, p)):
            raise InputError(f"{path}: the {what} is the input {i} (or contains or lies inside it); "
                             "choose another path")
    return p


def check_output(path, kind: str | tuple[str, ...], *, inputs=(), what: str = "output") -> str:
    """Check that micfp may write the folder artifact ``path``; returns its resolved path.

    Parameters
    ----------
    path : str or path
        Local path or fsspec URL (URLs are returned unchanged).
    kind : str or tuple of str
        The micfp kind(s) an existing non-empty folder must carry to be replaced or resumed.
    inputs : sequence
        Paths the command reads: the output may neither be, contain nor lie inside one.
    what : str
        How the message names the output.

    Raises
    ------
    InputError
        One line naming the path and the problem.
    """
    p = _check_common(path, inputs, what)
    if is_url(p):
        return p
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if os.path.exists(p) and not os.path.isdir(p):
        raise InputError(f"{path}: exists and is a file, not a {what}; micfp does not replace it")
    if not replaceable(p, kinds):
        raise InputError(f"{path}: exists and is not a micfp {what} (kind={read_kind(p)!r}); micfp replaces only "
                         "what it created: choose another path or remove it yourself")
    return p


def check_output_file(path, *, inputs=(), what: str = "output file", kind: str | None = None, ours=None) -> str:
    """Check that micfp may write the single file ``path``; returns its resolved path.

    An existing file is replaced only when it is a micfp artifact of ``kind``
    (:func:`pipeline.artifacts.kinds.replaceable`), or, for files without a kind marker (an HTML
    report), when ``ours(path)`` says micfp wrote it.
    """
    p = _check_common(path, inputs, what)
    if is_url(p):
        return p
    if os.path.isdir(p):
        raise InputError(f"{path}: is a folder, not a {what} file")
    mine = replaceable(p, kind) if kind else os.path.exists(p) and ours is not None and ours(p)
    if os.path.exists(p) and not mine:
        raise InputError(f"{path}: exists and is not a micfp {what}; micfp does not replace it: choose another "
                         "path or remove it yourself")
    return p


def remove_artifact(path, kind: str) -> None:
    """Remove the local folder ``path`` only if it carries micfp's marker of ``kind``."""
    import shutil

    if not os.path.lexists(path):
        return
    found = read_kind(path) if os.path.isdir(path) and not os.path.islink(path) else None
    if found != kind:
        raise InputError(f"{path}: not a micfp {kind} (kind={found!r}); micfp does not remove it")
    shutil.rmtree(path)


def verify_seen(path: str, uid: str | None, storage_options: dict | None = None) -> None:
    """Worker side: check that ``path`` holds the artifact the client created (its ``uid``).

    Checked once per worker process and artifact (a small metadata read), so a task costs nothing.

    Raises
    ------
    InputError
        When the path is missing here or holds another artifact.
    """
    if uid is None or (path, uid) in _SEEN:
        return
    import zarr

    try:
        found = zarr.open_group(path, mode="r", storage_options=storage_options).attrs.get("micfp", {}).get("uid")
    except Exception:  # missing, unreadable: the same answer for the user
        found = None
    if found != uid:
        raise InputError(f"{path}: this worker ({socket.gethostname()}) cannot see the store the client wrote "
                         "(missing or a different one); workers need a shared filesystem at the same path, "
                         "or use an s3:// URL")
    _SEEN.add((path, uid))
