"""Outputs: micfp never replaces what it did not create, refuses an output that is an input, checks
every output before compute, and resolves paths on the client (issue 18, items 1 and 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.errors import InputError

pytestmark = pytest.mark.faults


def micfp(*args, cwd=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("DASK_SCHEDULER_ADDRESS", "MICFP_CLUSTER")}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def refused(p, *words):
    """One line, non-zero exit, no traceback, naming the problem."""
    assert p.returncode != 0, p.stdout
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in p.stderr, p.stderr


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A complete two-session audio store written here, without a cluster (40 s per microphone)."""
    from pipeline.artifacts.store import AudioStore, Recording, recording_id

    path = tmp_path_factory.mktemp("store") / "S.zarr"
    sr, n = 48000, 48000 * 40
    store = AudioStore.create(str(path), sr, mics={0: "a", 1: "b"})
    rng = np.random.default_rng(0)
    for session in ("d1", "d2"):
        for label in (0, 1):
            rec = Recording(id=recording_id(session, label), mic="ab"[label], label=label, session=session,
                            sample_rate=sr, n_samples=n, checksum=f"{session}{label}")
            arr = store.add_recording(rec)
            arr[:] = (rng.standard_normal(n) * 3000).astype(np.int16)
            store.record_shards(rec.id, range(len(rec.shard_ranges(store.shard_samples))))
    store.mark_complete()
    return path


