"""The one place that turns settings into a connected :class:`distributed.Client`.

Where work runs is a *profile* (see :mod:`pipeline.cluster.profiles`): a local cluster of worker
processes, an existing scheduler (address or scheduler file, TLS optional), SLURM or PBS jobs
through dask-jobqueue, or a Kubernetes ``DaskCluster`` through the dask-kubernetes operator.
Workflows never change to move between them. On connect the workers are checked to run the
same micfp and the same key libraries as the client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClusterError, ConfigError
from .profiles import Profile, config, default_scheduler_file, resolve, worker_environ
from .interrupt import children_ignore_sigint, silence_distributed
from .interrupt import restore as restore_loggers
from ..jit import warm_up

log = logging.getLogger(__name__)

DEFAULT_DASHBOARD = "127.0.0.1:8787"
# Libraries whose versions must agree between client and workers for results to be identical.
CHECKED_PACKAGES = ("dask", "distributed", "numpy", "scipy", "zarr", "xarray", "sklearn", "librosa")


@dataclass(frozen=True)
class ClusterSettings:
    """Where work runs. ``None`` means: from the profile / dask config (``pipeline/cluster/micfp.yaml``).

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``, ``tls://host:8786``).
    workers : int, optional
        Worker processes of a new local cluster (config ``micfp.local.n-workers``, 2).
    threads_per_worker : int, optional
        Threads per local worker process (default 1: the kernels release the GIL little).
    memory_limit : str, optional
        Per-worker memory limit of a local cluster (dask syntax, e.g. ``"4GiB"`` or ``"auto"``).
    dashboard_address : str, optional
        Local cluster dashboard, bound to 127.0.0.1 by default; another free port is used if
        the port is taken.
    cluster : str, optional
        Profile name or YAML file (``--cluster``); default ``$MICFP_CLUSTER``, then
        ``$DASK_SCHEDULER_ADDRESS``, then config ``micfp.cluster`` (``local``).
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | None = None
    dashboard_address: str | None = None
    cluster: str | None = None

    def address(self) -> str | None:
        """The scheduler address when the profile in force is a remote one with an address."""
        profile = self.profile()
        return profile.options.get("address") if profile.kind == "remote" else None

    def profile(self) -> Profile:
        return resolve(scheduler=self.scheduler, cluster=self.cluster)


@contextlib.contextmanager
def connect(settings: ClusterSettings | None = None):
    """Yield a connected client; a cluster made here (local, jobs, pods) is closed on exit.

    The dashboard link is logged (INFO) before any work starts. numba's kernels
    are compiled once (:func:`pipeline.jit.warm_up`) before a local cluster's workers start,
    and on every worker before it gets tasks.

    Raises
    ------
    ClusterError
        The scheduler cannot be reached, no worker comes up, or the workers do not run the
        same code as this client.
    """
    settings = settings or ClusterSettings()
    profile = settings.profile()
    starter = {"local": _start_local, "remote": _start_remote, "slurm": _start_jobqueue,
               "pbs": _start_jobqueue, "kubernetes": _start_kubernetes}[profile.kind]
    quieted = {}
    try:
        with contextlib.ExitStack() as stack:
            try:
                if profile.kind == "local":
                    warm_up()  # before its workers start, so that they only load the kernels
                client, where = starter(profile, settings, stack)
                stack.callback(client.close)
                check_workers(client, config("check-versions", "strict"))
                from .warmup import WarmUpPlugin

                client.register_plugin(WarmUpPlugin())  # every worker, also remote and later ones
                if profile.kind != "remote":  # workers micfp started exit quickly when it closes them
                    from .shutdown import QuickExitPlugin

                    client.register_plugin(QuickExitPlugin())
                log.info(f"Dask {where}; dashboard: {client.dashboard_link}")
                yield client
            except KeyboardInterrupt:
                # Closing the cluster now logs killed workers and lost tasks: the user asked for it.
                quieted = silence_distributed()
                if "client" in locals():  # the workers and nannies too: they print to this terminal
                    _silence_workers(client)
                raise
    finally:
        restore_loggers(quieted)


def _silence_workers(client, timeout: float = 3.0) -> None:
    """Silence distributed's loggers in every worker and nanny, waiting at most ``timeout`` s.

    Their processes share the user's terminal; a worker that loses the scheduler while the
    cluster closes would print a heartbeat traceback after micfp's one line.
    """
    import threading

    def run():
        with contextlib.suppress(Exception):
            client.run(silence_distributed, nanny=True)
            client.run(silence_distributed)

    t = threading.Thread(target=run, daemon=True, name="micfp-silence-workers")
    t.start()
    t.join(timeout)  # an interrupt must not hang on a busy cluster


