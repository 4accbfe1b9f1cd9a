"""The evaluation grid of ``micfp evaluate`` and ``micfp demo``."""

from __future__ import annotations


def default_cells(clip_seconds, sound_types, protocols, classifiers=None, feature_sets=None):
    """The evaluation grid of ``micfp evaluate``/``demo``: thesis features for the thesis's
    classifiers and channel features for the ``micfp_*`` models unless feature sets are given."""
    from .evaluate import DEFAULT_CLASSIFIERS, THESIS_CLASSIFIERS, Cell

    classifiers = tuple(classifiers or DEFAULT_CLASSIFIERS)
    cells = []
    for clip in clip_seconds:
        for st in sound_types:
            for prot in protocols:
                for clf in classifiers:
                    sets = feature_sets or (("thesis",) if clf in THESIS_CLASSIFIERS else ("channel",))
                    cells += [Cell(float(clip), st, fs, clf, prot) for fs in sets]
    return cells
