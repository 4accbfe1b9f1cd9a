"""``python -m pipeline.cli``: the ``micfp`` command line."""

import sys

from .main import main

sys.exit(main())
