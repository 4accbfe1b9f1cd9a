"""A command that starts a local cluster ends quietly: no killed workers, no comm tracebacks."""

from __future__ import annotations

import gc

from cluster_helpers import micfp

NOISE = ("still alive", "CommClosedError", "Traceback", "killing")

# Stands in for a loaded machine: there a worker process's interpreter teardown (numba,
# librosa, scikit-learn loaded) took over 4 s, and distributed's nanny killed it after 4 s
# ("Worker process still alive after 4.0 seconds, killing"). Here every worker process takes
# 5 s to exit whatever the load.
SLOW_EXIT = """
import atexit
import time


def dask_setup(worker):
    atexit.register(time.sleep, 5)
"""


def test_command_exits_quietly_when_workers_exit_slowly(tmp_path):
    preload = tmp_path / "slow_exit.py"
    preload.write_text(SLOW_EXIT)
    p = micfp("simulate", tmp_path / "audio.zarr", "--minutes-per-session", "0.2", "--workers", "1",
              env={"DASK_DISTRIBUTED__WORKER__PRELOAD": f'["{preload}"]'})
    assert not [w for w in NOISE if w in p.stderr], p.stderr
    assert (tmp_path / "audio.zarr").is_dir()


def test_worker_teardown_freezes_the_collector():
    """Closing workers freeze what the collector tracks, so the interpreter's teardown skips it."""
    from pipeline.cluster.shutdown import QuickExitPlugin

    assert gc.get_freeze_count() == 0
    try:
        QuickExitPlugin().teardown(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
