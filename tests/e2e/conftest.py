"""End-to-end: unmodified FUSE daemons mounted and used inside `vufuse run`.

Each test writes a bash script, runs it as ``vufuse run bash script`` (as whoever runs the
suite: root, or the ordinary user vufuse-test, for whom /dev/fuse is not openable), and checks
what the script printed.  Every run is bounded (``RUN_TIMEOUT``; on expiry the whole process
group is killed) and the session itself kills whatever the script left behind, so no mount
and no process survives a test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from e2ehelp import Sessions


@pytest.fixture
def sessions(tmp_path: Path) -> Sessions:
    """A scratch directory (mountpoints go in it) and a way to run sessions there."""
    if shutil.which("fusermount3") is None:
        pytest.skip("fusermount3 is not installed (Debian package fuse3)")
    root = tmp_path.resolve()
    return Sessions(root)
