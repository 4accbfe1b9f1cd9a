"""Shared fixtures: a real multi-process Dask cluster and a tiny simulated corpus."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def client():
    """A LocalCluster with two worker processes (not threads), as users run it."""
    from pipeline.cluster.connect import ClusterSettings, connect

    with connect(ClusterSettings(workers=2, dashboard_address="127.0.0.1:0")) as c:
        yield c


@pytest.fixture(scope="session")
def tiny_plan():
    from pipeline.simulate import StudioPlan

    return StudioPlan(minutes_per_session=(1.0, 0.6), seed=7)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, client, tiny_plan):
    from pipeline.simulate.writer import simulate_to_store

    path = tmp_path_factory.mktemp("corpus") / "audio.zarr"
    simulate_to_store(tiny_plan, str(path), client, quiet=True)
    return str(path)


@pytest.fixture(scope="session")
def tiny_cube(tmp_path_factory, client, tiny_store):
    from pipeline.features import FeatureConfig, compute_cube

    path = tmp_path_factory.mktemp("cube") / "cube.zarr"
    compute_cube(tiny_store, str(path), FeatureConfig(clip_seconds=(1.0, 2.0), segmentations=("fixed", "silence")),
                 client, quiet=True)
    return str(path)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def clean_env(monkeypatch):
    """No cluster settings from the environment of the test run."""
    import dask.config

    for var in ("MICFP_CLUSTER", "DASK_SCHEDULER_ADDRESS", "MICFP_SCHEDULER", "MICFP_CLUSTER_PATH"):
        monkeypatch.delenv(var, raising=False)
    for key in ("scheduler-address", "scheduler_address"):  # dask config read DASK_SCHEDULER_ADDRESS at import
        monkeypatch.delitem(dask.config.config, key, raising=False)
    return monkeypatch
