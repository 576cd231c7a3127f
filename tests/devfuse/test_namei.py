"""CREATE (and MKNOD+OPEN), MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME/RENAME2,
TMPFILE: wire format, umask, cache updates, ENOSYS remembered."""

from __future__ import annotations

import errno
import os
import stat as stat_module

import pytest
import trio
from fusehelp import FakeClock, mounted
from writehelp import agree

from hypervisor.provider import Caller
from vufuse import protocol as p

O = p.Opcode  # noqa: E741
F = p.InitFlag


async def test_create_sends_masked_mode_umask_and_flags() -> None:
    async with mounted() as (fs, daemon):
        attrs, handle = await fs.create(1, b"new", 0o666, os.O_WRONLY | os.O_CREAT, 0o022)
        [request] = daemon.of(O.CREATE)
        assert request.name == b"new"
        assert request.arg.mode == stat_module.S_IFREG | 0o644
        assert request.arg.umask == 0o022
        assert request.arg.flags & os.O_ACCMODE == os.O_WRONLY
        assert request.arg.flags & os.O_CREAT
        assert stat_module.S_ISREG(attrs.mode) and attrs.mode & 0o777 == 0o644
        assert daemon.count(O.LOOKUP) == 1  # the VFS looks the name up first
        # the dentry is cached: no LOOKUP for it now
        assert (await fs.lookup(1, b"new")).ino == attrs.ino
        assert daemon.count(O.LOOKUP) == 1
        assert await handle.write(0, b"data") == 4
        assert daemon.node("new").data == b"data"


async def test_create_after_the_walks_enoent_sends_no_second_lookup() -> None:
    """open(O_CREAT): the walk's LOOKUP of the last name is atomic_open's only one."""
    uid, gid = os.getuid(), os.getgid()
    walker, other = Caller(pid=7, uid=uid, gid=gid), Caller(pid=8, uid=uid, gid=gid)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    async with mounted() as (fs, daemon):
        for name in (b"a", b"b"):
            with pytest.raises(OSError):
                await fs.lookup(1, name, caller=walker)
            await fs.create(1, name, 0o644, flags, 0o022, caller=walker)
        assert daemon.count(O.LOOKUP) == 2 and daemon.count(O.CREATE) == 2
        # Another thread's create, or one after a name changed, asks the daemon again.
        with pytest.raises(OSError):
            await fs.lookup(1, b"c", caller=walker)
        await fs.create(1, b"c", 0o644, flags, 0o022, caller=other)
        assert daemon.count(O.LOOKUP) == 4
        with pytest.raises(OSError):
            await fs.lookup(1, b"d", caller=walker)
        await fs.mkdir(1, b"e", 0o755, 0o022)
        await fs.create(1, b"d", 0o644, flags, 0o022, caller=walker)
        assert daemon.count(O.LOOKUP) == 7  # d, e (mkdir's), d again
        # Used once: a second create of the same name looks it up (EEXIST after it).
        with pytest.raises(OSError):
            await fs.lookup(1, b"f", caller=walker)
        await fs.create(1, b"f", 0o644, flags, 0o022, caller=walker)
        with pytest.raises(OSError) as info:
            await fs.create(1, b"f", 0o644, flags, 0o022, caller=walker)
        assert info.value.errno == errno.EEXIST and daemon.count(O.CREATE) == 5


async def test_create_with_dont_mask_leaves_the_mode_alone() -> None:
    async with mounted() as (fs, daemon):
        agree(fs, F.DONT_MASK)
        await fs.create(1, b"new", 0o666, os.O_WRONLY | os.O_CREAT, 0o077)
        [request] = daemon.of(O.CREATE)
        assert request.arg.mode & 0o777 == 0o666
        assert request.arg.umask == 0o077


async def test_create_existing_name() -> None:
    async with mounted() as (fs, daemon):
        with pytest.raises(OSError) as info:
            await fs.create(1, b"hello.txt", 0o644, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0)
        assert info.value.errno == errno.EEXIST
        attrs, handle = await fs.create(1, b"hello.txt", 0o644, os.O_RDONLY | os.O_CREAT, 0)
        assert daemon.count(O.CREATE) == 0 and daemon.count(O.OPEN) == 1
        assert await handle.read(0, 5) == b"Hello"


async def test_create_enosys_falls_back_to_mknod_and_open_and_is_remembered() -> None:
    async with mounted(setup=lambda d: d.enosys.add(O.CREATE)) as (fs, daemon):
        attrs, handle = await fs.create(1, b"a", 0o640, os.O_RDWR | os.O_CREAT, 0o002)
        assert daemon.count(O.CREATE) == 1
        [mknod] = daemon.of(O.MKNOD)
        assert mknod.arg.mode == stat_module.S_IFREG | 0o640 and mknod.arg.rdev == 0
        [opened] = daemon.of(O.OPEN)
        assert not opened.arg.flags & (os.O_CREAT | os.O_TRUNC)
        await fs.create(1, b"b", 0o640, os.O_RDWR | os.O_CREAT, 0)
        assert daemon.count(O.CREATE) == 1  # remembered
        assert daemon.count(O.MKNOD) == 2


