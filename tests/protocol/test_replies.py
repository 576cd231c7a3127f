"""Replies: round trips per opcode and minor, compat sizes, and the kernel's checks."""

from __future__ import annotations

import errno
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import negotiated_at, opcodes_and_negotiated, reply_cases

from vufuse import protocol as p
from vufuse.protocol.structs import ENTRY_OUT, OUT_HEADER


def _request(opcode: p.Opcode, arg: Any = None, unique: int = 2) -> Any:
    cls = p.REQUEST_CLASSES[opcode]
    header = p.InHeader(unique=unique, opcode=opcode, nodeid=1)
    defaults: dict[str, Any] = {"name": b"n", "target": b"t", "old_name": b"a",
                                "new_name": b"b", "data": b"", "value": b"",
                                "forgets": (), "mappings": (), "extensions": b""}  # fmt: skip
    values = [header]
    for field in cls._fields[1:]:
        values.append(arg if field == "arg" else defaults[field])
    return cls(*values)


@given(data=st.data())
def test_reply_round_trip_every_opcode_every_minor(data: st.DataObject) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated(replies=True))
    request, body = data.draw(reply_cases(opcode, negotiated))
    unique = request.header.unique
    request = request._replace(header=request.header._replace(opcode=opcode))
    encoded = p.encode_reply(unique, opcode, body, negotiated)
    reply = p.decode_reply(encoded, request, negotiated)
    assert reply.header == p.OutHeader(len(encoded), 0, unique)
    assert p.encode_reply(unique, opcode, reply.body, negotiated) == encoded
    if negotiated.minor == p.KERNEL_MINOR_VERSION:
        assert reply.body == body


@given(data=st.data(), error=st.integers(1, 511))
def test_error_reply_round_trip(data: st.DataObject, error: int) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated(replies=True))
    request = _request(opcode, unique=data.draw(st.integers(1, 2**64 - 1)))
    reply = p.decode_reply(p.encode_error(request.header.unique, error), request, negotiated)
    assert reply == p.Reply(p.OutHeader(16, -error, request.header.unique), None)


@pytest.mark.parametrize(("minor", "size"), [(8, 120), (9, 128), (45, 128)])
def test_entry_out_size_follows_minor(minor: int, size: int) -> None:
    entry = p.EntryOut(nodeid=5, attr=p.Attr(ino=5, mode=0o40755, nlink=2, blksize=4096))
    for opcode in (p.Opcode.LOOKUP, p.Opcode.MKDIR, p.Opcode.LINK):
        encoded = p.encode_reply(9, opcode, entry, negotiated_at(minor))
        assert len(encoded) == 16 + size
        body = p.decode_reply(encoded, _request(opcode, unique=9), negotiated_at(minor)).body
        assert body == (
            entry if minor >= 9 else entry._replace(attr=entry.attr._replace(blksize=0))
        )
    create = p.CreateOut(entry, p.OpenOut(fh=3))
    encoded = p.encode_reply(9, p.Opcode.CREATE, create, negotiated_at(minor))
    assert len(encoded) == 16 + size + 16
    assert p.decode_reply(
        encoded, _request(p.Opcode.CREATE, p.CreateIn(), 9), negotiated_at(minor)
    ).body.open == p.OpenOut(fh=3)


@pytest.mark.parametrize(
    ("opcode", "body", "minor", "size"),
    [
        (p.Opcode.GETATTR, p.AttrOut(), 8, 96),
        (p.Opcode.SETATTR, p.AttrOut(), 9, 104),
        (p.Opcode.STATFS, p.StatfsOut(), 3, 48),
        (p.Opcode.STATFS, p.StatfsOut(), 4, 80),
        (p.Opcode.INIT, p.InitOut(major=7), 4, 8),
        (p.Opcode.INIT, p.InitOut(major=7), 22, 24),
        (p.Opcode.INIT, p.InitOut(major=7), 23, 64),
    ],
)
def test_compat_reply_sizes(opcode: p.Opcode, body: Any, minor: int, size: int) -> None:
    encoded = p.encode_reply(2, opcode, body, negotiated_at(minor))
    assert len(encoded) == 16 + size
    p.decode_reply(encoded, _request(opcode, p.GetattrIn()), negotiated_at(minor))


