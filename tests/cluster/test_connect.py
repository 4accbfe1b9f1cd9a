"""Cluster profiles, rendered HPC/Kubernetes specs, version checks, the workers' environment.

``micfp cluster up|status|down`` and standalone clusters: ``tests/integration/test_standalone.py``."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import dask.config
import dask_jobqueue  # noqa: F401 - its config defaults, before any dask.config.set of jobqueue.*
import pytest
import yaml

from cluster_helpers import cli, worker_env
from pipeline.cluster import render
from pipeline.cluster.connect import ClusterSettings, check_workers, connect, local_versions, worker_environ
from pipeline.errors import ClusterError, ConfigError
from pipeline.cluster.profiles import load_profile, parse_profile, resolve

HPC_ENV = {"MICFP_ACCOUNT": "lab42", "MICFP_QUEUE": "short", "MICFP_ENV": "/shared/envs/micfp",
           "MICFP_SCHEDULER_INTERFACE": "ib0"}
# What a site's dask config gives (jobqueue.slurm.* / jobqueue.pbs.*): the shipped profiles defer to it.
SITE = {"cores": 4, "memory": "16GiB", "walltime": "02:00:00"}


@pytest.fixture
def site_config():
    with dask.config.set({f"jobqueue.{kind}.{k}": v for kind in ("slurm", "pbs") for k, v in SITE.items()}):
        yield


# -- profiles -----------------------------------------------------------------------------------
def test_default_profile_is_a_local_cluster_bound_to_loopback(clean_env):
    p = resolve()
    assert (p.kind, p.options["host"], p.options["dashboard-address"]) == ("local", "127.0.0.1", "127.0.0.1:8787")
    assert p.options["n-workers"] == 2 and p.options["threads-per-worker"] == 1
    assert dask.config.get("micfp.check-versions") == "strict"  # the shipped pipeline/cluster/micfp.yaml


def test_profile_resolution_order(clean_env, tmp_path):
    assert resolve(scheduler="tcp://127.0.0.1:1").options["address"] == "tcp://127.0.0.1:1"
    clean_env.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:2")
    assert resolve().options["address"] == "tcp://127.0.0.1:2"
    clean_env.setenv("MICFP_CLUSTER", "local")  # micfp's own variable wins over dask's
    assert resolve().kind == "local"
    assert resolve(cluster="slurm").kind == "slurm"
    clean_env.delenv("MICFP_CLUSTER")
    clean_env.delenv("DASK_SCHEDULER_ADDRESS")
    with dask.config.set({"micfp.cluster": "pbs"}):
        assert resolve().kind == "pbs"
    # --cluster remote-tls --scheduler ADDR: the address overrides, the TLS block stays
    clean_env.setenv("MICFP_TLS_DIR", str(tmp_path))
    p = resolve(scheduler="tls://127.0.0.1:3", cluster="remote-tls")
    assert p.options["address"] == "tls://127.0.0.1:3" and p.options["tls"]["ca-file"] == f"{tmp_path}/ca.pem"
    with pytest.raises(ConfigError, match="cannot be combined"):
        resolve(scheduler="tcp://127.0.0.1:1", cluster="slurm")
    # a profile file given by path, and a folder on MICFP_CLUSTER_PATH
    f = tmp_path / "lab.yaml"
    f.write_text("kind: local\nn-workers: 3\n")
    assert resolve(cluster=str(f)).options["n-workers"] == 3
    clean_env.setenv("MICFP_CLUSTER_PATH", str(tmp_path))
    assert load_profile("lab").source == str(f)


@pytest.mark.parametrize("text, message", [
    ("kind: mesos\n", "kind must be one of"),
    ("kind: local\nnworkers: 3\n", "unknown option.*nworkers"),
    ("kind: remote\naddress: ${MICFP_UNSET_VAR}\n", "MICFP_UNSET_VAR is not set"),
    ("kind: remote\ntls: {cert: a.pem}\n", "tls must map ca-file"),
    ("- a list\n", "must be a YAML mapping"),
])
@pytest.mark.faults
def test_bad_profiles_name_the_file_and_the_problem(clean_env, tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_profile(str(f))
    assert str(f) in str(info.value)
    with pytest.raises(ConfigError, match="no cluster profile 'nope'; available: .*local"):
        load_profile("nope")


@pytest.mark.faults
def test_cli_reports_an_unknown_profile_in_one_line(clean_env, capsys):
    code, _, err = cli(capsys, "simulate", "/nonexistent/x.zarr", "--cluster", "nope")
    assert code == 2 and err.strip().count("\n") == 0
    assert "no cluster profile 'nope'" in err


# -- SLURM / PBS -----------------------------------------------------------------------------------
def _directives(script: str, prefix: str) -> list[str]:
    return [line[len(prefix):].strip() for line in script.splitlines() if line.startswith(prefix)]


def test_slurm_job_script(clean_env, capsys, site_config):
    for k, v in HPC_ENV.items():
        clean_env.setenv(k, v)
    script = render.job_script(load_profile("slurm"))
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid shell
    d = _directives(script, "#SBATCH")
    for want in ("-J micfp-worker", "-p short", "-A lab42", "--cpus-per-task=4", "--mem=16G", "-t 02:00:00",
                 "--hint=nomultithread"):
        assert want in d, (want, d)
    lines = script.splitlines()
    activate = lines.index("source /shared/envs/micfp/bin/activate")
    worker = next(i for i, line in enumerate(lines) if "distributed.cli.dask_worker" in line)
    assert activate < worker  # the worker runs in the environment that has micfp installed
    argv = shlex.split(lines[worker])
    assert argv[0] == "python3" and argv[3] == render.PLACEHOLDER_SCHEDULER
    assert argv[argv.index("--nthreads") + 1] == "1" and argv[argv.index("--nworkers") + 1] == "4"
    assert cli(capsys, "cluster", "render", "slurm", "--worker-job")[1] == script
    # an unset account is left out, not rendered as an empty "#SBATCH -A"
    clean_env.delenv("MICFP_ACCOUNT")
    assert not any(x.startswith("-A") for x in _directives(render.job_script(load_profile("slurm")), "#SBATCH"))


def test_pbs_job_script(clean_env, site_config):
    for k, v in HPC_ENV.items():
        clean_env.setenv(k, v)
    clean_env.setenv("MICFP_RESOURCE_SPEC", "select=1:ncpus=4:mem=16GB")
    script = render.job_script(load_profile("pbs"))
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    d = _directives(script, "#PBS")
    for want in ("-N micfp-worker", "-q short", "-A lab42", "-l select=1:ncpus=4:mem=16GB", "-l walltime=02:00:00"):
        assert want in d, (want, d)
    assert "distributed.cli.dask_worker tcp://SCHEDULER-HOST:8786" in script


@pytest.mark.faults
def test_jobqueue_profiles_refuse_to_start_without_a_batch_system(clean_env, site_config):
    for k, v in HPC_ENV.items():
        clean_env.setenv(k, v)
    with pytest.raises(ConfigError, match="sbatch not found"):
        render.jobqueue_cluster(load_profile("slurm"))


@pytest.mark.faults
def test_jobqueue_profile_without_memory_anywhere_names_both_places(clean_env):
    bad = parse_profile({"kind": "slurm", "jobqueue": {"cores": 1}}, "x", "x.yaml")
    with dask.config.set({"jobqueue.slurm.memory": None}):
        with pytest.raises(ConfigError, match="x.yaml: no memory per job: set jobqueue.memory in the profile or "
                                              "jobqueue.slurm.memory in the dask config"):
            render.job_script(bad)


# -- Kubernetes --------------------------------------------------------------------------------------
def _crd_schema(kind: str) -> dict:
    """The operator's own CRD schema for ``kind``, its template refs resolved; core Kubernetes
    types (PodSpec, ServiceSpec) are checked loosely as objects."""
    import dask_kubernetes.operator as op

    root = Path(op.__file__).parent / "customresources"
    templates = yaml.safe_load((root / "templates.yaml").read_text())["definitions"]

    def resolve_refs(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.split("#/definitions/")[-1]
                return resolve_refs(templates[name]) if "templates.yaml" in ref else {"type": "object"}
            return {k: resolve_refs(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve_refs(v) for v in node]
        return node

    crd = yaml.safe_load((root / f"{kind.lower()}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    assert crd["spec"]["names"]["kind"] == kind
    return resolve_refs(version["schema"]["openAPIV3Schema"])


def test_kubernetes_manifests_validate_against_the_operator_crds(clean_env, capsys):
    import jsonschema

    clean_env.setenv("MICFP_IMAGE", "registry.lab/micfp:0.1.0")
    profile = load_profile("kubernetes")
    cluster = render.cluster_manifest(profile)
    job = render.job_manifest(profile, "micfp run workflows/thesis.toml --out /data/out")
    jsonschema.validate(cluster, _crd_schema("DaskCluster"))
    jsonschema.validate(job, _crd_schema("DaskJob"))
    for pod in (cluster["spec"]["worker"]["spec"], cluster["spec"]["scheduler"]["spec"], job["spec"]["job"]["spec"]):
        c = pod["containers"][0]
        assert c["image"] == "registry.lab/micfp:0.1.0" and c["name"]
    assert job["spec"]["job"]["spec"]["containers"][0]["args"] == ["micfp", "run", "workflows/thesis.toml", "--out",
                                                                   "/data/out"]
    assert job["spec"]["cluster"]["spec"] == cluster["spec"]
    assert cluster["spec"]["scheduler"]["service"]["type"] == "ClusterIP"
    assert cluster["spec"]["worker"]["replicas"] == 4
    # dask-kubernetes' own spec for the profile's settings, plus micfp's label and namespace
    from dask_kubernetes.operator import make_cluster_spec

    theirs = make_cluster_spec(name="micfp", image="registry.lab/micfp:0.1.0", n_workers=4,
                               resources={"requests": {"cpu": "1", "memory": "4Gi"},
                                          "limits": {"cpu": "1", "memory": "4Gi"}},
                               env={}, worker_command="dask worker --nthreads 1 --memory-limit 4GiB")
    assert cluster["spec"] == theirs["spec"]
    assert cluster["metadata"] == {**theirs["metadata"], "namespace": "default",
                                   "labels": {"app.kubernetes.io/part-of": "micfp"}}
    # the validator does catch a broken manifest
    broken = json.loads(json.dumps(cluster))
    broken["spec"]["worker"]["replicas"] = "four"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _crd_schema("DaskCluster"))
    # the CLI renders both documents, as plain YAML kubectl accepts
    text = cli(capsys, "cluster", "render", "kubernetes")[1]
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["DaskCluster", "DaskJob"] and "&id" not in text
    assert docs[1]["spec"]["job"]["spec"]["containers"][0]["args"][:2] == ["micfp", "demo"]


# -- version checks ------------------------------------------------------------------------------------
class _FakeClient:
    def __init__(self, versions):
        self.versions = versions

    def run(self, func):
        return self.versions


def test_version_check_modes():
    mine = local_versions()
    assert mine["micfp"] == "0.1.0" and mine["python"]
    check_workers(_FakeClient({"w1": mine, "w2": dict(mine)}))  # same code: fine
    with pytest.raises(ClusterError, match=r"1 of 2 workers do not run micfp 0.1.0 \(e.g. w2: 0.0.9\)"):
        check_workers(_FakeClient({"w1": mine, "w2": {**mine, "micfp": "0.0.9"}}), "warn")
    other_numpy = {"w1": {**mine, "numpy": "1.0.0"}}
    with pytest.raises(ClusterError, match="other library versions.*numpy 1.0.0"):
        check_workers(_FakeClient(other_numpy), "strict")
    with pytest.warns(UserWarning, match="numpy 1.0.0"):
        check_workers(_FakeClient(other_numpy), "warn")
    check_workers(_FakeClient(other_numpy), "off")


@pytest.mark.faults
@pytest.mark.cluster
def test_workers_that_cannot_import_pipeline_are_refused(tmp_path, clean_env):
    from distributed import LocalCluster

    preload = tmp_path / "hide_pipeline.py"
    preload.write_text("import sys\nsys.modules['pipeline'] = None  # as if micfp were not installed\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", preload=[str(preload)]) as cluster:
        with pytest.raises(ClusterError, match="do not run micfp 0.1.0.*cannot import pipeline.*docs/cluster.md"):
            with connect(ClusterSettings(scheduler=cluster.scheduler_address)):
                pass


def test_local_workers_start_with_the_allocator_settings(client):
    # distributed's own default (MALLOC_TRIM_THRESHOLD_=65536) is overridden, see micfp.yaml;
    # glibc reads these at process start, so they must be in the environment the worker
    # was spawned with, not set afterwards
    want = tuple(sorted(worker_environ().items()))
    assert dict(want)["MALLOC_MMAP_THRESHOLD_"] == "33554432"
    assert set(worker_env(client).values()) == {want}


def test_allocator_settings_win_over_values_an_earlier_nanny_left(monkeypatch):
    # distributed's nanny copies its pre-spawn environment into this process's os.environ and
    # then prefers os.environ to its config: a stale value must not reach new workers
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with connect(ClusterSettings(workers=1, dashboard_address="127.0.0.1:0")) as c:
        assert set(worker_env(c).values()) == {tuple(sorted(worker_environ().items()))}
    import os

    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # this process's own value is restored
