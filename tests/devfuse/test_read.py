"""READ: splitting, the page cache (keep_cache, direct_io, auto_inval_data), short reads,
replies split over several messages."""

from __future__ import annotations

import os
from dataclasses import replace

import trio
from fusehelp import OPTIONS, TREE, FakeClock, mounted

from vufuse import protocol as p

O = p.Opcode  # noqa: E741
FOPEN = p.OpenReplyFlag
BIG: bytes = TREE["big.bin"]


def _reads(daemon: object) -> list[tuple[int, int]]:
    return [(r.arg.offset, r.arg.size) for r in daemon.of(O.READ)]  # type: ignore[attr-defined]


async def _open(fs: object, name: bytes, flags: int = os.O_RDONLY) -> object:
    attrs = await fs.lookup(1, name)  # type: ignore[attr-defined]
    return await fs.open(attrs.ino, flags)  # type: ignore[attr-defined]


async def test_direct_io_read_split_by_max_pages() -> None:
    def setup(daemon: object) -> None:
        daemon.open_flags = FOPEN.DIRECT_IO  # type: ignore[attr-defined]

    async with mounted(max_pages=16, setup=setup) as (fs, daemon):
        handle = await _open(fs, b"big.bin")
        data = await handle.read(0, 300_000)  # type: ignore[attr-defined]
        assert data == BIG[:300_000]
        assert _reads(daemon) == [
            (0, 65536),
            (65536, 65536),
            (131072, 65536),
            (196608, 65536),
            (262144, 37856),
        ]
        # direct_io is never cached
        await handle.read(0, 10)  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 6


async def test_direct_io_split_by_max_read_and_stops_at_eof() -> None:
    def setup(daemon: object) -> None:
        daemon.open_flags = FOPEN.DIRECT_IO  # type: ignore[attr-defined]

    options = replace(OPTIONS, max_read=8192)
    async with mounted(options=options, setup=setup) as (fs, daemon):
        handle = await _open(fs, b"big.bin")
        data = await handle.read(300_000, 20_000)  # type: ignore[attr-defined]
        assert data == BIG[300_000:]
        assert _reads(daemon) == [(300_000, 8192)]  # a short reply ends it


async def test_o_direct_bypasses_the_cache() -> None:
    async with mounted() as (fs, daemon):
        handle = await _open(fs, b"hello.txt", os.O_RDONLY | os.O_DIRECT)
        assert await handle.read(7, 100) == b"world!\n"  # type: ignore[attr-defined]
        assert _reads(daemon) == [(7, 100)]


async def test_cached_read_reads_whole_pages_with_readahead() -> None:
    async with mounted() as (fs, daemon):
        handle = await _open(fs, b"big.bin")
        assert await handle.read(0, 100) == BIG[:100]  # type: ignore[attr-defined]
        assert _reads(daemon) == [(0, 131072)]  # 32 pages: readahead window, max_pages 32
        assert await handle.read(1000, 5000) == BIG[1000:6000]  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 1
        assert await handle.read(200_000, 200_000) == BIG[200_000:]  # type: ignore[attr-defined]
        # pages 48..74 (i_size is 75 pages): readahead stops at EOF
        assert _reads(daemon)[1:] == [(196608, 110592)]


async def test_cached_read_split_by_max_pages() -> None:
    async with mounted(max_pages=8) as (fs, daemon):
        handle = await _open(fs, b"big.bin")
        data = await handle.read(0, 307200)  # type: ignore[attr-defined]
        assert data == BIG
        sizes = [size for _, size in _reads(daemon)]
        assert all(size <= 8 * 4096 for size in sizes)
        assert sum(sizes) == 307200


async def test_cached_reads_clamped_to_i_size() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, attr_timeout=10) as (fs, daemon):
        handle = await _open(fs, b"hello.txt")
        daemon.node("hello.txt").data = b"Hello, world!\nand more"
        # attributes still say 14 bytes: the cache is clamped to i_size and not refreshed
        assert await handle.read(0, 100) == b"Hello, world!\n"  # type: ignore[attr-defined]
        assert await handle.read(14, 100) == b""  # type: ignore[attr-defined]
        assert daemon.count(O.GETATTR) == 0


async def test_auto_inval_data_refreshes_past_eof_and_drops_pages() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, attr_timeout=1) as (fs, daemon):
        handle = await _open(fs, b"hello.txt")
        assert await handle.read(0, 100) == b"Hello, world!\n"  # type: ignore[attr-defined]
        node = daemon.node("hello.txt")
        node.data = b"HELLO, WORLD!\nand more"
        node.mtime += 1
        clock.advance(2)
        # past EOF with stale attributes: GETATTR (with fh), new size -> pages dropped
        assert await handle.read(0, 100) == node.data  # type: ignore[attr-defined]
        getattr_request = daemon.of(O.GETATTR)[-1]
        assert getattr_request.arg.getattr_flags & p.GetattrFlag.FH
        assert len(_reads(daemon)) == 2


