"""Degraded copies of test recordings on Dask: one task per shard, resumable like the simulator.

A condition (:class:`~pipeline.robustness.degrade.Degradation`) is applied to the recordings of the test
sessions only and written to its own audio store (``<out>/degraded/<condition>.zarr``) with the
same recording ids, lengths and segments as the source, so its feature cube has exactly the
clean cube's clips for those recordings. Cells then train on clean clips and test on degraded
ones.

- Noise: the mean power of each recording is measured first (one task per shard), so every
  shard gets noise at the same absolute level; the SNR is relative to the whole recording.
- Codecs: the libsndfile compression level that gives the requested bit rate is calibrated on
  a stretch of the test material (one task), then every shard is encoded and decoded at that
  level; the bytes each shard encoded to are kept in the store's metadata, and the measured bit
  rate (all bytes over all seconds) is what the results report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib

import numpy as np

from .degrade import CALIBRATION_SECONDS, Degradation, apply, calibrate_level, to_float
from ..errors import InputError
from ..cluster.runner import run_tasks
from ..artifacts.store import AudioStore, Recording, write_shard, STORE_KIND
from ..artifacts.outputs import check_output
from ..artifacts.locks import locked


def _shard_power(path: str, rid: str, start: int, stop: int) -> tuple[float, int]:
    import zarr

    x = to_float(zarr.open_array(f"{path}/audio/{rid}", mode="r")[start:stop]).astype(np.float64)
    return float(np.dot(x, x)), int(x.size)


def _calibrate(path: str, pieces: list[tuple[str, int, int]], sample_rate: int, codec: str,
               kbps: float) -> tuple[float, float]:
    import zarr

    x = np.concatenate([to_float(zarr.open_array(f"{path}/audio/{rid}", mode="r")[a:b]) for rid, a, b in pieces])
    return calibrate_level(x, sample_rate, codec, kbps)


def probe_pieces(recs: list[Recording], sample_rate: int, seconds: float = CALIBRATION_SECONDS,
                 per_recording: int = 4) -> list[tuple[str, int, int]]:
    """Short stretches spread over every recording, ``seconds`` in all: what a codec is calibrated on.

    Variable-bit-rate codecs spend bits according to content and level, so the probe samples
    every microphone and every part of the programme rather than one stretch.
    """
    n = max(1, int(seconds * sample_rate / (len(recs) * per_recording)))
    pieces = []
    for r in recs:
        for k in range(per_recording):
            a = int((k + 0.5) * r.n_samples / per_recording) - n // 2
            a = min(max(0, a), max(0, r.n_samples - n))
            pieces.append((r.id, a, min(r.n_samples, a + n)))
    return pieces


def _degrade_shard(src: str, dst: str, rid: str, index: int, start: int, stop: int, sample_rate: int,
                   deg: Degradation, signal_power: float, level: float | None,
                   uid: str | None = None) -> tuple[int, int]:
    import zarr

    x = zarr.open_array(f"{src}/audio/{rid}", mode="r")[start:stop]
    # A fixed seed per (condition seed, recording, shard): re-runs and resumes give the same noise.
    seed = zlib.crc32(f"{deg.seed}:{rid}:{index}".encode())
    y, n_bytes = apply(x, sample_rate, deg, signal_power=signal_power, level=level,
                       rng=np.random.default_rng(seed))
    return write_shard(dst, rid, start, y, uid=uid), n_bytes


def recordings_of(store: AudioStore, sessions) -> list[Recording]:
    """The recordings of ``sessions`` (the material a robustness condition degrades)."""
    recs = [r for r in store.recordings() if r.session in set(sessions)]
    if not recs:
        raise InputError(f"{store.path}: no recordings in sessions {sorted(sessions)} to degrade")
    return recs


@locked("dst_path", "audio store", reads=(("src_path", "audio store"),))
def degrade_store(src_path: str, dst_path: str, deg: Degradation, sessions, client, *,
                  quiet: bool = False) -> dict:
    """Write ``deg`` applied to the recordings of ``sessions`` into an audio store at ``dst_path``.

    Resumable: shards already in the destination's ledger are not redone; a destination made
    from other source audio or another condition is replaced. Returns the condition's record:
    its settings, the compression level used and the measured bit rate (codecs).
    """
    src = AudioStore.open(src_path)
    dst_path = check_output(dst_path, STORE_KIND, inputs=(src.path,), what="degraded audio store")
    sr = src.sample_rate
    deg.check(sr)
    recs = recordings_of(src, sessions)
    sessions = sorted({r.session for r in recs})
    info = {"name": deg.name, **dataclasses.asdict(deg), "sessions": sessions, "source": src.path,
            "source_fingerprint": store_fingerprint(src, sessions)}
    done = _finished(dst_path, info)
    if done is not None:  # nothing to do, and no need to calibrate the codec again
        return done

    if deg.kind == "codec":
        [(level, probe_kbps)] = run_tasks(client, f"robustness {deg.name}: calibrate", _calibrate,
                                          [(src.path, probe_pieces(recs, sr), sr, deg.codec, float(deg.kbps))],
                                          quiet=quiet)
        info.update(level=level, probe_kbps=probe_kbps)
    else:
        level = None

    # The derived recordings' checksum names their source and the exact transformation, so the
    # frame and cube stages (which key on checksums) never reuse features of other audio.
    spec = json.dumps({"deg": dataclasses.asdict(deg), "level": level}, sort_keys=True)
    derived = [dataclasses.replace(r, source_path=f"{src.path}#{r.id}", source_size=0,
                                   checksum=hashlib.sha1(f"{spec}|{r.checksum}|{r.source_path}|{r.n_samples}"
                                                         .encode()).hexdigest()) for r in recs]
    segments = {s: v for s, v in src.meta.get("segments", {}).items() if s in sessions}
    dst = AudioStore.create(dst_path, sr, mics=src.mics, segments=segments)
    existing = {r.id: r for r in dst.recordings()}
    if any(existing.get(r.id) not in (None, r) for r in derived) or set(existing) - {r.id for r in derived}:
        dst = AudioStore.create(dst_path, sr, mics=src.mics, segments=segments, resume=False)
    for r in derived:
        dst.add_recording(r)
    dst.mark_incomplete()
    meta = dst.meta
    encoded = {rid: {int(k): v for k, v in d.items()}
               for rid, d in meta.get("degradation", {}).get("encoded_bytes", {}).items()} \
        if meta.get("degradation", {}).get("spec") == spec else {}

    todo = [(r, i, a, b) for r in derived for i, (a, b) in enumerate(r.shard_ranges(dst.shard_samples))
            if i not in dst.shards_done(r.id)]
    power: dict[str, float] = {}
    if deg.kind == "noise":
        need = sorted({r.id for r, *_ in todo})
        ptasks = [(src.path, r.id, a, b) for r in derived if r.id in need for a, b in r.shard_ranges(src.shard_samples)]
        pkeys = [t[1] for t in ptasks]
        sums: dict[str, list] = {rid: [0.0, 0] for rid in need}
        for rid, (s, n) in zip(pkeys, run_tasks(client, f"robustness {deg.name}: power", _shard_power, ptasks,
                                                keys=pkeys, quiet=quiet)):
            sums[rid][0] += s
            sums[rid][1] += n
        power = {rid: s / max(n, 1) for rid, (s, n) in sums.items()}

    def record(key, result):
        rid, i = key
        _crc, n_bytes = result
        dst.record_shards(rid, [i])
        encoded.setdefault(rid, {})[i] = int(n_bytes)
        _set_degradation(dst, spec, info, encoded)

    tasks = [(src.path, dst.path, r.id, i, a, b, sr, deg, power.get(r.id, 0.0), level, dst.uid)
             for r, i, a, b in todo]
    run_tasks(client, f"robustness {deg.name}: shards", _degrade_shard, tasks,
              keys=[(r.id, i) for r, i, *_ in todo], on_result=record, quiet=quiet)
    if deg.kind == "codec":
        total_bytes = sum(sum(d.values()) for d in encoded.values())
        seconds = sum(r.n_samples for r in derived) / sr
        info["kbps_measured"] = total_bytes * 8.0 / seconds / 1000.0 if seconds else float("nan")
    _set_degradation(dst, spec, info, encoded)
    dst.mark_complete()
    return info


def _set_degradation(store: AudioStore, spec: str, info: dict, encoded: dict) -> None:
    meta = dict(store.group.attrs["micfp"])
    meta["degradation"] = {"spec": spec, "info": info,
                           "encoded_bytes": {rid: {str(k): v for k, v in d.items()} for rid, d in encoded.items()}}
    store.group.attrs["micfp"] = meta


def store_fingerprint(store: AudioStore, sessions=None) -> str:
    """A digest of a store's recordings (all, or those of ``sessions``) and segments.

    Changes whenever the audio could have changed: another simulation seed, re-ingested files,
    a recording's array written again (its :meth:`~pipeline.artifacts.store.AudioStore.identity`).
    """
    recs = [store.identity(r.id) for r in store.recordings() if sessions is None or r.session in set(sessions)]
    segs = {s: v for s, v in store.meta.get("segments", {}).items() if sessions is None or s in set(sessions)}
    blob = json.dumps({"rate": store.sample_rate, "recordings": recs, "segments": segs}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def _finished(dst_path: str, info: dict) -> dict | None:
    """The stored record of a complete destination made exactly as ``info`` asks, else None."""
    try:
        dst = AudioStore.open(dst_path)
    except Exception:  # absent, partial or not a store: (re)build it
        return None
    stored = dst.meta.get("degradation", {}).get("info", {})
    same = all(stored.get(k) == v for k, v in info.items())
    return dict(stored) if same else None


def degradation_info(store_path: str) -> dict:
    """The condition record a finished :func:`degrade_store` left in its store."""
    return dict(AudioStore.open(store_path, require_complete=False).meta.get("degradation", {}).get("info", {}))
