"""The writeback cache (WRITEBACK_CACHE agreed): what goes to the daemon and when, as
measured on Linux 6.18 with passthrough_ll -o writeback (docs/decisions.md D24)."""

from __future__ import annotations

import os

import trio
from fusehelp import mounted
from writehelp import agree

from vufuse import protocol as p
from vufuse.devfuse.setattr import SetattrChanges

O = p.Opcode  # noqa: E741
F = p.InitFlag
FATTR = p.SetattrValid
FOPEN = p.OpenReplyFlag
KEEP = {"setup": lambda daemon: setattr(daemon, "open_flags", int(FOPEN.KEEP_CACHE))}


def _opcodes(daemon, since: int = 0) -> list[int]:  # type: ignore[no-untyped-def]
    """Opcodes after the first ``since`` requests, without the lookups."""
    return [r[0].opcode for r in daemon.requests[since:] if r[0].opcode != O.LOOKUP]


async def _open(fs, name: bytes, flags: int):  # type: ignore[no-untyped-def]
    attrs = await fs.lookup(1, name)
    return attrs, await fs.open(attrs.node, flags)


async def test_write_is_cached_until_close_then_write_flush_release() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        attrs, handle = await _open(fs, b"hello.txt", os.O_WRONLY)
        since = len(daemon.requests)
        assert await handle.write(0, b"Jello") == 5
        assert await handle.write(14, b"more\n") == 5  # grows the file locally
        assert daemon.count(O.WRITE) == 0
        assert (await handle.getattr()).size == 19  # i_size is ours
        assert daemon.node("hello.txt").data == b"Hello, world!\n"
        await handle.flush()
        await handle.release()
        with trio.fail_after(10):
            while not daemon.count(O.RELEASE):
                await trio.sleep(0.01)
        # the partly written page (inside i_size, not cached) was read first, through the
        # O_WRONLY handle: read-modify-write
        assert _opcodes(daemon, since)[:1] == [O.READ]
        assert daemon.of(O.READ)[-1].arg.fh == handle.file.fh
        ops = _opcodes(daemon, since)
        assert ops.index(O.WRITE) < ops.index(O.FLUSH) < ops.index(O.RELEASE)
        [write] = daemon.of(O.WRITE)
        assert (write.arg.offset, write.arg.size) == (0, 19)  # clamped to i_size
        assert write.arg.write_flags & p.WriteFlag.CACHE
        assert write.arg.fh == handle.file.fh
        assert (write[0].uid, write[0].gid, write[0].pid) == (0, 0, 0)  # no credentials
        assert daemon.node("hello.txt").data == b"Jello, world!\nmore\n"


async def test_cached_dirty_data_is_read_back_and_survives_attribute_replies() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        attrs, handle = await _open(fs, b"big.bin", os.O_RDWR)
        await handle.write(4096 * 3 + 10, b"XYZ")
        reads = daemon.count(O.READ)
        data = await handle.read(4096 * 3, 4096 * 2)  # a fill around the dirty page
        assert data[10:13] == b"XYZ"
        assert daemon.count(O.READ) > reads
        assert (await handle.read(4096 * 3 + 10, 3)) == b"XYZ"
        await handle.write(307200, b"tail")
        # the daemon still says 307200 bytes: its attributes do not shrink our i_size
        daemon.node("big.bin").mtime += 100
        assert (await fs.getattr(attrs.node)).size == 307204
        fs.sb.inodes.invalidate_attr(fs.sb.inodes.get(attrs.node))
        assert (await fs.getattr(attrs.node)).size == 307204
        assert daemon.count(O.WRITE) == 0
        assert await handle.read(307200, 100) == b"tail"
        await handle.flush()
        assert daemon.node("big.bin").data[-4:] == b"tail"
        assert daemon.node("big.bin").data[4096 * 3 + 10 : 4096 * 3 + 13] == b"XYZ"


async def test_append_uses_local_size() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, handle = await _open(fs, b"hello.txt", os.O_WRONLY | os.O_APPEND)
        await handle.write(0, b"one\n")
        await handle.write(0, b"two\n")
        assert daemon.count(O.WRITE) == 0
        await handle.flush()
        assert daemon.node("hello.txt").data == b"Hello, world!\none\ntwo\n"
        assert daemon.count(O.WRITE) == 1


