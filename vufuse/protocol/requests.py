"""Requests, kernel -> daemon: one class per opcode, and their codec.

A request is ``in_header`` + the op's argument struct + names (each ending in
NUL) + data + request extensions (7.38; the last ``total_extlen * 8`` bytes).
Each request class lists its parts in wire order; the field names say what
kind of part it is (``arg``, a name, ``data``/``value``, an array,
``extensions``), and the codec is derived from that one declaration.

The kernel emulator builds requests and calls :func:`encode_request`; the
daemon side calls :func:`decode_request` on what it reads from the device.
``header.len``, ``header.opcode`` and ``header.total_extlen`` are computed by
the encoder from the request's class and parts.

Sizes follow the agreed minor exactly as the kernel sends them (e.g.
write_in is 24 bytes before 7.9, mknod_in 8 before 7.12, setxattr_in 16 only
with FUSE_SETXATTR_EXT); where the kernel sends today's struct to an old peer
(read_in, getattr_in, lk_in, ...) the decoder also accepts the old size.
Anything else that does not add up to ``header.len`` is a ProtocolError.
Extensions count only from 7.38; on an op whose class has no ``extensions``
field they are dropped (a newer kernel may extend more ops).
"""

from __future__ import annotations

import typing
from typing import Any, NamedTuple

from ._layout import Layout, layout_of
from .constants import OPCODE_SINCE_MINOR, Opcode
from .errors import ProtocolError
from .negotiate import LATEST, Negotiated, init_in_size
from .structs import (
    FORGET_ONE,
    IN_HEADER,
    INIT_IN,
    REMOVEMAPPING_ONE,
    AccessIn,
    BatchForgetIn,
    BmapIn,
    CopyFileRangeIn,
    CreateIn,
    CuseInitIn,
    FallocateIn,
    FlushIn,
    ForgetIn,
    ForgetOne,
    FsyncIn,
    GetattrIn,
    GetxattrIn,
    InHeader,
    InitIn,
    InterruptIn,
    IoctlIn,
    LinkIn,
    LkIn,
    LseekIn,
    MkdirIn,
    MknodIn,
    NotifyRetrieveIn,
    OpenIn,
    PollIn,
    ReadIn,
    ReleaseIn,
    RemovemappingIn,
    RemovemappingOne,
    Rename2In,
    RenameIn,
    SetattrIn,
    SetupmappingIn,
    SetxattrIn,
    StatxIn,
    SyncfsIn,
    WriteIn,
)

# ----------------------------------------------------------------- request classes


class LookupRequest(NamedTuple):
    """LOOKUP ``name`` in directory ``header.nodeid``."""

    header: InHeader
    name: bytes


class ForgetRequest(NamedTuple):
    """FORGET: drop lookups of ``header.nodeid``; never answered."""

    header: InHeader
    arg: ForgetIn


class GetattrRequest(NamedTuple):
    """GETATTR of ``header.nodeid``."""

    header: InHeader
    arg: GetattrIn


class SetattrRequest(NamedTuple):
    """SETATTR: change the attributes ``arg.valid`` names."""

    header: InHeader
    arg: SetattrIn


class ReadlinkRequest(NamedTuple):
    """READLINK of ``header.nodeid``."""

    header: InHeader


class SymlinkRequest(NamedTuple):
    """SYMLINK: create ``name`` in ``header.nodeid`` pointing at ``target``."""

    header: InHeader
    name: bytes
    target: bytes
    extensions: bytes = b""


class MknodRequest(NamedTuple):
    """MKNOD ``name`` in ``header.nodeid``."""

    header: InHeader
    arg: MknodIn
    name: bytes
    extensions: bytes = b""


class MkdirRequest(NamedTuple):
    """MKDIR ``name`` in ``header.nodeid``."""

    header: InHeader
    arg: MkdirIn
    name: bytes
    extensions: bytes = b""


