"""Workflows: a TOML config names a corpus, a feature config and an evaluation grid; run it.

A workflow is what users submit to a cluster (``micfp run workflows/ablation.toml``). Running it
does only the stages that are not done yet:

1. corpus: simulate a studio plan into ``<out>/audio.zarr``, use an existing store, or ingest
   a recordings folder (simulation and ingest resume from their shard ledgers);
2. the feature cube ``<out>/cube.zarr``: reused when it is complete and was made from the same
   audio with the same :class:`~pipeline.features.FeatureConfig`, recomputed otherwise (frame
   features are kept, so adding a clip length only redoes the cheap clip stage);
3. robustness conditions: degraded copies of the test session's recordings and their cubes in
   ``<out>/degraded/`` (:mod:`pipeline.robustness.stage`);
4. cells: every grid point not yet in the results ledger, one task each; a worker loads a cube
   once and keeps it in memory for all the cells it runs;
5. the results set ``<out>/results.zarr`` (or ``.nc``) and the HTML report.

Every config error is raised before any compute, naming the file and the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..robustness.degrade import Degradation
from ..errors import ConfigError, InputError, MicfpError
from ..version import __version__
from ..report.files import json_default
from ..artifacts.results import CLEAN, RESULTS_KIND, _plain_str, check_results_output, open_results, write_results  # noqa: F401
from ..artifacts.outputs import RUN_KIND, check_output, mark_folder, remove_artifact, resolve
from ..artifacts.locks import LockedError, exclusive, lock_path, shared
from ..artifacts.swap import check_replaceable



# -- config ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusConfig:
    """Where the audio comes from: exactly one of a simulated plan, a store, a recordings folder."""

    kind: str  # "simulate" | "store" | "recordings"
    path: str | None = None
    minutes_per_session: tuple[float, ...] = (4.0, 2.0)
    seed: int = 0
    sources: str | None = None
    ingest: tuple = ()  # IngestSettings fields, as (key, value) pairs


@dataclass(frozen=True)
class GridSpec:
    """One block of the grid: the product of its axes (union over blocks is the grid).

    ``sound_types`` may hold ``all`` (every sound type pooled) and ``each`` (every sound type of
    the corpus on its own). ``conditions`` may hold ``clean``, ``noise`` (every noise level of
    ``[robustness]``), ``codec`` (every codec setting), ``robustness`` (both) or condition names.
    A ``silence`` segmentation gives one cell per other axis, with ``clip_seconds`` 0.
    """

    clip_seconds: tuple[float, ...]
    sound_types: tuple[str, ...] = ("all",)
    feature_sets: tuple[str, ...] = ("channel",)
    classifiers: tuple[str, ...] = ("micfp_lr",)
    protocols: tuple[str, ...] = ("session",)
    segmentations: tuple[str, ...] = ("fixed",)
    conditions: tuple[str, ...] = (CLEAN,)


@dataclass(frozen=True)
class WorkflowConfig:
    """A parsed and validated workflow (see ``docs/workflows.md`` for the TOML keys)."""

    name: str
    source: str
    out: str
    corpus: CorpusConfig
    features: object  # FeatureConfig
    grids: tuple[GridSpec, ...]
    degradations: tuple[Degradation, ...] = ()
    description: str = ""
    bootstrap: int = 500
    max_train_clips: int | None = None  # cap on each fit's training clips (None: all of them)
    results: str = "results.zarr"
    report: bool = True

    @property
    def conditions(self) -> dict[str, Degradation | None]:
        return {CLEAN: None, **{d.name: d for d in self.degradations}}

    @property
    def results_path(self) -> Path:
        return Path(self.out) / self.results

    @property
    def cube_path(self) -> Path:
        return Path(self.out) / "cube.zarr"


@dataclass(frozen=True)
class WorkCell:
    """One cell of a workflow: an evaluation cell under a condition (``clean`` or degraded)."""

    cell: object  # evaluate.Cell
    condition: str = CLEAN

    @property
    def key(self) -> str:
        c = self.cell
        return json.dumps([float(c.clip_seconds), c.sound_type, c.feature_set, c.classifier, c.protocol,
                           c.segmentation, self.condition])


_SECTIONS = {
    "workflow": {"name", "description", "out", "bootstrap", "max_train_clips", "results", "report"},
    "corpus": {"simulate", "store", "recordings"},
    "features": {"feature_sets", "clip_seconds", "segmentations", "window_s", "frame", "silence"},
    "grid": {"clip_seconds", "sound_types", "feature_sets", "classifiers", "protocols", "segmentations",
             "conditions"},
    "robustness": {"snr_db", "codecs", "seed"},
}
_SIMULATE_KEYS = {"minutes_per_session", "seed", "sources"}
_RECORDINGS_KEYS = {"path", "layout", "manifest", "resample", "channel", "pattern", "align", "root_only"}


class _Reader:
    """Typed access to one TOML table, with errors naming the file and the key."""

    def __init__(self, source: str, where: str, table: dict, allowed: set[str]):
        self.source, self.where, self.table = source, where, table
        if not isinstance(table, dict):
            self.fail(f"[{where}] must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(f"unknown key {unknown[0]!r} in [{where}]; expected one of {', '.join(sorted(allowed))}")

    def fail(self, msg: str):
        raise ConfigError(f"{self.source}: {msg}")

    def get(self, key, kind, default=None, *, required=False):
        if key not in self.table:
            if required:
                self.fail(f"[{self.where}] needs {key!r}")
            return default
        v = self.table[key]
        ok = isinstance(v, kind) and not (kind in (int, float, (int, float)) and isinstance(v, bool))
        if not ok:
            self.fail(f"[{self.where}] {key} = {v!r}: expected {_kind_name(kind)}")
        return v

    def names(self, key, default=None, *, required=False) -> tuple[str, ...] | None:
        v = self.get(key, (list, str), default, required=required)
        if v is None or isinstance(v, tuple):
            return v
        v = [v] if isinstance(v, str) else v
        if not v or not all(isinstance(x, str) and x for x in v):
            self.fail(f"[{self.where}] {key}: expected a non-empty list of names, got {v!r}")
        return tuple(dict.fromkeys(v))

    def numbers(self, key, default=None, *, required=False, positive=True,
                sort=True) -> tuple[float, ...] | None:
        v = self.get(key, (list, int, float), default, required=required)
        if v is None or isinstance(v, tuple):
            return v
        v = [v] if isinstance(v, (int, float)) else v
        if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            self.fail(f"[{self.where}] {key}: expected a non-empty list of numbers, got {v!r}")
        if positive and any(x <= 0 for x in v):
            self.fail(f"[{self.where}] {key}: values must be positive, got {v!r}")
        v = tuple(dict.fromkeys(float(x) for x in v))
        return tuple(sorted(v)) if sort else v


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({str: "a string", int: "an integer", float: "a number", bool: "true/false",
                        list: "a list", dict: "a table"}.get(k, k.__name__) for k in kinds)


def load_workflow(path, *, out: str | None = None) -> WorkflowConfig:
    """Parse and validate a workflow TOML file; nothing is computed.

    Parameters
    ----------
    path : str or Path
        The ``.toml`` config.
    out : str, optional
        Output folder; overrides ``[workflow] out`` (default ``micfp-out/<name>``).

    Raises
    ------
    ConfigError
        With the file, the table and the key at fault.
    """
    try:
        return _load(path, out)
    except ConfigError as exc:  # errors raised by the settings classes: name the file too
        if str(path) in str(exc):
            raise
        raise ConfigError(f"{path}: {exc}") from None


def _load(path, out) -> WorkflowConfig:
    from ..evaluation.evaluate import CLASSIFIERS, PROTOCOLS, check_max_train
    from ..features import FeatureConfig
    from ..features.clips import SilenceSettings
    from ..features.cube import SEGMENTATIONS
    from ..features.frames import FrameSettings
    from ..features.sets import FEATURE_SETS
    from ..features.sets import expand as expand_sets

    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{src}: no such workflow file")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{src}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{src}: cannot read: {exc}") from None
    top = _Reader(src, "top level", doc, set(_SECTIONS))

    w = _Reader(src, "workflow", doc.get("workflow", {}), _SECTIONS["workflow"])
    name = w.get("name", str, p.stem)
    bootstrap = w.get("bootstrap", int, 500)
    if bootstrap < 0:
        w.fail(f"[workflow] bootstrap must be >= 0, got {bootstrap}")
    max_train = check_max_train(w.get("max_train_clips", int), "[workflow] max_train_clips")
    results = w.get("results", str, "results.zarr")
    if not results.endswith((".zarr", ".nc")):
        w.fail(f"[workflow] results = {results!r}: use a name ending in .zarr or .nc")

    corpus = _corpus(src, doc.get("corpus"))

    f = _Reader(src, "features", doc.get("features", {}), _SECTIONS["features"])
    grids_raw = doc.get("grid")
    if grids_raw is None:
        top.fail("no [[grid]] table: say what to evaluate")
    grids_raw = grids_raw if isinstance(grids_raw, list) else [grids_raw]

    r = _Reader(src, "robustness", doc.get("robustness", {}), _SECTIONS["robustness"])
    rseed = r.get("seed", int, 0)
    degs = [Degradation("noise", snr_db=float(s), seed=rseed) for s in (r.numbers("snr_db", (), positive=False))]
    codecs = r.get("codecs", list, [])
    for i, c in enumerate(codecs):
        cr = _Reader(src, f"robustness.codecs[{i}]", c, {"codec", "kbps"})
        codec = cr.get("codec", str, required=True)
        for kbps in cr.numbers("kbps", required=True):
            degs.append(Degradation("codec", codec=codec, kbps=float(kbps), seed=rseed))
    sample_rate = FrameSettings(**f.get("frame", dict, {})).sample_rate if "frame" in f.table else 48000
    for d in degs:
        d.check(sample_rate)  # codec missing from this libsndfile: fail now, not after the cube
    cond_names = [CLEAN] + [d.name for d in degs]
    if len(set(cond_names)) != len(cond_names):
        r.fail("[robustness] lists the same condition twice")

    grids = []
    for i, g in enumerate(grids_raw):
        gr = _Reader(src, f"grid[{i}]" if len(grids_raw) > 1 else "grid", g, _SECTIONS["grid"])
        spec = GridSpec(
            clip_seconds=gr.numbers("clip_seconds", ()),
            sound_types=gr.names("sound_types", ("all",)),
            feature_sets=gr.names("feature_sets", required=True),
            classifiers=gr.names("classifiers", required=True),
            protocols=gr.names("protocols", ("session",)),
            segmentations=gr.names("segmentations", ("fixed",)),
            conditions=gr.names("conditions", (CLEAN,)),
        )
        for what, values, allowed in (("feature set", spec.feature_sets, FEATURE_SETS),
                                      ("classifier", spec.classifiers, CLASSIFIERS),
                                      ("protocol", spec.protocols, PROTOCOLS),
                                      ("segmentation", spec.segmentations, SEGMENTATIONS)):
            for v in values:
                if v not in allowed:
                    gr.fail(f"[{gr.where}] unknown {what} {v!r}; choose from {', '.join(allowed)}")
        if "fixed" in spec.segmentations and not spec.clip_seconds:
            gr.fail(f"[{gr.where}] needs clip_seconds for the fixed segmentation")
        for c in spec.conditions:
            if c not in (CLEAN, "noise", "codec", "robustness") and c not in cond_names:
                gr.fail(f"[{gr.where}] unknown condition {c!r}; use clean, noise, codec, robustness or one of "
                        f"{', '.join(cond_names)}")
        if set(spec.conditions) - {CLEAN} and not degs:
            gr.fail(f"[{gr.where}] asks for robustness conditions but [robustness] defines none")
        grids.append(spec)

    # The cube must hold every clip length, feature set and segmentation the grid asks for.
    need_clips = sorted({c for g in grids if "fixed" in g.segmentations for c in g.clip_seconds})
    need_sets = sorted({s for g in grids for s in g.feature_sets})
    need_segs = [s for s in SEGMENTATIONS if any(s in g.segmentations for g in grids)]
    clip_seconds = f.numbers("clip_seconds", tuple(need_clips))
    missing = sorted(set(need_clips) - set(clip_seconds))
    if missing:
        f.fail(f"[grid] asks for clip length {missing[0]:g} s, which [features] clip_seconds "
               f"{list(clip_seconds)} does not compute")
    feature_sets = f.names("feature_sets", tuple(need_sets))
    for fs in feature_sets:
        if fs not in FEATURE_SETS:
            f.fail(f"[features] unknown feature set {fs!r}; choose from {', '.join(FEATURE_SETS)}")
    if set(expand_sets(need_sets)) - set(expand_sets(feature_sets)):
        f.fail(f"[grid] asks for feature sets {need_sets}, [features] computes only {list(feature_sets)}")
    segmentations = f.names("segmentations", tuple(need_segs))
    if set(need_segs) - set(segmentations):
        f.fail(f"[grid] asks for segmentations {need_segs}, [features] computes only {list(segmentations)}")
    try:
        frame = FrameSettings(**f.get("frame", dict, {}))
        silence = SilenceSettings(**f.get("silence", dict, {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{src}: [features] {exc}") from None
    features = FeatureConfig(feature_sets=feature_sets, clip_seconds=clip_seconds, segmentations=segmentations,
                             silence=silence, frame=frame, window_s=float(f.get("window_s", (int, float), 300.0)))
    return WorkflowConfig(
        # absolute, so that workers started elsewhere find the same files (on a shared filesystem)
        name=name, source=src, out=str(Path(out or w.get("out", str, f"micfp-out/{name}")).resolve()), corpus=corpus,
        features=features, grids=tuple(grids), degradations=tuple(degs),
        description=w.get("description", str, ""), bootstrap=bootstrap, max_train_clips=max_train,
        results=results,
        report=w.get("report", bool, True))


def _corpus(src: str, table) -> CorpusConfig:
    if table is None:
        raise ConfigError(f"{src}: no [corpus] table: name a simulate plan, a store or a recordings folder")
    c = _Reader(src, "corpus", table, _SECTIONS["corpus"])
    given = [k for k in ("simulate", "store", "recordings") if k in table]
    if len(given) != 1:
        c.fail("[corpus] needs exactly one of simulate, store, recordings"
               + (f" (has {', '.join(given)})" if given else ""))
    kind = given[0]
    if kind == "store":
        path = c.get("store", str)
        if not Path(path).exists() and "://" not in path:
            c.fail(f"[corpus] store = {path!r}: no such audio store")
        return CorpusConfig("store", path=path)
    if kind == "recordings":
        v = table["recordings"]
        r = _Reader(src, "corpus.recordings", v if isinstance(v, dict) else {"path": v}, _RECORDINGS_KEYS)
        path = r.get("path", str, required=True)
        if not Path(path).exists():
            r.fail(f"[corpus] recordings = {path!r}: no such folder or manifest")
        kw = {k: r.table[k] for k in sorted(_RECORDINGS_KEYS - {"path"}) if k in r.table}
        _ingest_settings(CorpusConfig("recordings", path=path, ingest=tuple(kw.items())))  # validate now
        return CorpusConfig("recordings", path=path, ingest=tuple(kw.items()))
    v = table["simulate"]
    s = _Reader(src, "corpus.simulate", {} if v is True else v, _SIMULATE_KEYS)
    minutes = s.get("minutes_per_session", list, [4.0, 2.0])
    if not minutes or not all(isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0 for m in minutes):
        s.fail(f"[corpus.simulate] minutes_per_session = {minutes!r}: expected positive numbers, one per session "
               "(the first session trains)")
    minutes = tuple(float(m) for m in minutes)
    sources = s.get("sources", str)
    if sources is not None and not Path(sources).is_dir():
        s.fail(f"[corpus.simulate] sources = {sources!r}: no such folder")
    return CorpusConfig("simulate", minutes_per_session=minutes, seed=s.get("seed", int, 0), sources=sources)


# -- the grid --------------------------------------------------------------------------------
#: Columns of an availability table: how many clips each (session, sound type, length, 30 s block) has.
AVAIL_COLS = ("session", "sound_type", "clip_seconds", "segmentation", "block", "n")


def availability_from_segments(segments: dict, sample_rate: int, features) -> "pd.DataFrame":
    """Clips the feature stage will cut, from the sessions' segment tables (no audio read).

    ``segments`` maps session -> ``[(start_s, end_s, sound_type), ...]``, in session order.
    Silence-split clips are not known before the audio is analysed: each segment counts once.
    """
    import pandas as pd

    from ..evaluation.evaluate import GROUP_SECONDS

    rows = []
    for session, segs in segments.items():
        for a, b, st in segs:
            a_n, b_n = int(round(a * sample_rate)), int(round(b * sample_rate))
            if "fixed" in features.segmentations:
                for L in features.clip_seconds:
                    n = int(round(L * sample_rate))
                    starts = a_n + n * np.arange(max(0, (b_n - a_n) // n))
                    for blk, cnt in zip(*np.unique(np.floor(starts / sample_rate / GROUP_SECONDS), return_counts=True)):
                        rows.append((str(session), str(st), float(L), "fixed", int(blk), int(cnt)))
            if "silence" in features.segmentations:
                rows.append((str(session), str(st), 0.0, "silence", int(a // GROUP_SECONDS), 1))
    return pd.DataFrame(rows, columns=list(AVAIL_COLS))


def availability_from_cube(cube) -> "pd.DataFrame":
    """Clips the cube holds, counted per session, sound type, length and 30 s block."""
    import pandas as pd

    from ..evaluation.evaluate import GROUP_SECONDS

    df = pd.DataFrame({"session": cube.session.values.astype(str), "sound_type": cube.sound_type.values.astype(str),
                       "clip_seconds": cube.clip_seconds.values.astype(float),
                       "segmentation": cube.segmentation.values.astype(str),
                       "block": np.floor(cube.start_s.values / GROUP_SECONDS).astype(int)})
    out = df.groupby(list(AVAIL_COLS[:-1]), sort=False).size().rename("n").reset_index()
    return out[list(AVAIL_COLS)]


def infeasible(cell, avail, sessions: list[str]) -> str | None:
    """Why ``cell`` cannot be evaluated on the clips in ``avail`` (None if it can).

    ``sessions`` is the corpus's session order; the first one trains under the session protocol.
    """
    sel = avail
    if cell.sound_type != "all":
        sel = sel[sel["sound_type"] == cell.sound_type]
    sel = sel[sel["segmentation"] == cell.segmentation]
    if cell.segmentation == "fixed":
        sel = sel[np.isclose(sel["clip_seconds"].to_numpy(), cell.clip_seconds)]
    sel = sel[sel["n"] > 0]
    what = "all sound types" if cell.sound_type == "all" else f"sound type {cell.sound_type}"
    if sel.empty:
        return f"no {cell.clip_seconds:g} s clips of {what}"
    have = set(sel["session"])
    if cell.protocol == "session" and (sessions[0] not in have or len(have) < 2):
        return f"{what} is not in both the training session {sessions[0]} and a test session"
    if cell.protocol == "leave-sound-type-out" and sel["sound_type"].nunique() < 2:
        return "leave-sound-type-out needs several sound types (it runs with sound_type all)"
    if cell.protocol == "grouped-kfold" and len(set(zip(sel["session"], sel["block"]))) < 2:
        return f"{what} spans fewer than two 30 s blocks"
    return None


def expand_grid(wf: WorkflowConfig, avail, sessions: list[str]) -> tuple[list[WorkCell], list[str]]:
    """The workflow's cells, in a stable order, and notes on the combinations left out.

    Combinations the data cannot serve are left out with a note rather than failing the run,
    so that products stay easy to write: see :func:`infeasible`; and degraded conditions run
    only under the ``session`` protocol (only the held-out sessions are degraded).
    """
    from ..evaluation.evaluate import Cell

    sound_types = sorted(set(avail["sound_type"]))
    cells: dict[str, WorkCell] = {}
    skipped: dict[str, int] = {}
    feasibility: dict[tuple, str | None] = {}
    conds = wf.conditions
    for g in wf.grids:
        sts = []
        for st in g.sound_types:
            if st == "each":
                sts += sound_types
            elif st == "all" or st in sound_types:
                sts.append(st)
            else:
                raise ConfigError(f"{wf.source}: [grid] sound type {st!r} is not in the corpus "
                                  f"(has {', '.join(sound_types)}; or use all / each)")
        cnames = []
        for c in g.conditions:
            if c in ("noise", "robustness"):
                cnames += [d.name for d in wf.degradations if d.kind == "noise"]
            if c in ("codec", "robustness"):
                cnames += [d.name for d in wf.degradations if d.kind == "codec"]
            if c in conds:
                cnames.append(c)
        clips = [(float(c), "fixed") for c in g.clip_seconds if "fixed" in g.segmentations]
        if "silence" in g.segmentations:
            clips.append((0.0, "silence"))
        for clip, seg in clips:
            for st in dict.fromkeys(sts):
                for fs in g.feature_sets:
                    for clf in g.classifiers:
                        for prot in g.protocols:
                            cell = Cell(clip, st, fs, clf, prot, segmentation=seg)
                            fkey = (clip, st, seg, prot)  # feasibility does not depend on the model
                            if fkey not in feasibility:
                                feasibility[fkey] = infeasible(cell, avail, sessions)
                            why = feasibility[fkey]
                            for cond in dict.fromkeys(cnames):
                                if why is None and cond != CLEAN and prot != "session":
                                    reason = "robustness conditions run only under the session protocol"
                                else:
                                    reason = why
                                if reason is not None:
                                    skipped[reason] = skipped.get(reason, 0) + 1
                                    continue
                                wc = WorkCell(cell, cond)
                                cells.setdefault(wc.key, wc)
    notes = [f"left out {n} cell{'s' * (n > 1)}: {why}" for why, n in skipped.items()]
    if not cells:
        raise ConfigError(f"{wf.source}: the grid is empty" + (f" ({'; '.join(notes)})" if notes else ""))
    return list(cells.values()), notes


def corpus_segments(wf: WorkflowConfig, store_path: str | None = None) -> tuple[dict, int] | None:
    """``({session: segments}, sample rate)`` of the corpus if known without compute, else None."""
    if store_path is not None or wf.corpus.kind == "store":
        from ..artifacts.store import AudioStore

        store = AudioStore.open(store_path or wf.corpus.path, require_complete=False)
        lengths = {}
        for r in store.recordings():
            lengths[r.session] = max(lengths.get(r.session, 0), r.n_samples)
        segs = {s: [tuple(x) for x in store.segments(s, lengths[s]).itertuples(index=False)] for s in sorted(lengths)}
        return segs, store.sample_rate
    if wf.corpus.kind == "simulate":
        plan = _plan(wf.corpus)
        return {s: plan.segments(s) for s in plan.sessions}, plan.sample_rate
    if wf.corpus.kind == "recordings":
        plan = _ingest_plan(wf.corpus)
        lengths = {}
        for r in plan.recordings:
            lengths[r.session] = max(lengths.get(r.session, 0), r.n_samples)
        segs = {s: [tuple(x) for x in plan.segments.get(s, ())] or [(0.0, lengths[s] / plan.sample_rate,
                                                                      "unlabelled")]
                for s in sorted(lengths)}
        return segs, plan.sample_rate
    return None


def _plan(corpus: CorpusConfig):
    from ..simulate import StudioPlan

    try:
        # Sources resolved here: the workers read them, maybe from another folder.
        return StudioPlan(minutes_per_session=corpus.minutes_per_session, seed=corpus.seed,
                          sources=resolve(corpus.sources) if corpus.sources else None)
    except ValueError as exc:
        raise ConfigError(f"[corpus.simulate] {exc}") from None


# -- results ---------------------------------------------------------------------------------
class ResultsLedger:
    """Finished cells of a workflow, one JSON line each, appended as cells finish.

    The first line is the *basis*: what the results depend on besides the cell (the audio, the
    frame settings, the bootstrap size, the training cap, the code version). A ledger with another basis is
    started over. The results Dataset is always rebuilt from the ledger, so an interrupted run
    loses nothing that finished.
    """

    def __init__(self, path: Path, basis: dict, *, echo=print):
        self.path = Path(path)
        self.basis = json.loads(json.dumps(basis, default=json_default))
        self.records: dict[str, dict] = {}
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            head = _loads(lines[0]) if lines else None
            if head is not None and head.get("basis") == self.basis:
                for line in lines[1:]:
                    rec = _loads(line)
                    if rec is not None and "key" in rec:  # a torn last line from a kill is skipped
                        self.records[rec["key"]] = rec
            else:
                echo(f"{self.path}: results were computed from other audio or settings; starting over")
                self.path.unlink()
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"basis": self.basis}) + "\n")

    def done(self, key: str) -> bool:
        return key in self.records

    def record(self, key: str, result: dict) -> None:
        rec = {**json.loads(json.dumps(result, default=json_default)), "key": key}
        with self.path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[key] = rec


def _loads(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None




def results_set(records: list[dict], mics: dict[int, str], conditions: dict[str, dict], attrs: dict):
    """The results Dataset: evaluate's per-cell layout plus a ``condition`` dimension.

    Dims ``condition, clip_seconds, sound_type, feature_set, classifier, protocol`` (and
    ``true_mic, pred_mic`` for ``confusion``); NaN (0 for counts) where a cell was not run.
    ``clip_seconds`` 0 holds the silence-split cells. Coordinates on ``condition`` describe it:
    kind, SNR, codec, requested and measured bit rate.
    """
    import pandas as pd
    import xarray as xr

    from ..evaluation.evaluate import results_dataset

    order = [c for c in conditions if any(r["condition"] == c for r in records)]
    order += sorted({r["condition"] for r in records} - set(order))
    parts = [results_dataset([r for r in records if r["condition"] == c], mics) for c in order]
    ints = {k for k, v in parts[0].data_vars.items() if v.dtype.kind in "iu"}
    ds = xr.concat(parts, dim=pd.Index(order, name="condition"), join="outer", combine_attrs="override",
                   fill_value={k: 0 for k in ints})
    for k in ints:
        if k in ds and ds[k].dtype.kind == "f":
            ds[k] = ds[k].fillna(0).astype(np.int64)
    # Wall time of each cell, for planning bigger grids.
    secs = xr.full_like(ds["accuracy"], np.nan)
    dims = [d for d in ds["accuracy"].dims if d != "condition"]
    for r in records:
        c = r["cell"]
        secs.loc[{"condition": r["condition"], **{d: c[d] for d in dims}}] = r.get("seconds", np.nan)
    ds["cell_seconds"] = secs
    # What each condition is, as data variables (not coordinates, so that a metric's
    # ``to_dataframe().dropna()`` keeps its rows): NaN where a field does not apply.
    info = [conditions.get(c, {}) for c in order]
    ds["condition_kind"] = ("condition", np.array([i.get("kind", CLEAN if c == CLEAN else "unknown")
                                                   for c, i in zip(order, info)], dtype=object))
    ds["snr_db"] = ("condition", np.array([_num(i.get("snr_db")) for i in info]))
    ds["codec"] = ("condition", np.array([i.get("codec") or "" for i in info], dtype=object))
    ds["kbps_requested"] = ("condition", np.array([_num(i.get("kbps")) for i in info]))
    ds["kbps_measured"] = ("condition", np.array([_num(i.get("kbps_measured")) for i in info]))
    ds["compression_level"] = ("condition", np.array([_num(i.get("level")) for i in info]))
    for d in ("condition", "sound_type", "feature_set", "classifier", "protocol", "true_mic", "pred_mic"):
        ds = ds.assign_coords({d: (ds[d].dims, _plain_str(ds[d].values))})
    for d in ("condition_kind", "codec"):
        ds[d] = ("condition", _plain_str(ds[d].values))
    meta = dict(parts[0].attrs.get("micfp", {}))
    meta.update(kind=RESULTS_KIND, complete=True, **attrs)
    ds.attrs = {"micfp": json.loads(json.dumps(meta, default=json_default))}
    return ds


def _condition_spec(info: dict) -> dict | None:
    """What a degraded cell's result depends on: the condition and the audio it was made from."""
    keys = ("kind", "snr_db", "codec", "kbps", "seed", "level", "source_fingerprint", "sessions")
    return json.loads(json.dumps({k: info.get(k) for k in keys})) if info.get("kind") != CLEAN else None


