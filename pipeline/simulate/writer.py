"""Render a studio plan straight into a Zarr audio store, one shard per task."""

from __future__ import annotations

from ..artifacts.locks import locked
from ..cluster.runner import BatchedRecord, run_tasks
from ..artifacts.store import AudioStore, Recording, recording_id, write_shard, STORE_KIND
from ..artifacts.outputs import WAV_KIND, check_output, mark_folder


def plan_checksum(plan) -> str:
    """Identity of a plan's audio: a changed plan at the same path never reuses old shards or frames."""
    import hashlib

    return "plan:" + hashlib.blake2b(repr(plan).encode(), digest_size=16).hexdigest()


def plan_identity(plan) -> dict:
    """A plan as JSON values, for the WAV ledger: a changed plan never resumes another's files.

    The studio fields appear only when not at their defaults, so a thesis run interrupted before
    studios existed resumes (as :func:`plan_checksum` keeps a thesis plan's identity).
    """
    import dataclasses
    import json

    return {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(plan))).items()
            if (k, v) not in (("studio", "thesis"), ("positions", None))}


def plan_recordings(plan) -> list[Recording]:
    """The store's recordings for a plan: one per (session, microphone)."""
    return [
        Recording(id=recording_id(s, m.label), mic=m.name, label=m.label, session=s,
                  sample_rate=plan.sample_rate, n_samples=plan.n_samples(s),
                  source_path=f"simulated:seed={plan.seed}", checksum=plan_checksum(plan))
        for s in plan.sessions
        for m in plan.mics
    ]


def studio_attrs(plan) -> dict:
    """What the store records about the studio: its name and position policy.

    Each unit's model (labels sharing a model are an identical-model group) is one of the store's
    own keys, given to :meth:`AudioStore.create` as ``models``.
    """
    return {"studio": plan.studio, "positions": plan.position_policy}


def _render_shard(plan, session: str, start: int, stop: int, path: str, rids: tuple[str, ...],
                  uid: str | None = None) -> list[int]:
    from . import render_block

    block = render_block(plan, session, start, stop)
    return [write_shard(path, rid, start, block[i], uid=uid) for i, rid in enumerate(rids)]


@locked("path", "audio store")
def simulate_to_store(plan, path: str, client, *, quiet: bool = False) -> AudioStore:
    """Simulate ``plan`` into an audio store at ``path`` on the cluster behind ``client``.

    Resumable: shards already in the store's ledger are not rendered again; a store of
    another plan at the same path is replaced.
    """
    path = check_output(path, STORE_KIND, inputs=(plan.sources,), what="audio store")
    segments = {s: plan.segments(s) for s in plan.sessions}
    mics = {m.label: m.name for m in plan.mics}
    models = {m.label: m.model for m in plan.mics}
    store = AudioStore.create(path, plan.sample_rate, mics=mics, models=models, segments=segments)
    recs = plan_recordings(plan)
    existing = {r.id: r for r in store.recordings()}
    if any(existing.get(r.id) not in (None, r) for r in recs) or set(existing) - {r.id for r in recs}:
        store = AudioStore.create(path, plan.sample_rate, mics=mics, models=models, segments=segments,
                                  resume=False)
    # Beside the microphone table (attrs["micfp"]["mics"]): the studio and its position policy.
    store.annotate(**studio_attrs(plan))
    for r in recs:
        store.add_recording(r)
    store.mark_incomplete()
    tasks, keys = [], []
    for session in plan.sessions:
        rids = tuple(r.id for r in recs if r.session == session)
        ranges = recs[[r.session for r in recs].index(session)].shard_ranges(store.shard_samples)
        done = set.intersection(*(store.shards_done(rid) for rid in rids))
        for i, (a, b) in enumerate(ranges):
            if i not in done:
                tasks.append((plan, session, a, b, store.path, rids, store.uid))
                keys.append((rids, i))

    with BatchedRecord(store.record_done) as record:
        run_tasks(client, "simulate (shards)", _render_shard, tasks, keys=keys, on_result=record, quiet=quiet)
    store.mark_complete()
    return store


