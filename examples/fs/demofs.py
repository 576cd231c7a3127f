#!/usr/bin/env python3
"""The demo filesystem: a small read-only tree that is pleasant to browse.

A few text files, a directory tree with poems, a symbolic link, and ``live/``, whose files are
generated on every read (the time, how long the filesystem has been mounted, how many requests
it has answered). Live files are opened with direct_io so each read sees fresh content.

Usage: python3 examples/fs/demofs.py MOUNTPOINT
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import sys
import time
from collections.abc import Callable

from _common import parse_args, pyfuse3, serve

FUSEError = pyfuse3.FUSEError

README = b"""\
Welcome to the vufuse demo filesystem!

Everything you see here is served by a Python program speaking the FUSE
protocol itself: no libfuse, no compiled extension, no kernel module of ours.

Try:
    cat hello.txt
    ls -lR poems
    readlink latest
    cat live/clock.txt; sleep 1; cat live/clock.txt
    df -h .
"""

HOW_IT_WORKS = b"""\
How it works
============

1. The program opens /dev/fuse (or asks fusermount3 to) and mounts itself.
2. The kernel turns your system calls into FUSE requests: LOOKUP, GETATTR,
   OPEN, READ, READDIRPLUS...
3. vufuse.protocol decodes them, vufuse.pyfuse3 calls the filesystem's
   handlers (the pyfuse3 API), and the answers go back the same way.

