"""A scripted FUSE daemon for the emulator's tests (gVisor's fake server, in spirit).

Serves a small tree from a dict over the other end of a SOCK_SEQPACKET socketpair, using
vufuse.protocol's daemon side.  Each request runs in its own task, like a multi-threaded
libfuse, so one slow or held request does not block the others.  Knobs (all plain attributes,
changeable while it runs): the minor it answers INIT with, the flags it wants, timeouts,
per-opcode delays and holds, corrupted replies, replies split into several messages, ENOSYS
opcodes, dying on a given opcode, ignoring INIT.  It keeps the lookup count per nodeid as a
real daemon must, and logs every request.
"""

from __future__ import annotations

import errno
import os
import socket
import stat as stat_module
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from vufuse import protocol as p

O = p.Opcode  # noqa: E741 - short alias for readability in tables


@dataclass
class Symlink:
    """A symlink in the tree dict."""

    target: bytes


@dataclass(eq=False)
class Node:
    """One object of the fake tree."""

    nodeid: int
    mode: int
    parent: int
    data: bytes = b""
    target: bytes = b""
    children: dict[bytes, int] = field(default_factory=dict)
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    generation: int = 0
    mtime: int = 1_700_000_000
    ino: int | None = None
    uid: int = 1000
    gid: int = 1000
    links: int = 1  # nlink of a non-directory (LINK, UNLINK change it)
    atime: int = 1_700_000_000
    mtimensec: int = 0
    atimensec: int = 0
    rdev: int = 0


def _dt(mode: int) -> int:
    return stat_module.S_IFMT(mode) >> 12


