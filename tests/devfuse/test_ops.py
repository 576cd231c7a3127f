"""READLINK, STATFS, ACCESS, xattrs, FLUSH, RELEASE, OPEN ENOSYS, unmount."""

from __future__ import annotations

import errno
import os
from dataclasses import replace

import pytest
import trio
from fusehelp import OPTIONS, mounted

from hypervisor.provider import Caller
from vufuse import protocol as p
from vufuse.devfuse import parse_mount_data

O = p.Opcode  # noqa: E741


async def _errno_of(coroutine: object) -> int:
    try:
        await coroutine  # type: ignore[misc]
    except OSError as exc:
        return exc.errno or 0
    return 0


async def test_readlink() -> None:
    async with mounted() as (fs, daemon):
        link = await fs.lookup(1, b"link")
        assert link.is_symlink
        assert await fs.readlink(link.ino) == b"hello.txt"
        regular = await fs.lookup(1, b"hello.txt")
        assert await _errno_of(fs.readlink(regular.ino)) == errno.EINVAL


async def test_statfs() -> None:
    async with mounted() as (fs, daemon):
        st = await fs.statfs(1)
        assert (st.blocks, st.bfree, st.bavail, st.files, st.ffree) == (1000, 500, 400, 50, 25)
        assert st.type == 0x65735546
        assert daemon.of(O.STATFS)[0].header.nodeid == 1
        stranger = Caller(pid=1, uid=OPTIONS.user_id + 1, gid=OPTIONS.group_id)
        assert (await fs.statfs(1, caller=stranger)).blocks == 0  # no request, empty answer
        assert daemon.count(O.STATFS) == 1


async def test_access_and_enosys_remembered() -> None:
    async with mounted() as (fs, daemon):
        await fs.access(1, os.R_OK)
        assert daemon.of(O.ACCESS)[0].arg.mask == os.R_OK
        daemon.errors[O.ACCESS] = errno.EACCES
        assert await _errno_of(fs.access(1, os.W_OK)) == errno.EACCES
        del daemon.errors[O.ACCESS]
        daemon.enosys.add(O.ACCESS)
        await fs.access(1, os.X_OK)  # ENOSYS: allowed, and never asked again
        await fs.access(1, os.X_OK)
        assert daemon.count(O.ACCESS) == 3


async def test_getxattr_probes_size_then_reads() -> None:
    async with mounted() as (fs, daemon):
        daemon.node("hello.txt").xattrs = {b"user.color": b"blue", b"user.empty": b""}
        attrs = await fs.lookup(1, b"hello.txt")
        assert await fs.getxattr(attrs.ino, b"user.color") == b"blue"
        sizes = [request.arg.size for request in daemon.of(O.GETXATTR)]
        assert sizes == [0, 4]
        assert await fs.getxattr(attrs.ino, b"user.empty") == b""
        assert await _errno_of(fs.getxattr(attrs.ino, b"user.none")) == errno.ENODATA
        assert await fs.getxattr_sized(attrs.ino, b"user.color", 0) == 4
        assert await _errno_of(fs.getxattr_sized(attrs.ino, b"user.color", 2)) == errno.ERANGE
        assert await fs.getxattr_sized(attrs.ino, b"user.color", 100) == b"blue"


async def test_listxattr() -> None:
    async with mounted() as (fs, daemon):
        daemon.node("hello.txt").xattrs = {b"user.a": b"1", b"user.b": b"2"}
        attrs = await fs.lookup(1, b"hello.txt")
        assert await fs.listxattr(attrs.ino) == [b"user.a", b"user.b"]
        assert await fs.listxattr_sized(attrs.ino, 0) == 14
        assert await _errno_of(fs.listxattr_sized(attrs.ino, 3)) == errno.ERANGE
        assert await fs.listxattr(1) == []


async def test_bad_xattr_list_is_eio() -> None:
    async with mounted() as (fs, daemon):
        daemon.node("hello.txt").xattrs = {b"": b"1"}  # an empty name: b"\0"
        attrs = await fs.lookup(1, b"hello.txt")
        assert await _errno_of(fs.listxattr(attrs.ino)) == errno.EIO


async def test_xattr_enosys_becomes_eopnotsupp_and_is_remembered() -> None:
    async with mounted() as (fs, daemon):
        daemon.enosys |= {O.GETXATTR, O.LISTXATTR}
        for _ in range(2):
            assert await _errno_of(fs.getxattr(1, b"user.x")) == errno.EOPNOTSUPP
            assert await _errno_of(fs.listxattr(1)) == errno.EOPNOTSUPP
        assert daemon.count(O.GETXATTR) == 1 and daemon.count(O.LISTXATTR) == 1


