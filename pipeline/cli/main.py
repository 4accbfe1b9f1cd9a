"""The ``micfp`` command line. Each command parses, validates, connects, then runs."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..cluster.options import add_cluster_arguments as _cluster_args, connect_from_args as _connect
from ..errors import OUTPUT_ARGS, ConfigError, exit_status
from ..workflow.options import add_run_arguments
from .arguments import (AGGREGATIONS, CLASSIFIERS, DEFAULT_FEATURE_SETS, FEATURE_SETS, MIN_SILENCE_S, POSITION_POLICIES, PROTOCOLS,
                        SEGMENTATIONS, SILENCE_THRESHOLD_DB, STUDIOS, Parser, choice_list, finish, listing)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _clip_seconds(text: str) -> tuple[float, ...]:
    from ..features import clip_lengths

    try:
        return clip_lengths.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    parser = Parser(prog="micfp", description="Which microphone recorded this audio?",
                    epilog="examples:\n  micfp demo\n  micfp features --help")
    parser.add_argument("--version", action="version", version=f"micfp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="simulate a studio into a Zarr store, features, evaluation, report")
    p.add_argument("--out", default="micfp-out", help="output folder")
    p.add_argument("--scale", choices=["tiny", "small", "thesis"], default="small",
                   help="size of the simulated studio: tiny for a quick look, small for a few minutes' run, thesis "
                        "for the thesis's hours of audio")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated studio")
    p.add_argument("--no-report", action="store_true", help="skip the report files and the HTML report")
    _cluster_args(p)

    p = sub.add_parser("simulate", help="the simulated recording studio")
    p.add_argument("out", help="Zarr audio store to write (or a folder, with --format wav)")
    p.add_argument("--format", choices=["zarr", "wav"], default="zarr",
                   help="zarr: an audio store for `micfp features`; wav: the thesis's folder layout")
    p.add_argument("--minutes-per-session", type=_floats, default=(3.0, 1.5), metavar="M[,M...]",
                   help="minutes per microphone: one number for all sessions or one per session")
    p.add_argument("--sessions", type=int, default=None, help="number of sessions (default: from the minutes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the programme and the room")
    p.add_argument("--sources", default=None, metavar="DIR",
                   help="folder of real recordings to play (sub-folder name = sound type); default: synthetic "
                        "sounds")
    p.add_argument("--studio", choices=STUDIOS, default="thesis",
                   help="microphones and room: thesis (the thesis's five), dev (ten others, the tuning studio), "
                        "heldout (nine more in a third room, kept out of tuning)")
    p.add_argument("--positions", choices=POSITION_POLICIES, default=None,
                   help="rotate: microphones change places between sessions; fixed: they keep them (the thesis's "
                        "set-up); default: the studio's (rotate)")
    _cluster_args(p)

    p = sub.add_parser("ingest", help="recordings (WAV/FLAC/OGG folders or a manifest) into a Zarr audio store")
    p.add_argument("src", help="recording folder (thesis layout or a tree) or a manifest CSV")
    p.add_argument("store", help="Zarr audio store to create or resume")
    p.add_argument("--layout", choices=["auto", "kaggle", "manifest", "tree"], default="auto",
                   help="kaggle: SRC/<session>/<prefix>-<N>.wav; manifest: a CSV; tree: --pattern; auto: guess")
    p.add_argument("--manifest", metavar="CSV", help="manifest CSV with path,mic,session[,sound_type,start_s,end_s]")
    p.add_argument("--resample", type=int, metavar="HZ", help="resample every file to HZ (needed for mixed rates)")
    p.add_argument("--channel", type=_channel, metavar="K|each",
                   help="channel of multi-channel files to keep (0-based), or 'each' for one recording per channel")
    p.add_argument("--pattern", metavar="REGEX", help="tree layout: regex on the relative path with groups "
                   "(?P<mic>...) and optionally (?P<session>...)")
    p.add_argument("--align", choices=["shortest", "keep"], default=None,
                   help="files of one session with different lengths: cut to the shortest or keep each length "
                        "(default: cut to the shortest, but refuse a file shorter than half its session's longest)")
    p.add_argument("--root-only", action="store_true",
                   help="refuse files outside SRC's folder (a manifest's folder), links followed; by default a "
                        "manifest may name files anywhere")
    _cluster_args(p)

    p = sub.add_parser("features", help="compute the feature cube of an audio store")
    p.add_argument("store", help="audio store (from `micfp ingest` or `micfp simulate`)")
    p.add_argument("cube", help="feature cube to write (Zarr; an existing micfp cube is replaced)")
    p.add_argument("--feature-set", type=choice_list(FEATURE_SETS, "feature set"), default=DEFAULT_FEATURE_SETS,
                   metavar="SET[,SET...]", help=f"feature sets to compute: {listing(FEATURE_SETS)} "
                   f"(default: {','.join(DEFAULT_FEATURE_SETS)})")
    p.add_argument("--clip-seconds", type=_clip_seconds, default=(0.5, 1.0, 2.0), metavar="S[,S...]",
                   help="lengths of the fixed clips, seconds")
    p.add_argument("--segmentation", type=choice_list(SEGMENTATIONS, "segmentation"), default=("fixed",),
                   metavar="SEG[,SEG...]", help="fixed: consecutive clips of each length; silence: the thesis's "
                   "split of each recording on its silences, clip length 0 in the cube")
    p.add_argument("--silence-threshold-db", type=float, default=None, metavar="DB",
                   help=f"with --segmentation silence: frames quieter than DB dBFS RMS are silence "
                        f"(default {SILENCE_THRESHOLD_DB:g}; the thesis used -55 to -80)")
    p.add_argument("--min-silence-s", type=float, default=None, metavar="S",
                   help=f"with --segmentation silence: only silences of at least S seconds split "
                        f"(default {MIN_SILENCE_S:g}; the thesis used 1.1 to 1.4)")
    _cluster_args(p)

    p = sub.add_parser("evaluate", help="train and score classifiers on a cube")
    p.add_argument("cube", help="feature cube (from `micfp features`)")
    p.add_argument("out", help="report folder to write (metrics, figures, results.zarr)")
    p.add_argument("--protocol", type=choice_list(PROTOCOLS, "protocol"), default=("session",),
                   metavar="P[,P...]", help=f"evaluation protocols: {listing(PROTOCOLS)}")
    p.add_argument("--classifiers", type=choice_list(CLASSIFIERS, "classifier"), default=None,
                   metavar="C[,C...]", help=f"any of {listing(CLASSIFIERS)} (default: the thesis's eight and "
                   "micfp_auto, which picks feature set and classifier by grouped CV of the training data)")
    p.add_argument("--feature-set", type=choice_list(FEATURE_SETS, "feature set"), default=None,
                   metavar="SET[,SET...]", help=f"any of {listing(FEATURE_SETS)} (default: thesis for the "
                   "thesis's classifiers, channel for the tuned micfp_* models, all (to choose from) for micfp_auto)")
    p.add_argument("--clip-seconds", type=_clip_seconds, default=(2.0,), metavar="S[,S...]",
                   help="clip lengths to evaluate, seconds; each must be in the cube")
    p.add_argument("--segmentation", type=choice_list(SEGMENTATIONS, "segmentation"), default=("fixed",),
                   metavar="SEG[,SEG...]", help="fixed: the --clip-seconds clips; silence: the cube's "
                   "silence-split clips (the thesis's own path; `micfp features --segmentation silence`)")
    p.add_argument("--sound-type", type=_names, default=("all",), metavar="T[,T...]",
                   help="all (every clip), or sound types of the cube (see `micfp info CUBE`; the simulator's: "
                        "sweep, lowfreq, music, speech1, speech2)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples for the confidence intervals")
    p.add_argument("--max-train-clips", type=int, default=None, metavar="N",
                   help="fit on at most N training clips per fold, a seeded subsample stratified by microphone x "
                        "sound type (default: all; test clips are never subsampled)")
    p.add_argument("--no-report", action="store_true", help="skip the report files and the HTML report")
    _cluster_args(p)

    _export_parser(sub)

    p = sub.add_parser("info", help="describe an audio store, a feature cube, a results set, a model file or a "
                                    "recordings folder")
    p.add_argument("path", help="audio store, feature cube, results set (results.zarr), model file (.skops), or a "
                                "recordings folder or manifest CSV (checked as `micfp ingest` would, nothing written)")

    p = sub.add_parser("train", help="fit, calibrate and save one model (skops file)")
    p.add_argument("cube", help="feature cube (from `micfp features`)")
    p.add_argument("model", help="output model file (.skops)")
    p.add_argument("--feature-set", choices=FEATURE_SETS, default=None,
                   help="features the model uses (micfp_auto: the sets it chooses among; default all for "
                        "micfp_auto, channel for a named classifier)")
    p.add_argument("--clip-seconds", type=float, default=2.0, help="clip length, seconds; must be in the cube")
    p.add_argument("--classifier", choices=CLASSIFIERS, default=None, metavar="NAME",
                   help=f"{listing(CLASSIFIERS)} (default: micfp_auto, feature set and classifier chosen by "
                        "grouped cross-validation of the training data)")
    p.add_argument("--sessions", type=_names, default=(), metavar="S[,S...]", help="training sessions (default "
                   "all); the others are predicted with ParallelPostFit and scored as held-out data")
    p.add_argument("--mics", type=_names, default=(), metavar="M[,M...]",
                   help="microphones to train on, names or labels (default all)")
    p.add_argument("--sound-type", default="all", help="all, or one sound type of the cube to train on")
    p.add_argument("--accept-rate", type=float, default=0.99,
                   help="share of held-out known-microphone files the unknown threshold keeps")
    _cluster_args(p)

    p = sub.add_parser("identify", help="which microphone recorded each file")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG; any sample rate)")
    p.add_argument("--model", required=True, help="model file from `micfp train`")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="list the K most likely microphones")
    p.add_argument("--channel", type=int, default=0, help="channel of multi-channel files, 0-based")
    p.add_argument("--aggregate", choices=AGGREGATIONS, default="calibrated",
                   help="how clip probabilities make the file's: calibrated (summed log-probabilities with the "
                        "temperature learned at train time; default), mean-log (normalised geometric mean) or "
                        "vote (share of clips)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run one task per file on this Dask scheduler (default: here, no cluster)")

    p = sub.add_parser("verify", help="same microphone or not: a calibrated log10 likelihood ratio for two files")
    p.add_argument("a", metavar="A", help="first audio file (WAV, FLAC, OGG; any sample rate)")
    p.add_argument("b", metavar="B", help="second audio file")
    p.add_argument("--model", default="model.skops", help="model file from `micfp train`")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--channel", type=int, default=0, help="channel of multi-channel files, 0-based")

    p = sub.add_parser("run", help="run a workflow (a .toml config or a .py script from workflows/)")
    p.add_argument("workflow", help="workflow config or script, e.g. workflows/ablation.toml")
    add_run_arguments(p)

    p = sub.add_parser("report", help="figures and an HTML report from a results set")
    p.add_argument("results", help="a results set (results.zarr or results.nc)")
    p.add_argument("--html", default=None, help="the HTML file (default: report/index.html beside RESULTS)")
    p.add_argument("--cube", default=None, help="feature cube for the spectral signatures "
                   "(default: the one the results were computed from)")
    _cluster_parser(sub)
    sub.add_parser("warmup", help="compile micfp's numba kernels into its cache now: once after installing, and on "
                   "each worker host or image (otherwise the first command does it)")
    return finish(parser)


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="a cube's features as Parquet or CSV, one row per clip, for other tools")
    p.add_argument("cube", help="feature cube (from `micfp features`)")
    p.add_argument("out", help="OUT.parquet (a folder of Parquet files, one per partition) or OUT.csv (one file); "
                   "an existing micfp export is replaced, anything else refused")
    p.add_argument("--feature-set", type=choice_list(FEATURE_SETS, "feature set"), default=("all",),
                   metavar="SET[,SET...]", help=f"feature columns: {listing(FEATURE_SETS)}")
    p.add_argument("--clip-seconds", type=_clip_seconds, default=None, metavar="S[,S...]",
                   help="clip lengths to export, seconds; 0 for the silence-split clips (default: every length)")
    p.add_argument("--segmentation", type=choice_list(SEGMENTATIONS, "segmentation"), default=None,
                   metavar="SEG[,SEG...]", help=f"{listing(SEGMENTATIONS)} clips (default: both)")
    _cluster_args(p)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..logs import configure_logging

    configure_logging(args.debug)
    return exit_status(lambda: COMMANDS[args.command](args), debug=args.debug,
                       output=getattr(args, OUTPUT_ARGS.get(args.command, ""), None))


def cmd_demo(args) -> int:
    from ..workflow.demo import demo_workflow
    from ..workflow.script import run_config

    run_config(demo_workflow(args.out, args.scale, seed=args.seed), args, _connect)
    return 0


def cmd_simulate(args) -> int:
    from ..simulate import StudioPlan

    minutes = tuple(args.minutes_per_session)
    if args.sessions:
        minutes = (minutes * args.sessions)[: args.sessions] if len(minutes) == 1 else minutes
        if len(minutes) != args.sessions:
            raise ConfigError(f"--sessions {args.sessions} does not match --minutes-per-session {minutes}")
    if any(m <= 0 for m in minutes):
        raise ConfigError(f"--minutes-per-session must be positive, got {minutes}")
    from ..artifacts.locks import exclusive
    from ..artifacts.outputs import WAV_KIND, check_output, resolve
    from ..artifacts.store import STORE_KIND

    # Sources resolved here: the workers read them, maybe from another folder.
    plan = StudioPlan(minutes_per_session=minutes, seed=args.seed,
                      sources=resolve(args.sources) if args.sources else None,
                      studio=args.studio, positions=args.positions)
    check_output(args.out, WAV_KIND if args.format == "wav" else STORE_KIND, inputs=(args.sources,),
                 what="WAV corpus folder" if args.format == "wav" else "audio store")  # before a cluster starts
    with exclusive(args.out, what="audio store") if args.format == "zarr" else contextlib.nullcontext():
        with _connect(args) as client:  # locked first: a store in use is refused before a cluster starts
            if args.format == "wav":
                from ..simulate.writer import simulate_to_wav

                simulate_to_wav(plan, args.out, client)
            else:
                from ..simulate.writer import simulate_to_store

                simulate_to_store(plan, args.out, client)
    print(f"wrote {args.out}")
    return 0


def _channel(text: str) -> int | str:
    if text == "each":
        return text
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a channel index (0, 1, ...) or 'each', got {text!r}") from None
    if k < 0:
        raise argparse.ArgumentTypeError(f"channel index must be 0 or more, got {k}")
    return k


def cmd_ingest(args) -> int:
    from ..io.ingest import IngestSettings, ingest, plan_ingest

    settings = IngestSettings(layout=args.layout, manifest=args.manifest, resample=args.resample,
                              channel=args.channel, pattern=args.pattern, align=args.align,
                              root_only=args.root_only)
    from ..artifacts.locks import exclusive
    from ..artifacts.outputs import check_output
    from ..artifacts.store import STORE_KIND

    check_output(args.store, STORE_KIND, inputs=(args.src, args.manifest), what="audio store")
    plan = plan_ingest(args.src, settings)  # every file checked before a cluster starts or a byte is written
    with exclusive(args.store, what="audio store"), _connect(args) as client:
        report = ingest(args.src, args.store, client, settings, plan=plan)
    print(report.summary())
    return 0


def cmd_features(args) -> int:
    from ..artifacts.locks import exclusive, shared
    from ..artifacts.store import AudioStore
    from ..features import FeatureConfig, compute_cube
    from ..artifacts.cube import cube_outputs

    config = FeatureConfig(feature_sets=args.feature_set, clip_seconds=args.clip_seconds,
                           segmentations=args.segmentation, silence=_silence_settings(args))
    cube_outputs(args.store, args.cube)  # every output checked before a cluster starts
    # Locked before anything is read or a cluster starts: an ingest into the store, or another
    # run on the cube, refuses (or is refused) at once, not after the compute.
    with shared(args.store, what="audio store"), exclusive(args.cube, what="feature cube"):
        config.check_store(AudioStore.open(args.store))
        with _connect(args) as client:
            cube = compute_cube(args.store, args.cube, config, client)
    print(f"wrote {args.cube}: {cube.sizes['clip']} clips x {cube.sizes['feature']} features")
    return 0


def _silence_settings(args):
    """The silence split of ``micfp features``' options, checked (one line) before anything starts."""
    from ..features import SilenceSettings

    options = {"threshold_db": ("--silence-threshold-db", args.silence_threshold_db),
               "min_silence_s": ("--min-silence-s", args.min_silence_s)}
    given = {k: v for k, (_, v) in options.items() if v is not None}
    if given and "silence" not in args.segmentation:
        raise ConfigError(f"{options[next(iter(given))][0]} sets the silence split: add --segmentation silence "
                          "(or fixed,silence)")
    for k, v in given.items():  # one at a time, so the message names the option at fault
        try:
            SilenceSettings(**{k: v})
        except ValueError as exc:
            raise ConfigError(f"{options[k][0]} {v:g}: {exc}") from None
    return SilenceSettings(**given)