class UnlinkRequest(NamedTuple):
    """UNLINK ``name`` from ``header.nodeid``."""

    header: InHeader
    name: bytes


class RmdirRequest(NamedTuple):
    """RMDIR ``name`` from ``header.nodeid``."""

    header: InHeader
    name: bytes


class RenameRequest(NamedTuple):
    """RENAME ``old_name`` in ``header.nodeid`` to ``new_name`` in ``arg.newdir``."""

    header: InHeader
    arg: RenameIn
    old_name: bytes
    new_name: bytes


class LinkRequest(NamedTuple):
    """LINK: a new ``name`` in ``header.nodeid`` for ``arg.oldnodeid``."""

    header: InHeader
    arg: LinkIn
    name: bytes


class OpenRequest(NamedTuple):
    """OPEN ``header.nodeid``."""

    header: InHeader
    arg: OpenIn


class ReadRequest(NamedTuple):
    """READ ``arg.size`` bytes at ``arg.offset``."""

    header: InHeader
    arg: ReadIn


class WriteRequest(NamedTuple):
    """WRITE ``data`` (``arg.size`` bytes) at ``arg.offset``."""

    header: InHeader
    arg: WriteIn
    data: bytes


class StatfsRequest(NamedTuple):
    """STATFS of the filesystem holding ``header.nodeid``."""

    header: InHeader


class ReleaseRequest(NamedTuple):
    """RELEASE: the last reference to an open file went away."""

    header: InHeader
    arg: ReleaseIn


class FsyncRequest(NamedTuple):
    """FSYNC an open file."""

    header: InHeader
    arg: FsyncIn


class SetxattrRequest(NamedTuple):
    """SETXATTR ``name`` to ``value`` (``arg.size`` bytes)."""

    header: InHeader
    arg: SetxattrIn
    name: bytes
    value: bytes


class GetxattrRequest(NamedTuple):
    """GETXATTR ``name``; ``arg.size`` 0 asks for the value's size."""

    header: InHeader
    arg: GetxattrIn
    name: bytes


class ListxattrRequest(NamedTuple):
    """LISTXATTR; ``arg.size`` 0 asks for the list's size."""

    header: InHeader
    arg: GetxattrIn


class RemovexattrRequest(NamedTuple):
    """REMOVEXATTR ``name``."""

    header: InHeader
    name: bytes


class FlushRequest(NamedTuple):
    """FLUSH: a close() of a descriptor (lock_owner releases POSIX locks)."""

    header: InHeader
    arg: FlushIn


class InitRequest(NamedTuple):
    """INIT: the first request; see :mod:`.negotiate`."""

    header: InHeader
    arg: InitIn


class OpendirRequest(NamedTuple):
    """OPENDIR ``header.nodeid``."""

    header: InHeader
    arg: OpenIn


class ReaddirRequest(NamedTuple):
    """READDIR up to ``arg.size`` bytes of dirents from ``arg.offset``."""

    header: InHeader
    arg: ReadIn


class ReleasedirRequest(NamedTuple):
    """RELEASEDIR."""

    header: InHeader
    arg: ReleaseIn


class FsyncdirRequest(NamedTuple):
    """FSYNCDIR."""

    header: InHeader
    arg: FsyncIn


class GetlkRequest(NamedTuple):
    """GETLK: test for a conflicting lock."""

    header: InHeader
    arg: LkIn


class SetlkRequest(NamedTuple):
    """SETLK: take or release a lock without waiting."""

    header: InHeader
    arg: LkIn


class SetlkwRequest(NamedTuple):
    """SETLKW: take a lock, waiting for it."""

    header: InHeader
    arg: LkIn


class AccessRequest(NamedTuple):
    """ACCESS check with ``arg.mask``."""

    header: InHeader
    arg: AccessIn


class CreateRequest(NamedTuple):
    """CREATE and open ``name`` in ``header.nodeid``."""

    header: InHeader
    arg: CreateIn
    name: bytes
    extensions: bytes = b""


