"""Readers and writers of one artifact exclude each other; a dead holder's lock is released."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline.artifacts.locks import LockedError, exclusive, held, lock_path, shared


def hold_lock(path, mode="exclusive"):
    """Start a separate process that holds the ``mode`` lock of ``path``; returns once it does."""
    code = (f"import time; from pipeline.artifacts.locks import {mode}\n"
            f"with {mode}({str(path)!r}):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def stop(holder):
    holder.kill()
    holder.wait()


def try_lock(path, mode) -> str:
    """In another process: ``ok`` if the ``mode`` lock of ``path`` can be taken now, else the error."""
    code = (f"from pipeline.artifacts.locks import {mode}, LockedError\n"
            f"try:\n    with {mode}({str(path)!r}): print('ok')\n"
            "except LockedError as e: print(e)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.faults
def test_second_writer_fails_clearly(tmp_path):
    out = tmp_path / "cube.zarr"
    holder = hold_lock(out)
    try:
        with pytest.raises(LockedError, match=rf"cube.zarr: .* being written by micfp pid {holder.pid}; wait"):
            with exclusive(str(out)):
                pass
    finally:
        stop(holder)
    # the holder died without releasing: the kernel released its lock
    with exclusive(str(out)):
        assert held(str(out)) == "exclusive"
    assert lock_path(str(out)).exists()  # lock files stay (removing them would race)


@pytest.mark.faults
def test_shared_and_exclusive_exclude_each_other(tmp_path):
    """Readers coexist; a reader blocks a writer and a writer blocks readers; a killed holder releases."""
    art = tmp_path / "store.zarr"
    reader = hold_lock(art, "shared")
    try:
        assert try_lock(art, "shared") == "ok"  # two readers at once
        with shared(str(art)):
            pass
        msg = try_lock(art, "exclusive")
        assert f"being read by micfp pid {reader.pid}; wait for it to finish" in msg and "store.zarr" in msg
        with pytest.raises(LockedError, match="being read"):
            with exclusive(str(art)):
                pass
    finally:
        stop(reader)
    assert try_lock(art, "exclusive") == "ok"
    writer = hold_lock(art, "exclusive")
    try:
        assert f"being written by micfp pid {writer.pid}" in try_lock(art, "shared")
    finally:
        stop(writer)
    assert try_lock(art, "shared") == "ok"


@pytest.mark.faults
def test_lock_released_on_error(tmp_path):
    out = tmp_path / "a.zarr"
    with pytest.raises(RuntimeError):
        with exclusive(str(out)):
            raise RuntimeError("boom")
    assert held(str(out)) is None
    assert try_lock(out, "exclusive") == "ok"


def test_remote_paths_are_not_locked():
    assert lock_path("s3://bucket/store.zarr") is None
    with exclusive("s3://bucket/store.zarr"), shared("s3://bucket/store.zarr"):
        pass


def test_reentrant_within_a_process(tmp_path):
    x = str(tmp_path / "x")
    with exclusive(x):
        with exclusive(x), shared(x):  # a writer reads what it writes
            pass
        assert held(x) == "exclusive"
    assert held(x) is None
    with shared(x):
        with shared(x):
            pass
        with pytest.raises(LockedError, match="this run is reading"):  # no upgrade: it is not atomic
            with exclusive(x):
                pass
        assert held(x) == "shared"


@pytest.mark.faults
def test_reader_of_a_missing_folder_creates_nothing(tmp_path):
    with shared(str(tmp_path / "no" / "such.zarr")):
        pass
    assert not (tmp_path / "no").exists()


@pytest.mark.faults
def test_stages_take_the_lock(tmp_path, client, tiny_plan):
    """A store being written by another live run is refused before any work starts."""
    from pipeline.simulate.writer import simulate_to_store

    out = tmp_path / "audio.zarr"
    holder = hold_lock(out)
    try:
        with pytest.raises(LockedError, match="audio store"):
            simulate_to_store(tiny_plan, str(out), client, quiet=True)
        assert not out.exists()
    finally:
        stop(holder)


@pytest.mark.faults
def test_features_refused_while_the_store_is_written(tiny_store, tmp_path, capsys):
    """`micfp features STORE CUBE` while an ingest/simulate holds STORE: one line naming it, at once."""
    from pipeline.cli.main import main

    holder = hold_lock(tiny_store)
    try:
        t0 = time.perf_counter()
        rc = main(["features", tiny_store, str(tmp_path / "cube.zarr"), "--workers", "1"])
        err = capsys.readouterr().err.strip()
        assert rc != 0 and time.perf_counter() - t0 < 5  # no cluster was started
        assert err.count("\n") == 0
        assert f"{tiny_store}: this audio store is being written by micfp pid {holder.pid}" in err
        assert not (tmp_path / "cube.zarr").exists()
    finally:
        stop(holder)


@pytest.mark.faults
def test_store_writers_refused_while_features_read_it(tiny_store, tmp_path, monkeypatch, capsys):
    """While `micfp features` computes, ingest/simulate into its store refuse (and nothing waits)."""
    import contextlib
    import importlib

    import pipeline.features as features

    cli = importlib.import_module("pipeline.cli.main")  # the module: `pipeline.cli.main` is the function
    from pipeline.cli.main import main

    cli = importlib.import_module("pipeline.cli.main")  # the module: the package's `main` is the function

    seen = {}

    def fake_compute(store, cube, config, client):  # stands in for the compute, mid-command
        seen["other"] = try_lock(store, "exclusive")
        raise KeyboardInterrupt

    monkeypatch.setattr(features, "compute_cube", fake_compute)
    monkeypatch.setattr(cli, "_connect", lambda args: contextlib.nullcontext())
    assert main(["features", tiny_store, str(tmp_path / "cube.zarr")]) == 130
    assert seen["other"].startswith(f"{tiny_store}: this output is being read by micfp pid {os.getpid()}")
    # and the CLI writers refuse at once, one line, before a cluster starts
    reader = hold_lock(tiny_store, "shared")
    try:
        capsys.readouterr()
        for argv in (["simulate", tiny_store, "--minutes-per-session", "0.2"],
                     ["ingest", str(tmp_path), tiny_store]):
            if argv[0] == "ingest":
                monkeypatch.setattr("pipeline.io.ingest.plan_ingest", lambda src, settings: None)
            assert main(argv) != 0
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0 and f"being read by micfp pid {reader.pid}" in err, err
    finally:
        stop(reader)


# -- the cube is written new, then swapped in ---------------------------------------------
def _same(a, b) -> bool:
    return a.attrs["micfp"]["uid"] == b.attrs["micfp"]["uid"] and a.equals(b)


# Locks never wait, so the writer retries while the reader's loop briefly holds the read lock.
REWRITER = """
import sys, time
from distributed import Client
from pipeline.features import FeatureConfig, compute_cube
from pipeline.artifacts.locks import LockedError
c = Client(sys.argv[1])
for clips in ({a}, {b}):
    while True:
        try:
            compute_cube(sys.argv[2], sys.argv[3], FeatureConfig(feature_sets=("channel",), clip_seconds=clips), c,
                         quiet=True)
            break
        except LockedError:
            time.sleep(0.001)