async def test_flush_and_release() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        handle = await fs.open(attrs.ino, os.O_RDONLY)
        await handle.flush(lock_owner=77)
        flush = daemon.of(O.FLUSH)[0]
        assert (flush.arg.fh, flush.arg.lock_owner) == (handle.file.fh, 77)
        daemon.enosys.add(O.FLUSH)
        await handle.flush()
        await handle.flush()
        assert daemon.count(O.FLUSH) == 2  # ENOSYS remembered
        await handle.release()
        await handle.release()  # idempotent
        await trio.sleep(0.02)
        released = daemon.of(O.RELEASE)
        assert len(released) == 1 and released[0].arg.fh == handle.file.fh


async def test_noflush() -> None:
    def setup(daemon: object) -> None:
        daemon.open_flags = p.OpenReplyFlag.NOFLUSH  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        handle = await fs.open((await fs.lookup(1, b"hello.txt")).ino, 0)
        await handle.flush()
        assert daemon.count(O.FLUSH) == 0


async def test_fstat_uses_the_file_handle() -> None:
    async with mounted(attr_timeout=0) as (fs, daemon):
        handle = await fs.open((await fs.lookup(1, b"hello.txt")).ino, 0)
        attrs = await handle.getattr()
        assert attrs.size == 14
        request = daemon.of(O.GETATTR)[0]
        assert request.arg.getattr_flags & p.GetattrFlag.FH and request.arg.fh == handle.file.fh


async def test_open_enosys_means_no_open_and_no_release() -> None:
    async with mounted() as (fs, daemon):
        daemon.enosys.add(O.OPEN)
        attrs = await fs.lookup(1, b"hello.txt")
        handle = await fs.open(attrs.ino, 0)
        assert await handle.read(0, 5) == b"Hello"
        assert daemon.of(O.READ)[0].arg.fh == 0
        await handle.release()
        second = await fs.open(attrs.ino, 0)
        await second.release()
        await trio.sleep(0.02)
        assert daemon.count(O.OPEN) == 1
        assert daemon.count(O.RELEASE) == 0


async def test_open_flags_exposed() -> None:
    def setup(daemon: object) -> None:
        daemon.open_flags = p.OpenReplyFlag.NONSEEKABLE | p.OpenReplyFlag.DIRECT_IO  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        handle = await fs.open((await fs.lookup(1, b"hello.txt")).ino, 0)
        assert handle.direct_io and not handle.seekable
        directory = await fs.open((await fs.lookup(1, b"dir")).ino, 0)
        assert not directory.direct_io  # never for directories
        assert await _errno_of(directory.read(0, 10)) == errno.EISDIR
        assert await _errno_of(handle.readdir(0)) == errno.ENOTDIR


async def test_unmount_sends_destroy_only_for_fuseblk() -> None:
    async with mounted() as (fs, daemon):
        await fs.unmount()
        assert daemon.count(O.DESTROY) == 0
        assert await _errno_of(fs.getattr(1)) == errno.ENOTCONN
    options = replace(parse_mount_data("fuseblk", "fd=3,rootmode=40000,user_id=0,group_id=0"),
                      user_id=OPTIONS.user_id, group_id=OPTIONS.group_id)  # fmt: skip
    async with mounted(options=options) as (fs, daemon):
        assert (await fs.statfs(1)).type == 0x65735543
        await fs.unmount()
        assert daemon.count(O.DESTROY) == 1
        assert daemon.forgets == []  # nothing is forgotten at unmount


@pytest.mark.parametrize("errno_value", [errno.EACCES, errno.EPERM, errno.ENOENT])
async def test_daemon_errors_pass_through(errno_value: int) -> None:
    async with mounted() as (fs, daemon):
        daemon.errors[O.OPEN] = errno_value
        attrs = await fs.lookup(1, b"hello.txt")
        assert await _errno_of(fs.open(attrs.ino, 0)) == errno_value
        assert fs.sb.inodes.get(attrs.ino).opens == 0


async def test_flush_is_not_interrupted() -> None:
    async with mounted() as (fs, daemon):
        handle = await fs.open((await fs.lookup(1, b"hello.txt")).ino, 0)
        daemon.holds[O.FLUSH] = release = trio.Event()
        daemon.interrupt_answer = None
        async with trio.open_nursery() as nursery:

            async def flush_cancelled() -> None:
                with trio.move_on_after(0.02):
                    await handle.flush()

            nursery.start_soon(flush_cancelled)
            await trio.sleep(0.05)
            assert daemon.count(O.INTERRUPT) == 0  # FLUSH is a forced request
            release.set()
        assert fs.connection.pending_count == 0