def cmd_evaluate(args) -> int:
    from ..evaluation.grid import default_cells
    from ..evaluation.protocols import check_max_train
    from ..workflow.builtin import check_evaluate_cells, evaluate_workflow
    from ..workflow.grid import check_outputs
    from ..workflow.script import run_config

    check_max_train(args.max_train_clips, "--max-train-clips")  # before a cluster starts
    cells = default_cells(args.clip_seconds, args.sound_type, args.protocol, args.classifiers, args.feature_set,
                          args.segmentation)
    wf = evaluate_workflow(args.cube, args.out, cells, n_boot=args.bootstrap, max_train=args.max_train_clips)
    check_outputs(wf)  # the report folder first: a foreign folder is refused whatever the cube
    check_evaluate_cells(wf, cells)  # every cell asked for is in the cube
    run_config(wf, args, _connect)
    return 0


def cmd_export(args) -> int:
    from ..artifacts.locks import exclusive, shared
    from ..features.export import check_export_output, plan_export, write_export

    out = check_export_output(args.out, args.cube)
    # Locked, the cube opened and the selection checked before a cluster starts.
    with shared(args.cube, what="feature cube"), exclusive(out, what="feature export"):
        plan = plan_export(args.cube, out, feature_sets=args.feature_set, clip_seconds=args.clip_seconds,
                           segmentations=args.segmentation)
        with _connect(args):
            write_export(plan)
    print(f"wrote {args.out}: {plan.n_clips} clips x {plan.n_features} features")
    return 0


