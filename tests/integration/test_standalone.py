"""Standalone clusters (``micfp cluster up|status|down``, scheduler and worker processes of their own):
attaching to one, and the same results as the default local cluster (TLS: ``test_tls_cluster.py``)."""

from __future__ import annotations

import json

import pytest

from cluster_helpers import canonical, cli, micfp, run_pipeline, standalone_cluster, worker_env
from pipeline.cluster import standalone
from pipeline.cluster.connect import worker_environ


# -- micfp cluster up | status | down ---------------------------------------------------------------
@pytest.mark.cluster
def test_cluster_up_status_down_and_attach(tmp_path, clean_env, capsys):
    clean_env.setenv("MICFP_HOME", str(tmp_path / "home"))
    state_file = tmp_path / "home" / "cluster.state.json"
    try:
        code, up, err = cli(capsys, "cluster", "up", "--workers", "2", "--port", "0", "--dashboard-address",
                            "127.0.0.1:0", "--timeout", "180")
        assert code == 0, err
        state = json.loads(state_file.read_text())
        assert f"scheduler: {state['address']}" in up and state["address"].startswith("tcp://127.0.0.1:")
        assert state["dashboard"].startswith("http://127.0.0.1:") and f"dashboard: {state['dashboard']}" in up
        code, status, _ = cli(capsys, "cluster", "status")
        assert code == 0 and "workers: 2 connected, 2/2 processes alive" in status
        assert set(worker_env(state["address"]).values()) == {tuple(sorted(worker_environ().items()))}
        code, _, err = cli(capsys, "cluster", "up", "--port", "0")
        assert code == 2 and "already up" in err
        # a workflow in another process attaches through the scheduler file (--cluster remote)
        sim = micfp("simulate", tmp_path / "a.zarr", "--minutes-per-session", "0.2,0.2", "--cluster", "remote",
                    env={"MICFP_HOME": str(tmp_path / "home")})
        assert f"scheduler {state['address']}" in sim.stderr and "simulate (shards): 2/2" in sim.stderr
        from pipeline.artifacts.store import AudioStore

        assert AudioStore.open(str(tmp_path / "a.zarr")).complete
        code, out, _ = cli(capsys, "cluster", "down")
        assert code == 0 and "stopped the cluster" in out
        assert not any(standalone._ours(p) for p in [state["scheduler_pid"], *state["worker_pids"]])
        code, out, _ = cli(capsys, "cluster", "status")
        assert code == 1 and "no micfp cluster is up" in out
        code, _, err = cli(capsys, "simulate", tmp_path / "b.zarr", "--cluster", "remote")
        assert code == 2 and "micfp cluster up" in err
    finally:
        standalone.down(tmp_path / "home" / "cluster.json")


# -- the same workflow on a standalone cluster and on the default local cluster --------------------
@pytest.mark.slow
@pytest.mark.cluster
def test_standalone_cluster_gives_the_same_results_as_the_local_cluster(tmp_path, clean_env):
    with standalone_cluster(tmp_path / "sched", workers=2) as state:
        remote = run_pipeline(tmp_path / "remote", ["--scheduler", state["address"]])
    local = run_pipeline(tmp_path / "local", [])
    assert remote["results"] and canonical(remote) == canonical(local)
