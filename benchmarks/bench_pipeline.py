#!/usr/bin/env python3
"""End-to-end benchmark on a simulated corpus: stage wall times, x real time, peak worker RSS,
task-graph size per hour of audio, and strong scaling over the number of workers.

Stages, each on a fresh local cluster per worker count (``--workers 1,2``):

- ``ingest`` (with ``--wav DIR``, a thesis-layout WAV folder, or ``--export-wav`` to write one
  from the store first, untimed): WAV files into a new Zarr store;
- ``frames``: frame features of every recording (:func:`pipeline.features.cube.compute_frames`);
- ``clips``: clip features and the cube (:func:`pipeline.features.cube.compute_cube` with the
  frames already there), for ``--clip-seconds`` (default the eight lengths 0.1 ... 30 s) and
  ``--feature-sets`` (default spectral,channel: the thesis set runs librosa per clip and is
  timed separately with ``--thesis-minutes``);
- ``ablation``: the grid of ``workflows/thesis-scale.toml``, read with the workflow loader
  (clip lengths 0.5-5 s x spectral/channel x session/grouped-kfold/leave-sound-type-out with
  logistic regression, plus SVC on 2 s channel features under the session protocol; pooled
  sound types), run with :func:`pipeline.evaluation.cell.evaluate` with the same training cap
  (``--max-train-clips``, default the TOML's ``max_train_clips`` = 20000, 0 for none). Cells
  whose clip length the cube lacks (``--clip-seconds``) are left out.

The corpus is made with ``micfp simulate`` (or ``--simulate MINUTES`` here, timed on its own,
not part of the pipeline total).

Usage::

    python benchmarks/bench_pipeline.py STORE --out DIR [--workers 1,2] [--export-wav]
        [--simulate 72,18] [--no-ablation] [--max-train-clips N] [--json results.json]
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

from common import WorkerRSS, export_wav, install_counter, machine, machine_cpu, task_count  # noqa: E402

CLIP_LENGTHS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: The ablation stage's grid and training cap: the thesis-scale workflow's, so the two never drift apart.
ABLATION = ROOT / "workflows" / "thesis-scale.toml"


def ablation_cells(cube) -> list:
    """The clean cells of :data:`ABLATION` that ``cube`` has clips for (the workflow's own grid expansion)."""
    import pandas as pd

    from pipeline.artifacts.results import CLEAN
    from pipeline.workflow.config import load_workflow
    from pipeline.workflow.grid import availability_from_cube, expand_grid

    sessions = [str(s) for s in pd.unique(cube.session.values)]
    cells, _ = expand_grid(load_workflow(ABLATION), availability_from_cube(cube), sessions)
    return [wc.cell for wc in cells if wc.condition == CLEAN]


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(x) for x in s.split(",") if x)


def run_stage(name, fn, client, rss, hours, rows):
    task_count(client, reset=True)
    rss.reset()
    t, c, m = time.perf_counter(), time.process_time(), machine_cpu()
    out = fn()
    wall = time.perf_counter() - t
    client_cpu = time.process_time() - c  # this process: the client and the local scheduler
    m1 = machine_cpu()
    tasks = task_count(client, reset=True)
    cpu = rss.cpu_seconds()
    row = {"stage": name, "wall_s": round(wall, 1), "x_realtime": round(hours * 3600 / wall, 1),
           "worker_cpu_s": round(cpu, 1), "x_realtime_per_worker_cpu_s": round(hours * 3600 / max(cpu, 1e-9), 1),
           "client_scheduler_cpu_s": round(client_cpu, 1),
           "load_avg_1min": round(os.getloadavg()[0], 1),
           "tasks": tasks, "tasks_per_hour": round(tasks / hours, 1), "peak_worker_rss_mb": round(rss.peak() / 2**20)}
    if m and m1:  # the machine's core-seconds in this stage, by state (all processes and the kernel)
        row["machine_cpu_s"] = {k: round(m1[k] - m[k], 1) for k in m}
    rows.append(row)
    print(f"  {name:9s} {row['wall_s']:8.1f} s  {row['x_realtime']:8.1f} x rt  {tasks:6d} tasks "
          f"({row['tasks_per_hour']:.0f}/h)  peak worker RSS {row['peak_worker_rss_mb']} MB  "
          f"worker CPU {row['worker_cpu_s']} s ({row['x_realtime_per_worker_cpu_s']:.0f} x rt per CPU s)  "
          f"client+scheduler CPU {row['client_scheduler_cpu_s']} s  "
          f"load {row['load_avg_1min']}", flush=True)
    if "machine_cpu_s" in row:
        print("            machine core-s: " + "  ".join(f"{k} {v}" for k, v in row["machine_cpu_s"].items()),
              flush=True)
    return out


