"""Replies, daemon -> kernel: ``out_header`` + the op's payload, and their codec.

A reply answers the request with the same ``unique``.  ``error`` is 0 with a
payload, or ``-errno`` with none.  What the payload is depends on the
request's opcode (the reply does not say), so the kernel side decodes with the
request in hand: :func:`decode_reply` checks the reply the way the kernel's
device write does -- exact sizes for the agreed minor, variable-size replies no
larger than the request allowed, dirents that parse -- and raises
:class:`ProtocolError` for anything else.  The daemon side builds replies with
:func:`encode_reply` / :func:`encode_error`, and directory listings with
:func:`encode_dirent` / :func:`encode_direntplus` (plus their ``*_size``
helpers for filling a buffer of ``arg.size`` bytes).

Notifications share the out_header but have ``unique`` 0: see :mod:`.notify`.
"""

from __future__ import annotations

import struct
import typing
from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

from . import requests as rq
from ._layout import Layout
from .constants import (
    CUSE_INIT_INFO_MAX,
    IOCTL_MAX_IOV,
    NAME_MAX,
    READLINK_MAX,
    IoctlFlag,
    Opcode,
)
from .errors import ProtocolError
from .negotiate import LATEST, Negotiated
from .requests import Request, request_opcode
from .structs import (
    ATTR_OUT,
    BMAP_OUT,
    COPY_FILE_RANGE_OUT,
    CUSE_INIT_OUT,
    DIRENT_HEAD,
    ENTRY_OUT,
    GETXATTR_OUT,
    INIT_OUT,
    IOCTL_IOVEC,
    IOCTL_OUT,
    LK_OUT,
    LSEEK_OUT,
    OPEN_OUT,
    OUT_HEADER,
    POLL_OUT,
    STATFS_OUT,
    STATX_OUT,
    WRITE_OUT,
    AttrOut,
    BmapOut,
    CopyFileRangeOut,
    CuseInitOut,
    DirentHead,
    EntryOut,
    GetxattrOut,
    InitOut,
    IoctlIovec,
    IoctlOut,
    LkOut,
    LseekOut,
    OpenOut,
    OutHeader,
    PollOut,
    StatfsOut,
    StatxOut,
    WriteOut,
)

_HEADER_SIZE = OUT_HEADER.size
#: The kernel refuses reply errors at or below -ERESTARTSYS (512).
ERRNO_LIMIT = 512


class CreateOut(NamedTuple):
    """The reply to CREATE and TMPFILE: an entry and an open file."""

    entry: EntryOut = EntryOut()
    open: OpenOut = OpenOut()


class IoctlReply(NamedTuple):
    """The reply to IOCTL: result and output data (or, with RETRY, iovecs)."""

    out: IoctlOut = IoctlOut()
    data: bytes = b""


class CuseInitReply(NamedTuple):
    """The reply to CUSE_INIT: device parameters and NUL-separated info strings."""

    out: CuseInitOut = CuseInitOut()
    info: bytes = b""


class Dirent(NamedTuple):
    """One READDIR entry: ``type`` is the DT_* value (mode >> 12)."""

    ino: int
    off: int
    type: int
    name: bytes


class DirentPlus(NamedTuple):
    """One READDIRPLUS entry: the dirent with its entry_out (nodeid 0: no lookup)."""

    entry: EntryOut
    dirent: Dirent


ReplyBody = (
    EntryOut | AttrOut | OpenOut | CreateOut | WriteOut | StatfsOut | GetxattrOut | LkOut
    | InitOut | BmapOut | IoctlReply | PollOut | LseekOut | CopyFileRangeOut | StatxOut
    | CuseInitReply | bytes | tuple[Dirent, ...] | tuple[DirentPlus, ...] | None
)  # fmt: skip
"""A decoded reply payload; ``None`` for replies without one (and for errors)."""


BodyT = TypeVar("BodyT", covariant=True)


class Reply(NamedTuple, Generic[BodyT]):
    """A decoded reply: ``header.error`` is 0 or -errno; ``body`` per opcode.

    ``body`` is None for an error and for ops that answer with nothing; the
    type parameter says what it is otherwise (``decode_reply`` infers it from
    the request's class).
    """

    header: OutHeader
    body: BodyT | None


