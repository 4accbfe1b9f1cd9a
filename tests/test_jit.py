"""numba's cache: micfp's own directory, filled once and serially, recovered when corrupt."""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import jit

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != jit.ENV}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _py(code: str, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600, **kw)


class _Crash:
    """Unpickles by reading address 0: a cache file whose loading kills the process (SIGSEGV)."""

    def __reduce__(self):
        return ctypes.string_at, (0,)


def _crash_on_load(cache: Path) -> list[Path]:
    """Make loading micfp's power-spectrum kernel from ``cache`` crash, as a corrupt cache does.

    Every cached copy is corrupted: a cache that outlived an edit of ``frames.py`` also holds
    entries of the kernel's older source lines, which nothing loads.
    """
    victims = sorted(cache.rglob("frames._power_kernel-*.nbc"))
    assert victims
    for victim in victims:
        victim.write_bytes(pickle.dumps(_Crash()))
    return victims


@pytest.fixture(scope="module")
def warm_dir(tmp_path_factory, client):
    """micfp's cache of this test session (warmed by the ``client`` fixture's connect)."""
    path = jit.cache_dir()
    assert path is not None and jit.owned(path)
    jit.warm_up()  # current again, whatever other tests compiled
    return path


def test_numba_uses_micfps_cache_dir(tmp_path):
    code = "import pipeline, numba; print(numba.config.CACHE_DIR)"
    res = _py(code, _env(XDG_CACHE_HOME=str(tmp_path)))
    assert res.returncode == 0, res.stderr
    got = Path(res.stdout.strip())
    assert got.parent == tmp_path / "micfp" / "numba" and jit.owned(got)
    # The user's own choice wins.
    res = _py(code, _env(XDG_CACHE_HOME=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "mine")))
    assert res.stdout.strip() == str(tmp_path / "mine")


def test_librosa_and_micfp_kernels_cache_in_micfps_dir(tmp_path):
    """micfp never writes numba caches into librosa's (or its own) package folders."""
    code = ("import librosa, pipeline, librosa.core.audio as a, pipeline.features.frames as f; "
            "print(f._power_kernel._cache._cache_path); print(a._zc_wrapper._dispatcher.cache._cache_path)")
    res = _py(code, _env(XDG_CACHE_HOME=str(tmp_path)))
    assert res.returncode == 0, res.stderr
    paths = res.stdout.split()
    assert len(paths) == 2 and all(p.startswith(str(tmp_path / "micfp" / "numba")) for p in paths), paths


def test_cache_dir_reaches_workers(client):
    mine = str(jit.cache_dir())
    theirs = client.run(lambda: (os.environ.get("NUMBA_CACHE_DIR"), __import__("numba").config.CACHE_DIR))
    assert set(theirs.values()) == {(mine, mine)}
    assert "micfp-numba-warm-up" in client.run(lambda dask_worker: list(dask_worker.plugins))[next(iter(theirs))]


def test_warm_cache_is_complete(warm_dir):
    """After the warm-up, micfp's features (every set, int16 and float audio) compile nothing."""
    before = jit.stamp(warm_dir)
    code = ("import numpy as np; from pipeline.features.frames import FrameSettings; "
            "from pipeline.features.signal import clip_features; s = FrameSettings(); "
            "rng = np.random.default_rng(3); y = rng.standard_normal(5 * s.sample_rate).astype(np.float32) * 0.1; "
            "[clip_features(x, c, ('all',), s) for x in (y, (y * 20000).astype(np.int16)) for c in (0.5, 2.0)]")
    res = _py(code, _env(NUMBA_CACHE_DIR=str(warm_dir)))
    assert res.returncode == 0, res.stderr
    assert jit.stamp(warm_dir) == before


def test_current_stamp_skips_the_subprocess(warm_dir, monkeypatch):
    monkeypatch.setattr(jit, "_run_children", lambda: pytest.fail("warm_up compiled although the stamp is current"))
    assert jit.warm_up() is False


