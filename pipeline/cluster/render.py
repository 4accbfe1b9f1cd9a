"""HPC and Kubernetes profiles rendered into what their schedulers run.

* ``slurm`` / ``pbs``: the dask-jobqueue cluster of a profile, and the batch job script each
  worker job runs (``micfp cluster render slurm`` prints it for review before any submission).
* ``kubernetes``: the dask-kubernetes operator's ``DaskCluster`` resource, and a ``DaskJob``
  whose job pod runs a micfp command against its own cluster (the operator sets
  ``DASK_SCHEDULER_ADDRESS`` in that pod, which micfp picks up).
"""

from __future__ import annotations

import copy
import shlex

from ..errors import ConfigError
from .profiles import Profile

PLACEHOLDER_SCHEDULER = "tcp://SCHEDULER-HOST:8786"


def _jobqueue_classes(kind: str):
    try:
        if kind == "slurm":
            from dask_jobqueue import SLURMCluster as Cluster
            from dask_jobqueue.slurm import SLURMJob as Job
        else:
            from dask_jobqueue import PBSCluster as Cluster
            from dask_jobqueue.pbs import PBSJob as Job
    except ImportError as exc:
        raise ConfigError(f"the {kind} profile needs dask-jobqueue (pip install dask-jobqueue)") from exc
    return Cluster, Job


def _jobqueue_kwargs(profile: Profile) -> dict:
    kw = {k: v for k, v in (profile.options.get("jobqueue") or {}).items() if v is not None}
    for need in ("cores", "memory"):
        if not kw.get(need):
            raise ConfigError(f"{profile.source}: jobqueue.{need} is required for a {profile.kind} profile")
    return kw


def job_script(profile: Profile, scheduler: str = PLACEHOLDER_SCHEDULER) -> str:
    """The batch script one worker job of a ``slurm``/``pbs`` profile runs.

    ``scheduler`` is the address the workers connect to; the real one is filled in by
    dask-jobqueue when the cluster starts.
    """
    if profile.kind not in ("slurm", "pbs"):
        raise ConfigError(f"{profile.source}: job scripts are for slurm and pbs profiles, not {profile.kind}")
    _, Job = _jobqueue_classes(profile.kind)
    try:
        return Job(scheduler=scheduler, name="micfp-worker", **_jobqueue_kwargs(profile)).job_script()
    except TypeError as exc:
        raise ConfigError(f"{profile.source}: bad jobqueue option: {exc}") from exc


def jobqueue_cluster(profile: Profile):
    """Start the dask-jobqueue cluster of a ``slurm``/``pbs`` profile (no jobs submitted yet).

    Its scheduler runs here and must be reachable from the compute nodes, so the profile has
    to say where it listens (``scheduler-options.host`` or ``.interface``): micfp never
    listens beyond 127.0.0.1 unless told.
    """
    import shutil

    Cluster, Job = _jobqueue_classes(profile.kind)
    submit = Job.submit_command
    if not shutil.which(submit):
        raise ConfigError(f"{profile.source}: {submit} not found: a {profile.kind} profile runs on a login node "
                          f"of a {profile.kind.upper()} cluster")
    sched = dict(profile.options.get("scheduler-options") or {})
    if not (sched.get("host") or sched.get("interface")):
        raise ConfigError(f"{profile.source}: set scheduler-options.host or scheduler-options.interface to an "
                          "address the compute nodes reach")
    sched.setdefault("dashboard_address", "127.0.0.1:8787")
    try:
        return Cluster(scheduler_options=sched, **_jobqueue_kwargs(profile))
    except TypeError as exc:
        raise ConfigError(f"{profile.source}: bad jobqueue option: {exc}") from exc