def _num(v) -> float:
    return float(v) if v is not None else float("nan")


# -- worker side: the cube cache and the cell task -------------------------------------------
# The per-process cube cache lives with the cube (shared with ``evaluate``).
from ..artifacts.cube import cache_stats, cached_cube, clear_cache, cube_write_id  # noqa: E402,F401



@dataclass(frozen=True)
class CellTask:
    """What a worker needs for one cell: the cubes to read (paths) and the cell."""

    cube: str
    work: WorkCell
    n_boot: int
    degraded_cube: str | None = None
    max_train: int | None = None
    uids: tuple = ()  # (path, uid) of the cubes as the client made them, checked by the worker


def cell_data(task: CellTask):
    """The cube, a cell's feature rows (unread, :class:`~pipeline.features.rows.FeatureRows`) and
    its clip table; with a degraded cube, its clips replace the test session's."""
    import pandas as pd

    from ..evaluation.evaluate import select_rows
    from ..artifacts.outputs import verify_seen

    for path, uid in task.uids:
        verify_seen(path, uid)
    cube = cached_cube(task.cube)
    cell = task.work.cell
    X, meta = select_rows(cube, cell)
    if task.degraded_cube is None:
        return cube, X, meta
    train = pd.unique(meta["session"])[0]  # the session protocol's training session
    keep = (meta["session"] == train).to_numpy()
    Xd, md = select_rows(cached_cube(task.degraded_cube), cell)
    test = (md["session"] != train).to_numpy()
    if not test.any():
        raise InputError(f"{task.degraded_cube}: no degraded test clips for {cell}")
    # Training clips first: the session protocol trains on the first session it meets.
    meta = pd.concat([meta[keep], md[test]], ignore_index=True)
    return cube, X.subset(keep) + Xd.subset(test), meta


