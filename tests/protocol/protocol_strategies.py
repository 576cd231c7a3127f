"""Hypothesis strategies for FUSE protocol values, derived from the struct declarations.

Deriving them from the NamedTuple annotations (as the codec does) means a new
struct is covered by the property tests the moment it is declared.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from hypothesis import strategies as st

from vufuse import protocol as p
from vufuse.protocol import _layout
from vufuse.protocol.negotiate import Negotiated
from vufuse.protocol.replies import CreateOut, CuseInitReply, Dirent, DirentPlus, IoctlReply
from vufuse.protocol.requests import REQUEST_CLASSES

MINORS = st.integers(min_value=0, max_value=p.KERNEL_MINOR_VERSION)
#: The minors real daemons negotiate (bazil/rclone, libfuse2, go-fuse, libfuse3, today).
REAL_MINORS = (8, 12, 19, 23, 28, 31, 36, 38, 40, 45)


def struct_values(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Any value of a wire struct class."""
    hints = typing.get_type_hints(cls, include_extras=True)
    parts: list[st.SearchStrategy[Any]] = []
    for field in cls._fields:
        hint = hints[field]
        if _layout.is_struct(hint):
            parts.append(struct_values(hint))
            continue
        assert typing.get_origin(hint) is Annotated
        kind = typing.get_args(hint)[1]
        if isinstance(kind, _layout.Bytes):
            parts.append(st.binary(min_size=kind.size, max_size=kind.size))
        else:
            if kind.signed:
                low, high = -(1 << (kind.bits - 1)), (1 << (kind.bits - 1)) - 1
            else:
                low, high = 0, (1 << kind.bits) - 1
            parts.append(st.integers(min_value=low, max_value=high))
    return st.tuples(*parts).map(lambda values: cls(*values))


def negotiated_at(minor: int, flags: int = 0) -> Negotiated:
    return Negotiated(minor=minor, flags=flags)


negotiated_values = st.builds(
    Negotiated,
    minor=MINORS,
    flags=st.sampled_from([0, int(p.InitFlag.SETXATTR_EXT)]),
)

names = st.binary(min_size=0, max_size=40).filter(lambda b: b"\0" not in b)
dirent_names = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b)
headers = struct_values(p.InHeader)


@st.composite
def requests_for(draw: st.DrawFn, opcode: p.Opcode, negotiated: Negotiated) -> Any:
    """A valid request of ``opcode`` at ``negotiated``."""
    cls = REQUEST_CLASSES[opcode]
    hints = typing.get_type_hints(cls)
    header = draw(headers)
    values: list[Any] = [header]
    arg: Any = None
    for field in cls._fields[1:]:
        if field == "arg":
            arg = draw(struct_values(hints["arg"]))
            if opcode == p.Opcode.INIT:
                arg = arg._replace(minor=draw(MINORS))
            values.append(arg)
        elif field in ("name", "target", "old_name", "new_name"):
            values.append(draw(names))
        elif field in ("data", "value"):
            data = draw(st.binary(max_size=300))
            size_field = "in_size" if opcode == p.Opcode.IOCTL else "size"
            arg = arg._replace(**{size_field: len(data)})
            values[1] = arg
            values.append(data)
        elif field in ("forgets", "mappings"):
            element = p.ForgetOne if field == "forgets" else p.RemovemappingOne
            items = tuple(draw(st.lists(struct_values(element), max_size=5)))
            arg = arg._replace(count=len(items))
            values[1] = arg
            values.append(items)
        elif field == "extensions":
            if negotiated.minor >= 38:
                words = draw(st.integers(min_value=0, max_value=4))
                values.append(draw(st.binary(min_size=8 * words, max_size=8 * words)))
            else:
                values.append(b"")
        else:
            raise AssertionError(field)
    return cls(*values)


@st.composite
def opcodes_and_negotiated(draw: st.DrawFn, replies: bool = False) -> tuple[p.Opcode, Negotiated]:
    negotiated = draw(negotiated_values)
    available = [
        op
        for op in REQUEST_CLASSES
        if p.OPCODE_SINCE_MINOR.get(op, 0) <= negotiated.minor
        and not (replies and op in p.NO_REPLY_OPCODES)
    ]
    return draw(st.sampled_from(available)), negotiated


entries = st.lists(
    st.builds(
        Dirent,
        ino=st.integers(0, 2**64 - 1),
        off=st.integers(0, 2**64 - 1),
        type=st.integers(0, 15),
        name=dirent_names,
    ),
    max_size=5,
).map(tuple)


@st.composite
def reply_cases(draw: st.DrawFn, opcode: p.Opcode, negotiated: Negotiated) -> tuple[Any, Any]:
    """A request of ``opcode`` and a valid successful reply body for it."""
    request = draw(requests_for(opcode, negotiated))
    arg = request.arg if hasattr(request, "arg") else None
    struct_shape = p.replies._STRUCT_REPLIES.get(opcode)
    if struct_shape is not None:
        return request, draw(struct_values(struct_shape[0].cls))
    if opcode == p.Opcode.READ:
        data = draw(st.binary(max_size=300))
        return request._replace(arg=arg._replace(size=len(data) + draw(st.integers(0, 9)))), data
    if opcode == p.Opcode.READLINK:
        return request, draw(st.binary(max_size=p.READLINK_MAX))
    if opcode in (p.Opcode.CREATE, p.Opcode.TMPFILE):
        return request, CreateOut(draw(struct_values(p.EntryOut)), draw(struct_values(p.OpenOut)))
    if opcode in (p.Opcode.READDIR, p.Opcode.READDIRPLUS):
        listing = draw(entries)
        if opcode == p.Opcode.READDIRPLUS:
            listing = tuple(DirentPlus(draw(struct_values(p.EntryOut)), entry) for entry in listing)
        size = len(p.encode_reply(0, opcode, listing)) - 16 + draw(st.integers(0, 9))
        return request._replace(arg=arg._replace(size=size)), listing
    if opcode in (p.Opcode.GETXATTR, p.Opcode.LISTXATTR):
        if draw(st.booleans()):
            return request._replace(arg=arg._replace(size=0)), draw(struct_values(p.GetxattrOut))
        data = draw(st.binary(max_size=100))
        return request._replace(arg=arg._replace(size=len(data) + 1)), data
    if opcode == p.Opcode.INIT:
        return request, draw(struct_values(p.InitOut))
    if opcode == p.Opcode.IOCTL:
        out = draw(struct_values(p.IoctlOut))
        if draw(st.booleans()):
            in_iovs = draw(st.integers(0, 3))
            out_iovs = draw(st.integers(0, 3))
            iovecs = draw(
                st.lists(
                    struct_values(p.IoctlIovec),
                    min_size=in_iovs + out_iovs,
                    max_size=in_iovs + out_iovs,
                )
            )
            out = out._replace(
                flags=out.flags | p.IoctlFlag.RETRY, in_iovs=in_iovs, out_iovs=out_iovs
            )
            data = b"".join(p.structs.IOCTL_IOVEC.pack(v) for v in iovecs)
            return request, IoctlReply(out, data)
        out = out._replace(flags=out.flags & ~int(p.IoctlFlag.RETRY))
        data = draw(st.binary(max_size=64))
        return request._replace(arg=arg._replace(out_size=len(data))), IoctlReply(out, data)
    if opcode == p.Opcode.CUSE_INIT:
        return request, CuseInitReply(
            draw(struct_values(p.CuseInitOut)), draw(st.binary(max_size=200))
        )
    return request, None
