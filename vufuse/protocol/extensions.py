"""Request extensions (7.38+): what follows a creating request's names.

``in_header.total_extlen`` counts 8-byte units at the end of the request; the
request codec hands them over raw as ``extensions``.  They are a sequence of
records, each ``ext_header {size, type}`` + body, ``size`` covering the header
and padding to 8 bytes.  Types 0..31 are a security-context block (the type is
the number of contexts, the header doubling as ``secctx_header``); type 32 the
supplementary group of the parent (FUSE_CREATE_SUPP_GROUP).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .constants import ExtensionType
from .errors import ProtocolError
from .structs import EXT_HEADER, SECCTX, SUPP_GROUPS_HEAD, ExtHeader, Secctx, SuppGroupsHead


class SecurityContext(NamedTuple):
    """One security context: the LSM attribute name and its label."""

    name: bytes
    label: bytes


class SecurityContexts(NamedTuple):
    """The security-context extension (FUSE_SECURITY_CTX)."""

    contexts: tuple[SecurityContext, ...]


class SupplementaryGroups(NamedTuple):
    """The supplementary-group extension (FUSE_CREATE_SUPP_GROUP)."""

    groups: tuple[int, ...]


class UnknownExtension(NamedTuple):
    """An extension type this package does not know; kept as bytes."""

    type: int
    body: bytes


Extension = SecurityContexts | SupplementaryGroups | UnknownExtension

_GID = struct.Struct("=I")


def _align8(size: int) -> int:
    return (size + 7) & ~7


def decode_extensions(data: bytes) -> tuple[Extension, ...]:
    """Split a request's extension bytes into records."""
    records: list[Extension] = []
    position = 0
    while position < len(data):
        if len(data) - position < EXT_HEADER.size:
            raise ProtocolError("ext_header", f"{len(data) - position} bytes, need 8")
        header = EXT_HEADER.unpack(data, position)
        if header.size < EXT_HEADER.size or header.size % 8:
            raise ProtocolError("ext_header.size", f"{header.size} is not a padded record size")
        if header.size > len(data) - position:
            raise ProtocolError("ext_header.size", f"{header.size} exceeds the extensions")
        body = data[position + EXT_HEADER.size : position + header.size]
        if header.type <= ExtensionType.MAX_NR_SECCTX:
            records.append(_decode_contexts(body, header.type))
        elif header.type == ExtensionType.GROUPS:
            records.append(_decode_groups(body))
        else:
            records.append(UnknownExtension(header.type, body))
        position += header.size
    return tuple(records)


def _decode_contexts(body: bytes, count: int) -> SecurityContexts:
    contexts: list[SecurityContext] = []
    position = 0
    for _ in range(count):
        if len(body) - position < SECCTX.size:
            raise ProtocolError("secctx", "context header past the extension")
        label_size = SECCTX.unpack(body, position).size
        name_start = position + SECCTX.size
        nul = body.find(b"\0", name_start)
        if nul < 0:
            raise ProtocolError("secctx.name", "not NUL-terminated")
        label_end = nul + 1 + label_size
        if label_end > len(body):
            raise ProtocolError("secctx.size", f"label of {label_size} bytes past the extension")
        contexts.append(SecurityContext(body[name_start:nul], body[nul + 1 : label_end]))
        position = _align8(label_end)
    return SecurityContexts(tuple(contexts))


def _decode_groups(body: bytes) -> SupplementaryGroups:
    if len(body) < SUPP_GROUPS_HEAD.size:
        raise ProtocolError("supp_groups", f"{len(body)} bytes, need {SUPP_GROUPS_HEAD.size}")
    count = SUPP_GROUPS_HEAD.unpack(body).nr_groups
    end = SUPP_GROUPS_HEAD.size + count * _GID.size
    if end > len(body):
        raise ProtocolError("supp_groups.nr_groups", f"{count} groups past the extension")
    groups = body[SUPP_GROUPS_HEAD.size : end]
    return SupplementaryGroups(tuple(gid for (gid,) in _GID.iter_unpack(groups)))


def encode_extensions(records: tuple[Extension, ...] | list[Extension]) -> bytes:
    """Encode extension records as the kernel appends them (each padded to 8)."""
    parts: list[bytes] = []
    for record in records:
        if isinstance(record, SecurityContexts):
            if len(record.contexts) > ExtensionType.MAX_NR_SECCTX:
                raise ProtocolError("secctx_header.nr_secctx", "more than 31 contexts")
            body = b""
            for context in record.contexts:
                if b"\0" in context.name:
                    raise ProtocolError("secctx.name", "contains NUL")
                one = SECCTX.pack(Secctx(len(context.label))) + context.name + b"\0"
                one += context.label
                body += one + bytes(-len(one) % 8)
            kind = len(record.contexts)
        elif isinstance(record, SupplementaryGroups):
            try:
                groups = b"".join(_GID.pack(gid) for gid in record.groups)
            except struct.error as exc:
                raise ProtocolError("supp_groups.groups", "each must be a u32") from exc
            body = SUPP_GROUPS_HEAD.pack(SuppGroupsHead(len(record.groups))) + groups
            kind = ExtensionType.GROUPS
        elif isinstance(record, UnknownExtension):
            body, kind = record.body, record.type
        else:
            raise ProtocolError("extensions", f"not an extension: {type(record).__name__}")
        body += bytes(-len(body) % 8)
        parts.append(EXT_HEADER.pack(ExtHeader(EXT_HEADER.size + len(body), kind)) + body)
    return b"".join(parts)
