"""The feature stage on Dask: frame features once per recording, then clip features into a cube.

1. Frames: one task per audio shard reads its samples (plus ``n_fft - hop`` samples of the
   next shard) and writes the frame features of exactly the frames that start in it, so the
   blocks tile the recording and equal a whole-signal computation. Stored in a Zarr group
   beside the cube and reused by later runs with the same settings (resume ledger per block).
2. Clips: one task per (recording, sound-type segment, window of minutes) cuts clips of every
   configured length (and the silence split), reduces frames to clip statistics, and computes
   the thesis features of all its clips at once from their audio where asked
   (:mod:`pipeline.features.thesis_frames`). Clips never cross a segment boundary.
3. The cube: an xarray Dataset written to Zarr from the workers' results, marked complete last.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from ..errors import ConfigError, InputError
from ..artifacts.locks import locked, exclusive, lock_path
from ..cluster.runner import BatchedRecord, run_tasks
from ..artifacts.store import AudioStore
from ..artifacts.kinds import CUBE_KIND, FRAMES_KIND, PARTS_KIND
from ..artifacts.outputs import new_uid, remove_artifact, verify_seen
from ..artifacts.swap import check_replaceable, discard, remove_stale, swap_in, temp_sibling
from ..artifacts.rows import RowRun, row_runs
from ..artifacts.conventions import annotate, consolidate
# The stored cube is opened and checked in pipeline.artifacts.cube; its openers are re-exported
# here, where callers (and ``pipeline.features.open_cube``) have always found them.
from ..artifacts.cube import (cache_stats, cached_cube, check_cube, clear_cache, cube_outputs,  # noqa: F401
                              cube_uid, frames_path_for, open_cube, open_rows)
from . import clip_lengths, lowband, relative
from .clip_stats import clip_stats
from . import sets as fsets
from .clips import SilenceSettings, clip_frame_range, fixed_clips, silence_clips, used_columns
from .frames import FrameSettings, frame_features
from .thesis_frames import thesis_clip_features

SEGMENTATIONS = ("fixed", "silence")
CLIP_COORDS = ("mic", "label", "session", "recording", "sound_type", "clip_seconds", "start_s", "end_s",
               "segmentation")


@dataclass(frozen=True)
class FeatureConfig:
    """What the feature stage computes.

    Parameters
    ----------
    feature_sets : tuple of str
        Any of ``thesis``, ``spectral``, ``channel``, ``session-relative``, ``all``.
    clip_seconds : tuple of float
        Fixed clip lengths; each must hold at least one frame.
    segmentations : tuple of str
        ``fixed`` (consecutive clips of each length) and/or ``silence`` (the thesis's split).
    window_s : float
        Length of the stretch of audio one clip task handles.
    """

    feature_sets: tuple[str, ...] = ("all",)
    clip_seconds: tuple[float, ...] = (0.5, 1.0, 2.0)
    segmentations: tuple[str, ...] = ("fixed",)
    silence: SilenceSettings = field(default_factory=SilenceSettings)
    frame: FrameSettings = field(default_factory=FrameSettings)
    window_s: float = 300.0

    def __post_init__(self):
        fsets.expand(self.feature_sets)
        for seg in self.segmentations:
            if seg not in SEGMENTATIONS:
                raise ConfigError(f"unknown segmentation {seg!r}; choose from {', '.join(SEGMENTATIONS)}")
        if not self.segmentations:
            raise ConfigError("at least one segmentation is needed")
        if "fixed" in self.segmentations and not self.clip_seconds:
            raise ConfigError("fixed segmentation needs at least one clip length")
        clip_lengths.check(self.clip_seconds, self.frame)

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def check_store(self, store: AudioStore) -> None:
        """Errors that need the store: sample rate and clips longer than every recording."""
        if store.sample_rate != self.frame.sample_rate:
            raise ConfigError(
                f"{store.path}: sample rate {store.sample_rate} Hz, but the feature settings expect "
                f"{self.frame.sample_rate} Hz"
            )
        longest = max((r.duration_s for r in store.recordings()), default=0.0)
        too_long = clip_lengths.longer_than(self.clip_seconds, longest)
        if too_long:
            raise ConfigError(f"clip length {too_long[0]} s is longer than every recording (longest {longest:.1f} s)")


def _frame_block(store_path: str, rid: str, f0: int, f1: int, frames_path: str, fs: FrameSettings,
                 seen: tuple = ()) -> int:
    for path, uid in seen:  # (path, uid) of the store and frame store the client made
        verify_seen(path, uid)
    audio = zarr.open_array(f"{store_path}/audio/{rid}", mode="r")
    # through the last frame's long frame (lowband.py), where the recording has it
    y = audio[f0 * fs.hop : (f1 - 1) * fs.hop + max(fs.n_fft, lowband.layout(fs).span)]
    feats = frame_features(y, fs, n_frames=f1 - f0)
    if feats.shape[0] != f1 - f0:
        raise InputError(f"{store_path}: recording {rid} is shorter than its metadata says")
    g = zarr.open_group(frames_path, mode="r+")
    g[f"frames/{rid}"][f0:f1] = feats
    g[f"rms/{rid}"][f0:f1] = feats[:, 0]
    return f1 - f0


#: Codec of stored float32 features (frames and the cube's ``features``): they compress little
#: (zstd-1: 13.0 MB for a 16.8 MB frame block, lz4: 13.3 MB) and lz4 encodes about 3x faster
#: and decodes faster, which the frame stage, the cube assembly and every evaluation pay.
FEATURES_CODEC = BloscCodec(cname="lz4", clevel=1, shuffle=BloscShuffle.shuffle)


@functools.lru_cache(maxsize=1)
def frames_code_version() -> str:
    """micfp's version and a digest of the frame-feature code (``features/frames.py``, ``lowband.py``).

    Part of the frame store's key: frames computed by other code are recomputed, not reused.
    """
    from ..version import __version__
    from . import frames

    try:
        code = Path(frames.__file__).read_bytes() + Path(lowband.__file__).read_bytes()
    except OSError:  # no source beside the module (a frozen install): the version alone
        return __version__
    return f"{__version__}+{hashlib.blake2b(code, digest_size=8).hexdigest()}"


def compute_frames(store: AudioStore, frames_path: str, fs: FrameSettings, client, *, quiet=False) -> zarr.Group:
    """Frame features of every recording into ``frames_path``; finished blocks are kept.

    Frames are reused only when everything that determines them is unchanged: the store, the
    frame settings, the feature code (:func:`frames_code_version`) and, per recording, its
    :meth:`~pipeline.artifacts.store.AudioStore.identity` (metadata such as source, channel, rate and
    length, and the id of the array's last write). Anything else is recomputed.
    """
    settings = dataclasses.asdict(fs)
    g = zarr.open_group(frames_path, mode="a", zarr_format=3)
    meta = dict(g.attrs.get("micfp", {}))
    if meta and (meta.get("kind") != FRAMES_KIND or meta.get("settings") != settings
                 or meta.get("store") != store.path or meta.get("code") != frames_code_version()):
        for k in list(g.keys()):
            del g[k]
        meta = {}
    uid = new_uid()  # this run's identity, checked by the workers
    g.attrs["micfp"] = {"kind": FRAMES_KIND, "settings": settings, "store": store.path,
                        "code": frames_code_version(), "names": list(fs.feature_names), "complete": False,
                        "uid": uid}
    seen = ((store.path, store.uid), (frames_path, uid))
    block = max(1, store.shard_samples // fs.hop)
    n_feat = len(fs.feature_names)
    tasks, keys = [], []
    for rec in store.recordings():
        n = fs.n_frames(rec.n_samples)
        fr = g.require_group("frames")
        rm = g.require_group("rms")
        source = store.identity(rec.id)
        if rec.id in fr and fr[rec.id].shape == (n, n_feat) and fr[rec.id].attrs.get("source") == source:
            done = set(fr[rec.id].attrs.get("blocks_done", []))
        else:
            for grp in (fr, rm):
                if rec.id in grp:
                    del grp[rec.id]
            fr.create_array(rec.id, shape=(n, n_feat), dtype="float32", chunks=(block, n_feat),
                            compressors=FEATURES_CODEC, attributes={"source": source, "blocks_done": []})
            rm.create_array(rec.id, shape=(n,), dtype="float32", chunks=(block,), compressors=FEATURES_CODEC)
            done = set()
        for i, f0 in enumerate(range(0, n, block)):
            if i not in done:
                tasks.append((store.path, rec.id, f0, min(n, f0 + block), frames_path, fs, seen))
                keys.append((rec.id, i))

    def record(items):
        by_rec: dict[str, set[int]] = {}
        for (rid, i), _n in items:
            by_rec.setdefault(rid, set()).add(i)
        for rid, blocks in by_rec.items():
            arr = g[f"frames/{rid}"]
            arr.attrs["blocks_done"] = sorted(set(arr.attrs.get("blocks_done", [])) | blocks)

    with BatchedRecord(record) as on_result:
        # Longest blocks first (a recording's last block is short): none is left to run alone at the end.
        run_tasks(client, "features: frames", _frame_block, tasks, keys=keys, on_result=on_result, quiet=quiet,
                  cost=[t[3] - t[2] for t in tasks])
    g.attrs["micfp"] = {**g.attrs["micfp"], "complete": True}
    return g


# -- stage 2: clips --------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipTask:
    """One window of one recording: the clips that start in it, segment by segment.

    Windows are aligned to the frame store's blocks, so a task reads about one block of
    frames however many (short) sound-type segments fall in it.
    """

    store_path: str
    frames_path: str
    rid: str
    win_start: int
    win_stop: int
    segments: tuple[tuple[int, int, str], ...]  # (start, stop, sound type) overlapping the window


@functools.lru_cache(maxsize=16)
def _stat_columns(feature_sets: tuple[str, ...], fs: FrameSettings) -> dict[str, np.ndarray]:
    """Frame-feature columns each clip statistic needs for these sets (the rest are skipped)."""
    derived = [n for n in fsets.expand(feature_sets) if n != "thesis"]
    keys = ["mean", "std"] + [f"p{q:g}" for q in fsets.needs_percentiles(feature_sets)]
    if not derived:
        return {k: np.zeros(0, np.int64) for k in keys}
    return used_columns(lambda st: np.concatenate([fsets.from_frame_stats(n, st, fs) for n in derived], axis=1),
                        len(fs.feature_names), keys)


def _clip_window(task: ClipTask, config: FeatureConfig) -> tuple[dict, np.ndarray]:
    fs = config.frame
    sr = fs.sample_rate
    g = zarr.open_group(task.frames_path, mode="r")
    pieces = []  # (start, stop, nominal seconds, segmentation, sound type)
    rms, rms0 = None, 0
    if "silence" in config.segmentations and task.segments:
        # One read of the frame RMS for every segment (silence is found per whole segment).
        f0s, f1s = clip_frame_range([s[0] for s in task.segments], [s[1] for s in task.segments], fs)
        rms0 = int(f0s.min())
        rms = g[f"rms/{task.rid}"][rms0 : int(f1s.max())]
    for seg_start, seg_stop, sound_type in task.segments:
        if "fixed" in config.segmentations:
            for L in config.clip_seconds:
                n = clip_lengths.samples(L, sr)
                st = fixed_clips(seg_start, seg_stop, n)
                st = st[(st >= task.win_start) & (st < task.win_stop)]
                pieces += [(a, a + n, float(L), "fixed", sound_type) for a in st]
        if rms is not None:
            for a, b in silence_clips(rms, rms0, seg_start, seg_stop, fs, config.silence):
                if task.win_start <= a < task.win_stop:
                    pieces.append((int(a), int(b), 0.0, "silence", sound_type))
    names, _ = fsets.feature_layout(config.feature_sets, fs)
    coords = {"start": np.array([p[0] for p in pieces], np.int64), "stop": np.array([p[1] for p in pieces], np.int64),
              "clip_seconds": np.array([p[2] for p in pieces], np.float64),
              "segmentation": np.array([p[3] for p in pieces], dtype=object),
              "sound_type": np.array([p[4] for p in pieces], dtype=object)}
    if not pieces:
        return coords, np.zeros((0, len(names)), np.float32)
    c0, c1 = clip_frame_range(coords["start"], coords["stop"], fs)
    frame0, frame1 = int(c0.min()), int(c1.max())
    sets = fsets.expand(config.feature_sets)
    stats = None
    if any(name != "thesis" for name in sets):
        frames = g[f"frames/{task.rid}"][frame0:frame1]
        stats = clip_stats(frames, coords["start"], coords["stop"], fs, frame0=frame0,
                                   percentiles=fsets.needs_percentiles(config.feature_sets),
                                   columns=_stat_columns(tuple(config.feature_sets), fs))
    blocks = []
    for name in sets:
        if name == "thesis":
            a0, a1 = int(coords["start"].min()), int(coords["stop"].max())
            audio = zarr.open_array(f"{task.store_path}/audio/{task.rid}", mode="r")[a0:a1]
            blocks.append(thesis_clip_features(audio, a0, coords["start"], coords["stop"], sr))
        else:
            blocks.append(fsets.from_frame_stats(name, stats, fs))
    return coords, np.concatenate(blocks, axis=1).astype(np.float32)


def _clip_part(task: ClipTask, config: FeatureConfig, parts_path: str, part: int, uid: str | None = None) -> dict:
    """Clip features of one window written to ``parts_path/<part>``; returns the coordinates.

    Features go to disk, not back to the client or into worker memory, so memory stays flat
    however long the corpus; the cube is then assembled chunk by chunk from the parts.
    ``uid``: the parts group's, checked before anything is read or written.
    """
    verify_seen(parts_path, uid)
    coords, X = _clip_window(task, config)
    if X.shape[0]:
        # Rows grouped by segmentation and clip length (stable), so the assembly reads each
        # group of a part as one contiguous slice of a few small chunks.
        seg = np.unique(coords["segmentation"].astype(str), return_inverse=True)[1]
        order = np.lexsort((coords["clip_seconds"], seg))
        coords = {k: v[order] for k, v in coords.items()}
        zarr.open_group(parts_path, mode="r+").create_array(  # temporary: uncompressed, read once
            str(part), data=X[order], chunks=(PART_ROWS, X.shape[1]), compressors=None, overwrite=True)
    return coords


#: Bytes of float32 features per cube chunk (all features of a run of clips). An evaluation
#: cell reads its rows a chunk at a time, and each read holds the chunk's compressed bytes and
#: its decoded copy: at 32 MB chunks, reading a 0.5 s cell's 20,000 training clips at 37.5 h
#: added 133 MB to the worker; 8 MB chunks keep that small (``benchmarks/README.md``, session 5).
CUBE_CHUNK_BYTES = 8 * 2**20
#: Cube chunks each assembly task writes: with one task per 8 MB chunk the clip stage took
#: 2.3 s longer on 2 workers (250 tasks at 37.5 h instead of 62).
GATHER_CHUNKS = 4

#: Rows per chunk of the temporary part arrays (what a slice of one group reads beyond its rows).
PART_ROWS = 512


#: Clips per chunk of the cube's string coordinates, encoded by one worker task each.
COORD_CHUNK = 2**18
#: The dtype xarray writes as variable-length UTF-8 strings without loading a dask array to infer it.
VLEN_STR = np.dtype(object, metadata={"element_type": str})


def _label_codes(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``labels[codes]``: one chunk of a string coordinate from its integer codes."""
    return labels[codes]


def _gather_rows(parts_path: str, pieces: tuple[tuple[int, int, int], ...], n_features: int,
                 uid: str | None = None) -> np.ndarray:
    """Rows ``[a, b)`` of part ``p`` for each ``(p, a, b)`` in ``pieces``, stacked: one cube chunk."""
    verify_seen(parts_path, uid)
    g = zarr.open_group(parts_path, mode="r")
    if not pieces:
        return np.zeros((0, n_features), np.float32)
    return np.concatenate([g[str(p)][a:b] for p, a, b in pieces])


def _clip_cost(task: ClipTask) -> int:
    """A clip task's work, for running the longest first: the samples of its segments in its window."""
    return sum(max(0, min(b, task.win_stop) - max(a, task.win_start)) for a, b, _ in task.segments)


def plan_clip_tasks(store: AudioStore, frames_path: str, config: FeatureConfig) -> list[tuple[ClipTask, dict]]:
    """Clip tasks (one per recording and window) with their constant coordinates."""
    sr = store.sample_rate
    win = int(round(config.window_s * sr))
    out = []
    for rec in store.recordings():
        segs = [(int(round(s.start_s * sr)), min(int(round(s.end_s * sr)), rec.n_samples), str(s.sound_type))
                for s in store.segments(rec.session, rec.n_samples).itertuples()]
        segs = [s for s in segs if s[1] > s[0]]
        const = dict(mic=rec.mic, label=rec.label, session=rec.session, recording=rec.id)
        for w in range(0, rec.n_samples, win):
            mine = tuple(s for s in segs if s[0] < w + win and s[1] > w)
            if mine:
                out.append((ClipTask(store.path, frames_path, rec.id, w, min(rec.n_samples, w + win), mine), const))
    return out


@locked("cube_path", "feature cube", reads=(("store_path", "audio store"),))
def compute_cube(store_path: str, cube_path: str, config: FeatureConfig, client, *,
                 frames_path: str | None = None, quiet: bool = False, attrs: dict | None = None):
    """Compute the feature cube of an audio store on the cluster and write it to ``cube_path``.

    Holds the cube's (and the frame store's) write lock and the audio store's read lock for
    the whole computation. A local cube is written beside ``cube_path`` and swapped in whole
    when complete (:func:`pipeline.swap.swap_in`), so a reader sees the old cube or the new
    one, never a mix, and an interrupted run leaves the old cube intact.

    ``attrs``: more ``micfp`` metadata for the cube (a workflow's store fingerprint), written with
    the rest before the swap, so the cube is never seen without it.

    Returns the cube opened with :func:`open_cube`.
    """
    frames_path = frames_path or frames_path_for(cube_path)
    with exclusive(frames_path, what="frame store"):
        return _compute_cube(store_path, str(cube_path), config, client, frames_path, quiet, attrs or {})


def _compute_cube(store_path: str, cube_path: str, config: FeatureConfig, client, frames_path: str, quiet: bool,
                  attrs: dict):

    import dask
    import dask.array as da
    import xarray as xr

    # Paths resolved on the client (workers may run elsewhere); outputs checked before compute.
    store_path, cube_path, frames_path, parts_path = cube_outputs(store_path, cube_path, frames_path)
    local = lock_path(cube_path) is not None  # object stores: no cheap rename; written in place
    if local:
        check_replaceable(cube_path, CUBE_KIND, "feature cube")  # before any compute
        for p in (cube_path, parts_path):  # left by runs that died; ours now, under the lock
            remove_stale(p)
    store = AudioStore.open(store_path)
    config.check_store(store)
    compute_frames(store, frames_path, config.frame, client, quiet=quiet)

    planned = plan_clip_tasks(store, frames_path, config)
    if "://" not in parts_path:
        remove_artifact(parts_path, PARTS_KIND)  # a previous run's, never anything else (checked above)
    parts_uid = new_uid()
    zarr.open_group(parts_path, mode="w", zarr_format=3, attributes={"micfp": {"kind": PARTS_KIND, "uid": parts_uid}})
    coords_list = run_tasks(client, "features: clips", _clip_part,
                            [(t, config, parts_path, i, parts_uid) for i, (t, _) in enumerate(planned)], quiet=quiet,
                            cost=[_clip_cost(t) for t, _ in planned])

    names, owners = fsets.feature_layout(config.feature_sets, config.frame)
    rel_cols = relative.relative_columns(names)
    if rel_cols.size:  # across the recordings of each session, in the parts, before they are assembled
        run_tasks(client, "features: session-relative", relative.relative_task,
                  [(parts_path, ix, co, rel_cols, parts_uid) for ix, co in relative.plan_relative(planned, coords_list)],
                  quiet=quiet)
    # Cube rows grouped by segmentation and clip length (then recording and time, the task
    # order), so selecting one clip length, as every evaluation cell does, reads only its rows.
    groups: dict[tuple[str, float], list[tuple[int, int, int]]] = {}
    for i, c in enumerate(coords_list):
        for run in row_runs(c["segmentation"], c["clip_seconds"]):  # each part is sorted by group
            groups.setdefault((run.segmentation, run.clip_seconds), []).append((i, run.start, run.stop))
    if not groups:
        raise InputError(f"{store_path}: no clips: every segment is shorter than the clip lengths asked for")
    sr = store.sample_rate
    cols = {k: [] for k in CLIP_COORDS}
    chunk_rows = max(1, CUBE_CHUNK_BYTES // (4 * len(names)))
    rows = GATHER_CHUNKS * chunk_rows  # rows per gather task: whole cube chunks
    chunks, current, count = [], [], 0
    row_groups, n_rows = [], 0
    for key in sorted(groups):
        size = sum(b - a for _, a, b in groups[key])
        row_groups.append(RowRun(key[0], key[1], n_rows, n_rows + size))
        n_rows += size
        for i, a, b in groups[key]:
            c, const = coords_list[i], planned[i][1]
            for k, v in const.items():  # one shared object per value, not millions of str
                cols[k].append(np.repeat(np.array([v], dtype=np.int64 if k == "label" else object), b - a))
            cols["sound_type"].append(c["sound_type"][a:b])
            cols["clip_seconds"].append(c["clip_seconds"][a:b])
            cols["start_s"].append(c["start"][a:b] / sr)
            cols["end_s"].append(c["stop"][a:b] / sr)
            cols["segmentation"].append(c["segmentation"][a:b])
            while a < b:  # cut into gather blocks of `rows` rows
                take = min(b - a, rows - count)
                current.append((i, a, a + take))
                count, a = count + take, a + take
                if count == rows:
                    chunks.append(tuple(current))
                    current, count = [], 0
    if current:
        chunks.append(tuple(current))
    gather = dask.delayed(_gather_rows, pure=True)
    X = da.concatenate([da.from_delayed(gather(parts_path, ch, len(names), parts_uid), dtype=np.float32,
                                        shape=(sum(b - a for _, a, b in ch), len(names))) for ch in chunks])
    clip_coords = {k: np.concatenate(v) for k, v in cols.items()}
    coords, names_of = {}, {}
    for k, v in clip_coords.items():
        if v.dtype == object:
            # Strings are encoded on the workers, a chunk per task alongside the features' (the
            # client took about 4 s for the 2M clips' strings at 37.5 h, on cores the workers use).
            codes, names_of[k] = pd.factorize(v)
            codes = codes.astype(np.min_scalar_type(max(len(names_of[k]) - 1, 0)))  # in the graph: 1 byte a clip
            v = da.from_array(codes, chunks=COORD_CHUNK).map_blocks(
                _label_codes, meta=np.empty(0, VLEN_STR), labels=np.asarray(names_of[k], dtype=object))
        # fastpath: xarray would otherwise scan each object coordinate (millions of clips) for dates
        coords[k] = xr.Variable(("clip",), v, fastpath=True)
    coords["feature"] = ("feature", np.array(names, dtype=object))
    coords["feature_set"] = ("feature", np.array(owners, dtype=object))
    coords["frequency_hz"] = ("feature", fsets.feature_frequencies(names, config.frame))
    coords["clip"] = ("clip", np.arange(n_rows))  # an index, so .sel(clip=...) works
    # Where each group's rows lie and which sessions and sound types there are: evaluation
    # tasks read a cell's rows from these without loading millions of clip coordinates.
    # uid: new at every write, so workers check they read the client's cube and a cube read
    # before a rewrite is told from the new one.
    meta = {**attrs, "kind": CUBE_KIND, "version": 1, "complete": False, "uid": new_uid(),
            "store": store.path, "frames": frames_path,
            "config": config.to_json(), "mics": {str(k): v for k, v in store.mics.items()},
            **({"models": {str(k): v for k, v in store.models.items()}} if store.models else {}),
            "row_groups": [r.to_json() for r in row_groups],
            "sessions": [str(v) for v in names_of["session"]],
            "sound_types": [str(v) for v in names_of["sound_type"]]}
    ds = annotate(xr.Dataset({"features": (("clip", "feature"), X)}, coords=coords, attrs={"micfp": meta}),
                  "micfp feature cube")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Sending large graph")  # the coordinates' codes
        target = temp_sibling(cube_path) if local else cube_path
        ds.to_zarr(target, mode="w", zarr_format=3, consolidated=False,
                   encoding={"features": {"compressors": (FEATURES_CODEC,), "chunks": (chunk_rows, len(names))}})
    g = zarr.open_group(target, mode="r+")
    g.attrs["micfp"] = {**meta, "complete": True}
    consolidate(target)  # once complete: the cube does not change after this
    if local:
        swap_in(target, cube_path, CUBE_KIND, "feature cube")
    # The temporary parts (thousands of files at thesis scale) are deleted in the background:
    # the cube is complete and the next stage need not wait.
    if Path(parts_path).is_dir():  # a local folder (remote stores have no cheap rename)
        discard(parts_path)
    return open_cube(cube_path, coords={**clip_coords, "clip": coords["clip"][1]})  # the coordinates in hand, not read back
