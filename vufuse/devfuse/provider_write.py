"""The write side of :class:`~vufuse.devfuse.provider.FuseProvider` and its open files.

Translation only, like provider.py; the semantics live in namei.py, setattr.py, write.py,
locks.py, xattr_write.py.  Mixed into FuseProvider and FuseOpenFile, so the hypervisor sees
one provider.  docs/devfuse.md ("Provider interface: write side") lists what the hypervisor's
Provider interface must gain for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import trio

from hypervisor.provider import Attributes, Caller, OpenFile

from . import locks as fuse_locks
from . import namei, xattr_write
from . import setattr as fuse_setattr
from . import write as fuse_write
from .file import FuseFile
from .inode import Inode
from .setattr import SetattrChanges
from .superblock import Superblock

if TYPE_CHECKING:
    from vufuse import protocol as p

    from .provider import FuseOpenFile, FuseProvider


def _attributes(sb: Superblock, inode: Inode) -> Attributes:
    from .provider import attributes

    return attributes(sb, inode, inode.attr)


class FileWriteMixin:
    """Write-side methods of an open FUSE file (FuseOpenFile)."""

    provider: FuseProvider
    file: FuseFile

    async def write(self, offset: int, data: bytes, *, caller: Caller | None = None) -> int:
        """write(2)/pwrite(2): bytes written; with O_APPEND ``offset`` is ignored (i_size)."""
        return await fuse_write.write(self.file, offset, data, caller)

    async def fsync(self, datasync: bool = False, *, caller: Caller | None = None) -> None:
        """fsync(2)/fdatasync(2) (FSYNC, FSYNCDIR for a directory)."""
        await fuse_write.fsync(self.file, datasync, caller)

    async def fallocate(
        self, mode: int, offset: int, length: int, *, caller: Caller | None = None
    ) -> None:
        """fallocate(2): KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE; others EOPNOTSUPP."""
        await fuse_write.fallocate(self.file, mode, offset, length, caller)

    async def copy_file_range(
        self, offset_in: int, target: OpenFile, offset_out: int, length: int,
        flags: int = 0, *, caller: Caller | None = None,
    ) -> int:  # fmt: skip
        """copy_file_range(2) to ``target``; EOPNOTSUPP/EXDEV: copy by hand instead."""
        target_file = getattr(target, "file", None)
        if not isinstance(target_file, FuseFile):
            raise OSError(18, "not a FUSE file")  # EXDEV: the hypervisor copies by hand
        return await fuse_write.copy_file_range(
            self.file, offset_in, target_file, offset_out, length, flags, caller
        )

    async def lseek(
        self, offset: int, whence: int, position: int, *, caller: Caller | None = None
    ) -> int:
        """lseek(2) from ``position``: SEEK_SET/CUR/END/DATA/HOLE; the new position."""
        return await fuse_write.lseek(self.file, offset, whence, position, caller)

    async def setattr(
        self, changes: SetattrChanges, *, lock_owner: int = 0, caller: Caller | None = None
    ) -> Attributes:
        """fchmod/fchown/ftruncate/futimens: SETATTR with this file's handle."""
        return await self.provider.setattr(
            self.file.inode.nodeid, changes, fh=self,  # type: ignore[arg-type]
            lock_owner=lock_owner, caller=caller,
        )  # fmt: skip

    async def getlk(
        self, lock_type: int, start: int, length: int, owner: int, pid: int,
        *, caller: Caller | None = None,
    ) -> p.FileLock:  # fmt: skip
        """F_GETLK/F_OFD_GETLK; raises LocalLocks when the hypervisor must keep locks."""
        return await fuse_locks.getlk(self.file, lock_type, start, length, owner, pid, caller)

    async def setlk(
        self, lock_type: int, start: int, length: int, owner: int, pid: int, wait: bool,
        *, caller: Caller | None = None,
    ) -> None:  # fmt: skip
        """F_SETLK(W)/F_OFD_SETLK(W); raises LocalLocks as :meth:`getlk`."""
        await fuse_locks.setlk(self.file, lock_type, start, length, owner, pid, wait, caller)

    async def flock(self, operation: int, pid: int, *, caller: Caller | None = None) -> None:
        """flock(2); raises LocalLocks without FLOCK_LOCKS."""
        await fuse_locks.flock(self.file, operation, pid, caller)


