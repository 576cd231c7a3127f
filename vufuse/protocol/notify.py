"""Notifications, daemon -> kernel: unsolicited messages with ``unique`` 0.

The daemon writes ``out_header`` with ``unique = 0`` and ``error`` = the
:class:`NotifyCode`, then the code's struct and any name or data.  The kernel
answers none of them, except RETRIEVE, which it answers with a NOTIFY_REPLY
*request* (:class:`.requests.NotifyReplyRequest`, unique = ``notify_unique``).

Each notification class holds the wire struct (``arg``) and its variable part;
lengths inside ``arg`` (``namelen``, ``size``, ``count``) must agree with that
part, on encoding and decoding alike -- the checks are the kernel's.
"""

from __future__ import annotations

import struct
import typing
from typing import Any, NamedTuple

from ._layout import Layout, layout_of
from .constants import NAME_MAX, NOTIFY_SINCE_MINOR, InvalEntryFlag, NotifyCode
from .errors import ProtocolError
from .negotiate import LATEST, Negotiated
from .structs import (
    OUT_HEADER,
    NotifyDeleteOut,
    NotifyInvalEntryOut,
    NotifyInvalInodeOut,
    NotifyPollWakeupOut,
    NotifyPruneOut,
    NotifyRetrieveOut,
    NotifyStoreOut,
    OutHeader,
)


class PollNotification(NamedTuple):
    """POLL: wake up pollers of the handle ``arg.kh`` (from poll_in)."""

    arg: NotifyPollWakeupOut


class InvalInodeNotification(NamedTuple):
    """INVAL_INODE: drop cached data of ``arg.ino`` in [off, off+len) (off < 0: attrs only)."""

    arg: NotifyInvalInodeOut


class InvalEntryNotification(NamedTuple):
    """INVAL_ENTRY: drop the cached entry ``name`` in ``arg.parent`` (or only expire it)."""

    arg: NotifyInvalEntryOut
    name: bytes


class DeleteNotification(NamedTuple):
    """DELETE: ``name`` in ``arg.parent`` (inode ``arg.child``) is gone."""

    arg: NotifyDeleteOut
    name: bytes


class StoreNotification(NamedTuple):
    """STORE: put ``data`` into the page cache of ``arg.nodeid`` at ``arg.offset``."""

    arg: NotifyStoreOut
    data: bytes


class RetrieveNotification(NamedTuple):
    """RETRIEVE: ask for cached data; the kernel answers with NOTIFY_REPLY."""

    arg: NotifyRetrieveOut


class ResendNotification(NamedTuple):
    """RESEND: the daemon asks the kernel to resend all pending requests (7.40)."""


class IncEpochNotification(NamedTuple):
    """INC_EPOCH: entries cached before now are stale (7.44)."""


class PruneNotification(NamedTuple):
    """PRUNE: forget unused inodes ``nodeids`` (7.45)."""

    arg: NotifyPruneOut
    nodeids: tuple[int, ...]


Notification = (
    PollNotification | InvalInodeNotification | InvalEntryNotification | DeleteNotification
    | StoreNotification | RetrieveNotification | ResendNotification | IncEpochNotification
    | PruneNotification
)  # fmt: skip
"""Any decoded notification."""

#: The notification class of every code.
NOTIFICATION_CLASSES: dict[NotifyCode, type[Any]] = {
    NotifyCode.POLL: PollNotification,
    NotifyCode.INVAL_INODE: InvalInodeNotification,
    NotifyCode.INVAL_ENTRY: InvalEntryNotification,
    NotifyCode.STORE: StoreNotification,
    NotifyCode.RETRIEVE: RetrieveNotification,
    NotifyCode.DELETE: DeleteNotification,
    NotifyCode.RESEND: ResendNotification,
    NotifyCode.INC_EPOCH: IncEpochNotification,
    NotifyCode.PRUNE: PruneNotification,
}
_CODES: dict[type[Any], NotifyCode] = {cls: code for code, cls in NOTIFICATION_CLASSES.items()}
_HEADER_SIZE = OUT_HEADER.size
_NODEID = struct.Struct("=Q")


def _arg_layout(cls: type[Any]) -> Layout[Any] | None:
    if "arg" not in cls._fields:
        return None
    return layout_of(typing.get_type_hints(cls)["arg"])


_ARGS: dict[int, Layout[Any] | None] = {
    code: _arg_layout(cls) for code, cls in NOTIFICATION_CLASSES.items()
}


def _name(payload: bytes, start: int, namelen: int) -> bytes:
    if namelen > NAME_MAX:
        raise ProtocolError("namelen", f"{namelen} exceeds {NAME_MAX}")
    if len(payload) != start + namelen + 1:
        raise ProtocolError("namelen", f"{namelen} disagrees with {len(payload) - start} bytes")
    if payload[-1] != 0:
        raise ProtocolError("name", "not NUL-terminated")
    name = payload[start:-1]
    if b"\0" in name:
        raise ProtocolError("name", "contains NUL")
    return name


