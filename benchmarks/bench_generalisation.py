#!/usr/bin/env python3
"""Does the fingerprint hold on recordings nobody tuned it to? (issue 20)

Builds (or reuses) sources folders of real recorded speech and music from installed Debian
packages (``benchmarks/corpus``; run ``benchmarks/corpus/install.sh`` once), simulates three
corpora of two days each and runs the default path a user runs, through the CLI:

- ``dev``: the tuning studio (10 microphones, 3 + 2 units of two models), dev content, positions rotated;
- ``heldout``: the held-out studio (9 microphones, a pair of one model, another room), held-out
  content (other languages, speakers and tracks), positions rotated between the days;
- ``heldout-fixed``: the same with positions fixed (the thesis's set-up).

Per corpus: ``micfp simulate --studio ... --sources ...`` (or ``--format wav`` + ``micfp ingest``
with ``--via wav``) -> ``micfp features`` (defaults) -> ``micfp evaluate --protocol session``
(defaults: no classifier named). It prints, for 2-s clips, each method of the grid and the one the
report quotes: overall accuracy, and accuracy on each identical-model group (the share of the
group's clips predicted as the right unit, from the confusion matrix in ``results.zarr``), and
whole-file accuracies if the results carry them.

Usage::

    python benchmarks/bench_generalisation.py OUT [--minutes 4] [--workers 2] [--seed 0] [--via zarr|wav]
        [--corpora dev,heldout,heldout-fixed] [--compare micfp_et,micfp_svc] [--forensic]
        [--json OUT/generalisation.json]

``--forensic`` adds issue 21's protocols on the same cubes: ``enrolled-verification`` with the
default model, and ``verification`` and ``open-set`` with the score model on ``channel`` and
``session-relative`` features; EER with its interval, Cllr, min-Cllr and the identical-model
group's EER and Cllr per cell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "corpus"))

#: corpus name -> (studio, content split, position policy)
CORPORA = {"dev": ("dev", "dev", "rotate"), "heldout": ("heldout", "heldout", "rotate"),
           "heldout-fixed": ("heldout", "heldout", "fixed")}
CLIP_S = 2.0


def micfp(*args: str, workers: int) -> float:
    """Run one ``micfp`` command (this checkout's package) and return its wall time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    if args[0] in ("simulate", "ingest", "features", "evaluate"):
        cmd += ["--workers", str(workers)]
    print("$ micfp " + " ".join(args), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t


def run_corpus(name: str, out: Path, sources: Path, args) -> dict:
    """Simulate, features, evaluate one corpus (steps already done are skipped); returns timings."""
    studio, _, positions = CORPORA[name]
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    store, cube, evaluation = d / "audio.zarr", d / "cube.zarr", d / "evaluate"
    minutes = f"{args.minutes:g},{args.minutes:g}"
    sim = ["--studio", studio, "--positions", positions, "--sources", str(sources),
           "--minutes-per-session", minutes, "--seed", str(args.seed)]
    times = {}
    if not (evaluation / "results.zarr").exists():
        if args.via == "wav":
            times["simulate_s"] = micfp("simulate", str(d / "wav"), "--format", "wav", *sim, workers=args.workers)
            times["ingest_s"] = micfp("ingest", str(d / "wav"), str(store), workers=args.workers)
        else:
            times["simulate_s"] = micfp("simulate", str(store), *sim, workers=args.workers)
        times["features_s"] = micfp("features", str(store), str(cube), workers=args.workers)
        extra = [] if args.report else ["--no-report"]
        times["evaluate_s"] = micfp("evaluate", str(cube), str(evaluation), "--protocol", "session", *extra,
                                    workers=args.workers)
    if args.compare and not (d / "compare" / "results.zarr").exists():
        times["compare_s"] = micfp("evaluate", str(cube), str(d / "compare"), "--protocol", "session",
                                   "--classifiers", args.compare, "--feature-set", args.compare_sets,
                                   "--clip-seconds", f"{CLIP_S:g}", "--no-report", workers=args.workers)
    if args.forensic and not (d / "forensic" / "results.zarr").exists():
        # issue 21: the casework protocol on the default model, then the score model's protocols (microphones it
        # never saw) on the single-recording and the session-relative features
        times["enrolled_s"] = micfp("evaluate", str(cube), str(d / "enrolled"), "--protocol", "enrolled-verification",
                                    "--clip-seconds", f"{CLIP_S:g}", "--no-report", workers=args.workers)
        times["forensic_s"] = micfp("evaluate", str(cube), str(d / "forensic"), "--protocol", "verification,open-set",
                                    "--feature-set", "channel,session-relative", "--clip-seconds", f"{CLIP_S:g}",
                                    "--no-report", workers=args.workers)
    return times


#: The forensic results of :func:`summarise_forensic`, per cell.
FORENSIC_VARIABLES = ("eer", "eer_lo", "eer_hi", "cllr", "min_cllr", "eer_identical", "cllr_identical",
                      "n_target", "n_nontarget")


def summarise_forensic(name: str, d: Path) -> list[dict]:
    """Every clean forensic cell over all sound types of a corpus's ``enrolled`` and ``forensic`` results
    (:func:`pipeline.report.forensic.forensic_frame`): its axes and metrics."""
    from pipeline.artifacts.results import open_results
    from pipeline.report.forensic import forensic_frame

    rows = []
    for sub in ("enrolled", "forensic"):
        df = forensic_frame(open_results(d / sub / "results.zarr"))
        df = df[(df.get("condition", "clean") == "clean") & (df["sound_type"] == "all")]
        for r in df.to_dict("records"):
            rows.append({"corpus": name, "protocol": str(r["protocol"]), "feature_set": str(r["feature_set"]),
                         "classifier": str(r["classifier"]), **{k: float(r[k]) for k in FORENSIC_VARIABLES if k in r}})
    return rows


def print_forensic(rows: list[dict]) -> None:
    print("\n== forensic protocols (2-s clips, train day1, trials with day2)")
    print(f"  {'corpus':14s} {'protocol':22s} {'features':18s} {'model':12s} {'EER [95% CI]':>20s} {'Cllr':>6s} "
          f"{'minCllr':>7s} {'EER id.':>7s} {'Cllr id.':>8s}")
    for r in rows:
        print(f"  {r['corpus']:14s} {r['protocol']:22s} {r['feature_set']:18s} {r['classifier']:12s} "
              f"{r['eer']:6.3f} [{r['eer_lo']:.3f}-{r['eer_hi']:.3f}] {r['cllr']:6.3f} {r['min_cllr']:7.3f} "
              f"{r['eer_identical']:7.3f} {r['cllr_identical']:8.3f}")


def _cell(ds, **sel):
    """The values of one cell (dimensions the results set does not have are ignored)."""
    return ds.sel({k: v for k, v in sel.items() if k in ds.dims})


def summarise(name: str, results_path: Path, quote: bool = True) -> dict:
    """Per method at 2-s clips: accuracy, each identical-model group's accuracy; the quoted method."""
    from pipeline.artifacts.results import open_results
    from pipeline.report.analysis import cells_frame, choose_methods
    from pipeline.simulate.studios import STUDIOS

    ds = open_results(results_path)
    studio = STUDIOS[CORPORA[name][0]]
    names = {m.label: m.name for m in studio.mics}
    groups = {model: [names[k] for k in labels] for model, labels in studio.model_groups().items()}
    df = cells_frame(ds) if "condition" in ds.dims else None
    quoted = choose_methods(df, "session")["improved"] if df is not None and quote else None
    clip = float(ds["clip_seconds"].values[np.argmin(np.abs(ds["clip_seconds"].values - CLIP_S))])
    rows = []
    for fs in ds["feature_set"].values:
        for clf in ds["classifier"].values:
            c = _cell(ds, clip_seconds=clip, sound_type="all", feature_set=fs, classifier=clf, protocol="session",
                      condition="clean")
            acc = float(c["accuracy"])
            if not np.isfinite(acc):
                continue
            conf = c["confusion"]
            row = {"method": f"{fs} + {clf}", "quoted": (str(fs), str(clf)) == tuple(quoted or ()),
                   "accuracy": acc, "n_test": int(c["n_test"]), "groups": {}}
            for model, members in groups.items():
                sub = conf.sel(true_mic=members)
                total = float(sub.sum())
                right = float(sum(sub.sel(true_mic=m, pred_mic=m) for m in members))
                row["groups"][model] = right / total if total else float("nan")
            # Whole-file accuracy by file length (issue 20, item 5): contiguous runs of the test clips
            if "file_accuracy" in ds:
                fa = _cell(ds["file_accuracy"], clip_seconds=clip, sound_type="all", feature_set=fs, classifier=clf,
                           protocol="session", condition="clean")
                row["files"] = {f"{float(k):g} s": float(v) for k, v in zip(fa["file_seconds"].values, fa.values)
                                if np.isfinite(v)}
            rows.append(row)
    rows.sort(key=lambda r: -r["accuracy"])
    return {"corpus": name, "studio": studio.name, "positions": CORPORA[name][2], "clip_seconds": clip,
            "groups": groups, "methods": rows}


def print_summary(s: dict, title: str = "") -> None:
    print(f"\n== {s['corpus']}{title}: studio {s['studio']}, positions {s['positions']}, {s['clip_seconds']:g}-s clips, "
          f"session protocol (train day1, test day2)")
    gnames = list(s["groups"])
    print("  groups: " + "; ".join(f"{g} = {len(m)} units" for g, m in s["groups"].items()))
    head = f"  {'method':32s} {'accuracy':>8s} " + " ".join(f"{g[:22]:>22s}" for g in gnames)
    print(head)
    for r in s["methods"]:
        mark = " *" if r["quoted"] else "  "
        line = f"{mark}{r['method']:32s} {r['accuracy']:8.3f} " + " ".join(f"{r['groups'][g]:22.3f}" for g in gnames)
        if r.get("files"):
            line += "  files: " + ", ".join(f"{k} {v:.3f}" for k, v in r["files"].items())
        print(line)
    if not any("files" in r for r in s["methods"]):
        print("  (whole files: not in results.zarr)")
    if any(r["quoted"] for r in s["methods"]):
        print("  * = the method the report quotes (the default path's answer)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="work folder (sources, corpora, results); reused when run again")
    p.add_argument("--minutes", type=float, default=4.0, help="minutes per microphone and session (default 4)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--via", choices=["zarr", "wav"], default="zarr",
                   help="zarr: simulate straight into an audio store; wav: simulate WAV + mics.csv, then ingest")
    p.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated subset of " + ", ".join(CORPORA))
    p.add_argument("--source-minutes", type=float, default=20.0, help="minutes of real content per sound type")
    p.add_argument("--report", action="store_true", help="also write the report (not needed for the numbers)")
    p.add_argument("--compare", default="", metavar="CLF[,CLF...]",
                   help="also evaluate these classifiers (not the default path; e.g. micfp_et,micfp_svc)")
    p.add_argument("--compare-sets", default="channel,spectral", metavar="SET[,SET...]",
                   help="feature sets for --compare (default channel,spectral)")
    p.add_argument("--forensic", action="store_true",
                   help="also run the forensic protocols (issue 21): enrolled-verification with the default model, "
                        "verification and open-set with the score model on channel and session-relative features")
    p.add_argument("--json", type=Path, default=None, help="write the numbers here (default OUT/generalisation.json)")
    args = p.parse_args(argv)

    from build_sources import build

    out = args.out.resolve()
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = [c for c in corpora if c not in CORPORA]
    if unknown:
        p.error(f"unknown corpus {unknown[0]!r}; expected some of {', '.join(CORPORA)}")
    summaries, compared, forensic, timings = [], [], [], {}
    for name in corpora:
        split = CORPORA[name][1]
        sources = build(out / "sources" / split, split, args.source_minutes, args.seed)
        timings[name] = run_corpus(name, out, sources, args)
        summaries.append(summarise(name, out / name / "evaluate" / "results.zarr"))
        if args.compare:
            compared.append(summarise(name, out / name / "compare" / "results.zarr", quote=False))
        if args.forensic:
            forensic += summarise_forensic(name, out / name)
    for s in summaries:
        print_summary(s)
    for s in compared:
        print_summary(s, " (compared, not the default path)")
    if forensic:
        print_forensic(forensic)
    path = args.json or out / "generalisation.json"
    # the arguments that shape the numbers; the work folder and the JSON path are this machine's, not the run's
    shown = {k: str(v) for k, v in vars(args).items() if k not in ("out", "json")}
    path.write_text(json.dumps({"args": shown, "timings": timings,
                                "results": summaries, "compared": compared, "forensic": forensic},
                                indent=1))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
