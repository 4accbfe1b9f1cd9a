#!/usr/bin/env python3
"""Does fusing ingest and frames pay? The store read-back against the frame kernel, one run.

Issue 22 asks for ingest and frames in one read "if the measurements say it pays": today ingest
decodes each file and writes the Zarr store, and the frame tasks read the audio back from it.
A fused path would save only that read-back (the store is still written: every later stage and
every rerun reads it). This benchmark measures, in one process pinned to one thread (what a
Dask worker gets), interleaved so both see the same load:

1. ``read``: :meth:`pipeline.artifacts.store.AudioStore.read` of every recording of a store
   (decompressing its chunks), x real time;
2. ``frames``: :func:`pipeline.features.frames.frame_features` on the same recordings' audio
   (the 48 kHz frame pass alone, the cheapest part of the feature stage), x real time.

It prints the read-back's share of read + frames: an upper bound of what fusion could save of
the frame stage (the whole feature stage, with the clip stage and the thesis set, costs more).

Usage::

    python benchmarks/bench_read_back.py STORE [--seconds 120] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as in a Dask worker process

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", help="an audio store (micfp simulate / ingest)")
    p.add_argument("--seconds", type=float, default=120.0, help="audio per recording used (default 120)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best of each is kept")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    from pipeline.artifacts.store import AudioStore
    from pipeline.features.frames import FrameSettings, frame_features
    from pipeline.jit import warm_up

    store = AudioStore.open(args.store)
    sr = store.sample_rate
    n = int(args.seconds * sr)
    recs = store.recordings()
    audio_s = sum(min(n, r.n_samples) for r in recs) / sr
    fs = FrameSettings(sample_rate=sr)
    warm_up()  # compiled kernels loaded before timing
    frame_features(store.read(recs[0].id, 0, min(n, recs[0].n_samples)), fs)

    def read():
        return [store.read(r.id, 0, min(n, r.n_samples)) for r in recs]

    signals = read()
    best = {"read": float("inf"), "frames": float("inf")}
    for _ in range(args.repeats):
        t = time.perf_counter()
        read()
        best["read"] = min(best["read"], time.perf_counter() - t)
        t = time.perf_counter()
        for y in signals:
            frame_features(y, fs)
        best["frames"] = min(best["frames"], time.perf_counter() - t)
    share = best["read"] / (best["read"] + best["frames"])
    out = {"store_recordings": len(recs), "audio_seconds": audio_s, "repeats": args.repeats,
           "read_x_realtime": audio_s / best["read"], "frames_x_realtime": audio_s / best["frames"],
           "read_share_of_read_plus_frames": share, "load_1min": os.getloadavg()[0]}
    print(f"{len(recs)} recordings, {audio_s:.0f} s of audio, best of {args.repeats}, one thread: "
          f"store read-back {out['read_x_realtime']:.0f}x real time, frame kernel {out['frames_x_realtime']:.0f}x; "
          f"the read-back is {100 * share:.1f} % of read + frames (load {out['load_1min']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