"""


@pytest.mark.faults
def test_cube_read_during_a_rewrite_is_old_or_new(client, tiny_store, tmp_path):
    """open_cube in a loop while another process rewrites the cube: old or new, never a mix."""
    from pipeline.errors import IncompleteError
    from pipeline.features import FeatureConfig, compute_cube, open_cube

    cube = str(tmp_path / "cube.zarr")
    old = compute_cube(tiny_store, cube, FeatureConfig(feature_sets=("channel",), clip_seconds=(1.0,)), client,
                       quiet=True).load()
    code = REWRITER.format(a=(2.0,), b=(0.5, 2.0))
    writer = subprocess.Popen([sys.executable, "-c", code, client.scheduler.address, tiny_store, cube],
                              stdout=subprocess.PIPE, text=True)
    seen, refused, replaced = [], 0, 0
    try:
        while writer.poll() is None:
            try:
                seen.append(open_cube(cube).load())
            except LockedError as exc:
                assert "being written by micfp pid" in str(exc)
                refused += 1
            except IncompleteError as exc:  # opened, then swapped before its features were read
                assert "replaced while it was being read" in str(exc)
                replaced += 1
            time.sleep(0.02)  # leave the cores to the writer
        assert writer.returncode == 0
    finally:
        writer.kill()
        writer.wait()
    mid, new = None, open_cube(cube).load()
    versions = {old.attrs["micfp"]["uid"]: old, new.attrs["micfp"]["uid"]: new}
    ids = {s.attrs["micfp"]["uid"] for s in seen}
    for s in seen:
        ref = versions.get(s.attrs["micfp"]["uid"])
        if ref is None:  # the intermediate version (2.0 s clips): consistent in itself
            mid = mid or s
            assert set(np.unique(s.clip_seconds.values)) == {2.0} and s.attrs["micfp"]["complete"]
            assert _same(s, mid)
        else:
            assert _same(s, ref)
    assert refused > 0 and len(ids) <= 3
    assert set(np.unique(new.clip_seconds.values)) == {0.5, 2.0}
    assert not list(tmp_path.glob("cube.zarr.tmp-*"))


@pytest.mark.faults
def test_lazy_cube_read_across_a_rewrite_fails_clearly(client, tiny_store, tmp_path):
    """A lazily opened cube whose path was rewritten since refuses to read the new cube's chunks."""
    from pipeline.errors import IncompleteError
    from pipeline.features import FeatureConfig, compute_cube, open_cube
    from pipeline.artifacts.cube import cached_cube

    cube = str(tmp_path / "cube.zarr")
    cfg = FeatureConfig(feature_sets=("channel",), clip_seconds=(1.0,))
    compute_cube(tiny_store, cube, cfg, client, quiet=True)
    first = cached_cube(cube)
    lazy = open_cube(cube)
    new = compute_cube(tiny_store, cube, cfg, client, quiet=True)  # same settings: same shapes, new write
    with pytest.raises(IncompleteError, match="replaced while it was being read; open it again"):
        lazy.load()
    assert cached_cube(cube).attrs["micfp"]["uid"] == new.attrs["micfp"]["uid"] \
        != first.attrs["micfp"]["uid"]