# ------------------------------------------------------------------ per-opcode shapes

# Fixed struct replies: opcode -> (layout, attribute of Negotiated with its size or None).
_STRUCT_REPLIES: dict[int, tuple[Layout[Any], str | None]] = {
    Opcode.LOOKUP: (ENTRY_OUT, "entry_out_size"),
    Opcode.MKNOD: (ENTRY_OUT, "entry_out_size"),
    Opcode.MKDIR: (ENTRY_OUT, "entry_out_size"),
    Opcode.SYMLINK: (ENTRY_OUT, "entry_out_size"),
    Opcode.LINK: (ENTRY_OUT, "entry_out_size"),
    Opcode.GETATTR: (ATTR_OUT, "attr_out_size"),
    Opcode.SETATTR: (ATTR_OUT, "attr_out_size"),
    Opcode.STATFS: (STATFS_OUT, "statfs_out_size"),
    Opcode.OPEN: (OPEN_OUT, None),
    Opcode.OPENDIR: (OPEN_OUT, None),
    Opcode.WRITE: (WRITE_OUT, None),
    Opcode.COPY_FILE_RANGE: (WRITE_OUT, None),
    Opcode.COPY_FILE_RANGE_64: (COPY_FILE_RANGE_OUT, None),
    Opcode.GETLK: (LK_OUT, None),
    Opcode.BMAP: (BMAP_OUT, None),
    Opcode.POLL: (POLL_OUT, None),
    Opcode.LSEEK: (LSEEK_OUT, None),
    Opcode.STATX: (STATX_OUT, None),
}
_EMPTY_REPLIES = frozenset({
    Opcode.SETXATTR, Opcode.REMOVEXATTR, Opcode.FLUSH, Opcode.RELEASE, Opcode.RELEASEDIR,
    Opcode.FSYNC, Opcode.FSYNCDIR, Opcode.UNLINK, Opcode.RMDIR, Opcode.RENAME,
    Opcode.RENAME2, Opcode.ACCESS, Opcode.SETLK, Opcode.SETLKW, Opcode.FALLOCATE,
    Opcode.DESTROY, Opcode.SYNCFS, Opcode.SETUPMAPPING, Opcode.REMOVEMAPPING,
    Opcode.INTERRUPT,
})  # fmt: skip
_NO_REPLY = frozenset({Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.NOTIFY_REPLY})
_CREATE_REPLIES = frozenset({Opcode.CREATE, Opcode.TMPFILE})
_XATTR_REPLIES = frozenset({Opcode.GETXATTR, Opcode.LISTXATTR})


# ------------------------------------------------------------------ dirents


def _align8(size: int) -> int:
    return (size + 7) & ~7


def dirent_size(name_length: int) -> int:
    """Bytes one READDIR entry with a name this long takes (aligned to 8)."""
    return _align8(DIRENT_HEAD.size + name_length)


def direntplus_size(name_length: int) -> int:
    """Bytes one READDIRPLUS entry with a name this long takes (aligned to 8)."""
    return _align8(ENTRY_OUT.size + DIRENT_HEAD.size + name_length)


_DIRENT_HEAD_PACK = DIRENT_HEAD.struct.pack
_PADDING = tuple(bytes(n) for n in range(8))


def encode_dirent(entry: Dirent) -> bytes:
    """One READDIR entry, padded to 8 bytes (name checked as the kernel will)."""
    ino, off, type_, name = entry
    if not isinstance(name, bytes):
        raise ProtocolError("dirent.name", f"must be bytes, got {type(name).__name__}")
    size = len(name)
    if not 0 < size <= NAME_MAX:
        raise ProtocolError("dirent.namelen", f"{size} not in 1..{NAME_MAX}")
    if b"/" in name:
        raise ProtocolError("dirent.name", "contains '/'")
    try:
        head = _DIRENT_HEAD_PACK(ino, off, size, type_)
    except struct.error as exc:
        raise DIRENT_HEAD._explain(DirentHead(ino, off, size, type_)) from exc
    return head + name + _PADDING[-size % 8]


def encode_direntplus(entry: DirentPlus) -> bytes:
    """One READDIRPLUS entry (always today's entry_out: READDIRPLUS is 7.21+)."""
    return ENTRY_OUT.pack(entry.entry) + encode_dirent(entry.dirent)


