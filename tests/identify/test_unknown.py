"""The open-set protocol's unknown-microphone detector (pipeline.identify.unknown)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from pipeline.identify.unknown import UnknownMicDetector
from pipeline.identify.verification import MicEmbedding, unit_rows


def clusters(rng, n=60, d=6):
    """Three known microphones: anisotropic clouds, each tight along its own direction."""
    means = np.array([[4.0, 0, 0, 0, 0, 0], [0, 4.0, 0, 0, 0, 0], [0, 0, 4.0, 0, 0, 0]])[:, :d]
    X, y = [], []
    for k, m in enumerate(means):
        X.append(m + rng.normal(0, 1.0, (n, d)) * np.where(np.arange(d) == k, 0.1, 1.0))
        y += [k] * n
    return np.vstack(X), np.array(y), means


def test_own_clips_score_higher_than_far_ones(rng):
    X, y, means = clusters(rng)
    det = UnknownMicDetector().fit(X, y)
    d = det.distances(X)
    assert d.shape == (len(X), 3) and (d >= 0).all()
    assert (d.argmin(axis=1) == y).mean() > 0.95
    np.testing.assert_allclose(det.score_samples(X), -d.min(axis=1))
    far = means[0] * 3  # along microphone 0's direction, three times as far out
    assert det.score_samples(far[None])[0] < np.quantile(det.score_samples(X[y == 0]), 0.01)


def test_flags_what_the_cosine_to_mean_embeddings_passes(rng):
    """Why the detector replaced the cosine: a clip along a known microphone's direction, further
    out, has that microphone's cosine but lies far from its clips."""
    X, y, means = clusters(rng)
    emb = MicEmbedding().fit(X, y)
    centre = np.stack([unit_rows(emb.transform(X[y == k])).mean(axis=0) for k in range(3)])
    probe = means[0] * 3 + rng.normal(0, 0.1, (20, X.shape[1]))
    cosine = (unit_rows(emb.transform(probe)) @ centre.T).max(axis=1)
    own_cosine = (unit_rows(emb.transform(X[y == 0])) @ centre.T).max(axis=1)
    assert np.median(cosine) > np.quantile(own_cosine, 0.1)  # the cosine calls most of them known
    det = UnknownMicDetector().fit(X, y)
    assert det.score_samples(probe).max() < det.score_samples(X[y == 0]).min()


def test_a_microphone_with_fewer_clips_than_dimensions_still_fits(rng):
    X, y, _ = clusters(rng, n=30)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]  # one clip of microphone 2
    det = UnknownMicDetector().fit(X[keep], y[keep])
    assert np.isfinite(det.distances(X)).all()
    assert clone(det).get_params() == {"embedding": None, "prior_clips": None}


@settings(max_examples=25, deadline=None)
@given(scale=st.lists(st.floats(0.01, 100.0), min_size=6, max_size=6), seed=st.integers(0, 2**16))
def test_scores_do_not_depend_on_the_features_units(scale, seed):
    """The embedding standardises each feature, so rescaling one (dB against nepers) changes nothing."""
    X, y, _ = clusters(np.random.default_rng(seed), n=25)
    a = UnknownMicDetector().fit(X, y).score_samples(X)
    b = UnknownMicDetector().fit(X * np.array(scale), y).score_samples(X * np.array(scale))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8 * np.abs(a).max())


def test_unfitted_detector_refuses_to_score():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        UnknownMicDetector().score_samples(np.zeros((1, 3)))