class InterruptRequest(NamedTuple):
    """INTERRUPT the request whose unique is ``arg.unique``."""

    header: InHeader
    arg: InterruptIn


class BmapRequest(NamedTuple):
    """BMAP (fuseblk only)."""

    header: InHeader
    arg: BmapIn


class DestroyRequest(NamedTuple):
    """DESTROY: the filesystem is being unmounted (fuseblk)."""

    header: InHeader


class IoctlRequest(NamedTuple):
    """IOCTL with ``data`` (``arg.in_size`` bytes) of input."""

    header: InHeader
    arg: IoctlIn
    data: bytes


class PollRequest(NamedTuple):
    """POLL an open file."""

    header: InHeader
    arg: PollIn


class NotifyReplyRequest(NamedTuple):
    """NOTIFY_REPLY: cached data answering a RETRIEVE; unique = notify_unique; never answered."""

    header: InHeader
    arg: NotifyRetrieveIn
    data: bytes


class BatchForgetRequest(NamedTuple):
    """BATCH_FORGET: many forgets at once; never answered."""

    header: InHeader
    arg: BatchForgetIn
    forgets: tuple[ForgetOne, ...]


class FallocateRequest(NamedTuple):
    """FALLOCATE."""

    header: InHeader
    arg: FallocateIn


class ReaddirplusRequest(NamedTuple):
    """READDIRPLUS: dirents with their entry_out."""

    header: InHeader
    arg: ReadIn


class Rename2Request(NamedTuple):
    """RENAME2 with renameat2 ``arg.flags``."""

    header: InHeader
    arg: Rename2In
    old_name: bytes
    new_name: bytes


class LseekRequest(NamedTuple):
    """LSEEK (SEEK_DATA / SEEK_HOLE)."""

    header: InHeader
    arg: LseekIn


class CopyFileRangeRequest(NamedTuple):
    """COPY_FILE_RANGE (reply: write_out, so at most 4 GiB - 1)."""

    header: InHeader
    arg: CopyFileRangeIn


class SetupmappingRequest(NamedTuple):
    """SETUPMAPPING (DAX)."""

    header: InHeader
    arg: SetupmappingIn


class RemovemappingRequest(NamedTuple):
    """REMOVEMAPPING (DAX)."""

    header: InHeader
    arg: RemovemappingIn
    mappings: tuple[RemovemappingOne, ...]


class SyncfsRequest(NamedTuple):
    """SYNCFS."""

    header: InHeader
    arg: SyncfsIn


class TmpfileRequest(NamedTuple):
    """TMPFILE: create an unnamed file in ``header.nodeid``."""

    header: InHeader
    arg: CreateIn
    name: bytes
    extensions: bytes = b""


class StatxRequest(NamedTuple):
    """STATX."""

    header: InHeader
    arg: StatxIn


class CopyFileRange64Request(NamedTuple):
    """COPY_FILE_RANGE_64 (7.45; reply: copy_file_range_out)."""

    header: InHeader
    arg: CopyFileRangeIn


class CuseInitRequest(NamedTuple):
    """CUSE_INIT: INIT of a character device in userspace."""

    header: InHeader
    arg: CuseInitIn