@pytest.mark.faults
def test_corrupt_cache_not_micfps_is_refused_and_kept(warm_dir, tmp_path):
    theirs = tmp_path / "user-cache"
    shutil.copytree(warm_dir, theirs, ignore=shutil.ignore_patterns(*jit._META))
    victims = _crash_on_load(theirs)
    files = sorted(p for p in theirs.rglob("*"))
    code = "from pipeline import jit\ntry:\n jit.warm_up()\nexcept jit.JitCacheError as e:\n print(e)"
    res = _py(code, _env(NUMBA_CACHE_DIR=str(theirs)))
    assert res.returncode == 0, res.stderr
    assert str(theirs) in res.stdout and "SIGSEGV" in res.stdout and "delete this folder" in res.stdout
    assert sorted(p for p in theirs.rglob("*") if p.name != jit.LOCK) == files and all(v.exists() for v in victims)


@pytest.mark.faults
@pytest.mark.slow
def test_corrupt_cache_recovers(warm_dir, tmp_path):
    """A crash on load (as after two processes wrote the cache at once) is recovered from."""
    ours = tmp_path / "cache"
    shutil.copytree(warm_dir, ours)
    _crash_on_load(ours)
    garbled = next(ours.rglob("clips._moments_kernel-*.nbc"))
    garbled.write_bytes(garbled.read_bytes()[:20])
    env = _env(NUMBA_CACHE_DIR=str(ours))
    crashed = _py("from pipeline.jit import compile_all; compile_all()", env)
    assert crashed.returncode < 0  # the corruption is real: a plain kernel call dies by a signal
    res = _py("from pipeline import jit; jit.warm_up()", env)
    assert res.returncode == 0, res.stderr
    assert "unusable" in res.stderr
    res = _py("from pipeline.jit import compile_all; compile_all()", env)
    assert res.returncode == 0, res.stderr
    assert json.loads((ours / jit.STAMP).read_text()) == jit.stamp(ours)


@pytest.mark.faults
@pytest.mark.slow
def test_concurrent_warm_ups_serialise(tmp_path):
    """Two commands starting at once on an empty cache: one compiles, the other waits and loads."""
    env = _env(XDG_CACHE_HOME=str(tmp_path))
    code = ("import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='%(message)s'); "
            "from pipeline import jit; jit.warm_up(); print('cache', jit.cache_dir())")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("compiling" in out for out, _ in outs) == 1  # the second found the first's stamp current
    cache = Path(outs[0][0].split("cache ")[-1].strip())
    before = jit.stamp(cache)
    res = _py("from pipeline.jit import compile_all; compile_all()", _env(NUMBA_CACHE_DIR=str(cache)))
    assert res.returncode == 0, res.stderr
    assert jit.stamp(cache) == before  # complete and usable: nothing recompiled


def test_warm_up_groups_are_disjoint():
    """The groups compiled at once name disjoint packages and each has its compiler."""
    owners = [p for packages in jit.GROUPS.values() for p in packages]
    assert len(owners) == len(set(owners)) and set(jit._COMPILERS) == set(jit.GROUPS)


@pytest.mark.faults
def test_group_refuses_to_write_another_groups_cache(tmp_path):
    """A warm-up group that compiles a function of another group's package fails, before writing its cache."""
    code = ("import numpy as np; from pipeline import jit; jit._guard_writes(('pipeline',)); import librosa\n"
            "try:\n librosa.feature.zero_crossing_rate(np.zeros(4096, np.float32))\n"
            "except jit.JitCacheError as e:\n print(e)")
    res = _py(code, _env(NUMBA_CACHE_DIR=str(tmp_path / "cache")))
    assert res.returncode == 0, res.stderr
    assert "librosa" in res.stdout and "another group owns" in res.stdout, res.stdout
    assert not list((tmp_path / "cache").rglob("*.nbi"))  # nothing of librosa's written


def test_micfp_warmup_command(warm_dir):
    """`micfp warmup` (the install's one-off step) fills the cache, or says it is current."""
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "warmup"], env=_env(NUMBA_CACHE_DIR=str(warm_dir)),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"numba cache {warm_dir}: already current"