def test_wrong_size_for_the_minor_is_refused() -> None:
    at_7_8 = p.encode_reply(2, p.Opcode.LOOKUP, p.EntryOut(), negotiated_at(8))
    with pytest.raises(p.ProtocolError, match="entry_out"):
        p.decode_reply(at_7_8, _request(p.Opcode.LOOKUP), negotiated_at(45))


def test_init_reply_of_any_old_size_decodes_on_the_kernel_side() -> None:
    # The kernel accepts a short INIT reply (out_argvar); the rest reads as zero.
    request = _request(p.Opcode.INIT, p.InitIn(major=7, minor=45))
    for size in (8, 24, 64):
        payload = struct.pack("=II", 7, 12) + bytes(size - 8)
        message = OUT_HEADER.pack(p.OutHeader(16 + size, 0, 2)) + payload
        assert p.decode_reply(message, request).body == p.InitOut(major=7, minor=12)
    for size in (4, 65):
        message = OUT_HEADER.pack(p.OutHeader(16 + size, 0, 2)) + bytes(size)
        with pytest.raises(p.ProtocolError, match="init_out"):
            p.decode_reply(message, request)


def test_readdir_bytes() -> None:
    chunk = p.encode_dirent(p.Dirent(ino=1, off=1, type=4, name=b"."))
    assert chunk == struct.pack("=QQII", 1, 1, 1, 4) + b"." + bytes(7)
    assert len(chunk) == p.dirent_size(1) == 32
    assert p.direntplus_size(1) == 160
    plus = p.encode_direntplus(p.DirentPlus(p.EntryOut(), p.Dirent(1, 1, 4, b"abcdefgh")))
    assert len(plus) == p.direntplus_size(8) == 128 + 24 + 8


def test_readdir_parses_like_the_kernel() -> None:
    request = _request(p.Opcode.READDIR, p.ReadIn(size=4096))
    good = p.encode_dirent(p.Dirent(1, 1, 4, b"a"))

    def reply(payload: bytes) -> bytes:
        return OUT_HEADER.pack(p.OutHeader(16 + len(payload), 0, 2)) + payload

    # a record cut short at the end is ignored, as parse_dirfile does
    assert p.decode_reply(reply(good + good[:30]), request).body == (p.Dirent(1, 1, 4, b"a"),)
    bad_name = struct.pack("=QQII", 1, 1, 1, 4) + b"/" + bytes(7)
    with pytest.raises(p.ProtocolError, match="dirent.name"):
        p.decode_reply(reply(bad_name), request)
    no_name = struct.pack("=QQII", 1, 1, 0, 4)
    with pytest.raises(p.ProtocolError, match="dirent.namelen"):
        p.decode_reply(reply(no_name), request)
    with pytest.raises(p.ProtocolError, match="dirent.namelen"):
        p.encode_dirent(p.Dirent(1, 1, 4, b"x" * 1025))
    with pytest.raises(p.ProtocolError, match="dirents"):
        p.decode_reply(reply(good * 2), _request(p.Opcode.READDIR, p.ReadIn(size=32)))
    assert p.entries_fit([p.Dirent(1, 1, 4, b"a")] * 3, 70) == 2


