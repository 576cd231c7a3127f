"""`Operations`: the base class a filesystem derives from, one coroutine per FUSE request.

Every handler here answers ENOSYS, which tells the kernel the filesystem lacks the operation
(for most requests it then stops asking). A filesystem overrides only what it implements.
The signatures are pyfuse3's, so its filesystems run unchanged.
"""

from __future__ import annotations

import errno
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._data import EntryAttributes, FileInfo, FUSEError, RequestContext, SetattrFields, StatvfsData

if TYPE_CHECKING:
    from ._notify import PollHandle
    from ._readdir import ReaddirToken

FileHandleT = int
FileNameT = bytes
FlagT = int
InodeT = int
ModeT = int
XAttrNameT = bytes

log = logging.getLogger("pyfuse3")


def _unsupported() -> FUSEError:
    return FUSEError(errno.ENOSYS)


class Operations:
    """Request handlers of a filesystem; subclass it and override what you support.

    Handlers raise `FUSEError` to fail a request. Handlers that create a directory entry
    (lookup, mknod, mkdir, symlink, link, create) and each entry accepted by `readdir_reply`
    add one to the inode's lookup count; `forget` takes counts away again.
    """

    #: Whether lookups of "." and ".." work (lets the kernel export the fs over NFS).
    supports_dot_lookup: bool = True
    #: Ask the kernel to cache writes and send them later, in bigger pieces.
    enable_writeback_cache: bool = False
    #: Ask the kernel to enforce POSIX ACLs stored in system.posix_acl_* xattrs.
    enable_acl: bool = False

    def init(self) -> None:
        """Called once, synchronously, when the kernel's INIT arrives; must not raise."""

    async def lookup(
        self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext
    ) -> EntryAttributes:
        """Find *name* in directory *parent_inode*; st_ino 0 means a cacheable 'no such entry'."""
        raise _unsupported()

    async def forget(self, inode_list: Sequence[tuple[InodeT, int]]) -> None:
        """Drop lookup counts: *inode_list* holds (inode, count) pairs; must not raise."""

    async def getattr(self, inode: InodeT, ctx: RequestContext) -> EntryAttributes:
        """Return the attributes of *inode* (entry_timeout is ignored here)."""
        raise _unsupported()

    async def setattr(
        self,
        inode: InodeT,
        attr: EntryAttributes,
        fields: SetattrFields,
        fh: FileHandleT | None,
        ctx: RequestContext,
    ) -> EntryAttributes:
        """Change the attributes flagged in *fields* to the values in *attr*; return them all.

        *fh* is the open file's handle for fd-based calls (ftruncate, fchmod), else None.
        """
        raise _unsupported()

    async def readlink(self, inode: InodeT, ctx: RequestContext) -> FileNameT:
        """Return the target of symbolic link *inode*."""
        raise _unsupported()

    async def mknod(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, rdev: int, ctx: RequestContext
    ) -> EntryAttributes:
        """Create a file, device node, fifo or socket *name* (the type is in *mode*)."""
        raise _unsupported()

    async def mkdir(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, ctx: RequestContext
    ) -> EntryAttributes:
        """Create directory *name*; *mode* always carries S_IFDIR."""
        raise _unsupported()

    async def unlink(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        """Remove the non-directory *name*; keep the inode while its lookup count is non-zero."""
        raise _unsupported()

    async def rmdir(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        """Remove the empty directory *name* (ENOTEMPTY otherwise)."""
        raise _unsupported()

    async def symlink(
        self, parent_inode: InodeT, name: FileNameT, target: FileNameT, ctx: RequestContext
    ) -> EntryAttributes:
        """Create symbolic link *name* pointing to *target*."""
        raise _unsupported()

    async def rename(
        self,
        parent_inode_old: InodeT,
        name_old: FileNameT,
        parent_inode_new: InodeT,
        name_new: FileNameT,
        flags: FlagT,
        ctx: RequestContext,
    ) -> None:
        """Move an entry, replacing any target; *flags* may hold RENAME_NOREPLACE/EXCHANGE."""
        raise _unsupported()

    async def link(
        self, inode: InodeT, new_parent_inode: InodeT, new_name: FileNameT, ctx: RequestContext
    ) -> EntryAttributes:
        """Create hard link *new_name* in *new_parent_inode* to *inode*."""
        raise _unsupported()

    async def open(self, inode: InodeT, flags: FlagT, ctx: RequestContext) -> FileInfo:
        """Open *inode* with open(2) *flags*; O_TRUNC arrives here, O_CREAT/O_EXCL do not."""
        raise _unsupported()

    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes:
        """Return *size* bytes at *off*; fewer only at end of file."""
        raise _unsupported()

    async def write(self, fh: FileHandleT, off: int, buf: bytes) -> int:
        """Write *buf* at *off* and return how much was written (all of it, unless direct_io)."""
        raise _unsupported()

    async def flush(self, fh: FileHandleT) -> None:
        """A file descriptor of *fh* was closed (called once per close, so possibly often)."""
        raise _unsupported()

    async def release(self, fh: FileHandleT) -> None:
        """The last descriptor of *fh* is gone; errors raised here reach nobody."""
        raise _unsupported()

    async def fsync(self, fh: FileHandleT, datasync: bool) -> None:
        """Make *fh*'s data (and metadata unless *datasync*) durable."""
        raise _unsupported()

    async def poll(
        self,
        inode: InodeT,
        fh: FileHandleT,
        poll_handle: PollHandle | None,
        ctx: RequestContext,
    ) -> int:
        """Return the ready poll events of *fh*; keep *poll_handle* to notify waiters later."""
        raise _unsupported()

    async def opendir(self, inode: InodeT, ctx: RequestContext) -> FileHandleT:
        """Open directory *inode* and return a handle for readdir/releasedir."""
        raise _unsupported()

    async def readdir(self, fh: FileHandleT, start_id: int, token: ReaddirToken) -> None:
        """List entries from *start_id* on, each through `readdir_reply`, until it returns False.

        *start_id* is 0 or a *next_id* given earlier. Each accepted entry other than "." and
        ".." adds one to its inode's lookup count.
        """
        raise _unsupported()

    async def releasedir(self, fh: FileHandleT) -> None:
        """Directory handle *fh* is closed for good."""
        raise _unsupported()

    async def fsyncdir(self, fh: FileHandleT, datasync: bool) -> None:
        """Make the directory *fh* durable."""
        raise _unsupported()

    async def statfs(self, ctx: RequestContext) -> StatvfsData:
        """Return file-system statistics (df, statvfs)."""
        raise _unsupported()

    def stacktrace(self) -> None:
        """Log the stack of every thread: a tool for finding where a filesystem hangs."""
        lines = []
        for thread_id, frame in sys._current_frames().items():
            lines.append(f"\n# Thread {thread_id}")
            lines.extend(traceback.format_stack(frame))
        log.error("".join(lines))

    async def setxattr(
        self, inode: InodeT, name: XAttrNameT, value: bytes, ctx: RequestContext
    ) -> None:
        """Set extended attribute *name* (create-only/replace-only flags are handled for you)."""
        raise _unsupported()

    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> bytes:
        """Return extended attribute *name*, or raise FUSEError(ENOATTR)."""
        raise _unsupported()

    async def listxattr(self, inode: InodeT, ctx: RequestContext) -> Sequence[XAttrNameT]:
        """Return the names of *inode*'s extended attributes."""
        raise _unsupported()

    async def removexattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> None:
        """Remove extended attribute *name*, or raise FUSEError(ENOATTR)."""
        raise _unsupported()

    async def access(self, inode: InodeT, mode: ModeT, ctx: RequestContext) -> bool:
        """Whether the caller may access *inode* with *mode* (unused with default_permissions)."""
        raise _unsupported()

    async def create(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, flags: FlagT, ctx: RequestContext
    ) -> tuple[FileInfo, EntryAttributes]:
        """Create regular file *name* and open it; return (FileInfo, EntryAttributes)."""
        raise _unsupported()