def _decode_dirent_list(payload: bytes, plus: bool) -> tuple[Any, ...]:
    # Mirrors the kernel's parse_dirfile/parse_dirplusfile: a bad name length
    # or a '/' is an error; a record cut short at the end is ignored.
    entries: list[Any] = []
    position = 0
    size = len(payload)
    lead = ENTRY_OUT.size if plus else 0
    name_offset = lead + DIRENT_HEAD.size
    head_unpack = DIRENT_HEAD.struct.unpack_from
    while size - position >= name_offset:
        ino, off, namelen, type_ = head_unpack(payload, position + lead)
        if not 0 < namelen <= NAME_MAX:
            raise ProtocolError("dirent.namelen", f"{namelen} not in 1..{NAME_MAX}")
        record = _align8(name_offset + namelen)
        if record > size - position:
            break
        start = position + name_offset
        name = payload[start : start + namelen]
        if b"/" in name:
            raise ProtocolError("dirent.name", "contains '/'")
        dirent = Dirent(ino, off, type_, name)
        if plus:
            entries.append(DirentPlus(ENTRY_OUT.unpack(payload, position), dirent))
        else:
            entries.append(dirent)
        position += record
    return tuple(entries)


def decode_dirents(payload: bytes) -> tuple[Dirent, ...]:
    """Parse a READDIR payload as the kernel does."""
    return _decode_dirent_list(payload, False)


def decode_direntplus(payload: bytes) -> tuple[DirentPlus, ...]:
    """Parse a READDIRPLUS payload as the kernel does."""
    return _decode_dirent_list(payload, True)


def ioctl_iovecs(reply: IoctlReply) -> tuple[IoctlIovec, ...]:
    """The iovecs of an IOCTL reply with FUSE_IOCTL_RETRY (in_iovs then out_iovs)."""
    return tuple(IOCTL_IOVEC.from_flat(flat) for flat in IOCTL_IOVEC.struct.iter_unpack(reply.data))


# ------------------------------------------------------------------ decoding (kernel side)


def decode_out_header(buffer: bytes | bytearray | memoryview) -> OutHeader:
    """Decode and check the header of anything a daemon writes.

    ``unique`` 0 means a notification (:func:`.notify.decode_notification`);
    otherwise find the request it answers and call :func:`decode_reply`.
    """
    size = len(buffer)
    if size < _HEADER_SIZE:
        raise ProtocolError("out_header", f"{size} bytes, need {_HEADER_SIZE}")
    header = OUT_HEADER.unpack(buffer)
    if header.len != size:
        raise ProtocolError("out_header.len", f"says {header.len}, message has {size} bytes")
    return header


def _fixed(payload: bytes, layout: Layout[Any], size: int, what: str) -> Any:
    if len(payload) != size:
        raise ProtocolError(layout.name, f"{what} reply has {len(payload)} bytes, need {size}")
    if size == layout.size:
        return layout.unpack(payload)
    return layout.unpack_prefix(payload, 0, size)


def _exactly(payload: bytes, size: int, field: str) -> bytes:
    if len(payload) != size:
        raise ProtocolError(field, f"{len(payload)} bytes, need {size}")
    return payload


def _at_most(payload: bytes, limit: int, field: str) -> bytes:
    if len(payload) > limit:
        raise ProtocolError(field, f"{len(payload)} bytes exceed the {limit} requested")
    return payload


_EntryRequests = (
    rq.LookupRequest | rq.MknodRequest | rq.MkdirRequest | rq.SymlinkRequest | rq.LinkRequest
)
_EmptyRequests = (
    rq.SetxattrRequest | rq.RemovexattrRequest | rq.FlushRequest | rq.ReleaseRequest
    | rq.ReleasedirRequest | rq.FsyncRequest | rq.FsyncdirRequest | rq.UnlinkRequest
    | rq.RmdirRequest | rq.RenameRequest | rq.Rename2Request | rq.AccessRequest
    | rq.SetlkRequest | rq.SetlkwRequest | rq.FallocateRequest | rq.DestroyRequest
    | rq.SyncfsRequest | rq.SetupmappingRequest | rq.RemovemappingRequest
    | rq.InterruptRequest | rq.ForgetRequest | rq.BatchForgetRequest | rq.NotifyReplyRequest
)  # fmt: skip
_Buffer = bytes | bytearray | memoryview


