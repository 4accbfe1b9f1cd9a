#!/usr/bin/env python3
"""The first command after a fresh install vs the same command with numba's cache warm.

Runs ``micfp demo --scale tiny`` twice, each into a fresh output folder: first with an empty
numba cache (``XDG_CACHE_HOME`` pointed at an empty folder, so micfp's cache directory is new:
the warm-up compiles every kernel before the workers start), then again with that cache filled.
Prints both wall times and their ratio. Not run by the tests.

Usage::

    python benchmarks/bench_first_run.py [--workers 2] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(cache_home: Path, out: Path, workers: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(cache_home), PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "demo", "--scale", "tiny", "--out", str(out),
                    "--workers", str(workers)], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="micfp-first-run-") as tmp:
        tmp = Path(tmp)
        cold = run_demo(tmp / "cache", tmp / "cold", args.workers)
        warm = run_demo(tmp / "cache", tmp / "warm", args.workers)
    res = {"empty_cache_s": round(cold, 1), "warm_cache_s": round(warm, 1), "ratio": round(cold / warm, 2),
           "workers": args.workers}
    print(f"micfp demo --scale tiny: empty numba cache {cold:.1f} s, warm {warm:.1f} s, ratio {cold / warm:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