async def test_create_reply_of_wrong_type_is_eio() -> None:
    async with mounted() as (fs, daemon):

        def directory(node_mode: int) -> int:
            return stat_module.S_IFDIR | 0o755

        original = daemon.writer._create

        def create(directory_node, request):  # type: ignore[no-untyped-def]
            request = request._replace(arg=request.arg._replace(mode=directory(0)))
            return original(directory_node, request)

        daemon.writer._create = create  # type: ignore[method-assign]
        with pytest.raises(OSError) as info:
            await fs.create(1, b"x", 0o644, os.O_RDWR | os.O_CREAT, 0)
        assert info.value.errno == errno.EIO


async def test_mkdir_masks_and_invalidates_the_parent() -> None:
    clock = FakeClock()
    async with mounted(clock=clock) as (fs, daemon):
        await fs.getattr(1)
        getattrs = daemon.count(O.GETATTR)
        attrs = await fs.mkdir(1, b"d", 0o7777, 0o027)
        [request] = daemon.of(O.MKDIR)
        assert request.arg.mode == 0o1750  # permission and sticky bits, masked
        assert request.arg.umask == 0o027
        assert attrs.is_dir
        await fs.getattr(1)  # the parent's attributes were invalidated
        assert daemon.count(O.GETATTR) == getattrs + 1


async def test_mkdir_eexist_from_the_cache_after_a_fresh_lookup() -> None:
    async with mounted() as (fs, daemon):
        await fs.lookup(1, b"dir")
        lookups = daemon.count(O.LOOKUP)
        with pytest.raises(OSError) as info:
            await fs.mkdir(1, b"dir", 0o755, 0)
        assert info.value.errno == errno.EEXIST
        assert daemon.count(O.LOOKUP) == lookups + 1  # LOOKUP_EXCL: never trust the cache
        assert daemon.count(O.MKDIR) == 0


async def test_mknod_fifo_device_needs_root() -> None:
    from dataclasses import replace

    from fusehelp import OPTIONS

    async with mounted(options=replace(OPTIONS, allow_other=True)) as (fs, daemon):
        attrs = await fs.mknod(1, b"fifo", stat_module.S_IFIFO | 0o666, 0, 0o022)
        assert stat_module.S_ISFIFO(attrs.mode)
        assert daemon.of(O.MKNOD)[0].arg.mode == stat_module.S_IFIFO | 0o644
        from writehelp import OWNER

        with pytest.raises(OSError) as info:
            await fs.mknod(1, b"dev", stat_module.S_IFCHR | 0o600, os.makedev(1, 3), 0,
                           caller=OWNER)  # fmt: skip
        assert info.value.errno == errno.EPERM
        with pytest.raises(OSError) as info:
            await fs.mknod(1, b"dir", stat_module.S_IFDIR | 0o600, 0, 0)
        assert info.value.errno == errno.EPERM


async def test_mknod_rdev_is_new_encoded() -> None:
    from vufuse.devfuse.namei import encode_rdev

    assert encode_rdev(os.makedev(8, 1)) == 0x801
    assert encode_rdev(os.makedev(259, 0x12345)) == (0x45 | (259 << 8) | (0x12300 << 12))


async def test_symlink_and_readlink() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.symlink(1, b"ln", b"hello.txt")
        assert attrs.is_symlink
        [request] = daemon.of(O.SYMLINK)
        assert (request.name, request.target) == (b"ln", b"hello.txt")
        assert await fs.readlink(attrs.node) == b"hello.txt"


async def test_link_counts_a_lookup_and_takes_the_replys_nlink() -> None:
    async with mounted() as (fs, daemon):
        original = await fs.lookup(1, b"hello.txt")
        directory = await fs.lookup(1, b"empty")
        attrs = await fs.link(original.node, directory.node, b"again")
        [request] = daemon.of(O.LINK)
        assert request.arg.oldnodeid == original.node and request.header.nodeid == directory.node
        assert attrs.node == original.node and attrs.nlink == 2
        assert daemon.nlookup[original.node] == 2
        with pytest.raises(OSError) as info:
            await fs.link(directory.node, 1, b"dirlink")
        assert info.value.errno == errno.EPERM