@pytest.mark.parametrize(
    ("opcode", "arg", "payload", "field"),
    [
        (p.Opcode.READ, p.ReadIn(size=4), b"12345", "data"),
        (p.Opcode.GETXATTR, p.GetxattrIn(size=2), b"abc", "value"),
        (p.Opcode.GETXATTR, p.GetxattrIn(size=0), b"abc", "getxattr_out"),
        (p.Opcode.READLINK, None, b"x" * 4096, "target"),
        (p.Opcode.RELEASE, p.ReleaseIn(), b"x", "out_header.len"),
        (p.Opcode.OPEN, p.OpenIn(), bytes(17), "open_out"),
        (p.Opcode.IOCTL, p.IoctlIn(out_size=1), bytes(16) + b"ab", "ioctl_out.data"),
        (p.Opcode.IOCTL, p.IoctlIn(), bytes(8), "ioctl_out"),
        (p.Opcode.IOCTL, p.IoctlIn(), struct.pack("=iIII", 0, 4, 1, 0), "ioctl_out.data"),
        (p.Opcode.IOCTL, p.IoctlIn(), struct.pack("=iIII", 0, 4, 300, 0), "ioctl_out.in_iovs"),
        (p.Opcode.CUSE_INIT, p.CuseInitIn(), bytes(10), "cuse_init_out"),
        (p.Opcode.CREATE, p.CreateIn(), bytes(128), "create_out"),
    ],
)
def test_oversized_or_misshapen_replies(
    opcode: p.Opcode, arg: Any, payload: bytes, field: str
) -> None:
    message = OUT_HEADER.pack(p.OutHeader(16 + len(payload), 0, 2)) + payload
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_reply(message, _request(opcode, arg))
    assert caught.value.field == field


def test_header_checks() -> None:
    request = _request(p.Opcode.RELEASE, p.ReleaseIn())
    with pytest.raises(p.ProtocolError, match="out_header:"):
        p.decode_reply(bytes(15), request)
    with pytest.raises(p.ProtocolError, match="out_header.len"):
        p.decode_reply(OUT_HEADER.pack(p.OutHeader(17, 0, 2)), request)
    with pytest.raises(p.ProtocolError, match="out_header.unique"):
        p.decode_reply(OUT_HEADER.pack(p.OutHeader(16, 0, 3)), request)
    for error in (1, -512, -4095):
        with pytest.raises(p.ProtocolError, match="out_header.error"):
            p.decode_reply(OUT_HEADER.pack(p.OutHeader(16, error, 2)), request)
    with pytest.raises(p.ProtocolError, match="carries no payload"):
        p.decode_reply(OUT_HEADER.pack(p.OutHeader(20, -2, 2)) + bytes(4), request)
    forget = _request(p.Opcode.FORGET, p.ForgetIn(1))
    with pytest.raises(p.ProtocolError, match="FORGET takes no reply"):
        p.decode_reply(OUT_HEADER.pack(p.OutHeader(16, 0, 2)), forget)


def test_encoder_checks() -> None:
    with pytest.raises(p.ProtocolError, match="LOOKUP reply needs EntryOut"):
        p.encode_reply(2, p.Opcode.LOOKUP, p.AttrOut())
    with pytest.raises(p.ProtocolError, match="takes no reply"):
        p.encode_reply(2, p.Opcode.FORGET)
    with pytest.raises(p.ProtocolError, match="has no payload"):
        p.encode_reply(2, p.Opcode.FLUSH, b"x")
    with pytest.raises(p.ProtocolError, match="errno"):
        p.encode_error(2, 512)
    with pytest.raises(p.ProtocolError, match="unknown opcode"):
        p.encode_reply(2, 999, None)
    assert p.encode_error(2, errno.ENOENT) == struct.pack("=IiQ", 16, -2, 2)


def test_parts_and_data_reply_agree_with_encode_reply() -> None:
    whole = p.encode_reply(4, p.Opcode.READ, b"data")
    assert b"".join(p.encode_reply_parts(4, p.Opcode.READ, b"data")) == whole
    header, data = p.encode_data_reply(4, memoryview(b"data"))
    assert header + bytes(data) == whole


def test_ioctl_iovecs() -> None:
    iovecs = (p.IoctlIovec(1, 2), p.IoctlIovec(3, 4))
    data = b"".join(struct.pack("=QQ", *v) for v in iovecs)
    reply = p.IoctlReply(p.IoctlOut(flags=p.IoctlFlag.RETRY, in_iovs=1, out_iovs=1), data)
    assert p.ioctl_iovecs(reply) == iovecs
    assert ENTRY_OUT.size == 128
