"""Workflow configs: the TOML schema, its dataclasses and :func:`load_workflow`.

Every config error is raised before any compute, naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..artifacts.outputs import RUN_KIND, resolve
from ..artifacts.results import CLEAN
from ..errors import ConfigError
from ..robustness.degrade import Degradation


# -- config ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusConfig:
    """Where the clips come from: exactly one of a simulated plan, a store, a recordings folder or
    an existing feature cube (``cube``: used as it is, no audio or feature stage)."""

    kind: str  # "simulate" | "store" | "recordings" | "cube"
    path: str | None = None
    minutes_per_session: tuple[float, ...] = (4.0, 2.0)
    seed: int = 0
    sources: str | None = None
    ingest: tuple = ()  # IngestSettings fields, as (key, value) pairs
    studio: str = "thesis"  # simulate: the studio (pipeline.simulate.studios.STUDIOS)
    positions: str | None = None  # simulate: "rotate" | "fixed" (default: the studio's)


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
    results: str = "results.zarr"  # the results set, relative to ``out``
    report: bool = True
    report_dir: str = "report"  # the report files (metrics, confusion matrices), relative to ``out``
    html: str = "report/index.html"  # the HTML report, relative to ``out``
    out_kind: str = RUN_KIND  # what ``out`` is marked as (``micfp evaluate``: a report folder)
    out_what: str = "workflow output folder"  # how errors about ``out`` name it

    @property
    def conditions(self) -> dict[str, Degradation | None]:
        return {CLEAN: None, **{d.name: d for d in self.degradations}}

    @property
    def results_path(self) -> Path:
        return Path(self.out) / self.results

    @property
    def cube_path(self) -> Path:
        return Path(self.corpus.path) if self.corpus.kind == "cube" else Path(self.out) / "cube.zarr"



_SECTIONS = {
    "workflow": {"name", "description", "out", "bootstrap", "max_train_clips", "results", "report"},
    "corpus": {"simulate", "store", "recordings", "cube"},
    "features": {"feature_sets", "clip_seconds", "segmentations", "window_s", "frame", "silence"},
    "grid": {"clip_seconds", "sound_types", "feature_sets", "classifiers", "protocols", "segmentations",
             "conditions"},
    "robustness": {"snr_db", "codecs", "seed"},
}
_SIMULATE_KEYS = {"minutes_per_session", "seed", "sources", "studio", "positions"}
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
    from ..evaluation.models import CLASSIFIERS
    from ..evaluation.protocols import PROTOCOLS, SCORERS, check_max_train
    from ..features import FeatureConfig, clip_lengths
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
    if corpus.kind == "cube" and "robustness" in doc:
        top.fail("[robustness] needs the audio: use a store, recordings or simulate corpus, not a cube")

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
                                      ("classifier", spec.classifiers, CLASSIFIERS + SCORERS),
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
    missing = clip_lengths.missing(need_clips, clip_seconds)
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
        raise ConfigError(f"{src}: no [corpus] table: name a simulate plan, a store, a recordings folder or a cube")
    c = _Reader(src, "corpus", table, _SECTIONS["corpus"])
    given = [k for k in ("simulate", "store", "recordings", "cube") if k in table]
    if len(given) != 1:
        c.fail("[corpus] needs exactly one of simulate, store, recordings, cube"
               + (f" (has {', '.join(given)})" if given else ""))
    kind = given[0]
    if kind == "cube":
        path = c.get("cube", str)
        if not Path(path).exists():
            c.fail(f"[corpus] cube = {path!r}: no such feature cube")
        return CorpusConfig("cube", path=resolve(path))  # absolute: workers may run in another folder
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
    studio, positions = s.get("studio", str, "thesis"), s.get("positions", str)
    from ..simulate.room import POSITION_POLICIES
    from ..simulate.studios import STUDIOS

    if studio not in STUDIOS:
        s.fail(f"[corpus.simulate] studio = {studio!r}: expected one of {', '.join(STUDIOS)}")
    if positions is not None and positions not in POSITION_POLICIES:
        s.fail(f"[corpus.simulate] positions = {positions!r}: expected one of {', '.join(POSITION_POLICIES)}")
    return CorpusConfig("simulate", minutes_per_session=minutes, seed=s.get("seed", int, 0), sources=sources,
                        studio=studio, positions=positions)


def _ingest_settings(c: CorpusConfig):
    from ..io.ingest import IngestSettings

    try:
        return IngestSettings(**dict(c.ingest))
    except TypeError as exc:
        raise ConfigError(f"[corpus.recordings] {exc}") from None
