"""WRITE (cached and direct, max_write and max_pages splitting, O_APPEND, i_size, page
cache), SETATTR (truncate, times, O_TRUNC), FSYNC, FALLOCATE, COPY_FILE_RANGE, LSEEK."""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time
from dataclasses import replace

import pytest
from fakedaemon import FakeDaemon
from fusehelp import OPTIONS, TREE, FakeClock, mounted
from writehelp import OWNER, ROOT, agree

from vufuse import protocol as p
from vufuse.devfuse.locks import lock_owner_id
from vufuse.devfuse.setattr import UTIME_NOW, UTIME_OMIT, SetattrChanges
from vufuse.devfuse.write import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    SEEK_DATA,
    SEEK_HOLE,
)

O = p.Opcode  # noqa: E741
F = p.InitFlag
FATTR = p.SetattrValid
FOPEN = p.OpenReplyFlag
BIG: bytes = TREE["big.bin"]


async def _open(fs, name: bytes, flags: int = os.O_RDWR):  # type: ignore[no-untyped-def]
    attrs = await fs.lookup(1, name)
    return attrs, await fs.open(attrs.node, flags)


def _writes(daemon) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return [(r.arg.offset, r.arg.size) for r in daemon.of(O.WRITE)]


async def test_write_goes_through_and_updates_cache_and_size() -> None:
    clock = FakeClock()
    async with mounted(clock=clock) as (fs, daemon):
        attrs, handle = await _open(fs, b"hello.txt")
        assert await handle.read(0, 100) == TREE["hello.txt"]
        assert await handle.write(7, b"there, everyone!\n") == 17
        [request] = daemon.of(O.WRITE)
        assert request.arg.write_flags & p.WriteFlag.CACHE
        assert request.arg.fh == handle.file.fh
        assert request.arg.flags & os.O_ACCMODE == os.O_RDWR
        inode = fs.sb.inodes.get(attrs.node)
        assert inode.size == 24  # i_size grew
        assert inode.attr_deadline < clock()  # attributes stale
        reads = daemon.count(O.READ)
        assert await handle.read(0, 24) == b"Hello, there, everyone!\n"
        assert daemon.count(O.READ) == reads  # the partly written cached page was updated
        # reading past i_size refreshes it (AUTO_INVAL_DATA): a new mtime drops the cache
        assert await handle.read(0, 100) == b"Hello, there, everyone!\n"
        assert daemon.count(O.READ) == reads + 1


async def test_write_split_by_max_write_and_max_pages() -> None:
    async with mounted(max_write=8192, max_pages=32) as (fs, daemon):
        _, handle = await _open(fs, b"big.bin")
        agree(fs, F.BIG_WRITES)
        assert await handle.write(100, bytes(20000)) == 20000
        assert _writes(daemon) == [(100, 8192), (8292, 8192), (16484, 3616)]
    async with mounted(max_write=1 << 20, max_pages=4) as (fs, daemon):
        _, handle = await _open(fs, b"big.bin")
        await handle.write(100, bytes(20000))
        # max_pages: 4 pages a WRITE, the first one starting inside a page
        assert _writes(daemon) == [(100, 16284), (16384, 3716)]


async def test_write_without_big_writes_is_one_page_each() -> None:
    async with mounted(want=0) as (fs, daemon):
        _, handle = await _open(fs, b"big.bin")
        await handle.write(4000, bytes(5000))
        assert _writes(daemon) == [(4000, 96), (4096, 4096), (8192, 808)]


async def test_direct_write_split_and_drops_cached_pages() -> None:
    async with mounted(max_write=65536) as (fs, daemon):
        attrs, handle = await _open(fs, b"big.bin")
        await handle.read(0, 8192)
        inode = fs.sb.inodes.get(attrs.node)
        assert 0 in inode.pages
        direct = await fs.open(attrs.node, os.O_RDWR | os.O_DIRECT)
        assert await direct.write(0, b"x" * 150000) == 150000
        assert _writes(daemon) == [(0, 65536), (65536, 65536), (131072, 18928)]
        assert not daemon.of(O.WRITE)[0].arg.write_flags & p.WriteFlag.CACHE
        assert 0 not in inode.pages
        assert await handle.read(0, 3) == b"xxx"


async def test_o_append_writes_at_i_size() -> None:
    async with mounted() as (fs, daemon):
        _, handle = await _open(fs, b"hello.txt", os.O_WRONLY | os.O_APPEND)
        assert await handle.write(0, b"more") == 4
        assert await handle.write(0, b"!") == 1
        assert _writes(daemon) == [(14, 4), (18, 1)]
        assert daemon.node("hello.txt").data == b"Hello, world!\nmore!"


