#!/usr/bin/env python3
"""Mirror a directory: every operation is passed through to the files under SOURCE.

Inodes are the source's own inode numbers (the source root is inode 1), and the filesystem
remembers every path under which the kernel knows an inode, so hard links and renames keep
working. Created files are given to the calling user, as the kernel would. Everything runs in
one process and one thread: blocking system calls stall the other requests, which is fine for
an example and a test, not for production.

Usage: python3 examples/fs/passthroughfs.py SOURCE MOUNTPOINT
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from _common import parse_args, pyfuse3, serve

FUSEError = pyfuse3.FUSEError
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
AT_FDCWD = -100


@contextmanager
def _as_fuse_errors() -> Iterator[None]:
    """Report failed system calls to the caller with the same errno."""
    try:
        yield
    except OSError as exc:
        raise FUSEError(exc.errno or errno.EIO) from None


def _renameat2(old: bytes, new: bytes, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, old, AT_FDCWD, new, ctypes.c_uint(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class PassthroughFs(pyfuse3.Operations):
    """Forwards each request to the same operation on the source tree."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = os.fsencode(os.path.abspath(source))
        self.root_source_ino = os.lstat(self.source).st_ino
        self.paths: dict[int, set[bytes]] = defaultdict(set)
        self.paths[pyfuse3.ROOT_INODE].add(self.source)
        self.lookups: dict[int, int] = defaultdict(int)
        # Open files: an unlinked file has no path left, only its descriptors.
        self.open_fds: dict[int, set[int]] = defaultdict(set)
        self.fd_inodes: dict[int, int] = {}

    # ---------------------------------------------------------------- inode bookkeeping

    def _ino(self, st: os.stat_result) -> int:
        return pyfuse3.ROOT_INODE if st.st_ino == self.root_source_ino else st.st_ino

    def _path(self, ino: int) -> bytes:
        paths = self.paths.get(ino)
        if not paths:
            raise FUSEError(errno.ENOENT)
        return next(iter(paths))

    def _child_path(self, parent: int, name: bytes) -> bytes:
        return os.path.join(self._path(parent), name)

    def _remember(self, ino: int, path: bytes) -> None:
        self.paths[ino].add(path)

    def _forget_path(self, ino: int, path: bytes) -> None:
        paths = self.paths.get(ino)
        if paths is not None:
            paths.discard(path)
            if not paths and not self.lookups.get(ino):
                del self.paths[ino]

    def _attributes(self, st: os.stat_result) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        for name in (
            "st_mode",
            "st_nlink",
            "st_uid",
            "st_gid",
            "st_rdev",
            "st_size",
            "st_atime_ns",
            "st_mtime_ns",
            "st_ctime_ns",
            "st_blksize",
            "st_blocks",
        ):
            setattr(entry, name, getattr(st, name))  # fmt: skip
        entry.st_ino = self._ino(st)
        entry.attr_timeout = entry.entry_timeout = 1
        return entry

    def _lookup_path(self, path: bytes, count: bool = True) -> pyfuse3.EntryAttributes:
        with _as_fuse_errors():
            st = os.lstat(path)
        entry = self._attributes(st)
        self._remember(entry.st_ino, path)
        if count:
            self.lookups[entry.st_ino] += 1
        return entry

    def _give_to_caller(self, path: bytes, ctx: pyfuse3.RequestContext) -> None:
        if os.geteuid() == 0:
            os.chown(path, ctx.uid, ctx.gid, follow_symlinks=False)

    # ---------------------------------------------------------------- names

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if name == b".":
            return self._lookup_path(self._path(parent_inode))
        if name == b"..":
            parent_path = self._path(parent_inode)
            if parent_inode == pyfuse3.ROOT_INODE:
                return self._lookup_path(parent_path)
            return self._lookup_path(os.path.dirname(parent_path))
        return self._lookup_path(self._child_path(parent_inode, name))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            self.lookups[ino] -= count
            if self.lookups[ino] <= 0:
                del self.lookups[ino]
                if ino != pyfuse3.ROOT_INODE:
                    self.paths.pop(ino, None)

    async def getattr(
        self, inode: int, ctx: pyfuse3.RequestContext | None = None
    ) -> pyfuse3.EntryAttributes:
        return self._attributes(self._stat(inode))

    def _stat(self, inode: int) -> os.stat_result:
        with _as_fuse_errors():
            fds = self.open_fds.get(inode)
            if fds:
                return os.fstat(next(iter(fds)))
            return os.lstat(self._path(inode))

    def _opened(self, inode: int, fd: int) -> pyfuse3.FileInfo:
        self.open_fds[inode].add(fd)
        self.fd_inodes[fd] = inode
        return pyfuse3.FileInfo(fh=fd)

    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        if fh is None and self.open_fds.get(inode):
            fh = next(iter(self.open_fds[inode]))
        # Prefer the descriptor: it still works after the file was unlinked.
        target: int | bytes = fh if fh is not None else self._path(inode)
        with _as_fuse_errors():
            is_link = stat.S_ISLNK(self._stat(inode).st_mode)
            follow = not is_link
            if fields.update_size:
                os.truncate(target, attr.st_size)
            if fields.update_mode and not is_link:
                os.chmod(target, stat.S_IMODE(attr.st_mode))
            if fields.update_uid or fields.update_gid:
                uid = attr.st_uid if fields.update_uid else -1
                gid = attr.st_gid if fields.update_gid else -1
                os.chown(target, uid, gid, follow_symlinks=follow or isinstance(target, int))
            if fields.update_atime or fields.update_mtime:
                current = self._stat(inode)
                atime = attr.st_atime_ns if fields.update_atime else current.st_atime_ns
                mtime = attr.st_mtime_ns if fields.update_mtime else current.st_mtime_ns
                os.utime(
                    target, ns=(atime, mtime), follow_symlinks=follow or isinstance(target, int)
                )
        return self._attributes(self._stat(inode))

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        with _as_fuse_errors():
            return os.readlink(self._path(inode))

    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        path = self._child_path(parent_inode, name)
        with _as_fuse_errors():
            os.mknod(path, mode, rdev)
            self._give_to_caller(path, ctx)
        return self._lookup_path(path)

    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        path = self._child_path(parent_inode, name)
        with _as_fuse_errors():
            os.mkdir(path, stat.S_IMODE(mode))
            os.chmod(path, stat.S_IMODE(mode))  # mkdir(2) drops S_ISGID/S_ISVTX bits of ours
            self._give_to_caller(path, ctx)
        return self._lookup_path(path)

    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        path = self._child_path(parent_inode, name)
        with _as_fuse_errors():
            os.symlink(target, path)
            self._give_to_caller(path, ctx)
        return self._lookup_path(path)

    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        path = self._child_path(new_parent_inode, new_name)
        with _as_fuse_errors():
            os.link(self._path(inode), path, follow_symlinks=False)
        return self._lookup_path(path)

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        path = self._child_path(parent_inode, name)
        with _as_fuse_errors():
            ino = self._ino(os.lstat(path))
            os.unlink(path)
        self._forget_path(ino, path)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        path = self._child_path(parent_inode, name)
        with _as_fuse_errors():
            ino = self._ino(os.lstat(path))
            os.rmdir(path)
        self._forget_path(ino, path)

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        old = self._child_path(parent_inode_old, name_old)
        new = self._child_path(parent_inode_new, name_new)
        with _as_fuse_errors():
            try:
                replaced: int | None = self._ino(os.lstat(new))
            except FileNotFoundError:
                replaced = None
            _renameat2(old, new, flags)
        if flags & pyfuse3.RENAME_EXCHANGE:
            parked = old + b"\0"  # no real path contains NUL
            self._rename_paths(old, parked)
            self._rename_paths(new, old)
            self._rename_paths(parked, new)
            return
        if replaced is not None:
            self._forget_path(replaced, new)
        self._rename_paths(old, new)

    def _rename_paths(self, old: bytes, new: bytes) -> None:
        """Move every remembered path at or below *old* to *new*."""
        prefix = old + b"/"
        for paths in self.paths.values():
            for path in [p for p in paths if p == old or p.startswith(prefix)]:
                paths.discard(path)
                paths.add(new + path[len(old) :])

    # ---------------------------------------------------------------- attributes of the fs

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        with _as_fuse_errors():
            st = os.statvfs(self.source)
        stats = pyfuse3.StatvfsData()
        for name in (
            "f_bsize",
            "f_frsize",
            "f_blocks",
            "f_bfree",
            "f_bavail",
            "f_files",
            "f_ffree",
            "f_favail",
            "f_namemax",
        ):
            setattr(stats, name, getattr(st, name))  # fmt: skip
        return stats

    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        with _as_fuse_errors():
            os.setxattr(self._path(inode), name, value, follow_symlinks=False)

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        with _as_fuse_errors():
            return os.getxattr(self._path(inode), name, follow_symlinks=False)

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        with _as_fuse_errors():
            names = os.listxattr(self._path(inode), follow_symlinks=False)
        return [os.fsencode(name) for name in names]

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        with _as_fuse_errors():
            os.removexattr(self._path(inode), name, follow_symlinks=False)

    # ---------------------------------------------------------------- files

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        with _as_fuse_errors():
            fd = os.open(self._path(inode), flags & ~os.O_CREAT)
        return self._opened(inode, fd)

    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        path = self._child_path(parent_inode, name)
        with _as_fuse_errors():
            fd = os.open(path, flags | os.O_CREAT | os.O_TRUNC, stat.S_IMODE(mode))
            self._give_to_caller(path, ctx)
        entry = self._lookup_path(path)
        return self._opened(entry.st_ino, fd), entry

    async def read(self, fh: int, off: int, size: int) -> bytes:
        with _as_fuse_errors():
            return os.pread(fh, size, off)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        with _as_fuse_errors():
            return os.pwrite(fh, buf, off)

    async def flush(self, fh: int) -> None:
        pass

    async def fsync(self, fh: int, datasync: bool) -> None:
        with _as_fuse_errors():
            (os.fdatasync if datasync else os.fsync)(fh)

    async def release(self, fh: int) -> None:
        inode = self.fd_inodes.pop(fh)
        self.open_fds[inode].discard(fh)
        if not self.open_fds[inode]:
            del self.open_fds[inode]
        with _as_fuse_errors():
            os.close(fh)

    # ---------------------------------------------------------------- directories

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        with _as_fuse_errors():
            if not stat.S_ISDIR(os.lstat(self._path(inode)).st_mode):
                raise FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        directory = self._path(fh)
        with _as_fuse_errors():
            names = sorted(os.listdir(directory))
        for index in range(start_id, len(names)):
            path = os.path.join(directory, names[index])
            try:
                entry = self._attributes(os.lstat(path))
            except FileNotFoundError:
                continue  # removed while we list
            if not pyfuse3.readdir_reply(token, names[index], entry, index + 1):
                return
            self._remember(entry.st_ino, path)
            self.lookups[entry.st_ino] += 1

    async def releasedir(self, fh: int) -> None:
        pass

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        pass


def main(argv: list[str]) -> None:
    """Mirror SOURCE at MOUNTPOINT."""
    args = parse_args("Mirror a directory through FUSE.", argv, with_source=True)
    serve(PassthroughFs(args.source), args, fsname="passthroughfs")


if __name__ == "__main__":
    main(sys.argv[1:])