@contextlib.contextmanager
def _spawn_environ():
    """While workers are spawned here, :func:`worker_environ` in ``os.environ``.

    Spawned workers inherit it, and distributed's nanny prefers ``os.environ`` to its own
    ``pre-spawn-environ`` config for the variables that config names (its
    ``MALLOC_TRIM_THRESHOLD_``), so it wins there too. It has to be the environment at
    spawn: glibc reads ``MALLOC_*`` when a process starts, and the nanny's ``env`` is applied
    after that. This process's own values are restored afterwards.
    """
    import os

    env = worker_environ()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _timeout() -> str:
    return str(config("connect-timeout", "15s"))


def _start_local(profile: Profile, settings: ClusterSettings, stack):
    from dask.utils import parse_timedelta
    from distributed import Client, LocalCluster

    from .shutdown import DEFAULT_CLOSE_TIMEOUT

    opt = profile.options
    n = settings.workers if settings.workers is not None else int(opt.get("n-workers", 2))
    if n < 1:
        raise ClusterError(f"--workers must be at least 1, got {n}")
    # Workers ignore Ctrl-C: the command (this process) handles it and closes them quietly.
    with _quiet_port_warnings(), _spawn_environ(), children_ignore_sigint():
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=settings.threads_per_worker or int(opt.get("threads-per-worker", 1)),
            processes=True,
            host=opt.get("host", "127.0.0.1"),
            dashboard_address=settings.dashboard_address or opt.get("dashboard-address", DEFAULT_DASHBOARD),
            memory_limit=settings.memory_limit or opt.get("memory-limit", "auto"),
        )
    stack.push(_local_closer(cluster, parse_timedelta(opt.get("close-timeout", DEFAULT_CLOSE_TIMEOUT))))
    return Client(cluster), f"local cluster, {n} worker processes"


