"""Extended attributes, read side (Linux fs/fuse/xattr.c): GETXATTR and LISTXATTR.

Sizes work as in the syscalls: size 0 asks for the length (the daemon answers with a
fuse_getxattr_out), a non-zero size asks for the value and the daemon answers ERANGE if it
does not fit.  A daemon answering ENOSYS is never asked again: EOPNOTSUPP from then on.
"""

from __future__ import annotations

import errno

from hypervisor.provider import Caller
from vufuse import protocol as p

from .inode import Inode
from .superblock import Superblock

XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536
_RETRIES = 4


async def getxattr(
    sb: Superblock, inode: Inode, name: bytes, size: int, caller: Caller | None
) -> int | bytes:
    """One GETXATTR: the value's length for ``size`` 0, else the value (ERANGE if larger)."""
    inode.check()
    if sb.connection.no_getxattr:
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no xattrs")
    size = min(size, XATTR_SIZE_MAX)
    request = p.GetxattrRequest(sb.header(inode.nodeid, caller), p.GetxattrIn(size=size), name)
    try:
        body = await sb.connection.call(request)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            sb.connection.no_getxattr = True
            raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no xattrs") from None
        raise
    if size == 0:
        return min(body.size, XATTR_SIZE_MAX)
    return bytes(body or b"")


async def listxattr(sb: Superblock, inode: Inode, size: int, caller: Caller | None) -> int | bytes:
    """One LISTXATTR: the list's length for ``size`` 0, else NUL-terminated names."""
    inode.check()
    if sb.connection.no_listxattr:
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no xattrs")
    size = min(size, XATTR_LIST_MAX)
    request = p.ListxattrRequest(sb.header(inode.nodeid, caller), p.GetxattrIn(size=size))
    try:
        body = await sb.connection.call(request)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            sb.connection.no_listxattr = True
            raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no xattrs") from None
        raise
    if size == 0:
        return min(body.size, XATTR_LIST_MAX)
    names = bytes(body or b"")
    _verify_list(names)
    return names


def _verify_list(names: bytes) -> None:
    """fuse_verify_xattr_list: every name non-empty and NUL-terminated, else EIO."""
    position = 0
    while position < len(names):
        end = names.find(b"\0", position)
        if end <= position:
            raise OSError(errno.EIO, "FUSE daemon sent a bad xattr list")
        position = end + 1


async def whole_value(sb: Superblock, inode: Inode, name: bytes, caller: Caller | None) -> bytes:
    """The whole value, asking for its size first (a value that grows in between retries)."""
    for _ in range(_RETRIES):
        length = await getxattr(sb, inode, name, 0, caller)
        assert isinstance(length, int)
        if length == 0:
            return b""
        try:
            value = await getxattr(sb, inode, name, length, caller)
        except OSError as exc:
            if exc.errno != errno.ERANGE:
                raise
            continue
        assert isinstance(value, bytes)
        return value
    raise OSError(errno.ERANGE, "xattr value keeps growing")


async def whole_list(sb: Superblock, inode: Inode, caller: Caller | None) -> list[bytes]:
    """All names, asking for the list's size first."""
    for _ in range(_RETRIES):
        length = await listxattr(sb, inode, 0, caller)
        assert isinstance(length, int)
        if length == 0:
            return []
        try:
            names = await listxattr(sb, inode, length, caller)
        except OSError as exc:
            if exc.errno != errno.ERANGE:
                raise
            continue
        assert isinstance(names, bytes)
        return [name for name in names.split(b"\0") if name]
    raise OSError(errno.ERANGE, "xattr list keeps growing")
