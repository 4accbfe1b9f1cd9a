"""Ingest recordings (WAV/FLAC/OGG in a known layout) into the Zarr audio store.

Two halves:

- :func:`plan_ingest` (client, no cluster, no writes): reads the layout, probes every file's
  header and both of its ends, and checks sample rates, channels, lengths, labels and
  segments. All problems are collected and raised together as one :class:`InputError`,
  one line per file, so a bad corpus fails before anything is written and an existing
  store is left exactly as it was.
- :func:`ingest` (cluster): one task per (file, 5-minute shard). Each task seeks to its own
  time range, reads it in 10 s blocks, optionally resamples it, and writes and verifies whole
  shards of its recording(s). The client only plans and keeps the resume ledger; worker memory
  is one shard per task whatever the file's length.

Resume: a recording whose metadata (source path, size, fingerprint, rate, length, channel,
dtype) is unchanged keeps its written shards (and its array's ``written`` id, on which frame
features are keyed); a changed one is rewritten from scratch under a new id; recordings no
longer in the source are removed. The completeness marker is set only when
every shard of every recording is in the ledger.

A decode error found by a task (e.g. corruption inside a FLAC stream) aborts the run with
``"<path>: <problem>"``; the store then stays marked incomplete and a re-run resumes it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .audio import AudioInfo, fingerprint, nonfinite_problem, probe, read_range
from ..errors import ConfigError, InputError, one_line
from .layouts import LAYOUTS, Layout, SourceFile, read_layout
from ..artifacts.locks import locked
from ..cluster.runner import BatchedRecord, run_tasks
from ..artifacts.store import AudioStore, Recording, recording_id, write_shard, STORE_KIND
from ..artifacts.outputs import check_output, resolve

log = logging.getLogger(__name__)

ALIGN = ("shortest", "keep")
#: Without an explicit ``--align``, a session is not cut to a file shorter than this fraction
#: of its longest file: such a file is more likely broken than a take that stopped early.
ALIGN_MIN_FRACTION = 0.5
#: Resampling margin on each side of a task's range, in seconds of input: far longer than
#: soxr's filters, and a whole second keeps input and output offsets integers at any rate pair.
RESAMPLE_MARGIN_S = 1


@dataclass(frozen=True)
class IngestSettings:
    """How to read a recording folder.

    Parameters
    ----------
    layout : str
        ``auto`` (kaggle or manifest), ``kaggle``, ``manifest`` or ``tree``.
    manifest : str, optional
        Manifest CSV (implies the manifest layout).
    resample : int, optional
        Target sample rate; without it, files of different rates are an error.
    channel : int or "each", optional
        Which channel of multi-channel files to keep, or ``"each"`` for one recording per
        channel. Multi-channel files without it are an error.
    pattern : str, optional
        Regular expression of the ``tree`` layout (named groups ``mic``, ``session``).
    align : str, optional
        Files of one session with different lengths: cut to the ``shortest`` or ``keep`` each
        length. Either way the difference is reported. Not given (``None``): cut to the
        shortest, but refuse a session whose shortest file is shorter than
        :data:`ALIGN_MIN_FRACTION` of its longest (a 1-sample or cut-off file would otherwise
        silently cut every recording of the session); ``shortest`` cuts anyway.
    root_only : bool
        Refuse files outside the recording folder (the manifest's folder for a manifest),
        following symbolic links. Without it, a manifest may name files anywhere.
    """

    layout: str = "auto"
    manifest: str | None = None
    resample: int | None = None
    channel: int | str | None = None
    pattern: str | None = None
    align: str | None = None
    root_only: bool = False

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ConfigError(f"--layout {self.layout!r}: choose one of {', '.join(LAYOUTS)}")
        if self.align is not None and self.align not in ALIGN:
            raise ConfigError(f"--align {self.align!r}: choose one of {', '.join(ALIGN)}")
        if not isinstance(self.root_only, bool):
            raise ConfigError(f"root_only {self.root_only!r}: expected true or false")
        if self.resample is not None and not (1000 <= int(self.resample) <= 768_000):
            raise ConfigError(f"--resample {self.resample}: expected a sample rate in Hz (1000-768000)")
        ch = self.channel
        if ch is not None and ch != "each" and not (isinstance(ch, int) and ch >= 0):
            raise ConfigError(f"--channel {ch!r}: expected a channel index (0, 1, ...) or 'each'")
        if self.pattern is not None and self.layout not in ("tree", "auto"):
            raise ConfigError(f"--pattern only applies to --layout tree, not {self.layout}")

    @property
    def kind(self) -> str:
        return "tree" if self.pattern is not None and self.layout == "auto" else self.layout


@dataclass(frozen=True)
class Source:
    """One store recording and where it comes from."""

    file: SourceFile
    info: AudioInfo
    channel: int | None  # None: mono file
    recording: Recording


@dataclass(frozen=True)
class IngestPlan:
    """Everything :func:`ingest` needs, checked: recordings, their sources, mics and segments."""

    layout: Layout
    sample_rate: int
    sources: tuple[Source, ...]
    mics: dict[int, str]
    segments: dict[str, tuple]
    warnings: tuple[str, ...] = ()
    models: dict[int, str] = field(default_factory=dict)  # {label: model} (mics.csv's model column)

    @property
    def recordings(self) -> tuple[Recording, ...]:
        return tuple(s.recording for s in self.sources)

    @property
    def seconds(self) -> float:
        return sum(r.duration_s for r in self.recordings)


@dataclass
class IngestReport:
    """What a run did: counts, audio seconds and bytes read, wall time, warnings."""

    store: str
    recordings: int
    seconds: float
    shards_total: int
    shards_written: int
    bytes_read: int
    wall_s: float
    warnings: list[str] = field(default_factory=list)

    @property
    def x_realtime(self) -> float:
        return self.seconds * self.shards_written / max(self.shards_total, 1) / max(self.wall_s, 1e-9)

    def summary(self) -> str:
        h = self.seconds / 3600
        skipped = self.shards_total - self.shards_written
        resumed = f", {skipped} shards already written" if skipped else ""
        return (f"ingested {self.recordings} recordings ({h:.2f} h of audio) into {self.store} in "
                f"{self.wall_s:.1f} s ({self.x_realtime:.0f}x real time{resumed})")


# -- planning (client side, no writes) --------------------------------------------------------
def _problem_error(problems: list[str]) -> InputError:
    if len(problems) == 1:
        return InputError(f"{problems[0]} (nothing was written)")
    return InputError(f"{len(problems)} problems in the input (nothing was written):", problems)


def _channels(info: AudioInfo, channel) -> tuple[list[int | None], str | None]:
    if info.channels == 1:
        if isinstance(channel, int) and channel > 0:
            return [], f"{info.path}: --channel {channel} but the file is mono"
        return [None], None
    if channel is None:
        return [], (f"{info.path}: has {info.channels} channels; pass --channel K (0-{info.channels - 1}) "
                    "or --channel each")
    if channel == "each":
        return list(range(info.channels)), None
    if channel >= info.channels:
        return [], f"{info.path}: --channel {channel} but the file has {info.channels} channels"
    return [channel], None


def _short_file(session: str, lengths: dict[str, int], rate: int) -> str | None:
    """The problem when aligning ``session`` would cut it to a file much shorter than its longest."""
    short, n = min(lengths.items(), key=lambda kv: kv[1])
    long, m = max(lengths.items(), key=lambda kv: kv[1])
    if n >= ALIGN_MIN_FRACTION * m:
        return None
    samples = f"{n} sample{'s' if n != 1 else ''}"
    return (f"{short}: {samples} ({n / rate:.3f} s), the longest file of session {session!r} has {m} "
            f"({m / rate:.3f} s, {long}); aligning would cut every recording of the session to {n / rate:.3f} s: "
            "replace the file, or pass --align shortest to cut or --align keep to keep each length")


def plan_ingest(src: str, settings: IngestSettings | None = None) -> IngestPlan:
    """Read and check a recording folder; raise one :class:`InputError` listing every problem.

    Parameters
    ----------
    src : str
        Recording folder, or a manifest CSV.
    settings : IngestSettings, optional

    Returns
    -------
    IngestPlan
        The recordings to write and non-fatal findings (``warnings``: sessions whose files
        differ in length, skipped files).
    """
    settings = settings or IngestSettings()
    layout = read_layout(src, settings.kind, manifest=settings.manifest, pattern=settings.pattern,
                         root_only=settings.root_only)
    problems, warnings = list(layout.problems), list(layout.warnings)
    infos: dict[str, AudioInfo] = {}
    for f in layout.files:
        try:
            infos[f.path] = probe(f.path)
        except InputError as exc:
            problems.append(str(exc))

    rates = defaultdict(list)
    for info in infos.values():
        rates[info.sample_rate].append(info.path)
    if settings.resample:
        target = int(settings.resample)
    elif len(rates) > 1:
        listing = ", ".join(f"{r} Hz ({len(p)} files, e.g. {p[0]})" for r, p in sorted(rates.items()))
        problems.append(f"{layout.root}: mixed sample rates: {listing}; pass --resample HZ")
        target = 0
    else:
        target = next(iter(rates), 0)

    def n_out(info: AudioInfo) -> int:
        return info.frames if info.sample_rate == target or not target else info.frames * target // info.sample_rate

    # Lengths per session: report differences, align to the shortest unless asked to keep.
    by_session: dict[str, list[SourceFile]] = defaultdict(list)
    for f in layout.files:
        if f.path in infos:
            by_session[f.session].append(f)
    length: dict[str, int] = {}
    cut = settings.align != "keep"
    for session, files in by_session.items():
        lengths = {f.path: n_out(infos[f.path]) for f in files}
        shortest = min(lengths.values())
        if target and len(set(lengths.values())) > 1:
            problem = _short_file(session, lengths, target) if settings.align is None else None
            if problem:
                problems.append(problem)
            listing = ", ".join(f"{p} {n / target:.3f} s" for p, n in lengths.items())
            action = (f"aligned to the shortest ({shortest / target:.3f} s); --align keep keeps each length"
                      if cut else "kept (--align keep)")
            warnings.append(f"session {session!r}: files differ in length: {listing}; {action}")
        for p, n in lengths.items():
            length[p] = shortest if cut else n
        if target and session in layout.segments:
            where = layout.segment_files.get(session, session)
            for a, b, t in layout.segments[session]:
                if b > shortest / target + 1.0 / target:
                    problems.append(f"{where}: segment {a:g}-{b:g} s ({t}) ends after the recording "
                                    f"({shortest / target:.3f} s, session {session!r})")
                    break
    for session in sorted(set(layout.segments) - set(by_session)):
        problems.append(f"{layout.segment_files.get(session, session)}: segments for session {session!r}, "
                        "which has no recordings")

    sources, rid_owner = [], {}
    for f in layout.files:
        info = infos.get(f.path)
        if info is None:
            continue
        channels, problem = _channels(info, settings.channel)
        problem = problem or nonfinite_problem(info, [ch or 0 for ch in channels])
        if problem:
            problems.append(problem)
            continue
        for ch in channels:
            rid = recording_id(f.session, f.label, ch if (ch is not None and settings.channel == "each") else None)
            # Case-folded: on a case-insensitive file system (macOS, Windows) "Day" and "day" are one folder.
            other, other_rid = rid_owner.get(rid.casefold(), (None, None))
            if other is not None:
                if other.session != f.session:  # same session: already reported as a duplicate label
                    why = "differ only in letter case" if other_rid != rid else "have colliding ids"
                    problems.append(f"{f.path}: recording id {rid!r} clashes with {other_rid!r} of {other.path} "
                                    f"(sessions {f.session!r} and {other.session!r} {why}; rename one)")
                continue
            rid_owner[rid.casefold()] = (f, rid)
            rec = Recording(id=rid, mic=f.mic, label=f.label, session=f.session, sample_rate=target,
                            n_samples=length[f.path], dtype=info.dtype, source_path=f.path,
                            source_size=info.size, checksum=fingerprint(info), channel=ch or 0)
            sources.append(Source(f, info, ch, rec))
    if problems:
        raise _problem_error(problems)
    if not sources:
        raise InputError(f"{src}: no recordings to ingest")
    mics = {s.file.label: s.file.mic for s in sources}
    models = {lab: m for lab, m in layout.models.items() if lab in mics}
    return IngestPlan(layout, target, tuple(sources), mics, dict(layout.segments), tuple(warnings), models)


# -- worker side -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardTask:
    """Write output samples ``[start, stop)`` of one source file's recording(s) into their shards."""

    source: str
    store: str
    rids: tuple[str, ...]
    channels: tuple[int, ...]
    start: int
    stop: int
    src_rate: int
    dst_rate: int
    src_frames: int
    dtype: str
    uid: str | None = None  # the store's identity, checked by the worker before it writes


def to_pcm(y: np.ndarray, dtype: str) -> np.ndarray:
    """Float samples (full scale 1.0) to the store's sample type, rounded and clipped."""
    if np.dtype(dtype).kind == "f":
        return y.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(y * (float(info.max) + 1.0)), info.min, info.max).astype(dtype)


