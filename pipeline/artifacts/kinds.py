"""What each artifact micfp writes is, and how to tell: its kind marker, read by one function.

Every artifact carries a ``kind`` in its ``micfp`` metadata: Zarr groups (audio store, frame
store, feature cube, cube parts, results set) in their attributes, a NetCDF results set in its
(JSON) ``micfp`` attribute, folders (report, run, WAV corpus, TLS certificates) in a marker file
:data:`FOLDER_MARKER`, a model file in its skops payload. :func:`read_kind` reads whichever is
there; :func:`replaceable` is the one test of whether micfp may replace what is at a path.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

STORE_KIND = "micfp-audio-store"
FRAMES_KIND = "micfp-frames"
CUBE_KIND = "micfp-feature-cube"
#: The temporary per-task feature parts beside a cube (``<cube>.parts``).
PARTS_KIND = "micfp-cube-parts"
RESULTS_KIND = "micfp-results"
MODEL_KIND = "micfp-model"
REPORT_KIND = "micfp-report"
RUN_KIND = "micfp-run"
WAV_KIND = "micfp-wav-corpus"
TLS_KIND = "micfp-tls"
#: A Parquet export of a cube (``micfp export``; a CSV export is recognised by its header).
EXPORT_KIND = "micfp-feature-export"

#: Marker file of the folders micfp writes (report folders, run and demo outputs, WAV corpora).
FOLDER_MARKER = ".micfp.json"

# Folders written before the marker existed, recognised by what only micfp puts there.
_LEGACY_FOLDERS = {REPORT_KIND: ("metrics.json",), RUN_KIND: ("state.json", "audio.zarr"),
                   WAV_KIND: ("mics.csv",), TLS_KIND: ("ca.pem",)}


def read_kind(path) -> str | None:
    """The micfp kind of the artifact at ``path``; ``None`` if it carries none (or is unreadable).

    URLs (``s3://...``): the Zarr group's ``micfp`` attributes. Local folders: the Zarr group's ``micfp`` attributes, else the folder marker, else what only micfp
    puts in its older folders. Files: a NetCDF results set's ``micfp`` attribute, a skops model
    file's schema naming :data:`MODEL_KIND`.
    """
    if "://" in str(path) and not str(path).startswith("file://"):
        return _zarr_kind(str(path))
    p = Path(str(path).removeprefix("file://"))
    try:
        if p.is_dir():
            return _folder_kind(str(p))
        if p.suffix == ".nc":
            return _netcdf_kind(p)
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                return MODEL_KIND if MODEL_KIND.encode() in z.read("schema.json") else None
    except (OSError, ValueError, AttributeError, TypeError, KeyError, zipfile.BadZipFile):
        return None
    return None


def _zarr_kind(url: str) -> str | None:
    import zarr

    try:
        meta = zarr.open_group(url, mode="r").attrs.get("micfp", {})
    except Exception:  # missing, unreadable, not a group: no kind, as for local paths
        return None
    return meta.get("kind") if isinstance(meta, dict) else None


def _folder_kind(path: str) -> str | None:
    for name, get in (("zarr.json", lambda d: d.get("attributes", {}).get("micfp", {}).get("kind")),
                      (FOLDER_MARKER, lambda d: d.get("kind"))):
        try:
            with open(os.path.join(path, name), encoding="utf-8") as f:
                kind = get(json.load(f))
        except (OSError, ValueError, AttributeError):
            continue
        if kind:
            return kind
    for kind, names in _LEGACY_FOLDERS.items():
        if any(os.path.exists(os.path.join(path, n)) for n in names):
            return kind
    if _legacy_parts(path):
        return PARTS_KIND
    return None


def netcdf_engine_for(path) -> str:
    """The xarray engine that reads the NetCDF file ``path``: ``scipy`` for netCDF3 (results sets
    of older micfp), ``h5netcdf`` for netCDF4 (HDF5)."""
    with open(path, "rb") as fh:
        return "scipy" if fh.read(3) == b"CDF" else "h5netcdf"


def _netcdf_kind(path: Path) -> str | None:
    import xarray as xr

    try:
        with xr.open_dataset(path, engine=netcdf_engine_for(path)) as ds:
            meta = ds.attrs.get("micfp", {})
    except Exception:  # not NetCDF, truncated...: the reader's many error types mean one thing here
        return None
    return (json.loads(meta) if isinstance(meta, str) else meta).get("kind")


def _legacy_parts(path: str) -> bool:
    """Parts left by a run before they carried a marker: an attribute-less Zarr group of numbered arrays."""
    try:
        with open(os.path.join(path, "zarr.json"), encoding="utf-8") as f:
            head = json.load(f)
        names = [n for n in os.listdir(path) if n != "zarr.json"]
    except (OSError, ValueError):
        return False
    return (path.endswith(".parts") and head.get("node_type") == "group" and not head.get("attributes")
            and all(n.isdigit() for n in names))


def replaceable(path, kinds: str | tuple[str, ...]) -> bool:
    """True when micfp may replace what is at local ``path`` by an artifact of one of ``kinds``.

    Nothing there, an empty folder (micfp's lock files aside: a run locks an output inside a folder
    before it writes the folder), or a micfp artifact of one of ``kinds``; never a symbolic link,
    another program's data or another kind of micfp artifact.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    p = str(path).rstrip(os.sep) or os.sep
    if not os.path.lexists(p):
        return True
    if os.path.islink(p):
        return False
    if os.path.isdir(p) and not [n for n in os.listdir(p) if not _is_lock_file(n)]:
        return True
    return read_kind(p) in kinds


def _is_lock_file(name: str) -> bool:
    """A lock file of :mod:`pipeline.artifacts.locks` (``.NAME.micfp-lock``)."""
    return name.startswith(".") and name.endswith(".micfp-lock")


def mics_from_attrs(attrs) -> dict[int, str]:
    """The microphone table ``{label: name}`` of an artifact's attributes (store, cube, results, model).

    ``attrs`` is the artifact's attributes (holding ``micfp``) or its ``micfp`` metadata itself;
    labels are stored as strings (JSON keys) and returned as ints.
    """
    meta = attrs if "mics" in attrs else attrs.get("micfp", {})
    if isinstance(meta, str):  # a NetCDF results set's JSON attribute
        meta = json.loads(meta)
    return {int(k): v for k, v in meta.get("mics", {}).items()}


def models_from_attrs(attrs) -> dict[int, str]:
    """The declared microphone models ``{label: model}`` of an artifact's attributes (``mics.csv``'s
    ``model`` column, carried by store, cube, results and model file); ``{}`` when none were declared."""
    meta = attrs if "mics" in attrs else attrs.get("micfp", {})
    if isinstance(meta, str):
        meta = json.loads(meta)
    return {int(k): v for k, v in (meta.get("models") or {}).items()}


def open_checked_group(path: str, kind: str, what: str, *, missing: str, incomplete: str,
                       require_complete: bool = True, **open_kw):
    """The Zarr group of a micfp artifact at ``path``, after checking its kind and completeness.

    The one place that opens a Zarr artifact (audio store, feature cube) for reading.

    Parameters
    ----------
    path : str
        Local path or fsspec URL.
    kind, what : str
        The kind it must carry, and how messages name it (``"audio store"``).
    missing, incomplete : str
        What to do, said after the problem: nothing there / a computation that did not finish.
    require_complete : bool
        Refuse an artifact whose completeness marker is not set.
    **open_kw
        Passed to :func:`zarr.open_group` (``mode``, ``storage_options``, ``use_consolidated``).

    Raises
    ------
    InputError
        Nothing there, not a Zarr store, or not a micfp artifact of ``kind``.
    IncompleteError
        With ``require_complete``, an artifact whose computation did not finish.
    """
    import zarr

    from ..errors import IncompleteError, InputError

    path = str(path)
    open_kw.setdefault("mode", "r")
    if "://" not in path and not os.path.exists(path):
        raise InputError(f"{path}: no {what} here ({missing})")
    try:
        group = zarr.open_group(path, **open_kw)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no {what} here ({missing})") from exc
    except Exception as exc:
        raise InputError(f"{path}: not a readable Zarr store: {exc}") from exc
    found = group.attrs.get("micfp", {}).get("kind")
    if found != kind:
        raise InputError(f"{path}: not a micfp {what} (kind={found!r})")
    if require_complete and not group.attrs["micfp"].get("complete"):
        raise IncompleteError(f"{path}: {what} is incomplete ({incomplete})")
    return group
