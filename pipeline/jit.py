"""numba's on-disk cache, owned by micfp: compiled once, serially, before any worker runs a kernel.

micfp's kernels (``pipeline/features/frames.py``, ``clips.py``) and the librosa features of
the thesis set are numba functions cached on disk (``cache=True``). Two processes compiling
the same function at once can leave an inconsistent cache (a gufunc's two cache files from
different compilations, numba issues #10128 and #4807), after which every process that loads
it crashes with a segmentation fault, including a plain ``import librosa`` user. So:

- micfp points ``NUMBA_CACHE_DIR`` at a directory it creates (``$XDG_CACHE_HOME/micfp/numba/
  <environment key>``), set in ``os.environ`` when ``pipeline`` is imported, so every process
  micfp starts (workers, subprocesses) inherits it and librosa's ``site-packages`` cache is
  never written by micfp. A ``NUMBA_CACHE_DIR`` the user set wins (micfp then never deletes it).
- :func:`warm_up` compiles or loads every kernel signature micfp uses in subprocesses, under an
  exclusive file lock in that directory, before a local cluster's workers start (and on each
  remote worker through :class:`pipeline.cluster.warmup.WarmUpPlugin`; ``micfp warmup`` runs it
  once after an install). Workers then only load. If a subprocess dies by a signal, the cache
  is corrupt: micfp's own directory is emptied and the warm-up retried.
- The kernels are compiled in :data:`GROUPS`, one subprocess each, at the same time: micfp's own
  kernels and librosa's (its ``guvectorize`` functions compile every signature on import, about
  two thirds of the time). No two of them write the same cache entries: each subprocess refuses
  to save a function outside its group's packages (:func:`_guard_writes`).
- A stamp (versions, kernel sources, cache files) lets later commands skip the subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import MicfpError

log = logging.getLogger(__name__)

ENV = "NUMBA_CACHE_DIR"
#: Marks a cache directory micfp created (and so may empty when it is corrupt).
OWNER_MARK = ".micfp-numba-cache"
STAMP = ".micfp-warm.json"
LOCK = ".micfp-warm.lock"
_META = (OWNER_MARK, STAMP, LOCK)
#: The source files holding micfp's numba kernels: an edit makes numba recompile them.
KERNEL_SOURCES = ("features/frames.py", "features/clips.py", "features/lowband.py", "features/thesis_frames.py")
#: Libraries whose numba functions the warm-up compiles; their versions are part of the stamp.
STAMP_PACKAGES = ("numba", "llvmlite", "librosa", "numpy")
#: A fresh install on a slow, busy machine needs about a minute; allow for far worse.
TIMEOUT_S = 1800
#: Warm-up groups compiled in parallel: name -> the top-level packages whose numba caches it
#: writes. Disjoint, so that no two subprocesses write the same cache index.
GROUPS = {"kernels": ("pipeline",), "librosa": ("librosa",)}


class JitCacheError(MicfpError):
    """numba's cache cannot be filled, or is corrupt in a directory micfp did not create."""


def _default_dir() -> Path:
    """micfp's cache directory for this environment (interpreter, prefix and micfp checkout)."""
    key = hashlib.sha1("\0".join([sys.prefix, sys.version, str(Path(__file__).resolve().parent)]).encode())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "micfp" / "numba" / key.hexdigest()[:16]


