"""INIT: asynchronous, negotiated down to the daemon's minor, queued requests, failures."""

from __future__ import annotations

import errno

import pytest
import trio
from fakedaemon import FakeDaemon
from fusehelp import mounted

from vufuse import protocol as p
from vufuse.devfuse import init

F = p.InitFlag


@pytest.mark.parametrize("minor", [12, 19, 28, 31, 45])
async def test_init_at_minor(minor: int) -> None:
    async with mounted(minor=minor, max_pages=16) as (fs, daemon):
        negotiated = fs.connection.negotiated
        assert negotiated.minor == minor
        assert daemon.init_request is not None
        assert daemon.init_request.minor == p.KERNEL_MINOR_VERSION
        # Whatever the daemon grants is a subset of what we offered.
        assert negotiated.flags & ~(init.OFFERED_FLAGS | F.INIT_EXT) == 0
        if minor >= 28:
            assert negotiated.max_pages == 16  # MAX_PAGES arrived in 7.28
        else:
            assert negotiated.max_pages == p.DEFAULT_MAX_PAGES_PER_REQ
        # The mount works at every minor: lookup, getattr, read, readdir.
        attrs = await fs.lookup(1, b"hello.txt")
        assert attrs.size == 14
        handle = await fs.open(attrs.ino, 0)
        assert await handle.read(0, 4096) == b"Hello, world!\n"
        directory = await fs.open((await fs.lookup(1, b"dir")).ino, 0)
        names = [entry.name for entry in await directory.readdir(0)]
        assert names == [b".", b"..", b"a", b"b", b"sub"]
        plus = daemon.count(p.Opcode.READDIRPLUS)
        assert plus == (1 if minor >= 21 else 0)  # READDIRPLUS is 7.21


async def test_offer() -> None:
    async with mounted() as (fs, daemon):
        offer = daemon.init_request
        assert offer is not None
        flags = p.offered_flags(offer)
        assert flags == init.OFFERED_FLAGS | F.INIT_EXT
        assert flags & F.WRITEBACK_CACHE  # writeback.py
        for never in (
            F.PASSTHROUGH,
            F.EXPORT_SUPPORT,
            F.POSIX_ACL,
            F.SUBMOUNTS,
            F.OVER_IO_URING,
        ):
            assert not flags & never
        assert offer.max_readahead == init.MAX_READAHEAD
        init_requests = daemon.of(p.Opcode.INIT)
        assert init_requests[0].header.unique == 2  # the kernel's first unique
        assert (init_requests[0].header.uid, init_requests[0].header.pid) == (0, 0)


async def test_max_pages_capped() -> None:
    async with mounted(max_pages=256) as (fs, _):
        assert fs.connection.negotiated.max_pages == init.MAX_PAGES_LIMIT


async def test_requests_wait_for_init() -> None:
    async with mounted(wait_init=False, ignore_init=True) as (fs, daemon):
        result: list[int] = []

        async def stat_root() -> None:
            result.append((await fs.getattr(1)).ino)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stat_root)
            await trio.sleep(0.05)
            assert not result and daemon.count(p.Opcode.GETATTR) == 0
            # Now let the daemon answer INIT late, by hand.
            request = daemon.of(p.Opcode.INIT)[0]
            daemon.ignore_init = False
            await daemon._init(request)
        assert result == [1]


async def test_bounded_wait_for_init() -> None:
    async with mounted(wait_init=False, ignore_init=True) as (fs, _):
        fs.connection.init_timeout = 0.05
        with pytest.raises(OSError) as caught:
            await fs.getattr(1)
        assert caught.value.errno == errno.ETIMEDOUT
        assert not await fs.wait_initialized(0.01)


async def test_init_error_refuses_everything() -> None:
    async with mounted(wait_init=False, init_error=errno.EPROTO) as (fs, _):
        assert not await fs.wait_initialized(5)
        with pytest.raises(OSError) as caught:
            await fs.getattr(1)
        assert caught.value.errno == errno.ECONNREFUSED


async def test_wrong_major_refuses_everything() -> None:
    def setup(daemon: FakeDaemon) -> None:
        daemon.init_reply_hook = lambda reply: reply._replace(major=8)

    async with mounted(wait_init=False, setup=setup) as (fs, _):
        assert not await fs.wait_initialized(5)
        with pytest.raises(OSError) as caught:
            await fs.lookup(1, b"hello.txt")
        assert caught.value.errno == errno.ECONNREFUSED


async def test_daemon_dies_before_init() -> None:
    async with mounted(wait_init=False, ignore_init=True) as (fs, daemon):
        waiter_error: list[int] = []

        async def stat_root() -> None:
            try:
                await fs.getattr(1)
            except OSError as exc:
                waiter_error.append(exc.errno or 0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stat_root)
            await trio.sleep(0.02)
            daemon.die()
        assert waiter_error == [errno.ENOTCONN]
        assert not fs.connection.connected
