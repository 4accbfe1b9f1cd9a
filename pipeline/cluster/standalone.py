"""``micfp cluster up|down|status``: a scheduler and N workers that outlive one command.

``up`` starts ``dask scheduler`` and N ``dask worker`` processes, detached in their own
sessions, bound to 127.0.0.1 unless told otherwise. The scheduler writes a dask scheduler
file (default ``~/.micfp/cluster.json``); beside it a state file records the process ids,
the dashboard and the TLS certificates, so ``status``, ``down`` and ``--cluster remote``
find the cluster without an address.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import ClusterError
from .profiles import default_scheduler_file, worker_environ


def state_path(scheduler_file: str | os.PathLike) -> Path:
    p = Path(scheduler_file).expanduser()
    return p.with_name(p.stem + ".state.json")


def read_state(scheduler_file) -> dict | None:
    try:
        return json.loads(state_path(scheduler_file).read_text())
    except (OSError, ValueError):
        return None


def _ours(pid: int) -> bool:
    """Is ``pid`` alive and still one of the dask processes we started (not a reused pid)?"""
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "distributed.cli.dask_" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _tail(path: Path, n: int = 6) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return "(no log)"


def _spawn(cmd: list[str], log: Path, env: dict | None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, close_fds=True)


def _kill_started(procs: list[subprocess.Popen]) -> None:
    """Stop processes this call started (their Popen handles: no pid-reuse guessing)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs if p.poll() is None]
        for p in alive:
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(p.poll() is None for p in alive):
            time.sleep(0.1)


def up(n_workers: int = 2, *, scheduler_file=None, host: str = "127.0.0.1", port: int = 8786,
       dashboard_address: str = "127.0.0.1:8787", threads_per_worker: int = 1, memory_limit: str = "auto",
       tls: dict | None = None, timeout: float = 120.0, env: dict | None = None) -> dict:
    """Start a detached scheduler and ``n_workers`` worker processes; return the state.

    Parameters
    ----------
    n_workers : int
        Worker processes (one ``dask worker`` each, with its nanny).
    scheduler_file : path, optional
        Default ``$MICFP_HOME/cluster.json`` (``~/.micfp``).
    host, port, dashboard_address
        Where the scheduler listens; 127.0.0.1 by default (port 0: any free port).
    tls : dict, optional
        ``{"ca-file", "cert", "key"}`` (see :func:`pipeline.cluster.tls.make_certs`): TLS comms only.
    timeout : float
        Seconds to wait for the scheduler and every worker.
    env : dict, optional
        Environment of the processes (default: this one; workers inherit fsspec/AWS settings).
    """
    from distributed import Client

    from .tls import security, server_args

    if n_workers < 1:
        raise ClusterError(f"--workers must be at least 1, got {n_workers}")
    sfile = Path(scheduler_file or default_scheduler_file()).expanduser().resolve()
    old = read_state(sfile)
    if old and any(_ours(p) for p in [old["scheduler_pid"], *old["worker_pids"]]):
        raise ClusterError(f"{sfile}: a cluster is already up at {old['address']}; run `micfp cluster down` first")
    sfile.parent.mkdir(parents=True, exist_ok=True)
    for p in (sfile, state_path(sfile)):
        p.unlink(missing_ok=True)
    logs = sfile.with_name(sfile.stem + "-logs")
    logs.mkdir(exist_ok=True)
    protocol = ["--protocol", "tls", *server_args(tls)] if tls else []
    py = [sys.executable, "-m"]
    sched = _spawn(py + ["distributed.cli.dask_scheduler", "--host", host, "--port", str(port),
                             "--dashboard-address", dashboard_address, "--scheduler-file", str(sfile),
                             "--no-show", *protocol], logs / "scheduler.log", env)
    procs = [sched]
    state = {"scheduler_file": str(sfile), "scheduler_pid": sched.pid, "worker_pids": [], "logs": str(logs),
             "tls": tls, "address": None, "dashboard": None}
    try:
        deadline = time.monotonic() + timeout
        while not sfile.exists():
            if sched.poll() is not None:
                raise ClusterError(f"the scheduler did not start: {_tail(logs / 'scheduler.log')}")
            if time.monotonic() > deadline:
                raise ClusterError(f"the scheduler did not write {sfile} within {timeout:.0f}s")
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written in one go, but let the writer close it
        info = json.loads(sfile.read_text())
        state["address"] = info["address"]
        dash_host = dashboard_address.rsplit(":", 1)[0] or "127.0.0.1"
        if "dashboard" in info.get("services", {}):
            state["dashboard"] = f"http://{dash_host}:{info['services']['dashboard']}/status"
        # micfp's worker environment (a `dask worker` process does not read micfp.yaml): each
        # nanny passes it on to the worker it spawns (see cluster._spawn_environ).
        wenv = {**(env if env is not None else os.environ), **worker_environ()}
        for i in range(n_workers):
            procs.append(_spawn(
                py + ["distributed.cli.dask_worker", "--scheduler-file", str(sfile), "--host", host,
                      "--nthreads", str(threads_per_worker), "--memory-limit", str(memory_limit),
                      "--name", f"micfp-{i}", "--dashboard-address", f"{host}:0", *protocol],
                logs / f"worker-{i}.log", wenv))
            state["worker_pids"].append(procs[-1].pid)
        state_path(sfile).write_text(json.dumps(state, indent=1))
        with Client(state["address"], security=security(tls), timeout=f"{timeout}s") as client:
            try:
                client.wait_for_workers(n_workers, timeout=timeout)
            except TimeoutError:
                raise ClusterError(f"only {len(client.scheduler_info()['workers'])} of {n_workers} workers came "
                                   f"up within {timeout:.0f}s: {_tail(logs / 'worker-0.log')}") from None
    except BaseException:
        _kill_started(procs)
        for p in (sfile, state_path(sfile)):
            p.unlink(missing_ok=True)
        raise
    return state