async def test_unlink_drops_the_dentry_and_nlink() -> None:
    clock = FakeClock()
    async with mounted(clock=clock) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        handle = await fs.open(attrs.node, os.O_RDONLY)
        await fs.unlink(1, b"hello.txt")
        [request] = daemon.of(O.UNLINK)
        assert request.name == b"hello.txt"
        inode = fs.sb.inodes.get(attrs.node)
        assert inode.attr.nlink == 0  # drop_nlink in the cached attributes
        assert inode.attr_deadline < clock()  # and they are stale
        assert fs.sb.dentries.get(1, b"hello.txt") is None
        with pytest.raises(OSError) as info:
            await fs.lookup(1, b"hello.txt")
        assert info.value.errno == errno.ENOENT
        await handle.release()
        await trio.sleep(0.05)
        assert (attrs.node, 1) in daemon.forgets  # last holder gone: FORGET


async def test_unlink_and_rmdir_type_checks() -> None:
    async with mounted() as (fs, daemon):
        for call, name, code in (
            (fs.unlink, b"dir", errno.EISDIR),
            (fs.rmdir, b"hello.txt", errno.ENOTDIR),
            (fs.rmdir, b".", errno.EINVAL),
            (fs.rmdir, b"..", errno.ENOTEMPTY),
            (fs.unlink, b"missing", errno.ENOENT),
        ):
            with pytest.raises(OSError) as info:
                await call(1, name)
            assert info.value.errno == code, name
        with pytest.raises(OSError) as info:
            await fs.rmdir(1, b"dir")
        assert info.value.errno == errno.ENOTEMPTY  # from the daemon
        await fs.rmdir(1, b"empty")
        assert b"empty" not in daemon.node("").children


async def test_unlink_enoent_from_daemon_invalidates_the_entry() -> None:
    async with mounted() as (fs, daemon):
        await fs.lookup(1, b"hello.txt")
        daemon.errors[O.UNLINK] = errno.ENOENT
        with pytest.raises(OSError):
            await fs.unlink(1, b"hello.txt")
        assert fs.sb.dentries.get(1, b"hello.txt") is None


async def test_rename_moves_the_dentry() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        directory = await fs.lookup(1, b"empty")
        await fs.rename(1, b"hello.txt", directory.node, b"moved")
        [request] = daemon.of(O.RENAME)
        assert request.arg.newdir == directory.node
        assert (request.old_name, request.new_name) == (b"hello.txt", b"moved")
        assert daemon.count(O.RENAME2) == 0  # flags 0: plain RENAME
        lookups = daemon.count(O.LOOKUP)
        assert (await fs.lookup(directory.node, b"moved")).node == attrs.node
        assert daemon.count(O.LOOKUP) == lookups  # moved dentry, still fresh
        assert fs.sb.dentries.get(1, b"hello.txt") is None


async def test_rename_over_a_file_unlinks_it() -> None:
    async with mounted() as (fs, daemon):
        dir_ = await fs.lookup(1, b"dir")
        victim = await fs.lookup(dir_.node, b"b")
        await fs.rename(dir_.node, b"a", dir_.node, b"b")
        assert fs.sb.inodes.find(victim.node) is None  # evicted: its only dentry went
        await trio.sleep(0.05)
        assert (victim.node, 2) in daemon.forgets  # its own lookup + the rename target one
        assert daemon.node("dir").children.keys() == {b"b", b"sub"}


async def test_rename_flags() -> None:
    async with mounted() as (fs, daemon):
        dir_ = await fs.lookup(1, b"dir")
        with pytest.raises(OSError) as info:
            await fs.rename(dir_.node, b"a", dir_.node, b"b", 1)  # NOREPLACE
        assert info.value.errno == errno.EEXIST
        a = await fs.lookup(dir_.node, b"a")
        b = await fs.lookup(dir_.node, b"b")
        await fs.rename(dir_.node, b"a", dir_.node, b"b", 2)  # EXCHANGE
        [request] = daemon.of(O.RENAME2)
        assert request.arg.flags == 2
        assert (await fs.lookup(dir_.node, b"a")).node == b.node
        assert (await fs.lookup(dir_.node, b"b")).node == a.node
        with pytest.raises(OSError) as info:
            await fs.rename(dir_.node, b"a", dir_.node, b"zz", 2)
        assert info.value.errno == errno.ENOENT
        with pytest.raises(OSError) as info:
            await fs.rename(dir_.node, b"a", dir_.node, b"zz", 8)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info:
            await fs.rename(dir_.node, b"a", dir_.node, b"zz", 3)
        assert info.value.errno == errno.EINVAL
        await fs.rename(dir_.node, b"a", dir_.node, b"zz", 1)
        assert daemon.of(O.RENAME2)[-1].arg.flags == 1


