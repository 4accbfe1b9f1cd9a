"""Operating-system errors reach the user as one line naming the path and the OS's reason."""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.audio import probe
from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
cli = importlib.import_module("pipeline.cli.main")  # the module: ``pipeline.cli.main`` is also the function


def _wav(path: Path) -> Path:
    import soundfile as sf

    sf.write(path, np.zeros(4800, np.float32), 48000, subtype="PCM_16")
    return path


def _without_root_override(cmd: list[str]) -> list[str]:
    """Run ``cmd`` so that file permissions apply (root ignores them unless it drops the capability)."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *cmd]


@pytest.mark.faults
def test_unreadable_audio_says_permission_denied(tmp_path):
    path = _wav(tmp_path / "a.wav")
    path.chmod(0)
    code = ("from pipeline.io.audio import probe\ntry:\n probe(%r)\nexcept Exception as e:\n print(e)" % str(path))
    res = subprocess.run(_without_root_override([sys.executable, "-c", code]), capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    # not libsndfile's "System error"
    assert res.stdout.strip() == f"{path}: cannot read: Permission denied", res.stderr


@pytest.mark.faults
def test_audio_path_that_is_a_folder(tmp_path):
    (tmp_path / "x.wav").mkdir()
    (tmp_path / "x.wav" / "pad").write_bytes(b"0" * 10)
    with pytest.raises(InputError, match="x.wav: cannot read: Is a directory"):
        probe(str(tmp_path / "x.wav"))


def _fail_with(monkeypatch, exc):
    def command(args):
        raise exc

    monkeypatch.setitem(cli.COMMANDS, "simulate", command)


@pytest.mark.faults
def test_disk_full_names_the_output(tmp_path, monkeypatch, capsys):
    # write() on a full disk raises ENOSPC without a file name
    _fail_with(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    out = tmp_path / "audio.zarr"
    assert cli.main(["simulate", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"micfp: error: {out}: {os.strerror(errno.ENOSPC)} (free some space, or write elsewhere) "
                   "(while writing it)"]


@pytest.mark.faults
def test_permission_error_names_the_path(tmp_path, monkeypatch, capsys):
    _fail_with(monkeypatch, PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/shard.bin"))
    assert cli.main(["simulate", str(tmp_path / "audio.zarr")]) == 1
    assert capsys.readouterr().err.strip() == f"micfp: error: /data/shard.bin: {os.strerror(errno.EACCES)}"


@pytest.mark.faults
def test_disk_full_for_real(tmp_path, monkeypatch, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")

    def command(args):  # /dev/full fails every write with ENOSPC, as a full disk does
        with open("/dev/full", "w") as f:
            f.write("x" * 100000)

    monkeypatch.setitem(cli.COMMANDS, "simulate", command)
    out = tmp_path / "audio.zarr"
    assert cli.main(["simulate", str(out)]) == 1
    assert capsys.readouterr().err.strip().startswith(f"micfp: error: {out}: {os.strerror(errno.ENOSPC)}")
