"""Dask configuration, profile lookup and packaging of the cluster profiles (issue 23).

Starting a real jobqueue cluster (dask_jobqueue's LocalCluster) through micfp's SLURM path:
``test_jobqueue_start``; profiles, job scripts and manifests: ``test_connect.py``.
"""

from __future__ import annotations

import logging
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import dask.config
import dask_jobqueue  # noqa: F401 - its config defaults, before any dask.config.set of jobqueue.*
import pytest
import yaml

from pipeline.cluster import jobqueue, profiles, render
from pipeline.cluster.connect import ClusterSettings, connect
from pipeline.cluster.profiles import available_profiles, load_profile, parse_profile, resolve

ROOT = Path(__file__).resolve().parents[2]


def _refresh(monkeypatch, **env):
    """Set ``DASK_*`` variables and re-read dask's configuration, as a new process would."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    dask.config.refresh()
    profiles._load_defaults()


@pytest.fixture
def fresh_config(monkeypatch):
    """dask's configuration re-read from the environment; restored afterwards."""
    saved = dask.config.config.copy()
    yield monkeypatch
    monkeypatch.undo()
    dask.config.config.clear()
    dask.config.config.update(saved)


# -- dask config keys -------------------------------------------------------------------------
def test_env_var_sets_the_local_worker_count(clean_env, fresh_config):
    # set before micfp's defaults are merged (a new process), dask stores
    # DASK_MICFP__LOCAL__N_WORKERS as n_workers beside micfp's own n-workers spelling
    import os
    import subprocess
    import sys

    code = ("import dask.config; from pipeline.cluster.profiles import resolve; "
            "print(dask.config.get('micfp.local'), resolve().options['n-workers'])")
    env = {**os.environ, "DASK_MICFP__LOCAL__N_WORKERS": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "'n_workers': 3" in out and out.split()[-1] == "3", out
    _refresh(fresh_config, DASK_MICFP__LOCAL__N_WORKERS="3")
    assert resolve().options["n-workers"] == 3
    assert resolve(cluster="local").options["n-workers"] == 3


@pytest.mark.cluster
def test_env_var_gives_three_local_workers(clean_env, fresh_config):
    _refresh(fresh_config, DASK_MICFP__LOCAL__N_WORKERS="3")
    with connect(ClusterSettings(dashboard_address="127.0.0.1:0")) as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 3


def test_profile_option_names_in_either_spelling(clean_env, tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("kind: local\nn_workers: 4\nthreads_per_worker: 1\n")
    assert resolve(cluster=str(f)).options["n-workers"] == 4


def test_a_checkout_never_overrides_the_users_config(clean_env, tmp_path, monkeypatch):
    # a cluster/local.yaml in the working directory (a checkout) used to win over ~/.config/dask
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "local.yaml").write_text("kind: local\nn-workers: 2\n")
    monkeypatch.chdir(tmp_path)
    with dask.config.set({"micfp.local.n-workers": 5}):
        assert resolve().options["n-workers"] == 5
        assert resolve(cluster="local").options["n-workers"] == 5
    assert all(Path(d) != tmp_path / "cluster" for d in profiles.search_path())


def test_user_profiles_come_before_the_shipped_ones(clean_env, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    mine = tmp_path / "micfp" / "cluster" / "slurm.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("kind: slurm\njobs: 7\n")
    assert load_profile("slurm").source == str(mine) and available_profiles()["slurm"] == str(mine)
    with dask.config.set({"micfp.profiles": {"slurm": {"kind": "slurm", "jobs": 9}}}):
        assert load_profile("slurm").options["jobs"] == 9
        assert available_profiles()["slurm"] == "dask config micfp.profiles.slurm"


def test_scheduler_address_from_dask_config(clean_env):
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:8999"}):
        p = resolve()
    assert (p.kind, p.options["address"]) == ("remote", "tcp://127.0.0.1:8999")
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:8999", "micfp.cluster": "slurm"}):
        clean_env.setenv("MICFP_CLUSTER", "local")  # micfp's own variable still wins
        assert resolve().kind == "local"


# -- packaging ---------------------------------------------------------------------------------
def test_profiles_are_package_data():
    shipped = profiles.SHIPPED_PROFILES
    assert shipped.parent == Path(profiles.__file__).parent
    names = {f.stem for f in shipped.glob("*.yaml")}
    assert {"slurm", "pbs", "kubernetes", "remote", "remote-tls"} <= names
    assert {n: available_profiles()[n] for n in ("slurm", "pbs", "kubernetes")} == {
        n: str(shipped / f"{n}.yaml") for n in ("slurm", "pbs", "kubernetes")}
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for f in shipped.glob("*.yaml"):
        rel = f.relative_to(shipped.parent).as_posix()
        assert any(fnmatch(rel, g) for g in globs["pipeline.cluster"]), rel
    # cluster/ shows the profiles as links to the shipped copies: one copy of each, never read from there
    for f in (ROOT / "cluster").glob("*.yaml"):
        assert f.is_symlink() and f.resolve() == (shipped / f.name).resolve(), f


_CONDA_NAMES = {"pysoundfile": "soundfile", "soxr-python": "soxr", "matplotlib-base": "matplotlib"}


def _bounds(specs) -> dict[str, str]:
    out = {}
    for spec in specs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,\s#]+)", spec)
        if m:
            out[_CONDA_NAMES.get(m.group(1).lower(), m.group(1).lower())] = m.group(3)
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    py = _bounds(project["dependencies"] + extras["s3"] + extras["hpc"] + extras["kubernetes"] + extras["test"])
    py["dask"] = py.pop("dask")  # dask[array,diagnostics]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = _bounds([d for d in env["dependencies"] if isinstance(d, str)])
    conda.pop("python", None)
    conda.pop("pip", None)
    assert {k: conda.get(k) for k in py} == py
    # no exact pins of the S3 stack for tests: CI constrains it (.ci/constraints.txt)
    assert not any(re.match(r"(boto3|aiobotocore|botocore)\b", d) for d in extras["test"])
    run = (ROOT / ".ci" / "run").read_text()
    assert 'PIP_CONSTRAINT="$PWD/.ci/constraints.txt"' in run
    readme_line_2 = (ROOT / "README.md").read_text().split("## Quickstart\n```\n")[1].splitlines()[1]
    assert readme_line_2 in run.splitlines()


# -- SLURM / PBS defer to the site's jobqueue config ----------------------------------------------------
def test_jobqueue_profile_defers_to_the_site_config(clean_env):
    site = {"cores": 8, "memory": "32GiB", "queue": "site-q", "job-script-prologue": ["module load python"]}
    with dask.config.set({f"jobqueue.slurm.{k}": v for k, v in site.items()}):  # merged into the defaults
        script = render.job_script(load_profile("slurm"))  # no jobqueue.cores demanded of the profile
        assert "#SBATCH --cpus-per-task=8" in script and "#SBATCH -p site-q" in script
        assert "--nworkers 8" in script and "--nthreads 1" in script  # one thread per worker process
        lines = script.splitlines()
        assert lines.index("module load python") < next(i for i, x in enumerate(lines) if "bin/activate" in x)
        # what the profile sets explicitly wins
        clean_env.setenv("MICFP_QUEUE", "mine")
        assert "#SBATCH -p mine" in render.job_script(load_profile("slurm"))
        own = parse_profile({"kind": "slurm", "jobqueue": {"cores": 2, "processes": 1, "memory": "4GiB"}}, "x", "x")
        script = render.job_script(own)
        assert "--cpus-per-task=2" in script and "--nthreads 2" in script and "--nworkers" not in script


@pytest.mark.cluster
def test_jobqueue_start(clean_env, tmp_path, monkeypatch, caplog):
    """micfp's SLURM start path (connect -> jobqueue_cluster -> scale -> wait -> version check)
    with dask_jobqueue's LocalCluster, whose "jobs" are local processes."""
    monkeypatch.setitem(jobqueue.JOBQUEUE_CLASSES, "slurm", "dask_jobqueue.local.LocalCluster")
    f = tmp_path / "slurm-here.yaml"
    f.write_text("kind: slurm\njobs: 2\nwait-for-workers: 2\nstartup-timeout: 120s\n"
                 "scheduler-options: {host: 127.0.0.1, dashboard_address: '127.0.0.1:0'}\n"
                 "jobqueue: {cores: 1, memory: 1GiB, local_directory: %s}\n" % tmp_path)
    with caplog.at_level(logging.INFO, logger="pipeline.cluster.connect"), \
            connect(ClusterSettings(cluster=str(f))) as client:
        from dask_jobqueue.local import LocalCluster

        assert isinstance(client.cluster, LocalCluster)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2 and {w["nthreads"] for w in workers.values()} == {1}
        assert client.submit(sum, [1, 2]).result() == 3
    mine = [r.getMessage() for r in caplog.records if r.name == "pipeline.cluster.connect"]
    assert "slurm cluster 'slurm-here'" in mine[-1]