Request = (
    LookupRequest | ForgetRequest | GetattrRequest | SetattrRequest | ReadlinkRequest
    | SymlinkRequest | MknodRequest | MkdirRequest | UnlinkRequest | RmdirRequest
    | RenameRequest | LinkRequest | OpenRequest | ReadRequest | WriteRequest | StatfsRequest
    | ReleaseRequest | FsyncRequest | SetxattrRequest | GetxattrRequest | ListxattrRequest
    | RemovexattrRequest | FlushRequest | InitRequest | OpendirRequest | ReaddirRequest
    | ReleasedirRequest | FsyncdirRequest | GetlkRequest | SetlkRequest | SetlkwRequest
    | AccessRequest | CreateRequest | InterruptRequest | BmapRequest | DestroyRequest
    | IoctlRequest | PollRequest | NotifyReplyRequest | BatchForgetRequest | FallocateRequest
    | ReaddirplusRequest | Rename2Request | LseekRequest | CopyFileRangeRequest
    | SetupmappingRequest | RemovemappingRequest | SyncfsRequest | TmpfileRequest
    | StatxRequest | CopyFileRange64Request | CuseInitRequest
)  # fmt: skip
"""Any decoded request; match on the class or on ``header.opcode``."""

#: The request class of every opcode.
REQUEST_CLASSES: dict[Opcode, type[Any]] = {
    Opcode.LOOKUP: LookupRequest,
    Opcode.FORGET: ForgetRequest,
    Opcode.GETATTR: GetattrRequest,
    Opcode.SETATTR: SetattrRequest,
    Opcode.READLINK: ReadlinkRequest,
    Opcode.SYMLINK: SymlinkRequest,
    Opcode.MKNOD: MknodRequest,
    Opcode.MKDIR: MkdirRequest,
    Opcode.UNLINK: UnlinkRequest,
    Opcode.RMDIR: RmdirRequest,
    Opcode.RENAME: RenameRequest,
    Opcode.LINK: LinkRequest,
    Opcode.OPEN: OpenRequest,
    Opcode.READ: ReadRequest,
    Opcode.WRITE: WriteRequest,
    Opcode.STATFS: StatfsRequest,
    Opcode.RELEASE: ReleaseRequest,
    Opcode.FSYNC: FsyncRequest,
    Opcode.SETXATTR: SetxattrRequest,
    Opcode.GETXATTR: GetxattrRequest,
    Opcode.LISTXATTR: ListxattrRequest,
    Opcode.REMOVEXATTR: RemovexattrRequest,
    Opcode.FLUSH: FlushRequest,
    Opcode.INIT: InitRequest,
    Opcode.OPENDIR: OpendirRequest,
    Opcode.READDIR: ReaddirRequest,
    Opcode.RELEASEDIR: ReleasedirRequest,
    Opcode.FSYNCDIR: FsyncdirRequest,
    Opcode.GETLK: GetlkRequest,
    Opcode.SETLK: SetlkRequest,
    Opcode.SETLKW: SetlkwRequest,
    Opcode.ACCESS: AccessRequest,
    Opcode.CREATE: CreateRequest,
    Opcode.INTERRUPT: InterruptRequest,
    Opcode.BMAP: BmapRequest,
    Opcode.DESTROY: DestroyRequest,
    Opcode.IOCTL: IoctlRequest,
    Opcode.POLL: PollRequest,
    Opcode.NOTIFY_REPLY: NotifyReplyRequest,
    Opcode.BATCH_FORGET: BatchForgetRequest,
    Opcode.FALLOCATE: FallocateRequest,
    Opcode.READDIRPLUS: ReaddirplusRequest,
    Opcode.RENAME2: Rename2Request,
    Opcode.LSEEK: LseekRequest,
    Opcode.COPY_FILE_RANGE: CopyFileRangeRequest,
    Opcode.SETUPMAPPING: SetupmappingRequest,
    Opcode.REMOVEMAPPING: RemovemappingRequest,
    Opcode.SYNCFS: SyncfsRequest,
    Opcode.TMPFILE: TmpfileRequest,
    Opcode.STATX: StatxRequest,
    Opcode.COPY_FILE_RANGE_64: CopyFileRange64Request,
    Opcode.CUSE_INIT: CuseInitRequest,
}

# ----------------------------------------------------------------- the codec plans

