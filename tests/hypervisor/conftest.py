"""Fixtures for the hypervisor tests: a session with the in-memory provider mounted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from memprovider import MemProvider, make_real_tree, sample_tree
from sessionhelp import World, sync_times

from hypervisor.mounts import MountTable


@pytest.fixture
def world(tmp_path: Path) -> World:
    """tmp/real (a real tree) and tmp/mnt (the same tree, virtual, default_permissions)."""
    root = tmp_path.resolve()
    real, mnt = root / "real", root / "mnt"
    real.mkdir()
    mnt.mkdir()
    make_real_tree(str(real))
    provider = MemProvider()
    sample_tree(provider)
    mounts = MountTable()
    mounts.add(os.fsencode(mnt), provider, options={"default_permissions": ""})
    sync_times(real, provider)
    return World(root, real, mnt, provider, mounts)


