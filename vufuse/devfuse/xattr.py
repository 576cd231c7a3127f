"""Extended attributes, read side (Linux fs/fuse/xattr.c): GETXATTR and LISTXATTR.

Sizes work as in the syscalls: size 0 asks for the length (the daemon answers with a
fuse_getxattr_out), a non-zero size asks for the value and the daemon answers ERANGE if it
does not fit.  A daemon answering ENOSYS is never asked again: EOPNOTSUPP from then on.
"""

from __future__ import annotations

import errno
from typing import Any

from hypervisor.provider import Caller
from vufuse import protocol as p

from .inode import Inode
from .superblock import Superblock

XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536
_RETRIES = 4


async def call_unless_unsupported(sb: Superblock, request: p.Request, flag: str) -> Any:
    """Send an xattr request unless the daemon already answered ENOSYS to this opcode.

    `flag` names the connection's remembered no_* attribute (fuse_conn's no_getxattr …):
    ENOSYS sets it, and from then on the caller gets EOPNOTSUPP without a round trip.
    """
    connection = sb.connection
    opcode = type(request).__name__.removesuffix("Request").upper()
    unsupported = OSError(errno.EOPNOTSUPP, f"FUSE daemon has no {opcode}")
    if getattr(connection, flag):
        raise unsupported
    try:
        return await connection.call(request)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        setattr(connection, flag, True)
        raise unsupported from None


async def getxattr(
    sb: Superblock, inode: Inode, name: bytes, size: int, caller: Caller | None
) -> int | bytes:
    """One GETXATTR: the value's length for ``size`` 0, else the value (ERANGE if larger)."""
    inode.check()
    size = min(size, XATTR_SIZE_MAX)
    request = p.GetxattrRequest(sb.header(inode.nodeid, caller), p.GetxattrIn(size=size), name)
    body = await call_unless_unsupported(sb, request, "no_getxattr")
    if size == 0:
        return min(body.size, XATTR_SIZE_MAX)
    return bytes(body or b"")


async def listxattr(sb: Superblock, inode: Inode, size: int, caller: Caller | None) -> int | bytes:
    """One LISTXATTR: the list's length for ``size`` 0, else NUL-terminated names."""
    inode.check()
    size = min(size, XATTR_LIST_MAX)
    request = p.ListxattrRequest(sb.header(inode.nodeid, caller), p.GetxattrIn(size=size))
    body = await call_unless_unsupported(sb, request, "no_listxattr")
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