_NAME_FIELDS = frozenset({"name", "target", "old_name", "new_name"})
_DATA_FIELDS = frozenset({"data", "value"})
_ARRAY_FIELDS: dict[str, Layout[Any]] = {"forgets": FORGET_ONE, "mappings": REMOVEMAPPING_ONE}
# Which argument field says how many data bytes follow.
_DATA_SIZE_FIELD = {
    Opcode.WRITE: "size",
    Opcode.SETXATTR: "size",
    Opcode.NOTIFY_REPLY: "size",
    Opcode.IOCTL: "in_size",
}
# Ops whose argument the kernel sends at today's size even to an old daemon,
# which reads only the old prefix: (first minor with today's size, old size).
_OLD_ARG_SIZES = {
    Opcode.GETATTR: (9, 0),
    Opcode.READ: (9, 24),
    Opcode.READDIR: (9, 24),
    Opcode.READDIRPLUS: (9, 24),
    Opcode.GETLK: (9, 40),
    Opcode.SETLK: (9, 40),
    Opcode.SETLKW: (9, 40),
    Opcode.RELEASE: (8, 16),
    Opcode.RELEASEDIR: (8, 16),
    Opcode.FLUSH: (7, 16),
}
_HEADER_SIZE = IN_HEADER.size
_EXTENSIONS_SINCE_MINOR = 38


class _Plan:
    """How one opcode's request is laid out after the header."""

    __slots__ = ("opcode", "cls", "name", "arg", "names", "tail", "tail_field", "array",
                 "size_field", "has_extensions", "since_minor")  # fmt: skip

    def __init__(self, opcode: Opcode, cls: type[Any]) -> None:
        self.opcode = opcode
        self.cls = cls
        self.name = opcode.name
        hints = typing.get_type_hints(cls)
        fields: tuple[str, ...] = cls._fields
        self.arg: Layout[Any] | None = None
        if "arg" in fields:
            self.arg = layout_of(hints["arg"])
        self.names = tuple(f for f in fields if f in _NAME_FIELDS)
        self.tail: str | None = None  # "data" or "array" after the names
        self.tail_field = ""
        self.array: Layout[Any] | None = None
        for f in fields:
            if f in _DATA_FIELDS:
                self.tail, self.tail_field = "data", f
            elif f in _ARRAY_FIELDS:
                self.tail, self.tail_field, self.array = "array", f, _ARRAY_FIELDS[f]
        self.size_field = _DATA_SIZE_FIELD.get(opcode, "count")
        self.has_extensions = "extensions" in fields
        self.since_minor = OPCODE_SINCE_MINOR.get(opcode, 0)


_PLANS: dict[int, _Plan] = {op: _Plan(op, cls) for op, cls in REQUEST_CLASSES.items()}
_PLANS_BY_CLASS: dict[type[Any], _Plan] = {plan.cls: plan for plan in _PLANS.values()}


def request_opcode(request: Request) -> Opcode:
    """The opcode of a request object, from its class (``header.opcode`` may be unset)."""
    plan = _PLANS_BY_CLASS.get(type(request))
    if plan is None:
        raise ProtocolError("request", f"not a request: {type(request).__name__}")
    return plan.opcode


def arg_size(opcode: int, negotiated: Negotiated) -> int:
    """Bytes of ``opcode``'s argument struct the kernel sends at ``negotiated``."""
    if opcode == Opcode.WRITE:
        return negotiated.write_in_size
    if opcode == Opcode.MKNOD:
        return negotiated.mknod_in_size
    if opcode == Opcode.CREATE:
        return negotiated.create_in_size
    if opcode == Opcode.SETXATTR:
        return negotiated.setxattr_in_size
    arg = _PLANS[opcode].arg
    return arg.size if arg is not None else 0


def _accepted_arg_sizes(opcode: int, negotiated: Negotiated) -> tuple[int, ...]:
    size = arg_size(opcode, negotiated)
    old = _OLD_ARG_SIZES.get(Opcode(opcode))
    if old is not None and negotiated.minor < old[0]:
        return (size, old[1])
    return (size,)


