"""Extended attributes, write side (Linux fs/fuse/xattr.c fuse_setxattr, fuse_removexattr,
with the VFS's xattr_permission in front).

XATTR_CREATE and XATTR_REPLACE go to the daemon as they are; ENOSYS is remembered and is
EOPNOTSUPP from then on; success leaves the attributes stale (ctime).
"""

from __future__ import annotations

import errno
import stat as stat_module

from hypervisor.provider import Caller
from vufuse import protocol as p

from .inode import Inode
from .permission import MAY_WRITE, check_writable_mount, is_root, permission
from .superblock import Superblock
from .xattr import XATTR_SIZE_MAX, call_unless_unsupported

XATTR_CREATE = 1
XATTR_REPLACE = 2
XATTR_NAME_MAX = 255


async def _may_write(sb: Superblock, inode: Inode, name: bytes, caller: Caller | None) -> None:
    """xattr_permission for MAY_WRITE: trusted.* is root's; user.* only on files and
    directories; then the mode bits (under default_permissions)."""
    if not name or len(name) > XATTR_NAME_MAX:
        raise OSError(errno.ERANGE, "bad xattr name")
    check_writable_mount(sb)
    if name.startswith(b"trusted.") and not is_root(caller):
        raise OSError(errno.EPERM, "trusted xattrs need CAP_SYS_ADMIN")
    if name.startswith(b"user.") and inode.file_type not in (
        stat_module.S_IFREG,
        stat_module.S_IFDIR,
    ):
        raise OSError(errno.EPERM, "user xattrs only on files and directories")
    await permission(sb, inode, MAY_WRITE, caller)


async def setxattr(
    sb: Superblock, inode: Inode, name: bytes, value: bytes, flags: int, caller: Caller | None
) -> None:
    """setxattr(2): SETXATTR with the XATTR_CREATE/XATTR_REPLACE flags."""
    inode.check()
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise OSError(errno.EINVAL, "bad xattr flags")
    if len(value) > XATTR_SIZE_MAX:
        raise OSError(errno.E2BIG, "xattr value too large")
    await _may_write(sb, inode, name, caller)
    arg = p.SetxattrIn(size=len(value), flags=flags)
    request = p.SetxattrRequest(sb.header(inode.nodeid, caller), arg, name, value)
    await call_unless_unsupported(sb, request, "no_setxattr")
    sb.inodes.invalidate_attr(inode)


async def removexattr(sb: Superblock, inode: Inode, name: bytes, caller: Caller | None) -> None:
    """removexattr(2): REMOVEXATTR."""
    inode.check()
    await _may_write(sb, inode, name, caller)
    request = p.RemovexattrRequest(sb.header(inode.nodeid, caller), name)
    await call_unless_unsupported(sb, request, "no_removexattr")
    sb.inodes.invalidate_attr(inode)
