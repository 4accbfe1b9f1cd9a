"""The test suite fails on deprecations from micfp's own calls and keeps other libraries' visible
(pyproject.toml ``filterwarnings``; before: every DeprecationWarning was ignored)."""

import warnings

import pytest


def _warn(category, module):
    warnings.warn_explicit("deprecated", category, "f.py", 1, module=module)


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
def test_a_deprecation_raised_from_our_code_fails(category):
    with pytest.raises(category):
        _warn(category, "pipeline.evaluation.models")
    with pytest.raises(category):
        _warn(category, "test_something")


def test_scikit_learn_future_warnings_about_our_calls_fail():
    # e.g. SVC(probability=True): warned at fit time from sklearn.svm._base, without a stacklevel
    with pytest.raises(FutureWarning):
        _warn(FutureWarning, "sklearn.svm._base")


def test_another_librarys_own_deprecation_stays_visible():
    with warnings.catch_warnings(record=True) as seen:
        _warn(DeprecationWarning, "dask.array.core")
        _warn(DeprecationWarning, "pipelines_elsewhere")  # only micfp's package, not a name sharing its prefix
    assert [w.category for w in seen] == [DeprecationWarning, DeprecationWarning]
