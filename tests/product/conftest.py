"""Fixtures for the product tests (helpers live in producthelp.py: test modules import it).

Every session runs under a hard timeout; mountpoints live in pytest's tmp_path, which the
session tears down with everything in it (runtime dir, daemons).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def mnt(tmp_path: Path) -> Path:
    """An empty mountpoint."""
    path = tmp_path / "mnt"
    path.mkdir()
    return path
