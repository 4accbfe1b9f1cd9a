"""micfp: which microphone recorded this audio? A Dask + Zarr + xarray + dask-ml pipeline."""

from .version import __version__

# Before any numba function is defined: micfp's processes use micfp's numba cache (pipeline.jit).
from .jit import configure as _configure_jit  # noqa: E402

_configure_jit()

from .artifacts.cube import open_cube  # noqa: E402
from .artifacts.store import open_store  # noqa: E402

__all__ = ["__version__", "open_cube", "open_store"]