_SIZE_TABLES: dict[tuple[int, int], dict[int, tuple[int, ...]]] = {}


def _size_table(negotiated: Negotiated) -> dict[int, tuple[int, ...]]:
    key = (negotiated.minor, negotiated.setxattr_in_size)
    table = _SIZE_TABLES.get(key)
    if table is None:
        table = {op: _accepted_arg_sizes(op, negotiated) for op in _PLANS if op != Opcode.INIT}
        _SIZE_TABLES[key] = table
    return table


# ----------------------------------------------------------------- decoding


def decode_in_header(buffer: bytes | bytearray | memoryview) -> InHeader:
    """Decode and check just the header (length agreement with the buffer)."""
    size = len(buffer)
    if size < _HEADER_SIZE:
        raise ProtocolError("in_header", f"{size} bytes, need {_HEADER_SIZE}")
    header = IN_HEADER.unpack(buffer)
    if header.len != size:
        raise ProtocolError("in_header.len", f"says {header.len}, message has {size} bytes")
    return header


def _split_name(buffer: bytes, start: int, end: int, field: str) -> tuple[bytes, int]:
    nul = buffer.find(b"\0", start, end)
    if nul < 0:
        raise ProtocolError(field, "not NUL-terminated")
    return buffer[start:nul], nul + 1


def decode_request(
    buffer: bytes | bytearray | memoryview, negotiated: Negotiated = LATEST
) -> Request:
    """Decode one request as read from the device (daemon side).

    Raises :class:`ProtocolError` for anything the kernel would not send:
    short buffers, a header length that disagrees, unknown opcodes, argument
    sizes wrong for the agreed minor, names without NUL, data sizes that
    disagree with the argument, trailing bytes.
    """
    if not isinstance(buffer, bytes):
        buffer = bytes(buffer)
    header = decode_in_header(buffer)
    plan = _PLANS.get(header.opcode)
    if plan is None:
        raise ProtocolError("in_header.opcode", f"unknown opcode {header.opcode}")
    end = len(buffer)
    extensions = b""
    if header.total_extlen and negotiated.minor >= _EXTENSIONS_SINCE_MINOR:
        ext_size = header.total_extlen * 8
        if ext_size > end - _HEADER_SIZE:
            raise ProtocolError("in_header.total_extlen", f"{ext_size} bytes exceed the message")
        end -= ext_size
        extensions = buffer[end:]
    position = _HEADER_SIZE
    parts: list[Any] = [header]
    arg_layout = plan.arg
    if arg_layout is not None:
        if plan.opcode == Opcode.INIT:
            available = end - position
            if available < 8:
                raise ProtocolError("init_in", f"{available} bytes, need at least 8")
            size = min(available, INIT_IN.size)
            arg = INIT_IN.unpack_prefix(buffer, position, size)
            position = end  # a newer kernel's longer init_in is fine
        else:
            sizes = _size_table(negotiated)[plan.opcode]
            size = sizes[0]
            if plan.names or plan.tail:
                if end - position < size:
                    raise ProtocolError(arg_layout.name, f"{end - position} bytes, need {size}")
            elif end - position not in sizes:
                raise ProtocolError(
                    arg_layout.name,
                    f"{end - position} bytes, expected {' or '.join(map(str, sizes))}",
                )
            else:
                size = end - position
            if size == arg_layout.size:
                arg = arg_layout.unpack(buffer, position)
            else:
                arg = arg_layout.unpack_prefix(buffer, position, size)
            position += size
        parts.append(arg)
    for field in plan.names:
        name, position = _split_name(buffer, position, end, field)
        parts.append(name)
    tail = plan.tail
    if tail == "data":
        want = getattr(parts[1], plan.size_field)
        if end - position != want:
            raise ProtocolError(
                plan.tail_field, f"{end - position} bytes, {plan.size_field} says {want}"
            )
        parts.append(buffer[position:end])
        position = end
    elif tail == "array":
        element = plan.array
        assert element is not None
        count = parts[1].count
        if end - position != count * element.size:
            raise ProtocolError(plan.tail_field, f"{end - position} bytes for count {count}")
        unpack = element.struct.iter_unpack
        make = element.from_flat
        parts.append(tuple(make(flat) for flat in unpack(buffer[position:end])))
        position = end
    if position != end:
        raise ProtocolError(plan.name.lower(), f"{end - position} unexpected trailing bytes")
    if plan.has_extensions:
        parts.append(extensions)
    return typing.cast(Request, tuple.__new__(plan.cls, parts))