async def test_fsync_sends_write_then_times_then_fsync() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        since = len(daemon.requests)
        await handle.write(0, b"h")
        await handle.fsync()
        assert _opcodes(daemon, since) == [O.READ, O.WRITE, O.SETATTR, O.FSYNC]
        [setattr_request] = daemon.of(O.SETATTR)
        assert setattr_request.arg.valid == FATTR.MTIME | FATTR.CTIME | FATTR.FH
        assert setattr_request.arg.fh == handle.file.fh
        since = len(daemon.requests)
        await handle.flush()  # nothing dirty: FLUSH alone
        assert _opcodes(daemon, since) == [O.FLUSH]


async def test_truncate_sends_setattr_then_the_kept_dirty_part() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        attrs, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        await handle.write(0, b"0123456789abcdef")
        since = len(daemon.requests)
        await fs.setattr(attrs.node, SetattrChanges(size=5), handle)
        assert _opcodes(daemon, since) == [O.SETATTR, O.WRITE]
        setattr_request = daemon.of(O.SETATTR)[-1]
        assert setattr_request.arg.valid & (FATTR.SIZE | FATTR.MTIME | FATTR.CTIME) == (
            FATTR.SIZE | FATTR.MTIME | FATTR.CTIME
        )
        assert not setattr_request.arg.valid & FATTR.MTIME_NOW
        write = daemon.of(O.WRITE)[-1]
        assert (write.arg.offset, write.arg.size) == (0, 5)
        assert daemon.node("hello.txt").data == b"01234"
        # the cache was dropped: a partial write reads the page again
        reads = daemon.count(O.READ)
        await handle.write(5, b"zz")
        assert daemon.count(O.READ) == reads + 1


async def test_chmod_writes_dirty_data_and_times_first() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        attrs, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        await handle.write(0, b"H")
        since = len(daemon.requests)
        await fs.setattr(attrs.node, SetattrChanges(mode=0o600))
        assert _opcodes(daemon, since) == [O.WRITE, O.SETATTR, O.SETATTR]
        assert daemon.of(O.SETATTR)[-1].arg.valid & FATTR.MODE


async def test_open_dropping_the_cache_writes_dirty_pages_first() -> None:
    async with mounted() as (fs, daemon):  # no KEEP_CACHE: every open drops the cache
        agree(fs, F.WRITEBACK_CACHE)
        attrs, writer = await _open(fs, b"hello.txt", os.O_WRONLY)
        await writer.write(1, b"J")
        since = len(daemon.requests)
        reader = await fs.open(attrs.node, os.O_RDONLY)
        assert _opcodes(daemon, since) == [O.OPEN, O.WRITE]
        assert await reader.read(0, 100) == b"HJllo, world!\n"


async def test_writeback_uses_the_latest_writable_open() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        attrs, first = await _open(fs, b"hello.txt", os.O_RDWR)
        second = await fs.open(attrs.node, os.O_WRONLY)
        await fs.open(attrs.node, os.O_RDONLY)  # not a writer
        assert first.file.fh != second.file.fh
        await first.write(0, b"A")
        await first.fsync()
        assert daemon.of(O.WRITE)[-1].arg.fh == second.file.fh
        await second.flush()
        await second.release()
        await first.write(0, b"B")
        await first.flush()
        assert daemon.of(O.WRITE)[-1].arg.fh == first.file.fh
        assert daemon.node("hello.txt").data.startswith(b"Bello")


async def test_release_writes_what_is_left() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        await handle.write(0, b"W")
        await handle.release()  # no FLUSH (e.g. the last reference was an mmap)
        with trio.fail_after(10):
            while not daemon.count(O.RELEASE):
                await trio.sleep(0.01)
        ops = _opcodes(daemon)
        assert ops.index(O.WRITE) < ops.index(O.RELEASE)
        assert daemon.node("hello.txt").data == b"Wello, world!\n"


async def test_write_error_is_reported_at_close() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        await handle.write(0, b"W")
        daemon.errors[O.WRITE] = 28  # ENOSPC
        try:
            await handle.flush()
        except OSError as exc:
            assert exc.errno == 28
        else:
            raise AssertionError("close did not report the failed writeback")


