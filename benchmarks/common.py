"""Shared benchmark helpers: worker memory sampling, task counting, WAV export, machine info."""

from __future__ import annotations

import csv
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np


class WorkerRSS:
    """Samples the resident memory of every worker process (psutil, every ``interval`` s).

    ``peak()`` is the largest single-worker RSS since the last ``reset()``. Works for workers
    on this machine (a local cluster); for remote workers use the dashboard's memory plot.
    """

    def __init__(self, client, interval: float = 0.2):
        import psutil

        self._procs = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        self._interval = interval
        self._peak = 0
        self._cpu0 = self._cpu()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for p in self._procs:
                try:
                    self._peak = max(self._peak, p.memory_info().rss)
                except Exception:  # a worker restarting; keep sampling the others
                    pass
            time.sleep(self._interval)

    def reset(self) -> None:
        self._peak = 0
        self._cpu0 = self._cpu()

    def _cpu(self) -> float:
        total = 0.0
        for p in self._procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:
                pass
        return total

    def cpu_seconds(self) -> float:
        """Worker CPU time (user + system, all workers) since the last ``reset()``.

        On a shared machine wall time depends on the other load; CPU time much less so.
        """
        return self._cpu() - self._cpu0

    def peak(self) -> int:
        return self._peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def machine_cpu() -> dict[str, float] | None:
    """The machine's CPU seconds so far by state, all cores (Linux ``/proc/stat``), or ``None``.

    The difference of two readings tells where a stage's core-seconds went: worker and client
    work (``user``, ``system``), waiting on the disk (``iowait``), nothing (``idle``) and time the
    hypervisor gave to other guests (``steal``), which a shared virtual machine can lose when
    both its cores are busy.
    """
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    v = dict(zip(names, (int(x) / tick for x in fields[1:9])))
    return {"user": v["user"] + v["nice"], "system": v["system"] + v["irq"] + v["softirq"],
            "iowait": v["iowait"], "idle": v["idle"], "steal": v["steal"]}


class TaskCounter:
    """Counts the tasks the scheduler executes (transitions processing -> memory/erred).

    Registered as a scheduler plugin; ``count()`` reads and ``reset()`` zeroes the counter
    between stages, so each stage reports its own task-graph size.
    """

    name = "micfp-task-counter"

    def __init__(self):
        self.n = 0

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish in ("memory", "erred"):
            self.n += 1


def install_counter(client):
    from distributed.diagnostics.plugin import SchedulerPlugin

    class _Counter(TaskCounter, SchedulerPlugin):
        pass

    client.register_plugin(_Counter(), name=TaskCounter.name)


def task_count(client, reset: bool = False) -> int:
    def _read(dask_scheduler, reset=reset):
        p = dask_scheduler.plugins[TaskCounter.name]
        n = p.n
        if reset:
            p.n = 0
        return n

    return client.run_on_scheduler(_read)


def export_wav(store_path: str, out_dir: str, sessions: list[str] | None = None, max_seconds: float | None = None):
    """Write a store's recordings as WAV files in the thesis (Kaggle) layout.

    ``<out>/<session>/mic-<N>.wav`` (16-bit mono), ``<out>/<session>/segments.csv`` and
    ``<out>/mics.csv``, read back in 10 s chunks so memory stays small.
    """
    import soundfile as sf

    from pipeline.artifacts.store import AudioStore

    store = AudioStore.open(store_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "mics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "name"])
        w.writerows(sorted(store.mics.items()))
    files = []
    for rec in store.recordings():
        if sessions and rec.session not in sessions:
            continue
        sdir = out / rec.session
        sdir.mkdir(exist_ok=True)
        seg = store.segments(rec.session, rec.n_samples)
        n = rec.n_samples if max_seconds is None else min(rec.n_samples, int(max_seconds * store.sample_rate))
        seg = seg[seg.start_s < n / store.sample_rate]
        seg.to_csv(sdir / "segments.csv", index=False)
        path = sdir / f"mic-{rec.label}.wav"
        step = 10 * store.sample_rate
        with sf.SoundFile(path, "w", samplerate=store.sample_rate, channels=1, subtype="PCM_16") as f:
            for a in range(0, n, step):
                f.write(store.read(rec.id, a, min(n, a + step)))
        files.append(path)
    return files


def machine() -> dict:
    import psutil

    model = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "load_avg": [round(x, 2) for x in os.getloadavg()]}