def bench(workers: int, args, store_path: str, out: Path) -> dict:
    from pipeline.cluster.connect import ClusterSettings, connect
    from pipeline.evaluation.cell import evaluate
    from pipeline.features.cube import FeatureConfig, compute_cube, compute_frames
    from pipeline.artifacts.store import AudioStore

    rows = []
    run_dir = out / f"w{workers}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    with connect(ClusterSettings(workers=workers, memory_limit=args.memory_limit)) as client:
        install_counter(client)
        rss = WorkerRSS(client)
        try:
            store_used = store_path
            hours = (_wav_hours(args.wav) if args.wav else
                     sum(r.duration_s for r in AudioStore.open(store_path).recordings()) / 3600)
            if args.wav:
                from pipeline.io.ingest import ingest

                store_used = str(run_dir / "audio.zarr")
                run_stage("ingest", lambda: ingest(args.wav, store_used, client, quiet=True), client, rss, hours, rows)
            store = AudioStore.open(store_used)
            config = FeatureConfig(feature_sets=tuple(args.feature_sets.split(",")), clip_seconds=args.clip_seconds,
                                   segmentations=tuple(args.segmentation.split(",")))
            cube_path = str(run_dir / "cube.zarr")
            frames_path = cube_path + ".frames"
            run_stage("frames", lambda: compute_frames(store, frames_path, config.frame, client, quiet=True),
                      client, rss, hours, rows)
            cube = run_stage("clips", lambda: compute_cube(store_used, cube_path, config, client, quiet=True),
                             client, rss, hours, rows)
            n_clips = int(cube.sizes["clip"])
            if args.thesis_minutes:
                sub = _thesis_subset(store_used, run_dir, args.thesis_minutes)
                tconf = FeatureConfig(feature_sets=("thesis",), clip_seconds=(1.0,))
                sh = sum(r.duration_s for r in AudioStore.open(sub).recordings()) / 3600
                t_rows = []
                run_stage("thesis-1s", lambda: compute_cube(sub, str(run_dir / "thesis.zarr"), tconf, client,
                                                            quiet=True), client, rss, sh, t_rows)
                t_rows[0]["audio_hours"] = round(sh, 3)
                rows += t_rows
            if not args.no_ablation:
                cells = ablation_cells(cube)
                cap = args.max_train_clips or None
                res = run_stage("ablation", lambda: evaluate(cube_path, cells, client, n_boot=args.bootstrap,
                                                              max_train=cap, quiet=True), client, rss, hours, rows)
                rows[-1].update(cells=len(res), max_train_clips=cap, n_train=sum(r["n_train"] for r in res))
        finally:
            rss.close()
    main_stages = [r for r in rows if r["stage"] in ("ingest", "frames", "clips", "ablation")]
    total = sum(r["wall_s"] for r in main_stages)
    return {"workers": workers, "audio_hours": round(hours, 3), "n_clips": n_clips, "stages": rows,
            "total_wall_s": round(total, 1), "total_stages": [r["stage"] for r in main_stages],
            "peak_worker_rss_mb": max(r["peak_worker_rss_mb"] for r in rows)}


def _wav_hours(wav_dir: str) -> float:
    """Hours of audio in a thesis-layout WAV folder (from the headers)."""
    from pipeline.io.audio import probe

    return sum(probe(str(f)).duration_s for f in sorted(Path(wav_dir).glob("*/*.wav"))) / 3600


