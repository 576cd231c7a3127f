"""A tiny in-memory provider for the hypervisor's tests (no FUSE involved)."""

from __future__ import annotations

import errno
import os
import stat as stat_module
from dataclasses import dataclass, field, replace

from hypervisor.provider import ROOT_INODE, Attributes, Caller, DirEntry, OpenFile, Provider

_NS = 1_700_000_000_123_456_789


@dataclass
class Node:
    """One object: a directory (children), a file (data) or a symlink (target)."""

    attrs: Attributes
    children: dict[bytes, int] = field(default_factory=dict)
    data: bytes = b""
    target: bytes = b""
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    parent: int = ROOT_INODE


class MemFile(OpenFile):
    """An open MemProvider node."""

    def __init__(self, provider: MemProvider, ino: int) -> None:
        self.provider = provider
        self.ino = ino
        self.released = False

    async def read(self, offset: int, size: int, *, caller: Caller | None = None) -> bytes:
        node = self.provider.nodes[self.ino]
        if node.attrs.is_dir:
            raise OSError(errno.EISDIR, "is a directory")
        return node.data[offset : offset + size]

    async def readdir(
        self, offset: int, *, caller: Caller | None = None
    ) -> list[DirEntry]:
        node = self.provider.nodes[self.ino]
        if not node.attrs.is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        entries = [(b".", self.ino), (b"..", node.parent), *sorted(node.children.items())]
        result = []
        for index, (name, ino) in enumerate(entries[offset:], start=offset):
            mode = self.provider.nodes[ino].attrs.mode if ino in self.provider.nodes else 0
            result.append(DirEntry(name, ino, stat_module.S_IFMT(mode) >> 12, index + 1))
        return result

    async def flush(self, lock_owner: int = 0, *, caller: Caller | None = None) -> None:
        self.provider.flushes.append(lock_owner)

    async def release(self) -> None:
        self.released = True
        self.provider.released.append(self.ino)