def status(scheduler_file=None, timeout: float = 5.0) -> dict | None:
    """The running cluster's state plus its live workers, or ``None`` when none is up."""
    from distributed import Client

    from .tls import security

    sfile = Path(scheduler_file or default_scheduler_file()).expanduser().resolve()
    state = read_state(sfile)
    if not state or not _ours(state["scheduler_pid"]):
        return None
    try:
        with Client(state["address"], security=security(state.get("tls")), timeout=f"{timeout}s") as client:
            workers = client.scheduler_info(n_workers=-1)["workers"]
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"{sfile}: scheduler process runs but does not answer at {state['address']}: {exc}") \
            from exc
    state["workers"] = [{"address": a, "name": w.get("name"), "nthreads": w.get("nthreads"),
                         "memory_limit": w.get("memory_limit")} for a, w in workers.items()]
    state["processes_alive"] = sum(_ours(p) for p in state["worker_pids"])
    return state


def down(scheduler_file=None, timeout: float = 20.0) -> dict | None:
    """Shut the cluster down (scheduler first, then its workers); ``None`` when none was up."""
    from distributed import Client

    from .tls import security

    sfile = Path(scheduler_file or default_scheduler_file()).expanduser().resolve()
    state = read_state(sfile)
    if not state:
        return None
    pids = [state["scheduler_pid"], *state["worker_pids"]]
    if _ours(state["scheduler_pid"]):
        try:  # the clean way: the scheduler tells its workers to close
            with Client(state["address"], security=security(state.get("tls")), timeout="5s") as client:
                client.retire_workers()
                client.shutdown()
        except Exception:
            pass  # fall back to signals below
    _terminate(pids, timeout)
    for p in (sfile, state_path(sfile)):
        p.unlink(missing_ok=True)
    return state


def _terminate(pids: list[int], timeout: float = 10.0) -> None:
    """Wait a moment for a clean exit, then SIGTERM, then SIGKILL the process groups we
    started (only those still ours: a pid reused by another program is left alone)."""

    def still_alive(seconds: float) -> list[int]:
        deadline = time.monotonic() + seconds
        while True:
            alive = [p for p in pids if _ours(p)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    alive = still_alive(3.0)
    for sig, seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not alive:
            return
        for p in alive:
            try:
                os.killpg(p, sig)  # start_new_session: the group is the process and its children
            except (ProcessLookupError, PermissionError):
                pass
        alive = still_alive(seconds)