@overload
def decode_reply(
    buffer: _Buffer, request: _EntryRequests, negotiated: Negotiated = ...
) -> Reply[EntryOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.GetattrRequest | rq.SetattrRequest, negotiated: Negotiated = ...
) -> Reply[AttrOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.OpenRequest | rq.OpendirRequest, negotiated: Negotiated = ...
) -> Reply[OpenOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.CreateRequest | rq.TmpfileRequest, negotiated: Negotiated = ...
) -> Reply[CreateOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.ReadRequest | rq.ReadlinkRequest, negotiated: Negotiated = ...
) -> Reply[bytes]: ...
@overload
def decode_reply(
    buffer: _Buffer,
    request: rq.GetxattrRequest | rq.ListxattrRequest,
    negotiated: Negotiated = ...,
) -> Reply[bytes | GetxattrOut]: ...
@overload
def decode_reply(
    buffer: _Buffer,
    request: rq.WriteRequest | rq.CopyFileRangeRequest,
    negotiated: Negotiated = ...,
) -> Reply[WriteOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.CopyFileRange64Request, negotiated: Negotiated = ...
) -> Reply[CopyFileRangeOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.StatfsRequest, negotiated: Negotiated = ...
) -> Reply[StatfsOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.GetlkRequest, negotiated: Negotiated = ...
) -> Reply[LkOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.InitRequest, negotiated: Negotiated = ...
) -> Reply[InitOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.BmapRequest, negotiated: Negotiated = ...
) -> Reply[BmapOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.IoctlRequest, negotiated: Negotiated = ...
) -> Reply[IoctlReply]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.PollRequest, negotiated: Negotiated = ...
) -> Reply[PollOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.LseekRequest, negotiated: Negotiated = ...
) -> Reply[LseekOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.StatxRequest, negotiated: Negotiated = ...
) -> Reply[StatxOut]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.CuseInitRequest, negotiated: Negotiated = ...
) -> Reply[CuseInitReply]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.ReaddirRequest, negotiated: Negotiated = ...
) -> Reply[tuple[Dirent, ...]]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: rq.ReaddirplusRequest, negotiated: Negotiated = ...
) -> Reply[tuple[DirentPlus, ...]]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: _EmptyRequests, negotiated: Negotiated = ...
) -> Reply[None]: ...
@overload
def decode_reply(
    buffer: _Buffer, request: Request, negotiated: Negotiated = ...
) -> Reply[ReplyBody]: ...
def decode_reply(buffer: _Buffer, request: Request, negotiated: Negotiated = LATEST) -> Reply[Any]:
    """Decode a daemon's reply to ``request`` (kernel side), checking it as the kernel does.

    Raises :class:`ProtocolError` when the reply is malformed: lengths that
    disagree, an error outside -511..0 or with a payload, a payload of the
    wrong size for the agreed minor, more data than the request asked for, a
    reply to a request that takes none, or a unique that is not the request's.
    """
    if not isinstance(buffer, bytes):
        buffer = bytes(buffer)
    opcode = request_opcode(request)
    header = decode_out_header(buffer)
    request_header = request[0]
    if header.unique != request_header.unique:
        raise ProtocolError(
            "out_header.unique", f"{header.unique} answers not request {request_header.unique}"
        )
    if opcode in _NO_REPLY:
        raise ProtocolError("out_header.unique", f"{Opcode(opcode).name} takes no reply")
    error = header.error
    if error:
        if not -ERRNO_LIMIT < error < 0:
            raise ProtocolError("out_header.error", f"{error} is not a -errno")
        if header.len != _HEADER_SIZE:
            raise ProtocolError("out_header.len", "an error reply carries no payload")
        return Reply(header, None)
    payload = buffer[_HEADER_SIZE:]
    return Reply(header, _decode_body(opcode, payload, request, negotiated))