def _local_closer(cluster, timeout: float):
    """An exit callback closing ``cluster``: workers first, in their own time (see :mod:`.shutdown`).

    After Ctrl-C the workers abandon their running tasks, as the user asked, but still exit on
    their own rather than being killed (a killed worker leaves a resource-tracker warning).
    """
    from .shutdown import INTERRUPT_CLOSE_TIMEOUT, close_local_cluster

    def close(exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            close_local_cluster(cluster, min(timeout, INTERRUPT_CLOSE_TIMEOUT), abandon=True)
        else:
            close_local_cluster(cluster, timeout)
        return False

    return close


def scheduler_file_address(path: Path) -> str:
    """The address in a dask scheduler file; a clear error when there is none."""
    try:
        return json.loads(Path(path).read_text())["address"]
    except FileNotFoundError:
        raise ClusterError(f"{path}: no scheduler file (start a cluster with `micfp cluster up`, or give "
                           "--scheduler ADDRESS)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ClusterError(f"{path}: not a dask scheduler file: {exc}") from exc


def remote_target(profile: Profile) -> tuple[str, dict | None]:
    """(address, tls block) of a remote profile; a scheduler file from ``micfp cluster up``
    also brings the TLS certificates it was started with."""
    from .standalone import read_state

    tls = profile.options.get("tls")
    address = profile.options.get("address")
    if not address:
        sfile = Path(profile.options.get("scheduler-file") or default_scheduler_file()).expanduser()
        address = scheduler_file_address(sfile)
        state = read_state(sfile)
        if tls is None and state and state.get("tls"):
            tls = state["tls"]
    return address, tls


def _start_remote(profile: Profile, settings: ClusterSettings, stack):
    from distributed import Client

    from .tls import security

    address, tls = remote_target(profile)
    sec = security(tls, where=profile.source)
    if sec.require_encryption and not address.startswith("tls://"):
        raise ConfigError(f"{profile.source}: TLS is configured but the scheduler address {address} is not tls://")
    timeout = profile.options.get("timeout") or _timeout()
    try:
        client = Client(address, security=sec, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({profile.source}): {exc}") from exc
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        client.close()
        raise ClusterError(f"the Dask scheduler at {address} has no workers (waited {timeout}); start some "
                           "with `dask worker` or `micfp cluster up`") from None
    return client, f"scheduler {address}"


def _start_jobqueue(profile: Profile, settings: ClusterSettings, stack):
    from distributed import Client

    from .render import jobqueue_cluster

    cluster = jobqueue_cluster(profile)
    stack.callback(cluster.close)
    adapt = profile.options.get("adapt")
    if adapt:
        cluster.adapt(minimum_jobs=int(adapt.get("minimum-jobs", 0)), maximum_jobs=int(adapt["maximum-jobs"]))
    else:
        cluster.scale(jobs=int(profile.get("jobs", 1)))
    client = Client(cluster)
    _wait(client, profile)
    return client, f"{profile.kind} cluster {profile.name!r} ({profile.source})"


def _start_kubernetes(profile: Profile, settings: ClusterSettings, stack):
    from distributed import Client

    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError as exc:
        raise ConfigError(f"{profile.source}: the kubernetes profile needs dask-kubernetes "
                          "(pip install dask-kubernetes)") from exc
    from .render import cluster_manifest

    cluster = KubeCluster(custom_cluster_spec=cluster_manifest(profile),
                          namespace=profile.options.get("namespace"), shutdown_on_close=True)
    stack.callback(cluster.close)
    client = Client(cluster)
    _wait(client, profile)
    return client, f"kubernetes DaskCluster {profile.get('name', 'micfp')!r}"


def _wait(client, profile: Profile) -> None:
    n = int(profile.get("wait-for-workers", 1))
    timeout = profile.get("startup-timeout", "10 minutes")
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        raise ClusterError(f"{profile.source}: fewer than {n} workers after {timeout} (queue busy or jobs "
                           "failing: check the job logs)") from None


def _versions():  # pragma: no cover - runs on each worker and on the scheduler
    import importlib
    import sys as _sys

    out = {"python": "%d.%d" % _sys.version_info[:2]}
    try:
        import pipeline

        out["micfp"] = pipeline.__version__
    except Exception as exc:
        out["micfp"] = f"cannot import pipeline ({type(exc).__name__}: {exc})"
    for name in CHECKED_PACKAGES:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:
            out[name] = "missing"
    return out


# Sent by value, so the probe runs even where ``pipeline`` cannot be imported.
_versions.__module__ = "__main__"


def local_versions() -> dict:
    """The versions this process runs (what workers must match)."""
    return _versions()


def version_mismatches(mine: dict, theirs: dict[str, dict]) -> dict[str, dict]:
    """``{worker: {package: their version}}`` for every package whose version differs."""
    bad = {}
    for who, vers in theirs.items():
        diff = {k: vers.get(k) for k in mine if vers.get(k) != mine[k]}
        if diff:
            bad[who] = diff
    return bad


def check_workers(client, mode: str = "strict") -> None:
    """Fail clearly when workers cannot import ``pipeline`` or run other versions.

    Parameters
    ----------
    mode : {"strict", "warn", "off"}
        ``strict`` raises :class:`ClusterError` on any mismatch; ``warn`` raises only when
        ``pipeline`` is not importable or is another micfp version, and warns otherwise.
    """
    if mode == "off":
        return
    if mode not in ("strict", "warn"):
        raise ConfigError(f"micfp.check-versions must be strict, warn or off, got {mode!r}")
    mine = local_versions()
    try:
        theirs = client.run(_versions)
    except Exception as exc:
        raise ClusterError(f"cannot run on the workers: {exc}") from exc
    bad = version_mismatches(mine, theirs)
    if not bad:
        return
    micfp_bad = {w: d["micfp"] for w, d in bad.items() if "micfp" in d}
    if micfp_bad:
        who, what = next(iter(micfp_bad.items()))
        raise ClusterError(
            f"{len(micfp_bad)} of {len(theirs)} workers do not run micfp {mine['micfp']} (e.g. {who}: {what}); "
            "install this same micfp on every worker (pip install . in the worker environment or image, "
            "see docs/cluster.md) and restart them"
        )
    summary = ", ".join(f"{k} {v} (client {mine[k]})" for k, v in next(iter(bad.values())).items())
    msg = (f"{len(bad)} of {len(theirs)} workers run other library versions than this client: {summary}; "
           "results may differ. Build the workers from the same environment (docs/cluster.md), or set "
           "micfp.check-versions to warn")
    if mode == "strict":
        raise ClusterError(msg)
    warnings.warn(msg, stacklevel=2)


@contextlib.contextmanager
def _quiet_port_warnings():
    import logging

    log = logging.getLogger("distributed.node")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)
