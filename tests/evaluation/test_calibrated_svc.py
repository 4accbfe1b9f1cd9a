"""micfp_svc: Platt-scaled probabilities without scikit-learn's deprecated ``SVC(probability=True)``."""

import warnings

import numpy as np

from pipeline.evaluation.models import PARAM_GRIDS, fit_model, make_model


def blobs(n_per=30, k=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(1, k + 1), n_per)
    return rng.normal(size=(k, d))[y - 1] * 3 + rng.normal(size=(y.size, d)), y


def test_micfp_svc_fits_with_no_future_warning():
    """Before: scikit-learn 1.9 warned that ``probability`` is deprecated (removed in 1.11) on every fit."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        est = fit_model("micfp_svc", X, y, np.arange(y.size) // 10, 4)
        proba = est.predict_proba(X)
    clf = est.named_steps["clf"]
    assert isinstance(clf, CalibratedClassifierCV) and clf.ensemble is False
    # one SVC fitted on all the data (what probability=True did), with micfp's kernel cache
    (inner,) = clf.calibrated_classifiers_
    assert isinstance(inner.estimator, SVC) and inner.estimator.cache_size == 100
    assert inner.estimator.get_params()["probability"] == "deprecated"
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (est.classes_[proba.argmax(axis=1)] == y).mean() > 0.9
    # the tuned parameters are the grid's
    grid = PARAM_GRIDS["micfp_svc"]
    assert est.get_params()["clf__estimator__C"] in grid["clf__estimator__C"]


def test_every_param_grid_names_parameters_of_its_model():
    """A grid key that names no parameter (``clf__C`` once the SVC is nested) fails the search."""
    for name, grid in PARAM_GRIDS.items():
        params = make_model(name, 4).get_params()
        assert set(grid) <= set(params), name
