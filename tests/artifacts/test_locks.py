"""One writer per output; stale locks of dead runs are taken over."""

import json
import subprocess
import sys

import pytest

from pipeline.artifacts.locks import LockedError, exclusive, lock_path


def hold_lock(path):
    """Start a separate process that holds the write lock of ``path``; returns once it does."""
    code = ("import time; from pipeline.artifacts.locks import exclusive\n"
            f"with exclusive({str(path)!r}):\n    print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_writer_fails_clearly(tmp_path):
    out = tmp_path / "cube.zarr"
    holder = hold_lock(out)
    try:
        with pytest.raises(LockedError, match=r"cube.zarr: another micfp run \(pid \d+"):
            with exclusive(str(out)):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale and taken over
    with exclusive(str(out)):
        assert json.loads(lock_path(str(out)).read_text())["pid"] > 0
    assert not lock_path(str(out)).exists()


def test_lock_released_on_error(tmp_path):
    out = tmp_path / "a.zarr"
    with pytest.raises(RuntimeError):
        with exclusive(str(out)):
            raise RuntimeError("boom")
    assert not lock_path(str(out)).exists()


def test_remote_paths_are_not_locked():
    assert lock_path("s3://bucket/store.zarr") is None
    with exclusive("s3://bucket/store.zarr"):
        pass


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
        holder.kill()
        holder.wait()


def test_reentrant_within_a_process(tmp_path):
    with exclusive(str(tmp_path / "x")):
        with exclusive(str(tmp_path / "x")):
            pass
        assert lock_path(str(tmp_path / "x")).exists()
