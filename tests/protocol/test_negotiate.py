"""INIT negotiation: both sides agree on the same terms, for every minor real daemons use."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import MINORS, REAL_MINORS

from vufuse import protocol as p

ALL_FLAGS = st.integers(0, (1 << 43) - 1)


def _handshake(
    kernel_minor: int, daemon_minor: int, offer: int, want: int
) -> tuple[p.Negotiated, p.Negotiated, bytes]:
    """Run INIT through the real codecs: kernel encodes, daemon answers, kernel accepts."""
    if kernel_minor < 36:
        offer &= (1 << 32) - 1
    offered = p.kernel_init_request(offer, 131072, kernel_minor)
    wire = p.encode_request(p.InitRequest(p.InHeader(unique=2), offered))
    request = p.decode_request(wire)
    assert isinstance(request, p.InitRequest)
    answer = p.daemon_answer_init(request.arg, want, max_write=65536, minor=daemon_minor)
    assert answer.error == 0 and answer.reply is not None
    reply_wire = p.encode_reply(2, p.Opcode.INIT, answer.reply, answer.negotiated)
    reply = p.decode_reply(reply_wire, request)
    assert isinstance(reply.body, p.InitOut)
    kernel_view = p.kernel_accept_init(reply.body, offered)
    return kernel_view, answer.negotiated, reply_wire


@given(kernel=MINORS, daemon=MINORS, offer=ALL_FLAGS, want=ALL_FLAGS)
def test_both_sides_agree(kernel: int, daemon: int, offer: int, want: int) -> None:
    kernel_view, daemon_view, _ = _handshake(kernel, daemon, offer, want)
    agreed = min(kernel, daemon)
    assert kernel_view.minor == daemon_view.minor == agreed
    if agreed >= 6:
        expected = offer & want & p.init_flags_known_at(daemon)
        if kernel < 36:
            expected &= (1 << 32) - 1  # an old kernel has no flags2
        # INIT_EXT rides along when the kernel offered it, so flags2 is read
        no_ext = ~int(p.InitFlag.INIT_EXT)
        assert kernel_view.flags & no_ext == expected & no_ext
        assert daemon_view.flags == kernel_view.flags
    else:
        assert kernel_view.flags == daemon_view.flags == 0
    assert kernel_view.max_write == daemon_view.max_write
    assert kernel_view.entry_out_size == daemon_view.entry_out_size


@pytest.mark.parametrize("daemon", REAL_MINORS)
def test_real_daemon_minors_against_a_6_18_kernel(daemon: int) -> None:
    kernel_view, daemon_view, reply_wire = _handshake(45, daemon, p.InitFlag.ASYNC_READ, -1)
    assert kernel_view.minor == daemon_view.minor == daemon
    assert len(reply_wire) == 16 + p.negotiate.init_out_size(daemon)
    assert kernel_view.max_write == (4096 if daemon < 5 else 65536)
    assert kernel_view.has(p.InitFlag.ASYNC_READ) == (daemon >= 6)


def test_flags2_only_with_init_ext() -> None:
    offer = p.kernel_init_request(p.InitFlag.PASSTHROUGH | p.InitFlag.ASYNC_READ, 0)
    assert offer.flags & p.InitFlag.INIT_EXT and offer.flags2 == p.InitFlag.PASSTHROUGH >> 32
    # A reply that sets flags2 without INIT_EXT: the kernel ignores flags2.
    reply = p.InitOut(major=7, minor=45, flags=p.InitFlag.ASYNC_READ,
                      flags2=p.InitFlag.PASSTHROUGH >> 32, max_stack_depth=2)  # fmt: skip
    agreed = p.kernel_accept_init(reply, offer)
    assert agreed.flags == p.InitFlag.ASYNC_READ and agreed.max_stack_depth == 0
    with_ext = reply._replace(flags=reply.flags | p.InitFlag.INIT_EXT)
    agreed = p.kernel_accept_init(with_ext, offer)
    assert agreed.has(p.InitFlag.PASSTHROUGH) and agreed.max_stack_depth == 2
    with pytest.raises(p.ProtocolError, match="flags2"):
        p.kernel_init_request(p.InitFlag.PASSTHROUGH, 0, minor=35)


def test_kernel_only_agrees_to_what_it_offered() -> None:
    offer = p.kernel_init_request(p.InitFlag.ASYNC_READ, 4096)
    reply = p.InitOut(major=7, minor=45, flags=p.InitFlag.ASYNC_READ | p.InitFlag.WRITEBACK_CACHE)
    assert p.kernel_accept_init(reply, offer).flags == p.InitFlag.ASYNC_READ


def test_kernel_side_limits() -> None:
    offer = p.kernel_init_request(p.InitFlag.MAX_PAGES, 131072)
    reply = p.InitOut(major=7, minor=45, flags=p.InitFlag.MAX_PAGES, max_pages=1000,
                      max_readahead=1 << 30, time_gran=2_000_000_000, max_background=0,
                      max_write=100)  # fmt: skip
    agreed = p.kernel_accept_init(reply, offer)
    assert agreed.max_pages == 256  # the kernel's default limit
    assert agreed.max_readahead == 131072
    assert agreed.time_gran == 1  # out of range: ignored
    assert agreed.max_background == 12
    assert agreed.max_write == 4096  # raised to one page


def test_major_mismatch() -> None:
    offer = p.kernel_init_request(0, 0)
    with pytest.raises(p.ProtocolError) as caught:
        p.kernel_accept_init(p.InitOut(major=8, minor=0), offer)
    assert caught.value.field == "init_out.major"
    # daemon side: an older kernel major is refused, a newer one gets our major back
    old = p.daemon_answer_init(p.InitIn(major=6, minor=1), 0)
    assert old.error == errno.EPROTO and old.reply is None
    new = p.daemon_answer_init(p.InitIn(major=8, minor=0), 0)
    assert new.error == 0 and new.reinit_expected
    assert new.reply is not None and (new.reply.major, new.reply.minor) == (7, 45)


def test_daemon_reply_carries_its_own_minor_and_old_sizes() -> None:
    kernel = p.InitIn(major=7, minor=19, flags=p.InitFlag.ASYNC_READ)
    want = p.InitFlag.ASYNC_READ | p.InitFlag.SPLICE_READ
    answer = p.daemon_answer_init(kernel, want, minor=31)
    assert answer.reply is not None
    assert answer.reply.minor == 31 and answer.negotiated.minor == 19
    assert answer.negotiated.flags == p.InitFlag.ASYNC_READ
    assert answer.negotiated.init_out_size == 24


@pytest.mark.parametrize(
    ("minor", "sizes"),
    [
        (3, (120, 96, 48, 8, 24, 8, 8)),
        (8, (120, 96, 80, 24, 24, 8, 8)),
        (12, (128, 104, 80, 24, 40, 16, 16)),
        (23, (128, 104, 80, 64, 40, 16, 16)),
        (45, (128, 104, 80, 64, 40, 16, 16)),
    ],
)
def test_sizes_by_minor(minor: int, sizes: tuple[int, ...]) -> None:
    n = p.Negotiated(minor=minor)
    got = (n.entry_out_size, n.attr_out_size, n.statfs_out_size, n.init_out_size,
           n.write_in_size, n.mknod_in_size, n.create_in_size)  # fmt: skip
    assert got == sizes
    assert n.setxattr_in_size == 8
    assert p.Negotiated(minor=minor, flags=p.InitFlag.SETXATTR_EXT).setxattr_in_size == 16