class FakeDaemon:
    """See the module docstring.  ``tree`` maps names to bytes (file), dict (dir), Symlink."""

    def __init__(
        self,
        sock: trio.socket.SocketType,
        tree: dict[str, Any],
        *,
        minor: int = p.KERNEL_MINOR_VERSION,
        want: int = -1,
        max_pages: int = 32,
        max_write: int = 128 * 1024,
        entry_timeout: float = 1.0,
        attr_timeout: float = 1.0,
        negative_timeout: float | None = None,
        ignore_init: bool = False,
        init_error: int = 0,
    ) -> None:
        self.sock = sock
        self.minor = minor
        self.want = want
        self.max_pages = max_pages
        self.max_write = max_write
        self.entry_timeout = entry_timeout
        self.attr_timeout = attr_timeout
        self.negative_timeout = negative_timeout
        self.negotiated: p.Negotiated = p.LATEST
        self.init_request: p.InitIn | None = None
        self.ignore_init = ignore_init
        self.init_error = init_error
        self.init_reply_hook: Callable[[p.InitOut], p.InitOut] | None = None
        self.open_flags = 0
        self.opendir_flags = 0
        self.enosys: set[int] = set()
        self.errors: dict[int, int] = {}
        self.delays: dict[int, float] = {}
        self.holds: dict[int, trio.Event] = {}
        self.corrupt: dict[int, Callable[[bytes], bytes]] = {}
        self.split_size: int | None = None
        self.die_on: set[int] = set()
        self.interrupt_answer: int | None = errno.EINTR
        self.plus_zero_nodeid: set[bytes] = set()
        self.requests: list[p.Request] = []
        self.interrupts: list[int] = []
        self.forgets: list[tuple[int, int]] = []
        self.nlookup: Counter[int] = Counter()
        self.notify_replies: list[p.NotifyReplyRequest] = []
        #: Largest WRITE the daemon accepts at once (a short write beyond), None: all.
        self.short_write: int | None = None
        #: What POLL answers (revents).
        self.poll_revents = 0
        self.dead = False
        self._send_lock = trio.Lock()
        self._waiting: dict[int, trio.Event] = {}
        self._next_fh = 1
        self.nodes: dict[int, Node] = {}
        self._next_nodeid = 100
        root = Node(p.ROOT_ID, stat_module.S_IFDIR | 0o755, p.ROOT_ID)
        self.nodes[p.ROOT_ID] = root
        self._build(root, tree)
        from fakewriter import FakeWriter  # the write side, in its own module

        self.writer = FakeWriter(self)

    # ------------------------------------------------------------------ tree

    def _build(self, directory: Node, tree: dict[str, Any]) -> None:
        for name, value in tree.items():
            nodeid = self._next_nodeid
            self._next_nodeid += 1
            if isinstance(value, dict):
                node = Node(nodeid, stat_module.S_IFDIR | 0o755, directory.nodeid)
                self.nodes[nodeid] = node
                self._build(node, value)
            elif isinstance(value, Symlink):
                node = Node(nodeid, stat_module.S_IFLNK | 0o777, directory.nodeid)
                node.target = value.target
                self.nodes[nodeid] = node
            else:
                node = Node(nodeid, stat_module.S_IFREG | 0o644, directory.nodeid, data=value)
                self.nodes[nodeid] = node
            directory.children[name.encode()] = nodeid

    def node(self, path: str) -> Node:
        """The node at a slash-separated path below the root."""
        node = self.nodes[p.ROOT_ID]
        for part in filter(None, path.split("/")):
            node = self.nodes[node.children[part.encode()]]
        return node

    def count(self, opcode: int) -> int:
        """How many requests of ``opcode`` arrived."""
        return sum(1 for request in self.requests if request[0].opcode == opcode)

    def of(self, opcode: int) -> list[Any]:
        """The requests of ``opcode``, in arrival order."""
        return [request for request in self.requests if request[0].opcode == opcode]

    def attr(self, node: Node) -> p.Attr:
        """The fuse_attr of a node."""
        return p.Attr(
            ino=node.ino if node.ino is not None else node.nodeid,
            size=len(node.data) if not stat_module.S_ISLNK(node.mode) else len(node.target),
            blocks=(len(node.data) + 511) // 512,
            mtime=node.mtime,
            mtimensec=node.mtimensec,
            atime=node.atime,
            atimensec=node.atimensec,
            mode=node.mode,
            nlink=2 if stat_module.S_ISDIR(node.mode) else node.links,
            uid=node.uid,
            gid=node.gid,
            rdev=node.rdev,
            blksize=4096,
        )

    def entry(self, node: Node) -> p.EntryOut:
        """A fuse_entry_out for a node, with the configured timeouts."""
        entry_s, entry_ns = _split_time(self.entry_timeout)
        attr_s, attr_ns = _split_time(self.attr_timeout)
        return p.EntryOut(
            nodeid=node.nodeid, generation=node.generation, entry_valid=entry_s,
            attr_valid=attr_s, entry_valid_nsec=entry_ns, attr_valid_nsec=attr_ns,
            attr=self.attr(node),
        )  # fmt: skip

    # ------------------------------------------------------------------ serving

    async def serve(self) -> None:
        """Read and answer requests until the kernel side closes or we are told to die."""
        async with trio.open_nursery() as nursery:
            while not self.dead:
                try:
                    message = await self.sock.recv(2 * 1024 * 1024)
                except (OSError, trio.ClosedResourceError):
                    break
                if not message:
                    break
                request = p.decode_request(message, self.negotiated)
                self.requests.append(request)
                opcode = request[0].opcode
                if opcode in self.die_on:
                    self.die()
                    break
                if opcode == O.INIT:
                    await self._init(request)
                    continue
                if opcode == O.INTERRUPT:
                    self._interrupt(request)
                    continue
                nursery.start_soon(self._handle, request)
            nursery.cancel_scope.cancel()

    def new_node(self, parent: Node, mode: int, **fields: Any) -> Node:
        """A fresh node (not yet named in ``parent``)."""
        nodeid = self._next_nodeid
        self._next_nodeid += 1
        node = Node(nodeid, mode, parent.nodeid, **fields)
        self.nodes[nodeid] = node
        return node

    def new_fh(self) -> int:
        """A fresh file handle."""
        fh = self._next_fh
        self._next_fh += 1
        return fh

    async def notify(self, notification: Any) -> None:
        """Send a notification (unique 0) to the kernel side."""
        await self._send(p.encode_notification(notification, self.negotiated))

    def die(self) -> None:
        """Close our end: the daemon is gone."""
        self.dead = True
        self.sock.close()

    async def _init(self, request: p.InitRequest) -> None:
        self.init_request = request.arg
        if self.ignore_init:
            return
        unique = request.header.unique
        if self.init_error:
            await self._send(p.encode_error(unique, self.init_error))
            return
        # By default the write-side flags are left out: tests agree to them explicitly.
        optional = (p.InitFlag.DONT_MASK | p.InitFlag.HANDLE_KILLPRIV_V2
                    | p.InitFlag.POSIX_LOCKS | p.InitFlag.FLOCK_LOCKS
                    | p.InitFlag.ATOMIC_O_TRUNC | p.InitFlag.WRITEBACK_CACHE)  # fmt: skip
        want = self.want if self.want != -1 else p.offered_flags(request.arg) & ~optional
        answer = p.daemon_answer_init(
            request.arg, want, max_pages=self.max_pages, max_write=self.max_write,
            minor=self.minor,
        )  # fmt: skip
        assert answer.reply is not None
        self.negotiated = answer.negotiated
        reply = answer.reply
        if self.init_reply_hook is not None:
            reply = self.init_reply_hook(reply)
        await self._send(p.encode_reply(unique, O.INIT, reply, answer.negotiated))

    def _interrupt(self, request: p.InterruptRequest) -> None:
        self.interrupts.append(request.arg.unique)
        if self.interrupt_answer is None:
            return
        self._waiting.setdefault(request.arg.unique, trio.Event()).set()

    async def _held(self, unique: int, hold: trio.Event) -> bool:
        """Wait for ``hold`` (answer normally: False) or an INTERRUPT (True)."""
        interrupted = self._waiting.setdefault(unique, trio.Event())
        result = False
        async with trio.open_nursery() as nursery:

            async def until_released() -> None:
                await hold.wait()
                nursery.cancel_scope.cancel()

            async def until_interrupted() -> None:
                nonlocal result
                await interrupted.wait()
                result = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_released)
            nursery.start_soon(until_interrupted)
        del self._waiting[unique]
        return result

    async def _send(self, message: bytes) -> None:
        if self.dead:
            return
        async with self._send_lock:
            try:
                if self.split_size and len(message) > self.split_size:
                    for start in range(0, len(message), self.split_size):
                        await self.sock.send(message[start : start + self.split_size])
                else:
                    await self.sock.send(message)
            except (OSError, trio.ClosedResourceError):
                pass

    async def _handle(self, request: Any) -> None:
        header = request[0]
        opcode, unique = header.opcode, header.unique
        if opcode in (O.FORGET, O.BATCH_FORGET):
            self._forget(request)
            return
        if opcode == O.NOTIFY_REPLY:
            self.notify_replies.append(request)
            return
        if opcode in self.delays:
            await trio.sleep(self.delays[opcode])
        interrupted = False
        if opcode in self.holds:
            interrupted = await self._held(unique, self.holds[opcode])
        if interrupted and self.interrupt_answer is not None:
            await self._send(p.encode_error(unique, self.interrupt_answer))
            return
        if opcode in self.enosys:
            await self._send(p.encode_error(unique, errno.ENOSYS))
            return
        if opcode in self.errors:
            await self._send(p.encode_error(unique, self.errors[opcode]))
            return
        try:
            body = self._answer(request)
        except OSError as exc:
            await self._send(p.encode_error(unique, exc.errno or errno.EIO))
            return
        message = p.encode_reply(unique, opcode, body, self.negotiated)
        if opcode in self.corrupt:
            message = self.corrupt[opcode](message)
        await self._send(message)

    def _forget(self, request: Any) -> None:
        if isinstance(request, p.ForgetRequest):
            pairs = [(request.header.nodeid, request.arg.nlookup)]
        else:
            pairs = [(one.nodeid, one.nlookup) for one in request.forgets]
        for nodeid, count in pairs:
            self.forgets.append((nodeid, count))
            self.nlookup[nodeid] -= count
            assert self.nlookup[nodeid] >= 0, f"nodeid {nodeid} forgotten too often"

    def _get(self, nodeid: int) -> Node:
        node = self.nodes.get(nodeid)
        if node is None:
            raise OSError(errno.ESTALE, "unknown nodeid")
        return node

    def _answer(self, request: Any) -> object:
        header = request[0]
        opcode = header.opcode
        node = self._get(header.nodeid) if opcode not in (O.DESTROY,) else None
        if opcode == O.LOOKUP:
            assert node is not None
            child = node.children.get(request.name)
            if child is None:
                if self.negative_timeout is not None:
                    seconds, nanoseconds = _split_time(self.negative_timeout)
                    return p.EntryOut(nodeid=0, entry_valid=seconds, entry_valid_nsec=nanoseconds)
                raise OSError(errno.ENOENT, "no such entry")
            self.nlookup[child] += 1
            return self.entry(self.nodes[child])
        if opcode == O.GETATTR:
            assert node is not None
            seconds, nanoseconds = _split_time(self.attr_timeout)
            return p.AttrOut(attr_valid=seconds, attr_valid_nsec=nanoseconds, attr=self.attr(node))
        if opcode == O.READLINK:
            assert node is not None
            return node.target
        if opcode in (O.OPEN, O.OPENDIR):
            fh = self._next_fh
            self._next_fh += 1
            flags = self.opendir_flags if opcode == O.OPENDIR else self.open_flags
            if opcode == O.OPEN and request.arg.flags & os.O_TRUNC:
                assert node is not None
                node.data = b""  # ATOMIC_O_TRUNC: the open truncates
            return p.OpenOut(fh=fh, open_flags=flags)
        if opcode == O.READ:
            assert node is not None
            return node.data[request.arg.offset : request.arg.offset + request.arg.size]
        if opcode in (O.READDIR, O.READDIRPLUS):
            assert node is not None
            return self._readdir(node, request.arg, plus=opcode == O.READDIRPLUS)
        if opcode == O.STATFS:
            return p.StatfsOut(p.Kstatfs(blocks=1000, bfree=500, bavail=400, files=50, ffree=25,
                                         bsize=4096, namelen=255, frsize=4096))  # fmt: skip
        if opcode in (O.GETXATTR, O.LISTXATTR):
            assert node is not None
            if opcode == O.GETXATTR:
                if request.name not in node.xattrs:
                    raise OSError(errno.ENODATA, "no such attribute")
                value = node.xattrs[request.name]
            else:
                value = b"".join(name + b"\0" for name in node.xattrs)
            if request.arg.size == 0:
                return p.GetxattrOut(size=len(value))
            if len(value) > request.arg.size:
                raise OSError(errno.ERANGE, "too small")
            return value
        if opcode == O.POLL:
            return p.PollOut(revents=self.poll_revents)
        if opcode in (O.RELEASE, O.RELEASEDIR, O.FLUSH, O.ACCESS, O.DESTROY):
            return None
        assert node is not None
        return self.writer.answer(node, request)

    def _readdir(self, node: Node, arg: p.ReadIn, *, plus: bool) -> tuple[Any, ...]:
        names = [(b".", node), (b"..", self.nodes[node.parent])]
        names += [(name, self.nodes[child]) for name, child in sorted(node.children.items())]
        chunks: list[Any] = []
        used = 0
        for index in range(arg.offset, len(names)):
            name, child = names[index]
            dirent = p.Dirent(child.nodeid, index + 1, _dt(child.mode), name)
            size = p.direntplus_size(len(name)) if plus else p.dirent_size(len(name))
            if used + size > arg.size:
                break
            used += size
            if plus:
                if name in (b".", b"..") or name in self.plus_zero_nodeid:
                    entry = p.EntryOut(nodeid=0 if name in self.plus_zero_nodeid else child.nodeid,
                                       attr=self.attr(child))  # fmt: skip
                else:
                    self.nlookup[child.nodeid] += 1
                    entry = self.entry(child)
                chunks.append(p.DirentPlus(entry, dirent))
            else:
                chunks.append(dirent)
        return tuple(chunks)


def _split_time(seconds: float) -> tuple[int, int]:
    whole = int(seconds)
    return whole, int(round((seconds - whole) * 1e9))


Socket = trio.socket.SocketType


def socketpair(buffer: int = 2 * 1024 * 1024) -> tuple[Socket, Socket]:
    """A SOCK_SEQPACKET pair with send buffers big enough for 256 KiB replies."""
    ours, theirs = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (ours, theirs):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    return ours, theirs
