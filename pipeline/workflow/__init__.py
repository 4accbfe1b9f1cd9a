"""Workflows (TOML configs, resumable end to end) and ``micfp demo``."""
