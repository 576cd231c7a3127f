"""default_permissions: mode bits with fsuid/fsgid/groups, root's override, sticky
directories, setattr_prepare; and the checks the VFS makes without it."""

from __future__ import annotations

import errno
import os
import stat as stat_module

import pytest
from fusehelp import mounted
from writehelp import GROUPIE, OWNER, PERMISSIONS, ROOT, STRANGER

from hypervisor.provider import Caller
from vufuse import protocol as p
from vufuse.devfuse.permission import MAY_EXEC, MAY_READ, MAY_WRITE, generic_permission
from vufuse.devfuse.setattr import UTIME_NOW, SetattrChanges

O = p.Opcode  # noqa: E741


def _attr(mode: int, uid: int = 1000, gid: int = 1000) -> p.Attr:
    return p.Attr(mode=mode, uid=uid, gid=gid)


def _denied(attr: p.Attr, mask: int, caller: Caller) -> bool:
    try:
        generic_permission(attr, mask, caller)
    except OSError as exc:
        assert exc.errno == errno.EACCES
        return True
    return False


def test_generic_permission_classes_and_root() -> None:
    reg = stat_module.S_IFREG
    assert not _denied(_attr(reg | 0o640), MAY_READ | MAY_WRITE, OWNER)
    assert _denied(_attr(reg | 0o640), MAY_WRITE, GROUPIE)  # supplementary group: r only
    assert not _denied(_attr(reg | 0o640), MAY_READ, GROUPIE)
    assert _denied(_attr(reg | 0o640), MAY_READ, STRANGER)
    assert _denied(_attr(reg | 0o047), MAY_READ, OWNER)  # owner class only, no fallthrough
    assert not _denied(_attr(reg | 0o000), MAY_READ | MAY_WRITE, ROOT)
    assert _denied(_attr(reg | 0o666), MAY_EXEC, ROOT)  # exec needs some x bit
    assert not _denied(_attr(reg | 0o100), MAY_EXEC, ROOT)
    assert not _denied(_attr(stat_module.S_IFDIR | 0o000), MAY_EXEC | MAY_WRITE, ROOT)


async def test_create_in_a_directory_without_write_permission() -> None:
    async with mounted(options=PERMISSIONS) as (fs, daemon):
        daemon.node("dir").mode = stat_module.S_IFDIR | 0o755
        dir_ = await fs.lookup(1, b"dir", caller=OWNER)
        with pytest.raises(OSError) as info:
            await fs.mkdir(dir_.node, b"x", 0o755, 0, caller=STRANGER)
        assert info.value.errno == errno.EACCES
        with pytest.raises(OSError) as info:
            await fs.create(dir_.node, b"x", 0o644, os.O_CREAT | os.O_RDWR, 0, caller=GROUPIE)
        assert info.value.errno == errno.EACCES
        assert daemon.count(O.MKDIR) == daemon.count(O.CREATE) == 0
        await fs.mkdir(dir_.node, b"x", 0o755, 0, caller=OWNER)
        await fs.mkdir(dir_.node, b"y", 0o755, 0, caller=ROOT)
        with pytest.raises(OSError) as info:
            await fs.unlink(dir_.node, b"a", caller=STRANGER)
        assert info.value.errno == errno.EACCES


async def test_stale_attributes_are_refreshed_before_denying() -> None:
    async with mounted(options=PERMISSIONS) as (fs, daemon):
        dir_ = await fs.lookup(1, b"dir", caller=OWNER)
        daemon.node("dir").mode = stat_module.S_IFDIR | 0o777  # changed behind our back
        getattrs = daemon.count(O.GETATTR)
        await fs.mkdir(dir_.node, b"x", 0o755, 0, caller=STRANGER)
        assert daemon.count(O.GETATTR) == getattrs + 1  # EACCES → fresh GETATTR → allowed


async def test_sticky_directory() -> None:
    async with mounted(options=PERMISSIONS) as (fs, daemon):
        daemon.node("dir").mode = stat_module.S_IFDIR | 0o1777
        daemon.node("dir/a").uid = 2000  # STRANGER's
        dir_ = await fs.lookup(1, b"dir", caller=OWNER)
        with pytest.raises(OSError) as info:
            await fs.unlink(dir_.node, b"a", caller=GROUPIE)
        assert info.value.errno == errno.EPERM
        with pytest.raises(OSError) as info:
            await fs.rename(dir_.node, b"a", 1, b"stolen", caller=GROUPIE)
        assert info.value.errno == errno.EPERM
        await fs.unlink(dir_.node, b"b", caller=OWNER)  # the directory's owner may
        await fs.unlink(dir_.node, b"a", caller=STRANGER)  # the file's owner may


async def test_sticky_applies_without_default_permissions() -> None:
    from dataclasses import replace

    from fusehelp import OPTIONS

    async with mounted(options=replace(OPTIONS, allow_other=True)) as (fs, daemon):
        daemon.node("dir").mode = stat_module.S_IFDIR | 0o1777
        dir_ = await fs.lookup(1, b"dir", caller=OWNER)
        with pytest.raises(OSError) as info:
            await fs.unlink(dir_.node, b"a", caller=STRANGER)
        assert info.value.errno == errno.EPERM
        daemon.node("dir").mode = stat_module.S_IFDIR | 0o755
        # no sticky bit: the daemon decides (the fake allows everything)
        await fs.getattr(dir_.node, caller=OWNER)
        fs.sb.inodes.invalidate_attr(fs.sb.inodes.get(dir_.node))
        await fs.getattr(dir_.node, caller=OWNER)
        await fs.unlink(dir_.node, b"a", caller=STRANGER)


async def test_setattr_prepare() -> None:
    async with mounted(options=PERMISSIONS) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt", caller=OWNER)
        node = attrs.node
        for changes, caller, code in (
            (SetattrChanges(mode=0o600), STRANGER, errno.EPERM),
            (SetattrChanges(uid=2000), OWNER, errno.EPERM),
            (SetattrChanges(gid=2000), OWNER, errno.EPERM),
            (SetattrChanges(mtime=(5, 0)), STRANGER, errno.EPERM),
            (SetattrChanges(mtime=(0, UTIME_NOW)), STRANGER, errno.EACCES),
            (SetattrChanges(size=0), STRANGER, errno.EACCES),
        ):
            with pytest.raises(OSError) as info:
                await fs.setattr(node, changes, caller=caller)
            assert info.value.errno == code, changes
        assert daemon.count(O.SETATTR) == 0
        await fs.setattr(node, SetattrChanges(gid=3000), caller=Caller(1, 1000, 1000, [3000]))
        await fs.setattr(node, SetattrChanges(uid=2000), caller=ROOT)
        await fs.setattr(node, SetattrChanges(mode=0o666), caller=ROOT)
        await fs.setattr(node, SetattrChanges(mtime=(0, UTIME_NOW)), caller=GROUPIE)


async def test_o_trunc_needs_write_permission() -> None:
    async with mounted(options=PERMISSIONS) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt", caller=OWNER)
        with pytest.raises(OSError) as info:
            await fs.open(attrs.node, os.O_RDONLY | os.O_TRUNC, caller=STRANGER)
        assert info.value.errno == errno.EACCES
        assert daemon.count(O.OPEN) == 0


async def test_umask_without_dont_mask() -> None:
    async with mounted() as (fs, daemon):
        await fs.mknod(1, b"f", stat_module.S_IFREG | 0o777, 0, 0o077)
        assert daemon.of(O.MKNOD)[0].arg.mode == stat_module.S_IFREG | 0o700
        assert daemon.of(O.MKNOD)[0].arg.umask == 0o077
