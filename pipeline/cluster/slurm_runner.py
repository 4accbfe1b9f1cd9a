"""A whole micfp command inside one SLURM allocation, through dask-jobqueue's ``SLURMRunner``.

``micfp cluster render slurm`` prints a batch script whose one ``srun`` step starts this module
on every task of the allocation: task 0 runs the Dask scheduler, task 1 the micfp command (the
client), every other task a worker. Nothing runs on the login node, and the scheduler lives and
ends with the job. The tasks meet through a scheduler file in the job's working directory.

Only task 1 runs the command (a micfp command checks and creates its outputs before it connects;
the other tasks must never do that), as an ordinary client of the runner's scheduler
(``DASK_SCHEDULER_ADDRESS``); when it exits the scheduler is closed, which ends the other tasks.

Run: ``srun python -m pipeline.cluster.slurm_runner --profile slurm -- micfp demo ...``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys

from ..errors import ConfigError
from .profiles import Profile, load_profile, worker_environ

log = logging.getLogger(__name__)

SCHEDULER_FILE = "micfp-scheduler-{job_id}.json"
CLIENT_TASK = 1


def _runner_class():
    """dask-jobqueue's ``SLURMRunner``, its client reading the scheduler file as distributed's workers do.

    The runner's client task reads the file as soon as it exists, and can read it half written
    (a ``JSONDecodeError`` that left the scheduler and workers waiting until the walltime); the
    workers use ``distributed.utils.json_load_robust``, which retries until the file parses.
    """
    import asyncio

    from dask_jobqueue.slurm import SLURMRunner
    from distributed.utils import json_load_robust

    class Runner(SLURMRunner):
        async def get_scheduler_address(self) -> str:
            loop = asyncio.get_running_loop()
            return (await loop.run_in_executor(None, json_load_robust, str(self.scheduler_file)))["address"]

    return Runner


def _runner_options(profile_name: str) -> dict:
    """``SLURMRunner`` keyword arguments from a ``slurm`` profile's ``scheduler-options``.

    Workers run one thread each (the kernels release the GIL little) and get the memory SLURM
    gave their task (``--mem-per-cpu``), not the whole node's.
    """
    profile = load_profile(profile_name)
    if profile.kind != "slurm":
        raise ConfigError(f"{profile.source}: the SLURM runner needs a slurm profile, not {profile.kind}")
    sched = {k: v for k, v in (profile.options.get("scheduler-options") or {}).items() if v is not None}
    sched.setdefault("dashboard_address", "127.0.0.1:8787")
    worker = {"nthreads": 1}
    if os.environ.get("SLURM_MEM_PER_CPU"):
        worker["memory_limit"] = f"{int(os.environ['SLURM_MEM_PER_CPU'])}MiB"
    return {"scheduler_options": sched, "worker_options": worker}


def batch_script(profile: Profile, command: str | list[str] | None = None) -> str:
    """The batch script that runs ``command`` (default: the profile's ``job.command``) with its
    scheduler, client and workers all inside one SLURM job.

    Sizes come from the profile's ``jobqueue`` block, else the site's ``jobqueue.slurm.*`` config,
    as for worker jobs: ``jobs`` x ``processes`` worker tasks of one CPU and ``memory /
    processes`` each, plus one task for the scheduler and one for the command.
    """
    from dask.utils import parse_bytes
    from dask_jobqueue.slurm import SLURMJob, slurm_format_bytes_ceil

    from .jobqueue import jobqueue_kwargs, site_config

    command = command or (profile.options.get("job") or {}).get("command")
    if not command:
        raise ConfigError(f"{profile.source}: give the command the job runs (job.command in the profile, "
                          "or --job 'micfp run workflows/...')")
    argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    kw = jobqueue_kwargs(profile, SLURMJob)

    def get(key):
        return kw[key] if kw.get(key) is not None else site_config(SLURMJob, key)

    processes = int(get("processes"))
    workers = int(profile.get("jobs", 1)) * processes
    lines = ["#!/usr/bin/env bash", "", "#SBATCH -J micfp"]
    lines += [f"#SBATCH {flag} {get(key)}" for flag, key in (("-p", "queue"), ("-A", "account"), ("-t", "walltime"))
              if get(key)]
    lines += [f"#SBATCH -n {workers + 2}", "#SBATCH --cpus-per-task=1",
              f"#SBATCH --mem-per-cpu={slurm_format_bytes_ceil(parse_bytes(str(get('memory'))) // processes)}"]
    lines += [f"#SBATCH {d}" for d in get("job_extra_directives") or []]
    lines += ["", *(get("job_script_prologue") or [])]
    # glibc reads these at process start: exported before srun starts the workers (micfp.worker-environ)
    lines += [f"export {k}={shlex.quote(v)}" for k, v in worker_environ().items()]
    python = get("python") or sys.executable
    by_name = load_profile(profile.name).source == profile.source
    lines += [f"srun --kill-on-bad-exit=1 {python} -m pipeline.cluster.slurm_runner "
              f"--profile {shlex.quote(profile.name if by_name else profile.source)} -- {shlex.join(argv)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """One task of the allocation (see the module docstring); the command's exit status on task 1."""
    p = argparse.ArgumentParser(prog="python -m pipeline.cluster.slurm_runner",
                                description="one task of a micfp SLURM job (dask-jobqueue's SLURMRunner)")
    p.add_argument("--profile", default="slurm", help="slurm profile (scheduler-options) (default slurm)")
    p.add_argument("--scheduler-file", default=SCHEDULER_FILE,
                   help="where the tasks meet; {job_id} is the SLURM job id (default %(default)s)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the micfp command task 1 runs")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command task 1 runs after --")
    Runner = _runner_class()
    try:
        task = int(os.environ["SLURM_PROCID"])
    except KeyError:
        p.error("SLURM_PROCID is not set: run this under srun inside a SLURM job")
    opts = _runner_options(args.profile)
    if task != CLIENT_TASK:
        try:
            Runner(scheduler_file=args.scheduler_file, client=True, **opts)
        except KeyboardInterrupt:  # how SLURMRunner ends a scheduler or worker task once the scheduler closes
            pass
        return 0
    with Runner(scheduler_file=args.scheduler_file, client=True, **opts) as runner:
        env = {**os.environ, "DASK_SCHEDULER_ADDRESS": runner.scheduler_address}
        env.pop("MICFP_CLUSTER", None)  # the runner's scheduler, whatever the submitting shell chose
        log.info("scheduler %s; running %s", runner.scheduler_address, " ".join(command))
        code = subprocess.run(command, env=env).returncode
        _retire_workers(runner.scheduler_address)
        return code


def _retire_workers(address: str) -> None:
    """Let the workers leave before the runner closes the scheduler (a worker still talking to a
    closing scheduler logs a stream error for each task)."""
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.retire_workers(close_workers=True)


if __name__ == "__main__":  # pragma: no cover - runs under srun
    sys.exit(main())
