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
from .jobqueue import jobqueue_classes, jobqueue_kwargs
from .profiles import Profile

PLACEHOLDER_SCHEDULER = "tcp://SCHEDULER-HOST:8786"


def job_script(profile: Profile, scheduler: str = PLACEHOLDER_SCHEDULER) -> str:
    """The batch script one worker job of a ``slurm``/``pbs`` profile runs.

    ``scheduler`` is the address the workers connect to; the real one is filled in by
    dask-jobqueue when the cluster starts.
    """
    if profile.kind not in ("slurm", "pbs"):
        raise ConfigError(f"{profile.source}: job scripts are for slurm and pbs profiles, not {profile.kind}")
    _, Job = jobqueue_classes(profile.kind)
    try:
        return Job(scheduler=scheduler, name="micfp-worker", **jobqueue_kwargs(profile, Job)).job_script()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{profile.source}: bad jobqueue option: {exc}") from exc


def jobqueue_cluster(profile: Profile):
    """Start the dask-jobqueue cluster of a ``slurm``/``pbs`` profile (no jobs submitted yet).

    Its scheduler runs here and must be reachable from the compute nodes, so the profile has
    to say where it listens (``scheduler-options.host`` or ``.interface``): micfp never
    listens beyond 127.0.0.1 unless told.
    """
    import shutil

    Cluster, Job = jobqueue_classes(profile.kind)
    submit = Job.submit_command
    if submit and not shutil.which(submit):  # None: dask_jobqueue's LocalCluster (jobs as local processes)
        raise ConfigError(f"{profile.source}: {submit} not found: a {profile.kind} profile runs on a login node "
                          f"of a {profile.kind.upper()} cluster")
    sched = dict(profile.options.get("scheduler-options") or {})
    if not (sched.get("host") or sched.get("interface")):
        raise ConfigError(f"{profile.source}: set scheduler-options.host or scheduler-options.interface to an "
                          "address the compute nodes reach")
    sched.setdefault("dashboard_address", "127.0.0.1:8787")
    try:
        return Cluster(scheduler_options=sched, **jobqueue_kwargs(profile, Job))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{profile.source}: bad jobqueue option: {exc}") from exc


def _make_cluster_spec():
    try:
        from dask_kubernetes.operator import make_cluster_spec
    except ImportError as exc:
        raise ConfigError("the kubernetes profile needs dask-kubernetes (pip install dask-kubernetes)") from exc
    return make_cluster_spec


def cluster_spec_arguments(profile: Profile) -> dict:
    """Keyword arguments of ``dask_kubernetes.operator.make_cluster_spec`` for a ``kubernetes`` profile."""
    if profile.kind != "kubernetes":
        raise ConfigError(f"{profile.source}: manifests are for kubernetes profiles, not {profile.kind}")
    opt = profile.options
    if not opt.get("image"):
        raise ConfigError(f"{profile.source}: image is required (a worker image with micfp installed, "
                          "see cluster/Dockerfile)")
    return {
        "name": opt.get("name") or "micfp",
        "image": opt["image"],
        "n_workers": int(opt.get("n-workers", 2)),
        "resources": opt.get("resources") or {},
        "env": {str(k): str(v) for k, v in (opt.get("env") or {}).items() if v is not None},
        "worker_command": opt.get("worker-command") or "dask worker --nthreads 1",
        "scheduler_service_type": opt.get("scheduler-service-type") or "ClusterIP",
        "idle_timeout": int(opt.get("idle-timeout") or 0),
    }


def cluster_manifest(profile: Profile) -> dict:
    """The ``DaskCluster`` resource (``kubernetes.dask.org/v1``) of a ``kubernetes`` profile.

    dask-kubernetes' own ``make_cluster_spec`` (what ``KubeCluster`` itself submits), with
    micfp's label and the profile's namespace added. The scheduler service defaults to
    ``ClusterIP``: unreachable from outside the Kubernetes cluster.
    """
    spec = _make_cluster_spec()(**cluster_spec_arguments(profile))
    spec["metadata"]["labels"] = {"app.kubernetes.io/part-of": "micfp"}
    if profile.options.get("namespace"):
        spec["metadata"]["namespace"] = profile.options["namespace"]
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


def render(profile: Profile, command: str | None = None, worker_job: bool = False) -> str:
    """What a profile deploys, as text: a batch script (slurm, pbs) or YAML manifests (kubernetes).

    A ``slurm`` profile with a command (``command``, or its ``job.command``) renders the batch
    script that runs the command with its scheduler inside the job
    (:mod:`pipeline.cluster.slurm_runner`); ``worker_job`` (and ``pbs``) the worker job script
    that ``--cluster slurm`` submits from a login node.
    """
    import yaml

    if profile.kind == "slurm" and not worker_job and (command or (profile.options.get("job") or {}).get("command")):
        from .slurm_runner import batch_script

        return batch_script(profile, command)
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
