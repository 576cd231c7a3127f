"""LOOKUP and GETATTR: dentry and attribute caches, timeouts, negative entries, counting."""

from __future__ import annotations

import errno
import stat as stat_module

import pytest
from fusehelp import OPTIONS, FakeClock, mounted

from hypervisor.provider import Caller
from vufuse import protocol as p

O = p.Opcode  # noqa: E741


async def test_lookup_cached_until_entry_timeout() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, entry_timeout=1.0, attr_timeout=1.0) as (fs, daemon):
        first = await fs.lookup(1, b"hello.txt")
        second = await fs.lookup(1, b"hello.txt")
        assert first == second
        assert daemon.count(O.LOOKUP) == 1
        clock.advance(1.5)
        again = await fs.lookup(1, b"hello.txt")
        assert again.ino == first.ino
        assert daemon.count(O.LOOKUP) == 2
        # Revalidation of the same nodeid is one more reference, as the kernel counts it.
        node = daemon.node("hello.txt")
        assert daemon.nlookup[node.nodeid] == 2
        assert fs.sb.inodes.get(first.ino).nlookup == 2


async def test_getattr_cached_until_attr_timeout() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, attr_timeout=0.5) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        assert (await fs.getattr(attrs.ino)).size == 14
        assert daemon.count(O.GETATTR) == 0  # the LOOKUP's attributes are fresh
        daemon.node("hello.txt").data = b"changed"
        assert (await fs.getattr(attrs.ino)).size == 14
        clock.advance(0.6)
        assert (await fs.getattr(attrs.ino)).size == 7
        assert daemon.count(O.GETATTR) == 1


async def test_zero_timeouts_always_ask() -> None:
    async with mounted(entry_timeout=0, attr_timeout=0) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        await fs.lookup(1, b"hello.txt")
        await fs.getattr(attrs.ino)
        await fs.getattr(attrs.ino)
        assert daemon.count(O.LOOKUP) == 2
        assert daemon.count(O.GETATTR) == 2


async def test_root_getattr_before_anything() -> None:
    async with mounted() as (fs, daemon):
        root = await fs.getattr(1)
        assert stat_module.S_ISDIR(root.mode)
        assert root.ino == 1
        assert daemon.count(O.GETATTR) == 1  # rootmode-only attributes start stale


async def test_negative_entry_cached() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, negative_timeout=2.0) as (fs, daemon):
        for _ in range(3):
            with pytest.raises(OSError) as caught:
                await fs.lookup(1, b"missing")
            assert caught.value.errno == errno.ENOENT
        assert daemon.count(O.LOOKUP) == 1
        clock.advance(3)
        daemon.nodes[1].children[b"missing"] = daemon.node("hello.txt").nodeid
        assert (await fs.lookup(1, b"missing")).size == 14
        assert daemon.count(O.LOOKUP) == 2


async def test_enoent_error_not_cached() -> None:
    async with mounted() as (fs, daemon):
        for _ in range(2):
            with pytest.raises(OSError):
                await fs.lookup(1, b"missing")
        assert daemon.count(O.LOOKUP) == 2


async def test_lookup_in_a_file_is_enotdir() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        with pytest.raises(OSError) as caught:
            await fs.lookup(attrs.ino, b"x")
        assert caught.value.errno == errno.ENOTDIR


async def test_header_carries_the_caller() -> None:
    caller = Caller(pid=4242, uid=OPTIONS.user_id, gid=OPTIONS.group_id)
    async with mounted() as (fs, daemon):
        await fs.lookup(1, b"hello.txt", caller=caller)
        header = daemon.of(O.LOOKUP)[0].header
        assert (header.uid, header.gid, header.pid, header.nodeid) == (
            caller.uid,
            caller.gid,
            4242,
            1,
        )
        assert header.unique % 2 == 0


async def test_allow_other_refuses_other_users() -> None:
    stranger = Caller(pid=1, uid=OPTIONS.user_id + 1, gid=OPTIONS.group_id)
    async with mounted() as (fs, daemon):
        with pytest.raises(OSError) as caught:
            await fs.lookup(1, b"hello.txt", caller=stranger)
        assert caught.value.errno == errno.EACCES
        assert daemon.count(O.LOOKUP) == 0


async def test_type_change_on_getattr_is_eio() -> None:
    clock = FakeClock()
    async with mounted(clock=clock) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.node("hello.txt").mode = stat_module.S_IFDIR | 0o755
        clock.advance(5)
        with pytest.raises(OSError) as caught:
            await fs.getattr(attrs.ino)
        assert caught.value.errno == errno.EIO
        with pytest.raises(OSError) as caught:
            await fs.open(attrs.ino, 0)  # the inode is bad now
        assert caught.value.errno == errno.EIO