async def test_link_unlink_rename_send_the_new_ctime_at_once() -> None:
    """Linux 6.18 under -o writeback: LINK, RENAME (both inodes) and UNLINK are each
    followed by a SETATTR of the regular file's times (fuse_update_ctime)."""
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        hello = await fs.lookup(1, b"hello.txt")
        await fs.lookup(1, b"big.bin")
        since = len(daemon.requests)
        await fs.link(hello.ino, 1, b"h2")
        await fs.rename(1, b"h2", 1, b"h3")
        await fs.unlink(1, b"h3")
        await fs.rename(1, b"big.bin", 1, b"hello.txt")
        ops = _opcodes(daemon, since)
        assert [op for op in ops if op != O.FORGET] == [
            O.LINK, O.SETATTR, O.RENAME, O.SETATTR, O.UNLINK, O.SETATTR,
            O.RENAME, O.SETATTR, O.SETATTR,
        ]  # fmt: skip
        for request in daemon.of(O.SETATTR):
            assert request.arg.valid == FATTR.MTIME | FATTR.CTIME


async def test_create_joins_the_writers() -> None:
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, handle = await fs.create(1, b"new", 0o644, os.O_WRONLY | os.O_CREAT, 0o022)
        await handle.write(0, b"fresh")
        await handle.flush()
        assert daemon.node("new").data == b"fresh"
        assert daemon.of(O.WRITE)[-1].arg.fh == handle.file.fh


async def test_fsync_waits_for_a_writeback_in_flight() -> None:
    """fuse_sync_writes: an fsync that finds nothing dirty still waits for the WRITE a close
    has in flight, so FSYNC never overtakes it."""
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, first = await _open(fs, b"hello.txt", os.O_RDWR)
        _, second = await _open(fs, b"hello.txt", os.O_RDWR)
        await first.write(0, b"Y")
        daemon.holds[O.WRITE] = release = trio.Event()
        fsync_early = -1
        async with trio.open_nursery() as nursery:
            try:
                nursery.start_soon(first.flush)
                with trio.fail_after(10):
                    while not daemon.count(O.WRITE):
                        await trio.sleep(0.01)
                nursery.start_soon(second.fsync)
                for _ in range(20):
                    await trio.sleep(0.01)
                fsync_early = daemon.count(O.FSYNC)
            finally:
                release.set()  # never leave the held WRITE (and the test) hanging
        assert fsync_early == 0
        ops = _opcodes(daemon)
        assert ops.index(O.WRITE) < ops.index(O.FSYNC)


async def test_open_o_trunc_drops_dirty_pages() -> None:
    """fuse_finish_open under ATOMIC_O_TRUNC: i_size 0 and the whole page cache gone, dirty
    pages too; a later write past the old data reads zeroes before it, not stale bytes."""
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE, F.ATOMIC_O_TRUNC)
        attrs, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        await handle.write(0, b"stale data")
        again = await fs.open(attrs.node, os.O_RDWR | os.O_TRUNC)
        await again.write(20, b"x")
        assert await again.read(0, 100) == bytes(20) + b"x"
        await again.flush()
        await handle.flush()
        assert daemon.node("hello.txt").data == bytes(20) + b"x"


async def test_periodic_writeback_sends_expired_dirty_pages(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The flusher: pages dirty for longer than DIRTY_EXPIRE go out without close or fsync
    (intervals shortened here; the defaults are the kernel's 5 s and 30 s)."""
    from vufuse.devfuse import writeback

    monkeypatch.setattr(writeback, "WAKE_INTERVAL", 0.01)
    monkeypatch.setattr(writeback, "DIRTY_EXPIRE", 0.05)
    async with mounted(**KEEP) as (fs, daemon):
        agree(fs, F.WRITEBACK_CACHE)
        _, handle = await _open(fs, b"hello.txt", os.O_RDWR)
        await handle.write(0, b"P")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writeback.periodic, fs.sb)
            with trio.fail_after(10):
                while not daemon.count(O.WRITE) or not daemon.count(O.SETATTR):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert daemon.node("hello.txt").data == b"Pello, world!\n"
        assert daemon.count(O.FLUSH) == daemon.count(O.FSYNC) == 0
