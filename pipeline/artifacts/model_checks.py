"""Checks of a model file before and after loading: its archive's size, its open-set arrays' shapes.

A skops file is a zip archive; loading it unpacks every array it holds. A small file can hold
a huge, highly compressible array (a 2.8 MB file unpacking to 1.6 GB), so the archive's
declared sizes are checked before anything is unpacked (:mod:`zipfile` never returns more
than a member's declared size). After loading, the open-set statistics must fit the
estimator, or ``identify`` would fail deep inside numpy, or quietly compare wrong things.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError

#: Unpacked size always allowed (micfp's models are a few MB; 300 deep trees on thesis-scale data
#: a few hundred MB).
MAX_UNPACKED_BYTES = 512 * 2**20
#: Beyond that, the unpacked size may still be this many times the file's size (tree arrays
#: compress a few times, not a thousand).
MAX_RATIO = 50
OPENSET_KEYS = ("classes", "means", "precision", "tau")


def check_archive(path, data: bytes | None = None) -> None:
    """Refuse a model file that is not a zip archive or that unpacks to far more than it could hold.

    ``data``: the file's bytes, when already read (then checked instead of the file at ``path``).

    Raises
    ------
    InputError
        One line naming the file (and the member) and the sizes.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path if data is None else io.BytesIO(data)) as z:
            infos = z.infolist()
        size = path.stat().st_size if data is None else len(data)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a skops model file ({type(exc).__name__}: {exc})") from exc
    limit = max(MAX_UNPACKED_BYTES, MAX_RATIO * size)
    total = sum(i.file_size for i in infos)
    if total > limit:
        big = max(infos, key=lambda i: i.file_size)
        raise InputError(f"{path}: unpacks to {total / 2**20:,.0f} MiB from a {size / 2**20:,.1f} MiB file "
                         f"({big.filename}: {big.file_size / 2**20:,.0f} MiB); refused (limit {limit / 2**20:,.0f} "
                         "MiB): not a model micfp wrote")


def check_openset(openset: dict, estimator, path) -> None:
    """The open-set statistics must match the estimator's classes and embedded feature count.

    ``classes`` (k,) equal to the estimator's, ``means`` (k, d) and ``precision`` (d, d) finite, with
    ``d`` the classifier's input width, and ``tau`` a finite number, 0 or more.
    """
    missing = [k for k in OPENSET_KEYS if k not in openset]
    if missing:
        raise InputError(f"{path}: the model's open-set statistics lack {', '.join(missing)}; retrain with "
                         "`micfp train`")
    classes = np.asarray(estimator.classes_)
    d = getattr(estimator[-1], "n_features_in_", None)
    got = {k: np.asarray(openset[k]) for k in OPENSET_KEYS}
    d = d if d is not None else (got["means"].shape[-1] if got["means"].ndim else -1)
    want = {"classes": (classes.size,), "means": (classes.size, d), "precision": (d, d), "tau": ()}
    for key, shape in want.items():
        a = got[key]
        if a.shape != shape or not np.issubdtype(a.dtype, np.number):
            raise InputError(f"{path}: the model's open-set {key} has shape {a.shape} ({a.dtype}), expected "
                             f"{shape} for {classes.size} microphones and {d} features; not a model micfp wrote")
        if not np.all(np.isfinite(a)):
            raise InputError(f"{path}: the model's open-set {key} holds non-finite values")
    if not np.array_equal(np.sort(got["classes"]), np.sort(classes)):
        raise InputError(f"{path}: the model's open-set classes {got['classes'].tolist()} differ from its "
                         f"estimator's {classes.tolist()}")
    if float(got["tau"]) < 0:
        raise InputError(f"{path}: the model's open-set threshold tau is {float(got['tau'])}, below 0")
