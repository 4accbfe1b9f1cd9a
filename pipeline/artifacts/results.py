"""The results set: writing it (Zarr or NetCDF) and opening it for reports and analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .conventions import annotate
from .kinds import RESULTS_KIND, netcdf_engine_for
from .locks import exclusive, shared
from .outputs import check_output, check_output_file
from .swap import check_replaceable, remove_stale, swap_in, temp_sibling

CLEAN = "clean"


def check_results_output(path, *, inputs=()) -> Path:
    """Check that micfp may write the results set ``path`` (a new path or a micfp results set)."""
    if Path(path).suffix == ".nc":
        return Path(check_output_file(path, inputs=inputs, what="results set", kind=RESULTS_KIND))
    return Path(check_output(path, RESULTS_KIND, inputs=inputs, what="results set"))


def save_results(ds, path: Path) -> None:
    """Write the results Dataset of ``micfp evaluate``/``demo`` (:func:`write_results`)."""
    write_results(ds, path)


def _plain_str(values) -> np.ndarray:
    """Object array of Python str (numpy's StringDType from zarr v3 does not cast to '<U')."""
    values = np.asarray(values)
    return np.array([str(v) for v in values.ravel()], dtype=object).reshape(values.shape)


def write_results(ds, path: Path) -> Path:
    """Write the results set to Zarr (``.zarr``) or NetCDF (``.nc``), replacing it whole.

    Written beside ``path`` and swapped in under its write lock (:func:`pipeline.artifacts.swap.swap_in`),
    so a reader finds the old set or the new one; anything at ``path`` but a results set is
    refused, not replaced.
    """
    path = check_results_output(path)  # only a results set micfp wrote is replaced
    with exclusive(str(path), what="results set"):
        check_replaceable(path, RESULTS_KIND, "results set")
        remove_stale(path)
        tmp = Path(temp_sibling(path))
        _write_results_to(annotate(ds, "micfp results set"), path.suffix, tmp)
        swap_in(tmp, path, RESULTS_KIND, "results set")
    return path


def netcdf_engine() -> str:
    """``h5netcdf`` (netCDF4: variable-length strings, compression) if installed, else ``scipy`` (netCDF3)."""
    try:
        import h5netcdf  # noqa: F401
    except ImportError:
        return "scipy"
    return "h5netcdf"


def _write_results_to(ds, suffix: str, tmp: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification.*")
        # consolidated metadata (written: the set never changes) is not yet in the v3 specification
        warnings.filterwarnings("ignore", message=".*Zarr [Ff]ormat 3 specification.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        if suffix == ".nc":
            out = ds.copy()
            out.attrs = {**ds.attrs, "micfp": json.dumps(ds.attrs["micfp"])}  # netCDF attributes cannot nest
            engine = netcdf_engine()
            for k in list(out.variables):
                if out[k].dtype == object:
                    out[k] = out[k].astype(str)
            out.to_netcdf(tmp, engine=engine, **({"format": "NETCDF4"} if engine == "h5netcdf" else {}))
        else:
            ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True)


def open_results(path):
    """Open a results set (Zarr or NetCDF) as an in-memory :class:`xarray.Dataset`."""
    path = Path(path)
    with shared(str(path), what="results set"):  # loaded whole, under the lock
        return _open_results(path)


def _open_results(path: Path):
    import xarray as xr

    if not path.exists():
        raise InputError(f"{path}: no results set here (run `micfp run` or `micfp evaluate`)")
    try:
        if path.suffix == ".nc":
            ds = xr.open_dataset(path, engine=netcdf_engine_for(path)).load()
        else:
            ds = xr.open_zarr(path, consolidated=False).load()
    except Exception as exc:
        raise InputError(f"{path}: not a readable results set: {exc}") from exc
    meta = ds.attrs.get("micfp", {})
    if isinstance(meta, str):
        meta = json.loads(meta)
    if meta.get("kind") != RESULTS_KIND:
        raise InputError(f"{path}: not a micfp results set (kind={meta.get('kind')!r})")
    ds.attrs["micfp"] = meta
    for name in list(ds.variables):
        if ds[name].dtype.kind in "TUS":
            values = ds[name].values
            if ds[name].dtype.kind == "S":
                values = np.char.decode(values, "utf-8")
            var = (ds[name].dims, _plain_str(values), ds[name].attrs)  # CF attributes kept
            if name in ds.coords:
                ds = ds.assign_coords({name: var})
            else:
                ds[name] = var
    if "condition" not in ds.dims:  # a results set from `micfp evaluate`: all clean
        ds = ds.expand_dims(condition=[CLEAN])
    return ds
