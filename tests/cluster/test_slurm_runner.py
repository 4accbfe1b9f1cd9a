"""A micfp command with its scheduler inside one SLURM job (dask-jobqueue's SLURMRunner)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import dask.config
import dask_jobqueue  # noqa: F401 - its config defaults, before any dask.config.set of jobqueue.*
import pytest

from cluster_helpers import cli
from pipeline.cluster.profiles import load_profile
from pipeline.cluster.slurm_runner import batch_script
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_render_slurm_runs_the_scheduler_inside_the_job(clean_env, capsys):
    clean_env.setenv("MICFP_ENV", "/shared/envs/micfp")
    site = {"cores": 4, "memory": "16GiB", "walltime": "02:00:00", "queue": "short"}
    with dask.config.set({f"jobqueue.slurm.{k}": v for k, v in site.items()}):
        code, script, _ = cli(capsys, "cluster", "render", "slurm", "--job", "micfp run workflows/thesis.toml")
        assert code == 0
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
        d = [line[len("#SBATCH"):].strip() for line in script.splitlines() if line.startswith("#SBATCH")]
        # 2 jobs x 4 processes: 8 one-CPU worker tasks, plus the scheduler's and the command's
        for want in ("-n 10", "--cpus-per-task=1", "--mem-per-cpu=4G", "-p short", "-t 02:00:00"):
            assert want in d, (want, d)
        lines = script.splitlines()
        srun = shlex.split(lines[-1])
        assert srun[:2] == ["srun", "--kill-on-bad-exit=1"] and srun[3:6] == ["-m", "pipeline.cluster.slurm_runner",
                                                                              "--profile"]
        assert srun[srun.index("--") + 1:] == ["micfp", "run", "workflows/thesis.toml"]
        assert lines.index("source /shared/envs/micfp/bin/activate") < len(lines) - 1
        assert "export MALLOC_ARENA_MAX=1" in lines
        # the worker job of --cluster slurm (scheduler on the login node) on request
        worker = cli(capsys, "cluster", "render", "slurm", "--worker-job")[1]
        assert "distributed.cli.dask_worker" in worker and "slurm_runner" not in worker


@pytest.mark.faults
def test_runner_script_without_a_command_says_where_to_give_it(clean_env):
    from pipeline.cluster.profiles import parse_profile

    p = parse_profile({"kind": "slurm", "jobqueue": {"cores": 1, "memory": "1GiB"}}, "x", "x.yaml")
    with pytest.raises(ConfigError, match="x.yaml: give the command the job runs"):
        batch_script(p)


@pytest.mark.cluster
def test_runner_tasks_run_a_command_against_their_own_scheduler(clean_env, tmp_path):
    """The four tasks of a SLURM step, as srun would start them (SLURM_PROCID 0..3)."""
    profile = tmp_path / "here.yaml"
    profile.write_text("kind: slurm\nscheduler-options: {host: 127.0.0.1, dashboard_address: '127.0.0.1:0'}\n")
    client = ("import logging, sys\nfrom pipeline.cluster.connect import ClusterSettings, connect\n"
              "logging.basicConfig(stream=sys.stdout, level=logging.WARNING)\n"
              "logging.getLogger('pipeline').setLevel(logging.INFO)\n"
              "with connect(ClusterSettings()) as c:\n"
              "    c.wait_for_workers(2, timeout=120)\n"
              "    n = len(c.scheduler_info(n_workers=-1)['workers'])\n"
              "    print('workers', n, 'sum', c.submit(sum, [1, 2]).result())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLURM_NTASKS": "4", "SLURM_JOB_ID": "4242"}
    for k in ("MICFP_CLUSTER", "DASK_SCHEDULER_ADDRESS"):
        env.pop(k, None)
    argv = [sys.executable, "-m", "pipeline.cluster.slurm_runner", "--profile", str(profile), "--",
            sys.executable, "-c", client]
    procs = [subprocess.Popen(argv, env={**env, "SLURM_PROCID": str(i)}, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1][-2000:] for o in outs]
    assert "workers 2 sum 3" in outs[1][0], outs[1]
    # the command and the workers end cleanly (workers retired before the scheduler closes); the
    # scheduler task itself may log distributed's CancelledError of a worker stream it is closing
    tracebacks = [err[max(0, err.find("Traceback") - 500):][:4000] for _, err in outs[1:] if "Traceback" in err]
    assert not tracebacks, "\n".join(tracebacks)
    assert load_profile(str(profile)).kind == "slurm"


@pytest.mark.faults
def test_client_task_waits_for_a_half_written_scheduler_file(tmp_path):
    # SLURMRunner's own client read the file as soon as it existed: a JSONDecodeError
    import asyncio
    import threading
    from types import SimpleNamespace

    from pipeline.cluster.slurm_runner import _runner_class

    f = tmp_path / "scheduler.json"
    f.write_text('{"address": "tcp://127.0')
    threading.Timer(0.5, lambda: f.write_text('{"address": "tcp://127.0.0.1:8786"}')).start()
    get = _runner_class().get_scheduler_address
    assert asyncio.run(get(SimpleNamespace(scheduler_file=f))) == "tcp://127.0.0.1:8786"
