"""Stores on an object store: ``s3://`` URLs against a local S3-compatible server (moto) on
127.0.0.1, reached by the workers through fsspec configuration, never through code changes."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_helpers import run_pipeline

BUCKET = "micfp"


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free port of 127.0.0.1 with one bucket; the settings a user
    exports (endpoint through fsspec's FSSPEC_S3_ENDPOINT_URL, credentials through AWS_*)."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address
    url = f"http://{host}:{port}"
    env = {"FSSPEC_S3_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "micfp-test", "AWS_SECRET_ACCESS_KEY": "micfp-test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="micfp-test",
                 aws_secret_access_key="micfp-test").create_bucket(Bucket=BUCKET)
    yield {"url": url, "env": env}
    server.stop()


@pytest.fixture
def s3_here(s3, monkeypatch):
    """This process configured like the workers: environment plus fsspec's config (read at import)."""
    import fsspec.config

    for k, v in s3["env"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3["url"]})
    return s3


def _keys(s3, prefix: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3["url"], key="micfp-test", secret="micfp-test", skip_instance_cache=True)
    return [k for k in fs.find(f"{BUCKET}/{prefix}")]


@pytest.mark.cluster
def test_simulated_store_on_s3_equals_the_simulation(client, s3_here):
    from pipeline.simulate import MICS, StudioPlan, render_block
    from pipeline.simulate.writer import simulate_to_store
    from pipeline.artifacts.store import AudioStore, recording_id

    def configure(url, env):  # what a worker's environment / fsspec config says (docs/cluster.md)
        import os

        import fsspec.config

        os.environ.update(env)
        fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = url

    client.run(configure, s3_here["url"], s3_here["env"])
    plan = StudioPlan(minutes_per_session=(0.2, 0.1), seed=5)
    path = f"s3://{BUCKET}/unit/audio.zarr"
    simulate_to_store(plan, path, client, quiet=True)
    store = AudioStore.open(path)
    assert store.complete and len(store.recordings()) == len(MICS) * 2
    session = plan.sessions[1]
    expect = render_block(plan, session, 0, plan.n_samples(session))
    for i, m in enumerate(MICS):
        np.testing.assert_array_equal(store.read(recording_id(session, m.label)), expect[i])
    assert any(k.endswith("zarr.json") for k in _keys(s3_here, "unit/audio.zarr"))


@pytest.mark.slow
@pytest.mark.cluster
def test_pipeline_on_s3_end_to_end(s3_here, tmp_path):
    """simulate -> features -> evaluate with every store in the bucket, each command starting its
    own local cluster whose workers inherit the settings; same metrics as on local disk."""
    from pipeline import open_cube

    on_s3 = run_pipeline(tmp_path / "s3", [], env=s3_here["env"], store=f"s3://{BUCKET}/e2e/audio.zarr",
                         cube=f"s3://{BUCKET}/e2e/cube.zarr")
    assert not list((tmp_path / "s3").glob("*.zarr*"))  # nothing but the report went to local disk
    keys = _keys(s3_here, "e2e")
    for part in ("e2e/audio.zarr/", "e2e/cube.zarr/", "e2e/cube.zarr.frames/"):
        assert any(f"{BUCKET}/{part}" in k for k in keys), part
    cube = open_cube(f"s3://{BUCKET}/e2e/cube.zarr")
    assert cube.sizes["clip"] > 0 and set(cube.feature_set.values) == {"thesis", "channel"}
    on_disk = run_pipeline(tmp_path / "disk", [])
    assert len(on_s3["results"]) == 2
    from cluster_helpers import canonical

    assert canonical(on_s3) == canonical(on_disk)