async def test_short_write_stops() -> None:
    async with mounted(setup=lambda d: setattr(d, "short_write", 3)) as (fs, daemon):
        attrs, handle = await _open(fs, b"hello.txt")
        assert await handle.write(20, b"abcdef") == 3
        assert fs.sb.inodes.get(attrs.node).size == 23


async def test_write_to_read_only_descriptor_is_ebadf() -> None:
    async with mounted() as (fs, daemon):
        _, handle = await _open(fs, b"hello.txt", os.O_RDONLY)
        with pytest.raises(OSError) as info:
            await handle.write(0, b"x")
        assert info.value.errno == errno.EBADF
        assert daemon.count(O.WRITE) == 0


async def test_write_clears_setuid_by_setattr_or_killpriv_v2() -> None:
    async with mounted(options=replace(OPTIONS, allow_other=True)) as (fs, daemon):
        daemon.node("hello.txt").mode = stat_module.S_IFREG | 0o4755
        _, handle = await _open(fs, b"hello.txt")
        await handle.write(0, b"x", caller=OWNER)
        [request] = daemon.of(O.SETATTR)
        assert request.arg.valid & FATTR.MODE and request.arg.mode & 0o7777 == 0o755
        daemon.node("hello.txt").mode = stat_module.S_IFREG | 0o4755
        await handle.getattr()
        agree(fs, F.HANDLE_KILLPRIV_V2)
        fs.sb.inodes.get(handle.file.inode.nodeid).attr_deadline = 0
        await fs.getattr(handle.file.inode.nodeid)
        await handle.write(0, b"y", caller=OWNER)
        assert daemon.count(O.SETATTR) == 1
        assert daemon.of(O.WRITE)[-1].arg.write_flags & p.WriteFlag.KILL_SUIDGID
        await handle.write(0, b"z", caller=ROOT)  # CAP_FSETID keeps them


async def test_truncate_by_path_and_by_descriptor() -> None:
    async with mounted() as (fs, daemon):
        attrs, handle = await _open(fs, b"big.bin")
        await handle.read(0, 8192)
        inode = fs.sb.inodes.get(attrs.node)
        new = await fs.setattr(attrs.node, SetattrChanges(size=5000))
        request = daemon.of(O.SETATTR)[-1]
        assert request.arg.valid == FATTR.SIZE | FATTR.LOCKOWNER  # no time: Linux 6.18 neither
        assert request.arg.size == 5000 and new.size == 5000
        assert not inode.pages  # cache dropped on a size change
        assert await handle.read(4990, 100) == BIG[4990:5000]
        await handle.setattr(SetattrChanges(size=10), lock_owner=77)
        request = daemon.of(O.SETATTR)[-1]
        assert request.arg.valid == FATTR.SIZE | FATTR.FH | FATTR.LOCKOWNER
        assert request.arg.fh == handle.file.fh
        assert request.arg.lock_owner == lock_owner_id(fs.connection, 77)
        await handle.setattr(SetattrChanges(mode=0o600))  # fchmod: not through the file
        assert daemon.of(O.SETATTR)[-1].arg.valid == FATTR.MODE
        assert await handle.read(0, 100) == BIG[:10]


async def test_ftruncate_needs_a_writable_descriptor_and_truncate_a_file() -> None:
    async with mounted() as (fs, daemon):
        attrs, handle = await _open(fs, b"hello.txt", os.O_RDONLY)
        with pytest.raises(OSError) as info:
            await handle.setattr(SetattrChanges(size=0))
        assert info.value.errno == errno.EINVAL
        dir_ = await fs.lookup(1, b"dir")
        with pytest.raises(OSError) as info:
            await fs.setattr(dir_.node, SetattrChanges(size=0))
        assert info.value.errno == errno.EISDIR


async def test_utimens_now_omit_and_explicit() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        await fs.setattr(attrs.node, SetattrChanges(atime=(0, UTIME_NOW), mtime=(0, UTIME_NOW)))
        arg = daemon.of(O.SETATTR)[-1].arg
        assert arg.valid == FATTR.ATIME | FATTR.ATIME_NOW | FATTR.MTIME | FATTR.MTIME_NOW
        # as notify_change: the unset times carry the current time too (a daemon that reads
        # FATTR_ATIME's value first, as pyfuse3 does, gets now and not the epoch)
        now = time.time()
        assert abs(arg.atime - now) < 3600 and abs(arg.mtime - now) < 3600
        await fs.setattr(attrs.node, SetattrChanges(atime=(0, UTIME_OMIT), mtime=(123, 456)))
        arg = daemon.of(O.SETATTR)[-1].arg
        assert arg.valid == FATTR.MTIME and (arg.mtime, arg.mtimensec) == (123, 456)
        count = daemon.count(O.SETATTR)
        await fs.setattr(attrs.node, SetattrChanges(atime=(0, UTIME_OMIT), mtime=(0, UTIME_OMIT)))
        assert daemon.count(O.SETATTR) == count
        new = await fs.setattr(attrs.node, SetattrChanges(ctime=(5, 0), mode=0o600))
        arg = daemon.of(O.SETATTR)[-1].arg
        assert arg.valid == FATTR.MODE  # ctime only under writeback cache
        assert arg.mode == stat_module.S_IFREG | 0o600 and new.mode & 0o777 == 0o600


