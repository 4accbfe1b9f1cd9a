"""``micfp demo``: the whole pipeline on a simulated studio, end to end on the cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

#: Minutes per session (day 1 trains, day 2 tests) of each demo scale.
SCALES = {"tiny": (1.5, 1.0), "small": (4.0, 2.0), "thesis": (360.0, 90.0)}
DEMO_CLIP_SECONDS = 2.0


def check_demo_output(out) -> Path:
    """Check that micfp may write the demo's folder ``out`` (new, empty or an earlier demo's)."""
    from ..artifacts.outputs import RUN_KIND, check_output

    return Path(check_output(out, RUN_KIND, what="demo output folder"))


def run_demo(out: Path, scale: str, client, *, seed: int = 0, echo=None, n_boot: int = 500) -> dict:
    """Simulate, compute features, evaluate under the session protocol and write the report.

    Re-running into the same ``out`` resumes: finished shards and frame blocks are reused.
    Returns a dict with the results and the paths written.
    """
    from ..artifacts.results import save_results
    from ..evaluation.grid import default_cells
    from ..evaluation.evaluate import evaluate, results_dataset
    from ..features import FeatureConfig, compute_cube
    from ..report.files import summary_table, write_report
    from ..simulate import StudioPlan
    from ..simulate.writer import simulate_to_store

    echo = echo or (lambda m: print(m, flush=True))
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    from ..artifacts.outputs import RUN_KIND, mark_folder

    out = check_demo_output(out)
    mark_folder(out, RUN_KIND)
    timings = {}

    t = time.perf_counter()
    plan = StudioPlan(minutes_per_session=SCALES[scale], seed=seed)
    echo(f"[1/4] simulating the studio: 5 microphones, sessions {', '.join(plan.sessions)} "
         f"({' + '.join(f'{m:g}' for m in plan.minutes_per_session)} min per microphone)")
    store = simulate_to_store(plan, str(out / "audio.zarr"), client)
    timings["simulate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    echo("[2/4] feature cube (frames once per recording, then clips)")
    config = FeatureConfig(feature_sets=("all",), clip_seconds=(DEMO_CLIP_SECONDS,))
    cube = compute_cube(store.path, str(out / "cube.zarr"), config, client)
    timings["features_s"] = time.perf_counter() - t

    t = time.perf_counter()
    echo(f"[3/4] training and scoring under the session protocol (train {plan.sessions[0]}, test the rest)")
    cells = default_cells((DEMO_CLIP_SECONDS,), ("all",), ("session",))
    results = evaluate(str(out / "cube.zarr"), cells, client, n_boot=n_boot)
    timings["evaluate_s"] = time.perf_counter() - t

    echo("[4/4] report")
    mics = store.mics
    paths = write_report(results, mics, out / "report",
                         extra={"scale": scale, "seed": seed, "timings": timings,
                                "clips": int(cube.sizes["clip"]), "features": int(cube.sizes["feature"])})
    save_results(results_dataset(results, mics), out / "report" / "results.zarr")
    table = summary_table(results)
    (out / "report" / "summary.txt").write_text(table + "\n")
    echo("")
    echo(table)
    echo(f"\nreport: {out / 'report'} ({len(paths['figures'])} figures); timings: "
         + json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return {"results": results, "paths": paths, "timings": timings}

