"""Whatever the daemon writes, the receive path never raises and fails at most the request
the garbage names (hypothesis)."""

from __future__ import annotations

import struct

from fakedaemon import socketpair
from hypothesis import given, settings
from hypothesis import strategies as st

from vufuse import protocol as p
from vufuse.devfuse import Connection
from vufuse.devfuse.connection import _Pending

_LOOKUP = p.LookupRequest(p.InHeader(unique=2, nodeid=1, opcode=p.Opcode.LOOKUP), b"name")


def _header(length: int, error: int, unique: int) -> bytes:
    return struct.pack("<IiQ", length & 0xFFFFFFFF, error, unique)


messages = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda length, error, unique, payload: _header(length, error, unique) + payload,
        st.integers(0, 400),
        st.integers(-600, 10),
        st.sampled_from([0, 1, 2, 3, 4, 99]),
        st.binary(max_size=200),
    ),
)


@settings(max_examples=300)
@given(st.lists(messages, max_size=6))
async def test_garbage_never_raises(batch: list[bytes]) -> None:
    ours, theirs = socketpair(65536)
    try:
        connection = Connection(ours)
        connection.set_initialized(p.LATEST)
        entry = _Pending(_LOOKUP)
        connection._pending[2] = entry
        for message in batch:
            connection._on_message(message)
        if entry.done.is_set():
            assert entry.error or entry.reply is not None
        else:
            assert connection._pending.get(2) is entry
        assert connection.connected  # garbage never kills the connection
    finally:
        ours.close()
        theirs.close()