def _decode_body(opcode: int, payload: bytes, request: Any, negotiated: Negotiated) -> ReplyBody:
    shape = _STRUCT_REPLIES.get(opcode)
    if shape is not None:
        layout, size_attribute = shape
        size = getattr(negotiated, size_attribute) if size_attribute else layout.size
        return typing.cast(ReplyBody, _fixed(payload, layout, size, Opcode(opcode).name))
    if opcode == Opcode.READ:
        return _at_most(payload, request.arg.size, "data")
    if opcode in _EMPTY_REPLIES:
        if payload:
            raise ProtocolError("out_header.len", f"{Opcode(opcode).name} reply has a payload")
        return None
    if opcode in _CREATE_REPLIES:
        entry_size = negotiated.entry_out_size
        if len(payload) != entry_size + OPEN_OUT.size:
            raise ProtocolError(
                "create_out", f"{len(payload)} bytes, need {entry_size + OPEN_OUT.size}"
            )
        entry = ENTRY_OUT.unpack_prefix(payload, 0, entry_size)
        return CreateOut(entry, OPEN_OUT.unpack(payload, entry_size))
    if opcode == Opcode.READDIR:
        return decode_dirents(_at_most(payload, request.arg.size, "dirents"))
    if opcode == Opcode.READDIRPLUS:
        return decode_direntplus(_at_most(payload, request.arg.size, "dirents"))
    if opcode in _XATTR_REPLIES:
        if request.arg.size == 0:
            return GETXATTR_OUT.unpack(_exactly(payload, GETXATTR_OUT.size, "getxattr_out"))
        return _at_most(payload, request.arg.size, "value")
    if opcode == Opcode.READLINK:
        return _at_most(payload, READLINK_MAX, "target")
    if opcode == Opcode.INIT:
        if len(payload) < 8:
            raise ProtocolError("init_out", f"{len(payload)} bytes, need at least 8")
        if len(payload) > INIT_OUT.size:
            raise ProtocolError("init_out", f"{len(payload)} bytes, at most {INIT_OUT.size}")
        return INIT_OUT.unpack_prefix(payload, 0, len(payload))
    if opcode == Opcode.IOCTL:
        if len(payload) < IOCTL_OUT.size:
            raise ProtocolError("ioctl_out", f"{len(payload)} bytes, need {IOCTL_OUT.size}")
        out = IOCTL_OUT.unpack(payload)
        data = payload[IOCTL_OUT.size :]
        if out.flags & IoctlFlag.RETRY:
            iovs = out.in_iovs + out.out_iovs
            if out.in_iovs > IOCTL_MAX_IOV or out.out_iovs > IOCTL_MAX_IOV or iovs > IOCTL_MAX_IOV:
                raise ProtocolError("ioctl_out.in_iovs", f"{iovs} iovecs, at most {IOCTL_MAX_IOV}")
            if len(data) != iovs * IOCTL_IOVEC.size:
                raise ProtocolError("ioctl_out.data", f"{len(data)} bytes for {iovs} iovecs")
        else:
            _at_most(data, request.arg.out_size, "ioctl_out.data")
        return IoctlReply(out, data)
    if opcode == Opcode.CUSE_INIT:
        if len(payload) < CUSE_INIT_OUT.size:
            raise ProtocolError("cuse_init_out", f"{len(payload)} bytes, need {CUSE_INIT_OUT.size}")
        info = _at_most(payload[CUSE_INIT_OUT.size :], CUSE_INIT_INFO_MAX, "cuse_init.info")
        return CuseInitReply(CUSE_INIT_OUT.unpack(payload), info)
    raise ProtocolError("in_header.opcode", f"no reply shape for opcode {opcode}")


# ------------------------------------------------------------------ encoding (daemon side)


def encode_error(unique: int, error: int) -> bytes:
    """An error reply: ``error`` is a positive errno (1..511) or 0 for plain success."""
    if not 0 <= error < ERRNO_LIMIT:
        raise ProtocolError("out_header.error", f"errno {error} not in 0..{ERRNO_LIMIT - 1}")
    return OUT_HEADER.pack(OutHeader(_HEADER_SIZE, -error, unique))


def _expect(body: object, kind: type | tuple[type, ...], opcode: int) -> None:
    if not isinstance(body, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ProtocolError(
            "body", f"{Opcode(opcode).name} reply needs {names}, got {type(body).__name__}"
        )


def _encode_entries(body: object, opcode: int) -> bytes:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)  # already encoded with encode_dirent(plus)
    _expect(body, (tuple, list), opcode)
    assert isinstance(body, tuple | list)
    if opcode == Opcode.READDIRPLUS:
        return b"".join(encode_direntplus(entry) for entry in body)
    return b"".join(encode_dirent(entry) for entry in body)