def cmd_train(args) -> int:
    from ..identify.model import DEFAULT_CLASSIFIER, TrainSettings, train_model

    settings = TrainSettings(feature_set=args.feature_set, clip_seconds=args.clip_seconds,
                             classifier=args.classifier or DEFAULT_CLASSIFIER, sessions=tuple(args.sessions),
                             mics=tuple(args.mics), sound_type=args.sound_type, accept_rate=args.accept_rate)
    from ..artifacts.cube import open_cube
    from ..artifacts.locks import shared
    from ..artifacts.model import check_model_output, describe_model, save_model

    check_model_output(args.model, inputs=(args.cube,))
    with shared(args.cube, what="feature cube"):
        open_cube(args.cube)  # a missing or incomplete cube fails before a cluster starts
        with _connect(args) as client:
            model = train_model(args.cube, settings, client)
    save_model(model, args.model)
    print(describe_model(model.meta))
    print(f"wrote {args.model}")
    return 0


def cmd_identify(args) -> int:
    import json

    from ..identify.identify import error_lines, format_results, identify_files

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    if args.scheduler:
        from ..cluster.connect import ClusterSettings, connect

        with connect(ClusterSettings(scheduler=args.scheduler)) as client:
            results = identify_files(args.files, args.model, client=client, channel=args.channel,
                                     top_k=args.top_k, how=args.aggregate)
    else:
        results = identify_files(args.files, args.model, channel=args.channel, top_k=args.top_k, how=args.aggregate)
    text = json.dumps(results, indent=1) if args.json else format_results(results)
    if text:
        print(text)
    errors = error_lines(results)  # on stderr: stdout holds only answers (or the whole JSON document)
    for line in errors:
        print(line, file=sys.stderr)
    return 2 if errors else 0


