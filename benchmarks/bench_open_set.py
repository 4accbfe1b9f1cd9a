#!/usr/bin/env python3
"""How much material the unknown-microphone detector needs: open-set EER by compared length.

The ``open-set`` protocol scores single clips. This runs its folds (each microphone left out of
training in turn; trained on the first session, tested on the others) with the same detector,
:class:`pipeline.identify.unknown.UnknownMicDetector`, and also scores blocks of ``n``
consecutive clips of one recording: each known microphone's squared distance averaged over the
block, the score minus the smallest average. Prints the pooled EER per block length and each
microphone's EER as the unknown one.

Usage::

    python benchmarks/bench_open_set.py CUBE [CUBE ...] [--feature-set session-relative]
        [--clip-seconds 2] [--blocks 1,5,15] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def block_scores(D: np.ndarray, meta: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of blocks of ``n`` consecutive clips of one recording, and the rows that start them."""
    order = meta.sort_values(["recording", "start_s"]).index.to_numpy()
    rec = meta["recording"].astype(str).to_numpy()[order]
    rank = pd.Series(rec).groupby(rec).cumcount().to_numpy()
    key = rec + "\x00" + (rank // n).astype(str)
    g = pd.DataFrame(D[order]).groupby(key, sort=False)
    full = (g.size() == n).to_numpy()
    first = pd.Series(order).groupby(key, sort=False).first().to_numpy()
    return -g.mean().to_numpy()[full].min(axis=1), first[full]


def run(cube_path: str, feature_set: str, clip_seconds: float, blocks: list[int]) -> dict:
    from pipeline.artifacts.cube import open_cube
    from pipeline.evaluation import forensic as fm
    from pipeline.evaluation.cell import Cell, select
    from pipeline.evaluation.forensic_cell import left_out_detectors, split_sessions

    X, meta = select(open_cube(cube_path), Cell(clip_seconds, "all", feature_set, "micfp_verify", "open-set"))
    X = np.asarray(X, dtype=np.float64)
    train, test, _ = split_sessions(meta)
    label = meta["label"].to_numpy()
    names = dict(zip(label, meta["mic"].astype(str)))
    tmeta = meta.iloc[test].reset_index(drop=True)
    scores = {n: [] for n in blocks}
    for k, detector in left_out_detectors(X, label, train, test):
        D = detector.distances(X[test])
        for n in blocks:
            s, rows = block_scores(D, tmeta, n)
            scores[n].append((k, s, label[test][rows] != k))
    out = {"cube": Path(cube_path).parent.name + "/" + Path(cube_path).name, "feature_set": feature_set,
           "clip_seconds": clip_seconds, "blocks": {}}
    for n, folds in scores.items():
        s = np.concatenate([f[1] for f in folds])
        known = np.concatenate([f[2] for f in folds])
        out["blocks"][str(n)] = {"seconds": n * clip_seconds, "eer": fm.eer(s, known), "n": int(s.size),
                                 "unknown_folds": {names[k]: fm.eer(f, kn) for k, f, kn in folds}}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cubes", nargs="+")
    p.add_argument("--feature-set", default="session-relative")
    p.add_argument("--clip-seconds", type=float, default=2.0)
    p.add_argument("--blocks", default="1,5,15", help="clips per compared block (comma-separated)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    blocks = [int(b) for b in a.blocks.split(",")]
    results = [run(c, a.feature_set, a.clip_seconds, blocks) for c in a.cubes]
    for r in results:
        for n, b in r["blocks"].items():
            worst = sorted(b["unknown_folds"].items(), key=lambda kv: -kv[1])
            print(f"{r['cube']:28s} {r['feature_set']} {b['seconds']:5.0f} s: open-set EER {b['eer']:.3f} "
                  f"({b['n']} blocks); per microphone: " + ", ".join(f"{m} {e:.2f}" for m, e in worst))
    if a.json:
        a.json.write_text(json.dumps({"args": {"feature_set": a.feature_set, "clip_seconds": a.clip_seconds,
                                               "blocks": blocks}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