@pytest.mark.parametrize(("gran", "sent"), [(1, 456_789_123), (1000, 456_789_000),
                                             (1_000_000_000, 0)])
async def test_explicit_times_truncated_to_time_gran(gran: int, sent: int) -> None:
    """INIT's time_gran is the superblock's s_time_gran: explicit times are truncated to it
    (notify_change's timestamp_truncate) before SETATTR carries them."""
    def setup(daemon: FakeDaemon) -> None:
        daemon.init_reply_hook = lambda reply: reply._replace(time_gran=gran)

    async with mounted(setup=setup) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        await fs.setattr(attrs.node, SetattrChanges(atime=(7, 456_789_123),
                                                    mtime=(8, 456_789_123)))
        arg = daemon.of(O.SETATTR)[-1].arg
        assert (arg.atime, arg.atimensec, arg.mtime, arg.mtimensec) == (7, sent, 8, sent)


async def test_chown_clears_setuid() -> None:
    async with mounted() as (fs, daemon):
        daemon.node("hello.txt").mode = stat_module.S_IFREG | 0o6755
        attrs = await fs.lookup(1, b"hello.txt")
        await fs.setattr(attrs.node, SetattrChanges(uid=5))
        arg = daemon.of(O.SETATTR)[-1].arg
        assert arg.valid == FATTR.UID | FATTR.MODE and arg.mode & 0o7777 == 0o755
        agree(fs, F.HANDLE_KILLPRIV_V2)
        await fs.setattr(attrs.node, SetattrChanges(gid=5))
        assert daemon.of(O.SETATTR)[-1].arg.valid == FATTR.GID | FATTR.KILL_SUIDGID


async def test_setattr_reply_of_another_type_makes_the_inode_bad() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.node("hello.txt").mode = stat_module.S_IFDIR | 0o755
        with pytest.raises(OSError) as info:
            await fs.setattr(attrs.node, SetattrChanges(mode=0o600))
        assert info.value.errno == errno.EIO
        assert fs.sb.inodes.get(attrs.node).bad


async def test_o_trunc_is_open_then_setattr_size_zero() -> None:
    async with mounted() as (fs, daemon):
        attrs, handle = await _open(fs, b"hello.txt", os.O_WRONLY | os.O_TRUNC)
        assert [type(r).__name__ for r in daemon.requests[-2:]] == ["OpenRequest", "SetattrRequest"]
        assert not daemon.of(O.OPEN)[0].arg.flags & os.O_TRUNC
        arg = daemon.of(O.SETATTR)[0].arg
        # fuse_setattr drops the file of ATTR_OPEN: no FATTR_FH (measured on Linux 6.18)
        assert arg.valid == FATTR.SIZE | FATTR.LOCKOWNER and arg.size == 0
        assert daemon.node("hello.txt").data == b""
        assert fs.sb.inodes.get(attrs.node).size == 0
        # not for a directory
        dir_ = await fs.lookup(1, b"dir")
        await fs.open(dir_.node, os.O_RDONLY | os.O_TRUNC)
        assert daemon.count(O.SETATTR) == 1


async def test_o_trunc_under_atomic_o_trunc_is_one_open() -> None:
    async with mounted(options=replace(OPTIONS, allow_other=True)) as (fs, daemon):
        agree(fs, F.ATOMIC_O_TRUNC, F.HANDLE_KILLPRIV_V2)
        attrs, handle = await _open(fs, b"big.bin")
        await handle.read(0, 8192)
        inode = fs.sb.inodes.get(attrs.node)
        assert inode.pages
        setattrs = daemon.count(O.SETATTR)
        await fs.open(attrs.node, os.O_WRONLY | os.O_TRUNC, caller=OWNER)
        arg = daemon.of(O.OPEN)[-1].arg
        assert arg.flags & os.O_TRUNC and arg.open_flags == p.OpenRequestFlag.KILL_SUIDGID
        assert daemon.count(O.SETATTR) == setattrs  # no SETATTR after it
        assert inode.size == 0 and not inode.pages  # fuse_finish_open
        assert (await fs.getattr(attrs.node)).size == 0
        assert await handle.read(0, 100) == b""
        await fs.open(attrs.node, os.O_RDONLY | os.O_TRUNC, caller=ROOT)  # CAP_FSETID
        assert daemon.of(O.OPEN)[-1].arg.open_flags == 0


