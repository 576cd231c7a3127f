"""Make the harness package (compat-tests/compat) importable as ``compat``."""

import sys
from pathlib import Path

_HARNESS = str(Path(__file__).resolve().parents[2] / "compat-tests")
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)
