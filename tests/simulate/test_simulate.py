"""The simulated recording studio: interface, determinism, programme, microphones, realism."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.simulate import MICS, SOUND_TYPES, StudioPlan, frequency_response, render_block, render_source
from pipeline.simulate.microphones import nonlinearity, unit_deviation_db
from pipeline.simulate.room import session_layout

PLAN = StudioPlan(minutes_per_session=(0.5, 0.2), seed=3)
SR = PLAN.sample_rate


def test_plan_interface():
    assert PLAN.sessions == ("day1", "day2")
    assert PLAN.n_samples("day1") == int(0.5 * 60 * SR)
    assert [m.label for m in MICS] == [1, 2, 3, 4, 5]
    assert [m.name for m in MICS] == ["Shure SM7B", "t.bone MB 7 Beta", "Neumann KM 184 #1",
                                      "Neumann KM 184 #2", "RODE NT1-A"]
    hash(PLAN)  # usable as an lru_cache key
    with pytest.raises(ValueError):
        PLAN.n_samples("day9")


def test_shapes_and_dtype():
    y = render_block(PLAN, "day2", 1000, 5000)
    assert y.dtype == np.int16 and y.shape == (5, 4000)
    assert render_block(PLAN, "day2", 7, 7).shape == (5, 0)
    with pytest.raises(ValueError):
        render_block(PLAN, "day2", 0, PLAN.n_samples("day2") + 1)


def test_deterministic_across_block_boundaries():
    n = PLAN.n_samples("day2")
    whole = render_block(PLAN, "day2", 0, n)
    cuts = [0, 4321, 131072, 131073, 300000, n]
    parts = np.concatenate([render_block(PLAN, "day2", a, b) for a, b in zip(cuts[:-1], cuts[1:])], axis=1)
    np.testing.assert_array_equal(whole, parts)
    # A fresh process would start with empty caches: clear them and render again.
    from pipeline.simulate import programme, studio

    studio._render_aligned.cache_clear()
    studio._noise_block.cache_clear()
    programme.synth_item.cache_clear()
    np.testing.assert_array_equal(render_block(PLAN, "day2", 200000, 260000), whole[:, 200000:260000])


def test_seed_and_session_change_the_recording():
    other = StudioPlan(minutes_per_session=(0.5, 0.2), seed=4)
    a = render_block(PLAN, "day1", 0, 48000)
    assert not np.array_equal(a, render_block(other, "day1", 0, 48000))
    assert not np.array_equal(a, render_block(PLAN, "day2", 0, 48000))


def test_segments_ordered_with_silent_gaps():
    for s in PLAN.sessions:
        segs = PLAN.segments(s)
        assert segs and all(t in SOUND_TYPES for _, _, t in segs)
        end = PLAN.n_samples(s) / SR
        for (a0, b0, _), (a1, b1, _) in zip(segs[:-1], segs[1:]):
            assert a0 < b0 <= a1 - 1.5  # gaps of at least 1.5 s
        assert 0 < segs[0][0] and segs[-1][1] <= end
        src = render_source(PLAN, s, 0, PLAN.n_samples(s))
        for (_, b0, _), (a1, _, _) in zip(segs[:-1], segs[1:]):
            assert not np.any(src[int(b0 * SR) + 1 : int(a1 * SR) - 1])  # true digital silence at the source


def test_recorded_gaps_are_near_silent():
    segs = PLAN.segments("day1")
    b0, a1 = segs[0][1], segs[1][0]
    y = render_block(PLAN, "day1", int((b0 + 0.5) * SR), int((a1 - 0.05) * SR)).astype(float) / 32768
    item = render_block(PLAN, "day1", int(segs[0][0] * SR), int(b0 * SR)).astype(float) / 32768
    gap_db = 10 * np.log10(np.mean(y**2, axis=1))
    item_db = 10 * np.log10(np.mean(item**2, axis=1))
    assert np.all(gap_db < -60) and np.all(item_db - gap_db > 30)


def _spectrum(x):
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return f, np.abs(np.fft.rfft(x)) ** 2


def test_sound_types_have_energy_where_expected():
    from pipeline.simulate.programme import synth_item

    n = 6 * SR
    f, p = _spectrum(synth_item("lowfreq", 11, n, SR))
    assert p[f < 300].sum() / p.sum() > 0.95
    f, p = _spectrum(synth_item("sweep", 11, n, SR))
    octaves = [p[(f >= lo) & (f < 2 * lo)].sum() for lo in (25, 100, 400, 1600, 6400)]
    assert min(octaves) > 0.3 * max(octaves)  # exponential sweep: about equal energy per octave
    assert p[(f > 14000) & (f < 20000)].sum() > 0.01 * p.sum()
    for kind in ("speech1", "speech2"):
        f, p = _spectrum(synth_item(kind, 11, n, SR))
        assert p[(f > 100) & (f < 4000)].sum() / p.sum() > 0.8
    f, p = _spectrum(synth_item("music", 11, n, SR))
    assert p[f < 250].sum() / p.sum() > 0.2 and p[f > 5000].sum() / p.sum() > 1e-4
    # The two speakers differ: the second one's fundamental is higher.
    def centroid(kind):
        f, p = _spectrum(synth_item(kind, 5, n, SR))
        sel = f < 1000
        return (f[sel] * p[sel]).sum() / p[sel].sum()
    assert centroid("speech2") > centroid("speech1") * 1.2


def test_km184_pair_differs_by_a_small_smooth_curve():
    f = np.geomspace(20, 20000, 400)
    d = frequency_response(MICS[2], f) - frequency_response(MICS[3], f)
    assert 0.5 <= np.abs(d).max() <= 1.0  # unit-to-unit matching of about 0.5-1 dB
    assert np.std(d) < 1.0
    assert np.abs(np.diff(d)).max() < 0.1  # smooth: no step between neighbouring points
    assert not np.any(unit_deviation_db(MICS[0], f))
    # Different models differ much more.
    assert np.abs(frequency_response(MICS[0], f) - frequency_response(MICS[2], f)).max() > 4


def test_session_drift_is_tiny():
    f = np.geomspace(20, 20000, 200)
    for mic in MICS:
        assert np.abs(frequency_response(mic, f, "day2") - frequency_response(mic, f)).max() < 0.4


def test_nonlinearity_only_on_dynamics():
    p = np.linspace(-20, 20, 101)
    for mic in MICS:
        out = nonlinearity(mic, p)
        if mic.kind == "dynamic":
            assert not np.allclose(out, p) and np.allclose(nonlinearity(mic, p * 1e-3), p * 1e-3, rtol=1e-4)
        else:
            assert out is p


def test_microphones_are_repositioned_between_sessions():
    a, b = session_layout(PLAN.seed, 0), session_layout(PLAN.seed, 1)
    assert sorted(a.positions) == list(range(5))
    assert all(x != y for x, y in zip(a.positions, b.positions))
    assert a.noise_db != b.noise_db


@pytest.mark.slow
def test_realism_band():
    """Issue 3's band: LTAS + LR separates models but not quite the KM 184 pair, and the thesis
    features do clearly worse on the pair than the channel features (30 + 8 min, a few minutes)."""
    from pipeline.simulate.realism import measure

    r = measure(StudioPlan(minutes_per_session=(30.0, 8.0), seed=0), kinds=("baseline", "channel", "thesis"))
    assert r["baseline"]["models"] >= 0.95
    assert 0.60 <= r["baseline"]["pair"] <= 0.98
    assert r["channel"]["models"] >= 0.95
    assert r["thesis"]["pair"] < r["channel"]["pair"] - 0.1
