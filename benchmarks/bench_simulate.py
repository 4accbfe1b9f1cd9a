#!/usr/bin/env python3
"""Simulator benchmark: generation speed (x real time) and peak worker memory at several corpus lengths.

For each ``--minutes`` value M, simulates one session of M minutes per microphone (five
microphones) into a fresh Zarr store on a fresh local cluster, and prints wall time, x real
time (seconds of audio per microphone / wall seconds, and summed over the five microphones),
worker CPU time and the largest single-worker RSS (sampled with psutil). Peak memory should not
grow with M: every task renders one shard of one session.

Usage::

    python benchmarks/bench_simulate.py --minutes 5,30 [--workers 2] [--out /tmp/bench-sim] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WorkerRSS, machine  # noqa: E402


def bench(minutes: float, workers: int, out: Path) -> dict:
    from pipeline.cluster.connect import ClusterSettings, connect
    from pipeline.simulate import StudioPlan
    from pipeline.simulate.writer import simulate_to_store

    path = out / f"sim-{minutes:g}min.zarr"
    shutil.rmtree(path, ignore_errors=True)
    plan = StudioPlan(minutes_per_session=(minutes,), seed=0)
    with connect(ClusterSettings(workers=workers)) as client:
        client.run(lambda: __import__("pipeline.simulate.studio"))  # imports outside the timing
        rss = WorkerRSS(client)
        try:
            t = time.perf_counter()
            simulate_to_store(plan, str(path), client, quiet=True)
            wall = time.perf_counter() - t
            row = {"minutes_per_mic": minutes, "workers": workers, "wall_s": round(wall, 1),
                   "x_realtime_per_mic": round(minutes * 60 / wall, 1),
                   "x_realtime_all_mics": round(5 * minutes * 60 / wall, 1),
                   "worker_cpu_s": round(rss.cpu_seconds(), 1), "peak_worker_rss_mb": round(rss.peak() / 2**20),
                   "load_avg_1min": round(os.getloadavg()[0], 1)}
        finally:
            rss.close()
    shutil.rmtree(path, ignore_errors=True)
    print(f"  {minutes:6g} min/mic  {row['wall_s']:7.1f} s  {row['x_realtime_per_mic']:6.1f} x rt per mic "
          f"({row['x_realtime_all_mics']:.0f} x rt all mics)  worker CPU {row['worker_cpu_s']} s  "
          f"peak worker RSS {row['peak_worker_rss_mb']} MB  load {row['load_avg_1min']}", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="5,30", help="comma-separated session lengths, minutes per microphone")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="/tmp/bench-sim")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [bench(float(m), args.workers, out) for m in args.minutes.split(",") if m]
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
