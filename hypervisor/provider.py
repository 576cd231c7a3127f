"""The interface a virtual file system offers the hypervisor.

Modelled on the kernel's inode and file operations (and so on FUSE's low-level API, which
vufuse/devfuse will translate to): objects are named by inode numbers, the root is
:data:`ROOT_INODE`, a lookup returns the child's attributes, an open returns a file object
that lives until the last close of the open file description (RELEASE).  The hypervisor never
caches on its own; caching is the provider's business, as it is the kernel's page and dentry
cache's for FUSE.

Every method may raise ``OSError(errno)``; the hypervisor passes the errno to the caller.
Every method takes the keyword ``caller`` (thread id, fsuid, fsgid, groups: FUSE's request
header); the hypervisor always passes it for a tracee's request.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

ROOT_INODE = 1
"""Inode number of the root of every provider (FUSE_ROOT_ID)."""


@dataclass(frozen=True)
class Attributes:
    """What `stat` reports about an object, as FUSE's `fuse_attr` carries it.

    `ino` is what stat shows (st_ino).  `handle` is how the provider wants the object named in
    later calls (FUSE: the nodeid, which need not equal st_ino -- passthrough daemons hand out
    pointers); None means "the same as ino".  The hypervisor names objects by :attr:`node`.
    """

    ino: int
    mode: int
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    rdev: int = 0
    size: int = 0
    blksize: int = 4096
    blocks: int = 0
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    btime_ns: int | None = None
    handle: int | None = None
    valid_until: float = field(default=0.0, compare=False)
    """`time.monotonic()` until which this answer (the name that led here and these
    attributes) may be given again without asking the provider -- FUSE's entry and attribute
    timeouts; 0: never.  Only a provider whose :meth:`Provider.watch_changes` accepted a
    callback is taken at its word (the hypervisor's answer cache, docs/decisions.md D20)."""

    @property
    def node(self) -> int:
        """The number to name this object by in later provider calls."""
        return self.ino if self.handle is None else self.handle

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return stat_module.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        """True for a symbolic link."""
        return stat_module.S_ISLNK(self.mode)


@dataclass(frozen=True)
class DirEntry:
    """One directory entry; `next_offset` is the cookie to resume after it (FUSE `off`)."""

    name: bytes
    ino: int
    type: int  # DT_* value
    next_offset: int


@dataclass(frozen=True)
class StatFs:
    """What `statfs` reports, as FUSE's `fuse_kstatfs` carries it."""

    blocks: int = 0
    bfree: int = 0
    bavail: int = 0
    files: int = 0
    ffree: int = 0
    bsize: int = 4096
    namelen: int = 255
    frsize: int = 4096
    type: int = 0x65735546  # FUSE_SUPER_MAGIC: fusermount3 and df check it
    flags: int = 0


@dataclass
class Caller:
    """Who makes a request, for providers that check permissions (FUSE's in_header)."""

    pid: int
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)


DEFAULT_POLLMASK = 0x145
"""POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM: what poll(2) says of a file that can't tell
(the kernel's DEFAULT_POLLMASK: always ready)."""

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
Timestamp = tuple[int, int]
"""(seconds, nanoseconds); nanoseconds UTIME_NOW means now, UTIME_OMIT means unchanged."""


@dataclass(frozen=True)
class SetattrChanges:
    """What to change (None: leave alone), as struct iattr carries it.

    A ``size`` change implies no time change (the file system updates mtime, as for a
    write); ``from_open`` marks O_TRUNC, whose permission check open(2) made.  ``ctime`` is
    accepted for completeness but, as in the kernel without writeback cache, never sent.
    """

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    atime: Timestamp | None = None
    mtime: Timestamp | None = None
    ctime: Timestamp | None = None
    from_open: bool = False

    @property
    def empty(self) -> bool:
        """Nothing at all to do."""
        return all(
            value is None or (isinstance(value, tuple) and value[1] == UTIME_OMIT)
            for value in (self.mode, self.uid, self.gid, self.size, self.atime, self.mtime)
        )


@dataclass(frozen=True)
class FileLock:
    """A record lock as F_GETLK reports it: `end` inclusive; type F_UNLCK: none in the way."""

    start: int = 0
    end: int = 0
    type: int = 0
    pid: int = 0