def cluster_manifest(profile: Profile) -> dict:
    """The ``DaskCluster`` resource (``kubernetes.dask.org/v1``) of a ``kubernetes`` profile."""
    if profile.kind != "kubernetes":
        raise ConfigError(f"{profile.source}: manifests are for kubernetes profiles, not {profile.kind}")
    opt = profile.options
    if not opt.get("image"):
        raise ConfigError(f"{profile.source}: image is required (a worker image with micfp installed, "
                          "see cluster/Dockerfile)")
    name = opt.get("name") or "micfp"
    env = [{"name": str(k), "value": str(v)} for k, v in (opt.get("env") or {}).items() if v is not None]
    resources = opt.get("resources") or {}
    worker_command = opt.get("worker-command") or "dask worker --nthreads 1"
    image = opt["image"]
    worker_args = shlex.split(worker_command) + ["--name", "$(DASK_WORKER_NAME)", "--dashboard",
                                                 "--dashboard-address", "8788"]
    probe = {"httpGet": {"port": "http-dashboard", "path": "/health"}}
    spec = {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "micfp"}},
        "spec": {
            "idleTimeout": int(opt.get("idle-timeout") or 0),
            "worker": {
                "replicas": int(opt.get("n-workers", 2)),
                "spec": {"containers": [{
                    "name": "worker", "image": image, "args": worker_args, "env": env, "resources": resources,
                    "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
                }]},
            },
            "scheduler": {
                # Inside its pod the scheduler listens on the pod network; the ClusterIP service
                # keeps it unreachable from outside the Kubernetes cluster.
                "spec": {"containers": [{
                    "name": "scheduler", "image": image, "args": ["dask", "scheduler", "--host", "0.0.0.0"],
                    "env": copy.deepcopy(env), "resources": copy.deepcopy(resources),
                    "ports": [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                              {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
                    "readinessProbe": {**probe, "initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 300},
                    "livenessProbe": {**probe, "initialDelaySeconds": 15, "periodSeconds": 20},
                }]},
                "service": {
                    "type": opt.get("scheduler-service-type") or "ClusterIP",
                    "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                    "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                              {"name": "http-dashboard", "protocol": "TCP", "port": 8787,
                               "targetPort": "http-dashboard"}],
                },
            },
        },
    }
    if opt.get("namespace"):
        spec["metadata"]["namespace"] = opt["namespace"]
    return spec


def job_manifest(profile: Profile, command: list[str] | str | None = None) -> dict:
    """A ``DaskJob`` that runs ``command`` (default: the profile's ``job.command``) in a job pod
    against a ``DaskCluster`` made for it; the cluster is removed when the job ends."""
    cluster = cluster_manifest(profile)
    job = profile.options.get("job") or {}
    command = command or job.get("command")
    if not command:
        raise ConfigError(f"{profile.source}: give a command for the DaskJob (job.command in the profile, "
                          "or --job 'micfp run workflows/...')")
    args = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    name = job.get("name") or f"{cluster['metadata']['name']}-job"
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    container = {"name": "job", "image": worker["image"], "args": args, "env": copy.deepcopy(worker["env"]),
                 "resources": copy.deepcopy(worker["resources"])}
    if job.get("working-dir"):
        container["workingDir"] = job["working-dir"]
    manifest = {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskJob",
        "metadata": {"name": name, **{k: v for k, v in cluster["metadata"].items() if k != "name"}},
        "spec": {"job": {"spec": {"containers": [container], "restartPolicy": "Never"}},
                 "cluster": {"spec": copy.deepcopy(cluster["spec"])}},
    }
    return manifest


def render(profile: Profile, command: str | None = None) -> str:
    """What a profile deploys, as text: a job script (slurm, pbs) or YAML manifests (kubernetes)."""
    import yaml

    if profile.kind in ("slurm", "pbs"):
        return job_script(profile)
    if profile.kind == "kubernetes":
        docs = [cluster_manifest(profile)]
        if command or (profile.options.get("job") or {}).get("command"):
            docs.append(job_manifest(profile, command))
        return yaml.dump_all(docs, Dumper=_plain_dumper(), sort_keys=False)
    raise ConfigError(f"{profile.source}: a {profile.kind} profile has nothing to render")


def _plain_dumper():
    import yaml

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # kubectl users read these: no &id001 anchors
            return True

    return PlainDumper
