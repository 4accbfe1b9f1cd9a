"""Ingest benchmark: throughput against ``cat``, worker memory against file length, codec ratios.

Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--workdir DIR] [--files 5] [--minutes 10,40] [--workers 2]

1. Simulates a 3-minute studio session (every sound type) into a Zarr store, once.
2. Compression: lossless Blosc codecs on the simulated microphones' speech, music and sweep
   (10 s chunks, as the store writes them): ratio, encode and decode MB/s on one thread.
3. For each length in ``--minutes``: a thesis-layout corpus of ``--files`` 48 kHz 16-bit mono
   WAV files of that length (each tiled from one microphone's session), then, in the same run,
   ``cat FILES > /dev/null`` and ``micfp ingest`` on a local cluster of ``--workers`` processes
   (started before timing; restarted per length so the workers' peak RSS is per run). Both
   read from the page cache (the files were just written): this measures ingest's CPU cost,
   not the disk.
Results print as tables and go to ``<workdir>/bench_ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SR = 48000
SOUND_TYPES = {"speech": ("speech1", "speech2"), "music": ("music",), "sweep": ("sweep",),
               "lowfreq": ("lowfreq",)}
CODECS = [  # (label, numcodecs.Blosc kwargs)
    ("zstd-1 shuffle", dict(cname="zstd", clevel=1, shuffle=1)),
    ("zstd-3 shuffle (store)", dict(cname="zstd", clevel=3, shuffle=1)),
    ("zstd-5 shuffle", dict(cname="zstd", clevel=5, shuffle=1)),
    ("zstd-9 shuffle", dict(cname="zstd", clevel=9, shuffle=1)),
    ("zstd-3 bitshuffle", dict(cname="zstd", clevel=3, shuffle=2)),
    ("zstd-3 noshuffle", dict(cname="zstd", clevel=3, shuffle=0)),
    ("lz4 shuffle", dict(cname="lz4", clevel=5, shuffle=1)),
    ("lz4hc-9 shuffle", dict(cname="lz4hc", clevel=9, shuffle=1)),
    ("zlib-5 shuffle", dict(cname="zlib", clevel=5, shuffle=1)),
]


def simulate(workdir: Path, client):
    from pipeline.simulate import StudioPlan
    from pipeline.simulate.writer import simulate_to_store
    from pipeline.artifacts.store import AudioStore

    path = workdir / "sim.zarr"
    plan = StudioPlan(minutes_per_session=(3.0,), seed=0)
    try:
        return AudioStore.open(str(path))
    except Exception:
        return simulate_to_store(plan, str(path), client)


def compression_table(store) -> list[dict]:
    from numcodecs import Blosc

    chunks: dict[str, list[np.ndarray]] = {k: [] for k in SOUND_TYPES}
    seg = store.segments("day1")
    for r in store.recordings():
        x = store.read(r.id)
        for a, b, t in seg.itertuples(index=False):
            kind = next((k for k, v in SOUND_TYPES.items() if t in v), None)
            if kind:
                y = x[int(a * SR) : int(b * SR)]
                chunks[kind] += [y[i : i + 10 * SR] for i in range(0, y.size, 10 * SR) if y[i : i + 10 * SR].size]
    # Every 10 s chunk would take minutes with the slow high levels; 20 spread-out chunks
    # (200 s per sound type, all microphones) give the ratio to about 1 %.
    chunks = {k: v[:: max(1, len(v) // 20)][:20] for k, v in chunks.items()}
    rows = []
    for label, kw in CODECS:
        codec = Blosc(**kw)
        for kind, parts in chunks.items():
            raw = sum(p.nbytes for p in parts)
            t0 = time.perf_counter()
            enc = [codec.encode(p) for p in parts]
            t1 = time.perf_counter()
            for e, p in zip(enc, parts):
                assert np.array_equal(np.frombuffer(codec.decode(e), np.int16), p)
            t2 = time.perf_counter()
            rows.append(dict(codec=label, sound=kind, seconds=raw / 2 / SR, ratio=raw / sum(len(e) for e in enc),
                             enc_MBps=raw / 1e6 / (t1 - t0), dec_MBps=raw / 1e6 / (t2 - t1)))
    return rows


def make_corpus(store, root: Path, files: int, minutes: float) -> list[Path]:
    import soundfile as sf

    if root.exists():
        shutil.rmtree(root)
    (root / "day1").mkdir(parents=True)
    recs = store.recordings()
    n = int(minutes * 60 * SR)
    out = []
    for k in range(files):
        src = store.read(recs[k % len(recs)].id)
        src = np.roll(src, 7919 * k)  # another start per file
        path = root / "day1" / f"bench-{k + 1}.wav"
        with sf.SoundFile(path, "w", SR, 1, "PCM_16") as f:
            left = n
            while left:
                m = min(left, src.size)
                f.write(src[:m])
                left -= m
        out.append(path)
    return out


def _sampler(op: str):
    """On a worker: start a thread sampling this process's RSS every 20 ms, or read its peak and CPU."""
    import threading

    import psutil

    proc = psutil.Process()
    state = getattr(sys, "_micfp_bench", None)
    if op == "start":
        if state:
            state["stop"] = True
        state = sys._micfp_bench = {"peak": proc.memory_info().rss, "stop": False,
                                    "cpu0": sum(proc.cpu_times()[:2])}

        def loop():
            while not state["stop"]:
                state["peak"] = max(state["peak"], proc.memory_info().rss)
                time.sleep(0.02)

        threading.Thread(target=loop, daemon=True).start()
        return state["peak"]
    state["stop"] = True
    return state["peak"], sum(proc.cpu_times()[:2]) - state["cpu0"]


