#!/usr/bin/env python3
"""The first demo after a fresh install vs the same demo with numba's cache warm.

A fresh install is what the README's Quickstart does: ``pip install`` and then ``micfp warmup``
(the one-off compile of micfp's numba kernels). Each run points ``XDG_CACHE_HOME`` at a new
empty folder, so micfp's cache directory starts empty, as right after ``pip install``:

1. ``micfp warmup`` (timed: the install step);
2. ``micfp demo --scale tiny`` (the first demo after the install);
3. the same demo again (warm);
4. with ``--skip-warmup`` too: the demo on another empty cache without ``micfp warmup`` (the
   first command then compiles the kernels before its workers start).

Prints the times and the ratio first / warm; each demo writes a fresh output folder. Not run by
the tests.

Usage::

    python benchmarks/bench_first_run.py [--workers 2] [--skip-warmup] [--json results.json]
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


def micfp(cache_home: Path, *args: str) -> float:
    """Run ``micfp ARGS`` with an ``XDG_CACHE_HOME`` of its own; its wall time, s."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(cache_home), PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def demo(cache_home: Path, out: Path, workers: int) -> float:
    return micfp(cache_home, "demo", "--scale", "tiny", "--out", str(out), "--workers", str(workers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-warmup", action="store_true",
                    help="also time the demo on an empty cache without `micfp warmup`")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="micfp-first-run-") as tmp:
        tmp = Path(tmp)
        warmup = micfp(tmp / "cache", "warmup")
        first = demo(tmp / "cache", tmp / "first", args.workers)
        warm = demo(tmp / "cache", tmp / "warm", args.workers)
        bare = demo(tmp / "cache-bare", tmp / "bare", args.workers) if args.skip_warmup else None
    res = {"warmup_s": round(warmup, 1), "first_demo_s": round(first, 1), "warm_demo_s": round(warm, 1),
           "ratio": round(first / warm, 2), "workers": args.workers}
    print(f"micfp warmup (install step) {warmup:.1f} s; micfp demo --scale tiny: first after install {first:.1f} s, "
          f"warm {warm:.1f} s, ratio {first / warm:.2f}")
    if bare is not None:
        res.update(first_demo_without_warmup_s=round(bare, 1), ratio_without_warmup=round(bare / warm, 2))
        print(f"without micfp warmup: first demo {bare:.1f} s, ratio {bare / warm:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
