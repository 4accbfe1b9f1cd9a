"""The ``micfp`` command line (``micfp = "pipeline.cli:main"``, ``python -m pipeline.cli``)."""

from .main import main

__all__ = ["main"]
