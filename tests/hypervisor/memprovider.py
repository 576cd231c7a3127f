"""A tiny in-memory provider for the hypervisor's tests (no FUSE involved)."""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time
from dataclasses import dataclass, field, replace

from hypervisor.provider import (
    ROOT_INODE,
    UTIME_NOW,
    UTIME_OMIT,
    Attributes,
    Caller,
    DirEntry,
    OpenFile,
    Provider,
    SetattrChanges,
)

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
XATTR_CREATE, XATTR_REPLACE = 1, 2

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

    def __init__(self, provider: MemProvider, ino: int, flags: int = 0) -> None:
        self.provider = provider
        self.ino = ino
        self.flags = flags
        self.released = False

    async def read(self, offset: int, size: int, *, caller: Caller | None = None) -> bytes:
        node = self.provider.nodes[self.ino]
        if node.attrs.is_dir:
            raise OSError(errno.EISDIR, "is a directory")
        return node.data[offset : offset + size]

    async def readdir(
        self, offset: int, *, caller: Caller | None = None, size: int = 0
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

    async def write(self, offset: int, data: bytes, *, caller: Caller | None = None) -> int:
        node = self.provider._node(self.ino)
        if self.flags & os.O_APPEND:
            offset = len(node.data)
        body = node.data
        if offset > len(body):
            body += b"\0" * (offset - len(body))
        node.data = body[:offset] + data + body[offset + len(data) :]
        mode = node.attrs.mode & ~(stat_module.S_ISUID | stat_module.S_ISGID)
        self.provider._touch(self.ino, size=len(node.data), mode=mode)
        return len(data)

    async def setattr(
        self, changes: SetattrChanges, *, lock_owner: int = 0, caller: Caller | None = None
    ) -> Attributes:
        return await self.provider.setattr(self.ino, changes, self, caller=caller)

    async def fallocate(
        self, mode: int, offset: int, length: int, *, caller: Caller | None = None
    ) -> None:
        if mode:
            raise OSError(errno.EOPNOTSUPP, "not supported")
        node = self.provider._node(self.ino)
        if offset + length > len(node.data):
            node.data += b"\0" * (offset + length - len(node.data))
            self.provider._touch(self.ino, size=len(node.data))


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

    def add_dir(self, path: str, mode: int = 0o755) -> int:
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

    def add_symlink(self, path: str, target: str) -> int:
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
        node = self._node(ino)
        self.opened.append(ino)
        self.callers.append(caller)
        if flags & os.O_TRUNC and stat_module.S_ISREG(node.attrs.mode):
            node.data = b""
            self._touch(ino, size=0)
        return MemFile(self, ino, flags)

    # --- write side -----------------------------------------------------------------------
    def _touch(self, ino: int, times: bool = True, **changes: int) -> Attributes:
        """Update attributes of `ino` (mtime and ctime to now unless `times` is False)."""
        node = self._node(ino)
        if "size" in changes:
            changes["blocks"] = (changes["size"] + 511) // 512
        if times:
            now = time.time_ns()
            changes.setdefault("mtime_ns", now)
            changes.setdefault("ctime_ns", now)
        node.attrs = replace(node.attrs, **changes)
        return node.attrs

    def _directory(self, parent: int) -> Node:
        node = self._node(parent)
        if not node.attrs.is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        return node

    def _new(
        self, parent: int, name: bytes, mode: int, caller: Caller | None, size: int = 0
    ) -> int:
        directory = self._directory(parent)
        if name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        ino = self._add(mode, size, parent)
        attrs = self.nodes[ino].attrs
        uid = caller.uid if caller is not None else self.uid
        gid = caller.gid if caller is not None else self.gid
        if directory.attrs.mode & stat_module.S_ISGID:
            gid = directory.attrs.gid
            if stat_module.S_ISDIR(mode):
                mode |= stat_module.S_ISGID
        now = time.time_ns()
        self.nodes[ino].attrs = replace(
            attrs, uid=uid, gid=gid, mode=mode, atime_ns=now, mtime_ns=now, ctime_ns=now,
            blocks=0,
        )
        directory.children[name] = ino
        self._touch(parent)
        return ino

    async def create(
        self, parent: int, name: bytes, mode: int, flags: int, umask: int,
        *, caller: Caller | None = None,
    ) -> tuple[Attributes, OpenFile]:
        directory = self._directory(parent)
        if name in directory.children:
            if flags & os.O_EXCL:
                raise OSError(errno.EEXIST, "exists")
            ino = directory.children[name]
        else:
            ino = self._new(parent, name, stat_module.S_IFREG | (mode & 0o7777 & ~umask), caller)
        handle = await self.open(ino, flags & ~os.O_CREAT, caller=caller)
        return self.nodes[ino].attrs, handle

    async def mknod(
        self, parent: int, name: bytes, mode: int, rdev: int, umask: int,
        *, caller: Caller | None = None,
    ) -> Attributes:
        kind = stat_module.S_IFMT(mode) or stat_module.S_IFREG
        ino = self._new(parent, name, kind | (mode & 0o7777 & ~umask), caller)
        return self._touch(ino, rdev=rdev)

    async def mkdir(
        self, parent: int, name: bytes, mode: int, umask: int, *, caller: Caller | None = None
    ) -> Attributes:
        ino = self._new(parent, name, stat_module.S_IFDIR | (mode & 0o7777 & ~umask), caller)
        self._touch(ino, nlink=2, size=4096, times=False)
        directory = self.nodes[parent]
        self._touch(parent, nlink=directory.attrs.nlink + 1)
        return self.nodes[ino].attrs

    async def symlink(
        self, parent: int, name: bytes, target: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        ino = self._new(parent, name, stat_module.S_IFLNK | 0o777, caller, len(target))
        self.nodes[ino].target = target
        return self._touch(ino, size=len(target), times=False)

    async def link(
        self, ino: int, parent: int, name: bytes, *, caller: Caller | None = None
    ) -> Attributes:
        node = self._node(ino)
        if node.attrs.is_dir:
            raise OSError(errno.EPERM, "directory")
        directory = self._directory(parent)
        if name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        directory.children[name] = ino
        self._touch(parent)
        return self._touch(ino, nlink=node.attrs.nlink + 1, mtime_ns=node.attrs.mtime_ns)

    def _drop(self, ino: int) -> None:
        node = self.nodes[ino]
        nlink = 0 if node.attrs.is_dir else node.attrs.nlink - 1
        self._touch(ino, nlink=nlink, mtime_ns=node.attrs.mtime_ns)

    async def unlink(self, parent: int, name: bytes, *, caller: Caller | None = None) -> None:
        directory = self._directory(parent)
        try:
            ino = directory.children[name]
        except KeyError:
            raise OSError(errno.ENOENT, "no such entry") from None
        if self.nodes[ino].attrs.is_dir:
            raise OSError(errno.EISDIR, "is a directory")
        del directory.children[name]
        self._touch(parent)
        self._drop(ino)

    async def rmdir(self, parent: int, name: bytes, *, caller: Caller | None = None) -> None:
        directory = self._directory(parent)
        try:
            ino = directory.children[name]
        except KeyError:
            raise OSError(errno.ENOENT, "no such entry") from None
        node = self.nodes[ino]
        if not node.attrs.is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        if node.children:
            raise OSError(errno.ENOTEMPTY, "not empty")
        del directory.children[name]
        self._touch(parent, nlink=directory.attrs.nlink - 1)
        self._drop(ino)

    async def rename(
        self, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> None:
        source, target = self._directory(parent), self._directory(new_parent)
        try:
            ino = source.children[name]
        except KeyError:
            raise OSError(errno.ENOENT, "no such entry") from None
        moving = self.nodes[ino]
        old = target.children.get(new_name)
        if flags & RENAME_EXCHANGE:
            if old is None:
                raise OSError(errno.ENOENT, "no such entry")
            source.children[name], target.children[new_name] = old, ino
            moving.parent, self.nodes[old].parent = new_parent, parent
            self._touch(parent)
            self._touch(new_parent)
            return
        if old == ino:
            return
        # the kernel refuses to move a directory below itself
        walk = new_parent
        while moving.attrs.is_dir:
            if walk == ino:
                raise OSError(errno.EINVAL, "into itself")
            if walk == ROOT_INODE:
                break
            walk = self.nodes[walk].parent
        if old is not None:
            if flags & RENAME_NOREPLACE:
                raise OSError(errno.EEXIST, "exists")
            replaced = self.nodes[old]
            if replaced.attrs.is_dir and not moving.attrs.is_dir:
                raise OSError(errno.EISDIR, "is a directory")
            if moving.attrs.is_dir and not replaced.attrs.is_dir:
                raise OSError(errno.ENOTDIR, "not a directory")
            if replaced.children:
                raise OSError(errno.ENOTEMPTY, "not empty")
            if replaced.attrs.is_dir:
                self._touch(new_parent, nlink=target.attrs.nlink - 1)
            self._drop(old)
        del source.children[name]
        target.children[new_name] = ino
        if moving.attrs.is_dir and parent != new_parent:
            self._touch(parent, nlink=self.nodes[parent].attrs.nlink - 1)
            self._touch(new_parent, nlink=self.nodes[new_parent].attrs.nlink + 1)
        moving.parent = new_parent
        self._touch(parent)
        self._touch(new_parent)
        self._touch(ino, mtime_ns=moving.attrs.mtime_ns)

    async def setattr(
        self, ino: int, changes: SetattrChanges, fh: OpenFile | None = None,
        *, lock_owner: int = 0, caller: Caller | None = None,
    ) -> Attributes:
        node = self._node(ino)
        now = time.time_ns()
        update: dict[str, int] = {"ctime_ns": now}
        mode = node.attrs.mode
        if changes.mode is not None:
            mode = stat_module.S_IFMT(mode) | (changes.mode & 0o7777)
        if changes.uid is not None or changes.gid is not None:
            if not node.attrs.is_dir:
                mode &= ~(stat_module.S_ISUID | stat_module.S_ISGID)
            if changes.uid is not None:
                update["uid"] = changes.uid
            if changes.gid is not None:
                update["gid"] = changes.gid
        if changes.size is not None:
            if node.attrs.is_dir:
                raise OSError(errno.EISDIR, "is a directory")
            size = changes.size
            node.data = node.data[:size] + b"\0" * max(0, size - len(node.data))
            update["size"] = size
            update["blocks"] = (size + 511) // 512
            update["mtime_ns"] = now
        for key, value in (("atime_ns", changes.atime), ("mtime_ns", changes.mtime)):
            if value is None or value[1] == UTIME_OMIT:
                continue
            update[key] = now if value[1] == UTIME_NOW else value[0] * 10**9 + value[1]
        update["mode"] = mode
        node.attrs = replace(node.attrs, **update)
        return node.attrs

    async def setxattr(
        self, ino: int, name: bytes, value: bytes, flags: int = 0,
        *, caller: Caller | None = None,
    ) -> None:
        node = self._node(ino)
        if not name.startswith(b"user."):
            raise OSError(errno.EOPNOTSUPP, "only user.* attributes")  # no ACLs here
        if flags & XATTR_CREATE and name in node.xattrs:
            raise OSError(errno.EEXIST, "exists")
        if flags & XATTR_REPLACE and name not in node.xattrs:
            raise OSError(errno.ENODATA, "no data")
        node.xattrs[name] = value
        self._touch(ino, times=False, ctime_ns=time.time_ns())

    async def removexattr(self, ino: int, name: bytes, *, caller: Caller | None = None) -> None:
        node = self._node(ino)
        if name not in node.xattrs:
            raise OSError(errno.ENODATA, "no data")
        del node.xattrs[name]

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
    provider.add_dir("dir")
    provider.write("dir/a", b"A" * 10000)
    provider.write("dir/empty", b"")
    provider.add_dir("dir/sub")
    provider.write("dir/sub/deep", b"deep\n")
    provider.add_symlink("link", "hello.txt")
    provider.add_symlink("dirlink", "dir")
    provider.add_symlink("dangling", "nowhere")
    provider.add_symlink("loop", "loop")
    provider.add_symlink("up", "../")
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
