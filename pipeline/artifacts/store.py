"""The Zarr v3 audio store: one int16 (or PCM-width) array per recording, plus metadata.

Layout::

    STORE/                       zarr group, attrs["micfp"] = store metadata (see below)
      audio/<recording id>       1-D PCM array, 10 s chunks in shards of minutes

Store metadata (``attrs["micfp"]``): ``kind``, ``version``, ``sample_rate``, ``complete``,
``segments`` ({session: [[start_s, end_s, sound_type], ...]}), ``mics`` ({label: name}).
Recording metadata lives on each array (``attrs["micfp"]``): mic, label, session, sample_rate,
n_samples, source_path, source_size, checksum, channel, ``written`` (a random id given to the
array when it is created: see :meth:`AudioStore.add_recording`) and ``shards_done``, the shards
written and verified so far (the resume ledger, kept by the client only).

Workers write whole shards, never parts of one, so parallel writes never race on a shard.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from ..errors import IncompleteError, InputError
from .conventions import consolidate, global_attrs, unconsolidate, variable_attrs
from .kinds import STORE_KIND, mics_from_attrs, models_from_attrs, open_checked_group
from .outputs import new_uid, resolve, verify_seen

STORE_VERSION = 1
CHUNK_SECONDS = 10
SHARD_CHUNKS = 30  # 5-minute shards: few files, whole-shard writes of ~30 MB at 48 kHz int16


def compressor() -> BloscCodec:
    """Blosc lz4 level 5 with bit shuffle: lossless, ~1.55x on 16-bit audio, cheap both ways.

    Every stage pays for this codec: ingest encodes (and decodes to verify) each shard, the
    frame stage decodes it again. On 5-minute shards of 48 kHz 16-bit simulated studio audio
    (``benchmarks/README.md``, session 3) it costs 0.050 CPU s to write and 0.047 to read,
    against 0.119 and 0.106 for zstd-1 with byte shuffle (ratio 1.57, the session-1 choice);
    zstd-1 with bit shuffle compresses best (1.66) at 0.093 / 0.071 CPU s. Bit shuffle groups
    the high-order bits, which quiet audio leaves constant. Stores written with another codec
    stay readable: the codec is in each array's metadata.
    """
    return BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.bitshuffle)


#: Longest session part of a recording id, in characters: ids stay well inside the 255 bytes
#: a file name may have (a CJK character takes 3 bytes in UTF-8).
SESSION_ID_CHARS = 64


def _id_char(c: str) -> bool:
    """Characters kept in an id: Unicode letters, marks and digits, and ``_ . -``."""
    return c in "_.-" or unicodedata.category(c)[0] in "LMN"


def safe_session(session: str) -> str:
    """A session name as a filesystem-safe part of an array name, distinct for distinct names.

    Letters and digits of any script are kept, so ``月曜`` stays ``月曜``. When anything is lost
    (other characters become ``_``, leading/trailing dots and underscores go, long names are cut,
    a name not in Unicode NFC form is normalised), a short hash of the exact name is appended,
    so ``day 1`` (``day_1~<hash>``) and ``day_1`` stay two sessions.
    """
    session = str(session)
    nfc = unicodedata.normalize("NFC", session)
    safe = "".join(c if _id_char(c) else "_" for c in nfc)
    safe = re.sub("_{2,}", "_", safe).strip("._")[:SESSION_ID_CHARS] or "session"
    if safe == session:
        return safe
    return f"{safe}~{hashlib.blake2b(session.encode('utf-8', 'surrogatepass'), digest_size=4).hexdigest()}"


def recording_id(session: str, label: int | str, channel: int | None = None) -> str:
    """A stable array name for a recording: ``<session>-mic<label>[-ch<k>]`` (see :func:`safe_session`)."""
    rid = f"{safe_session(session)}-mic{label}"
    return rid if channel is None else f"{rid}-ch{channel}"


@dataclass(frozen=True)
class Recording:
    """Metadata of one recording in the store."""

    id: str
    mic: str
    label: int
    session: str
    sample_rate: int
    n_samples: int
    dtype: str = "int16"
    source_path: str = ""
    source_size: int = 0
    checksum: str = ""
    channel: int = 0

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    def shard_ranges(self, shard_samples: int) -> list[tuple[int, int]]:
        """(start, stop) sample ranges of the recording's shards."""
        return [(a, min(a + shard_samples, self.n_samples)) for a in range(0, self.n_samples, shard_samples)]