def encode_reply_payload(opcode: int, body: object, negotiated: Negotiated = LATEST) -> bytes:
    """The payload (no header) of a successful reply to ``opcode``."""
    shape = _STRUCT_REPLIES.get(opcode)
    if shape is not None:
        layout, size_attribute = shape
        _expect(body, layout.cls, opcode)
        size = getattr(negotiated, size_attribute) if size_attribute else layout.size
        return layout.pack_prefix(body, size)
    if opcode in (Opcode.READ, Opcode.READLINK):
        _expect(body, (bytes, bytearray, memoryview), opcode)
        return bytes(typing.cast(bytes, body))
    if opcode in _EMPTY_REPLIES:
        if body is not None:
            raise ProtocolError("body", f"{Opcode(opcode).name} reply has no payload")
        return b""
    if opcode in _CREATE_REPLIES:
        _expect(body, CreateOut, opcode)
        assert isinstance(body, CreateOut)
        entry = ENTRY_OUT.pack_prefix(body.entry, negotiated.entry_out_size)
        return entry + OPEN_OUT.pack(body.open)
    if opcode in (Opcode.READDIR, Opcode.READDIRPLUS):
        return _encode_entries(body, opcode)
    if opcode in _XATTR_REPLIES:
        if isinstance(body, GetxattrOut):
            return GETXATTR_OUT.pack(body)
        _expect(body, (bytes, bytearray, memoryview), opcode)
        return bytes(typing.cast(bytes, body))
    if opcode == Opcode.INIT:
        _expect(body, InitOut, opcode)
        return INIT_OUT.pack_prefix(typing.cast(InitOut, body), negotiated.init_out_size)
    if opcode == Opcode.IOCTL:
        _expect(body, IoctlReply, opcode)
        assert isinstance(body, IoctlReply)
        return IOCTL_OUT.pack(body.out) + bytes(body.data)
    if opcode == Opcode.CUSE_INIT:
        _expect(body, CuseInitReply, opcode)
        assert isinstance(body, CuseInitReply)
        return CUSE_INIT_OUT.pack(body.out) + bytes(body.info)
    if opcode in _NO_REPLY:
        raise ProtocolError("in_header.opcode", f"{Opcode(opcode).name} takes no reply")
    raise ProtocolError("in_header.opcode", f"unknown opcode {opcode}")


def encode_reply(
    unique: int, opcode: int, body: object = None, negotiated: Negotiated = LATEST
) -> bytes:
    """A successful reply to the request ``unique`` of ``opcode`` (daemon side).

    ``body`` is the op's payload type (see :data:`ReplyBody`); READDIR(PLUS)
    also take bytes built with :func:`encode_dirent`/:func:`encode_direntplus`.
    """
    payload = encode_reply_payload(opcode, body, negotiated)
    return OUT_HEADER.pack(OutHeader(_HEADER_SIZE + len(payload), 0, unique)) + payload


def encode_reply_parts(
    unique: int, opcode: int, body: object = None, negotiated: Negotiated = LATEST
) -> tuple[bytes, bytes]:
    """Like :func:`encode_reply` but as (header, payload) for writev/sendmsg."""
    payload = encode_reply_payload(opcode, body, negotiated)
    return OUT_HEADER.pack(OutHeader(_HEADER_SIZE + len(payload), 0, unique)), payload


def encode_data_reply(
    unique: int, data: bytes | bytearray | memoryview
) -> tuple[bytes, bytes | bytearray | memoryview]:
    """Header and data of a READ/READLINK/xattr-value reply, data not copied."""
    return OUT_HEADER.pack(OutHeader(_HEADER_SIZE + len(data), 0, unique)), data


def entries_fit(entries: Sequence[Dirent], limit: int) -> int:
    """How many leading ``entries`` fit in a READDIR reply of ``limit`` bytes."""
    used = 0
    for count, entry in enumerate(entries):
        used += dirent_size(len(entry.name))
        if used > limit:
            return count
    return len(entries)
