#!/usr/bin/env python3
"""Could the thesis set share frames between clips? Clip MFCC means from a shared grid vs librosa.

Issue 22 asks for the thesis set "at the speed of the spectrum" while keeping parity with
librosa on each clip (1e-3 relative). librosa frames a clip from the clip's own first sample,
and clip starts share no common frame grid at 22,050 Hz, so the exact set needs distinct frames
per clip start (about twice the FFTs of the plain STFT reference, ``benchmarks/README.md``). The
shortcut would be one frame grid per recording, with only the padded frames at each clip's ends
computed exactly. This measures how far that shortcut's clip means land from librosa's:

for clips of ``--lengths`` seconds cut from real recordings (every audio file under the given
folders, first ``--seconds`` of each, resampled to 22,050 Hz), the 20 MFCC means of
``librosa.feature.mfcc`` on the clip against the same means with the clip's 4 + 4 end frames
exact and every frame between them taken from the recording's own grid; with librosa's
``top_db=80`` floor (the thesis's call) and without it (to separate the floor, which depends on
the clip's loudest frame, from the framing). Prints the largest and median absolute
difference and the share of clips within the parity test's tolerance.

Usage::

    python benchmarks/bench_shared_grid.py DIR [DIR ...] [--lengths 2,10,30] [--seconds 120]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SR = 22050
HOP = 512
EDGE = 4  # frames at each end of a clip that reach into librosa's padding (n_fft 2048 = 4 hops)


def mfcc(y: np.ndarray, top_db: float | None) -> np.ndarray:
    import librosa

    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR), top_db=top_db)
    return librosa.feature.mfcc(S=S, n_mfcc=20)


def compare(y: np.ndarray, length_s: float, top_db: float | None) -> list[tuple[float, bool]]:
    """(largest absolute difference, within rtol 1e-3 / atol 1e-5) for clips of one recording."""
    grid = mfcc(y, top_db)  # frame t centred on sample t * HOP
    n = int(length_s * SR)
    out = []
    for s in range(1234, len(y) - n, max(n, 7 * SR) + 777):  # clip starts off the grid, spread out
        exact = mfcc(y[s : s + n], top_db)
        t0 = int(np.ceil((s + EDGE * HOP) / HOP))
        inner = exact.shape[1] - 2 * EDGE
        approx = (exact[:, :EDGE].sum(1) + exact[:, -EDGE:].sum(1) + grid[:, t0 : t0 + inner].sum(1)) / exact.shape[1]
        ref = exact.mean(1)
        d = np.abs(approx - ref)
        out.append((float(d.max()), bool((d <= 1e-3 * np.abs(ref) + 1e-5).all())))
    return out


def main(argv=None) -> int:
    import librosa

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="folders of audio files (searched recursively)")
    p.add_argument("--lengths", default="2,10,30", help="clip lengths, s (default 2,10,30)")
    p.add_argument("--seconds", type=float, default=120.0, help="audio read from each file (default 120)")
    p.add_argument("--files", type=int, default=2, help="files per folder (default 2)")
    args = p.parse_args(argv)
    files = [f for d in args.dirs for f in sorted(x for x in d.rglob("*") if x.suffix in (".flac", ".wav", ".ogg"))[
        : args.files]]
    if not files:
        p.error("no audio files under the given folders")
    signals = [librosa.load(f, sr=SR, duration=args.seconds)[0] for f in files]
    print(f"{len(files)} files, {sum(len(y) for y in signals) / SR:.0f} s at {SR} Hz")
    for top_db in (80.0, None):
        for length in (float(x) for x in args.lengths.split(",")):
            rows = [r for y in signals for r in compare(y, length, top_db)]
            d = np.array([r[0] for r in rows])
            ok = np.mean([r[1] for r in rows])
            print(f"top_db {top_db}, {length:g} s clips: {len(rows)} clips, largest |difference| of an MFCC mean "
                  f"{d.max():.3f} (median over clips {np.median(d):.3f}); within rtol 1e-3: {100 * ok:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
