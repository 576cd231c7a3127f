#!/usr/bin/env python3
"""A complete read-write filesystem kept in memory.

Regular files, directories, symbolic links, hard links, device nodes and fifos; rename with
RENAME_NOREPLACE / RENAME_EXCHANGE; extended attributes; truncate, utimens, chmod, chown; statfs.
Inodes live on while the kernel still knows them (their lookup count) or a file is open, so an
unlinked but open file keeps working, as POSIX wants.

Usage: python3 examples/fs/memfs.py MOUNTPOINT
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import sys
import time
from collections.abc import Sequence

from _common import parse_args, pyfuse3, serve

FUSEError = pyfuse3.FUSEError
CAPACITY_BYTES = 1 << 30
MAX_INODES = 1 << 20
BLOCK_SIZE = 4096


class Inode:
    """One file of any type, with its metadata, content and directory entries."""

    def __init__(self, ino: int, mode: int, uid: int, gid: int, rdev: int = 0) -> None:
        now = time.time_ns()
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.atime_ns = self.mtime_ns = self.ctime_ns = now
        self.links = 0  # directory entries naming this inode ("." and ".." not counted)
        self.lookups = 0  # references the kernel holds (lookup count)
        self.opens = 0
        self.data = bytearray()
        self.target = b""
        self.xattrs: dict[bytes, bytes] = {}
        # Directories: name -> (inode number, readdir cookie), in cookie order.
        self.entries: dict[bytes, tuple[int, int]] = {}
        self.parent = ino
        self.subdirs = 0

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def touch(self, modified: bool = True) -> None:
        """Record a change: ctime always, mtime when the content changed."""
        now = time.time_ns()
        self.ctime_ns = now
        if modified:
            self.mtime_ns = now


class MemFs(pyfuse3.Operations):
    """The in-memory filesystem; inode numbers are never reused while mounted."""

    def __init__(self) -> None:
        super().__init__()
        self.inodes: dict[int, Inode] = {}
        self.next_ino = itertools.count(pyfuse3.ROOT_INODE)
        self.cookies = itertools.count(3)  # 1 and 2 are free for "." and ".."
        root = self._new_inode(stat.S_IFDIR | 0o755, os.getuid(), os.getgid())
        root.links = 1  # the mount holds the root
        self.used_bytes = 0

    # ---------------------------------------------------------------- helpers

    def _new_inode(self, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        if len(self.inodes) >= MAX_INODES:
            raise FUSEError(errno.ENOSPC)
        inode = Inode(next(self.next_ino), mode, uid, gid, rdev)
        self.inodes[inode.ino] = inode
        return inode

    def _inode(self, ino: int) -> Inode:
        try:
            return self.inodes[ino]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def _dir(self, ino: int) -> Inode:
        inode = self._inode(ino)
        if not inode.is_dir:
            raise FUSEError(errno.ENOTDIR)
        return inode

    def _child(self, parent: Inode, name: bytes) -> Inode:
        if name == b".":
            return parent
        if name == b"..":
            return self._inode(parent.parent)
        try:
            return self.inodes[parent.entries[name][0]]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def _attributes(self, inode: Inode) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = inode.ino
        entry.st_mode = inode.mode
        entry.st_nlink = 2 + inode.subdirs if inode.is_dir else inode.links
        entry.st_uid = inode.uid
        entry.st_gid = inode.gid
        entry.st_rdev = inode.rdev
        if stat.S_ISLNK(inode.mode):
            entry.st_size = len(inode.target)
        elif inode.is_dir:
            entry.st_size = BLOCK_SIZE
        else:
            entry.st_size = len(inode.data)
        entry.st_blksize = BLOCK_SIZE
        entry.st_blocks = (len(inode.data) + 511) // 512
        entry.st_atime_ns = inode.atime_ns
        entry.st_mtime_ns = inode.mtime_ns
        entry.st_ctime_ns = inode.ctime_ns
        entry.attr_timeout = entry.entry_timeout = 1
        return entry

    def _looked_up(self, inode: Inode) -> pyfuse3.EntryAttributes:
        inode.lookups += 1
        return self._attributes(inode)

    def _link(self, parent: Inode, name: bytes, inode: Inode) -> None:
        if len(name) > 255:
            raise FUSEError(errno.ENAMETOOLONG)
        parent.entries[name] = (inode.ino, next(self.cookies))
        inode.links += 1
        if inode.is_dir:
            inode.parent = parent.ino
            parent.subdirs += 1
        parent.touch()

    def _unlink(self, parent: Inode, name: bytes) -> Inode:
        ino, _ = parent.entries.pop(name)
        inode = self.inodes[ino]
        inode.links -= 1
        if inode.is_dir:
            parent.subdirs -= 1
        inode.touch(modified=False)
        parent.touch()
        self._maybe_free(inode)
        return inode

    def _maybe_free(self, inode: Inode) -> None:
        """Drop an inode nobody can reach any more: no entry, no kernel reference, not open."""
        if inode.links <= 0 and inode.lookups <= 0 and inode.opens <= 0:
            self.used_bytes -= len(inode.data)
            self.inodes.pop(inode.ino, None)

    def _create_entry(
        self, parent_ino: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext, rdev: int = 0
    ) -> Inode:
        parent = self._dir(parent_ino)
        if name in parent.entries or name in (b".", b".."):
            raise FUSEError(errno.EEXIST)
        gid = ctx.gid
        if parent.mode & stat.S_ISGID:
            gid = parent.gid
            if stat.S_ISDIR(mode):
                mode |= stat.S_ISGID
        inode = self._new_inode(mode, ctx.uid, gid, rdev)
        self._link(parent, name, inode)
        return inode

    # ---------------------------------------------------------------- names

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._looked_up(self._child(self._dir(parent_inode), name))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            inode = self.inodes.get(ino)
            if inode is not None:
                inode.lookups -= count
                self._maybe_free(inode)

    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._looked_up(self._create_entry(parent_inode, name, mode, ctx, rdev))

    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._looked_up(self._create_entry(parent_inode, name, mode, ctx))

    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        inode = self._create_entry(parent_inode, name, stat.S_IFLNK | 0o777, ctx)
        inode.target = target
        return self._looked_up(inode)

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = self._inode(inode)
        if not stat.S_ISLNK(node.mode):
            raise FUSEError(errno.EINVAL)
        return node.target

    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        node = self._inode(inode)
        if node.is_dir:
            raise FUSEError(errno.EPERM)
        parent = self._dir(new_parent_inode)
        if new_name in parent.entries:
            raise FUSEError(errno.EEXIST)
        self._link(parent, new_name, node)
        node.touch(modified=False)
        return self._looked_up(node)

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        parent = self._dir(parent_inode)
        if self._child(parent, name).is_dir:
            raise FUSEError(errno.EISDIR)
        self._unlink(parent, name)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        parent = self._dir(parent_inode)
        if name in (b".", b".."):
            raise FUSEError(errno.EINVAL if name == b"." else errno.ENOTEMPTY)
        child = self._child(parent, name)
        if not child.is_dir:
            raise FUSEError(errno.ENOTDIR)
        if child.entries:
            raise FUSEError(errno.ENOTEMPTY)
        self._unlink(parent, name)

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        if flags & ~(pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE):
            raise FUSEError(errno.EINVAL)
        old_parent = self._dir(parent_inode_old)
        new_parent = self._dir(parent_inode_new)
        moved = self._child(old_parent, name_old)
        replaced = self.inodes.get(new_parent.entries.get(name_new, (0, 0))[0])
        if moved.is_dir and self._is_ancestor(moved, new_parent):
            raise FUSEError(errno.EINVAL)
        if flags & pyfuse3.RENAME_EXCHANGE:
            if replaced is None:
                raise FUSEError(errno.ENOENT)
            if replaced.is_dir and self._is_ancestor(replaced, old_parent):
                raise FUSEError(errno.EINVAL)
            self._exchange(old_parent, name_old, new_parent, name_new)
            return
        if replaced is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise FUSEError(errno.EEXIST)
            if replaced is moved:
                return
            if replaced.is_dir:
                if not moved.is_dir:
                    raise FUSEError(errno.EISDIR)
                if replaced.entries:
                    raise FUSEError(errno.ENOTEMPTY)
            elif moved.is_dir:
                raise FUSEError(errno.ENOTDIR)
            self._unlink(new_parent, name_new)
        old_parent.entries.pop(name_old)
        moved.links -= 1
        if moved.is_dir:
            old_parent.subdirs -= 1
        old_parent.touch()
        self._link(new_parent, name_new, moved)
        moved.touch(modified=False)

    def _is_ancestor(self, directory: Inode, node: Inode) -> bool:
        """Whether *directory* is *node* or one of its ancestors."""
        while True:
            if node is directory:
                return True
            if node.ino == pyfuse3.ROOT_INODE:
                return False
            node = self.inodes[node.parent]

    def _exchange(self, dir_a: Inode, name_a: bytes, dir_b: Inode, name_b: bytes) -> None:
        ino_a, cookie_a = dir_a.entries[name_a]
        ino_b, cookie_b = dir_b.entries[name_b]
        dir_a.entries[name_a] = (ino_b, cookie_a)
        dir_b.entries[name_b] = (ino_a, cookie_b)
        node_a, node_b = self.inodes[ino_a], self.inodes[ino_b]
        if node_a.is_dir != node_b.is_dir and dir_a is not dir_b:
            delta = 1 if node_a.is_dir else -1
            dir_a.subdirs -= delta
            dir_b.subdirs += delta
        if node_a.is_dir:
            node_a.parent = dir_b.ino
        if node_b.is_dir:
            node_b.parent = dir_a.ino
        for node in (dir_a, dir_b):
            node.touch()
        for node in (node_a, node_b):
            node.touch(modified=False)

    # ---------------------------------------------------------------- attributes

    async def getattr(
        self, inode: int, ctx: pyfuse3.RequestContext | None = None
    ) -> pyfuse3.EntryAttributes:
        return self._attributes(self._inode(inode))

    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        node = self._inode(inode)
        if fields.update_size:
            if node.is_dir:
                raise FUSEError(errno.EISDIR)
            self._resize(node, attr.st_size)
            node.touch()
        if fields.update_mode:
            node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            node.uid = attr.st_uid
        if fields.update_gid:
            node.gid = attr.st_gid
        if fields.update_atime:
            node.atime_ns = attr.st_atime_ns
        if fields.update_mtime:
            node.mtime_ns = attr.st_mtime_ns
        node.ctime_ns = attr.st_ctime_ns if fields.update_ctime else time.time_ns()
        return self._attributes(node)

    def _resize(self, node: Inode, size: int) -> None:
        grow = size - len(node.data)
        if grow > CAPACITY_BYTES - self.used_bytes:
            raise FUSEError(errno.ENOSPC)
        if grow > 0:
            node.data.extend(bytes(grow))
        else:
            del node.data[size:]
        self.used_bytes += grow

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        stats = pyfuse3.StatvfsData()
        stats.f_bsize = stats.f_frsize = BLOCK_SIZE
        stats.f_blocks = CAPACITY_BYTES // BLOCK_SIZE
        stats.f_bfree = stats.f_bavail = (CAPACITY_BYTES - self.used_bytes) // BLOCK_SIZE
        stats.f_files = MAX_INODES
        stats.f_ffree = stats.f_favail = MAX_INODES - len(self.inodes)
        stats.f_namemax = 255
        return stats

    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        self._inode(inode)
        return True  # permissions are the kernel's job under default_permissions

    # ---------------------------------------------------------------- extended attributes

    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        node = self._inode(inode)
        if name.startswith(b"system."):
            # No POSIX ACLs here: refusing them makes cp -a and friends fall back to chmod,
            # instead of storing an ACL that the kernel would not apply to the mode.
            raise FUSEError(errno.EOPNOTSUPP)
        node.xattrs[name] = value
        node.touch(modified=False)

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        try:
            return self._inode(inode).xattrs[name]
        except KeyError:
            raise FUSEError(pyfuse3.ENOATTR) from None

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return list(self._inode(inode).xattrs)

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        node = self._inode(inode)
        if node.xattrs.pop(name, None) is None:
            raise FUSEError(pyfuse3.ENOATTR)
        node.touch(modified=False)

    # ---------------------------------------------------------------- files

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self._inode(inode)
        if node.is_dir:
            raise FUSEError(errno.EISDIR)
        if flags & os.O_TRUNC:  # even O_RDONLY, as Linux does (the kernel checked MAY_WRITE)
            self._resize(node, 0)
            node.touch()
        node.opens += 1
        return pyfuse3.FileInfo(fh=inode)

    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        node = self._create_entry(parent_inode, name, mode, ctx)
        node.opens += 1
        return pyfuse3.FileInfo(fh=node.ino), self._looked_up(node)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        node = self._inode(fh)
        node.atime_ns = time.time_ns()
        return bytes(node.data[off : off + size])

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        node = self._inode(fh)
        end = off + len(buf)
        if end > len(node.data):
            self._resize(node, end)
        node.data[off:end] = buf
        if node.mode & (stat.S_ISUID | stat.S_ISGID):
            node.mode &= ~(stat.S_ISUID | stat.S_ISGID)
        node.touch()
        return len(buf)

    async def flush(self, fh: int) -> None:
        pass

    async def fsync(self, fh: int, datasync: bool) -> None:
        pass

    async def release(self, fh: int) -> None:
        node = self._inode(fh)
        node.opens -= 1
        self._maybe_free(node)

    # ---------------------------------------------------------------- directories

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        self._dir(inode)
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        directory = self._dir(fh)
        for name, (ino, cookie) in list(directory.entries.items()):
            if cookie <= start_id:
                continue
            inode = self.inodes[ino]
            if not pyfuse3.readdir_reply(token, name, self._attributes(inode), cookie):
                return
            inode.lookups += 1

    async def releasedir(self, fh: int) -> None:
        pass

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        pass


def main(argv: list[str]) -> None:
    """Mount an empty MemFs at the mountpoint given on the command line."""
    args = parse_args("A read-write filesystem in memory.", argv, with_source=False)
    serve(MemFs(), args, fsname="memfs")


if __name__ == "__main__":
    main(sys.argv[1:])
