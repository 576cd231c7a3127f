"""READDIR / READDIRPLUS: lookup counting, cache population, READDIRPLUS_AUTO, CACHE_DIR."""

from __future__ import annotations

import trio
from fusehelp import mounted

from vufuse import protocol as p

O = p.Opcode  # noqa: E741
F = p.InitFlag
FOPEN = p.OpenReplyFlag


async def _list(handle: object) -> list[bytes]:
    names: list[bytes] = []
    offset = 0
    while True:
        entries = await handle.readdir(offset)  # type: ignore[attr-defined]
        if not entries:
            return names
        names += [entry.name for entry in entries]
        offset = entries[-1].next_offset


async def test_readdirplus_counts_all_but_dot_dotdot() -> None:
    async with mounted() as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        handle = await fs.open(directory.ino, 0)
        assert await _list(handle) == [b".", b"..", b"a", b"b", b"sub"]
        assert daemon.count(O.READDIRPLUS) == 1  # offset 0; the EOF read is plain READDIR
        for name in ("dir/a", "dir/b", "dir/sub"):
            nodeid = daemon.node(name).nodeid
            assert daemon.nlookup[nodeid] == 1
            assert fs.sb.inodes.get(nodeid).nlookup == 1
        assert fs.sb.inodes.get(directory.ino).nlookup == 1  # "." took no count
        # The entries are cached: lookups and getattrs need no requests.
        lookups = daemon.count(O.LOOKUP)
        attrs = await fs.lookup(directory.ino, b"a")
        assert attrs.size == 5
        await fs.getattr(attrs.ino)
        assert daemon.count(O.LOOKUP) == lookups
        assert daemon.count(O.GETATTR) == 0
        await handle.release()
        # Dropping everything hands back exactly what the daemon counted.
        await fs.forget_unused()
        await trio.sleep(0.02)
        assert all(count == 0 for count in daemon.nlookup.values())


async def test_readdirplus_nodeid_zero_takes_no_count() -> None:
    def setup(daemon: object) -> None:
        daemon.plus_zero_nodeid = {b"b"}  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        handle = await fs.open(directory.ino, 0)
        await handle.readdir(0)
        assert fs.sb.inodes.find(daemon.node("dir/b").nodeid) is None
        assert fs.sb.dentries.get(directory.ino, b"b") is None


async def test_readdirplus_again_counts_again() -> None:
    async with mounted() as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        for _ in range(2):
            handle = await fs.open(directory.ino, 0)
            await handle.readdir(0)
            await handle.release()
        nodeid = daemon.node("dir/a").nodeid
        assert daemon.nlookup[nodeid] == 2
        assert fs.sb.inodes.get(nodeid).nlookup == 2
        await fs.forget_unused()
        await trio.sleep(0.02)
        assert daemon.nlookup[nodeid] == 0


async def test_readdirplus_auto_after_lookup() -> None:
    tree = {"many": {f"entry-{index:03}": b"" for index in range(200)}}
    async with mounted(tree) as (fs, daemon):
        directory = await fs.lookup(1, b"many")
        handle = await fs.open(directory.ino, 0)
        first = await handle.readdir(0)
        second = await handle.readdir(first[-1].next_offset)
        assert daemon.count(O.READDIRPLUS) == 1 and daemon.count(O.READDIR) == 1
        # A lookup in the directory advises READDIRPLUS for the next read (once).
        await fs.lookup(directory.ino, b"entry-199")
        await handle.readdir(second[-1].next_offset)
        assert daemon.count(O.READDIRPLUS) == 2


async def test_plain_readdir_without_readdirplus() -> None:
    async with mounted(want=F.ASYNC_READ | F.MAX_PAGES) as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        handle = await fs.open(directory.ino, 0)
        entries = await handle.readdir(0)
        assert [entry.name for entry in entries] == [b".", b"..", b"a", b"b", b"sub"]
        assert daemon.count(O.READDIRPLUS) == 0
        assert entries[2].ino == daemon.node("dir/a").nodeid
        assert entries[2].type == 8  # DT_REG
        assert fs.sb.inodes.find(daemon.node("dir/a").nodeid) is None


async def test_readdirplus_always_without_auto() -> None:
    want = F.DO_READDIRPLUS | F.MAX_PAGES
    tree = {"many": {f"entry-{index:03}": b"" for index in range(200)}}
    async with mounted(tree, want=want) as (fs, daemon):
        directory = await fs.lookup(1, b"many")
        handle = await fs.open(directory.ino, 0)
        await _list(handle)
        assert daemon.count(O.READDIR) == 0


async def test_cache_dir() -> None:
    def setup(daemon: object) -> None:
        daemon.opendir_flags = FOPEN.CACHE_DIR | FOPEN.KEEP_CACHE  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        handle = await fs.open(directory.ino, 0)
        assert await _list(handle) == [b".", b"..", b"a", b"b", b"sub"]
        requests = daemon.count(O.READDIR) + daemon.count(O.READDIRPLUS)
        await handle.release()
        handle = await fs.open(directory.ino, 0)
        assert await _list(handle) == [b".", b"..", b"a", b"b", b"sub"]
        assert daemon.count(O.READDIR) + daemon.count(O.READDIRPLUS) == requests
        # An opendir without KEEP_CACHE drops the cached listing.
        daemon.opendir_flags = FOPEN.CACHE_DIR
        handle = await fs.open(directory.ino, 0)
        await _list(handle)
        assert daemon.count(O.READDIR) + daemon.count(O.READDIRPLUS) > requests


async def test_opendir_and_releasedir() -> None:
    async with mounted() as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        handle = await fs.open(directory.ino, 0)
        await handle.release()
        await trio.sleep(0.02)
        assert daemon.count(O.OPENDIR) == 1
        released = daemon.of(O.RELEASEDIR)
        assert len(released) == 1
        assert released[0].arg.fh == handle.file.fh
        assert (released[0].header.uid, released[0].header.pid) == (0, 0)  # no credentials


async def test_using_a_readdirplus_entry_advises_readdirplus() -> None:
    tree = {"many": {f"entry-{index:03}": b"" for index in range(200)}}
    async with mounted(tree) as (fs, daemon):
        directory = await fs.lookup(1, b"many")
        handle = await fs.open(directory.ino, 0)
        first = await handle.readdir(0)
        # stat of an entry READDIRPLUS brought in (ls -l): cached, but it advises plus
        await fs.lookup(directory.ino, first[5].name)
        assert daemon.count(O.LOOKUP) == 1
        await handle.readdir(first[-1].next_offset)
        assert daemon.count(O.READDIRPLUS) == 2 and daemon.count(O.READDIR) == 0


async def test_request_size_is_the_callers_buffer_within_a_page_and_max_pages() -> None:
    """fuse_readdir_uncached since Linux 6.15: the getdents buffer sizes the request."""
    async with mounted() as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        handle = await fs.open(directory.ino, 0)
        max_pages = fs.sb.connection.negotiated.max_pages
        for size in (0, 100, 32768, 1 << 30):
            await handle.readdir(0, size=size)
        sizes = [request.arg.size for request in daemon.of(O.READDIRPLUS)]
        assert sizes == [4096, 4096, 32768, max_pages * 4096]
