"""Run `workflows/forensic.toml` (same as `micfp run workflows/forensic.toml`).

Usage: python workflows/forensic.py [--scheduler ADDRESS] [--workers N] [--out DIR]
                              [--performance-report FILE] [--no-report] [--debug]
"""

import sys
from pathlib import Path

from pipeline.workflow.script import script_main

if __name__ == "__main__":
    sys.exit(script_main(Path(__file__).with_suffix(".toml")))
