"""``micfp export``: a feature cube as Parquet or CSV, one row per clip, for other tools.

Each row is one clip of the cube: its position in the cube (``clip``, the index), its
coordinates (:data:`COORDS` first, then any others), then one column per feature. The table is
a Dask DataFrame with one partition per block of the cube's clips, so it is computed lazily
and in parallel; Parquet gets one file per partition (``OUT.parquet/part.000000.parquet``...),
CSV a single file.

What is replaced: an earlier export only (a Parquet folder carries micfp's folder marker; a
CSV file is recognised by its header). The new version is written beside the old one and
swapped in when complete, so an interrupted export leaves the earlier one intact.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts.kinds import EXPORT_KIND
from ..artifacts.locks import locked
from ..artifacts.outputs import check_output, check_output_file, is_url, mark_folder
from ..artifacts.swap import discard, remove_stale, temp_sibling
from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Output formats, by the output's suffix.
FORMATS = {".parquet": "parquet", ".csv": "csv"}
#: The clip coordinates, in this order, before any other coordinate and the features.
COORDS = ("mic", "label", "session", "recording", "sound_type", "segmentation", "clip_seconds", "start_s", "end_s")
INDEX = "clip"
#: How a micfp CSV export begins: recognised by it when asked to replace the file.
CSV_HEADER = ",".join((INDEX, *COORDS)) + ","


@dataclass
class ExportPlan:
    """A checked export, not computed yet: :func:`write_export` writes it."""

    cube: str
    out: str
    format: str
    #: The table (Dask DataFrame), one partition per block of clips.
    table: object
    n_clips: int
    n_features: int


def export_format(out) -> str:
    """``parquet`` or ``csv``, from the output's suffix; anything else is refused."""
    suffix = Path(str(out).rstrip("/")).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"{out}: give an output ending in {' or '.join(FORMATS)} (a Parquet folder or one CSV file)")
    return FORMATS[suffix]


def is_csv_export(path) -> bool:
    """True when the file at ``path`` begins with the header of a micfp CSV export."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith(CSV_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def check_export_output(out, cube) -> str:
    """Check that micfp may write the export ``out`` of ``cube``; returns its resolved path.

    Raises
    ------
    ConfigError, InputError
        One line: an unknown suffix, a remote URL, an output that is (or holds) the cube, or
        something at ``out`` that is not an earlier micfp export.
    """
    fmt = export_format(out)
    if is_url(out):
        raise ConfigError(f"{out}: micfp exports to local files only; copy the export afterwards")
    if fmt == "parquet":
        return check_output(out, EXPORT_KIND, inputs=(cube,), what="feature export")
    return check_output_file(out, inputs=(cube,), what="feature export", ours=is_csv_export)


def select(cube, *, feature_sets=("all",), clip_seconds=None, segmentations=None,
           where: str = "cube") -> tuple[np.ndarray, np.ndarray]:
    """The clip rows and feature columns of ``cube`` an export keeps.

    Parameters
    ----------
    cube : xarray.Dataset
        An open cube (:func:`pipeline.features.open_cube`).
    feature_sets : tuple of str
        ``thesis``, ``spectral``, ``channel``, or ``all`` (every feature of the cube).
    clip_seconds : tuple of float, optional
        Nominal clip lengths to keep (0: silence-split clips); default every length.
    segmentations : tuple of str, optional
        ``fixed`` and/or ``silence``; default both.
    where : str
        The cube's path, for messages.

    Returns
    -------
    rows, cols : ndarray
        Sorted clip and feature positions.

    Raises
    ------
    ConfigError
        A feature set, clip length or segmentation the cube does not have, or no clip left.
    """
    sets = cube.variables["feature_set"].values
    have_sets = sorted(set(sets.tolist()))
    wanted = set()
    for fs in feature_sets:
        if fs != "all" and fs not in have_sets:
            raise ConfigError(f"{where}: feature set {fs!r} is not in the cube (has {', '.join(have_sets)})")
        wanted |= set(have_sets) if fs == "all" else {fs}
    cols = np.flatnonzero(np.isin(sets, sorted(wanted)))
    segs = cube.variables["segmentation"].values
    lengths = np.asarray(cube.variables["clip_seconds"].values, dtype=float)
    keep = np.ones(segs.shape[0], bool)
    if segmentations is not None:
        have = sorted(set(segs.tolist()))
        for s in segmentations:
            if s not in have:
                raise ConfigError(f"{where}: no {s!r} clips in the cube (has {', '.join(have)})")
        keep &= np.isin(segs, list(segmentations))
    if clip_seconds is not None:
        have = np.unique(lengths)
        for c in clip_seconds:
            if not np.isclose(have, c).any():
                raise ConfigError(f"{where}: clip length {c:g} s is not in the cube (has "
                                  f"{', '.join(f'{x:g}' for x in have)}; 0 is the silence-split clips)")
        keep &= np.isclose(lengths[:, None], np.asarray(clip_seconds, float)[None, :]).any(axis=1)
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise ConfigError(f"{where}: no clip is both of segmentation {', '.join(segmentations or ('any',))} and "
                          f"of length {', '.join(f'{c:g}' for c in clip_seconds or ())} s")
    return rows, cols


def _coordinates(cube, rows: np.ndarray) -> pd.DataFrame:
    """The clip coordinates of ``rows``: :data:`COORDS` first, then the others, indexed by clip."""
    # ``clip`` itself (the cube's integer index) is the table's index, not a column
    names = [n for n, v in cube.variables.items() if n in cube.coords and v.dims == ("clip",) and n != INDEX]
    order = [n for n in COORDS if n in names] + sorted(n for n in names if n not in COORDS)
    # the bare variables: cube[name] would carry (and copy) every other clip coordinate
    return pd.DataFrame({n: cube.variables[n].values[rows] for n in order},
                        index=pd.Index(rows, name=INDEX))


def _partition(block: np.ndarray, coords: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One partition of the table: a block of clips' coordinates and features side by side."""
    return pd.concat([coords, pd.DataFrame(block, index=coords.index, columns=names)], axis=1)


