"""A small synthetic feature cube for tests that need one without a cluster."""

from pathlib import Path

import numpy as np


def synthetic_cube(path: Path, sessions=("day1", "day2"), offset=0.0, seed=0) -> str:
    import warnings

    import xarray as xr

    from pipeline.artifacts.cube import CUBE_KIND

    rng = np.random.default_rng(seed)
    rows = [(s, m, t, k * 2.0) for s in sessions for m in range(1, 6) for t in ("music", "speech")
            for k in range(8)]
    n = len(rows)
    label = np.array([r[1] for r in rows])
    X = rng.standard_normal((n, 10)).astype(np.float32) + label[:, None] + offset
    ds = xr.Dataset(
        {"features": (("clip", "feature"), X)},
        coords={"mic": ("clip", np.array([f"m{r[1]}" for r in rows], dtype=object)), "label": ("clip", label),
                "session": ("clip", np.array([r[0] for r in rows], dtype=object)),
                "recording": ("clip", np.array([f"{r[0]}-mic{r[1]}" for r in rows], dtype=object)),
                "sound_type": ("clip", np.array([r[2] for r in rows], dtype=object)),
                "clip_seconds": ("clip", np.full(n, 2.0)), "start_s": ("clip", np.array([r[3] for r in rows])),
                "end_s": ("clip", np.array([r[3] + 2 for r in rows])),
                "segmentation": ("clip", np.array(["fixed"] * n, dtype=object)),
                "feature": ("feature", np.array([f"ltas_mean_{i:02d}" for i in range(10)], dtype=object)),
                "feature_set": ("feature", np.array(["channel"] * 10, dtype=object))},
        attrs={"micfp": {"kind": CUBE_KIND, "complete": True, "mics": {str(i): f"m{i}" for i in range(1, 6)}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return str(path)
