"""Ctrl-C in a terminal: one line on stderr, no worker tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.faults
def test_ctrl_c_prints_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "pipeline.cli", "simulate", str(tmp_path / "audio.zarr"), "--minutes-per-session",
           "20", "--workers", "2"]
    # A session of its own: the signal goes to the whole process group, workers included,
    # as Ctrl-C in a terminal does.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines = []
    try:
        for line in proc.stderr:  # wait until tasks run on the workers
            lines.append(line)
            if "simulate (shards)" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    after = [ln for ln in err.splitlines() if ln.strip() and "simulate (shards)" not in ln]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert after == ["micfp: interrupted; re-run the same command to resume"], after