async def test_fsync_and_fsyncdir_enosys_remembered() -> None:
    async with mounted() as (fs, daemon):
        _, handle = await _open(fs, b"hello.txt")
        await handle.fsync(datasync=True)
        assert daemon.of(O.FSYNC)[0].arg.fsync_flags == p.FsyncFlag.FDATASYNC
        daemon.enosys |= {O.FSYNC, O.FSYNCDIR}
        await handle.fsync()
        await handle.fsync()
        assert daemon.count(O.FSYNC) == 2
        dir_ = await fs.lookup(1, b"dir")
        directory = await fs.open(dir_.node, os.O_RDONLY)
        await directory.fsync()
        await directory.fsync()
        assert daemon.count(O.FSYNCDIR) == 1


async def test_fallocate_modes_size_and_cache() -> None:
    async with mounted() as (fs, daemon):
        attrs, handle = await _open(fs, b"big.bin")
        inode = fs.sb.inodes.get(attrs.node)
        await handle.read(0, 16384)
        await handle.fallocate(0, 400_000, 1000)
        assert inode.size == 401_000
        await handle.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096)
        assert 1 not in inode.pages and 0 in inode.pages
        assert await handle.read(4096, 10) == bytes(10)
        await handle.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 10)
        assert daemon.of(O.FALLOCATE)[-1].arg.mode == FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
        for mode in (FALLOC_FL_PUNCH_HOLE, 0x08):
            with pytest.raises(OSError) as info:
                await handle.fallocate(mode, 0, 10)
            assert info.value.errno == errno.EOPNOTSUPP
        assert daemon.count(O.FALLOCATE) == 3


async def test_fallocate_enosys_is_eopnotsupp_remembered() -> None:
    async with mounted(setup=lambda d: d.enosys.add(O.FALLOCATE)) as (fs, daemon):
        _, handle = await _open(fs, b"hello.txt")
        for _ in range(2):
            with pytest.raises(OSError) as info:
                await handle.fallocate(0, 0, 10)
            assert info.value.errno == errno.EOPNOTSUPP
        assert daemon.count(O.FALLOCATE) == 1


async def test_copy_file_range() -> None:
    async with mounted() as (fs, daemon):
        _, source = await _open(fs, b"big.bin", os.O_RDONLY)
        attrs, target = await _open(fs, b"hello.txt")
        await target.read(0, 10)
        copied = await source.copy_file_range(0, target, 5, 1000)
        assert copied == 1000
        arg = daemon.of(O.COPY_FILE_RANGE)[0].arg
        assert (arg.nodeid_out, arg.fh_out, arg.off_out, arg.len) == (
            attrs.node, target.file.fh, 5, 1000)  # fmt: skip
        assert fs.sb.inodes.get(attrs.node).size == 1005
        assert await target.read(0, 10) == b"Hello" + BIG[:5]


async def test_copy_file_range_stops_at_the_cached_size() -> None:
    """generic_copy_file_checks: shortened to i_size; at EOF 0 without a request."""
    async with mounted() as (fs, daemon):
        attrs, source = await _open(fs, b"hello.txt", os.O_RDONLY)
        _, target = await _open(fs, b"big.bin")
        assert await source.copy_file_range(attrs.size, target, 0, 100) == 0
        assert await source.copy_file_range(attrs.size + 4, target, 0, 100) == 0
        assert daemon.count(O.COPY_FILE_RANGE) == 0
        assert await source.copy_file_range(attrs.size - 3, target, 0, 100) == 3
        assert daemon.of(O.COPY_FILE_RANGE)[0].arg.len == 3


async def test_copy_file_range_enosys_remembered() -> None:
    async with mounted(setup=lambda d: d.enosys.add(O.COPY_FILE_RANGE)) as (fs, daemon):
        _, source = await _open(fs, b"big.bin", os.O_RDONLY)
        _, target = await _open(fs, b"hello.txt")
        for _ in range(2):
            with pytest.raises(OSError) as info:
                await source.copy_file_range(0, target, 0, 10)
            assert info.value.errno == errno.EOPNOTSUPP
        assert daemon.count(O.COPY_FILE_RANGE) == 1
        with pytest.raises(OSError) as info:
            await target.copy_file_range(0, source, 0, 10)  # source is read-only
        assert info.value.errno == errno.EBADF