# ----------------------------------------------------------------- encoding


def _name_bytes(value: object, field: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProtocolError(field, f"must be bytes, got {type(value).__name__}")
    if b"\0" in value:
        raise ProtocolError(field, "contains NUL")
    return value + b"\0"


def encode_request(request: Request, negotiated: Negotiated = LATEST) -> bytes:
    """Encode a request as the kernel writes it to the device (kernel side).

    ``header.len``, ``header.opcode`` and ``header.total_extlen`` come from the
    request itself.  Raises :class:`ProtocolError` for an opcode the agreed
    minor does not have, names containing NUL, data whose length disagrees
    with the argument, or field values out of range.
    """
    plan = _PLANS_BY_CLASS.get(type(request))
    fields = typing.cast(tuple[Any, ...], request)
    if plan is None:
        raise ProtocolError("request", f"not a request: {type(request).__name__}")
    if negotiated.minor < plan.since_minor:
        raise ProtocolError(
            "in_header.opcode",
            f"{plan.name} needs 7.{plan.since_minor}, agreed 7.{negotiated.minor}",
        )
    parts: list[bytes] = []
    index = 1
    arg_layout = plan.arg
    arg: Any = None
    if arg_layout is not None:
        arg = fields[1]
        if plan.opcode == Opcode.INIT:
            parts.append(INIT_IN.pack_prefix(arg, init_in_size(arg.minor)))
        else:
            parts.append(arg_layout.pack_prefix(arg, arg_size(plan.opcode, negotiated)))
        index = 2
    for field in plan.names:
        parts.append(_name_bytes(fields[index], field))
        index += 1
    if plan.tail == "data":
        data = fields[index]
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProtocolError(plan.tail_field, "must be bytes")
        want = getattr(arg, plan.size_field)
        if len(data) != want:
            raise ProtocolError(
                plan.tail_field, f"{len(data)} bytes, {plan.size_field} says {want}"
            )
        parts.append(bytes(data))
        index += 1
    elif plan.tail == "array":
        items = fields[index]
        assert plan.array is not None
        if len(items) != arg.count:
            raise ProtocolError(plan.tail_field, f"{len(items)} items for count {arg.count}")
        parts.extend(plan.array.pack(item) for item in items)
        index += 1
    total_extlen = 0
    if plan.has_extensions:
        extensions = fields[index]
        if extensions:
            if negotiated.minor < _EXTENSIONS_SINCE_MINOR:
                raise ProtocolError("extensions", f"need 7.38, agreed 7.{negotiated.minor}")
            if len(extensions) % 8:
                raise ProtocolError("extensions", f"{len(extensions)} bytes, not a multiple of 8")
            total_extlen = len(extensions) // 8
            if total_extlen > 0xFFFF:
                raise ProtocolError("extensions", "too long for in_header.total_extlen")
            parts.append(bytes(extensions))
    body = b"".join(parts)
    header = fields[0]
    if not isinstance(header, InHeader):
        raise ProtocolError("in_header", f"expected InHeader, got {type(header).__name__}")
    header = header._replace(
        len=_HEADER_SIZE + len(body), opcode=plan.opcode, total_extlen=total_extlen
    )
    return IN_HEADER.pack(header) + body