@dataclass
class AudioStore:
    """Handle on an audio store (local path or fsspec URL).

    Use :meth:`create` to start a store and :meth:`open` to read one.
    """

    path: str
    group: zarr.Group = field(repr=False)

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str, sample_rate: int, *, mics: dict[int, str] | None = None,
               models: dict[int, str] | None = None, segments: dict[str, list] | None = None, resume: bool = True,
               storage_options: dict | None = None) -> "AudioStore":
        """Create a store, or reopen a compatible partial one to resume writing it.

        An existing store with another sample rate is an error, not silently replaced. A local
        path is made absolute, so workers write the client's store whatever their folder.
        """
        path = str(path)
        try:
            # The live metadata, not a consolidated copy written when the store was last complete.
            group = zarr.open_group(resolve(path), mode="a", zarr_format=3, storage_options=storage_options,
                                    use_consolidated=False)
        except Exception as exc:  # read-only FS, bad URL, not a zarr dir...
            raise InputError(f"{path}: cannot create audio store: {exc}") from exc
        meta = dict(group.attrs.get("micfp", {}))
        if meta and (meta.get("kind") != STORE_KIND or not resume):
            if meta.get("kind") != STORE_KIND:
                raise InputError(f"{path}: exists and is not a micfp audio store; choose another path")
            _clear(group)
            meta = {}
        if meta and meta.get("sample_rate") != sample_rate:
            raise InputError(
                f"{path}: existing store has sample rate {meta.get('sample_rate')}, not {sample_rate}; "
                "use another path or delete it"
            )
        meta.update(kind=STORE_KIND, version=STORE_VERSION, sample_rate=int(sample_rate), complete=False)
        meta.setdefault("uid", new_uid())  # kept on resume: the identity workers check (write_shard)
        if mics is not None:
            meta["mics"] = {str(k): v for k, v in mics.items()}
        if models:  # identical-model groups declared in mics.csv ({label: model})
            meta["models"] = {str(k): v for k, v in models.items()}
        elif mics is not None:
            meta.pop("models", None)
        if segments is not None:
            meta["segments"] = {k: [[float(a), float(b), str(t)] for a, b, t in v] for k, v in segments.items()}
        meta.setdefault("mics", {})
        meta.setdefault("segments", {})
        # CF global attributes; a resumed store's history gains a line.
        cf = global_attrs("micfp audio store")
        if group.attrs.get("history"):
            cf["history"] = f"{group.attrs['history']}\n{cf['history']}"
        group.update_attributes({"micfp": meta, **cf})
        group.require_group("audio")
        unconsolidate(group, ("audio",))  # a resumed store: its attributes change from now on
        return cls(resolve(path), group)

    @classmethod
    def open(cls, path: str, *, require_complete: bool = True, storage_options: dict | None = None,
             mode: str = "r") -> "AudioStore":
        """Open an existing store; a partial one is refused unless ``require_complete=False``."""
        group = open_checked_group(
            resolve(path), STORE_KIND, "audio store", require_complete=require_complete, mode=mode,
            storage_options=storage_options, use_consolidated=False,  # live metadata: see conventions.py
            missing="run `micfp ingest` or `micfp simulate`",
            incomplete="an ingest or simulation did not finish; re-run the same command to resume it")
        return cls(resolve(path), group)

    # -- metadata ------------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        return dict(self.group.attrs["micfp"])

    def _set_meta(self, **kw) -> None:
        meta = self.meta
        meta.update(kw)
        self.group.attrs["micfp"] = meta
        if meta.get("complete"):  # consolidated when complete (and again if changed after that)
            consolidate(self.group.store, ("audio", ""))

    @property
    def uid(self) -> str | None:
        """The store's identity (random, set at creation), or None for a store written before uids."""
        return self.meta.get("uid")

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))

    @property
    def mics(self) -> dict[int, str]:
        return mics_from_attrs(self.meta)

    @property
    def models(self) -> dict[int, str]:
        """``{label: model}`` declared in ``mics.csv`` (empty: none declared)."""
        return models_from_attrs(self.meta)

    def recordings(self) -> list[Recording]:
        out = []
        audio = self.group["audio"]
        for name in sorted(audio.array_keys()):
            m = dict(audio[name].attrs["micfp"])
            m.pop("shards_done", None)
            out.append(Recording(**{k: v for k, v in m.items() if k in Recording.__dataclass_fields__}))
        return out

    def recording(self, rid: str) -> Recording:
        for r in self.recordings():
            if r.id == rid:
                return r
        raise KeyError(f"{self.path}: no recording {rid!r}")

    def segments(self, session: str, n_samples: int | None = None) -> pd.DataFrame:
        """The sound-type segments of a session; without a table, one ``unlabelled`` segment."""
        rows = self.meta.get("segments", {}).get(session)
        if not rows:
            end = (n_samples or max((r.n_samples for r in self.recordings() if r.session == session),
                                    default=0)) / self.sample_rate
            rows = [[0.0, end, "unlabelled"]]
        return pd.DataFrame(rows, columns=["start_s", "end_s", "sound_type"])

    def annotate(self, **kw) -> None:
        """Record descriptive metadata (e.g. the simulated studio) beside the store's own keys.

        The keys micfp itself maintains (kind, version, sample rate, completeness, uid, mics,
        models, segments) cannot be changed this way.
        """
        clash = sorted(set(kw) & {"kind", "version", "sample_rate", "complete", "uid", "mics", "models", "segments"})
        if clash:
            raise ValueError(f"annotate cannot set the store's own keys: {', '.join(clash)}")
        self._set_meta(**kw)

    def set_segments(self, session: str, rows: Iterable) -> None:
        seg = dict(self.meta.get("segments", {}))
        seg[session] = [[float(a), float(b), str(t)] for a, b, t in rows]
        self._set_meta(segments=seg)

    # -- arrays --------------------------------------------------------------------------
    @property
    def chunk_samples(self) -> int:
        return CHUNK_SECONDS * self.sample_rate

    @property
    def shard_samples(self) -> int:
        return SHARD_CHUNKS * self.chunk_samples

    def add_recording(self, rec: Recording) -> zarr.Array:
        """Create (or, when resuming with identical metadata, reuse) a recording's array.

        A created array gets a new random ``written`` identity; one reused keeps its own. What
        is computed from the array (frame features) records that identity and is reused only
        while it is unchanged, so work done on an array that was since rewritten (another
        channel, another source, a store rebuilt from scratch) is never reused.
        """
        audio = self.group["audio"]
        meta = asdict(rec)
        if rec.id in audio:
            arr = audio[rec.id]
            old = dict(arr.attrs.get("micfp", {}))
            done = old.pop("shards_done", [])
            written = old.pop("written", None)
            if old == meta and arr.shape == (rec.n_samples,):
                if "long_name" not in arr.attrs:  # written before micfp wrote CF attributes
                    arr.update_attributes(audio_attrs(rec))
                if not written:  # written before micfp kept the id: give it one, keep its shards
                    arr.attrs["micfp"] = {**meta, "written": uuid.uuid4().hex, "shards_done": done}
                return arr
            del audio[rec.id]  # changed source: nothing of the old array can be trusted
        arr = audio.create_array(
            rec.id,
            shape=(rec.n_samples,),
            dtype=rec.dtype,
            chunks=(self.chunk_samples,),
            shards=(self.shard_samples,),
            compressors=compressor(),
            fill_value=0,
            dimension_names=[f"sample_{rec.id}"],
        )
        arr.update_attributes({**audio_attrs(rec), "micfp": {**meta, "written": uuid.uuid4().hex, "shards_done": []}})
        return arr

    def identity(self, rid: str) -> dict:
        """Everything a recording's samples depend on: its metadata and its array's ``written`` id.

        Equal identities mean equal samples; derived work (frame features) is keyed on it.
        An array written before micfp recorded ``written`` has ``None`` there.
        """
        meta = dict(self.array(rid).attrs["micfp"])
        meta.pop("shards_done", None)
        meta.setdefault("written", None)
        return meta

    def array(self, rid: str) -> zarr.Array:
        return self.group["audio"][rid]

    def shards_done(self, rid: str) -> set[int]:
        return set(self.array(rid).attrs["micfp"].get("shards_done", []))

    def record_shards(self, rid: str, shards: Iterable[int]) -> None:
        """Add shard indices to a recording's resume ledger (client side only)."""
        arr = self.array(rid)
        meta = dict(arr.attrs["micfp"])
        meta["shards_done"] = sorted(set(meta.get("shards_done", [])) | {int(s) for s in shards})
        arr.attrs["micfp"] = meta

    def record_done(self, items) -> None:
        """Record finished shard tasks, ``((rids, shard index, ...), result)`` pairs, one write per recording.

        The ``write`` of a :class:`~pipeline.cluster.runner.BatchedRecord` for the shard-writing stages.
        """
        by_rec: dict[str, set[int]] = {}
        for key, _result in items:
            for rid in key[0]:
                by_rec.setdefault(rid, set()).add(int(key[1]))
        for rid, shards in by_rec.items():
            self.record_shards(rid, shards)

    def read(self, rid: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.array(rid)[start:stop]

    def mark_complete(self) -> None:
        """Mark the store complete once every shard of every recording is in the ledger."""
        missing = []
        for r in self.recordings():
            n = len(r.shard_ranges(self.shard_samples))
            if len(self.shards_done(r.id)) != n:
                missing.append(r.id)
        if missing:
            raise IncompleteError(f"{self.path}: recordings not fully written: {', '.join(missing)}")
        self._set_meta(complete=True)

    def mark_incomplete(self) -> None:
        self._set_meta(complete=False)

    def describe(self) -> pd.DataFrame:
        """One row per recording: id, mic, label, session, duration, shards done."""
        rows = []
        for r in self.recordings():
            n = len(r.shard_ranges(self.shard_samples))
            rows.append(dict(id=r.id, mic=r.mic, label=r.label, session=r.session,
                             duration_s=round(r.duration_s, 3), sample_rate=r.sample_rate, dtype=r.dtype,
                             shards=f"{len(self.shards_done(r.id))}/{n}", source=r.source_path))
        return pd.DataFrame(rows)


def _clear(group: zarr.Group) -> None:
    for name in list(group.keys()):
        del group[name]
    group.attrs.clear()


def write_shard(path: str, rid: str, start: int, data: np.ndarray, storage_options: dict | None = None,
                uid: str | None = None) -> int:
    """Worker side: write one whole shard and read it back; returns its CRC32.

    Reading back catches a short write (full disk, flaky mount) before the shard is
    entered in the ledger. With ``uid`` (the store's), a worker that sees no store or another
    one at ``path`` fails instead of writing there.
    """
    import zlib

    verify_seen(path, uid, storage_options)
    arr = zarr.open_array(f"{path.rstrip('/')}/audio/{rid}", mode="r+", storage_options=storage_options)
    arr[start : start + data.shape[0]] = data
    back = arr[start : start + data.shape[0]]
    if not np.array_equal(back, data):
        raise OSError(f"{path}: shard at sample {start} of {rid} did not read back identically")
    return zlib.crc32(np.ascontiguousarray(data))  # the buffer itself: no copy


def audio_attrs(rec: Recording) -> dict:
    """CF attributes of a recording's PCM array.

    ``scale_factor`` maps integer PCM to floats in [-1, 1): xarray's CF decoding (``xr.decode_cf``
    of :func:`open_store`'s dataset, or ``xr.open_zarr`` of the ``audio`` group) gives float audio.
    micfp itself reads the integers with Zarr, which ignores it.
    """
    attrs = {"long_name": f"audio samples of recording {rec.id} (microphone {rec.mic}, session {rec.session})",
             "units": "1"}
    dtype = np.dtype(rec.dtype)
    if dtype.kind == "i":
        attrs["scale_factor"] = 1.0 / (np.iinfo(dtype).max + 1)
    return attrs


def open_store(path: str, *, require_complete: bool = True, storage_options: dict | None = None):
    """Open an audio store as an :class:`xarray.Dataset` (lazy, dask-backed).

    One data variable per recording (dimension ``sample_<id>``, integer PCM as stored), with the
    recording's metadata and CF attributes (``scale_factor``: ``xr.decode_cf(ds)`` gives float
    audio) as attributes and a lazy coordinate ``time_<id>`` (seconds from the recording's
    start, float64, computed per chunk). A ``recording`` dimension holds the recordings' ids
    with coordinates ``mic``, ``label``, ``session`` and ``duration_s``. The store metadata
    (sample rate, segments, mics) is in ``attrs["micfp"]`` and also, flattened, in ``attrs``.
    """
    import dask.array as da
    import xarray as xr

    store = AudioStore.open(path, require_complete=require_complete, storage_options=storage_options)
    # Raw integers (no CF decoding), as the store holds them; a partial store has no
    # consolidated metadata, so it is not looked for.
    ds = xr.open_zarr(store.path, group="audio", consolidated=False, storage_options=storage_options,
                      mask_and_scale=False)
    recs = {r.id: r for r in store.recordings()}
    times = {}
    for name in ds.data_vars:
        rec = recs[name]
        ds[name].attrs = {**audio_attrs(rec), **{k: v for k, v in ds[name].attrs.get("micfp", {}).items()
                                                 if k != "shards_done"}}
        dim = ds[name].dims[0]
        chunks = ds[name].chunks[0] if ds[name].chunks else (rec.n_samples,)
        # A dask arange: hours of audio cost nothing until a slice of it is read.
        t = da.arange(rec.n_samples, chunks=chunks, dtype=np.float64) / rec.sample_rate
        times[f"time_{name}"] = xr.Variable((dim,), t, variable_attrs("time"))
    ids = list(recs)
    table = {"recording": ("recording", np.array(ids, dtype=object), {"long_name": "recording id"}),
             "mic": ("recording", np.array([recs[i].mic for i in ids], dtype=object), variable_attrs("mic")),
             "label": ("recording", np.array([recs[i].label for i in ids], dtype=np.int64), variable_attrs("label")),
             "session": ("recording", np.array([recs[i].session for i in ids], dtype=object),
                         variable_attrs("session")),
             "duration_s": ("recording", np.array([recs[i].duration_s for i in ids]),
                            {"units": "s", "long_name": "recording duration"})}
    ds = ds.assign_coords({**times, **table})
    ds.attrs = {**{k: v for k, v in store.group.attrs.items() if k != "micfp"}, **store.meta}
    return ds