class MemProvider(Provider):
    """Directories, files and symlinks held in a dict; mode/uid/gid as given.

    Objects are named by their key in `nodes` (the handle); stat shows key + `ino_offset`
    (0 by default), so that tests can tell the handle from st_ino as FUSE's nodeid and
    attr.ino differ.  `holds` counts the hypervisor's hold/unhold per handle.
    """

    def __init__(
        self, uid: int | None = None, gid: int | None = None, ino_offset: int = 0
    ) -> None:
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        self.ino_offset = ino_offset
        self.holds: dict[int, int] = {}
        self.nodes: dict[int, Node] = {}
        self.released: list[int] = []
        self.opened: list[int] = []
        self.callers: list[Caller | None] = []
        self.flushes: list[int] = []
        self._next = ROOT_INODE
        root = self._add(stat_module.S_IFDIR | 0o755)
        self.nodes[root].attrs = replace(self.nodes[root].attrs, nlink=2, size=4096, blocks=8)

    def _add(self, mode: int, size: int = 0, parent: int = ROOT_INODE) -> int:
        ino = self._next
        self._next += 1
        attrs = Attributes(
            ino=ino + self.ino_offset, handle=ino if self.ino_offset else None,
            mode=mode, nlink=1, uid=self.uid, gid=self.gid, size=size,
            blocks=(size + 4095) // 4096 * 8, atime_ns=_NS, mtime_ns=_NS + 1, ctime_ns=_NS + 2,
        )
        self.nodes[ino] = Node(attrs, parent=parent)
        return ino

    def _parent_of(self, path: str) -> tuple[int, bytes]:
        parts = [p.encode() for p in path.strip("/").split("/")]
        ino = ROOT_INODE
        for part in parts[:-1]:
            ino = self.nodes[ino].children[part]
        return ino, parts[-1]

    def mkdir(self, path: str, mode: int = 0o755) -> int:
        parent, name = self._parent_of(path)
        ino = self._add(stat_module.S_IFDIR | mode, parent=parent)
        self.nodes[ino].attrs = replace(self.nodes[ino].attrs, nlink=2, size=4096, blocks=8)
        self.nodes[parent].children[name] = ino
        pattrs = self.nodes[parent].attrs
        self.nodes[parent].attrs = replace(pattrs, nlink=pattrs.nlink + 1)
        return ino

    def write(self, path: str, data: bytes, mode: int = 0o644) -> int:
        parent, name = self._parent_of(path)
        ino = self._add(stat_module.S_IFREG | mode, len(data), parent)
        self.nodes[ino].data = data
        self.nodes[parent].children[name] = ino
        return ino

    def symlink(self, path: str, target: str) -> int:
        parent, name = self._parent_of(path)
        ino = self._add(stat_module.S_IFLNK | 0o777, len(target.encode()), parent)
        self.nodes[ino].attrs = replace(self.nodes[ino].attrs, blocks=0)
        self.nodes[ino].target = target.encode()
        self.nodes[parent].children[name] = ino
        return ino

    def _node(self, ino: int) -> Node:
        try:
            return self.nodes[ino]
        except KeyError:
            raise OSError(errno.ESTALE, "stale") from None

    async def lookup(
        self, parent: int, name: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        node = self._node(parent)
        if not node.attrs.is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        try:
            return self.nodes[node.children[name]].attrs
        except KeyError:
            raise OSError(errno.ENOENT, "no such entry") from None

    async def getattr(self, ino: int, *, caller: Caller | None = None) -> Attributes:
        return self._node(ino).attrs

    async def readlink(self, ino: int, *, caller: Caller | None = None) -> bytes:
        node = self._node(ino)
        if not node.attrs.is_symlink:
            raise OSError(errno.EINVAL, "not a symlink")
        return node.target

    async def open(self, ino: int, flags: int, *, caller: Caller | None = None) -> OpenFile:
        self._node(ino)
        self.opened.append(ino)
        self.callers.append(caller)
        return MemFile(self, ino)

    async def getxattr(
        self, ino: int, name: bytes, *, caller: Caller | None = None
    ) -> bytes:
        try:
            return self._node(ino).xattrs[name]
        except KeyError:
            raise OSError(errno.ENODATA, "no data") from None

    async def listxattr(self, ino: int, *, caller: Caller | None = None) -> list[bytes]:
        return list(self._node(ino).xattrs)

    def hold(self, ino: int) -> None:
        self._node(ino)
        self.holds[ino] = self.holds.get(ino, 0) + 1

    async def unhold(self, ino: int) -> None:
        self.holds[ino] -= 1
        assert self.holds[ino] >= 0, "unhold without hold"


def sample_tree(provider: MemProvider) -> None:
    """The tree the tests use (also built on a real directory for comparisons)."""
    provider.write("hello.txt", b"hello, world\n")
    provider.mkdir("dir")
    provider.write("dir/a", b"A" * 10000)
    provider.write("dir/empty", b"")
    provider.mkdir("dir/sub")
    provider.write("dir/sub/deep", b"deep\n")
    provider.symlink("link", "hello.txt")
    provider.symlink("dirlink", "dir")
    provider.symlink("dangling", "nowhere")
    provider.symlink("loop", "loop")
    provider.symlink("up", "../")
    provider.write("secret", b"s", mode=0o000)


def make_real_tree(root: str) -> None:
    """The same tree as :func:`sample_tree` on a real directory."""
    def put(path: str, data: bytes, mode: int = 0o644) -> None:
        full = os.path.join(root, path)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, mode)

    put("hello.txt", b"hello, world\n")
    os.mkdir(os.path.join(root, "dir"))
    put("dir/a", b"A" * 10000)
    put("dir/empty", b"")
    os.mkdir(os.path.join(root, "dir/sub"))
    put("dir/sub/deep", b"deep\n")
    os.symlink("hello.txt", os.path.join(root, "link"))
    os.symlink("dir", os.path.join(root, "dirlink"))
    os.symlink("nowhere", os.path.join(root, "dangling"))
    os.symlink("loop", os.path.join(root, "loop"))
    os.symlink("../", os.path.join(root, "up"))
    put("secret", b"s", mode=0o000)
