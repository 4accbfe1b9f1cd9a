"""``micfp info PATH``: describe any artifact micfp writes, opened by that artifact's own opener."""

from __future__ import annotations

from ..errors import MicfpError


def info(path: str) -> int:
    """Print a description of the audio store, feature cube, results set or model file at ``path``.

    The kind is read with :func:`pipeline.artifacts.kinds.read_kind`, then the artifact is opened
    (and checked) by its opener, under its read lock. A folder or CSV that is none of these is
    read as recordings (a layout ``micfp ingest`` reads), with the checks ``ingest`` makes
    before writing anything.

    Raises
    ------
    MicfpError
        ``path`` holds none of these (one line naming it), or its recordings have problems
        (every problem, one line each).
    """
    from ..artifacts.kinds import CUBE_KIND, MODEL_KIND, RESULTS_KIND, STORE_KIND, WAV_KIND, read_kind
    from ..artifacts.locks import shared

    describe = {STORE_KIND: _store, CUBE_KIND: _cube, RESULTS_KIND: _results, MODEL_KIND: _model}
    with shared(path, what="micfp artifact"):
        kind = read_kind(path)
        if kind in (None, WAV_KIND) and _recordings(path):  # a WAV corpus micfp simulated is recordings too
            return 0
        if kind not in describe:
            raise MicfpError(f"{path}: not a micfp audio store, feature cube, results set or model file "
                             f"(kind={kind!r})")
        describe[kind](path)
    return 0


def _recordings(path: str) -> bool:
    """Describe the recordings at ``path`` (folder or manifest CSV); False if it is neither."""
    import os

    import pandas as pd

    from ..io.ingest import plan_ingest

    if not (os.path.isdir(path) or path.lower().endswith(".csv")):
        return False
    plan = plan_ingest(path)  # every file's header checked; problems raise, all at once
    print(f"recordings {path}: {plan.layout.kind} layout, {len(plan.recordings)} recordings, "
          f"{plan.seconds / 3600:.2f} h at {plan.sample_rate} Hz")
    rows = [dict(session=r.session, label=r.label, mic=r.mic, seconds=round(r.duration_s, 3),
                 channel=r.channel, source=r.source_path) for r in plan.recordings]
    print(pd.DataFrame(rows).to_string(index=False))
    for session, segs in sorted(plan.segments.items()):
        types = sorted({str(t) for _, _, t in segs})
        print(f"session {session}: {len(segs)} segments, sound types: {', '.join(types)}")
    for w in plan.warnings:
        print(f"warning: {w}")
    return True


def _state(meta: dict) -> str:
    return "complete" if meta.get("complete") else "INCOMPLETE"


def _store(path: str) -> None:
    from ..artifacts.store import AudioStore

    store = AudioStore.open(path, require_complete=False)
    meta = store.meta
    print(f"audio store {path}: {_state(meta)}, {store.sample_rate} Hz")
    print(store.describe().to_string(index=False))
    for session, rows in sorted(meta.get("segments", {}).items()):
        types = sorted({r[2] for r in rows})
        print(f"session {session}: {len(rows)} segments, sound types: {', '.join(types)}")


def _cube(path: str) -> None:
    from ..artifacts.cube import open_cube

    cube = open_cube(path, require_complete=False)
    print(f"feature cube {path}: {_state(cube.attrs['micfp'])}, "
          f"{cube.sizes['clip']} clips x {cube.sizes['feature']} features")
    df = cube.drop_vars("features").reset_coords()[["mic", "session", "sound_type", "clip_seconds",
                                                     "segmentation"]].to_dataframe()
    print(df.groupby(["session", "sound_type", "clip_seconds"]).size().unstack(fill_value=0).to_string())
    print("feature sets: " + ", ".join(f"{k} ({v})" for k, v in
                                       cube.feature_set.to_series().value_counts().sort_index().items()))


def _results(path: str) -> None:
    from ..artifacts.results import open_results

    ds = open_results(path)
    print(f"results set {path}: " + ", ".join(f"{d}={ds.sizes[d]}" for d in ds.dims))
    if "accuracy" in ds:
        print(ds["accuracy"].to_dataframe().dropna().to_string())


def _model(path: str) -> None:
    from ..artifacts.model import describe_model, load_model

    model = load_model(path)
    print(f"model file {path}: micfp {model.meta.get('micfp', '?')}, trained {model.meta.get('created', '?')} "
          f"on {model.meta.get('cube', '?')}")
    print(describe_model(model.meta))
