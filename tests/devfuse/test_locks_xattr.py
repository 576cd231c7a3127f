"""GETLK/SETLK/SETLKW (POSIX, OFD) and flock, local locks when not agreed; SETXATTR and
REMOVEXATTR."""

from __future__ import annotations

import errno
import fcntl
import os
import stat as stat_module

import pytest
import trio
from fusehelp import mounted
from writehelp import OWNER, PERMISSIONS, STRANGER, agree

from vufuse import protocol as p
from vufuse.devfuse.locks import OFFSET_MAX, LocalLocks, lock_owner_id

O = p.Opcode  # noqa: E741
F = p.InitFlag


async def _open(fs, name: bytes = b"hello.txt"):  # type: ignore[no-untyped-def]
    attrs = await fs.lookup(1, name)
    return await fs.open(attrs.node, os.O_RDWR)


async def test_locks_are_local_unless_agreed() -> None:
    async with mounted() as (fs, daemon):
        handle = await _open(fs)
        with pytest.raises(LocalLocks):
            await handle.setlk(fcntl.F_WRLCK, 0, 0, 1, 10, False)
        with pytest.raises(LocalLocks):
            await handle.getlk(fcntl.F_WRLCK, 0, 0, 1, 10)
        with pytest.raises(LocalLocks):
            await handle.flock(fcntl.LOCK_EX, 10)
        assert daemon.count(O.SETLK) == daemon.count(O.GETLK) == 0


async def test_posix_locks() -> None:
    async with mounted() as (fs, daemon):
        agree(fs, F.POSIX_LOCKS)
        first, second = await _open(fs), await _open(fs)
        await first.setlk(fcntl.F_WRLCK, 10, 5, 1, 111, False)
        [request] = daemon.of(O.SETLK)
        assert request.arg.lk == p.FileLock(start=10, end=14, type=fcntl.F_WRLCK, pid=111)
        assert request.arg.owner == lock_owner_id(fs.connection, 1) != 1
        assert request.arg.lk_flags == 0
        found = await second.getlk(fcntl.F_RDLCK, 0, 0, 2, 222)
        assert (found.start, found.end, found.type, found.pid) == (10, 14, fcntl.F_WRLCK, 111)
        assert daemon.of(O.GETLK)[0].arg.lk.end == OFFSET_MAX  # l_len 0: to the end
        with pytest.raises(OSError) as info:
            await second.setlk(fcntl.F_RDLCK, 12, 1, 2, 222, False)
        assert info.value.errno == errno.EAGAIN
        await second.setlk(fcntl.F_RDLCK, 20, -5, 2, 222, True)  # l_len < 0: [15, 19]
        [wait] = daemon.of(O.SETLKW)
        assert (wait.arg.lk.start, wait.arg.lk.end) == (15, 19)
        await first.setlk(fcntl.F_UNLCK, 0, 0, 1, 111, False)
        assert daemon.of(O.SETLK)[-1].arg.lk.pid == 0  # unlocks carry no pid
        found = await second.getlk(fcntl.F_WRLCK, 0, 0, 2, 222)
        assert found.type == fcntl.F_UNLCK


async def test_getlk_bad_reply_is_eio() -> None:
    async with mounted() as (fs, daemon):
        agree(fs, F.POSIX_LOCKS)
        handle = await _open(fs)
        daemon.writer._getlk = lambda node, request: p.LkOut(  # type: ignore[method-assign]
            p.FileLock(start=10, end=5, type=fcntl.F_WRLCK))  # fmt: skip
        with pytest.raises(OSError) as info:
            await handle.getlk(fcntl.F_WRLCK, 0, 0, 1, 1)
        assert info.value.errno == errno.EIO


async def test_flock_and_release_unlock() -> None:
    async with mounted() as (fs, daemon):
        agree(fs, F.FLOCK_LOCKS)
        first, second = await _open(fs), await _open(fs)
        await first.flock(fcntl.LOCK_EX, 7)
        [request] = daemon.of(O.SETLKW)
        assert request.arg.lk_flags == p.LockFlag.FLOCK
        assert (request.arg.lk.start, request.arg.lk.end) == (0, OFFSET_MAX)
        with pytest.raises(OSError) as info:
            await second.flock(fcntl.LOCK_SH | fcntl.LOCK_NB, 8)
        assert info.value.errno == errno.EAGAIN
        assert daemon.of(O.SETLK)[-1].arg.lk.type == fcntl.F_RDLCK
        await first.release()
        await trio.sleep(0.05)
        release = daemon.of(O.RELEASE)[-1]
        assert release.arg.release_flags == p.ReleaseFlag.FLOCK_UNLOCK
        assert release.arg.lock_owner == request.arg.owner


async def test_setxattr_and_removexattr() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        await fs.setxattr(attrs.node, b"user.a", b"1", 1)  # XATTR_CREATE
        [request] = daemon.of(O.SETXATTR)
        assert (request.name, request.value, request.arg.flags) == (b"user.a", b"1", 1)
        assert request.arg.size == 1
        assert await fs.getxattr(attrs.node, b"user.a") == b"1"
        with pytest.raises(OSError) as info:
            await fs.setxattr(attrs.node, b"user.a", b"2", 1)
        assert info.value.errno == errno.EEXIST
        with pytest.raises(OSError) as info:
            await fs.setxattr(attrs.node, b"user.b", b"2", 2)  # XATTR_REPLACE
        assert info.value.errno == errno.ENODATA
        with pytest.raises(OSError) as info:
            await fs.setxattr(attrs.node, b"user.b", b"2", 4)
        assert info.value.errno == errno.EINVAL
        await fs.removexattr(attrs.node, b"user.a")
        assert daemon.node("hello.txt").xattrs == {}
        link = await fs.lookup(1, b"link")
        with pytest.raises(OSError) as info:
            await fs.setxattr(link.node, b"user.x", b"", 0)
        assert info.value.errno == errno.EPERM


async def test_xattr_enosys_is_eopnotsupp_remembered() -> None:
    def setup(daemon: object) -> None:
        daemon.enosys |= {O.SETXATTR, O.REMOVEXATTR}  # type: ignore[attr-defined]

    async with mounted(setup=setup) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        for _ in range(2):
            for call in (fs.setxattr(attrs.node, b"user.a", b"1"),
                         fs.removexattr(attrs.node, b"user.a")):  # fmt: skip
                with pytest.raises(OSError) as info:
                    await call
                assert info.value.errno == errno.EOPNOTSUPP
        assert daemon.count(O.SETXATTR) == daemon.count(O.REMOVEXATTR) == 1


async def test_xattr_permissions() -> None:
    async with mounted(options=PERMISSIONS) as (fs, daemon):
        daemon.node("hello.txt").mode = stat_module.S_IFREG | 0o644
        attrs = await fs.lookup(1, b"hello.txt", caller=OWNER)
        with pytest.raises(OSError) as info:
            await fs.setxattr(attrs.node, b"user.a", b"1", caller=STRANGER)
        assert info.value.errno == errno.EACCES
        with pytest.raises(OSError) as info:
            await fs.setxattr(attrs.node, b"trusted.a", b"1", caller=OWNER)
        assert info.value.errno == errno.EPERM
        await fs.setxattr(attrs.node, b"user.a", b"1", caller=OWNER)