class LockInfo(Protocol):
    """What F_GETLK reports (FileLock or anything with these fields): `end` inclusive."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def pid(self) -> int: ...


class LocalLocks(Exception):  # noqa: N818 - a signal, not an error
    """The provider does not serve locks: the hypervisor keeps them itself."""


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class OpenFile:
    """An open file description of a provider object (FUSE's file handle).

    Every method takes the keyword `caller` (who asks: FUSE's request header); it may be None
    when the hypervisor acts on its own (teardown).
    """

    async def read(self, offset: int, size: int, *, caller: Caller | None = None) -> bytes:
        """Up to `size` bytes at `offset`; fewer only at end of file."""
        raise _error(errno.EISDIR)

    async def readdir(
        self, offset: int, *, caller: Caller | None = None, size: int = 0
    ) -> list[DirEntry]:
        """Entries after cookie `offset` (0 = from the start); an empty list at the end.
        `size`: the caller's buffer in bytes (getdents' count), how much is worth fetching
        at once (0: unknown)."""
        raise _error(errno.ENOTDIR)

    async def getattr(self, *, caller: Caller | None = None) -> Attributes | None:
        """Attributes through the open file (fstat: FUSE GETATTR with the handle), or None to
        let the hypervisor ask the provider by inode."""
        return None

    async def flush(self, lock_owner: int = 0, *, caller: Caller | None = None) -> None:
        """An fd referring to this description was closed (FLUSH, once per close(2))."""

    async def release(self) -> None:
        """The last reference anywhere is gone (RELEASE)."""

    async def poll(
        self, events: int, waker: Callable[[], None] | None = None,
        *, caller: Caller | None = None,
    ) -> int:
        """The poll(2) mask of this open file for the asked `events` (the kernel's
        f_op->poll).  With `waker` somebody will wait: the provider calls ``waker()`` (from
        the session's trio thread) whenever the answer may have changed since (FUSE:
        POLL_SCHEDULE_NOTIFY, then NOTIFY_POLL).  The default is always ready."""
        return DEFAULT_POLLMASK

    # --- write side ---------------------------------------------------------------------
    async def write(self, offset: int, data: bytes, *, caller: Caller | None = None) -> int:
        """Write `data` at `offset` (ignored under O_APPEND); the number of bytes written."""
        raise _error(errno.EROFS)

    async def fsync(  # noqa: B027 - success by default
        self, datasync: bool = False, *, caller: Caller | None = None
    ) -> None:
        """fsync/fdatasync."""

    async def fallocate(
        self, mode: int, offset: int, length: int, *, caller: Caller | None = None
    ) -> None:
        """fallocate(2)."""
        raise _error(errno.EROFS)

    async def copy_file_range(
        self, offset_in: int, target: OpenFile, offset_out: int, length: int, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> int:
        """Copy inside the provider; EOPNOTSUPP/EXDEV: the hypervisor copies itself."""
        raise _error(errno.EOPNOTSUPP)

    async def lseek(
        self, offset: int, whence: int, position: int, *, caller: Caller | None = None
    ) -> int:
        """The new position; the generic default knows SEEK_SET and SEEK_CUR only."""
        if whence == 0:
            return offset
        if whence == 1:
            return position + offset
        raise _error(errno.EINVAL)

    async def setattr(
        self, changes: SetattrChanges, *, lock_owner: int = 0, caller: Caller | None = None
    ) -> Attributes:
        """fchmod/fchown/ftruncate/futimens through this open file."""
        raise _error(errno.EROFS)

    async def getlk(
        self, lock_type: int, start: int, length: int, owner: int, pid: int,
        *, caller: Caller | None = None,
    ) -> LockInfo:
        """F_GETLK / F_OFD_GETLK: the conflicting lock, or one of type F_UNLCK."""
        raise LocalLocks()

    async def setlk(
        self, lock_type: int, start: int, length: int, owner: int, pid: int, wait: bool,
        *, caller: Caller | None = None,
    ) -> None:
        """F_SETLK(W) / F_OFD_SETLK(W)."""
        raise LocalLocks()

    async def flock(self, operation: int, pid: int, *, caller: Caller | None = None) -> None:
        """flock(2): LOCK_SH/LOCK_EX/LOCK_UN | LOCK_NB."""
        raise LocalLocks()


class Provider(ABC):
    """A virtual file system mounted somewhere in the session's mount table."""

    #: Longest name a lookup accepts (longer: ENAMETOOLONG before asking).  Each file
    #: system sets its own, as in the kernel (FUSE: 1024, FUSE_NAME_MAX).
    name_max: int = 255

    @abstractmethod
    async def lookup(
        self, parent: int, name: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        """The child `name` of directory `parent` (never "." or ".."); ENOENT if absent."""

    @abstractmethod
    async def getattr(self, ino: int, *, caller: Caller | None = None) -> Attributes:
        """Current attributes of `ino`."""

    async def readlink(self, ino: int, *, caller: Caller | None = None) -> bytes:
        """Target of symlink `ino`."""
        raise _error(errno.EINVAL)

    @abstractmethod
    async def open(self, ino: int, flags: int, *, caller: Caller | None = None) -> OpenFile:
        """Open `ino` (a file or a directory) with open(2) `flags`."""

    async def statfs(self, ino: int, *, caller: Caller | None = None) -> StatFs:
        """File system statistics."""
        return StatFs()

    async def access(  # noqa: B027 - an optional hook
        self, ino: int, mode: int, *, caller: Caller | None = None
    ) -> None:
        """Raise EACCES if the caller may not access `ino` with `mode` (R_OK|W_OK|X_OK)."""

    async def getxattr(self, ino: int, name: bytes, *, caller: Caller | None = None) -> bytes:
        """Value of extended attribute `name`; ENODATA if unset."""
        raise _error(errno.ENODATA)

    async def listxattr(self, ino: int, *, caller: Caller | None = None) -> list[bytes]:
        """Names of the extended attributes of `ino`."""
        return []

    def watch_changes(self, callback: Callable[[], None]) -> bool:
        """Call `callback()` whenever an answer given earlier may stop holding before its
        `valid_until` (an invalidation: a write, a rename, a notification from the daemon...).
        Returns False when the provider can't tell (the default): then none of its answers is
        reused."""
        return False

    def known_size(self, ino: int) -> int | None:
        """The size the provider already holds for `ino` without asking anyone (the kernel's
        i_size: what mmap sizes its mapping by, with no GETATTR), or None if it has none."""
        return None

    def hold(self, ino: int) -> None:  # noqa: B027 - an optional hook
        """The hypervisor keeps `ino` across calls (a cwd stand-in, an O_PATH fd): the
        provider must not forget it (FUSE: no FORGET) until :meth:`unhold` (the kernel's
        dget)."""

    async def unhold(self, ino: int) -> None:  # noqa: B027 - an optional hook
        """Drop one :meth:`hold` of `ino` (the kernel's dput)."""

    # --- write side ---------------------------------------------------------------------
    async def create(
        self, parent: int, name: bytes, mode: int, flags: int, umask: int,
        *, caller: Caller | None = None,
    ) -> tuple[Attributes, OpenFile]:
        """open(2) with O_CREAT; an existing name is opened as by open (EEXIST with O_EXCL)."""
        raise _error(errno.EROFS)

    async def tmpfile(
        self, parent: int, mode: int, flags: int, umask: int, *, caller: Caller | None = None
    ) -> tuple[Attributes, OpenFile]:
        """O_TMPFILE."""
        raise _error(errno.EOPNOTSUPP)

    async def mknod(
        self, parent: int, name: bytes, mode: int, rdev: int, umask: int,
        *, caller: Caller | None = None,
    ) -> Attributes:
        """mknod(2); `rdev` is a host dev_t."""
        raise _error(errno.EROFS)

    async def mkdir(
        self, parent: int, name: bytes, mode: int, umask: int, *, caller: Caller | None = None
    ) -> Attributes:
        """mkdir(2)."""
        raise _error(errno.EROFS)

    async def symlink(
        self, parent: int, name: bytes, target: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        """symlink(2)."""
        raise _error(errno.EROFS)

    async def link(
        self, ino: int, parent: int, name: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        """link(2): a new name for `ino`."""
        raise _error(errno.EROFS)

    async def unlink(self, parent: int, name: bytes, *, caller: Caller | None = None) -> None:
        """unlink(2)."""
        raise _error(errno.EROFS)

    async def rmdir(self, parent: int, name: bytes, *, caller: Caller | None = None) -> None:
        """rmdir(2)."""
        raise _error(errno.EROFS)

    async def rename(
        self, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> None:
        """rename(2); `flags` RENAME_NOREPLACE/EXCHANGE/WHITEOUT."""
        raise _error(errno.EROFS)

    async def setattr(
        self, ino: int, changes: SetattrChanges, fh: OpenFile | None = None,
        *, lock_owner: int = 0, caller: Caller | None = None,
    ) -> Attributes:
        """chmod/chown/truncate/utimensat; `fh`: ftruncate's file."""
        raise _error(errno.EROFS)

    async def setxattr(
        self, ino: int, name: bytes, value: bytes, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> None:
        """setxattr(2); flags XATTR_CREATE=1, XATTR_REPLACE=2."""
        raise _error(errno.EROFS)

    async def removexattr(self, ino: int, name: bytes, *, caller: Caller | None = None) -> None:
        """removexattr(2)."""
        raise _error(errno.EROFS)