# -- the thesis (Kaggle) layout as WAV files --------------------------------------------------
#: Frames per WAV task: 22 render blocks (about 60 s at 48 kHz), aligned to the renderer's
#: blocks so no aligned block is rendered by two tasks.
WAV_TASK_BLOCKS = 22
WAV_HEADER_BYTES = 44


def wav_header(n_frames: int, sample_rate: int) -> bytes:
    """Canonical 44-byte RIFF/WAVE header of a 16-bit PCM mono file of ``n_frames`` frames."""
    import struct

    data = 2 * n_frames
    if data + WAV_HEADER_BYTES - 8 >= 2**32:
        raise ValueError(f"{n_frames} frames do not fit a WAV file (4 GiB limit); simulate shorter sessions")
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", data + 36, b"WAVE", b"fmt ", 16, 1, 1, sample_rate,
                       2 * sample_rate, 2, 16, b"data", data)


def _render_wav_block(plan, session: str, start: int, stop: int, paths: tuple[str, ...]) -> int:
    """Worker: render frames ``[start, stop)`` of a session and write them into each mic's file."""
    from . import render_block

    block = render_block(plan, session, start, stop)
    for i, p in enumerate(paths):
        with open(p, "r+b") as f:  # disjoint byte ranges: parallel writers never overlap
            f.seek(WAV_HEADER_BYTES + 2 * start)
            f.write(block[i].astype("<i2").tobytes())
    return stop - start


def simulate_to_wav(plan, out_dir, client, *, quiet: bool = False):
    """Simulate ``plan`` as WAV files in the thesis (Kaggle) layout under ``out_dir``.

    Writes ``<out>/<session>/mic-<N>.wav`` (16-bit PCM mono), ``<out>/<session>/segments.csv``
    and ``<out>/mics.csv`` (``label,name,model``: units sharing a ``model`` form an
    identical-model group). The client writes each file's header and sizes it (sparse); then
    Dask tasks render blocks of about a minute and write them at their own offsets, so
    memory per task is one block whatever the session length. A ledger
    (``<out>/.micfp-simulate.json``) makes an interrupted run resume; the ledger is removed
    when every block is written.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    import csv
    import json
    import os
    from pathlib import Path

    from .studio import RENDER_BLOCK

    out = Path(check_output(out_dir, WAV_KIND, inputs=(plan.sources,), what="WAV corpus folder"))
    mark_folder(out, WAV_KIND)
    ledger_path = out / ".micfp-simulate.json"
    ident = plan_identity(plan)
    ledger = json.loads(ledger_path.read_text()) if ledger_path.is_file() else {}
    if ledger.get("plan") != ident:
        ledger = {"plan": ident, "done": []}
    with open(out / "mics.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["label", "name", "model"])
        w.writerows([m.label, m.name, m.model] for m in plan.mics)
    step = WAV_TASK_BLOCKS * RENDER_BLOCK
    tasks, keys = [], []
    done = {tuple(d) for d in ledger["done"]}
    for session in plan.sessions:
        sdir = out / session
        sdir.mkdir(exist_ok=True)
        with open(sdir / "segments.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["start_s", "end_s", "sound_type"])
            w.writerows([repr(a), repr(b), t] for a, b, t in plan.segments(session))
        n = plan.n_samples(session)
        paths = tuple(str(sdir / f"mic-{m.label}.wav") for m in plan.mics)
        header = wav_header(n, plan.sample_rate)
        for p in paths:
            fresh = not os.path.exists(p) or os.path.getsize(p) != len(header) + 2 * n
            if fresh:
                done = {d for d in done if d[0] != session}
            with open(p, "r+b" if not fresh else "wb") as f:
                f.write(header)
                f.truncate(len(header) + 2 * n)
        for i, a in enumerate(range(0, n, step)):
            if (session, i) not in done:
                tasks.append((plan, session, a, min(n, a + step), paths))
                keys.append((session, i))

    def save():
        tmp = ledger_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"plan": ident, "done": sorted(done)}))
        os.replace(tmp, ledger_path)

    save()

    def record(key, _n):
        done.add(key)
        save()

    run_tasks(client, "simulate (wav)", _render_wav_block, tasks, keys=keys, on_result=record, quiet=quiet)
    ledger_path.unlink()
    return out
