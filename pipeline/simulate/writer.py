"""Render a studio plan straight into a Zarr audio store, one shard per task."""

from __future__ import annotations

from ..runner import run_tasks
from ..store import AudioStore, Recording, recording_id, write_shard


def plan_recordings(plan) -> list[Recording]:
    """The store's recordings for a plan: one per (session, microphone)."""
    from . import MICS

    return [
        Recording(id=recording_id(s, m.label), mic=m.name, label=m.label, session=s,
                  sample_rate=plan.sample_rate, n_samples=plan.n_samples(s),
                  source_path=f"simulated:seed={plan.seed}")
        for s in plan.sessions
        for m in MICS
    ]


def _render_shard(plan, session: str, start: int, stop: int, path: str, rids: tuple[str, ...]) -> list[int]:
    from . import render_block

    block = render_block(plan, session, start, stop)
    return [write_shard(path, rid, start, block[i]) for i, rid in enumerate(rids)]


def simulate_to_store(plan, path: str, client, *, quiet: bool = False) -> AudioStore:
    """Simulate ``plan`` into an audio store at ``path`` on the cluster behind ``client``.

    Resumable: shards already in the store's ledger are not rendered again; a store of
    another plan at the same path is replaced.
    """
    from . import MICS

    segments = {s: plan.segments(s) for s in plan.sessions}
    store = AudioStore.create(path, plan.sample_rate, mics={m.label: m.name for m in MICS}, segments=segments)
    recs = plan_recordings(plan)
    existing = {r.id: r for r in store.recordings()}
    if any(existing.get(r.id) not in (None, r) for r in recs) or set(existing) - {r.id for r in recs}:
        store = AudioStore.create(path, plan.sample_rate, mics={m.label: m.name for m in MICS},
                                  segments=segments, resume=False)
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
                tasks.append((plan, session, a, b, store.path, rids))
                keys.append((rids, i))

    def record(key, _crcs):
        rids, i = key
        for rid in rids:
            store.record_shards(rid, [i])

    run_tasks(client, "simulate (shards)", _render_shard, tasks, keys=keys, on_result=record, quiet=quiet)
    store.mark_complete()
    return store
