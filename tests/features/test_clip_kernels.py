"""The compiled clip reductions equal numpy's, on both percentile paths and skipped columns."""

import numpy as np
import pytest

from pipeline.features import lowband
from pipeline.features import sets as fsets
from pipeline.features.clips import SMALL_K, reduce_frames, used_columns
from pipeline.features.frames import FrameSettings

S = FrameSettings()


@pytest.mark.parametrize("kind", ["noise", "ramp_down", "ties"])
def test_percentiles_equal_numpy_short_and_long_clips(kind):
    rng = np.random.default_rng(1)
    n = 6000
    if kind == "noise":
        x = rng.normal(size=(n, 4)) * 10 - 50
    elif kind == "ramp_down":  # sorted input: worst case for naive selection
        x = np.repeat(np.linspace(0, -100, n)[:, None], 4, axis=1)
    else:  # heavy ties: quantised levels
        x = np.round(rng.normal(size=(n, 4)) * 2)
    x = x.astype(np.float32)
    lengths = [1, 2, 5, 19, 43, 200, 640, 3000]  # both sides of the small/large switch
    assert max(lengths) * 0.1 > SMALL_K
    f0 = np.concatenate([np.arange(0, n - m, max(m, 500)) for m in lengths])
    f1 = np.concatenate([np.arange(0, n - m, max(m, 500)) + m for m in lengths])
    out = reduce_frames(x, f0, f1, percentiles=(10.0, 50.0))
    for i, (a, b) in enumerate(zip(f0, f1)):
        for q in (10.0, 50.0):
            np.testing.assert_allclose(out[f"p{q:g}"][i], np.percentile(x[a:b].astype(np.float64), q, axis=0),
                                       rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out["mean"][i], x[a:b].astype(np.float64).mean(0), rtol=1e-5, atol=1e-4)


def test_used_columns_finds_what_the_sets_read_and_skipping_changes_nothing():
    sets = ("spectral", "channel")
    keys = ["mean", "std", "p10"]
    cols = used_columns(lambda st: np.concatenate([fsets.from_frame_stats(n, st, S) for n in sets], axis=1),
                        len(S.feature_names), keys)
    # the LTAS bands up to 320 Hz come from the long frames (ltaslo_k), not the frame FFT's ltas_k
    low = lowband.layout(S).bands
    ltas = np.concatenate([np.delete(S.index("ltas_"), low), S.index("ltaslo_")])
    assert set(cols["p10"]) == set(ltas)
    assert set(ltas) <= set(cols["mean"]) and not set(S.index("logmel_")) & set(cols["mean"])
    frames = np.random.default_rng(2).normal(size=(500, len(S.feature_names))).astype(np.float32)
    f0, f1 = np.array([0, 100, 37]), np.array([100, 400, 60])
    full = reduce_frames(frames, f0, f1, percentiles=(10.0,))
    part = reduce_frames(frames, f0, f1, percentiles=(10.0,), columns=cols)
    for n in sets:
        np.testing.assert_array_equal(fsets.from_frame_stats(n, part, S), fsets.from_frame_stats(n, full, S))
    assert np.isnan(part["std"][:, S.index("logmel_")]).all()  # skipped, and visibly so