def cmd_verify(args) -> int:
    import json

    from ..identify.verify import format_verification, verify_files

    result = verify_files(args.a, args.b, args.model, channel=args.channel)
    print(json.dumps(result, indent=1) if args.json else format_verification(result))
    return 0


def cmd_info(args) -> int:
    from .info import info

    return info(args.path)


def _cluster_parser(sub) -> None:
    p = sub.add_parser("cluster", help="a local multi-process cluster that outlives one command; profiles; TLS certs")
    csub = p.add_subparsers(dest="action", required=True)
    sfile = dict(metavar="PATH", default=None, help="scheduler file (default $MICFP_HOME/cluster.json, ~/.micfp)")
    q = csub.add_parser("up", help="start a scheduler and N workers as detached processes")
    q.add_argument("--workers", type=int, default=2)
    q.add_argument("--threads-per-worker", type=int, default=1)
    q.add_argument("--memory-limit", default="auto")
    q.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    q.add_argument("--port", type=int, default=8786, help="scheduler port (0: any free port)")
    q.add_argument("--dashboard-address", default="127.0.0.1:8787")
    q.add_argument("--tls-dir", default=None, help="TLS only, with the certificates of `micfp cluster certs DIR`")
    q.add_argument("--scheduler-file", **sfile)
    q.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the processes")
    for action, text in (("status", "show the cluster started by `up`"), ("down", "stop it cleanly")):
        q = csub.add_parser(action, help=text)
        q.add_argument("--scheduler-file", **sfile)
    q = csub.add_parser("certs", help="write a test CA and certificate (ca.pem, cert.pem, key.pem) for TLS")
    q.add_argument("dir", help="folder to write the certificates to (new, or an earlier `certs` folder)")
    q.add_argument("--hosts", type=_names, default=("127.0.0.1", "localhost"), metavar="H[,H...]",
                   help="host names and addresses the certificate is valid for")
    csub.add_parser("profiles", help="list the cluster profiles and where they are defined")
    q = csub.add_parser("render", help="print a profile's SLURM/PBS job script or Kubernetes manifests")
    q.add_argument("profile", help="profile name (see `micfp cluster profiles`) or a YAML file")
    q.add_argument("--job", default=None, help="command of a Kubernetes DaskJob or of a SLURM job that runs its own "
                                               "scheduler (e.g. 'micfp run workflows/x.toml')")
    q.add_argument("--worker-job", action="store_true", help="slurm: the worker job script --cluster slurm submits")


