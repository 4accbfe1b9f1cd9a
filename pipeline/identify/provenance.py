"""Provenance of an answer: the SHA-256 of the files it came from and the model's identity.

What an examiner quotes beside a result so that anyone can check it was computed from these
bytes with this model (``identify --json``, ``verify --json``).
"""

from __future__ import annotations

import hashlib

from ..errors import InputError


def sha256(path) -> str:
    """SHA-256 of a file's bytes, hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                h.update(block)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return h.hexdigest()


def model_identity(model_path, meta: dict) -> dict:
    """The model file's path and SHA-256, the micfp version that trained it, when, and on what."""
    return {"path": str(model_path), "sha256": sha256(model_path),
            "micfp": meta.get("micfp", meta.get("versions", {}).get("micfp")),
            "created": meta.get("created"), "clip_seconds": meta.get("clip_seconds"),
            "feature_set": meta.get("feature_set")}
