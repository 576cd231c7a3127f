"""Notifications: round trips, the minors they need, and the kernel's checks."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import MINORS, negotiated_at, struct_values

from vufuse import protocol as p
from vufuse.protocol.structs import OUT_HEADER

names = st.binary(max_size=40).filter(lambda b: b"\0" not in b)


@st.composite
def notifications(draw: st.DrawFn) -> Any:
    code = draw(st.sampled_from(list(p.NotifyCode)))
    if code == p.NotifyCode.POLL:
        return p.PollNotification(draw(struct_values(p.NotifyPollWakeupOut)))
    if code == p.NotifyCode.INVAL_INODE:
        return p.InvalInodeNotification(draw(struct_values(p.NotifyInvalInodeOut)))
    if code == p.NotifyCode.INVAL_ENTRY:
        name = draw(names)
        arg = draw(struct_values(p.NotifyInvalEntryOut))
        flags = draw(st.sampled_from([0, int(p.InvalEntryFlag.EXPIRE_ONLY)]))
        return p.InvalEntryNotification(arg._replace(namelen=len(name), flags=flags), name)
    if code == p.NotifyCode.DELETE:
        name = draw(names)
        arg = draw(struct_values(p.NotifyDeleteOut))
        return p.DeleteNotification(arg._replace(namelen=len(name)), name)
    if code == p.NotifyCode.STORE:
        data = draw(st.binary(max_size=200))
        arg = draw(struct_values(p.NotifyStoreOut))
        return p.StoreNotification(arg._replace(size=len(data)), data)
    if code == p.NotifyCode.RETRIEVE:
        return p.RetrieveNotification(draw(struct_values(p.NotifyRetrieveOut)))
    if code == p.NotifyCode.RESEND:
        return p.ResendNotification()
    if code == p.NotifyCode.INC_EPOCH:
        return p.IncEpochNotification()
    ids = tuple(draw(st.lists(st.integers(0, 2**64 - 1), max_size=6)))
    arg = draw(struct_values(p.NotifyPruneOut))
    return p.PruneNotification(arg._replace(count=len(ids)), ids)


@given(notification=notifications(), minor=MINORS)
def test_notification_round_trip(notification: Any, minor: int) -> None:
    code = p.notify._CODES[type(notification)]
    negotiated = negotiated_at(minor)
    if minor < p.NOTIFY_SINCE_MINOR[code]:
        with pytest.raises(p.ProtocolError, match=f"{code.name} needs"):
            p.encode_notification(notification, negotiated)
        return
    encoded = p.encode_notification(notification, negotiated)
    header = p.decode_out_header(encoded)
    assert (header.unique, header.error) == (0, code)
    assert p.decode_notification(encoded, negotiated) == notification


def test_inval_entry_bytes() -> None:
    note = p.InvalEntryNotification(p.NotifyInvalEntryOut(parent=1, namelen=3), b"foo")
    assert p.encode_notification(note) == struct.pack("=IiQQII", 36, 3, 0, 1, 3, 0) + b"foo\0"


def _message(code: int, payload: bytes, unique: int = 0) -> bytes:
    return OUT_HEADER.pack(p.OutHeader(16 + len(payload), code, unique)) + payload


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (_message(2, bytes(24), unique=5), "out_header.unique"),
        (_message(0, b""), "out_header.error"),
        (_message(10, b""), "out_header.error"),
        (_message(1, bytes(7)), "notify_poll_wakeup_out"),
        (_message(1, bytes(9)), "notify_poll_wakeup_out"),
        (_message(3, struct.pack("=QII", 1, 3, 0) + b"foo"), "namelen"),
        (_message(3, struct.pack("=QII", 1, 2, 0) + b"foo"), "name"),
        (_message(3, struct.pack("=QII", 1, 2, 2) + b"fo\0"), "notify_inval_entry_out.flags"),
        (_message(3, struct.pack("=QII", 1, 2000, 0) + b"fo\0"), "namelen"),
        (_message(3, struct.pack("=QII", 1, 3, 0) + b"f\0o\0"), "name"),
        (_message(6, struct.pack("=QQII", 1, 2, 1, 0) + b"a"), "namelen"),
        (_message(4, struct.pack("=QQII", 1, 0, 3, 0) + b"ab"), "notify_store_out.size"),
        (_message(9, struct.pack("=IIQ", 2, 0, 0) + bytes(8)), "notify_prune_out.count"),
        (_message(7, b"x"), "notify"),
        (_message(5, bytes(40)), "notify_retrieve_out"),
    ],
)
def test_malformed_notifications(message: bytes, field: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_notification(message)
    assert caught.value.field == field


def test_encoder_checks_lengths() -> None:
    with pytest.raises(p.ProtocolError, match="namelen"):
        p.encode_notification(p.DeleteNotification(p.NotifyDeleteOut(namelen=1), b"ab"))
    with pytest.raises(p.ProtocolError, match="size"):
        p.encode_notification(p.StoreNotification(p.NotifyStoreOut(size=1), b"ab"))
    with pytest.raises(p.ProtocolError, match="count"):
        p.encode_notification(p.PruneNotification(p.NotifyPruneOut(count=1), ()))
    with pytest.raises(p.ProtocolError, match="contains NUL"):
        p.encode_notification(p.DeleteNotification(p.NotifyDeleteOut(namelen=3), b"a\0b"))
    with pytest.raises(p.ProtocolError, match="not a notification"):
        p.encode_notification(p.OutHeader())  # type: ignore[arg-type]


def test_retrieve_and_its_notify_reply() -> None:
    # The daemon asks for cached data; the kernel answers with a NOTIFY_REPLY request
    # whose unique is notify_unique.
    ask = p.RetrieveNotification(p.NotifyRetrieveOut(notify_unique=77, nodeid=5, size=4))
    asked = p.decode_notification(p.encode_notification(ask))
    assert isinstance(asked, p.RetrieveNotification)
    answer = p.NotifyReplyRequest(
        p.InHeader(unique=asked.arg.notify_unique, nodeid=asked.arg.nodeid),
        p.NotifyRetrieveIn(offset=0, size=4),
        b"data",
    )
    decoded = p.decode_request(p.encode_request(answer))
    assert isinstance(decoded, p.NotifyReplyRequest)
    assert decoded.header.unique == 77 and decoded.data == b"data"
    with pytest.raises(p.ProtocolError, match="NOTIFY_REPLY takes no reply"):
        p.decode_reply(OUT_HEADER.pack(p.OutHeader(16, 0, 77)), decoded)