def warm_up(client) -> None:
    """Import what the ingest tasks import, so timing starts with ready workers."""
    client.run(lambda: [__import__(m) for m in ("pipeline.io.ingest", "soundfile", "soxr", "zarr")])


def run_length(client, store, workdir: Path, files: int, minutes: float) -> dict:
    from pipeline.io.ingest import ingest

    corpus = make_corpus(store, workdir / f"corpus-{minutes:g}min", files, minutes)
    nbytes = sum(p.stat().st_size for p in corpus)
    audio_s = files * minutes * 60
    t0 = time.perf_counter()
    subprocess.run("cat " + " ".join(f"'{p}'" for p in corpus) + " > /dev/null", shell=True, check=True)
    t_cat = time.perf_counter() - t0
    client.restart()  # fresh worker processes: the peak RSS below is this run's
    warm_up(client)
    rss0 = max(client.run(_sampler, "start").values())
    dest = workdir / f"ingest-{minutes:g}min.zarr"
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.perf_counter()
    report = ingest(str(corpus[0].parent.parent), str(dest), client, quiet=True)
    t_ing = time.perf_counter() - t0
    stats = client.run(_sampler, "stop").values()
    rss, cpu = max(r for r, _ in stats), sum(c for _, c in stats)
    stored = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    t0 = time.perf_counter()
    again = ingest(str(corpus[0].parent.parent), str(dest), client, quiet=True)
    t_again = time.perf_counter() - t0
    assert again.shards_written == 0
    shutil.rmtree(corpus[0].parent.parent)
    shutil.rmtree(dest)
    return dict(files=files, minutes_per_file=minutes, audio_s=audio_s, wav_MB=nbytes / 1e6,
                cat_s=t_cat, cat_MBps=nbytes / 1e6 / t_cat, cat_x_realtime=audio_s / t_cat,
                ingest_s=t_ing, ingest_MBps=nbytes / 1e6 / t_ing, ingest_x_realtime=audio_s / t_ing,
                worker_cpu_s=cpu, x_realtime_per_busy_core=audio_s / cpu,
                rerun_s=t_again, worker_rss_idle_MB=rss0 / 1e6, worker_rss_peak_MB=rss / 1e6,
                store_MB=stored / 1e6, store_ratio=nbytes / stored, shards=report.shards_written)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="/tmp/micfp-bench-ingest")
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--minutes", default="10,40", help="file lengths to run, comma-separated")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    from pipeline.cluster.connect import ClusterSettings, connect

    out: dict = {"workers": args.workers}
    with connect(ClusterSettings(workers=args.workers, dashboard_address="127.0.0.1:0")) as client:
        store = simulate(workdir, client)
        out["compression"] = compression_table(store)
        out["throughput"] = [run_length(client, store, workdir, args.files, float(m))
                             for m in args.minutes.split(",")]

    print("\ncompression (Blosc on 10 s int16 chunks of the simulated microphones, one thread)")
    print(f"{'codec':24s} {'sound':8s} {'ratio':>6s} {'enc MB/s':>9s} {'dec MB/s':>9s}")
    for r in out["compression"]:
        print(f"{r['codec']:24s} {r['sound']:8s} {r['ratio']:6.2f} {r['enc_MBps']:9.0f} {r['dec_MBps']:9.0f}")
    print(f"\ningest on {args.workers} workers vs cat (page cache warm for both)")
    for r in out["throughput"]:
        print(f"{r['files']} x {r['minutes_per_file']:g} min ({r['wav_MB']:.0f} MB WAV): "
              f"cat {r['cat_s']:.2f} s = {r['cat_MBps']:.0f} MB/s ({r['cat_x_realtime']:.0f}x rt); "
              f"ingest {r['ingest_s']:.2f} s = {r['ingest_MBps']:.0f} MB/s ({r['ingest_x_realtime']:.0f}x rt); "
              f"workers' CPU {r['worker_cpu_s']:.1f} s = {r['x_realtime_per_busy_core']:.0f}x rt per busy core; "
              f"re-run {r['rerun_s']:.2f} s; store {r['store_MB']:.0f} MB (ratio {r['store_ratio']:.2f}); "
              f"worker peak RSS {r['worker_rss_peak_MB']:.0f} MB (idle {r['worker_rss_idle_MB']:.0f} MB)")
    (workdir / "bench_ingest.json").write_text(json.dumps(out, indent=1))
    print(f"\nwrote {workdir / 'bench_ingest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
