"""The unknown-microphone detector of the ``open-set`` protocol: per-microphone Gaussians in the embedding.

A clip of a known microphone lies close to that microphone's clips in the microphone embedding
(:class:`pipeline.identify.verification.MicEmbedding`, fitted on the known microphones); a clip
of any other microphone should lie far from all of them. "Close" is measured per microphone, by
the Mahalanobis distance under that microphone's own covariance of clip embeddings: some
microphones scatter more than others across content, and a unit whose twin is known differs
from it in a direction where the twin hardly varies.

Measured on the realistic corpora of ``benchmarks/bench_generalisation.py --forensic``
(session-relative features, 2-s clips, trained on day 1, tested on day 2; pooled EER over the
left-out folds): this detector scores 0.209 on ``dev`` (where it was chosen) and 0.239 on
``heldout``, against 0.285 and 0.391 for the best cosine similarity to the known microphones'
mean embeddings that it replaces (``docs/forensics.md``). The cosine discards an embedding's
length, so a microphone lying along a known one's direction, further out, passed as that
microphone.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .verification import MicEmbedding


class UnknownMicDetector(BaseEstimator):
    """Scores how much each clip looks like one of the microphones it was fitted on.

    Parameters
    ----------
    embedding : dict or None
        Keyword arguments of the :class:`~pipeline.identify.verification.MicEmbedding` fitted on
        the known microphones' clips.
    prior_clips : float or None
        Weight, in clips, of the pooled within-microphone covariance mixed into each
        microphone's own: ``(n S_k + m S_pooled) / (n + m)``. Keeps the covariance of a
        microphone with few clips invertible and stable; ``None``: the embedding's dimension
        plus one, negligible next to the hundreds of clips of a session.

    Attributes
    ----------
    embedding_ : MicEmbedding
    classes_ : ndarray of shape (n_mics,)
    means_ : ndarray of shape (n_mics, n_components)
    precisions_ : ndarray of shape (n_mics, n_components, n_components)
    """

    def __init__(self, embedding: dict | None = None, prior_clips: float | None = None):
        self.embedding = embedding
        self.prior_clips = prior_clips

    def fit(self, X, y):
        """Fit the embedding on the known microphones' clips, then each microphone's Gaussian in it."""
        y = np.asarray(y)
        self.embedding_ = MicEmbedding(**(self.embedding or {})).fit(X, y)
        E = self.embedding_.transform(X)
        self.classes_ = self.embedding_.classes_
        idx = np.searchsorted(self.classes_, y)
        self.means_ = np.stack([E[idx == k].mean(axis=0) for k in range(self.classes_.size)])
        resid = E - self.means_[idx]
        dim = E.shape[1]
        pooled = resid.T @ resid / max(len(E) - self.classes_.size, 1)
        # a floor at a millionth of the mean variance keeps a degenerate embedding invertible
        pooled += 1e-6 * max(np.trace(pooled) / dim, 1e-12) * np.eye(dim)
        m = dim + 1.0 if self.prior_clips is None else float(self.prior_clips)
        precisions = []
        for k in range(self.classes_.size):
            r = resid[idx == k]
            cov = (r.T @ r + m * pooled) / (len(r) + m)
            precisions.append(np.linalg.inv(cov))
        self.precisions_ = np.stack(precisions)
        self.n_features_in_ = self.embedding_.n_features_in_
        return self

    def distances(self, X) -> np.ndarray:
        """Squared Mahalanobis distance of each clip to each known microphone, shape ``(n, n_mics)``."""
        check_is_fitted(self, "precisions_")
        d = self.embedding_.transform(X)[:, None, :] - self.means_[None]
        return np.einsum("nki,kij,nkj->nk", d, self.precisions_, d)

    def score_samples(self, X) -> np.ndarray:
        """Minus the distance to the nearest known microphone: higher is more like a known one.

        The sign follows scikit-learn's novelty detectors (``score_samples`` of
        ``IsolationForest``, ``LocalOutlierFactor``): the unknown ones score lowest.
        """
        return -self.distances(X).min(axis=1)