async def test_rename2_enosys_is_einval_and_remembered_plain_rename_still_works() -> None:
    async with mounted(setup=lambda d: d.enosys.add(O.RENAME2)) as (fs, daemon):
        for _ in range(2):
            with pytest.raises(OSError) as info:
                await fs.rename(1, b"hello.txt", 1, b"new", 1)
            assert info.value.errno == errno.EINVAL
        assert daemon.count(O.RENAME2) == 1
        await fs.rename(1, b"hello.txt", 1, b"new")
        assert daemon.count(O.RENAME) == 1


async def test_rename2_needs_minor_23() -> None:
    async with mounted(minor=22) as (fs, daemon):
        with pytest.raises(OSError) as info:
            await fs.rename(1, b"hello.txt", 1, b"new", 1)
        assert info.value.errno == errno.EINVAL
        assert daemon.count(O.RENAME2) == 0


async def test_rename_type_checks_and_same_inode() -> None:
    async with mounted() as (fs, daemon):
        with pytest.raises(OSError) as info:
            await fs.rename(1, b"dir", 1, b"hello.txt")
        assert info.value.errno == errno.ENOTDIR
        with pytest.raises(OSError) as info:
            await fs.rename(1, b"hello.txt", 1, b"empty")
        assert info.value.errno == errno.EISDIR
        attrs = await fs.lookup(1, b"hello.txt")
        empty = await fs.lookup(1, b"empty")
        await fs.link(attrs.node, empty.node, b"h")
        await fs.rename(1, b"hello.txt", empty.node, b"h")  # same inode: nothing to do
        assert daemon.count(O.RENAME) == 0


async def test_rename_into_own_subtree_never_reaches_the_daemon() -> None:
    """lock_rename's trap: EINVAL / ENOTEMPTY before any RENAME (high-level libfuse would
    otherwise wait on its own path locks for ever)."""
    async with mounted() as (fs, daemon):
        dir_ = await fs.lookup(1, b"dir")
        sub = await fs.lookup(dir_.node, b"sub")
        deeper = await fs.mkdir(sub.node, b"deeper", 0o755, 0)
        for parent, name, new_parent, errno_ in (
            (1, b"dir", dir_.node, errno.EINVAL),  # rename("dir", "dir/x")
            (1, b"dir", deeper.node, errno.EINVAL),  # rename("dir", "dir/sub/deeper/x")
            (dir_.node, b"sub", sub.node, errno.EINVAL),
        ):
            with pytest.raises(OSError) as info:
                await fs.rename(parent, name, new_parent, b"x")
            assert info.value.errno == errno_
        # The target is an ancestor of the source's directory.
        with pytest.raises(OSError) as info:
            await fs.rename(sub.node, b"deeper", 1, b"dir")
        assert info.value.errno == errno.ENOTEMPTY
        with pytest.raises(OSError) as info:
            await fs.rename(sub.node, b"deeper", 1, b"dir", 2)  # EXCHANGE
        assert info.value.errno == errno.EINVAL
        assert daemon.count(O.RENAME) == daemon.count(O.RENAME2) == 0
        # Siblings and a move up are fine.
        await fs.rename(sub.node, b"deeper", 1, b"up")
        await fs.rename(1, b"up", dir_.node, b"down")
        assert daemon.count(O.RENAME) == 2


async def test_tmpfile() -> None:
    async with mounted() as (fs, daemon):
        attrs, handle = await fs.tmpfile(1, 0o600, os.O_RDWR, 0o022)
        [request] = daemon.of(O.TMPFILE)
        assert request.name == b"/"
        assert attrs.nlink == 0
        assert fs.sb.dentries.get(1, b"/") is None
        assert await handle.write(0, b"x") == 1


async def test_tmpfile_enosys_is_eopnotsupp_remembered() -> None:
    async with mounted(setup=lambda d: d.enosys.add(O.TMPFILE)) as (fs, daemon):
        for _ in range(2):
            with pytest.raises(OSError) as info:
                await fs.tmpfile(1, 0o600, os.O_RDWR, 0)
            assert info.value.errno == errno.EOPNOTSUPP
        assert daemon.count(O.TMPFILE) == 1


async def test_readonly_mount_is_erofs() -> None:
    from dataclasses import replace

    from fusehelp import OPTIONS

    async with mounted(options=replace(OPTIONS, sb_flags=frozenset({"ro"}))) as (fs, daemon):
        for coroutine in (
            fs.mkdir(1, b"x", 0o755, 0),
            fs.unlink(1, b"hello.txt"),
            fs.rename(1, b"hello.txt", 1, b"y"),
            fs.create(1, b"x", 0o644, os.O_CREAT | os.O_RDWR, 0),
        ):
            with pytest.raises(OSError) as info:
                await coroutine
            assert info.value.errno == errno.EROFS
