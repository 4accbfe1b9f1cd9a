"""TLS end to end: test certificates, a TLS-only scheduler and workers, a workflow over TLS,
and plaintext (or certificate-less) clients refused."""

from __future__ import annotations

import pytest

from cluster_helpers import cli, standalone_cluster
from pipeline.errors import ConfigError
from pipeline.cluster.tls import make_certs, security, tls_files


@pytest.mark.cluster
def test_tls_cluster_end_to_end(tmp_path, monkeypatch, capsys):
    from distributed import Client, Security

    code, out, _ = cli(capsys, "cluster", "certs", tmp_path / "tls")
    assert code == 0 and "ca.pem" in out
    tls = tls_files(tmp_path / "tls")
    with standalone_cluster(tmp_path / "sched", workers=1, tls=tls) as state:
        address = state["address"]
        assert address.startswith("tls://127.0.0.1:")
        # a workflow through the remote-tls profile, in another process
        monkeypatch.setenv("MICFP_TLS_DIR", str(tmp_path / "tls"))
        monkeypatch.setenv("MICFP_SCHEDULER", address)
        code, _, err = cli(capsys, "simulate", tmp_path / "a.zarr", "--minutes-per-session", "0.2,0.2",
                           "--cluster", "remote-tls")
        assert code == 0 and f"scheduler {address}" in err and "simulate (shards): 2/2" in err
        from pipeline.artifacts.store import AudioStore

        assert AudioStore.open(str(tmp_path / "a.zarr")).complete
        # status and down find the certificates through the state file
        code, out, _ = cli(capsys, "cluster", "status", "--scheduler-file", tmp_path / "sched" / "cluster.json")
        assert code == 0 and "1 connected" in out
        # plaintext is refused: the same port over tcp://, and a micfp command pointed at it
        plain = address.replace("tls://", "tcp://")
        with pytest.raises((OSError, TimeoutError)):
            Client(plain, timeout="3s")
        import dask.config

        with dask.config.set({"micfp.connect-timeout": "3s"}):
            code, _, err = cli(capsys, "simulate", tmp_path / "b.zarr", "--scheduler", plain)
        assert code == 2 and f"cannot reach the Dask scheduler at {plain}" in err
        # a client certificate from another CA is refused too (mutual TLS)
        stranger = make_certs(tmp_path / "other")
        with pytest.raises((OSError, TimeoutError)):
            Client(address, security=Security(tls_ca_file=tls["ca-file"], tls_client_cert=stranger["cert"],
                                              tls_client_key=stranger["key"], require_encryption=True), timeout="3s")
        # a TLS profile never falls back to a plaintext address
        with pytest.raises(ConfigError, match="not tls://"):
            from pipeline.cluster.connect import ClusterSettings, connect

            with connect(ClusterSettings(cluster="remote-tls", scheduler=plain)):
                pass
        # and the right client works
        with Client(address, security=security(tls), timeout="10s") as c:
            assert c.submit(sum, [1, 2, 3]).result() == 6