def _part_name(i: int) -> str:
    """Parquet part names that sort in partition order (readers list files by name)."""
    return f"part.{i:06d}.parquet"


def plan_export(cube_path, out, *, feature_sets=("all",), clip_seconds=None, segmentations=None) -> ExportPlan:
    """Check an export and build its table lazily; nothing is read but the cube's coordinates.

    Parameters
    ----------
    cube_path : str
        A complete feature cube.
    out : str
        ``OUT.parquet`` (a folder, one file per partition) or ``OUT.csv`` (one file).
    feature_sets, clip_seconds, segmentations
        What to keep (:func:`select`).

    Returns
    -------
    ExportPlan
    """
    import dask
    import dask.dataframe as dd

    from .cube import open_cube

    out = check_export_output(out, cube_path)
    cube = open_cube(cube_path)
    rows, cols = select(cube, feature_sets=feature_sets, clip_seconds=clip_seconds,
                        segmentations=segmentations, where=str(cube_path))
    coords = _coordinates(cube, rows)
    names = [str(n) for n in cube.variables["feature"].values[cols]]
    clash = sorted(set(names) & {INDEX, *coords.columns})
    if clash:
        raise InputError(f"{cube_path}: feature {clash[0]!r} has the name of a clip coordinate")
    data = cube.variables["features"].data
    if rows.size < data.shape[0]:
        data = data[rows]
    if cols.size < data.shape[1]:
        data = data[:, cols]
    data = data.rechunk({1: -1})  # whole rows: one block per partition
    blocks = data.to_delayed()[:, 0]
    bounds = np.concatenate([[0], np.cumsum(data.chunks[0])])
    parts, firsts = [], []
    for block, a, b in zip(blocks, bounds[:-1], bounds[1:]):
        if b > a:  # a block the selection emptied makes no partition (nor an empty file)
            parts.append(dask.delayed(_partition)(block, coords.iloc[a:b], names))
            firsts.append(int(rows[a]))
    meta = _partition(np.empty((0, len(names)), data.dtype), coords.iloc[:0], names)
    table = dd.from_delayed(parts, meta=meta, divisions=(*firsts, int(rows[-1])))
    return ExportPlan(str(cube_path), out, export_format(out), table, int(rows.size), len(names))


def write_export(plan: ExportPlan) -> ExportPlan:
    """Compute and write ``plan`` (with the current Dask scheduler), then swap it into place.

    The caller holds the cube's shared lock and the output's exclusive lock
    (:func:`export_cube` does).
    """
    remove_stale(plan.out)  # temporary versions left by an interrupted export
    tmp = temp_sibling(plan.out)
    if plan.format == "parquet":
        plan.table.to_parquet(tmp, write_index=True, write_metadata_file=False, name_function=_part_name)
        mark_folder(tmp, EXPORT_KIND)
        check_output(plan.out, EXPORT_KIND, inputs=(plan.cube,), what="feature export")  # still ours?
        discard(plan.out)
        os.rename(tmp, plan.out)
    else:
        plan.table.to_csv(tmp, single_file=True, index=True)
        check_output_file(plan.out, inputs=(plan.cube,), what="feature export", ours=is_csv_export)
        os.replace(tmp, plan.out)
    log.info("wrote %s: %d clips x %d features", plan.out, plan.n_clips, plan.n_features)
    return plan


@locked("out", "feature export", reads=(("cube_path", "feature cube"),))
def export_cube(cube_path, out, *, feature_sets=("all",), clip_seconds=None, segmentations=None) -> ExportPlan:
    """Export a cube's clips to Parquet or CSV (:func:`plan_export`, then :func:`write_export`).

    Holds the cube's read lock and the output's write lock meanwhile.
    """
    return write_export(plan_export(cube_path, out, feature_sets=feature_sets, clip_seconds=clip_seconds,
                                    segmentations=segmentations))