async def test_nodeid_reused_with_another_type_is_a_new_inode() -> None:
    clock = FakeClock()
    async with mounted(clock=clock) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        handle = await fs.open(attrs.ino, 0)
        daemon.node("hello.txt").mode = stat_module.S_IFLNK | 0o777
        clock.advance(5)
        fresh = await fs.lookup(1, b"hello.txt")
        assert stat_module.S_ISLNK(fresh.mode)
        with pytest.raises(OSError) as caught:
            await handle.read(0, 10)  # the old object is bad
        assert caught.value.errno == errno.EIO
        await handle.release()


async def test_invalid_attributes_are_eio_and_forgotten() -> None:
    async with mounted() as (fs, daemon):
        daemon.node("hello.txt").mode = 0o644  # no file type
        with pytest.raises(OSError) as caught:
            await fs.lookup(1, b"hello.txt")
        assert caught.value.errno == errno.EIO
        nodeid = daemon.node("hello.txt").nodeid
        await _settle()
        assert daemon.forgets == [(nodeid, 1)]  # the reference it counted is given back
        assert daemon.nlookup[nodeid] == 0


async def test_forget_after_drop_and_parents_pinned() -> None:
    async with mounted() as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        sub = await fs.lookup(directory.ino, b"sub")
        deep = await fs.lookup(sub.ino, b"deep")
        assert len(fs.sb.inodes) == 4
        # Evicting one level at a time: the leaf goes first, parents only once childless.
        assert fs.sb.dentries.shrink(2) == 1
        await fs.sb.flush_forgets()
        await _settle()
        assert daemon.forgets == [(deep.ino, 1)]
        assert await fs.forget_unused() == 2
        await _settle()
        assert sorted(daemon.forgets) == sorted([(deep.ino, 1), (sub.ino, 1), (directory.ino, 1)])
        assert all(count == 0 for count in daemon.nlookup.values())
        with pytest.raises(OSError) as caught:
            await fs.getattr(deep.ino)
        assert caught.value.errno == errno.ESTALE  # never a forgotten nodeid to the daemon
        assert daemon.count(O.BATCH_FORGET) >= 1


async def test_open_file_and_hold_pin_the_inode() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        directory = await fs.lookup(1, b"dir")
        fs.hold(directory.ino)
        handle = await fs.open(attrs.ino, 0)
        await fs.forget_unused()
        await _settle()
        assert daemon.forgets == []
        await handle.release()
        await fs.unhold(directory.ino)
        await fs.forget_unused()
        await _settle()
        assert sorted(daemon.forgets) == sorted([(attrs.ino, 1), (directory.ino, 1)])


async def test_forget_before_batch_forget_minor() -> None:
    async with mounted(minor=12) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        await fs.lookup(1, b"hello.txt")
        await fs.forget_unused()
        await _settle()
        assert daemon.count(O.FORGET) == 1 and daemon.count(O.BATCH_FORGET) == 0
        assert daemon.forgets == [(attrs.ino, 1)]


async def test_dentry_limit_evicts_lru() -> None:
    tree = {f"f{index}": b"x" for index in range(10)}
    async with mounted(tree, dentry_limit=4) as (fs, daemon):
        for index in range(10):
            await fs.lookup(1, f"f{index}".encode())
        await fs.forget_unused()
        await _settle()
        assert len(daemon.forgets) == 10
        assert sum(count for _, count in daemon.forgets) == 10


async def _settle() -> None:
    import trio

    await trio.sleep(0.02)


async def test_bad_inode_dentry_is_looked_up_again() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, entry_timeout=100) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.node("hello.txt").mode = stat_module.S_IFDIR | 0o755
        clock.advance(5)  # attributes expire, the entry does not
        with pytest.raises(OSError):
            await fs.getattr(attrs.ino)  # EIO: bad
        fresh = await fs.lookup(1, b"hello.txt")  # not EIO: a new LOOKUP
        assert stat_module.S_ISDIR(fresh.mode)
        assert daemon.count(O.LOOKUP) == 2


async def test_lookup_returning_the_root_is_eio() -> None:
    async with mounted() as (fs, daemon):
        daemon.nodes[1].children[b"self"] = 1
        with pytest.raises(OSError) as caught:
            await fs.lookup(1, b"self")
        assert caught.value.errno == errno.EIO
