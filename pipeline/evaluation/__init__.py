"""Scoring classifiers on the feature cube: the evaluation grid, protocols, metrics, results."""
