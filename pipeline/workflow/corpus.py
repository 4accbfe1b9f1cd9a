"""A workflow's inputs: the audio store (simulated, ingested or given) and its feature cube,
each reused when it is up to date."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..artifacts.locks import exclusive
from ..artifacts.outputs import remove_artifact, resolve
from ..errors import ConfigError, MicfpError
from .config import CorpusConfig, WorkflowConfig, _ingest_settings

log = logging.getLogger(__name__)


def _plan(corpus: CorpusConfig):
    from ..simulate import StudioPlan

    try:
        # Sources resolved here: the workers read them, maybe from another folder.
        return StudioPlan(minutes_per_session=corpus.minutes_per_session, seed=corpus.seed,
                          sources=resolve(corpus.sources) if corpus.sources else None,
                          studio=corpus.studio, positions=corpus.positions)
    except ValueError as exc:
        raise ConfigError(f"[corpus.simulate] {exc}") from None



def ensure_corpus(wf: WorkflowConfig, client, *, quiet=False) -> str:
    """The workflow's audio store, simulated or ingested (resuming) if needed; returns its path."""
    out = Path(wf.out)
    c = wf.corpus
    if c.kind == "store":
        from ..artifacts.store import AudioStore

        return AudioStore.open(c.path).path
    if c.kind == "simulate":
        from ..simulate.writer import simulate_to_store

        plan = _plan(c)
        log.info(f"corpus: simulated studio, sessions {', '.join(plan.sessions)} "
             f"({' + '.join(f'{m:g}' for m in plan.minutes_per_session)} min per microphone), seed {plan.seed}")
        return simulate_to_store(plan, str(out / "audio.zarr"), client, quiet=quiet).path
    return _ingest(c, str(out / "audio.zarr"), client, quiet=quiet)


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


def _ingest(c: CorpusConfig, store_path: str, client, *, quiet=False) -> str:
    from ..io.ingest import ingest

    log.info(f"corpus: ingesting {c.path} into {store_path}")
    report = ingest(c.path, store_path, client, _ingest_settings(c), plan=_ingest_plan(c), quiet=quiet)
    return report.store


def _state(out: Path) -> dict:
    p = out / "state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save_state(out: Path, state: dict) -> None:
    (out / "state.json").write_text(json.dumps(state, indent=1))


def ensure_cube(store_path: str, cube_path, config, client, *, quiet=False, label="cube"):
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
            log.info(f"{label}: {cube_path} is up to date ({cube.sizes['clip']} clips), reused")
            return cube
    with exclusive(str(cube_path), what="feature cube"):  # through the fingerprint written last
        return _recompute_cube(store, fp, cube_path, config, client, quiet=quiet, label=label)


def _recompute_cube(store, fp: str, cube_path: Path, config, client, *, quiet, label):
    from ..features import compute_cube
    from ..features.cube import FRAMES_KIND, frames_path_for

    out = cube_path.parent
    state = _state(out)
    frames = frames_path_for(str(cube_path))
    if state.get(frames) not in (None, fp) and Path(frames).exists():
        # The audio changed under the same path: frame features are stale (a simulated store's
        # recordings carry no content checksum the frame stage could compare).
        remove_artifact(frames, FRAMES_KIND)
    state[frames] = fp
    _save_state(out, state)
    log.info(f"{label}: computing {cube_path}")
    # The fingerprint is written with the cube, before its swap: never an attribute rewrite in place.
    return compute_cube(store.path, str(cube_path), config, client, quiet=quiet, attrs={"store_fingerprint": fp})

