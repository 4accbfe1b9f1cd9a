"""micfp: which microphone recorded this audio? A Dask + Zarr + xarray + dask-ml pipeline."""

__version__ = "0.1.0"

from .features.cube import open_cube  # noqa: E402
from .artifacts.store import open_store  # noqa: E402

__all__ = ["__version__", "open_cube", "open_store"]
