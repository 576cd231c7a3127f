"""Make the shared helpers in tests/external importable (kernel_fuse, pyfuse3_sdist)."""

import sys
from pathlib import Path

_EXTERNAL = str(Path(__file__).resolve().parents[1] / "external")
if _EXTERNAL not in sys.path:
    sys.path.insert(0, _EXTERNAL)
