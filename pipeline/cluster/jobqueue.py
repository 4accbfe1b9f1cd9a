"""dask-jobqueue options of a ``slurm``/``pbs`` profile: what the profile sets, else the site's config.

Shared by the worker jobs of :mod:`pipeline.cluster.render` and the one-job script of
:mod:`pipeline.cluster.slurm_runner`.
"""

from __future__ import annotations

from ..errors import ConfigError
from .profiles import Profile

# The dask-jobqueue cluster class of each batch-system kind. Its job class (``Cluster.job_cls``)
# names the site config section micfp defers to (``jobqueue.<config_name>.*``).
# Tests swap in dask_jobqueue.local.LocalCluster (jobs as local processes) to start a real cluster.
JOBQUEUE_CLASSES = {"slurm": "dask_jobqueue.slurm.SLURMCluster", "pbs": "dask_jobqueue.pbs.PBSCluster"}
# List options whose site-config entries are kept and the profile's appended (a site's
# `module load` lines stay in the job script before micfp's own prologue).
MERGED_LISTS = ("job_script_prologue", "job_extra_directives")


def jobqueue_classes(kind: str):
    """(cluster class, job class) of dask-jobqueue for a ``slurm``/``pbs`` profile."""
    import importlib

    module, _, name = JOBQUEUE_CLASSES[kind].rpartition(".")
    try:
        Cluster = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigError(f"the {kind} profile needs dask-jobqueue (pip install dask-jobqueue)") from exc
    return Cluster, Cluster.job_cls


def site_config(Job, key: str):
    """The site's dask config ``jobqueue.<section>.<key>`` (``None`` when not set)."""
    import dask.config

    return dask.config.get(f"jobqueue.{Job.config_name}.{key}", None)


def jobqueue_kwargs(profile: Profile, Job) -> dict:
    """Keyword arguments of the dask-jobqueue cluster/job: only what the profile sets.

    Everything else comes from the site's dask config (``jobqueue.slurm.*``, ``jobqueue.pbs.*``),
    which dask-jobqueue reads itself. One worker thread per core (the kernels release the GIL
    little) unless the profile or the site sets ``processes``.
    """
    kw = {k: v for k, v in (profile.options.get("jobqueue") or {}).items() if v is not None}
    for need in ("cores", "memory"):
        if kw.get(need) is None and site_config(Job, need) is None:
            raise ConfigError(f"{profile.source}: no {need} per job: set jobqueue.{need} in the profile or "
                              f"jobqueue.{Job.config_name}.{need} in the dask config")
    if kw.get("processes") is None and site_config(Job, "processes") is None:
        kw["processes"] = int(kw.get("cores") or site_config(Job, "cores"))
    for key in MERGED_LISTS:
        if key in kw:
            kw[key] = list(site_config(Job, key) or []) + list(kw[key])
    return kw