def decode_notification(
    buffer: bytes | bytearray | memoryview, negotiated: Negotiated = LATEST
) -> Notification:
    """Decode a notification (kernel side); its header must say unique 0.

    ``negotiated`` is accepted for symmetry: the kernel does not check a
    notification against the agreed minor.
    """
    if not isinstance(buffer, bytes):
        buffer = bytes(buffer)
    size = len(buffer)
    if size < _HEADER_SIZE:
        raise ProtocolError("out_header", f"{size} bytes, need {_HEADER_SIZE}")
    header = OUT_HEADER.unpack(buffer)
    if header.len != size:
        raise ProtocolError("out_header.len", f"says {header.len}, message has {size} bytes")
    if header.unique != 0:
        raise ProtocolError("out_header.unique", "a notification has unique 0")
    code = header.error
    cls = NOTIFICATION_CLASSES.get(typing.cast(NotifyCode, code))
    if cls is None:
        raise ProtocolError("out_header.error", f"unknown notify code {code}")
    payload = buffer[_HEADER_SIZE:]
    layout = _ARGS[code]
    if layout is None:
        if payload:
            raise ProtocolError("notify", f"{NotifyCode(code).name} carries no payload")
        return typing.cast(Notification, cls())
    if len(payload) < layout.size:
        raise ProtocolError(layout.name, f"{len(payload)} bytes, need {layout.size}")
    arg = layout.unpack(payload)
    rest = len(payload) - layout.size
    if code == NotifyCode.INVAL_ENTRY:
        if arg.flags & ~int(InvalEntryFlag.EXPIRE_ONLY):
            raise ProtocolError("notify_inval_entry_out.flags", f"unknown flags {arg.flags:#x}")
        return InvalEntryNotification(arg, _name(payload, layout.size, arg.namelen))
    if code == NotifyCode.DELETE:
        return DeleteNotification(arg, _name(payload, layout.size, arg.namelen))
    if code == NotifyCode.STORE:
        if rest != arg.size:
            raise ProtocolError("notify_store_out.size", f"says {arg.size}, data has {rest}")
        return StoreNotification(arg, payload[layout.size :])
    if code == NotifyCode.PRUNE:
        if rest != arg.count * 8:
            raise ProtocolError("notify_prune_out.count", f"{arg.count} ids, {rest} bytes")
        ids = tuple(value for (value,) in _NODEID.iter_unpack(payload[layout.size :]))
        return PruneNotification(arg, ids)
    if rest:
        raise ProtocolError(layout.name, f"{rest} unexpected trailing bytes")
    return typing.cast(Notification, cls(arg))


def encode_notification(notification: Notification, negotiated: Negotiated = LATEST) -> bytes:
    """Encode a notification as a daemon writes it (daemon side).

    Raises :class:`ProtocolError` for a code the agreed minor lacks, or lengths
    in ``arg`` that disagree with the name/data/ids.
    """
    code = _CODES.get(type(notification))
    if code is None:
        raise ProtocolError("notification", f"not a notification: {type(notification).__name__}")
    since = NOTIFY_SINCE_MINOR[code]
    if negotiated.minor < since:
        raise ProtocolError(
            "out_header.error", f"{code.name} needs 7.{since}, agreed 7.{negotiated.minor}"
        )
    layout = _ARGS[code]
    body = b""
    fields = typing.cast(tuple[Any, ...], notification)
    if layout is not None:
        arg: Any = fields[0]
        body = layout.pack(arg)
        if code in (NotifyCode.INVAL_ENTRY, NotifyCode.DELETE):
            name = fields[1]
            if not isinstance(name, bytes):
                raise ProtocolError("name", "must be bytes")
            if b"\0" in name:
                raise ProtocolError("name", "contains NUL")
            if arg.namelen != len(name) or len(name) > NAME_MAX:
                raise ProtocolError("namelen", f"{arg.namelen} for a {len(name)}-byte name")
            body += name + b"\0"
        elif code == NotifyCode.STORE:
            data = bytes(notification[1])  # type: ignore[misc]
            if arg.size != len(data):
                raise ProtocolError("notify_store_out.size", f"{arg.size} for {len(data)} bytes")
            body += data
        elif code == NotifyCode.PRUNE:
            ids = fields[1]
            if arg.count != len(ids):
                raise ProtocolError("notify_prune_out.count", f"{arg.count} for {len(ids)} ids")
            try:
                body += b"".join(_NODEID.pack(nodeid) for nodeid in ids)
            except struct.error as exc:
                raise ProtocolError("nodeids", "each must be a u64") from exc
    return OUT_HEADER.pack(OutHeader(_HEADER_SIZE + len(body), int(code), 0)) + body
