"""st_atime after READ, READDIR and READLINK (fuse_invalidate_atime): the daemon may have moved
it, so the next stat asks the daemon even though the attribute timeout has not run out.

bindfs (libfuse 2's high-level API gives each name of a hard link its own nodeid) relies on
it: after `unlink a`, `stat b` shows the new link count only because reading b before made
the kernel fetch b's attributes again (test_syscalls' "link" test on the real kernel).
"""

from __future__ import annotations

import os
from dataclasses import replace

from fusehelp import OPTIONS, FakeClock, mounted

from vufuse import protocol as p

O = p.Opcode  # noqa: E741
RO = replace(OPTIONS, sb_flags=frozenset({"ro"}))


async def test_stat_after_read_asks_again_once() -> None:
    async with mounted(clock=FakeClock(), attr_timeout=60) as (fs, daemon):
        ino = (await fs.lookup(1, b"hello.txt")).ino
        await fs.getattr(ino)
        assert daemon.count(O.GETATTR) == 0  # LOOKUP's attributes are good for 60 s
        handle = await fs.open(ino, os.O_RDONLY)
        assert await handle.read(0, 100) == b"Hello, world!\n"
        await fs.getattr(ino)
        assert daemon.count(O.GETATTR) == 1
        await fs.getattr(ino)  # the reply made them fresh again
        assert daemon.count(O.GETATTR) == 1
        assert await handle.read(0, 100) == b"Hello, world!\n"  # from the page cache
        await handle.getattr()
        assert daemon.count(O.GETATTR) == 1  # no READ went out: atime still valid


async def test_fstat_after_read_asks_with_the_handle() -> None:
    async with mounted(clock=FakeClock(), attr_timeout=60) as (fs, daemon):
        ino = (await fs.lookup(1, b"big.bin")).ino
        handle = await fs.open(ino, os.O_RDONLY | os.O_DIRECT)
        await handle.read(0, 10)
        await handle.getattr()
        (getattr,) = daemon.of(O.GETATTR)
        assert getattr.arg.getattr_flags & p.GetattrFlag.FH


async def test_read_only_mount_keeps_the_cache() -> None:
    async with mounted(options=RO, clock=FakeClock(), attr_timeout=60) as (fs, daemon):
        ino = (await fs.lookup(1, b"hello.txt")).ino
        handle = await fs.open(ino, os.O_RDONLY)
        await handle.read(0, 100)
        await fs.getattr(ino)
        assert daemon.count(O.GETATTR) == 0


async def test_readdir_and_readlink_invalidate_atime() -> None:
    async with mounted(clock=FakeClock(), attr_timeout=60) as (fs, daemon):
        directory = (await fs.lookup(1, b"dir")).ino
        link = (await fs.lookup(1, b"link")).ino
        handle = await fs.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        await handle.readdir(0)
        await fs.getattr(directory)
        assert [r.header.nodeid for r in daemon.of(O.GETATTR)] == [directory]
        assert await fs.readlink(link) == b"hello.txt"
        await fs.getattr(link)
        assert [r.header.nodeid for r in daemon.of(O.GETATTR)] == [directory, link]


async def test_permission_checks_ignore_atime() -> None:
    """fuse_permission refreshes only for mode, uid and gid: a second open after a READ
    under default_permissions asks nothing."""
    options = replace(OPTIONS, default_permissions=True)
    async with mounted(options=options, clock=FakeClock(), attr_timeout=60) as (fs, daemon):
        ino = (await fs.lookup(1, b"hello.txt")).ino
        handle = await fs.open(ino, os.O_RDONLY)
        await handle.read(0, 100)
        await fs.open(ino, os.O_RDONLY)
        assert daemon.count(O.GETATTR) == 0


async def test_a_walk_after_read_does_not_stand_for_a_getattr() -> None:
    """The hypervisor takes a lookup's attributes as stat's answer while `valid_until` lasts
    (the walk's own answer, and the C answer cache): after a READ they must not, or stat
    misses what only a GETATTR would show (bindfs's nlink in test_syscalls' link tests)."""
    async with mounted(clock=FakeClock(), attr_timeout=60) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        assert attrs.valid_until > 0
        handle = await fs.open(attrs.ino, os.O_RDONLY)
        await handle.read(0, 100)
        assert (await fs.lookup(1, b"hello.txt")).valid_until == 0.0
        assert (await fs.getattr(attrs.ino)).valid_until > 0  # fetched again: good again
        assert (await fs.lookup(1, b"hello.txt")).valid_until > 0