def foreign(folder):
    """A folder of someone else's files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("precious")
    return folder


def no_sidecars(cube):
    return not any(os.path.lexists(str(cube) + s) for s in (".frames", ".parts"))


# -- features ---------------------------------------------------------------------------------
def test_features_into_foreign_folder_refused(tmp_path, small_store):
    out = foreign(tmp_path / "x")
    p = micfp("features", small_store, out)
    refused(p, "x", "not a micfp feature cube")
    assert (out / "thesis.tex").read_text() == "precious" and sorted(os.listdir(out)) == ["thesis.tex"]
    assert no_sidecars(out)


def test_features_output_is_the_input(tmp_path, small_store):
    p = micfp("features", small_store, small_store)
    refused(p, "is the input")
    from pipeline.artifacts.store import AudioStore

    assert AudioStore.open(str(small_store)).complete  # the store is intact
    assert no_sidecars(small_store)


def test_features_into_current_folder_refused(tmp_path, small_store):
    here = foreign(tmp_path / "here")
    p = micfp("features", small_store, ".", cwd=here)
    refused(p, "current folder")
    assert sorted(os.listdir(here)) == ["thesis.tex"]
    assert sorted(os.listdir(tmp_path)) == ["here"]  # no "..frames" / "..parts" beside it


def test_features_into_ancestor_of_input_refused(small_store):
    p = micfp("features", small_store, small_store.parent)
    refused(p, "is the input")


def test_cube_path_symlink_refused_before_compute(tmp_path, small_store):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "cube.zarr"
    link.symlink_to(target)
    p = micfp("features", small_store, link)
    refused(p, "symbolic link")
    assert os.listdir(target) == [] and no_sidecars(link)


def test_cube_path_plain_file_refused_before_compute(tmp_path, small_store):
    f = tmp_path / "cube.zarr"
    f.write_text("mine")
    p = micfp("features", small_store, f)
    refused(p, "is a file")
    assert f.read_text() == "mine" and no_sidecars(f)


@pytest.mark.parametrize("sidecar", [".frames", ".parts"])
def test_foreign_sidecar_refused(tmp_path, small_store, sidecar):
    side = foreign(tmp_path / f"cube.zarr{sidecar}")
    p = micfp("features", small_store, tmp_path / "cube.zarr")
    refused(p, sidecar, "not a micfp")
    assert sorted(os.listdir(side)) == ["thesis.tex"] and not (tmp_path / "cube.zarr").exists()


def test_remove_artifact_only_removes_marked(tmp_path):
    from pipeline.artifacts.kinds import PARTS_KIND
    from pipeline.artifacts.outputs import remove_artifact

    side = foreign(tmp_path / "c.zarr.parts")
    with pytest.raises(InputError, match="does not remove it"):
        remove_artifact(side, PARTS_KIND)
    assert (side / "thesis.tex").exists()


# -- the other commands -------------------------------------------------------------------------
def test_ingest_into_foreign_folder_refused(tmp_path):
    out = foreign(tmp_path / "q.zarr")
    p = micfp("ingest", tmp_path / "no-recordings", out)
    refused(p, "not a micfp audio store")
    assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_ingest_output_inside_input_refused(tmp_path):
    src = foreign(tmp_path / "wavs")
    p = micfp("ingest", src, src / "store.zarr")
    refused(p, "is the input")
    assert sorted(os.listdir(src)) == ["thesis.tex"]


@pytest.mark.parametrize("fmt", ["zarr", "wav"])
def test_simulate_into_foreign_folder_refused(tmp_path, fmt):
    out = foreign(tmp_path / "sim")
    p = micfp("simulate", out, "--format", fmt, "--minutes-per-session", "0.2,0.2")
    refused(p, "not a micfp")
    assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_evaluate_into_foreign_folder_refused(tmp_path):
    out = foreign(tmp_path / "report")
    p = micfp("evaluate", tmp_path / "cube.zarr", out)
    refused(p, "not a micfp report folder")
    assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_train_over_foreign_file_refused(tmp_path):
    f = tmp_path / "model.skops"
    f.write_text("not a model")
    p = micfp("train", tmp_path / "cube.zarr", f)
    refused(p, "not a micfp model file")
    assert f.read_text() == "not a model"


def test_run_into_foreign_folder_refused(tmp_path):
    out = foreign(tmp_path / "runout")
    wf = tmp_path / "wf.toml"
    wf.write_text('[workflow]\nname = "t"\n[corpus]\nsimulate = { minutes_per_session = [0.5, 0.3] }\n'
                  '[features]\nclip_seconds = [2.0]\nfeature_sets = ["channel"]\n'
                  '[[grid]]\nclassifiers = ["micfp_lr"]\nfeature_sets = ["channel"]\nclip_seconds = [2.0]\n')
    p = micfp("run", wf, "--out", out)
    refused(p, "not a micfp workflow output folder")
    assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_report_html_over_foreign_file_refused(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<html>my page</html>")
    p = micfp("report", tmp_path / "results.zarr", "--html", page)
    refused(p, "not a micfp HTML report")
    assert page.read_text() == "<html>my page</html>"


def test_certs_into_foreign_folder_refused(tmp_path):
    out = foreign(tmp_path / "certs")
    p = micfp("cluster", "certs", out)
    refused(p, "not a micfp certificate folder")
    assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_demo_into_foreign_folder_refused(tmp_path):
    out = foreign(tmp_path / "demo")
    p = micfp("demo", "--out", out, "--scale", "tiny")
    refused(p, "not a micfp demo output folder")
    assert sorted(os.listdir(out)) == ["thesis.tex"]


# -- workers that do not see the client's artifact ----------------------------------------------
def test_write_shard_refuses_another_store(tmp_path, small_store):
    """A worker that sees another store at the path (its own folder's, say) fails, writing nothing."""
    from pipeline.artifacts.store import AudioStore, write_shard

    store = AudioStore.open(str(small_store))
    rid = store.recordings()[0].id
    before = store.read(rid, 0, 100).copy()
    with pytest.raises(InputError, match="cannot see the store the client wrote"):
        write_shard(store.path, rid, 0, np.zeros(100, np.int16), uid="not-" + store.uid)
    assert np.array_equal(store.read(rid, 0, 100), before)
    with pytest.raises(InputError, match="shared filesystem"):
        write_shard(str(tmp_path / "missing.zarr"), rid, 0, np.zeros(100, np.int16), uid=store.uid)
    assert not (tmp_path / "missing.zarr").exists()


def test_clip_part_refuses_unseen_parts(tmp_path):
    from pipeline.features.cube import ClipTask, FeatureConfig, _clip_part, _gather_rows

    task = ClipTask(str(tmp_path / "s.zarr"), str(tmp_path / "f"), "r", 0, 1, ())
    with pytest.raises(InputError, match="cannot see"):
        _clip_part(task, FeatureConfig(), str(tmp_path / "c.zarr.parts"), 0, "uid")
    with pytest.raises(InputError, match="cannot see"):
        _gather_rows(str(tmp_path / "c.zarr.parts"), (), 3, "uid")
    assert not (tmp_path / "c.zarr.parts").exists()


def test_paths_resolved_on_the_client(tmp_path, monkeypatch):
    from pipeline.artifacts.outputs import check_output, resolve
    from pipeline.artifacts.store import STORE_KIND

    monkeypatch.chdir(tmp_path)
    assert check_output("q.zarr", STORE_KIND) == str(tmp_path / "q.zarr")
    assert resolve("s3://bucket/q.zarr") == "s3://bucket/q.zarr"


# -- relative paths with workers started in another folder -------------------------------------
@pytest.mark.cluster
def test_relative_paths_with_workers_elsewhere(tmp_path, monkeypatch):
    """Workers started in another folder (holding another project's q.zarr) write and read the
    client's paths: the decoy is untouched and nothing lands in the workers' folder."""
    from cluster_helpers import standalone_cluster

    from pipeline.artifacts.store import AudioStore

    workers_dir, client_dir = tmp_path / "workers", tmp_path / "client"
    workers_dir.mkdir()
    client_dir.mkdir()
    monkeypatch.chdir(workers_dir)  # the scheduler and worker processes inherit this folder
    with standalone_cluster(tmp_path / "cluster", workers=1) as state:
        monkeypatch.chdir(tmp_path)
        sched = ["--scheduler", state["address"]]
        # Another project's store at the same relative path in the workers' folder.
        assert micfp("simulate", workers_dir / "q.zarr", "--minutes-per-session", "0.2,0.2", "--seed", "7",
                     *sched).returncode == 0
        decoy = AudioStore.open(str(workers_dir / "q.zarr"))
        rid = decoy.recordings()[0].id
        decoy_audio = decoy.read(rid)
        before = sorted(os.listdir(workers_dir))

        p = micfp("simulate", "wavB", "--format", "wav", "--minutes-per-session", "0.2,0.2", *sched, cwd=client_dir)
        assert p.returncode == 0, p.stderr
        p = micfp("ingest", "wavB", "q.zarr", *sched, cwd=client_dir)
        assert p.returncode == 0, p.stderr
        p = micfp("features", "q.zarr", "cube.zarr", "--clip-seconds", "2", "--feature-set", "channel", *sched,
                  cwd=client_dir)
        assert p.returncode == 0, p.stderr

        mine = AudioStore.open(str(client_dir / "q.zarr"))
        assert np.abs(mine.read(rid)).max() > 0  # really written, not an all-zero store marked complete
        assert np.array_equal(AudioStore.open(str(workers_dir / "q.zarr")).read(rid), decoy_audio)
        assert sorted(os.listdir(workers_dir)) == before
        from pipeline.features import open_cube

        assert open_cube(str(client_dir / "cube.zarr")).attrs["micfp"]["store"] == str(client_dir / "q.zarr")


@pytest.mark.cluster
def test_worker_that_cannot_see_the_store_fails_with_the_message(client, small_store):
    """On a real worker: a store uid the worker does not find at the path is one clear error."""
    from pipeline.cluster.runner import run_tasks
    from pipeline.artifacts.store import AudioStore, write_shard

    store = AudioStore.open(str(small_store))
    rid = store.recordings()[0].id
    before = store.read(rid, 0, 100).copy()
    with pytest.raises(InputError, match=r"this worker \(.*\) cannot see the store the client wrote"):
        run_tasks(client, "write", write_shard, [(store.path, rid, 0, np.zeros(100, np.int16), None, "other")],
                  quiet=True)
    assert np.array_equal(store.read(rid, 0, 100), before)


def test_parts_of_an_older_run_are_still_recognised(tmp_path):
    """Parts left by a run before the marker existed are micfp's: a new run may replace them."""
    import zarr

    from pipeline.artifacts.kinds import PARTS_KIND, read_kind

    g = zarr.open_group(str(tmp_path / "c.zarr.parts"), mode="w", zarr_format=3)
    g.create_array("0", data=np.zeros((3, 2), np.float32))
    assert read_kind(tmp_path / "c.zarr.parts") == PARTS_KIND
    (tmp_path / "c.zarr.parts" / "thesis.tex").write_text("precious")
    assert read_kind(tmp_path / "c.zarr.parts") is None


def test_model_file_replaced_only_if_micfp_wrote_it(tmp_path):
    import skops.io as sio

    from pipeline.artifacts.kinds import MODEL_KIND
    from pipeline.artifacts.model import check_model_output

    ours, theirs = tmp_path / "ours.skops", tmp_path / "theirs.skops"
    sio.dump({"kind": MODEL_KIND}, ours)
    sio.dump({"kind": "someone-else"}, theirs)
    assert check_model_output(ours) == ours
    with pytest.raises(InputError, match="not a micfp model file"):
        check_model_output(theirs)
    with pytest.raises(InputError, match="is the input"):
        check_model_output(tmp_path / "cube.zarr" / "m.skops", inputs=(tmp_path / "cube.zarr",))