@pytest.mark.faults
def test_failed_rewrite_keeps_the_old_cube(client, tiny_store, tmp_path, monkeypatch):
    """A rewrite that dies before the swap leaves the old complete cube; the next run cleans up."""
    import pipeline.features.cube as cube_mod
    from pipeline.features import FeatureConfig, compute_cube, open_cube

    cube = str(tmp_path / "cube.zarr")
    cfg = FeatureConfig(feature_sets=("channel",), clip_seconds=(1.0,))
    old = compute_cube(tiny_store, cube, cfg, client, quiet=True).load()

    def die(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cube_mod, "swap_in", die)
    with pytest.raises(KeyboardInterrupt):
        compute_cube(tiny_store, cube, FeatureConfig(feature_sets=("channel",), clip_seconds=(2.0,)), client,
                     quiet=True)
    assert _same(open_cube(cube).load(), old)
    assert len(list(tmp_path.glob("cube.zarr.tmp-*"))) == 1
    monkeypatch.undo()
    compute_cube(tiny_store, cube, cfg, client, quiet=True)
    assert not list(tmp_path.glob("cube.zarr.tmp-*"))


@pytest.mark.faults
def test_cube_and_results_never_replace_foreign_data(client, tiny_store, tmp_path):
    """Something at the output path that micfp did not make is refused before compute, and kept."""
    import xarray as xr

    from pipeline.errors import InputError
    from pipeline.features import FeatureConfig, compute_cube
    from pipeline.artifacts.results import write_results

    for name in ("cube.zarr", "results.zarr"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "precious.txt").write_text("mine")
    with pytest.raises(InputError, match="cube.zarr: exists and is not a micfp feature cube"):
        compute_cube(tiny_store, str(tmp_path / "cube.zarr"), FeatureConfig(), client, quiet=True)
    with pytest.raises(InputError, match="results.zarr: exists and is not a micfp results set"):
        write_results(xr.Dataset(attrs={"micfp": {"kind": "micfp-results"}}), tmp_path / "results.zarr")
    assert (tmp_path / "cube.zarr" / "precious.txt").read_text() == "mine"
    assert (tmp_path / "results.zarr" / "precious.txt").read_text() == "mine"
    assert not (tmp_path / "cube.zarr.frames").exists()
