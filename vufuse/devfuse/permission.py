"""Permission checks of the VFS as FUSE mounts get them (fs/namei.c generic_permission,
may_create, may_delete, check_sticky; fs/fuse/dir.c fuse_permission).

Under ``default_permissions`` the kernel checks the mode bits itself, with the caller's fsuid,
fsgid and supplementary groups, refreshing stale attributes first and once more when the answer
is EACCES (the root node starts with no attributes at all).  Without it the daemon decides and
only the checks the VFS makes for every file system remain (sticky directories, CAP_MKNOD...).
Capabilities are approximated by fsuid 0, as for an unprivileged user namespace root.
"""

from __future__ import annotations

import errno
import stat as stat_module

from hypervisor.provider import Caller
from vufuse import protocol as p

from . import dir as fuse_dir
from .inode import Inode
from .superblock import Superblock

MAY_EXEC = 1
MAY_WRITE = 2
MAY_READ = 4


def is_root(caller: Caller | None) -> bool:
    """The caller has the capabilities (fsuid 0); None is the hypervisor itself."""
    return caller is None or caller.uid == 0


def in_group(caller: Caller, gid: int) -> bool:
    """in_group_p: the fsgid or a supplementary group."""
    return caller.gid == gid or gid in caller.groups


def owner_or_capable(caller: Caller | None, attr: p.Attr) -> bool:
    """inode_owner_or_capable: the fsuid owns it, or CAP_FOWNER."""
    return is_root(caller) or (caller is not None and caller.uid == attr.uid)


def generic_permission(attr: p.Attr, mask: int, caller: Caller) -> None:
    """The mode-bit check (acl_permission_check) with root's DAC override; EACCES."""
    mode = attr.mode
    if caller.uid == attr.uid:
        bits = (mode >> 6) & 7
    elif in_group(caller, attr.gid):
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    if not mask & 7 & ~bits:
        return
    if caller.uid == 0:
        # CAP_DAC_OVERRIDE: everything on a directory; on a file exec only if someone may.
        if stat_module.S_ISDIR(mode) or not mask & MAY_EXEC or mode & 0o111:
            return
    raise OSError(errno.EACCES, "permission denied")


async def permission(sb: Superblock, inode: Inode, mask: int, caller: Caller | None) -> None:
    """fuse_permission under default_permissions (nothing to check without it)."""
    if caller is None or not sb.options.default_permissions:
        return
    refreshed = False
    if inode.attr_deadline <= sb.clock():
        await fuse_dir.getattr(sb, inode, caller)
        refreshed = True
    try:
        generic_permission(inode.attr, mask, caller)
    except OSError as exc:
        if exc.errno != errno.EACCES or refreshed:
            raise
        await fuse_dir.getattr(sb, inode, caller, force=True)
        generic_permission(inode.attr, mask, caller)


def check_writable_mount(sb: Superblock) -> None:
    """mnt_want_write: EROFS on a read-only mount."""
    if sb.options.readonly:
        raise OSError(errno.EROFS, "read-only FUSE mount")


async def may_create(sb: Superblock, directory: Inode, caller: Caller | None) -> None:
    """may_create: write and search permission on the directory."""
    directory.check()
    if directory.file_type != stat_module.S_IFDIR:
        raise OSError(errno.ENOTDIR, "not a directory")
    await permission(sb, directory, MAY_WRITE | MAY_EXEC, caller)


def check_sticky(directory: p.Attr, victim: p.Attr, caller: Caller | None) -> None:
    """check_sticky: in a sticky directory only the file's or directory's owner (or
    CAP_FOWNER) may remove or rename a name; EPERM.  The VFS does this for every fs."""
    if not directory.mode & stat_module.S_ISVTX or is_root(caller):
        return
    assert caller is not None
    if caller.uid in (victim.uid, directory.uid):
        return
    raise OSError(errno.EPERM, "sticky directory")


async def may_delete(
    sb: Superblock, directory: Inode, victim: Inode, caller: Caller | None
) -> None:
    """may_delete: write and search on the directory, then the sticky bit."""
    await permission(sb, directory, MAY_WRITE | MAY_EXEC, caller)
    check_sticky(directory.attr, victim.attr, caller)


def strip_sgid(mode: int, directory: p.Attr, caller: Caller | None) -> int:
    """mode_strip_sgid: a new setgid-executable file keeps S_ISGID only when the directory
    is setgid, the caller is in the group, or has CAP_FSETID."""
    if (mode & (stat_module.S_ISGID | stat_module.S_IXGRP)) != (
        stat_module.S_ISGID | stat_module.S_IXGRP
    ):
        return mode
    if stat_module.S_ISDIR(mode) or directory.mode & stat_module.S_ISGID or is_root(caller):
        return mode
    assert caller is not None
    if in_group(caller, directory.gid):
        return mode
    return mode & ~stat_module.S_ISGID
