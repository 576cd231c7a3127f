"""Request extensions: security contexts and supplementary groups."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vufuse import protocol as p

contexts = st.builds(
    p.SecurityContext,
    name=st.binary(max_size=20).filter(lambda b: b"\0" not in b),
    label=st.binary(max_size=40),
)
records = st.one_of(
    st.lists(contexts, max_size=3).map(lambda c: p.SecurityContexts(tuple(c))),
    st.lists(st.integers(0, 2**32 - 1), max_size=4).map(lambda g: p.SupplementaryGroups(tuple(g))),
    st.builds(
        p.UnknownExtension,
        type=st.integers(33, 2**32 - 1),
        body=st.integers(0, 3).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)),
    ),
)


@given(st.lists(records, max_size=3))
def test_round_trip(items: list[p.Extension]) -> None:
    data = p.encode_extensions(items)
    assert len(data) % 8 == 0
    assert p.decode_extensions(data) == tuple(items)


def test_the_kernels_supp_group_record() -> None:
    # ext_header{16, 32} + nr_groups 1 + gid, padded to 16 bytes
    data = p.encode_extensions([p.SupplementaryGroups((100,))])
    assert data == struct.pack("=IIII", 16, 32, 1, 100)
    request = p.CreateRequest(p.InHeader(unique=2, nodeid=1), p.CreateIn(), b"f", data)
    decoded = p.decode_request(p.encode_request(request))
    assert isinstance(decoded, p.CreateRequest)
    assert p.decode_extensions(decoded.extensions) == (p.SupplementaryGroups((100,)),)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (bytes(4), "ext_header"),
        (struct.pack("=II", 12, 32) + bytes(8), "ext_header.size"),
        (struct.pack("=II", 24, 32) + bytes(8), "ext_header.size"),
        (struct.pack("=IIII", 16, 32, 5, 0), "supp_groups.nr_groups"),
        (struct.pack("=IIII", 16, 1, 0, 0), "secctx.name"),
        (struct.pack("=IIII", 24, 1, 9, 0) + b"a\0" + bytes(6), "secctx.size"),
    ],
)
def test_malformed(data: bytes, field: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.decode_extensions(data)
    assert caught.value.field == field


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_fuzz(data: bytes) -> None:
    try:
        p.decode_extensions(data)
    except p.ProtocolError:
        pass