def cmd_cluster(args) -> int:
    from ..cluster import standalone

    if args.action == "up":
        from ..cluster.tls import tls_files

        tls = tls_files(args.tls_dir) if args.tls_dir else None
        state = standalone.up(args.workers, scheduler_file=args.scheduler_file, host=args.host, port=args.port,
                              dashboard_address=args.dashboard_address, threads_per_worker=args.threads_per_worker,
                              memory_limit=args.memory_limit, tls=tls, timeout=args.timeout)
        print(f"scheduler: {state['address']}")
        print(f"dashboard: {state['dashboard']}")
        print(f"workers: {len(state['worker_pids'])} processes; logs: {state['logs']}")
        print(f"scheduler file: {state['scheduler_file']}")
        print(f"attach with: --scheduler {state['address']}  (or --cluster remote)")
        return 0
    if args.action in ("status", "down"):
        state = getattr(standalone, args.action)(args.scheduler_file)
        if state is None:
            print("no micfp cluster is up" + (f" ({args.scheduler_file})" if args.scheduler_file else ""))
            return 1 if args.action == "status" else 0
        if args.action == "down":
            print(f"stopped the cluster at {state['address']}")
            return 0
        print(f"scheduler: {state['address']} (pid {state['scheduler_pid']})")
        print(f"dashboard: {state['dashboard']}")
        print(f"workers: {len(state['workers'])} connected, {state['processes_alive']}/{len(state['worker_pids'])} "
              "processes alive")
        for w in state["workers"]:
            print(f"  {w['name']}: {w['address']}, {w['nthreads']} threads, memory limit {w['memory_limit']}")
        return 0
    if args.action == "certs":
        from ..cluster.tls import make_certs
        from ..artifacts.outputs import TLS_KIND, check_output, mark_folder

        mark_folder(check_output(args.dir, TLS_KIND, what="certificate folder"), TLS_KIND)
        files = make_certs(args.dir, hosts=args.hosts)
        print("\n".join(f"{k}: {v}" for k, v in files.items()))
        return 0
    if args.action == "profiles":
        from ..cluster.profiles import available_profiles

        for name, where in sorted(available_profiles().items()):
            print(f"{name:12s} {where}")
        return 0
    from ..cluster.render import render
    from ..cluster.profiles import load_profile

    print(render(load_profile(args.profile), command=args.job, worker_job=args.worker_job), end="")
    return 0


def cmd_run(args) -> int:
    from ..workflow.script import run_from_args

    return run_from_args(args, _connect)


def cmd_warmup(args) -> int:
    import time

    from .. import jit

    t = time.perf_counter()
    compiled = jit.warm_up()
    where = jit.cache_dir()
    if where is None:  # no writable folder for micfp's cache: numba compiles in each process
        print("numba cache: numba's default locations (no writable cache folder for micfp); nothing compiled ahead")
    else:
        print(f"numba cache {where}: " + (f"compiled in {time.perf_counter() - t:.1f} s" if compiled
                                          else "already current"))
    return 0


def cmd_report(args) -> int:
    from ..report.html import write_html_report

    print(f"report: {write_html_report(args.results, args.html, cube=args.cube)}")
    return 0


COMMANDS = {"demo": cmd_demo, "simulate": cmd_simulate, "features": cmd_features, "evaluate": cmd_evaluate,
            "info": cmd_info, "ingest": cmd_ingest, "cluster": cmd_cluster,
            "run": cmd_run, "report": cmd_report, "train": cmd_train, "identify": cmd_identify,
            "export": cmd_export, "verify": cmd_verify, "warmup": cmd_warmup}

if __name__ == "__main__":
    sys.exit(main())
