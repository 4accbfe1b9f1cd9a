#!/usr/bin/env python3
"""Kernel benchmark: frame features and clip aggregation, x real time per core.

Measures, in one process pinned to one BLAS/FFT thread (what a Dask worker process gets):

1. ``stft``: the practical limit, a plain scipy STFT power spectrum of the same audio (Hann
   window, n_fft 2048, hop 512, one ``rfft`` over a strided view; ``$MICFP_STFT_LIMIT`` may name
   another reference script exposing the same method, imported instead);
2. ``frames``: :func:`pipeline.features.frames.frame_features` on 48 kHz PCM, best of N, with
   the ratio to (1) measured in the same run, interleaved so both see the same machine load;
3. ``frames_per_call``: the batch-size sweep behind ``FRAMES_PER_CALL``;
4. ``clips``: clip aggregation (spectral + channel sets) for the eight clip lengths 0.1 ... 30 s
   on the frames of (2), as a fraction of the frame pass;
5. ``thesis``: the thesis set (librosa per clip, 1 s clips), x real time per clip length, and
   the thesis set of the eight lengths' clips of (4) at once
   (:func:`pipeline.features.thesis_frames.thesis_clip_features`, as the cube computes it).

Usage::

    python benchmarks/bench_kernel.py [--seconds 120] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as in a Dask worker process

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.features import clips as C  # noqa: E402
from pipeline.features import sets as fsets  # noqa: E402
from pipeline.features.frames import FRAMES_PER_CALL, FrameSettings, frame_features  # noqa: E402

STFT_LIMIT = os.environ.get("MICFP_STFT_LIMIT", "")
CLIP_LENGTHS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def _stft_method():
    """The reference STFT step: a plain scipy STFT power spectrum (or ``$MICFP_STFT_LIMIT``'s module)."""
    if STFT_LIMIT and Path(STFT_LIMIT).exists():
        spec = importlib.util.spec_from_file_location("stft_limit", STFT_LIMIT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        source = STFT_LIMIT
    else:
        mod, source = None, "plain scipy STFT (Hann, 2048 / 512)"
    import scipy.fft as sfft
    from numpy.lib.stride_tricks import sliding_window_view

    def stft(y, n_fft=2048, hop=512):
        # The whole timed body: window, one rfft over a strided view, power.
        window = np.hanning(n_fft).astype(np.float32)
        spec = sfft.rfft(sliding_window_view(y, n_fft)[::hop] * window, axis=1)
        return spec.real**2 + spec.imag**2

    return stft, source, mod


def test_signal(seconds: float, sr: int = 48000, seed: int = 0) -> np.ndarray:
    """Programme-like 16-bit audio: noise, harmonic tones and speech-like bursts with silent gaps."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = 0.02 * rng.standard_normal(n)
    f0 = 110 * 2 ** (np.floor(t / 3) % 12 / 12)
    y += sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8))
    y *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t) ** 2
    y[(t % 15) > 13] *= 1e-3  # 2 s gaps every 15 s
    return (np.clip(y, -1, 1) * 32000).astype(np.int16)


def best_rate(fn, seconds: float, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = max(best, seconds / (time.perf_counter() - t))
    return best


def machine() -> dict:
    import psutil
    import scipy

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "cpu_model": _cpu_model(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="audio length per measurement")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    s = FrameSettings()
    y = test_signal(args.seconds)
    yf = y.astype(np.float32) / 32768
    stft, source, _ = _stft_method()
    frame_features(y[: s.sample_rate], s)  # build the tables once (mel filters, matrices)

    # Interleave kernel and reference so both see the same load; keep the best of each.
    rates = {"stft": 0.0, "frames": 0.0}
    for _ in range(args.repeats):
        rates["stft"] = max(rates["stft"], best_rate(lambda: stft(yf), args.seconds, 1))
        rates["frames"] = max(rates["frames"], best_rate(lambda: frame_features(y, s), args.seconds, 1))
    sweep = {k: best_rate(lambda: frame_features(y, s, frames_per_call=k), args.seconds, max(2, args.repeats // 2))
             for k in (64, 128, 256, 512, 1024, 4096)}

    frames = frame_features(y, s)
    sets = ("spectral", "channel")
    starts, stops = [], []
    for L in CLIP_LENGTHS:
        n = int(round(L * s.sample_rate))
        st = C.fixed_clips(0, y.size, n)
        starts.append(st)
        stops.append(st + n)
    f0, f1 = C.clip_frame_range(np.concatenate(starts), np.concatenate(stops), s)
    keys = ["mean", "std"] + [f"p{q:g}" for q in fsets.needs_percentiles(sets)]
    cols = C.used_columns(lambda st: np.concatenate([fsets.from_frame_stats(n, st, s) for n in sets], axis=1),
                          len(s.feature_names), keys)

    def aggregate():
        stats = C.reduce_frames(frames, f0, f1, percentiles=fsets.needs_percentiles(sets), columns=cols)
        return [fsets.from_frame_stats(n, stats, s) for n in sets]

    aggregate()  # compile the numba kernels (cached on disk after the first run)
    clip_rate = best_rate(aggregate, args.seconds, args.repeats)

    thesis_s = min(20.0, args.seconds)
    n1 = s.sample_rate
    thesis_rate = best_rate(lambda: [fsets.thesis_features(y[a : a + n1], s.sample_rate)
                                     for a in range(0, int(thesis_s * s.sample_rate) - n1 + 1, n1)], thesis_s, 2)

    # imported here: bench_features.py loads this module on workers running older pipeline code too
    from pipeline.features.thesis_frames import thesis_clip_features

    all_starts, all_stops = np.concatenate(starts), np.concatenate(stops)
    thesis_clip_features(y[: 2 * s.sample_rate], 0, [0], [s.sample_rate], s.sample_rate)  # compile
    thesis8_rate = best_rate(lambda: thesis_clip_features(y, 0, all_starts, all_stops, s.sample_rate),
                             args.seconds, max(1, args.repeats // 2))

    res = {
        "machine": machine(), "stft_reference": source, "audio_seconds": args.seconds,
        "frames_per_call_default": FRAMES_PER_CALL,
        "stft_x_realtime": round(rates["stft"]), "frames_x_realtime": round(rates["frames"]),
        "frames_over_stft": round(rates["frames"] / rates["stft"], 3),
        "frames_per_call_sweep": {k: round(v) for k, v in sweep.items()},
        "clips_8_lengths_x_realtime": round(clip_rate), "n_clips": int(f0.size),
        "clips_over_frames": round(rates["frames"] / clip_rate, 3),
        "thesis_set_1s_clips_x_realtime": round(thesis_rate, 1),
        "thesis_set_8_lengths_at_once_x_realtime": round(thesis8_rate, 1),
    }
    print(f"machine: {res['machine']['cpu_model']}, {res['machine']['cores']} cores, load {res['machine']['load_avg']}")
    print(f"reference: {source}")
    print(f"| measurement (one core, {args.seconds:g} s of 48 kHz audio) | x real time |")
    print("|---|---|")
    print(f"| plain scipy STFT power | {res['stft_x_realtime']} |")
    print(f"| frame_features (all {len(s.feature_names)} frame features) | {res['frames_x_realtime']} "
          f"({100 * res['frames_over_stft']:.0f} % of STFT) |")
    for k, v in res["frames_per_call_sweep"].items():
        print(f"| frame_features, frames_per_call={k} | {v} |")
    print(f"| clip aggregation, 8 lengths, spectral+channel ({f0.size} clips) | {res['clips_8_lengths_x_realtime']} "
          f"(+{100 * res['clips_over_frames']:.0f} % on the frame pass) |")
    print(f"| thesis set (librosa per clip), 1 s clips | {res['thesis_set_1s_clips_x_realtime']} |")
    print(f"| thesis set, 8 lengths, all clips at once ({f0.size} clips) | "
          f"{res['thesis_set_8_lengths_at_once_x_realtime']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
