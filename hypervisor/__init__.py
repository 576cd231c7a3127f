"""The hypervisor core: seccomp-notified syscalls, paths, fds and the mount table.

It knows nothing of FUSE: a file system plugs in as a :class:`Provider` mounted in a
:class:`MountTable`, and a :class:`Session` runs a command with every process traced
(docs/hypervisor.md).  The C tracing core is the private extension ``hypervisor._tracer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .extensions import Extensions, MountRequest
from .mounts import Mount, MountTable
from .provider import ROOT_INODE, Attributes, Caller, DirEntry, OpenFile, Provider, StatFs

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "ROOT_INODE", "Attributes", "Caller", "DirEntry", "Extensions", "Mount", "MountRequest",
    "MountTable", "OpenFile", "Provider", "Session", "StatFs",
]


def __getattr__(name: str) -> Any:
    # Session pulls in trio and the handlers: only when asked for.
    if name == "Session":
        from .session import Session

        return Session
    raise AttributeError(name)