def _create(path: Path) -> bool:
    """Create ``path`` as micfp's (with its owner mark); False when it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        mark = path / OWNER_MARK
        if not mark.exists():
            mark.write_text("numba cache created by micfp; safe to delete\n")
        return os.access(path, os.W_OK)
    except OSError:
        return False


def configure() -> None:
    """Point numba's cache at micfp's directory, unless ``NUMBA_CACHE_DIR`` is already set.

    Called when ``pipeline`` is imported, before micfp's kernels are defined: numba picks a
    function's cache location when the function is decorated. Never raises: without a
    writable directory numba falls back to its own locations.
    """
    if os.environ.get(ENV):
        return
    for path in (_default_dir(), Path(tempfile.gettempdir()) / f"micfp-{os.getuid()}" / _default_dir().name):
        if _create(path):
            os.environ[ENV] = str(path)
            break
    else:
        return
    if "numba" in sys.modules:  # imported before micfp: make numba read the variable again
        sys.modules["numba"].core.config.reload_config()


def cache_dir() -> Path | None:
    """The numba cache directory in force (``None``: numba's defaults, beside the sources)."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def owned(path: Path) -> bool:
    """Whether micfp created ``path`` (only then may it empty it)."""
    return (path / OWNER_MARK).is_file()


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (blocking): one warm-up per cache at a time."""
    import fcntl

    with open(path, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError as exc:  # e.g. ENOLCK on a network file system without locking
            log.warning("%s: cannot lock (%s); warming up without the lock", path, exc.strerror)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .version import __version__

    out = {"micfp": __version__, "python": sys.version}
    for name in STAMP_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def stamp(path: Path) -> dict:
    """What a warm-up of ``path`` depends on: versions, kernel sources and the cache's files."""
    here = Path(__file__).resolve().parent
    sources = {}
    for rel in KERNEL_SOURCES:
        st = (here / rel).stat()
        sources[rel] = [st.st_size, st.st_mtime_ns]
    files = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name not in _META:
            st = p.stat()
            files[str(p.relative_to(path))] = [st.st_size, st.st_mtime_ns]
    return {"versions": _versions(), "sources": sources, "files": files}


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads((path / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, value: dict) -> None:
    tmp = path / f"{STAMP}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path / STAMP)


def clear(path: Path) -> None:
    """Empty micfp's cache directory ``path`` (its owner mark and lock file stay)."""
    if not owned(path):
        raise JitCacheError(f"{path}: not a numba cache micfp created; not deleting it")
    for p in path.iterdir():
        if p.name in (OWNER_MARK, LOCK):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _child_env() -> dict:
    """This environment, with this ``pipeline`` first on the path (the child compiles the same code)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _run_children() -> dict[str, tuple[int, str]]:
    """Compile every group of :data:`GROUPS` in its own subprocess, all at once: ``{group: (status, stderr)}``."""
    import time

    deadline = time.monotonic() + TIMEOUT_S
    procs, out = {}, {}
    with contextlib.ExitStack() as stack:
        try:
            for group in GROUPS:
                err = stack.enter_context(tempfile.TemporaryFile("w+"))
                # A new session: Ctrl-C in the terminal reaches micfp, which stops the children quietly.
                procs[group] = (subprocess.Popen([sys.executable, "-m", "pipeline.jit", group], env=_child_env(),
                                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                                 text=True, start_new_session=True), err)
            for group, (proc, err) in procs.items():
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                err.seek(0)
                out[group] = (proc.returncode, err.read())
        except BaseException:  # a timeout or an interrupt: no compiler may outlive the lock
            for proc, _ in procs.values():
                proc.kill()
                proc.wait()
            raise
    return out


def _failure(results: dict[str, tuple[int, str]]) -> str | None:
    """Why the first failed group failed (a signal name or its last line of stderr); None if none did."""
    for group, (rc, err) in results.items():
        if rc != 0:
            why = _signal_name(rc) if rc < 0 else (err.strip().splitlines() or [f"exit status {rc}"])[-1]
            return f"{group}: {why}"
    return None


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def warm_up() -> bool:
    """Compile or load every numba kernel micfp uses, once, in subprocesses (one per group).

    Call before starting processes that run kernels. Holds an exclusive lock on the cache
    directory, so concurrent warm-ups (two commands, several workers of one host) run one
    after another and the later ones find the stamp current and return at once.

    Logs one line (INFO) when kernels are compiled, which takes under a minute on a fresh install.

    Returns
    -------
    bool
        Whether kernels were compiled (False: the cache was current, or numba's defaults are in force).

    Raises
    ------
    JitCacheError
        The kernels cannot be compiled, or a cache micfp did not create crashes them.
    """
    path = cache_dir()
    if path is None:
        return False
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = path / LOCK
        lock.touch()
    except OSError as exc:
        raise JitCacheError(f"{path}: cannot write numba's cache here ({exc.strerror}); set {ENV} to a "
                            "writable folder") from exc
    with _exclusive(lock):
        if _read_stamp(path) == stamp(path):
            return False
        log.info("compiling micfp's numba kernels once for this environment (under a minute; `micfp warmup` after "
                 "installing does it ahead)")
        for attempt in (1, 2):
            try:
                results = _run_children()
            except subprocess.TimeoutExpired as exc:
                raise JitCacheError(f"{path}: compiling numba kernels took over {TIMEOUT_S} s") from exc
            why = _failure(results)
            if why is None:
                break
            if not owned(path):
                raise JitCacheError(f"{path}: numba kernels fail with this cache ({why}); it may be corrupt (e.g. "
                                    f"written by two processes at once): delete this folder, or unset {ENV}")
            if attempt == 2:
                raise JitCacheError(f"{path}: compiling numba kernels failed even with an empty cache: {why}")
            # A crash (a signal) or a load error: treat the cache as corrupt, as micfp made it.
            log.warning("%s: numba's cache was unusable (%s); emptied it, compiling again", path, why)
            clear(path)
        _write_stamp(path, stamp(path))
        return True


def _guard_writes(packages: tuple[str, ...]) -> None:
    """In this process, make numba refuse to cache a function outside ``packages``.

    The warm-up's groups run at the same time; a group that compiled another group's function
    would write that function's cache index while its owner does, the corruption the lock
    exists to prevent. Such a change fails the warm-up (and the tests) instead.
    """
    from numba.core import caching

    save = caching.Cache.save_overload

    def guarded(self, sig, data):
        module = getattr(self._py_func, "__module__", None) or ""
        if module.split(".")[0] not in packages:
            raise JitCacheError(f"the numba warm-up group of {', '.join(packages)} compiled {module}."
                                f"{getattr(self._py_func, '__qualname__', '?')}, which another group owns: "
                                "move that call to its group in pipeline/jit.py")
        return save(self, sig, data)

    caching.Cache.save_overload = guarded


def compile_kernels() -> None:
    """Run micfp's own numba kernels on tiny inputs of each type signature it uses.

    The signatures are those of :func:`frames.frame_features` (float32 frames; a read-only frame
    view, strided or of one frame; with it the low bands' long frames), :func:`clips.reduce_frames`
    (both percentile paths) and :func:`thesis_frames.thesis_clip_features`.
    """
    import numpy as np

    from .features import clips, sets, thesis_frames
    from .features.frames import FrameSettings, frame_features

    rng = np.random.default_rng(0)
    s = FrameSettings()
    # A block of one frame is a C-contiguous view, of several a strided one: two signatures.
    for n in (s.sample_rate, s.n_fft):
        for y in ((rng.standard_normal(n) * 3000).astype(np.int16), rng.standard_normal(n).astype(np.float32) * 0.1):
            frame_features(y, s)
    frames = rng.standard_normal((2 * clips.SMALL_K * 10 + 8, 12)).astype(np.float32)
    f0 = np.array([0, 3, 0], np.int64)
    f1 = np.array([5, 40, frames.shape[0]], np.int64)  # short clips: running minima; long: selection
    clips.reduce_frames(frames, f0, f1, percentiles=(sets.QUIET_PERCENTILE, 50.0))
    # the thesis set, all clips at once: a short clip (resampled whole) and a long one (edges, shared frames)
    for sr in (s.sample_rate, sets.THESIS_SR):
        y = rng.standard_normal(sr).astype(np.float32) * 0.1
        thesis_frames.thesis_clip_features(y, 0, [0, 0], [sr // 10, sr], sr)


def compile_librosa() -> None:
    """Run the thesis set's librosa features (MFCC, zero-crossing rate, RMS of float32 audio)."""
    import numpy as np

    from .features import sets
    from .features.frames import FrameSettings

    rng = np.random.default_rng(0)
    for sr in (FrameSettings().sample_rate, sets.THESIS_SR):
        sets.thesis_features(rng.standard_normal(sr).astype(np.float32) * 0.1, sr)


#: What each group of :data:`GROUPS` runs.
_COMPILERS = {"kernels": compile_kernels, "librosa": compile_librosa}


def compile_group(group: str) -> None:
    """Compile one group of :data:`GROUPS`, writing numba's cache only for its own packages."""
    _guard_writes(GROUPS[group])
    _COMPILERS[group]()


def compile_all() -> None:
    """Run every numba kernel micfp calls, on tiny inputs of each type signature it uses (every group)."""
    for compile_ in _COMPILERS.values():
        compile_()


if __name__ == "__main__":  # a warm-up subprocess: python -m pipeline.jit GROUP
    compile_group(sys.argv[1])
