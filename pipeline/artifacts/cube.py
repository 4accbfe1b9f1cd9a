"""The feature cube on disk: the one place that opens it and checks its kind and completeness.

:func:`check_cube` checks a path holds a (complete) micfp feature cube; :func:`open_cube` opens
it as a lazy xarray Dataset, :func:`open_rows` for row access (:class:`~pipeline.artifacts.rows.CubeRows`),
:func:`cached_cube` once per process and version of the cube (what evaluation tasks on workers use).
:func:`cube_outputs` checks where ``micfp features`` may write a cube and its side artifacts.
The cube itself is computed by :func:`pipeline.features.cube.compute_cube`.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np
import zarr

from ..errors import IncompleteError, InputError
from .kinds import CUBE_KIND, FRAMES_KIND, PARTS_KIND, open_checked_group
from .locks import lock_path, shared
from .outputs import check_output, resolve
from .rows import CubeRows, read_coordinate


def frames_path_for(cube_path: str) -> str:
    """Default location of the frame store: ``<cube>.frames`` beside the cube."""
    return str(cube_path).rstrip("/") + ".frames"


def cube_outputs(store_path: str, cube_path: str, frames_path: str | None = None) -> tuple[str, str, str, str]:
    """Resolved ``(store, cube, frames, parts)`` paths, after checking micfp may write the last three.

    Called by ``micfp features`` before a cluster starts and by :func:`compute_cube` first thing.
    """
    store_path = resolve(store_path)
    cube = check_output(cube_path, CUBE_KIND, inputs=(store_path,), what="feature cube")
    frames = check_output(frames_path or frames_path_for(cube), FRAMES_KIND, inputs=(store_path, cube),
                          what="frame store")
    parts = check_output(cube.rstrip("/") + ".parts", PARTS_KIND, inputs=(store_path, cube, frames),
                         what="cube parts folder")
    return store_path, cube, frames, parts



def check_cube(path: str, require_complete: bool = True) -> zarr.Group:
    """The cube's Zarr group, after checking that it is a (complete) micfp feature cube.

    Raises
    ------
    InputError
        Nothing there, not a Zarr store, or not a micfp feature cube.
    IncompleteError
        With ``require_complete``, a cube whose computation did not finish.
    """
    return open_checked_group(path, CUBE_KIND, "feature cube", require_complete=require_complete,
                              missing="run `micfp features`",
                              incomplete="its computation did not finish; re-run it")


def open_cube(path: str, *, require_complete: bool = True, coords: dict | None = None):
    """Open a feature cube as an :class:`xarray.Dataset` (lazy).

    ``features`` has dims ``(clip, feature)``; clip coordinates ``mic``, ``label``, ``session``,
    ``recording``, ``sound_type``, ``clip_seconds`` (nominal length; 0 for silence-split clips),
    ``start_s``, ``end_s``, ``segmentation``; feature coordinates ``feature`` and ``feature_set``.
    ``coords`` (internal): clip coordinates already in memory, used instead of reading them.
    """
    with shared(str(path), what="feature cube"):  # never opened by halves, mid-swap
        return _open_cube(str(path), require_complete, coords)


def _open_cube(path: str, require_complete: bool, coords: dict | None):
    import xarray as xr

    path = resolve(path)  # its dask arrays may be read by workers in another folder
    g = check_cube(path, require_complete)
    ds = xr.open_zarr(path, consolidated=False)
    uid = g.attrs["micfp"].get("uid")
    if uid is not None and lock_path(path) is not None:
        # Features are read lazily, after the lock is released: each block checks, once read,
        # that the cube it came from is still the one opened (else the read could mix two
        # cubes, or read a removed cube's chunks as zeros).
        feats = ds["features"]
        ds["features"] = feats.copy(data=feats.data.map_blocks(_same_write, path=path, uid=uid,
                                                               dtype=feats.dtype))
    # Coordinates are loaded (boolean selection and groupby then work directly). Through the
    # bare variables: ``ds[name]`` would carry, load and copy every other clip coordinate too,
    # quadratic in the number of coordinates at millions of clips. Read here with Zarr, not
    # through dask, whose default scheduler may be a cluster: shipping millions of strings
    # back costs more than reading them.
    given = coords or {}
    loaded = {}
    for name in ds.coords:
        var = ds.variables[name]
        values = given[name] if name in given else read_coordinate(g[name])
        # fastpath: xarray would otherwise turn object strings into fixed-width unicode,
        # several hundred MB per coordinate at millions of clips.
        loaded[name] = xr.Variable(var.dims, values, var.attrs, fastpath=True)
    return ds.assign_coords(loaded)


def _same_write(block: np.ndarray, path: str, uid: str) -> np.ndarray:
    """``block``, once the cube at ``path`` is checked to still be the write ``uid``."""
    if cube_uid(path) != uid:
        raise IncompleteError(f"{path}: the feature cube was replaced while it was being read; open it again")
    return block


def cube_uid(path: str) -> str | None:
    """The ``uid`` of the local cube at ``path`` now (new at every write); ``None`` if unreadable."""
    try:
        with open(os.path.join(path, "zarr.json"), "rb") as f:
            return json.load(f).get("attributes", {}).get("micfp", {}).get("uid")
    except (OSError, ValueError):
        return None


def open_rows(path: str) -> CubeRows:
    """Open a complete feature cube for row access (:class:`~pipeline.artifacts.rows.CubeRows`).

    Its rows are read later, by path: hold :func:`pipeline.artifacts.locks.shared` on the cube meanwhile
    if another process may rewrite it (every ``micfp`` command does).
    """
    with shared(str(path), what="feature cube"):
        return CubeRows(str(path), check_cube(path))


#: Cubes up to this many bytes of features are held in memory by :func:`cached_cube` (an hour
#: of audio at eight clip lengths); larger ones are opened for row access
#: (:func:`open_rows`) and each cell reads only its rows, so a worker's memory stays bounded
#: however long the corpus. At 512 MB, a 7.5 h cube (396 MB) was held whole by every worker and
#: the ablation's peak worker RSS reached 1.2 GB.
CUBE_LOAD_LIMIT = int(os.environ.get("MICFP_CUBE_LOAD_LIMIT", str(64 * 2**20)))
#: Cubes a worker keeps open at once (the clean cube plus a few degraded ones).
CUBE_CACHE_SIZE = int(os.environ.get("MICFP_CUBE_CACHE", "4"))
_CUBES: OrderedDict = OrderedDict()
_LOADS: dict[str, int] = {}


def cached_cube(path: str):
    """The cube at ``path``, opened once per process and version of the cube.

    Keyed by the path and the version stamp of the cube's root metadata (:func:`_marker`, new
    whenever a cube is recomputed), so a recomputed cube is never served stale. Read under the
    cube's read lock, so the stamp and the cube are of one version. Small cubes are loaded into
    memory (an xarray Dataset); larger ones (over :data:`CUBE_LOAD_LIMIT` bytes of features) are
    opened for row access (:class:`~pipeline.artifacts.rows.CubeRows`), so a worker's memory does
    not grow with the corpus: cells read the rows they select.
    """
    with shared(str(path), what="feature cube"):  # the stamp and the cube of one version
        key = (str(path), _marker(str(path)))
        if key in _CUBES:
            _CUBES.move_to_end(key)
            return _CUBES[key]
        for k in [k for k in _CUBES if k[0] == str(path)]:
            del _CUBES[k]
        cube = _load_cube(str(path))
    _CUBES[key] = cube
    _LOADS[str(path)] = _LOADS.get(str(path), 0) + 1
    while len(_CUBES) > max(1, CUBE_CACHE_SIZE):
        _CUBES.popitem(last=False)
    return cube


def _load_cube(path: str):
    g = check_cube(str(path))
    if g["features"].nbytes <= CUBE_LOAD_LIMIT:
        import dask

        # Read here, in this process: inside a worker's task the inherited default scheduler may
        # name a distributed client this process does not have.
        with dask.config.set(scheduler="synchronous"):
            cube = open_cube(str(path)).load()
    else:
        cube = CubeRows(str(path), g)
    return cube


def _marker(path: str) -> tuple:
    """The version stamp of the cube at ``path``: its root metadata file's inode, time and size.

    A rewritten cube is a new folder swapped in (:func:`compute_cube`), so its metadata file is
    a new inode (the old one still existed when it was made): the stamp changes even when the
    modification time does not.
    """
    if "://" in path:  # remote stores: no cheap stamp; the path alone
        return ()
    st = os.stat(os.path.join(path, "zarr.json"))
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def clear_cache() -> None:
    """Forget every cached cube of this process."""
    _CUBES.clear()
    _LOADS.clear()


def cache_stats() -> dict[str, int]:
    """How many times this process opened each cube (``client.run(cache_stats)`` on workers)."""
    return dict(_LOADS)


def spectra(cube, name: str = "ltas_mean"):
    """A per-band feature family of a cube as a ``(clip, band)`` DataArray with ``frequency_hz``.

    Parameters
    ----------
    cube : xarray.Dataset
        A cube from :func:`open_cube` (written with a ``frequency_hz`` feature coordinate).
    name : str
        The family: ``"ltas_mean"`` (level-normalised long-term spectrum, dB) or ``"ltas_p10"``
        (quiet-frame spectrum, dB).

    Returns
    -------
    xarray.DataArray
        Dims ``(clip, band)``; coordinates ``band`` (0..n-1), ``frequency_hz`` (band centre) and
        the clip coordinates. Lazy if the cube is.
    """
    if "frequency_hz" not in cube.coords:
        raise InputError("this feature cube has no frequency_hz coordinate (written by an older micfp); "
                         "recompute it with `micfp features`")
    feature = np.asarray(cube["feature"].values).astype(str)
    cols = np.flatnonzero(np.char.startswith(feature, f"{name}_"))
    if cols.size == 0:
        raise InputError(f"the feature cube has no {name}_* features (compute the channel feature set)")
    out = cube["features"].isel(feature=cols)
    freq = out["frequency_hz"].values
    out = out.drop_vars([c for c in out.coords if "feature" in out[c].dims])
    out = out.rename(feature="band").assign_coords(
        band=("band", np.arange(cols.size), {"long_name": "band number"}),
        frequency_hz=("band", freq, {"units": "Hz", "long_name": "band centre frequency"}))
    out.name = name
    out.attrs = {"units": "dB", "long_name": f"{name} band levels"}
    return out