def _cell_task(task: CellTask) -> dict:
    from ..evaluation.evaluate import run_cell
    from ..cluster.runner import trim_memory

    trim_memory()  # what earlier tasks freed, before this cell's peak adds to it
    t0 = time.perf_counter()
    cube, X, meta = cell_data(task)
    mics = {int(k): v for k, v in cube.attrs["micfp"]["mics"].items()}
    result = run_cell(X, meta, task.work.cell, mics, n_boot=task.n_boot, max_train=task.max_train)
    result["condition"] = task.work.condition
    result["seconds"] = time.perf_counter() - t0
    return result


# -- driver ----------------------------------------------------------------------------------
def _echo(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_corpus(wf: WorkflowConfig, client, *, echo=_echo, quiet=False) -> str:
    """The workflow's audio store, simulated or ingested (resuming) if needed; returns its path."""
    out = Path(wf.out)
    c = wf.corpus
    if c.kind == "store":
        from ..artifacts.store import AudioStore

        return AudioStore.open(c.path).path
    if c.kind == "simulate":
        from ..simulate.writer import simulate_to_store

        plan = _plan(c)
        echo(f"corpus: simulated studio, sessions {', '.join(plan.sessions)} "
             f"({' + '.join(f'{m:g}' for m in plan.minutes_per_session)} min per microphone), seed {plan.seed}")
        return simulate_to_store(plan, str(out / "audio.zarr"), client, quiet=quiet).path
    return _ingest(c, str(out / "audio.zarr"), client, echo=echo, quiet=quiet)


def _ingest_settings(c: CorpusConfig):
    from ..io.ingest import IngestSettings

    try:
        return IngestSettings(**dict(c.ingest))
    except TypeError as exc:
        raise ConfigError(f"[corpus.recordings] {exc}") from None


_PLANS: dict = {}


def _ingest_plan(c: CorpusConfig):
    """Every recording checked (headers, rates, labels, segments) without writing anything.

    Planned once per run (the check, the grid and the ingest all need it); keyed by the
    folder's modification time so a changed folder is planned again.
    """
    from ..io.ingest import plan_ingest

    key = (c.path, c.ingest, os.stat(c.path).st_mtime_ns)
    if key not in _PLANS:
        _PLANS.clear()
        _PLANS[key] = plan_ingest(c.path, _ingest_settings(c))
    return _PLANS[key]


def _ingest(c: CorpusConfig, store_path: str, client, *, echo=_echo, quiet=False) -> str:
    from ..io.ingest import ingest

    echo(f"corpus: ingesting {c.path} into {store_path}")
    report = ingest(c.path, store_path, client, _ingest_settings(c), plan=_ingest_plan(c), quiet=quiet, echo=echo)
    return report.store


def _state(out: Path) -> dict:
    p = out / "state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save_state(out: Path, state: dict) -> None:
    (out / "state.json").write_text(json.dumps(state, indent=1))


def ensure_cube(store_path: str, cube_path, config, client, *, echo=_echo, quiet=False, label="cube"):
    """The feature cube of ``store_path``: reused if complete and made from the same audio and
    config, else recomputed (frame features reused unless the audio changed)."""
    from ..artifacts.store import AudioStore
    from ..features import open_cube
    from ..robustness.stage import store_fingerprint

    cube_path = Path(cube_path)
    store = AudioStore.open(store_path)
    fp = store_fingerprint(store)
    try:
        cube = open_cube(str(cube_path))
    except MicfpError:
        cube = None
    if cube is not None:
        meta = cube.attrs["micfp"]
        if meta.get("config") == config.to_json() and meta.get("store") == store.path \
                and meta.get("store_fingerprint") == fp:
            echo(f"{label}: {cube_path} is up to date ({cube.sizes['clip']} clips), reused")
            return cube
    with exclusive(str(cube_path), what="feature cube"):  # through the fingerprint written last
        return _recompute_cube(store, fp, cube_path, config, client, echo=echo, quiet=quiet, label=label)


def _recompute_cube(store, fp: str, cube_path: Path, config, client, *, echo, quiet, label):
    from ..features import compute_cube, open_cube
    from ..artifacts.cube import FRAMES_KIND, frames_path_for

    out = cube_path.parent
    state = _state(out)
    frames = frames_path_for(str(cube_path))
    if state.get(frames) not in (None, fp) and Path(frames).exists():
        # The audio changed under the same path: frame features are stale (a simulated store's
        # recordings carry no content checksum the frame stage could compare).
        remove_artifact(frames, FRAMES_KIND)
    state[frames] = fp
    _save_state(out, state)
    echo(f"{label}: computing {cube_path}")
    compute_cube(store.path, str(cube_path), config, client, quiet=quiet)
    import zarr

    g = zarr.open_group(str(cube_path), mode="r+")
    g.attrs["micfp"] = {**g.attrs["micfp"], "store_fingerprint": fp}
    return open_cube(str(cube_path))


def plan_cells(wf: WorkflowConfig, store_path: str | None = None) -> tuple[list[WorkCell], list[str]]:
    """Expand the grid against the corpus's segments (known before compute for plans and stores)."""
    known = corpus_segments(wf, store_path)
    if known is None:
        return [], []
    segs, rate = known
    return expand_grid(wf, availability_from_segments(segs, rate, wf.features), list(segs))


def check_before_compute(wf: WorkflowConfig) -> tuple[list[WorkCell], list[str]]:
    """Every check that needs no compute: config (at load), corpus, grid against the corpus."""
    if wf.corpus.kind == "store":
        from ..artifacts.store import AudioStore

        store = AudioStore.open(wf.corpus.path)
        wf.features.check_store(store)
        if len({r.session for r in store.recordings()}) < 2 and _uses(wf, "session"):
            raise ConfigError(f"{wf.source}: the session protocol needs two sessions; {store.path} has one")
    if wf.corpus.kind == "simulate":
        plan = _plan(wf.corpus)
        longest = max(plan.n_samples(s) for s in plan.sessions) / plan.sample_rate
        too_long = [c for c in wf.features.clip_seconds if c > longest]
        if too_long:
            raise ConfigError(f"{wf.source}: clip length {too_long[0]:g} s is longer than every simulated "
                              f"recording ({longest:.0f} s)")
        if len(plan.sessions) < 2 and _uses(wf, "session"):
            raise ConfigError(f"{wf.source}: the session protocol needs two sessions; [corpus.simulate] "
                              f"minutes_per_session has one")
    if wf.corpus.kind == "recordings":
        plan = _ingest_plan(wf.corpus)
        if plan.sample_rate != wf.features.frame.sample_rate:
            raise ConfigError(f"{wf.source}: the recordings in {wf.corpus.path} are at {plan.sample_rate} Hz, the "
                              f"features expect {wf.features.frame.sample_rate} Hz; set [corpus] recordings = "
                              f"{{ path = ..., resample = {wf.features.frame.sample_rate} }}")
    return plan_cells(wf)


def check_outputs(wf: WorkflowConfig) -> None:
    """Check that micfp may write the workflow's output folder and results set (before compute)."""
    inputs = (wf.corpus.path,) if wf.corpus.kind in ("store", "recordings") else ()
    check_output(wf.out, RUN_KIND, inputs=inputs, what="workflow output folder")
    check_results_output(wf.results_path, inputs=inputs)


def _uses(wf: WorkflowConfig, protocol: str) -> bool:
    return any(protocol in g.protocols for g in wf.grids) or bool(wf.degradations)


def run_workflow(wf: WorkflowConfig, client, *, echo=_echo, quiet: bool = False, report: bool | None = None) -> dict:
    """Run the stages of a workflow that are not done yet; returns a summary dict.

    ``summary["computed"]`` / ``summary["skipped"]`` count cells run now and cells found finished.
    Holds the results set's write lock for the whole run (one run per results set and ledger),
    and the read lock of the audio store and of each cube from the time it is ready.
    """
    with contextlib.ExitStack() as locks:
        locks.enter_context(exclusive(str(wf.results_path), what="results set"))
        check_replaceable(wf.results_path, RESULTS_KIND, "results set")  # before any compute
        return _run_workflow(wf, client, locks, echo=echo, quiet=quiet, report=report)


def _run_workflow(wf: WorkflowConfig, client, locks: contextlib.ExitStack, *, echo, quiet: bool,
                  report: bool | None) -> dict:
    import pandas as pd

    from ..evaluation.evaluate import TRAINING_DRAW, check_cells
    from ..robustness.stage import degradation_info, degrade_store, store_fingerprint
    from ..artifacts.store import AudioStore

    t_start = time.perf_counter()
    check_outputs(wf)
    out = Path(wf.out)
    mark_folder(out, RUN_KIND)
    timings = {}
    cells, notes = check_before_compute(wf)  # before any compute

    t = time.perf_counter()
    store_path = ensure_corpus(wf, client, echo=echo, quiet=quiet)
    locks.enter_context(shared(store_path, what="audio store"))
    timings["corpus_s"] = time.perf_counter() - t
    if not cells:  # ingested corpus: sound types known only now
        cells, notes = plan_cells(wf, store_path)
    for n in notes:
        echo(f"grid: {n}")

    t = time.perf_counter()
    cube = ensure_cube(store_path, wf.cube_path, wf.features, client, echo=echo, quiet=quiet)
    locks.enter_context(shared(str(wf.cube_path), what="feature cube"))
    if lock_path(str(wf.cube_path)) and cube_write_id(str(wf.cube_path)) != cube.attrs["micfp"].get("write_id"):
        raise LockedError(f"{wf.cube_path}: another run replaced this feature cube as this one started; re-run")
    timings["features_s"] = time.perf_counter() - t
    sessions = [str(x) for x in pd.unique(cube.session.values)]
    # The exact clips are known now: drop cells the cube cannot serve (e.g. a silence split
    # that found no pieces), with a note, and check the rest against the cube's coordinates.
    avail = availability_from_cube(cube)
    why: dict[tuple, str | None] = {}
    for wc in cells:
        c = wc.cell
        k = (c.clip_seconds, c.sound_type, c.segmentation, c.protocol)
        if k not in why:
            why[k] = infeasible(c, avail, sessions)
    kept = [wc for wc in cells if why[(wc.cell.clip_seconds, wc.cell.sound_type, wc.cell.segmentation,
                                       wc.cell.protocol)] is None]
    if len(kept) < len(cells):
        echo(f"grid: left out {len(cells) - len(kept)} more cells the cube has no clips for")
    cells = kept
    check_cells(cube, [wc.cell for wc in cells])
    store = AudioStore.open(store_path)
    mics = store.mics

    basis = {"version": __version__, "store": store_fingerprint(store),
             "frame": dataclasses.asdict(wf.features.frame), "silence": dataclasses.asdict(wf.features.silence),
             "bootstrap": wf.bootstrap, "robustness_seed": wf.degradations[0].seed if wf.degradations else None}
    if wf.max_train_clips is not None:  # only when set, so ledgers of uncapped runs stay valid
        basis["max_train_clips"] = wf.max_train_clips
        basis["training_draw"] = TRAINING_DRAW  # capped cells of an earlier draw are not reused
    ledger = ResultsLedger(wf.results_path.with_name(wf.results_path.stem + ".cells.jsonl"), basis, echo=echo)

    # Robustness conditions: degraded copies of the test sessions (built or resumed; a finished
    # one is only opened). A degraded cell is done only if it was computed on the degraded audio
    # as it is now (same calibrated level, same source), so a rebuilt condition is re-evaluated.
    t = time.perf_counter()
    conditions = {CLEAN: {"kind": CLEAN}}
    used = {wc.condition for wc in cells} - {CLEAN}
    for name, deg in wf.conditions.items():
        if deg is not None and name in used:
            conditions[name] = degrade_store(store_path, str(out / "degraded" / f"{name}.zarr"), deg, sessions[1:],
                                             client, quiet=quiet)
    made_as = {name: _condition_spec(info) for name, info in conditions.items()}

    def done(wc: WorkCell) -> bool:
        rec = ledger.records.get(wc.key)
        return rec is not None and (wc.condition == CLEAN or rec.get("condition_spec") == made_as[wc.condition])

    todo = [wc for wc in cells if not done(wc)]
    echo(f"cells: {len(cells)} in the grid, {len(cells) - len(todo)} already done, {len(todo)} to run")
    deg_cubes = {}
    for name in [n for n in conditions if n != CLEAN]:
        info = conditions[name]
        if info.get("kind") == "codec":
            echo(f"robustness {name}: compression level {info['level']:.3f}, measured "
                 f"{info['kbps_measured']:.1f} kbit/s (asked {info['kbps']:g})")
        if any(wc.condition == name for wc in todo):
            dcube = out / "degraded" / f"{name}.cube.zarr"
            ensure_cube(str(out / "degraded" / f"{name}.zarr"), dcube, wf.features, client, echo=echo, quiet=quiet,
                        label=f"cube {name}")
            locks.enter_context(shared(str(dcube), what="feature cube"))
            deg_cubes[name] = str(dcube)
    for name in {r["condition"] for r in ledger.records.values()} - set(conditions):
        # a condition of an earlier grid: its cells stay in the results, described as they were made
        dst = out / "degraded" / f"{name}.zarr"
        conditions[name] = degradation_info(str(dst)) if dst.exists() else {}
    timings["robustness_s"] = time.perf_counter() - t

    t = time.perf_counter()
    import zarr

    uid_of = {p: zarr.open_group(p, mode="r").attrs["micfp"].get("uid")
              for p in {str(wf.cube_path), *deg_cubes.values()}}
    tasks = [(CellTask(str(wf.cube_path), wc, wf.bootstrap, deg_cubes.get(wc.condition), wf.max_train_clips,
                       tuple((p, uid_of[p]) for p in (str(wf.cube_path), deg_cubes.get(wc.condition)) if p)),)
             for wc in todo]
    attrs = {"workflow": wf.name, "config": wf.source, "cube": str(Path(wf.cube_path).resolve()),
             "store": str(store_path), "sessions": [str(s) for s in sessions], "basis": ledger.basis}

    def record(key, result):
        ledger.record(key, {**result, "condition_spec": made_as.get(result["condition"])})

    failed = True
    try:
        run_tasks_cells(client, tasks, [wc.key for wc in todo], record, quiet=quiet)
        failed = False
    finally:  # whatever finished is in the results set, even after an error or Ctrl-C
        if ledger.records:
            try:
                write_results(results_set(list(ledger.records.values()), mics, conditions, attrs), wf.results_path)
            except Exception as exc:
                if not failed:
                    raise
                echo(f"could not write {wf.results_path} after the failure: {exc}")
    timings["cells_s"] = time.perf_counter() - t
    echo(f"results: {wf.results_path} ({len(ledger.records)} cells)")

    summary = {"results": str(wf.results_path), "cells": len(cells), "computed": len(todo),
               "skipped": len(cells) - len(todo), "timings": timings}
    if report if report is not None else wf.report:
        from ..report.html import write_html_report

        t = time.perf_counter()
        html = write_html_report(wf.results_path, out / "report" / "index.html")
        timings["report_s"] = time.perf_counter() - t
        summary["report"] = str(html)
        echo(f"report: {html}")
    timings["total_s"] = time.perf_counter() - t_start
    return summary


def run_tasks_cells(client, tasks, keys, record, *, quiet=False):
    from ..cluster.runner import run_tasks

    from ..evaluation.evaluate import cell_cost

    # Costliest cells first, so no long cell starts last. Each worker keeps up to
    # CUBE_CACHE_SIZE cubes open, so cells of different conditions can interleave.
    return run_tasks(client, "cells", _cell_task, tasks, keys=keys, on_result=record, quiet=quiet,
                     cost=[cell_cost(t.work.cell) for (t,) in tasks])


# -- entry points ----------------------------------------------------------------------------
def run_from_args(args, connect) -> int:
    """``micfp run``: validate the workflow, connect, run it (optionally under a performance report).

    ``args`` carries ``workflow``, ``out``, ``performance_report``, ``no_report`` and the cluster
    options; ``connect(args)`` yields a client (it prints the dashboard link first).
    """
    import contextlib

    path = Path(args.workflow)
    if path.suffix == ".py":
        return run_script(path, _forwarded(args))
    if path.suffix != ".toml":
        raise ConfigError(f"{path}: a workflow is a .toml config or a .py script")
    wf = load_workflow(path, out=args.out)
    check_outputs(wf)
    check_before_compute(wf)  # every config error before a cluster is even started
    echo = _echo
    with connect(args) as client:
        ctx = contextlib.nullcontext()
        if args.performance_report:
            from distributed import performance_report

            Path(args.performance_report).parent.mkdir(parents=True, exist_ok=True)
            ctx = performance_report(filename=str(args.performance_report))
        with ctx:
            summary = run_workflow(wf, client, echo=echo, report=False if args.no_report else None)
    if args.performance_report:
        echo(f"performance report: {args.performance_report}")
    t = summary["timings"]
    echo(f"done: {summary['computed']} cells computed, {summary['skipped']} reused; "
         + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()))
    return 0


