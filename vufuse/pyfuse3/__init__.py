"""vufuse's pyfuse3: pyfuse3 3.5.0's API in pure Python, speaking the FUSE protocol itself.

No libfuse and no compiled code: `init` opens /dev/fuse and mounts (mount(2) as root, the
fusermount3 helper otherwise), `main` reads requests in trio tasks, decodes them with
`vufuse.protocol` and calls the `Operations` handlers. Programs written for pyfuse3 import it as
``pyfuse3`` through the opt-in alias (see docs/pyfuse3.md and `vufuse.pyfuse3.run`).
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Mapping
from typing import Literal

import trio

from ._data import (
    _NANOS_PER_SEC,
    EntryAttributes,
    FileInfo,
    FUSEError,
    RequestContext,
    SetattrFields,
    StatvfsData,
)
from ._notify import (
    PollHandle,
    invalidate_entry,
    invalidate_entry_async,
    invalidate_inode,
    notify_store,
)
from ._operations import (
    FileHandleT,
    FileNameT,
    FlagT,
    InodeT,
    ModeT,
    Operations,
    XAttrNameT,
)
from ._readdir import ReaddirToken, readdir_reply
from ._session import close, main, terminate
from ._session import init as _init
from ._util import get_sup_groups, getxattr, listdir, setxattr, syncfs

__version__ = "3.5.0"

ROOT_INODE: InodeT = 1
ENOATTR: int = _errno.ENODATA  # Linux has no ENOATTR; ENODATA is what getxattr(2) reports
RENAME_NOREPLACE: FlagT = 1
RENAME_EXCHANGE: FlagT = 2

NamespaceT = Literal["system", "user"]
StatDict = Mapping[str, int]

#: Mount options pyfuse3 recommends as a starting set.
default_options: frozenset[str] = frozenset({"default_permissions"})

#: The trio token of the running main loop (None outside it), for trio.from_thread calls.
trio_token: trio.lowlevel.TrioToken | None = None


def init(
    ops: Operations, mountpoint: str, options: set[str] | frozenset[str] = default_options
) -> None:
    """Mount the filesystem *ops* at *mountpoint*; then run `main` and finally `close`.

    *options* are libfuse mount and session options, e.g. ``fsname=NAME``, ``allow_other``,
    ``default_permissions``, ``ro``, ``debug``; an unknown one raises RuntimeError.
    """
    _init(ops, mountpoint, options)


__all__ = [
    "ENOATTR", "EntryAttributes", "FUSEError", "FileHandleT", "FileInfo", "FileNameT", "FlagT",
    "InodeT", "ModeT", "Operations", "PollHandle", "RENAME_EXCHANGE", "RENAME_NOREPLACE",
    "ROOT_INODE", "ReaddirToken", "RequestContext", "SetattrFields", "StatvfsData",
    "XAttrNameT", "_NANOS_PER_SEC", "close", "default_options", "get_sup_groups", "getxattr",
    "init", "invalidate_entry", "invalidate_entry_async", "invalidate_inode", "listdir", "main",
    "notify_store", "readdir_reply", "setxattr", "syncfs", "terminate", "trio", "trio_token",
]  # fmt: skip
