"""The fake daemon's write side: CREATE, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR,
RENAME/RENAME2, SETATTR, WRITE, FSYNC(DIR), FALLOCATE, COPY_FILE_RANGE, LSEEK, SETXATTR,
REMOVEXATTR, GETLK/SETLK/SETLKW, TMPFILE on the FakeDaemon's dict tree (like a simple
passthrough daemon: it stores modes as it gets them, so what the kernel side masked shows)."""

from __future__ import annotations

import errno
import fcntl
import stat as stat_module
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vufuse import protocol as p

if TYPE_CHECKING:
    from fakedaemon import FakeDaemon, Node

O = p.Opcode  # noqa: E741
FATTR = p.SetattrValid
NOREPLACE, EXCHANGE, WHITEOUT = 1, 2, 4


@dataclass
class HeldLock:
    """One lock the fake daemon keeps: POSIX by owner, the same table for flock."""

    nodeid: int
    owner: int
    start: int
    end: int
    type: int
    pid: int


class FakeWriter:
    """Answers the write-side opcodes for one FakeDaemon."""

    def __init__(self, daemon: FakeDaemon) -> None:
        self.daemon = daemon
        self.locks: list[HeldLock] = []

    def answer(self, node: Node, request: Any) -> object:
        """The reply body for ``request`` on ``node``; OSError for an error reply."""
        opcode = request[0].opcode
        handler = getattr(self, "_" + O(opcode).name.lower(), None)
        if handler is None:
            raise OSError(errno.ENOSYS, "not implemented")
        return handler(node, request)

    # ------------------------------------------------------------------ names

    def _named(self, directory: Node, name: bytes, child: Node) -> p.EntryOut:
        if not stat_module.S_ISDIR(directory.mode):
            raise OSError(errno.ENOTDIR, "not a directory")
        if name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        directory.children[name] = child.nodeid
        self.daemon.nlookup[child.nodeid] += 1
        return self.daemon.entry(child)

    def _create(self, directory: Node, request: Any) -> p.CreateOut:
        if request.name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        child = self.daemon.new_node(directory, request.arg.mode)
        entry = self._named(directory, request.name, child)
        fh = self.daemon.new_fh()
        return p.CreateOut(entry, p.OpenOut(fh=fh, open_flags=self.daemon.open_flags))

    def _tmpfile(self, directory: Node, request: Any) -> p.CreateOut:
        child = self.daemon.new_node(directory, request.arg.mode, links=0)
        self.daemon.nlookup[child.nodeid] += 1
        fh = self.daemon.new_fh()
        return p.CreateOut(self.daemon.entry(child), p.OpenOut(fh=fh))

    def _mknod(self, directory: Node, request: Any) -> p.EntryOut:
        if request.name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        child = self.daemon.new_node(directory, request.arg.mode, rdev=request.arg.rdev)
        return self._named(directory, request.name, child)

    def _mkdir(self, directory: Node, request: Any) -> p.EntryOut:
        if request.name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        child = self.daemon.new_node(directory, stat_module.S_IFDIR | request.arg.mode)
        return self._named(directory, request.name, child)

    def _symlink(self, directory: Node, request: Any) -> p.EntryOut:
        if request.name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        child = self.daemon.new_node(directory, stat_module.S_IFLNK | 0o777, target=request.target)
        return self._named(directory, request.name, child)

    def _link(self, directory: Node, request: Any) -> p.EntryOut:
        target = self.daemon.nodes[request.arg.oldnodeid]
        if request.name in directory.children:
            raise OSError(errno.EEXIST, "exists")
        target.links += 1
        return self._named(directory, request.name, target)

    def _child(self, directory: Node, name: bytes) -> Node:
        nodeid = directory.children.get(name)
        if nodeid is None:
            raise OSError(errno.ENOENT, "no such entry")
        return self.daemon.nodes[nodeid]

    def _unlink(self, directory: Node, request: Any) -> None:
        child = self._child(directory, request.name)
        if stat_module.S_ISDIR(child.mode):
            raise OSError(errno.EISDIR, "is a directory")
        del directory.children[request.name]
        child.links -= 1

    def _rmdir(self, directory: Node, request: Any) -> None:
        child = self._child(directory, request.name)
        if not stat_module.S_ISDIR(child.mode):
            raise OSError(errno.ENOTDIR, "not a directory")
        if child.children:
            raise OSError(errno.ENOTEMPTY, "not empty")
        del directory.children[request.name]

    def _rename(self, directory: Node, request: Any) -> None:
        self._rename2(directory, request)

    def _rename2(self, directory: Node, request: Any) -> None:
        flags = getattr(request.arg, "flags", 0)
        new_directory = self.daemon.nodes[request.arg.newdir]
        source = self._child(directory, request.old_name)
        target_id = new_directory.children.get(request.new_name)
        if flags & NOREPLACE and target_id is not None:
            raise OSError(errno.EEXIST, "exists")
        if flags & EXCHANGE:
            if target_id is None:
                raise OSError(errno.ENOENT, "no target")
            directory.children[request.old_name] = target_id
            new_directory.children[request.new_name] = source.nodeid
            return
        if target_id is not None:
            target = self.daemon.nodes[target_id]
            if stat_module.S_ISDIR(target.mode) and target.children:
                raise OSError(errno.ENOTEMPTY, "not empty")
            target.links -= 1
        del directory.children[request.old_name]
        new_directory.children[request.new_name] = source.nodeid
        source.parent = new_directory.nodeid

    # ------------------------------------------------------------------ attributes

    def _setattr(self, node: Node, request: Any) -> p.AttrOut:
        arg = request.arg
        valid = arg.valid
        if valid & FATTR.MODE:
            node.mode = stat_module.S_IFMT(node.mode) | (arg.mode & 0o7777)
        if valid & FATTR.UID:
            node.uid = arg.uid
        if valid & FATTR.GID:
            node.gid = arg.gid
        if valid & FATTR.SIZE:
            node.data = node.data[: arg.size].ljust(arg.size, b"\0")
            node.mtime += 1
        if valid & FATTR.KILL_SUIDGID:
            node.mode &= ~(stat_module.S_ISUID | stat_module.S_ISGID)
        if valid & FATTR.ATIME:
            node.atime, node.atimensec = (
                (1_800_000_000, 0) if valid & FATTR.ATIME_NOW else (arg.atime, arg.atimensec)
            )
        if valid & FATTR.MTIME:
            node.mtime, node.mtimensec = (
                (1_800_000_000, 0) if valid & FATTR.MTIME_NOW else (arg.mtime, arg.mtimensec)
            )
        seconds = int(self.daemon.attr_timeout)
        return p.AttrOut(attr_valid=seconds, attr=self.daemon.attr(node))

    def _setxattr(self, node: Node, request: Any) -> None:
        exists = request.name in node.xattrs
        if request.arg.flags & 1 and exists:
            raise OSError(errno.EEXIST, "exists")
        if request.arg.flags & 2 and not exists:
            raise OSError(errno.ENODATA, "no such attribute")
        node.xattrs[request.name] = request.value

    def _removexattr(self, node: Node, request: Any) -> None:
        if node.xattrs.pop(request.name, None) is None:
            raise OSError(errno.ENODATA, "no such attribute")

    # ------------------------------------------------------------------ data

    def _write(self, node: Node, request: Any) -> p.WriteOut:
        arg = request.arg
        data = request.data
        if self.daemon.short_write is not None:
            data = data[: self.daemon.short_write]
        end = arg.offset + len(data)
        buffer = bytearray(node.data.ljust(end, b"\0"))
        buffer[arg.offset : end] = data
        node.data = bytes(buffer)
        node.mtime += 1
        return p.WriteOut(size=len(data))

    def _fsync(self, node: Node, request: Any) -> None:
        return None

    def _fsyncdir(self, node: Node, request: Any) -> None:
        return None

    def _fallocate(self, node: Node, request: Any) -> None:
        arg = request.arg
        end = arg.offset + arg.length
        data = bytearray(node.data)
        if arg.mode & (0x02 | 0x10):  # PUNCH_HOLE, ZERO_RANGE
            stop = min(end, len(data))
            data[arg.offset : stop] = bytes(max(0, stop - arg.offset))
        if not arg.mode & 0x01 and end > len(data):  # not KEEP_SIZE
            data = data.ljust(end, b"\0")
        node.data = bytes(data)

    def _copy_file_range(self, node: Node, request: Any) -> p.WriteOut:
        arg = request.arg
        target = self.daemon.nodes[arg.nodeid_out]
        piece = node.data[arg.off_in : arg.off_in + arg.len]
        end = arg.off_out + len(piece)
        buffer = bytearray(target.data.ljust(end, b"\0"))
        buffer[arg.off_out : end] = piece
        target.data = bytes(buffer)
        return p.WriteOut(size=len(piece))

    def _lseek(self, node: Node, request: Any) -> p.LseekOut:
        arg = request.arg
        if arg.offset >= len(node.data):
            raise OSError(errno.ENXIO, "past the end")
        # One hole: the fake's data has a hole from 4096 to 8192 when marked so.
        hole = node.xattrs.get(b"fake.hole")
        if hole is not None:
            start, stop = (int(x) for x in hole.split(b"-"))
            if arg.whence == 3:  # SEEK_DATA
                return p.LseekOut(offset=stop if start <= arg.offset < stop else arg.offset)
            hole_at = max(arg.offset, start) if arg.offset < stop else len(node.data)
            return p.LseekOut(offset=hole_at)
        return p.LseekOut(offset=arg.offset if arg.whence == 3 else len(node.data))

    # ------------------------------------------------------------------ locks

    def _conflict(self, node: Node, lk: p.FileLock, owner: int) -> HeldLock | None:
        for held in self.locks:
            if held.nodeid != node.nodeid or held.owner == owner:
                continue
            if held.end < lk.start or lk.end < held.start:
                continue
            if held.type == fcntl.F_WRLCK or lk.type == fcntl.F_WRLCK:
                return held
        return None

    def _getlk(self, node: Node, request: Any) -> p.LkOut:
        held = self._conflict(node, request.arg.lk, request.arg.owner)
        if held is None:
            return p.LkOut(p.FileLock(type=fcntl.F_UNLCK))
        return p.LkOut(p.FileLock(start=held.start, end=held.end, type=held.type, pid=held.pid))

    def _setlk(self, node: Node, request: Any) -> None:
        arg = request.arg
        lk = arg.lk
        if lk.type != fcntl.F_UNLCK and self._conflict(node, lk, arg.owner) is not None:
            raise OSError(errno.EAGAIN, "conflicting lock")
        self.locks = [
            held
            for held in self.locks
            if not (held.nodeid == node.nodeid and held.owner == arg.owner)
        ]  # fmt: skip  (a simplification: a new lock or an unlock replaces the owner's locks)
        if lk.type != fcntl.F_UNLCK:
            self.locks.append(HeldLock(node.nodeid, arg.owner, lk.start, lk.end, lk.type, lk.pid))

    def _setlkw(self, node: Node, request: Any) -> None:
        self._setlk(node, request)