class ProviderWriteMixin:
    """Write-side methods of FuseProvider."""

    sb: Superblock

    def _inode(self, ino: int) -> Inode:
        return self.sb.inodes.get(ino)

    async def create(
        self, parent: int, name: bytes, mode: int, flags: int, umask: int,
        *, caller: Caller | None = None,
    ) -> tuple[Attributes, FuseOpenFile]:  # fmt: skip
        """open(2) with O_CREAT: CREATE (or MKNOD + OPEN); an existing name is opened as
        by :meth:`open` unless O_EXCL (EEXIST)."""
        from .provider import FuseOpenFile

        self.sb.check_allowed(caller)
        inode, file = await namei.create(
            self.sb, self._inode(parent), name, mode, flags, umask, caller
        )
        if file is None:
            opened = await self.open_inode(inode, flags, caller=caller)
            return _attributes(self.sb, inode), opened
        return _attributes(self.sb, inode), FuseOpenFile(self, file)  # type: ignore[arg-type]

    async def open_inode(
        self, inode: Inode, flags: int, *, caller: Caller | None = None
    ) -> FuseOpenFile:
        """OPEN (truncating under ATOMIC_O_TRUNC), else OPEN then SETATTR(size 0) for O_TRUNC."""
        from .provider import FuseOpenFile

        if flags & os.O_TRUNC:
            await fuse_setattr.may_open_truncate(self.sb, inode, caller)
        truncate = fuse_setattr.open_truncates(self.sb, flags)
        file = await FuseFile.open(self.sb, inode, flags, caller)
        if truncate:
            try:
                await fuse_setattr.truncate_on_open(self.sb, inode, caller)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await file.release()
                raise
        return FuseOpenFile(self, file)  # type: ignore[arg-type]

    async def tmpfile(
        self, parent: int, mode: int, flags: int, umask: int, *, caller: Caller | None = None
    ) -> tuple[Attributes, FuseOpenFile]:
        """open(2) with O_TMPFILE: TMPFILE; EOPNOTSUPP when the daemon has none."""
        from .provider import FuseOpenFile

        self.sb.check_allowed(caller)
        inode, file = await namei.tmpfile(self.sb, self._inode(parent), mode, flags, umask, caller)
        return _attributes(self.sb, inode), FuseOpenFile(self, file)  # type: ignore[arg-type]

    async def mknod(
        self, parent: int, name: bytes, mode: int, rdev: int, umask: int,
        *, caller: Caller | None = None,
    ) -> Attributes:  # fmt: skip
        """mknod(2)."""
        self.sb.check_allowed(caller)
        inode = await namei.mknod(self.sb, self._inode(parent), name, mode, rdev, umask, caller)
        return _attributes(self.sb, inode)

    async def mkdir(
        self, parent: int, name: bytes, mode: int, umask: int, *, caller: Caller | None = None
    ) -> Attributes:
        """mkdir(2)."""
        self.sb.check_allowed(caller)
        inode = await namei.mkdir(self.sb, self._inode(parent), name, mode, umask, caller)
        return _attributes(self.sb, inode)

    async def symlink(
        self, parent: int, name: bytes, target: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        """symlink(2)."""
        self.sb.check_allowed(caller)
        inode = await namei.symlink(self.sb, self._inode(parent), name, target, caller)
        return _attributes(self.sb, inode)

    async def link(
        self, ino: int, parent: int, name: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        """link(2): ``ino`` gets the name ``name`` in ``parent``."""
        self.sb.check_allowed(caller)
        inode = await namei.link(self.sb, self._inode(ino), self._inode(parent), name, caller)
        return _attributes(self.sb, inode)

    async def unlink(self, parent: int, name: bytes, *, caller: Caller | None = None) -> None:
        """unlink(2)."""
        self.sb.check_allowed(caller)
        await namei.remove(self.sb, self._inode(parent), name, caller, directory=False)

    async def rmdir(self, parent: int, name: bytes, *, caller: Caller | None = None) -> None:
        """rmdir(2)."""
        self.sb.check_allowed(caller)
        await namei.remove(self.sb, self._inode(parent), name, caller, directory=True)

    async def rename(
        self, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> None:  # fmt: skip
        """renameat2(2): RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT."""
        self.sb.check_allowed(caller)
        await namei.rename(self.sb, self._inode(parent), name, self._inode(new_parent),
                           new_name, flags, caller)  # fmt: skip

    async def setattr(
        self, ino: int, changes: SetattrChanges, fh: OpenFile | None = None,
        *, lock_owner: int = 0, caller: Caller | None = None,
    ) -> Attributes:  # fmt: skip
        """chmod/chown/truncate/utimensat (``fh``: through that open file)."""
        self.sb.check_allowed(caller)
        inode = self._inode(ino)
        fh_file = getattr(fh, "file", None) if fh is not None else None
        if fh is not None and not isinstance(fh_file, FuseFile):
            raise OSError(18, "not a FUSE file")  # EXDEV
        if fh_file is not None and changes.size is not None and not fuse_write.writable(fh_file):
            raise OSError(22, "ftruncate of a file not open for writing")  # EINVAL
        # Only truncation goes through the file (do_truncate's ATTR_FILE): FATTR_FH.
        through = fh_file.fh if fh_file is not None and changes.size is not None else None
        await fuse_setattr.setattr(
            self.sb, inode, changes, caller, fh=through, lock_owner=lock_owner
        )
        return _attributes(self.sb, inode)

    async def setxattr(
        self, ino: int, name: bytes, value: bytes, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> None:  # fmt: skip
        """setxattr(2) with XATTR_CREATE/XATTR_REPLACE."""
        self.sb.check_allowed(caller)
        await xattr_write.setxattr(self.sb, self._inode(ino), name, value, flags, caller)

    async def removexattr(self, ino: int, name: bytes, *, caller: Caller | None = None) -> None:
        """removexattr(2)."""
        self.sb.check_allowed(caller)
        await xattr_write.removexattr(self.sb, self._inode(ino), name, caller)
