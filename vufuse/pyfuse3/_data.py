"""The value classes that handlers receive and return: attributes, open-file info, statfs data.

pyfuse3 implements these as Cython classes over libfuse structs; here they are plain Python
objects with ``__slots__``, and the wire encoding lives in the dispatcher. What matters for
compatibility is visible behaviour: the defaults (a fresh `EntryAttributes` is a regular file
with one link and 300 s timeouts; `FileInfo.keep_cache` defaults to true), which classes can be
copied (`EntryAttributes`, `StatvfsData`) and which refuse pickling (`RequestContext`,
`SetattrFields`), and nanosecond timestamps that round-trip exactly.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pickle import PicklingError

_NANOS_PER_SEC = 1_000_000_000

#: Every attribute of EntryAttributes that takes part in copy/pickle, in pyfuse3's order.
_ENTRY_FIELDS = (
    "st_ino", "generation", "entry_timeout", "attr_timeout", "st_mode", "st_nlink",
    "st_uid", "st_gid", "st_rdev", "st_size", "st_blksize", "st_blocks",
    "st_atime_ns", "st_ctime_ns", "st_mtime_ns", "st_birthtime_ns",
)  # fmt: skip

_STATVFS_FIELDS = (
    "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
    "f_files", "f_ffree", "f_favail", "f_namemax",
)  # fmt: skip


class FUSEError(Exception):
    """Raised by a handler to make the syscall that caused the request fail with *errno*.

    It is the only exception a handler is meant to raise; anything else is answered with EIO
    and logged as a bug in the filesystem.
    """

    def __init__(self, errno: int) -> None:
        # Passing errno to Exception keeps copy() and pickling working (they rebuild from args).
        super().__init__(errno)
        self._errno = int(errno)

    @property
    def errno(self) -> int:
        """The error code the calling process will see."""
        return self._errno

    @property
    def errno_(self) -> int:
        """The same as `errno` (pyfuse3's Cython name for it)."""
        return self._errno

    def __str__(self) -> str:
        try:
            return os.strerror(self._errno)
        except ValueError:
            return f"errno: {self._errno}"


class RequestContext:
    """Who made the request: the caller's uid, gid, pid (a thread id) and umask.

    Read-only, and not picklable: it describes one request and must not outlive it.
    """

    __slots__ = ("_uid", "_gid", "_pid", "_umask")

    def __init__(self, uid: int = 0, gid: int = 0, pid: int = 0, umask: int = 0) -> None:
        self._uid = uid
        self._gid = gid
        self._pid = pid
        self._umask = umask

    @property
    def uid(self) -> int:
        """File-system user id of the caller."""
        return self._uid

    @property
    def gid(self) -> int:
        """File-system group id of the caller."""
        return self._gid

    @property
    def pid(self) -> int:
        """Thread id of the caller (the kernel sends the thread's id, not the process's)."""
        return self._pid

    @property
    def umask(self) -> int:
        """The caller's umask, for create/mkdir/mknod (0 elsewhere)."""
        return self._umask

    def __getstate__(self) -> None:
        raise PicklingError("RequestContext instances can't be pickled")

    def __repr__(self) -> str:
        return f"RequestContext(uid={self._uid}, gid={self._gid}, pid={self._pid})"


class SetattrFields:
    """Which attributes a `setattr` request changes; everything starts out False."""

    __slots__ = (
        "update_atime", "update_mtime", "update_ctime", "update_mode",
        "update_uid", "update_gid", "update_size",
    )  # fmt: skip

    def __init__(self) -> None:
        self.update_atime = False
        self.update_mtime = False
        self.update_ctime = False
        self.update_mode = False
        self.update_uid = False
        self.update_gid = False
        self.update_size = False

    def __getstate__(self) -> None:
        raise PicklingError("SetattrFields instances can't be pickled")

    def __repr__(self) -> str:
        changed = [name[len("update_") :] for name in self.__slots__ if getattr(self, name)]
        return f"SetattrFields({', '.join(changed)})"


class EntryAttributes:
    """Attributes of a directory entry: the ``stat`` fields plus FUSE's cache timeouts.

    Timestamps are integer nanoseconds so they survive the trip through the kernel exactly.
    """

    __slots__ = _ENTRY_FIELDS

    st_ino: int
    generation: int
    entry_timeout: float
    attr_timeout: float
    st_mode: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_rdev: int
    st_size: int
    st_blksize: int
    st_blocks: int
    st_atime_ns: int
    st_ctime_ns: int
    st_mtime_ns: int
    st_birthtime_ns: int

    def __init__(self) -> None:
        for name in _ENTRY_FIELDS:
            setattr(self, name, 0)
        self.entry_timeout = 300
        self.attr_timeout = 300
        self.st_mode = stat.S_IFREG
        self.st_blksize = 4096
        self.st_nlink = 1

    def __getstate__(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}

    def __setstate__(self, state: Mapping[str, float]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"EntryAttributes(st_ino={self.st_ino}, st_mode={self.st_mode:#o})"


class FileInfo:
    """What `open` and `create` return: the file handle and how the kernel may cache the file."""

    __slots__ = ("fh", "direct_io", "keep_cache", "nonseekable")

    def __init__(
        self,
        fh: int = 0,
        direct_io: bool = False,
        keep_cache: bool = True,
        nonseekable: bool = False,
    ) -> None:
        self.fh = fh
        self.direct_io = direct_io
        self.keep_cache = keep_cache
        self.nonseekable = nonseekable

    def __repr__(self) -> str:
        return f"FileInfo(fh={self.fh})"


class StatvfsData:
    """File-system statistics returned by `statfs`, named like ``struct statvfs``; all zero."""

    __slots__ = _STATVFS_FIELDS

    f_bsize: int
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_favail: int
    f_namemax: int

    def __init__(self) -> None:
        for name in _STATVFS_FIELDS:
            setattr(self, name, 0)

    def __getstate__(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _STATVFS_FIELDS}

    def __setstate__(self, state: Mapping[str, int]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
