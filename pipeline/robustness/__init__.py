"""Robustness: degradations (noise, codecs) and the stage that applies them to a store."""
