"""The request dispatcher without a kernel: encoded requests in, replies out, over a socketpair.

What matters here is robustness (a malformed request is answered, not fatal; a handler bug is
EIO and the filesystem keeps serving) and the pyfuse3 semantics the dispatcher adds on top of
the handlers (xattr create/replace emulation, readdirplus budgets, INIT flags).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from collections.abc import Iterator

import pytest
import trio

from vufuse import pyfuse3
from vufuse.protocol import replies
from vufuse.protocol import requests as rq
from vufuse.protocol.constants import InitFlag
from vufuse.protocol.negotiate import kernel_init_request
from vufuse.protocol.structs import (
    GetattrIn,
    GetxattrIn,
    InHeader,
    ReadIn,
    SetxattrIn,
)
from vufuse.pyfuse3 import _mount, _session
from vufuse.pyfuse3._dispatch import Dispatcher


class SampleFs(pyfuse3.Operations):
    """Root plus one file; getattr of inode 3 is a bug (ValueError)."""

    def __init__(self) -> None:
        super().__init__()
        self.xattrs: dict[bytes, bytes] = {}
        self.names = [b"file-%d" % i for i in range(50)]

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if inode == 3:
            raise ValueError("a bug in the filesystem")
        if inode == 4:
            raise pyfuse3.FUSEError(errno.EACCES)
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = inode
        entry.st_mode = (stat.S_IFDIR | 0o755) if inode == 1 else (stat.S_IFREG | 0o644)
        entry.st_mtime_ns = 1_234_567_890_123_456_789
        return entry

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if name != b"file":
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(2, ctx)

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        for index in range(start_id, len(self.names)):
            attr = await self.getattr(2, pyfuse3.RequestContext())
            if not pyfuse3.readdir_reply(token, self.names[index], attr, index + 1):
                break

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        try:
            return self.xattrs[name]
        except KeyError:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR) from None

    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        self.xattrs[name] = value


@pytest.fixture
def channel() -> Iterator[tuple[socket.socket, Dispatcher, SampleFs]]:
    """A dispatcher on one end of a SEQPACKET socketpair; the test plays the kernel."""
    kernel, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    operations = SampleFs()
    yield kernel, Dispatcher(operations, daemon.fileno()), operations
    kernel.close()
    daemon.close()


def header(unique: int, nodeid: int = 1) -> InHeader:
    return InHeader(unique=unique, nodeid=nodeid, uid=1000, gid=1000, pid=4242)


def receive(kernel: socket.socket, request: rq.Request) -> replies.Reply:
    kernel.settimeout(5)
    return decode(kernel.recv(1 << 20), request)


def decode(message: bytes, request: rq.Request) -> replies.Reply:
    """Check a reply as the kernel would (its header carries the opcode once encoded)."""
    return replies.decode_reply(message, rq.decode_request(rq.encode_request(request)))


async def test_lookup_reply_carries_attributes(channel) -> None:
    kernel, dispatcher, _ = channel
    request = rq.LookupRequest(header(2), b"file")
    await dispatcher.handle(rq.encode_request(request))
    reply = receive(kernel, request)
    assert reply.header.error == 0
    assert reply.body.nodeid == 2
    assert reply.body.entry_valid == 300
    assert reply.body.attr.mtime == 1_234_567_890
    assert reply.body.attr.mtimensec == 123_456_789


async def test_header_length_lie_gets_einval(channel) -> None:
    kernel, dispatcher, _ = channel
    message = bytearray(rq.encode_request(rq.LookupRequest(header(6), b"file")))
    message[0] += 8  # in_header.len says more than there is
    await dispatcher.handle(bytes(message))
    out = replies.decode_out_header(kernel.recv(1 << 16))
    assert (out.unique, out.error) == (6, -errno.EINVAL)


async def test_name_without_nul_gets_einval(channel) -> None:
    kernel, dispatcher, _ = channel
    message = bytearray(rq.encode_request(rq.LookupRequest(header(8), b"file")))
    message[-1:] = b"x"  # overwrite the terminating NUL
    await dispatcher.handle(bytes(message))
    out = replies.decode_out_header(kernel.recv(1 << 16))
    assert (out.unique, out.error) == (8, -errno.EINVAL)


async def test_unknown_opcode_gets_enosys(channel) -> None:
    kernel, dispatcher, _ = channel
    message = bytearray(rq.encode_request(rq.GetattrRequest(header(10), GetattrIn())))
    message[4:8] = (999).to_bytes(4, "little")
    await dispatcher.handle(bytes(message))
    out = replies.decode_out_header(kernel.recv(1 << 16))
    assert (out.unique, out.error) == (10, -errno.ENOSYS)


async def test_truncated_header_is_dropped_quietly(channel) -> None:
    kernel, dispatcher, _ = channel
    await dispatcher.handle(b"\x10\x00\x00")
    request = rq.LookupRequest(header(12), b"file")
    await dispatcher.handle(rq.encode_request(request))
    assert receive(kernel, request).header.error == 0  # the next reply is the lookup's


async def test_handler_bug_gives_eio_and_a_traceback(channel, caplog) -> None:
    kernel, dispatcher, _ = channel
    request = rq.GetattrRequest(header(14, nodeid=3), GetattrIn())
    with caplog.at_level(logging.ERROR, logger="pyfuse3"):
        await dispatcher.handle(rq.encode_request(request))
    assert receive(kernel, request).header.error == -errno.EIO
    assert any("ValueError: a bug" in (record.exc_text or "") for record in caplog.records)
    caplog.clear()
    request = rq.GetattrRequest(header(16, nodeid=4), GetattrIn())
    await dispatcher.handle(rq.encode_request(request))
    assert receive(kernel, request).header.error == -errno.EACCES
    assert not caplog.records  # FUSEError is an answer, not a bug: nothing logged


async def test_unimplemented_handler_gives_enosys(channel) -> None:
    kernel, dispatcher, _ = channel
    request = rq.ReadlinkRequest(header(18, nodeid=2))
    await dispatcher.handle(rq.encode_request(request))
    assert receive(kernel, request).header.error == -errno.ENOSYS


async def test_setxattr_create_and_replace_are_emulated(channel) -> None:
    kernel, dispatcher, operations = channel

    async def setxattr(unique: int, flags: int, value: bytes) -> int:
        request = rq.SetxattrRequest(
            header(unique, 2), SetxattrIn(size=len(value), flags=flags), b"user.a", value
        )
        await dispatcher.handle(rq.encode_request(request))
        return receive(kernel, request).header.error

    assert await setxattr(20, 2, b"x") == -pyfuse3.ENOATTR  # XATTR_REPLACE, absent
    assert await setxattr(22, 1, b"one") == 0  # XATTR_CREATE
    assert await setxattr(24, 1, b"two") == -errno.EEXIST
    assert await setxattr(26, 2, b"three") == 0
    assert await setxattr(28, 4, b"bad") == -errno.EINVAL
    assert operations.xattrs == {b"user.a": b"three"}


async def test_getxattr_size_query_and_erange(channel) -> None:
    kernel, dispatcher, operations = channel
    operations.xattrs[b"user.k"] = b"value"
    for unique, size, expected in ((30, 0, 5), (32, 2, -errno.ERANGE), (34, 64, b"value")):
        request = rq.GetxattrRequest(header(unique, 2), GetxattrIn(size=size), b"user.k")
        await dispatcher.handle(rq.encode_request(request))
        reply = receive(kernel, request)
        if isinstance(expected, bytes):
            assert reply.body == expected
        elif expected < 0:
            assert reply.header.error == expected
        else:
            assert reply.body.size == expected


async def test_readdirplus_fills_the_buffer_and_resumes(channel) -> None:
    kernel, dispatcher, operations = channel
    seen: list[bytes] = []
    offset, unique = 0, 40
    while True:
        request = rq.ReaddirplusRequest(header(unique), ReadIn(fh=1, offset=offset, size=1024))
        await dispatcher.handle(rq.encode_request(request))
        entries = receive(kernel, request).body
        if not entries:
            break
        assert sum(replies.direntplus_size(len(e.dirent.name)) for e in entries) <= 1024
        seen += [entry.dirent.name for entry in entries]
        offset, unique = entries[-1].dirent.off, unique + 2
    assert seen == operations.names


async def test_init_asks_for_readdirplus_only(channel) -> None:
    kernel, dispatcher, _ = channel
    offered = InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO | InitFlag.EXPORT_SUPPORT
    request = rq.InitRequest(header(50), kernel_init_request(int(offered), 65536))
    await dispatcher.handle(rq.encode_request(request))
    body = receive(kernel, request).body
    assert body.flags & InitFlag.DO_READDIRPLUS
    assert body.flags & InitFlag.EXPORT_SUPPORT
    assert not body.flags & InitFlag.READDIRPLUS_AUTO


async def test_main_loop_keeps_serving_after_a_handler_bug(monkeypatch) -> None:
    """The whole loop (workers, reads, replies) over a socketpair standing in for /dev/fuse."""
    kernel, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    os.set_blocking(daemon.fileno(), False)
    session = _session.Session(SampleFs(), "/nonexistent", daemon.fileno(),
                               _mount.MountOptions(), None)  # fmt: skip
    monkeypatch.setattr(_session, "_session", session)
    peer = trio.socket.from_stdlib_socket(kernel)
    buggy = rq.GetattrRequest(header(60, nodeid=3), GetattrIn())
    fine = rq.LookupRequest(header(62), b"file")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pyfuse3.main)
        with trio.fail_after(5):
            await peer.send(rq.encode_request(buggy))
            assert decode(await peer.recv(1 << 16), buggy).header.error == -errno.EIO
            await peer.send(rq.encode_request(fine))
            assert decode(await peer.recv(1 << 16), fine).body.nodeid == 2
        pyfuse3.terminate()
    assert pyfuse3.trio_token is None
    peer.close()
    daemon.close()


async def test_main_returns_when_the_device_closes(monkeypatch) -> None:
    """End of file on the device (an emulated /dev/fuse going away) ends main() like ENODEV."""
    kernel, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    os.set_blocking(daemon.fileno(), False)
    session = _session.Session(
        SampleFs(), "/nonexistent", daemon.fileno(), _mount.MountOptions(), None
    )
    monkeypatch.setattr(_session, "_session", session)
    kernel.close()
    with trio.fail_after(5):
        await pyfuse3.main()
    daemon.close()
