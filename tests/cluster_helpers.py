"""Helpers for the cluster tests: real scheduler/worker processes on 127.0.0.1 and the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

MICFP = [sys.executable, "-m", "pipeline.cli"]
# The tiny corpus of the end-to-end runs (see tests/integration/test_standalone.py).
TINY_SIM = ["--minutes-per-session", "0.5,0.3"]
TINY_FEATURES = ["--clip-seconds", "2", "--feature-set", "thesis,channel"]
TINY_EVAL = ["--clip-seconds", "2", "--classifiers", "logistic_regression,micfp_lr", "--bootstrap", "50"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def micfp(*args, env=None, timeout=300, check=True) -> subprocess.CompletedProcess:
    """Run ``micfp ARGS`` in a subprocess; on failure the assertion shows its stderr."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DASK_SCHEDULER_ADDRESS", "MICFP_CLUSTER")}
    full_env.update(env or {})
    proc = subprocess.run(MICFP + [str(a) for a in args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check:
        command = " ".join(map(str, args))
        assert proc.returncode == 0, f"micfp {command} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def run_pipeline(root: Path, cluster_args: list, env=None, store=None, cube=None) -> dict:
    """simulate -> features -> evaluate through the CLI; returns the metrics JSON."""
    store = store or root / "audio.zarr"
    cube = cube or root / "cube.zarr"
    micfp("simulate", store, *TINY_SIM, *cluster_args, env=env)
    micfp("features", store, cube, *TINY_FEATURES, *cluster_args, env=env)
    micfp("evaluate", cube, root / "out", *TINY_EVAL, *cluster_args, env=env)
    return json.loads((root / "out" / "metrics.json").read_text())


def canonical(metrics: dict) -> str:
    """A text form in which NaN equals NaN, for exact comparison of two runs."""
    return json.dumps(metrics, sort_keys=True)


@contextlib.contextmanager
def standalone_cluster(folder: Path, workers: int = 2, tls=None, env=None):
    """``dask scheduler`` + ``workers`` ``dask worker`` processes (via ``micfp cluster up``'s code),
    on random free ports of 127.0.0.1; always torn down, killed if need be."""
    from pipeline.cluster import standalone

    sfile = folder / "cluster.json"
    state = None
    try:
        state = standalone.up(workers, scheduler_file=sfile, port=0, dashboard_address="127.0.0.1:0", tls=tls,
                              env={**os.environ, **(env or {})}, timeout=120)
        yield state
    finally:
        standalone.down(sfile)
        if state:
            standalone._terminate([state["scheduler_pid"], *state["worker_pids"]], timeout=5)


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``micfp ARGS`` in this process (no interpreter start-up); returns (code, stdout, stderr)."""
    from pipeline.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def worker_env(address_or_client) -> dict:
    """Each worker's start environment for the ``micfp.worker-environ`` variables, as sorted items.

    Read from ``/proc/<pid>/environ``: the environment the process was started with, as glibc
    saw it (variables set later, e.g. by the nanny's ``env``, do not show there).
    """
    from distributed import Client

    from pipeline.cluster.profiles import worker_environ

    keys = sorted(worker_environ())

    def start_environ():  # nested: pickled by value, workers need not import this module
        import os

        raw = open(f"/proc/{os.getpid()}/environ", "rb").read().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        return tuple((k, env.get(k)) for k in keys)

    def read(client):
        return client.run(start_environ)

    if isinstance(address_or_client, str):
        with Client(address_or_client, timeout="30s") as c:
            return read(c)
    return read(address_or_client)
