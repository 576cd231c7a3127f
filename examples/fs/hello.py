#!/usr/bin/env python3
"""The smallest useful filesystem: one read-only file, ``hello``, in the root directory.

Usage: python3 examples/fs/hello.py MOUNTPOINT
"""

from __future__ import annotations

import errno
import os
import stat
import sys

from _common import parse_args, pyfuse3, serve

HELLO_NAME = b"hello"
HELLO_INODE = pyfuse3.ROOT_INODE + 1
HELLO_DATA = b"Hello from vufuse's pure-Python pyfuse3!\n"


class HelloFs(pyfuse3.Operations):
    """A root directory holding one file whose content never changes."""

    def __init__(self) -> None:
        super().__init__()
        self.mount_time_ns = 1_700_000_000 * pyfuse3._NANOS_PER_SEC

    async def getattr(
        self, inode: int, ctx: pyfuse3.RequestContext | None = None
    ) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        if inode == pyfuse3.ROOT_INODE:
            entry.st_mode = stat.S_IFDIR | 0o755
            entry.st_nlink = 2
        elif inode == HELLO_INODE:
            entry.st_mode = stat.S_IFREG | 0o444
            entry.st_size = len(HELLO_DATA)
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        entry.st_ino = inode
        entry.st_uid = os.getuid()
        entry.st_gid = os.getgid()
        entry.st_atime_ns = entry.st_mtime_ns = entry.st_ctime_ns = self.mount_time_ns
        return entry

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if parent_inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOENT)
        if name in (b".", b".."):
            return await self.getattr(pyfuse3.ROOT_INODE)
        if name != HELLO_NAME:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(HELLO_INODE)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if start_id == 0:
            pyfuse3.readdir_reply(token, HELLO_NAME, await self.getattr(HELLO_INODE), 1)

    async def releasedir(self, fh: int) -> None:
        pass

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if inode != HELLO_INODE:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise pyfuse3.FUSEError(errno.EACCES)
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return HELLO_DATA[off : off + size]

    async def release(self, fh: int) -> None:
        pass

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        stats = pyfuse3.StatvfsData()
        stats.f_bsize = stats.f_frsize = 4096
        stats.f_namemax = 255
        return stats


def main(argv: list[str]) -> None:
    """Mount HelloFs at the mountpoint given on the command line."""
    args = parse_args("A filesystem with a single greeting file.", argv, with_source=False)
    serve(HelloFs(), args, fsname="hello")


if __name__ == "__main__":
    main(sys.argv[1:])