Under vufuse itself, /dev/fuse is emulated too, so none of this needs root.
"""

PYFUSE3 = b"""\
This filesystem is an ordinary pyfuse3 program. pyfuse3's own examples
and test suite run unchanged on vufuse's pure-Python implementation.
"""

HAIKU_AUTUMN = b"an old silent pond\na frog jumps into the pond\nsplash! silence again\n"
HAIKU_WINTER = b"winter solitude\nin a world of one colour\nthe sound of wind\n"
LIMERICK = b"""\
A daemon that lived in user space
Served files at a leisurely pace;
It read every request,
Gave its answers with zest,
And unmounted itself with good grace.
"""


class Node:
    """A file, directory or symlink of the demo tree."""

    def __init__(
        self,
        ino: int,
        mode: int,
        content: bytes = b"",
        target: bytes = b"",
        generate: Callable[[], bytes] | None = None,
    ) -> None:
        self.ino = ino
        self.mode = mode
        self.content = content
        self.target = target
        self.generate = generate
        self.children: dict[bytes, Node] = {}
        self.parent = self

    def data(self) -> bytes:
        return self.generate() if self.generate else self.content


class DemoFs(pyfuse3.Operations):
    """Serves the fixed tree built in `_build`; everything is read-only."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.time()
        self.requests = 0
        self.inode_numbers = itertools.count(pyfuse3.ROOT_INODE)
        self.nodes: dict[int, Node] = {}
        self.root = self._node(stat.S_IFDIR | 0o755)
        self._build()

    def _node(self, mode: int, **kwargs: object) -> Node:
        node = Node(next(self.inode_numbers), mode, **kwargs)  # type: ignore[arg-type]
        self.nodes[node.ino] = node
        return node

    def _add(self, parent: Node, name: str, node: Node) -> Node:
        parent.children[name.encode()] = node
        node.parent = parent
        return node

    def _file(self, parent: Node, name: str, content: bytes) -> Node:
        return self._add(parent, name, self._node(stat.S_IFREG | 0o444, content=content))

    def _dir(self, parent: Node, name: str) -> Node:
        return self._add(parent, name, self._node(stat.S_IFDIR | 0o555))

    def _build(self) -> None:
        root = self.root
        self._file(root, "README.txt", README)
        self._file(root, "hello.txt", b"Hello, world! (served by vufuse)\n")
        docs = self._dir(root, "docs")
        self._file(docs, "how-it-works.txt", HOW_IT_WORKS)
        self._file(docs, "pyfuse3.txt", PYFUSE3)
        poems = self._dir(root, "poems")
        haiku = self._dir(poems, "haiku")
        self._file(haiku, "autumn.txt", HAIKU_AUTUMN)
        self._file(haiku, "winter.txt", HAIKU_WINTER)
        self._file(poems, "limerick.txt", LIMERICK)
        self._add(root, "latest", self._node(stat.S_IFLNK | 0o777, target=b"docs/how-it-works.txt"))
        live = self._dir(root, "live")
        for name, generate in (("clock.txt", self._clock), ("stats.txt", self._stats)):
            self._add(live, name, self._node(stat.S_IFREG | 0o444, generate=generate))

    def _clock(self) -> bytes:
        now = time.gmtime()
        return time.strftime("%Y-%m-%d %H:%M:%S UTC\n", now).encode()

    def _stats(self) -> bytes:
        mounted = time.time() - self.started
        return (
            f"mounted for {mounted:.1f} s\n"
            f"requests answered: {self.requests}\n"
            f"served by process {os.getpid()}\n"
        ).encode()

    def _get(self, ino: int) -> Node:
        self.requests += 1
        try:
            return self.nodes[ino]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def _attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = node.ino
        entry.st_mode = node.mode
        if stat.S_ISDIR(node.mode):
            entry.st_nlink = 2 + sum(stat.S_ISDIR(c.mode) for c in node.children.values())
        entry.st_size = len(node.target) if stat.S_ISLNK(node.mode) else len(node.data())
        entry.st_blocks = (entry.st_size + 511) // 512
        entry.st_uid, entry.st_gid = os.getuid(), os.getgid()
        stamp = time.time_ns() if node.generate else int(self.started * 1e9)
        entry.st_atime_ns = entry.st_mtime_ns = entry.st_ctime_ns = stamp
        if node.generate:
            entry.attr_timeout = 0  # the size changes: always ask again
        return entry

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = self._get(parent_inode)
        if name == b".":
            return self._attributes(parent)
        if name == b"..":
            return self._attributes(parent.parent)
        try:
            return self._attributes(parent.children[name])
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    async def getattr(
        self, inode: int, ctx: pyfuse3.RequestContext | None = None
    ) -> pyfuse3.EntryAttributes:
        return self._attributes(self._get(inode))

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = self._get(inode)
        if not stat.S_ISLNK(node.mode):
            raise FUSEError(errno.EINVAL)
        return node.target

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        if not stat.S_ISDIR(self._get(inode).mode):
            raise FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        children = list(self._get(fh).children.items())
        for index in range(start_id, len(children)):
            name, node = children[index]
            if not pyfuse3.readdir_reply(token, name, self._attributes(node), index + 1):
                return

    async def releasedir(self, fh: int) -> None:
        pass

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self._get(inode)
        if stat.S_ISDIR(node.mode):
            raise FUSEError(errno.EISDIR)
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise FUSEError(errno.EROFS)
        if node.generate:
            return pyfuse3.FileInfo(fh=inode, direct_io=True, keep_cache=False)
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return self._get(fh).data()[off : off + size]

    async def release(self, fh: int) -> None:
        pass

    async def flush(self, fh: int) -> None:
        pass

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        stats = pyfuse3.StatvfsData()
        stats.f_bsize = stats.f_frsize = 4096
        stats.f_blocks = sum(len(n.data()) // 4096 + 1 for n in self.nodes.values())
        stats.f_files = len(self.nodes)
        stats.f_namemax = 255
        return stats

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        self._get(inode)
        if name == b"user.demo.served-by":
            return b"vufuse.pyfuse3"
        raise FUSEError(pyfuse3.ENOATTR)

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        self._get(inode)
        return [b"user.demo.served-by"]


def main(argv: list[str]) -> None:
    """Mount the demo tree, read-only, at the mountpoint given on the command line."""
    args = parse_args("A small read-only tree to browse.", argv, with_source=False)
    serve(DemoFs(), args, fsname="vufuse-demo", extra_options=["ro"])


if __name__ == "__main__":
    main(sys.argv[1:])