async def test_lseek_data_hole_and_fallback() -> None:
    async with mounted() as (fs, daemon):
        daemon.node("big.bin").xattrs[b"fake.hole"] = b"4096-8192"
        _, handle = await _open(fs, b"big.bin")
        assert await handle.lseek(5000, SEEK_DATA, 0) == 8192
        assert await handle.lseek(0, SEEK_HOLE, 0) == 4096
        assert daemon.of(O.LSEEK)[0].arg.whence == SEEK_DATA
        with pytest.raises(OSError) as info:
            await handle.lseek(10**6, SEEK_DATA, 0)
        assert info.value.errno == errno.ENXIO
        assert await handle.lseek(-10, os.SEEK_END, 0) == len(BIG) - 10
        assert await handle.lseek(5, os.SEEK_CUR, 10) == 15
        daemon.enosys.add(O.LSEEK)
        assert await handle.lseek(5000, SEEK_DATA, 0) == 5000  # generic: all data
        assert await handle.lseek(5000, SEEK_HOLE, 0) == len(BIG)
        lseeks = daemon.count(O.LSEEK)
        with pytest.raises(OSError) as info:
            await handle.lseek(len(BIG), SEEK_HOLE, 0)
        assert info.value.errno == errno.ENXIO
        assert daemon.count(O.LSEEK) == lseeks


async def test_store_and_retrieve_notifications() -> None:
    import trio

    async with mounted() as (fs, daemon):
        attrs, handle = await _open(fs, b"hello.txt")
        inode = fs.sb.inodes.get(attrs.node)
        data = b"S" * 5000
        await daemon.notify(p.StoreNotification(
            p.NotifyStoreOut(nodeid=attrs.node, offset=4096, size=len(data)), data))  # fmt: skip
        await trio.sleep(0.05)
        assert inode.size == 9096
        assert inode.pages[1] == b"S" * 4096
        assert inode.pages[2] == b"S" * 904 + bytes(3192)  # to EOF: cached, zero-filled
        reads = daemon.count(O.READ)
        assert await handle.read(4096, 5000) == data
        assert daemon.count(O.READ) == reads
        await daemon.notify(p.RetrieveNotification(p.NotifyRetrieveOut(
            notify_unique=99, nodeid=attrs.node, offset=4100, size=100_000)))  # fmt: skip
        await trio.sleep(0.05)
        [reply] = daemon.notify_replies
        assert reply.header.unique == 99 and reply.arg.offset == 4100
        assert reply.data == data[4:]  # pages 1 and 2, to i_size
        inode.pages.pop(2)
        await daemon.notify(p.RetrieveNotification(p.NotifyRetrieveOut(
            notify_unique=101, nodeid=attrs.node, offset=0, size=100_000)))  # fmt: skip
        await trio.sleep(0.05)
        assert daemon.notify_replies[-1].data == b""  # page 0 not cached: nothing


async def test_chown_refreshes_attributes_before_clearing_setuid() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.node("hello.txt").mode = stat_module.S_IFREG | 0o4711  # changed behind our back
        getattrs = daemon.count(O.GETATTR)
        await fs.setattr(attrs.node, SetattrChanges(uid=5))
        assert daemon.count(O.GETATTR) == getattrs + 1
        arg = daemon.of(O.SETATTR)[-1].arg
        assert arg.valid == FATTR.UID | FATTR.MODE and arg.mode & 0o7777 == 0o711


async def test_create_with_o_trunc_asks_to_kill_suid_under_killpriv_v2() -> None:
    async with mounted(options=replace(OPTIONS, allow_other=True)) as (fs, daemon):
        agree(fs, F.HANDLE_KILLPRIV_V2)
        flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC
        await fs.create(1, b"new", 0o644, flags, 0, caller=OWNER)
        assert daemon.of(O.CREATE)[0].arg.open_flags == p.OpenRequestFlag.KILL_SUIDGID
        await fs.create(1, b"new2", 0o644, flags | os.O_EXCL, 0, caller=OWNER)
        assert daemon.of(O.CREATE)[1].arg.open_flags == 0


async def test_copy_file_range_overlap_within_one_file_is_einval() -> None:
    async with mounted() as (fs, daemon):
        _, handle = await _open(fs, b"big.bin")
        with pytest.raises(OSError) as info:
            await handle.copy_file_range(0, handle, 100, 200)
        assert info.value.errno == errno.EINVAL
        assert await handle.copy_file_range(0, handle, 200, 200) == 200
