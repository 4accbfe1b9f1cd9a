"""The workflow's grid against the corpus: which clips exist, which cells can run, and the
checks made before any compute."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..artifacts.outputs import check_output
from ..artifacts.results import CLEAN, check_results_output
from ..errors import ConfigError
from ..evaluation.cell import WorkCell
from ..evaluation.grid import protocol_classifiers
from ..evaluation.protocols import SESSION_PROTOCOLS
from ..features import clip_lengths
from .config import WorkflowConfig
from .corpus import _ingest_plan, _plan

# -- the grid --------------------------------------------------------------------------------
#: Columns of an availability table: how many clips each (session, sound type, length, 30 s block) has.
AVAIL_COLS = ("session", "sound_type", "clip_seconds", "segmentation", "block", "n")


def availability_from_segments(segments: dict, sample_rate: int, features) -> "pd.DataFrame":
    """Clips the feature stage will cut, from the sessions' segment tables (no audio read).

    ``segments`` maps session -> ``[(start_s, end_s, sound_type), ...]``, in session order.
    Silence-split clips are not known before the audio is analysed: each segment counts once.
    """
    import pandas as pd

    from ..evaluation.protocols import GROUP_SECONDS

    rows = []
    for session, segs in segments.items():
        for a, b, st in segs:
            a_n, b_n = int(round(a * sample_rate)), int(round(b * sample_rate))
            if "fixed" in features.segmentations:
                for L in features.clip_seconds:
                    n = clip_lengths.samples(L, sample_rate)
                    starts = a_n + n * np.arange(max(0, (b_n - a_n) // n))
                    for blk, cnt in zip(*np.unique(np.floor(starts / sample_rate / GROUP_SECONDS), return_counts=True)):
                        rows.append((str(session), str(st), float(L), "fixed", int(blk), int(cnt)))
            if "silence" in features.segmentations:
                rows.append((str(session), str(st), 0.0, "silence", int(a // GROUP_SECONDS), 1))
    return pd.DataFrame(rows, columns=list(AVAIL_COLS))


def availability_from_cube(cube) -> "pd.DataFrame":
    """Clips the cube holds, counted per session, sound type, length and 30 s block."""
    import pandas as pd

    from ..evaluation.protocols import GROUP_SECONDS

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
        sel = sel[clip_lengths.same(sel["clip_seconds"].to_numpy(), cell.clip_seconds)]
    sel = sel[sel["n"] > 0]
    what = "all sound types" if cell.sound_type == "all" else f"sound type {cell.sound_type}"
    if sel.empty:
        return f"no {cell.clip_seconds:g} s clips of {what}"
    have = set(sel["session"])
    if cell.protocol in SESSION_PROTOCOLS and (sessions[0] not in have or len(have) < 2):
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
    from ..evaluation.cell import Cell

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
                            # the forensic protocols run their score model whatever the grid's classifiers;
                            # enrolled-verification only those with probabilities
                            model = protocol_classifiers(prot, (clf,))
                            if not model:
                                continue
                            cell = Cell(clip, st, fs, model[0], prot, segmentation=seg)
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




def plan_cells(wf: WorkflowConfig, store_path: str | None = None) -> tuple[list[WorkCell], list[str]]:
    """Expand the grid against the corpus's segments (known before compute for plans and stores)."""
    if wf.corpus.kind == "cube":  # the clips are known: those of the cube
        from ..features import open_cube

        cube = open_cube(wf.corpus.path)
        return expand_grid(wf, availability_from_cube(cube), [str(s) for s in pd.unique(cube.session.values)])
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
        too_long = clip_lengths.longer_than(wf.features.clip_seconds, longest)
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
    inputs = (wf.corpus.path,) if wf.corpus.kind in ("store", "recordings", "cube") else ()
    check_output(wf.out, wf.out_kind, inputs=inputs, what=wf.out_what)
    check_results_output(wf.results_path, inputs=inputs)


def _uses(wf: WorkflowConfig, protocol: str) -> bool:
    return any(protocol in g.protocols for g in wf.grids) or bool(wf.degradations)
