"""Requests: round trips at every minor, the kernel's compat sizes, and validation."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import negotiated_at, opcodes_and_negotiated, requests_for

from vufuse import protocol as p
from vufuse.protocol.structs import IN_HEADER


def _header(**fields: Any) -> p.InHeader:
    return p.InHeader(unique=fields.pop("unique", 2), nodeid=fields.pop("nodeid", 1), **fields)


@given(data=st.data())
def test_request_round_trip_every_opcode_every_minor(data: st.DataObject) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated())
    request = data.draw(requests_for(opcode, negotiated))
    encoded = p.encode_request(request, negotiated)
    decoded = p.decode_request(encoded, negotiated)
    assert type(decoded) is type(request)
    header = decoded.header
    assert header.len == len(encoded)
    assert header.opcode == opcode
    assert header[2:7] == request.header[2:7]  # unique, nodeid, uid, gid, pid
    # Whatever the minor drops is gone once; after that the bytes are stable.
    assert p.encode_request(decoded, negotiated) == encoded
    if negotiated.minor == p.KERNEL_MINOR_VERSION and opcode != p.Opcode.INIT:
        assert decoded[1:] == request[1:]


@given(data=st.data())
def test_request_round_trip_is_exact_at_latest(data: st.DataObject) -> None:
    negotiated = p.Negotiated(flags=p.InitFlag.SETXATTR_EXT)
    opcode = data.draw(st.sampled_from(sorted(p.requests.REQUEST_CLASSES)))
    request = data.draw(requests_for(opcode, negotiated))
    if opcode == p.Opcode.INIT:
        request = request._replace(arg=request.arg._replace(minor=45))
    decoded = p.decode_request(p.encode_request(request, negotiated), negotiated)
    assert decoded[1:] == request[1:]
    assert decoded.header._replace(len=0, opcode=0, total_extlen=0) == request.header._replace(
        len=0, opcode=0, total_extlen=0
    )


def test_lookup_bytes() -> None:
    encoded = p.encode_request(p.LookupRequest(_header(uid=1000, gid=100, pid=42), b"foo"))
    assert encoded == struct.pack("=IIQQIIIHH", 44, 1, 2, 1, 1000, 100, 42, 0, 0) + b"foo\0"


@pytest.mark.parametrize(("minor", "size"), [(8, 24), (9, 40), (45, 40)])
def test_write_in_size_follows_minor(minor: int, size: int) -> None:
    request = p.WriteRequest(_header(), p.WriteIn(fh=7, offset=3, size=2), b"hi")
    encoded = p.encode_request(request, negotiated_at(minor))
    assert len(encoded) == 40 + size + 2
    assert p.decode_request(encoded, negotiated_at(minor)).data == b"hi"


@pytest.mark.parametrize(("minor", "size"), [(11, 8), (12, 16)])
def test_mknod_and_create_sizes_follow_minor(minor: int, size: int) -> None:
    mknod = p.MknodRequest(_header(), p.MknodIn(mode=0o10644, rdev=5), b"n")
    create = p.CreateRequest(_header(), p.CreateIn(flags=2, mode=0o644), b"n")
    for request in (mknod, create):
        encoded = p.encode_request(request, negotiated_at(minor))
        assert len(encoded) == 40 + size + 2
        decoded = p.decode_request(encoded, negotiated_at(minor))
        assert decoded.arg.mode == request.arg.mode and decoded.name == b"n"


def test_setxattr_size_follows_setxattr_ext() -> None:
    request = p.SetxattrRequest(_header(), p.SetxattrIn(size=1, flags=1), b"user.a", b"v")
    plain = p.encode_request(request, negotiated_at(45))
    extended = p.encode_request(request, p.Negotiated(flags=p.InitFlag.SETXATTR_EXT))
    assert len(extended) - len(plain) == 8
    assert p.decode_request(plain, negotiated_at(45)).value == b"v"


def test_old_daemons_accept_the_short_and_full_forms() -> None:
    # The kernel sends today's read_in/getattr_in to a 7.8 daemon; older kernels
    # sent the short forms.  Both decode at 7.8; only the full one at 7.9.
    short_read = IN_HEADER.pack(p.InHeader(len=64, opcode=p.Opcode.READ, unique=2)) + bytes(24)
    assert p.decode_request(short_read, negotiated_at(8)).arg == p.ReadIn()
    with pytest.raises(p.ProtocolError, match="read_in"):
        p.decode_request(short_read, negotiated_at(9))
    bare_getattr = IN_HEADER.pack(p.InHeader(len=40, opcode=p.Opcode.GETATTR, unique=2))
    assert p.decode_request(bare_getattr, negotiated_at(8)).arg == p.GetattrIn()


def test_init_request_sizes_follow_the_kernels_minor() -> None:
    for minor, size in ((5, 8), (19, 16), (35, 16), (36, 64), (45, 64)):
        offer = p.kernel_init_request(p.InitFlag.ASYNC_READ, 65536, minor)
        encoded = p.encode_request(p.InitRequest(_header(nodeid=0), offer))
        assert len(encoded) == 40 + size
        assert p.decode_request(encoded).arg.minor == minor
    # a future kernel's longer init_in is accepted
    longer = (
        IN_HEADER.pack(p.InHeader(len=40 + 80, opcode=p.Opcode.INIT))
        + struct.pack("=II", 7, 46)
        + bytes(72)
    )
    assert p.decode_request(longer).arg.minor == 46


def test_extensions_are_split_off_the_end() -> None:
    request = p.MkdirRequest(_header(), p.MkdirIn(0o755, 0o22), b"d", bytes(range(16)))
    encoded = p.encode_request(request)
    assert IN_HEADER.unpack(encoded).total_extlen == 2
    assert p.decode_request(encoded) == request._replace(
        header=request.header._replace(len=len(encoded), opcode=p.Opcode.MKDIR, total_extlen=2)
    )
    with pytest.raises(p.ProtocolError, match="extensions"):
        p.encode_request(request, negotiated_at(37))
    with pytest.raises(p.ProtocolError, match="multiple of 8"):
        p.encode_request(request._replace(extensions=b"abc"))


def test_batch_forget() -> None:
    forgets = (p.ForgetOne(5, 1), p.ForgetOne(6, 2))
    request = p.BatchForgetRequest(_header(), p.BatchForgetIn(count=2), forgets)
    assert p.decode_request(p.encode_request(request)).forgets == forgets
    with pytest.raises(p.ProtocolError, match="forgets"):
        p.encode_request(request._replace(arg=p.BatchForgetIn(count=3)))


# ---------------------------------------------------------------- validation


def _raw(opcode: int, payload: bytes, **header: Any) -> bytes:
    length = header.pop("len", 40 + len(payload))
    return IN_HEADER.pack(p.InHeader(len=length, opcode=opcode, unique=2, **header)) + payload


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (b"", "in_header"),
        (bytes(39), "in_header"),
        (_raw(p.Opcode.LOOKUP, b"foo\0", len=45), "in_header.len"),
        (_raw(p.Opcode.LOOKUP, b"foo\0", len=43), "in_header.len"),
        (_raw(999, b""), "in_header.opcode"),
        (_raw(7, b""), "in_header.opcode"),
        (_raw(p.Opcode.LOOKUP, b"foo"), "name"),
        (_raw(p.Opcode.LOOKUP, b"foo\0bar"), "lookup"),
        (_raw(p.Opcode.RENAME, bytes(8) + b"a\0b"), "new_name"),
        (_raw(p.Opcode.READ, bytes(39)), "read_in"),
        (_raw(p.Opcode.READ, bytes(41)), "read_in"),
        (_raw(p.Opcode.WRITE, struct.pack("=QQII", 1, 0, 5, 0) + bytes(16) + b"abc"), "data"),
        (_raw(p.Opcode.SETXATTR, struct.pack("=II", 2, 0) + b"user.a\0x"), "value"),
        (_raw(p.Opcode.BATCH_FORGET, struct.pack("=II", 1, 0)), "forgets"),
        (_raw(p.Opcode.STATFS, b"\0"), "statfs"),
        (_raw(p.Opcode.INIT, bytes(7)), "init_in"),
        (_raw(p.Opcode.MKDIR, bytes(8) + b"d\0", total_extlen=9), "in_header.total_extlen"),
    ],
)
def test_malformed_requests_name_the_field(message: bytes, field: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_request(message)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_encoder_refuses_bad_requests() -> None:
    with pytest.raises(p.ProtocolError, match="READDIRPLUS needs 7.21"):
        p.encode_request(p.ReaddirplusRequest(_header(), p.ReadIn()), negotiated_at(19))
    with pytest.raises(p.ProtocolError, match="contains NUL"):
        p.encode_request(p.LookupRequest(_header(), b"a\0b"))
    with pytest.raises(p.ProtocolError, match="size says"):
        p.encode_request(p.WriteRequest(_header(), p.WriteIn(size=1), b"ab"))
    with pytest.raises(p.ProtocolError, match="must be bytes"):
        p.encode_request(p.LookupRequest(_header(), "str"))  # type: ignore[arg-type]
    with pytest.raises(p.ProtocolError, match="not a request"):
        p.encode_request(p.InHeader())  # type: ignore[arg-type]
    with pytest.raises(p.ProtocolError, match="in_header.unique"):
        p.encode_request(p.StatfsRequest(p.InHeader(unique=-1)))


def test_memoryview_and_bytearray_inputs() -> None:
    encoded = p.encode_request(p.LookupRequest(_header(), b"x"))
    assert p.decode_request(memoryview(encoded)) == p.decode_request(bytearray(encoded))