def read_task_audio(task: ShardTask) -> np.ndarray:
    """The task's output samples, ``(stop - start, len(rids))``, resampled if the rates differ."""
    if task.src_rate == task.dst_rate:
        return read_range(task.source, task.start, task.stop, task.channels, task.dtype,
                          expect_frames=task.src_frames, drop_cache=True)
    import soxr

    src, dst = task.src_rate, task.dst_rate
    # Tasks start on whole seconds (shards are whole seconds long), so a_in is an integer.
    a_in = task.start * src // dst
    lead = min(RESAMPLE_MARGIN_S * src, a_in)
    b_in = -(-task.stop * src // dst) + RESAMPLE_MARGIN_S * src
    work = "float64" if task.dtype == "int32" else "float32"
    x = read_range(task.source, a_in - lead, min(b_in, task.src_frames), task.channels, work,
                   expect_frames=task.src_frames, drop_cache=True)
    y = soxr.resample(x, src, dst, quality="HQ")
    off = lead * dst // src
    out = np.zeros((task.stop - task.start, x.shape[1]), dtype=work)
    got = y[off : off + out.shape[0]]
    out[: got.shape[0]] = got
    return to_pcm(out, task.dtype)


def ingest_shard(task: ShardTask) -> list[tuple[int, float]]:
    """Worker task: read, write and verify one shard of each of the task's recordings.

    Returns ``(crc32, peak |sample|)`` per recording.
    """
    data = read_task_audio(task)
    out = []
    for i, rid in enumerate(task.rids):
        col = np.ascontiguousarray(data[:, i])
        crc = write_shard(task.store, rid, task.start, col, uid=task.uid)
        peak = max(float(col.max()), -float(col.min())) if col.size else 0.0  # no float copy of the shard
        out.append((crc, peak))
    return out


# -- driver ----------------------------------------------------------------------------------
@locked("store_path", "audio store")
def ingest(src: str, store_path: str, client, settings: IngestSettings | None = None, *,
           plan: IngestPlan | None = None, quiet: bool = False) -> IngestReport:
    """Ingest a recording folder (or manifest) into the audio store at ``store_path``.

    Parameters
    ----------
    src : str
        Recording folder or manifest CSV.
    store_path : str
        Zarr store to create or resume.
    client : distributed.Client
    settings : IngestSettings, optional
    plan : IngestPlan, optional
        A plan already made by :func:`plan_ingest` (the CLI checks input before connecting).
    quiet : bool
        No progress bar. Warnings (a silent file, files of different lengths) are logged.

    Returns
    -------
    IngestReport
    """
    t0 = time.perf_counter()
    store_path = check_output(store_path, STORE_KIND, inputs=(src, settings.manifest if settings else None),
                              what="audio store")
    plan = plan or plan_ingest(src, settings)
    for w in plan.warnings:
        log.warning(one_line(f"micfp: warning: {w}"))
    store = AudioStore.create(store_path, plan.sample_rate, mics=plan.mics, models=plan.models,
                              segments={k: list(v) for k, v in plan.segments.items()})
    wanted = {r.id for r in plan.recordings}
    audio = store.group["audio"]
    for stale in sorted(set(audio.array_keys()) - wanted):
        del audio[stale]
    for r in plan.recordings:
        store.add_recording(r)
    store.mark_incomplete()

    by_file: dict[str, list[Source]] = defaultdict(list)
    for s in plan.sources:
        by_file[s.file.path].append(s)
    tasks, keys, total = [], [], 0
    for path, srcs in by_file.items():
        rec, info = srcs[0].recording, srcs[0].info
        rids = tuple(s.recording.id for s in srcs)
        done = set.intersection(*(store.shards_done(rid) for rid in rids))
        ranges = rec.shard_ranges(store.shard_samples)
        total += len(ranges)
        for i, (a, b) in enumerate(ranges):
            if i not in done:
                # Paths resolved here: workers may run in another folder (or on another host).
                tasks.append((ShardTask(resolve(path), store.path, rids, tuple(s.channel or 0 for s in srcs), a, b,
                                        info.sample_rate, plan.sample_rate, info.frames, rec.dtype, store.uid),))
                keys.append((rids, i, len(ranges)))
    peaks: dict[str, list[float]] = defaultdict(list)

    with BatchedRecord(store.record_done) as ledger:
        def record(key, result):
            for rid, (_crc, peak) in zip(key[0], result):
                peaks[rid].append(peak)
            ledger(key, result)

        run_tasks(client, "ingest (shards)", ingest_shard, tasks, keys=keys, on_result=record, quiet=quiet)
    store.mark_complete()

    warnings = list(plan.warnings)
    n_shards = {rid: n for rids, _, n in keys for rid in rids}
    for s in plan.sources:
        rid = s.recording.id
        if len(peaks.get(rid, [])) == n_shards.get(rid, -1) and max(peaks[rid]) == 0.0:
            w = f"{s.file.path}: all samples are zero (silent recording{'' if s.channel is None else f', channel {s.channel}'})"
            warnings.append(w)
            log.warning(one_line(f"micfp: warning: {w}"))
    frac = len(tasks) / max(total, 1)
    return IngestReport(store=store.path, recordings=len(plan.sources), seconds=plan.seconds, shards_total=total,
                        shards_written=len(tasks), bytes_read=int(sum(i.size for i in {s.info.path: s.info for s
                                                                       in plan.sources}.values()) * frac),
                        wall_s=time.perf_counter() - t0, warnings=warnings)