def _thesis_subset(store_path: str, run_dir: Path, minutes: float) -> str:
    """A store holding the first ``minutes`` of each recording (for the slow thesis set)."""
    from pipeline.artifacts.store import AudioStore, Recording

    src = AudioStore.open(store_path)
    path = str(run_dir / "thesis-audio.zarr")
    n = int(minutes * 60 * src.sample_rate)
    segs = {s: src.segments(s).values.tolist() for s in {r.session for r in src.recordings()}}
    dst = AudioStore.create(path, src.sample_rate, mics=src.mics, segments=segs)
    for r in src.recordings():
        m = min(n, r.n_samples)
        rec = Recording(**{**{k: getattr(r, k) for k in Recording.__dataclass_fields__}, "n_samples": m})
        arr = dst.add_recording(rec)
        arr[:m] = src.read(r.id, 0, m)
        dst.record_shards(r.id, range(len(rec.shard_ranges(dst.shard_samples))))
    dst.mark_complete()
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", nargs="?", help="simulated Zarr audio store (made with --simulate when missing); "
                    "optional with --wav")
    ap.add_argument("--out", required=True, help="scratch folder for cubes, frames and WAV files")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--simulate", help="minutes per session, e.g. 72,18 (7.5 h) or 360,90 (37.5 h)")
    ap.add_argument("--wav", help="thesis-layout WAV folder of the same corpus: benchmark ingest too")
    ap.add_argument("--export-wav", action="store_true", help="write --wav from the store first (untimed)")
    ap.add_argument("--clip-seconds", type=_floats, default=CLIP_LENGTHS)
    ap.add_argument("--feature-sets", default="spectral,channel")
    ap.add_argument("--segmentation", default="fixed")
    ap.add_argument("--thesis-minutes", type=float, default=0.0,
                    help="also time the thesis set (1 s clips) on the first M minutes of each recording")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--max-train-clips", type=int, default=None, metavar="N",
                    help="training clips per fit in the ablation (default: the max_train_clips of "
                         "workflows/thesis-scale.toml, 20000; 0: no cap)")
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not args.store and not args.wav:
        ap.error("give a STORE, or --wav DIR to ingest")
    if args.max_train_clips is None:
        from pipeline.workflow.config import load_workflow

        args.max_train_clips = load_workflow(ABLATION).max_train_clips or 0
    if args.max_train_clips < 0:
        ap.error(f"--max-train-clips must be 0 (no cap) or positive, got {args.max_train_clips}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # paths by their last part only: the folders are this machine's, not the run's
    result = {"machine": machine(), "argv": [Path(a).name if os.sep in a else a for a in sys.argv[1:]], "runs": []}

    if args.simulate and args.store and not Path(args.store).exists():
        from pipeline.cluster.connect import ClusterSettings, connect
        from pipeline.simulate import StudioPlan
        from pipeline.simulate.writer import simulate_to_store

        plan = StudioPlan(minutes_per_session=_floats(args.simulate))
        with connect(ClusterSettings(workers=2)) as client:
            t = time.perf_counter()
            simulate_to_store(plan, args.store, client, quiet=True)
            result["simulate_wall_s"] = round(time.perf_counter() - t, 1)
        print(f"simulate: {result['simulate_wall_s']} s (not part of the pipeline total)")
    if args.export_wav:
        args.wav = args.wav or str(out / "wav")
        shutil.rmtree(args.wav, ignore_errors=True)
        export_wav(args.store, args.wav)
    for w in (int(x) for x in args.workers.split(",")):
        print(f"{w} worker(s):", flush=True)
        result["runs"].append(bench(w, args, args.store, out))
        r = result["runs"][-1]
        print(f"  total ({' + '.join(r['total_stages'])}): {r['total_wall_s']} s for {r['audio_hours']} h of audio, "
              f"{r['n_clips']} clips; peak worker RSS {r['peak_worker_rss_mb']} MB", flush=True)
    runs = {r["workers"]: r for r in result["runs"]}
    if 1 in runs and 2 in runs:
        eff = {}
        for st in runs[2]["stages"]:
            one = next((s for s in runs[1]["stages"] if s["stage"] == st["stage"]), None)
            if one:
                eff[st["stage"]] = round(one["wall_s"] / (2 * st["wall_s"]), 3)
        result["scaling_efficiency_1_to_2"] = eff
        print("scaling efficiency 1 -> 2 workers (T1 / (2 T2)):", eff)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
