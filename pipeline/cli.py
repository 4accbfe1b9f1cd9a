"""The ``micfp`` command line. Each command parses, validates, connects, then runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ConfigError, MicfpError


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _cluster_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="existing Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else a new local cluster)")
    g.add_argument("--workers", type=int, default=2, help="worker processes of a new local cluster (default 2)")
    g.add_argument("--memory-limit", default="auto", help="per-worker memory limit of a local cluster")


def _connect(args):
    from .cluster import ClusterSettings, connect

    return connect(ClusterSettings(scheduler=args.scheduler, workers=args.workers, memory_limit=args.memory_limit))


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="micfp", description="Which microphone recorded this audio?")
    parser.add_argument("--version", action="version", version=f"micfp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate a studio, ingest, features, evaluation, report")
    p.add_argument("--out", default="micfp-out", help="output folder (default ./micfp-out)")
    p.add_argument("--scale", choices=["tiny", "small", "thesis"], default="small")
    p.add_argument("--seed", type=int, default=0)
    _cluster_args(p)

    p = sub.add_parser("simulate", help="the simulated recording studio")
    p.add_argument("out", help="Zarr audio store (or folder, with --format wav)")
    p.add_argument("--format", choices=["zarr", "wav"], default="zarr")
    p.add_argument("--minutes-per-session", type=_floats, default=(3.0, 1.5),
                   help="one number for all sessions or one per session (default 3,1.5)")
    p.add_argument("--sessions", type=int, default=None, help="number of sessions (default: from the minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sources", default=None, help="folder of real recordings (sub-folder name = sound type)")
    _cluster_args(p)

    p = sub.add_parser("features", help="compute the feature cube of an audio store")
    p.add_argument("store")
    p.add_argument("cube")
    p.add_argument("--feature-set", type=_names, default=("all",), help="thesis, spectral, channel or all")
    p.add_argument("--clip-seconds", type=_floats, default=(0.5, 1.0, 2.0))
    p.add_argument("--segmentation", type=_names, default=("fixed",), help="fixed and/or silence")
    _cluster_args(p)

    p = sub.add_parser("evaluate", help="train and score classifiers on a cube")
    p.add_argument("cube")
    p.add_argument("out", help="report folder")
    p.add_argument("--protocol", type=_names, default=("session",))
    p.add_argument("--classifiers", type=_names, default=None, help="default: the thesis's eight and micfp_lr")
    p.add_argument("--feature-set", type=_names, default=None, help="default: thesis for the thesis's "
                   "classifiers, channel for micfp_lr")
    p.add_argument("--clip-seconds", type=_floats, default=(2.0,))
    p.add_argument("--sound-type", type=_names, default=("all",))
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the CIs")
    _cluster_args(p)

    p = sub.add_parser("info", help="describe an audio store, a feature cube or a results set")
    p.add_argument("path")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command](args) or 0)
    except MicfpError as exc:
        if args.debug:
            raise
        print(f"micfp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("micfp: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback, unless --debug
        if args.debug:
            raise
        print(f"micfp: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def cmd_demo(args) -> int:
    from .demo import run_demo

    with _connect(args) as client:
        run_demo(Path(args.out), args.scale, client, seed=args.seed)
    return 0


def cmd_simulate(args) -> int:
    from .simulate import StudioPlan

    minutes = tuple(args.minutes_per_session)
    if args.sessions:
        minutes = (minutes * args.sessions)[: args.sessions] if len(minutes) == 1 else minutes
        if len(minutes) != args.sessions:
            raise ConfigError(f"--sessions {args.sessions} does not match --minutes-per-session {minutes}")
    if any(m <= 0 for m in minutes):
        raise ConfigError(f"--minutes-per-session must be positive, got {minutes}")
    plan = StudioPlan(minutes_per_session=minutes, seed=args.seed, sources=args.sources)
    with _connect(args) as client:
        if args.format == "wav":
            from .simulate.writer import simulate_to_wav

            simulate_to_wav(plan, args.out, client)
        else:
            from .simulate.writer import simulate_to_store

            simulate_to_store(plan, args.out, client)
    print(f"wrote {args.out}")
    return 0


def cmd_features(args) -> int:
    from .features import FeatureConfig, compute_cube
    from .store import AudioStore

    config = FeatureConfig(feature_sets=args.feature_set, clip_seconds=args.clip_seconds,
                           segmentations=args.segmentation)
    config.check_store(AudioStore.open(args.store))
    with _connect(args) as client:
        cube = compute_cube(args.store, args.cube, config, client)
    print(f"wrote {args.cube}: {cube.sizes['clip']} clips x {cube.sizes['feature']} features")
    return 0


def default_cells(clip_seconds, sound_types, protocols, classifiers=None, feature_sets=None):
    """The evaluation grid of ``micfp evaluate``/``demo``: thesis features for the thesis's
    classifiers and channel features for ``micfp_lr`` unless feature sets are given."""
    from .evaluate import CLASSIFIERS, THESIS_CLASSIFIERS, Cell

    classifiers = tuple(classifiers or CLASSIFIERS)
    cells = []
    for clip in clip_seconds:
        for st in sound_types:
            for prot in protocols:
                for clf in classifiers:
                    sets = feature_sets or (("thesis",) if clf in THESIS_CLASSIFIERS else ("channel",))
                    cells += [Cell(float(clip), st, fs, clf, prot) for fs in sets]
    return cells


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, results_dataset
    from .features import open_cube
    from .report import summary_table, write_report

    cells = default_cells(args.clip_seconds, args.sound_type, args.protocol, args.classifiers, args.feature_set)
    cube = open_cube(args.cube)
    mics = {int(k): v for k, v in cube.attrs["micfp"]["mics"].items()}
    with _connect(args) as client:
        results = evaluate(args.cube, cells, client, n_boot=args.bootstrap)
    out = Path(args.out)
    write_report(results, mics, out)
    save_results(results_dataset(results, mics), out / "results.zarr")
    print(summary_table(results))
    print(f"report: {out}")
    return 0


def save_results(ds, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification.*")
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)


def cmd_info(args) -> int:
    import zarr

    path = args.path
    try:
        g = zarr.open_group(path, mode="r")
    except Exception as exc:
        raise MicfpError(f"{path}: not a Zarr store micfp can read: {exc}") from exc
    kind = g.attrs.get("micfp", {}).get("kind")
    if kind == "micfp-audio-store":
        from .store import AudioStore

        store = AudioStore.open(path, require_complete=False)
        meta = store.meta
        print(f"audio store {path}: {'complete' if meta.get('complete') else 'INCOMPLETE'}, "
              f"{store.sample_rate} Hz")
        print(store.describe().to_string(index=False))
        for session, rows in sorted(meta.get("segments", {}).items()):
            types = sorted({r[2] for r in rows})
            print(f"session {session}: {len(rows)} segments, sound types: {', '.join(types)}")
    elif kind == "micfp-feature-cube":
        from .features import open_cube

        cube = open_cube(path, require_complete=False)
        meta = cube.attrs["micfp"]
        print(f"feature cube {path}: {'complete' if meta.get('complete') else 'INCOMPLETE'}, "
              f"{cube.sizes['clip']} clips x {cube.sizes['feature']} features")
        df = cube.drop_vars("features").reset_coords()[["mic", "session", "sound_type", "clip_seconds",
                                                         "segmentation"]].to_dataframe()
        print(df.groupby(["session", "sound_type", "clip_seconds"]).size().unstack(fill_value=0).to_string())
        print("feature sets: " + ", ".join(f"{k} ({v})" for k, v in
                                           cube.feature_set.to_series().value_counts().sort_index().items()))
    elif kind == "micfp-results":
        import xarray as xr

        ds = xr.open_zarr(path, consolidated=False)
        print(f"results set {path}: " + ", ".join(f"{d}={ds.sizes[d]}" for d in ds.dims))
        print(ds["accuracy"].to_dataframe().dropna().to_string())
    else:
        raise MicfpError(f"{path}: not a micfp store, cube or results set (kind={kind!r})")
    return 0


COMMANDS = {"demo": cmd_demo, "simulate": cmd_simulate, "features": cmd_features, "evaluate": cmd_evaluate,
            "info": cmd_info}

if __name__ == "__main__":
    sys.exit(main())