def _forwarded(args) -> list[str]:
    argv = []
    for opt in ("out", "performance_report", "scheduler", "cluster", "workers", "memory_limit"):
        v = getattr(args, opt, None)
        if v is not None:
            argv += [f"--{opt.replace('_', '-')}", str(v)]
    if getattr(args, "no_report", False):
        argv.append("--no-report")
    if getattr(args, "debug", False):
        argv.insert(0, "--debug")
    return argv


def run_script(path: Path, argv: list[str]) -> int:
    """Run a workflow script (``workflows/<name>.py``) as ``python <script> <argv>`` would."""
    import runpy

    if not path.is_file():
        raise ConfigError(f"{path}: no such workflow script")
    old = sys.argv
    sys.argv = [str(path), *argv]
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    return 0


def script_main(config: str | Path, argv: list[str] | None = None) -> int:
    """What ``workflows/<name>.py`` runs: ``micfp run <name>.toml`` with the script's arguments.

    Accepts ``--debug`` anywhere and the options of ``micfp run`` (``--out``, ``--scheduler``,
    ``--cluster``, ``--workers``, ``--memory-limit``, ``--performance-report``, ``--no-report``).
    """
    import argparse

    from ..cluster.options import connect_from_args
    from ..errors import exit_status
    from .options import add_run_arguments

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = argparse.ArgumentParser(prog=Path(sys.argv[0]).name, description=f"micfp run {config}")
    add_run_arguments(parser)
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.workflow, args.debug = str(config), debug
    return exit_status(lambda: run_from_args(args, connect_from_args), debug=debug, output=getattr(args, "out", None))
