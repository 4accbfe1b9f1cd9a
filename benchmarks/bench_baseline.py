#!/usr/bin/env python3
"""The thesis's way, for the speed-up: sequential, file by file, one process.

For each WAV file of a thesis-layout folder (``<root>/<session>/<prefix>-<N>.wav``):

1. split on silence with pydub's ``split_on_silence`` (min silence 1.1 s, threshold -60 dBFS,
   silence not kept), as the thesis did;
2. per piece: resample to 22,050 Hz the way ``librosa.load`` does and take the thesis's 22
   features (mean of 20 MFCCs, ZCR, RMS) with :func:`pipeline.features.sets.thesis_features`
   (the same code the ``thesis`` feature set uses, checked against librosa by the tests).

Prints x real time for the split, the features and the whole. ``--minutes M`` uses the first
M minutes of each file (the baseline is slow: measure a subset and say so).

Needs ``pydub`` (benchmarks only). Usage::

    python benchmarks/bench_baseline.py WAV_DIR [--minutes 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wav_dir")
    ap.add_argument("--minutes", type=float, default=0.0, help="first M minutes of each file (0 = all)")
    ap.add_argument("--min-silence-ms", type=int, default=1100)
    ap.add_argument("--silence-thresh", type=float, default=-60.0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydub warns that ffmpeg is missing; WAV needs none
        from pydub import AudioSegment
        from pydub.silence import split_on_silence

    from pipeline.features.sets import thesis_features

    files = sorted(Path(args.wav_dir).glob("*/*.wav"))
    if not files:
        raise SystemExit(f"{args.wav_dir}: no <session>/*.wav files")
    audio_s = split_s = feat_s = 0.0
    n_clips = 0
    t_all = time.perf_counter()
    for path in files:
        t = time.perf_counter()
        seg = AudioSegment.from_wav(path)
        if args.minutes:
            seg = seg[: int(args.minutes * 60000)]
        pieces = split_on_silence(seg, min_silence_len=args.min_silence_ms, silence_thresh=args.silence_thresh,
                                  keep_silence=False)
        split_s += time.perf_counter() - t
        t = time.perf_counter()
        for p in pieces:
            y = np.array(p.get_array_of_samples(), dtype=np.int16)
            thesis_features(y, p.frame_rate)
            n_clips += 1
        feat_s += time.perf_counter() - t
        audio_s += seg.duration_seconds
        print(f"  {path.relative_to(args.wav_dir)}: {seg.duration_seconds:.0f} s, {len(pieces)} clips", flush=True)
    wall = time.perf_counter() - t_all
    res = {"machine": machine(), "files": len(files), "audio_s": round(audio_s, 1), "clips": n_clips,
           "wall_s": round(wall, 1), "x_realtime": round(audio_s / wall, 2),
           "split_x_realtime": round(audio_s / split_s, 2), "features_x_realtime": round(audio_s / feat_s, 2)}
    print(f"baseline: {res['audio_s']} s of audio in {res['wall_s']} s = {res['x_realtime']}x real time "
          f"(split {res['split_x_realtime']}x, features {res['features_x_realtime']}x), {n_clips} clips")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
