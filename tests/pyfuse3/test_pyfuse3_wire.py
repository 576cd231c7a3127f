"""Attributes survive the trip to the wire exactly, and no byte string crashes the dispatcher."""

from __future__ import annotations

import socket
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from vufuse import pyfuse3
from vufuse.protocol import replies
from vufuse.protocol.constants import Opcode
from vufuse.protocol.structs import ENTRY_OUT, IN_HEADER, InHeader
from vufuse.pyfuse3 import _wire
from vufuse.pyfuse3._dispatch import Dispatcher

NS = st.integers(min_value=-(2**62), max_value=2**62)


@given(atime=NS, mtime=NS, ctime=NS, timeout=st.floats(0, 1e6, allow_nan=False))
def test_timestamps_and_timeouts_round_trip(atime, mtime, ctime, timeout) -> None:
    entry = pyfuse3.EntryAttributes()
    entry.st_atime_ns, entry.st_mtime_ns, entry.st_ctime_ns = atime, mtime, ctime
    entry.entry_timeout = entry.attr_timeout = timeout
    decoded = ENTRY_OUT.unpack(ENTRY_OUT.pack(_wire.entry_out(entry)))

    def signed(seconds: int) -> int:
        return seconds - (1 << 64) if seconds >= 1 << 63 else seconds

    attr = decoded.attr
    assert signed(attr.atime) * 10**9 + attr.atimensec == atime
    assert signed(attr.mtime) * 10**9 + attr.mtimensec == mtime
    assert signed(attr.ctime) * 10**9 + attr.ctimensec == ctime
    assert abs(decoded.entry_valid + decoded.entry_valid_nsec / 1e9 - timeout) < 1e-6


class EverythingFs(pyfuse3.Operations):
    """Answers a little of everything, so random requests reach deep into the dispatcher."""

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = inode
        return entry

    async def lookup(self, parent_inode, name, ctx):  # type: ignore[no-untyped-def]
        return await self.getattr(2, ctx)

    async def opendir(self, inode, ctx):  # type: ignore[no-untyped-def]
        return 1

    async def readdir(self, fh, start_id, token):  # type: ignore[no-untyped-def]
        pyfuse3.readdir_reply(token, b"x", await self.getattr(2, None), start_id + 1)

    async def read(self, fh, off, size):  # type: ignore[no-untyped-def]
        return b"y" * min(size, 10)


OPCODES = st.sampled_from([int(op) for op in Opcode] + [0, 77, 2**32 - 1])


@settings(max_examples=300)
@given(
    opcode=OPCODES,
    body=st.binary(max_size=200),
    lie=st.integers(-3, 3),
    unique=st.integers(1, 2**40),
)
async def test_random_requests_get_one_sane_reply_or_none(opcode, body, lie, unique) -> None:
    kernel, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with kernel, daemon:
        dispatcher = Dispatcher(EverythingFs(), daemon.fileno())
        length = max(0, IN_HEADER.size + len(body) + lie) & 0xFFFFFFFF
        header = IN_HEADER.pack(InHeader(len=length, opcode=opcode, unique=unique, nodeid=1))
        await dispatcher.handle(header + body)
        kernel.setblocking(False)
        try:
            reply = kernel.recv(1 << 20)
        except BlockingIOError:
            return  # FORGET-like requests take no reply
        out = replies.decode_out_header(reply)
        assert out.unique == unique
        assert -512 < out.error <= 0
        if out.error:
            assert len(reply) == 16
        kernel.setblocking(False)
        try:
            kernel.recv(1 << 20)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("two replies to one request")
        assert struct.unpack_from("<I", reply)[0] == len(reply)
