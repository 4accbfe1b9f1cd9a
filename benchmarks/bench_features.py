#!/usr/bin/env python3
"""The feature stage against the two-core STFT rate of the same audio, measured in one run.

Per worker count (``--workers 2`` or ``1,2``), on one local cluster:

1. ``stft``: a plain scipy STFT power spectrum (bench_kernel.py's method: Hann, n_fft 2048,
   hop 512, one ``rfft`` over a strided view) of every recording, one task per audio shard
   reading its samples from the store, as the frame stage reads them;
2. ``features``: the whole feature stage (frames + clips + cube) of
   :func:`pipeline.features.cube.compute_cube` with ``--feature-sets`` (default ``all``) and
   ``--clip-seconds`` (default the thesis's eight lengths 0.1 ... 30 s), from no frames;
3. ``stft`` again (the reference is the mean of both, so a change of machine load during the
   run shows as their difference, printed).

Prints x real time of each, the ratio features / STFT (issue 22's target: >= 60 %), peak worker
RSS, and with two worker counts the scaling T1 / (2 T2) of each.

Usage::

    python benchmarks/bench_features.py STORE --out DIR [--workers 2] [--simulate 3,1]
        [--feature-sets all] [--clip-seconds 0.1,0.25,...] [--json out.json]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WorkerRSS, machine  # noqa: E402

CLIP_LENGTHS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def _stft_shard(store_path: str, rid: str, a: int, b: int) -> int:
    """STFT power of samples ``[a, b + n_fft - hop)`` of a recording (the frames starting in the shard)."""
    import numpy as np
    import zarr
    from bench_kernel import _stft_method

    from pipeline.features.frames import to_float

    stft = _stft_method()[0]
    arr = zarr.open_array(f"{store_path}/audio/{rid}", mode="r")
    y = to_float(arr[a : min(arr.shape[0], b + 2048 - 512)])
    if y.size < 2048:
        return 0
    return int(np.asarray(stft(y)).shape[0])


def stft_rate(client, store) -> float:
    """Wall seconds of the STFT of every recording on the cluster."""
    from pipeline.cluster.runner import run_tasks

    tasks = [(store.path, r.id, a, b) for r in store.recordings()
             for a, b in r.shard_ranges(store.shard_samples)]
    t = time.perf_counter()
    run_tasks(client, "stft", _stft_shard, tasks, quiet=True)
    return time.perf_counter() - t


def bench(workers: int, args, store_path: str, out: Path) -> dict:
    from pipeline.artifacts.store import AudioStore
    from pipeline.cluster.connect import ClusterSettings, connect
    from pipeline.features.cube import FeatureConfig, compute_cube

    store = AudioStore.open(store_path)
    seconds = sum(r.duration_s for r in store.recordings())
    config = FeatureConfig(feature_sets=tuple(args.feature_sets.split(",")), clip_seconds=args.clip_seconds)
    run_dir = out / f"w{workers}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    with connect(ClusterSettings(workers=workers)) as client:
        client.upload_file(str(Path(__file__).resolve().parent / "bench_kernel.py"))
        rss = WorkerRSS(client)
        try:
            stft_rate(client, store)  # warm: imports, page cache
            s1 = stft_rate(client, store)
            rss.reset()
            t = time.perf_counter()
            compute_cube(store_path, str(run_dir / "cube.zarr"), config, client, quiet=True)
            feat = time.perf_counter() - t
            peak = rss.peak()
            s2 = stft_rate(client, store)
        finally:
            rss.close()
    stft_s = (s1 + s2) / 2
    row = {"workers": workers, "audio_hours": round(seconds / 3600, 3),
           "stft_x_realtime": round(seconds / stft_s, 1), "stft_runs_s": [round(s1, 2), round(s2, 2)],
           "features_wall_s": round(feat, 1), "features_x_realtime": round(seconds / feat, 1),
           "features_over_stft": round(stft_s / feat, 3), "peak_worker_rss_mb": round(peak / 2**20),
           "load_avg_1min": round(os.getloadavg()[0], 1)}
    print(f"  {workers} worker(s): STFT {row['stft_x_realtime']:.0f} x rt (runs {s1:.1f} s, {s2:.1f} s); "
          f"feature stage {feat:.1f} s = {row['features_x_realtime']:.1f} x rt = "
          f"{100 * row['features_over_stft']:.1f} % of the STFT rate; peak worker RSS {row['peak_worker_rss_mb']} MB; "
          f"load {row['load_avg_1min']}", flush=True)
    return row


def _checkout() -> str:
    """Which code ran: the git commit of the imported ``pipeline`` (not its path, which is this machine's)."""
    import subprocess

    import pipeline

    here = Path(pipeline.__file__).parent
    r = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"pipeline {pipeline.__version__} at commit {r.stdout.strip() or 'unknown'}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="simulated Zarr audio store (made with --simulate when missing)")
    ap.add_argument("--out", required=True, help="scratch folder for the cube and frames")
    ap.add_argument("--workers", default="2")
    ap.add_argument("--simulate", help="minutes per session for a new store, e.g. 3,1 (20 min of audio)")
    ap.add_argument("--feature-sets", default="all")
    ap.add_argument("--clip-seconds", type=lambda s: tuple(float(x) for x in s.split(",") if x), default=CLIP_LENGTHS)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.simulate and not Path(args.store).exists():
        from pipeline.cluster.connect import ClusterSettings, connect
        from pipeline.simulate import StudioPlan
        from pipeline.simulate.writer import simulate_to_store

        with connect(ClusterSettings(workers=2)) as client:
            simulate_to_store(StudioPlan(minutes_per_session=tuple(float(x) for x in args.simulate.split(","))),
                              args.store, client, quiet=True)

    # paths by their last part only: no folder of this machine in a result
    result = {"machine": machine(), "argv": [Path(a).name if os.sep in a else a for a in sys.argv[1:]],
              "pipeline": _checkout(),
              "feature_sets": args.feature_sets, "clip_seconds": list(args.clip_seconds), "runs": []}
    print(f"feature sets {args.feature_sets}, clip lengths {', '.join(f'{c:g}' for c in args.clip_seconds)} s; "
          f"pipeline from {result['pipeline']}", flush=True)
    for w in (int(x) for x in args.workers.split(",")):
        result["runs"].append(bench(w, args, args.store, out))
    runs = {r["workers"]: r for r in result["runs"]}
    if 1 in runs and 2 in runs:
        result["scaling_1_to_2"] = {
            "features": round(runs[2]["features_x_realtime"] / (2 * runs[1]["features_x_realtime"]), 3),
            "stft": round(runs[2]["stft_x_realtime"] / (2 * runs[1]["stft_x_realtime"]), 3)}
        print("scaling 1 -> 2 workers (T1 / (2 T2)):", result["scaling_1_to_2"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
