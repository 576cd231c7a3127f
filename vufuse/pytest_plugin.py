"""pytest fixtures for testing FUSE filesystems without root or /dev/fuse.

Registered as the ``vufuse`` pytest11 entry point, so installing vufuse is enough::

    def test_hello(vufuse_mount):
        fs = vufuse_mount(HelloFs)                      # a pyfuse3 Operations class
        assert fs.run(["cat", fs.mountpoint / "hello"]).stdout == "Hello\\n"

    def test_squashfs(vufuse_mount, image):
        fs = vufuse_mount("squashfuse", image)          # any FUSE program, unmodified
        assert fs.run(["ls", fs.mountpoint]).returncode == 0

``vufuse_mount(FILESYSTEM, *ARGS, **options)`` mounts at a fresh directory appended as the
last argument (or ``mountpoint=``) inside the test's session (``vufuse_session``, a
:class:`vufuse.Session`) and returns a :class:`MountedFilesystem`.  Commands that use the mount
must run in the session (``fs.run``/``vufuse_session.run``): the test process itself is not
traced.  The session, its daemons and its mounts end with the test.  docs/api.md.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .api import Mount, Session


@dataclass
class MountedFilesystem:
    """A filesystem mounted by ``vufuse_mount``: where, and how to use it."""

    mountpoint: Path
    session: Session
    mount: Mount

    def run(self, args: Any, **options: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command in the session (:meth:`vufuse.Session.run`)."""
        return self.session.run(args, **options)

    def unmount(self, lazy: bool = False) -> None:
        """Unmount it now (the daemon exits as on a kernel unmount)."""
        self.session.unmount(self.mountpoint, lazy=lazy)


@pytest.fixture
def vufuse_session() -> Iterator[Session]:
    """A vufuse session for this test: commands run in it see its FUSE mounts."""
    from .api import Session

    with Session() as session:
        yield session


@pytest.fixture
def vufuse_mount(
    vufuse_session: Session, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., MountedFilesystem]:
    """Mount a pyfuse3 Operations class (ours or the real pyfuse3, or an
    :class:`vufuse.OperationsClass`) or a FUSE program with its arguments, unprivileged."""
    counter = itertools.count()
    parent = tmp_path_factory.mktemp("vufuse-mnt")

    def mount(filesystem: Any, *args: Any, mountpoint: os.PathLike[str] | str | None = None,
              **options: Any) -> MountedFilesystem:  # fmt: skip
        if mountpoint is None:
            mountpoint = parent / f"mnt{next(counter)}"
            os.mkdir(mountpoint)
        made = vufuse_session.mount(filesystem, *args, mountpoint, **options)
        return MountedFilesystem(Path(mountpoint), vufuse_session, made)

    return mount