async def test_mtime_change_without_auto_inval_keeps_pages() -> None:
    clock = FakeClock()
    want = p.InitFlag.ASYNC_READ | p.InitFlag.MAX_PAGES
    async with mounted(clock=clock, attr_timeout=1, want=want) as (fs, daemon):
        handle = await _open(fs, b"hello.txt")
        await handle.read(0, 5)  # type: ignore[attr-defined]
        node = daemon.node("hello.txt")
        node.data = b"HELLO, WORLD!\n"
        node.mtime += 1
        clock.advance(2)
        await fs.getattr((await fs.lookup(1, b"hello.txt")).ino)
        assert await handle.read(0, 5) == b"Hello"  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 1


async def test_open_without_keep_cache_drops_pages() -> None:
    async with mounted() as (fs, daemon):
        handle = await _open(fs, b"hello.txt")
        await handle.read(0, 5)  # type: ignore[attr-defined]
        await handle.read(0, 5)  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 1
        await handle.release()  # type: ignore[attr-defined]
        handle = await _open(fs, b"hello.txt")
        await handle.read(0, 5)  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 2


async def test_keep_cache_keeps_pages_across_opens() -> None:
    def setup(daemon: object) -> None:
        daemon.open_flags = FOPEN.KEEP_CACHE  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        for _ in range(3):
            handle = await _open(fs, b"hello.txt")
            assert await handle.read(0, 5) == b"Hello"  # type: ignore[attr-defined]
            await handle.release()  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 1


async def test_short_read_shrinks_i_size() -> None:
    async with mounted(attr_timeout=100) as (fs, daemon):
        handle = await _open(fs, b"hello.txt")
        daemon.node("hello.txt").data = b"Hello"
        assert await handle.read(0, 100) == b"Hello"  # type: ignore[attr-defined]
        inode = handle.file.inode  # type: ignore[attr-defined]
        assert inode.size == 5
        assert inode.attr_deadline <= fs.sb.clock()  # attributes went stale


async def test_read_request_fields() -> None:
    async with mounted() as (fs, daemon):
        handle = await _open(fs, b"hello.txt", os.O_RDONLY | os.O_NOATIME)
        await handle.read(0, 5)  # type: ignore[attr-defined]
        request = daemon.of(O.READ)[0]
        opened = daemon.of(O.OPEN)[0]
        assert request.arg.fh == handle.file.fh  # type: ignore[attr-defined]
        assert request.arg.flags & os.O_NOATIME
        assert opened.arg.flags & os.O_NOATIME
        assert opened.arg.flags & 0o100000 and request.arg.flags & 0o100000  # O_LARGEFILE


async def test_open_strips_creation_and_trunc_flags() -> None:
    async with mounted() as (fs, daemon):
        await _open(fs, b"hello.txt", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_TRUNC)
        flags = daemon.of(O.OPEN)[0].arg.flags
        assert flags & os.O_ACCMODE == os.O_RDWR
        assert not flags & (os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_NOCTTY)


async def test_split_replies_are_reassembled() -> None:
    async with mounted() as (fs, daemon):
        daemon.split_size = 4096
        handle = await _open(fs, b"big.bin")
        assert await handle.read(0, 307200) == BIG  # type: ignore[attr-defined]
        daemon.split_size = 50  # even a LOOKUP reply (144 bytes) in three pieces
        attrs = await fs.lookup(1, b"dir")
        assert attrs.is_dir


async def test_concurrent_reads_of_one_file() -> None:
    def setup(daemon: object) -> None:
        daemon.open_flags = FOPEN.DIRECT_IO  # type: ignore[attr-defined]
        daemon.delays[O.READ] = 0.01  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        handle = await _open(fs, b"big.bin")
        results: dict[int, bytes] = {}

        async def read_at(offset: int) -> None:
            results[offset] = await handle.read(offset, 4096)  # type: ignore[attr-defined]

        async with trio.open_nursery() as nursery:
            for offset in range(0, 307200, 30720):
                nursery.start_soon(read_at, offset)
        for offset, data in results.items():
            assert data == BIG[offset : offset + 4096]


async def test_read_racing_an_invalidation_is_not_cached() -> None:
    async with mounted() as (fs, daemon):
        handle = await _open(fs, b"hello.txt")
        release = trio.Event()
        daemon.holds[O.READ] = release
        daemon.interrupt_answer = None
        inode = handle.file.inode  # type: ignore[attr-defined]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handle.read, 0, 5)  # type: ignore[attr-defined]
            await trio.sleep(0.02)
            note = p.InvalInodeNotification(p.NotifyInvalInodeOut(ino=inode.nodeid, off=0))
            await daemon._send(p.encode_notification(note, daemon.negotiated))
            await trio.sleep(0.02)
            release.set()
        assert inode.pages == {}  # the data may predate the invalidation
        del daemon.holds[O.READ]
        await handle.read(0, 5)  # type: ignore[attr-defined]
        assert len(_reads(daemon)) == 2
