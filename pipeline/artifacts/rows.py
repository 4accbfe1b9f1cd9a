"""Row access to a stored feature cube: one selection's clips and features, read as needed.

An evaluation cell needs the clip table of its own rows and, fold by fold, the features of its
training and test clips. Opening the cube as an xarray Dataset loads every clip coordinate
(150 MB and 2.5 s at two million clips), and reading a cell's whole feature matrix holds it for
the cell's lifetime; both grow with the corpus. :class:`CubeRows` reads the coordinates of the
rows a selection asks for, found through the cube's row groups (rows are stored grouped by
segmentation and clip length), and :class:`FeatureRows` reads features chunk by chunk when a
fold asks for them, so a worker's memory is bounded by what one fit and one prediction batch
need, whatever the length of the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import zarr


@dataclass(frozen=True)
class RowRun:
    """Rows ``[start, stop)`` of a cube hold clips of one segmentation and nominal clip length."""

    segmentation: str
    clip_seconds: float
    start: int
    stop: int

    def to_json(self) -> list:
        return [self.segmentation, self.clip_seconds, self.start, self.stop]


def row_runs(segmentation: np.ndarray, clip_seconds: np.ndarray) -> list[RowRun]:
    """Maximal runs of equal (segmentation, clip length) in the cube's row order.

    A cube written by :func:`pipeline.features.cube.compute_cube` has one run per group; any
    other row order (an older or hand-made cube) just has more runs.
    """
    n = len(clip_seconds)
    if n == 0:
        return []
    seg = np.asarray(segmentation)
    length = np.asarray(clip_seconds, dtype=np.float64)
    cut = np.flatnonzero((seg[1:] != seg[:-1]) | (length[1:] != length[:-1])) + 1
    starts, stops = np.r_[0, cut], np.r_[cut, n]
    return [RowRun(str(seg[a]), float(length[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def as_objects(values: np.ndarray) -> np.ndarray:
    """String arrays (numpy StringDType from zarr v3) as shared-``str`` object arrays; others as is."""
    return runs_to_objects(values) if values.dtype.kind == "T" else values


def runs_to_objects(values: np.ndarray) -> np.ndarray:
    """A string array as an object array of ``str`` sharing one object per distinct value.

    Clip coordinates come in long runs (rows are grouped by clip length, then recording), so
    only run starts are converted: a few distinct strings instead of millions of str objects.
    """
    n = values.size
    if n == 0:
        return values.astype(object)
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    interned: dict[str, str] = {}
    firsts = np.array([interned.setdefault(v, v) for v in values[starts].astype(object).tolist()] + [None],
                      dtype=object)[:-1]  # the None keeps a 1-D object array even for list-like strings
    return np.repeat(firsts, np.diff(np.append(starts, n)))


def compact(values: np.ndarray):
    """A clip coordinate for a clip table: strings as :class:`pandas.Categorical`, others as they are.

    A cube's string coordinates have a handful of distinct values, so one byte per clip
    instead of a string column (a 228,050-clip cell's table: 20 -> 6 MB).
    """
    values = np.asarray(values)
    return pd.Categorical(as_objects(values)) if values.dtype.kind in "OTU" else values


def read_coordinate(array, rows: np.ndarray | slice | None = None) -> np.ndarray:
    """A stored clip coordinate (all of it, a slice, or sorted row indices), chunk by chunk.

    Strings become shared-``str`` object arrays one chunk at a time, so millions of decoded
    strings never exist at once.
    """
    n = array.shape[0]
    if rows is None:
        rows = slice(0, n)
    if isinstance(rows, slice):
        a, b, _ = rows.indices(n)
        step = array.chunks[0]
        parts = [as_objects(np.asarray(array[i : min(b, i + step)])) for i in range(a, b, step)]
        return np.concatenate(parts) if parts else np.zeros(0, object if array.dtype.kind in "TOU" else array.dtype)
    rows = np.asarray(rows, np.int64)
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # contiguous: a slice
        return read_coordinate(array, slice(int(rows[0]), int(rows[-1]) + 1))
    return as_objects(np.asarray(array.oindex[rows]))


class FeatureRows:
    """The feature rows of a selection, read on demand: ``take(i)`` is the matrix of its clips ``i``.

    Made of pieces ``(source, rows, columns)``: ``source`` is a stored Zarr array (read one chunk
    at a time, the last chunk kept for the next call, so consecutive batches decode each chunk
    once) or an in-memory array. Selection ``i`` indexes the concatenation of the pieces' rows.
    """

    def __init__(self, pieces: list[tuple[object, np.ndarray, np.ndarray | None]]):
        self.pieces = [(src, np.asarray(rows, np.int64), None if cols is None else np.asarray(cols, np.int64))
                       for src, rows, cols in pieces]
        self._offsets = np.cumsum([0] + [r.size for _, r, _ in self.pieces])
        widths = {self._width(src, cols) for src, _, cols in self.pieces}
        if len(widths) > 1:
            raise ValueError(f"feature pieces differ in width: {sorted(widths)}")
        self.n_features = widths.pop() if widths else 0
        self._last: dict[int, tuple[int, np.ndarray]] = {}

    @classmethod
    def of(cls, X) -> "FeatureRows":
        """All rows of an in-memory matrix (feature rows are returned as they are)."""
        if isinstance(X, FeatureRows):
            return X
        X = np.asarray(X)
        return cls([(X, np.arange(X.shape[0]), None)])

    @staticmethod
    def _width(src, cols) -> int:
        return src.shape[1] if cols is None else cols.size

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.n_features

    def subset(self, mask: np.ndarray) -> "FeatureRows":
        """The rows where ``mask`` (one bool per row) is true, still unread."""
        mask = np.asarray(mask, bool)
        if mask.size != len(self):
            raise ValueError(f"mask of {mask.size} rows for {len(self)} feature rows")
        return FeatureRows([(src, rows[mask[a:b]], cols) for (src, rows, cols), a, b
                            in zip(self.pieces, self._offsets[:-1], self._offsets[1:])])

    def __add__(self, other: "FeatureRows") -> "FeatureRows":
        return FeatureRows(self.pieces + other.pieces)

    def take(self, index: np.ndarray | None = None) -> np.ndarray:
        """Rows ``index`` (all rows if None) as one float32 matrix, in the order asked."""
        index = np.arange(len(self)) if index is None else np.asarray(index, np.int64)
        out = np.empty((index.size, self.n_features), np.float32)
        piece = np.searchsorted(self._offsets, index, side="right") - 1
        for p in np.unique(piece):
            at = np.flatnonzero(piece == p)
            src, rows, cols = self.pieces[p]
            out[at] = self._read(p, src, rows[index[at] - self._offsets[p]], cols)
        return out

    def _read(self, p: int, src, rows: np.ndarray, cols) -> np.ndarray:
        if not isinstance(src, zarr.Array):
            return src[rows] if cols is None else src[np.ix_(rows, cols)]
        out = np.empty((rows.size, self._width(src, cols)), np.float32)
        chunk = src.chunks[0]
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        ids = srt // chunk
        bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            c = int(ids[a])
            last = self._last.get(p)
            if last is None or last[0] != c:
                # one whole chunk decoded at a time (not a selection spanning many chunks, which
                # Zarr would decode concurrently, several chunks in memory at once)
                last = self._last[p] = (c, np.asarray(src[c * chunk : (c + 1) * chunk]))
            local = srt[a:b] - c * chunk
            out[order[a:b]] = last[1][local] if cols is None else last[1][np.ix_(local, cols)]
        return out

    def release(self) -> None:
        """Drop the kept chunks (the next read decodes again)."""
        self._last.clear()


class CubeRows:
    """A stored feature cube opened for row access, as evaluation tasks on workers use it.

    Holds the cube's attributes, its feature coordinates and where each (segmentation, clip
    length) group of rows lies; clip coordinates and features are read only for the rows a
    selection asks for. Opened with :func:`pipeline.artifacts.cube.open_rows`.
    """

    def __init__(self, path: str, group: zarr.Group):
        self.path = str(path)
        self._g = group
        self.attrs = dict(group.attrs)
        meta = self.attrs.get("micfp", {})
        self.features = group["features"]
        self.feature = read_coordinate(group["feature"])
        self.feature_set = read_coordinate(group["feature_set"])
        if "row_groups" in meta:
            self.runs = [RowRun(str(s), float(L), int(a), int(b)) for s, L, a, b in meta["row_groups"]]
        else:  # a cube written before the row groups were recorded: find them once
            self.runs = row_runs(read_coordinate(group["segmentation"]), read_coordinate(group["clip_seconds"]))
        self._values = {k: meta[k] for k in ("sessions", "sound_types") if k in meta}

    @property
    def n_clips(self) -> int:
        return int(self.features.shape[0])

    @property
    def clip_lengths(self) -> list[float]:
        """Nominal clip lengths of fixed clips in the cube."""
        return sorted({r.clip_seconds for r in self.runs if r.segmentation == "fixed"})

    def values(self, name: str) -> list[str]:
        """Distinct values of ``session`` or ``sound_type`` (from the attributes when recorded)."""
        key = {"session": "sessions", "sound_type": "sound_types"}[name]
        if key not in self._values:
            self._values[key] = [str(v) for v in pd.unique(read_coordinate(self._g[name]))]
        return list(self._values[key])

    def rows(self, segmentation: str, clip_seconds: float | None = None) -> np.ndarray:
        """Row numbers (ascending) of one segmentation, and of one nominal length if given."""
        # imported here: pipeline.features imports this module (its cube assembly uses row_runs)
        from ..features.clip_lengths import same

        runs = [r for r in self.runs if r.segmentation == segmentation
                and (clip_seconds is None or same(r.clip_seconds, clip_seconds))]
        if not runs:
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(r.start, r.stop, dtype=np.int64) for r in runs])

    def clips(self, rows: np.ndarray, names) -> pd.DataFrame:
        """The clip coordinates ``names`` of ``rows`` (ascending) as a table (see :func:`compact`)."""
        return pd.DataFrame({k: compact(read_coordinate(self._g[k], rows)) for k in names})

    def columns(self, feature_set: str) -> np.ndarray:
        """Feature columns of one feature set ("all": every column)."""
        if feature_set == "all":
            return np.arange(self.feature.size)
        return np.flatnonzero(self.feature_set == feature_set)
