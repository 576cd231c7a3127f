#!/usr/bin/env python3
"""Entry point of the compatibility harness: ``python3 compat-tests/run.py [options]``.

Runs every FUSE program on the chosen backends (see compat/cli.py for the options), writes
compat-tests/results/latest.json and regenerates docs/compatibility.md. Run as root: the
kernel backend is the real kernel FUSE, and the vufuse backend switches to the test user.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compat.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
