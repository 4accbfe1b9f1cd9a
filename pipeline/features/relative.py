"""The ``session-relative`` feature set: each clip's features minus the microphones' mean at that moment.

In a session every microphone records the same sound at the same time, so the mean over the
microphones of a clip feature at one moment (same session, segmentation, clip length and start)
is a reference for what was played and the room; a clip's difference from it keeps what its
microphone adds. When some microphones have no clip at a moment (a shorter recording), the mean
is over those present; a moment with only one microphone has no reference and its clips get NaN
(evaluation leaves them out, see :func:`pipeline.evaluation.cell.select_rows`).

The kernel (:func:`relative_to_mean`) is pure numpy. The cube stage runs :func:`relative_task`
once per (session, window) after the clip stage: each task reads the clip parts of every
recording of the session for that window (the clip tasks' windows are aligned to the recording
start, so the same moments fall into the same window in every recording), replaces the set's
columns by their differences and writes them back, before the parts are assembled into the cube.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import zarr

from ..artifacts.outputs import verify_seen

#: Lowest band centre (Hz) of the set's LTAS bands. Below about 1 kHz the level a microphone receives
#: is shaped by where it stands (room modes, and floor and wall reflections at arm's length, whose
#: comb spacing is a few hundred Hz), and that changes when microphones change places between
#: sessions. Chosen on the tuning studio only (``micfp simulate --studio dev``, positions rotated, train
#: day 1, test day 2, 2-s clips, RBF SVC): all bands 0.83; from 100 Hz 0.88, 300 Hz 0.95, 700 Hz 0.96,
#: 1 kHz 0.96, 2 kHz 0.95 (the plateau's middle is taken).
MIN_HZ = 1000.0
#: Name of the feature set, and the prefix of its feature names (``rel_<base feature>``).
SET_NAME = "session-relative"
PREFIX = "rel_"
#: Clip coordinates that identify a moment within one session.
MOMENT_KEYS = ("segmentation", "clip_seconds", "start")


#: Why a single file (``identify``, ``train``) cannot use the set: one line for the error.
SINGLE_FILE_REASON = ("the session-relative feature set compares each clip with the other microphones of its "
                      "session at the same moment, so it needs a whole session, not one file; use channel")


def relative_to_mean(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row of ``X`` minus the mean of the rows in its group; NaN in groups of one row.

    Parameters
    ----------
    X : ndarray
        (n_rows, n_features) values (e.g. dB band levels of clips).
    groups : ndarray
        (n_rows,) integer group of each row (e.g. the moment a clip was recorded).

    Returns
    -------
    ndarray
        float32, the shape of ``X``. Within a group of two or more rows the values sum to zero
        per feature, and adding one vector to every row of a group leaves the group unchanged.
    """
    X = np.asarray(X, np.float64)
    groups = np.asarray(groups)
    if X.shape[0] == 0:
        return X.astype(np.float32)
    codes, _ = pd.factorize(groups)
    n = codes.max() + 1
    counts = np.bincount(codes, minlength=n)
    sums = np.zeros((n, X.shape[1]))
    np.add.at(sums, codes, X)
    means = sums / counts[:, None]
    out = X - means[codes]
    out[counts[codes] < 2] = np.nan
    return out.astype(np.float32)


def moment_groups(coords: list[dict]) -> list[np.ndarray]:
    """Per part's clip coordinates, the integer moment of each clip (shared across the parts)."""
    if not coords:
        return []
    keys = pd.DataFrame({k: np.concatenate([np.asarray(c[k]) for c in coords]) for k in MOMENT_KEYS})
    codes = keys.groupby(list(MOMENT_KEYS), sort=False, dropna=False).ngroup().to_numpy()
    bounds = np.cumsum([0] + [len(c["start"]) for c in coords])
    return [codes[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def relative_task(parts_path: str, parts: tuple[int, ...], coords: tuple[dict, ...], columns: np.ndarray,
                  uid: str | None = None) -> int:
    """Replace columns ``columns`` of the clip parts ``parts`` by their session-relative values.

    ``parts`` are the parts of one session's recordings for one window and ``coords`` their clip
    coordinates (as the clip tasks returned them); each part is read and written once. Returns
    the number of clips without a reference (alone at their moment).
    """
    verify_seen(parts_path, uid)
    g = zarr.open_group(parts_path, mode="r+")
    have = [(p, c) for p, c in zip(parts, coords) if len(c["start"]) and str(p) in g]
    if not have:
        return 0
    blocks = [g[str(p)][:] for p, _ in have]
    groups = np.concatenate(moment_groups([c for _, c in have]))
    rel = relative_to_mean(np.concatenate([b[:, columns] for b in blocks]), groups)
    a = 0
    for (p, _), b in zip(have, blocks):
        b[:, columns] = rel[a : a + b.shape[0]]
        a += b.shape[0]
        g[str(p)][:] = b
    return int(np.isnan(rel).all(axis=1).sum())


def plan_relative(planned: list, coords_list: list[dict]) -> list[tuple[tuple[int, ...], tuple[dict, ...]]]:
    """Group the clip parts by (session, window): one :func:`relative_task` per group.

    ``planned`` holds the clip stage's ``(ClipTask, constant coordinates)`` and ``coords_list``
    each part's clip coordinates, in part order.
    """
    by: dict[tuple, list[int]] = {}
    for i, (task, const) in enumerate(planned):
        by.setdefault((const["session"], task.win_start), []).append(i)
    return [(tuple(ix), tuple({k: coords_list[i][k] for k in MOMENT_KEYS} for i in ix)) for ix in by.values()]


def relative_columns(names) -> np.ndarray:
    """Indices of the session-relative features among the cube's feature ``names``."""
    return np.array([i for i, n in enumerate(names) if str(n).startswith(PREFIX)], np.int64)


def usable_rows(meta: pd.DataFrame) -> np.ndarray:
    """Which clips of a cell table have a session reference: a second microphone at that moment.

    ``meta`` needs ``session``, ``start_s``, ``clip_seconds`` and ``mic`` (one cell: one
    segmentation). Equivalent to the NaN rows of the set, found without reading features.
    """
    keys = [meta["session"].astype(str), meta["start_s"].astype(float), meta["clip_seconds"].astype(float)]
    n = meta.groupby(keys, sort=False, observed=True)["mic"].transform("nunique")
    return (n >= 2).to_numpy()
