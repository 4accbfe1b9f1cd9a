#!/usr/bin/env python3
"""Ingest alone from a cold page cache: wall time, worker CPU and the machine's core-seconds.

Every source file is first dropped from the page cache (``posix_fadvise(DONTNEED)`` after a
``sync``), so each run reads the corpus as a first ingest would, whatever ran before. Then one
local cluster per worker count ingests the corpus into a fresh store, which is deleted after.

Usage::

    python benchmarks/bench_ingest_cold.py WAV_DIR [--out /tmp/ingest-cold.zarr] [--workers 2,1]
        [--json results.json]

To compare two versions of the code, run the script from a checkout of each (it imports the
``pipeline`` package beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WorkerRSS, machine, machine_cpu  # noqa: E402


def uncache(folder: str) -> int:
    """Drop every file under ``folder`` from the page cache; returns the bytes concerned."""
    os.sync()
    total = 0
    for path in Path(folder).rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += path.stat().st_size
            finally:
                os.close(fd)
    return total


def run(wav: str, out: str, workers: int) -> dict:
    from pipeline.cluster.connect import ClusterSettings, connect
    from pipeline.io.ingest import ingest

    shutil.rmtree(out, ignore_errors=True)
    size = uncache(wav)
    with connect(ClusterSettings(workers=workers)) as client:
        rss = WorkerRSS(client)
        try:
            m0, c0, t0 = machine_cpu(), time.process_time(), time.perf_counter()
            ingest(wav, out, client, quiet=True)
            wall = time.perf_counter() - t0
            m1 = machine_cpu()
            row = {"workers": workers, "wall_s": round(wall, 1), "source_gb": round(size / 1e9, 2),
                   "worker_cpu_s": round(rss.cpu_seconds(), 1),
                   "client_scheduler_cpu_s": round(time.process_time() - c0, 1),
                   "peak_worker_rss_mb": round(rss.peak() / 2**20),
                   "machine_cpu_s": {k: round(m1[k] - m0[k], 1) for k in m0} if m0 else None}
        finally:
            rss.close()
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wav", help="a recording folder micfp ingest accepts (e.g. the thesis layout)")
    ap.add_argument("--out", default="/tmp/ingest-cold.zarr", help="store written, then deleted")
    ap.add_argument("--workers", default="2,1")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for w in (int(x) for x in args.workers.split(",")):
        row = run(args.wav, args.out, w)
        rows.append(row)
        print(f"{w} worker(s): ingest {row['wall_s']} s, worker CPU {row['worker_cpu_s']} s, client+scheduler "
              f"{row['client_scheduler_cpu_s']} s, peak worker RSS {row['peak_worker_rss_mb']} MB; machine core-s "
              f"{row['machine_cpu_s']}", flush=True)
    if len(rows) == 2:
        one, two = sorted(rows, key=lambda r: r["workers"])
        print(f"efficiency T1 / (2 T2): {one['wall_s'] / (2 * two['wall_s']):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
