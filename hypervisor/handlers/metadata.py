"""stat, statx, statfs, access, readlink and the reading xattr calls.

Invalid flags are left to the kernel (LetKernel before any lookup): it checks them before it
looks at the path, so its answer is the right one even for a virtual path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as stat_module
import struct

from .. import permission
from ..abi import (
    AT_EACCESS,
    AT_EMPTY_PATH,
    AT_NO_AUTOMOUNT,
    AT_STATX_SYNC_TYPE,
    AT_SYMLINK_NOFOLLOW,
    STATX_SIZE,
    XATTR_LIST_MAX,
    XATTR_NAME_MAX,
    XATTR_SIZE_MAX,
    attributes_from_stat,
    pack_stat,
    pack_statfs,
    pack_statx,
)
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..mounts import MS_RDONLY
from ..paths import Location, RealLocation, Resolution, VirtualLocation
from .common import LetKernel, error, kernel_unless_virtual, resolve, virtual_fd

_libc = ctypes.CDLL(None, use_errno=True)
_XATTR_ARGS = struct.Struct("<QII")
_AT_STATX_FORCE_SYNC = 0x2000


async def _fresh(location: VirtualLocation, call: Call) -> VirtualLocation:
    attrs = await location.mount.provider.getattr(location.ino, caller=call.caller)
    return VirtualLocation(location.mount, location.parts, location.inodes, attrs)


def _host_stat(path: bytes, follow: bool) -> bytes:
    result = os.stat(path, follow_symlinks=follow)
    return pack_stat(attributes_from_stat(result), result.st_dev)


async def _stat_bytes(location: Location, follow: bool, call: Call) -> bytes:
    if isinstance(location, RealLocation):
        return _host_stat(location.path, follow)
    fresh = await _fresh(location, call)
    return pack_stat(fresh.attrs, location.mount.dev)


async def _resolved_stat(result: Resolution, follow: bool, call: Call, generation: int) -> bytes:
    """stat's bytes for a resolved path; a virtual answer is offered to the answer cache."""
    location = result.location
    if isinstance(location, RealLocation):
        return _host_stat(location.path, follow)
    attrs = (await _fresh(location, call)).attrs
    call.session.answers.offer(call.lexical_key, result, attrs, generation)
    return pack_stat(attrs, location.mount.dev)


@kernel_unless_virtual
async def handle_stat(call: Call) -> Reply:
    """stat(path, buf) and lstat(path, buf)."""
    generation = call.session.answers.generation()  # before anything is looked up
    follow = call.name == "stat"
    result = await resolve(call, 0, follow=follow)
    call.write_memory(call.arg(1), await _resolved_stat(result, follow, call, generation))
    return 0


@kernel_unless_virtual
async def handle_newfstatat(call: Call) -> Reply:
    """newfstatat(dirfd, path, buf, flags)."""
    flags = call.int_arg(3)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH):
        raise LetKernel
    generation = call.session.answers.generation()
    follow = not flags & AT_SYMLINK_NOFOLLOW
    result = await resolve(call, 1, 0, follow=follow, at_flags=flags)
    call.write_memory(call.arg(2), await _resolved_stat(result, follow, call, generation))
    return 0


@kernel_unless_virtual
async def handle_fstat(call: Call) -> Reply:
    """fstat(fd, buf)."""
    description = virtual_fd(call, 0)
    await call.session.low_fds.settle(description.location.mount)
    attrs = None
    if description.handle is not None:
        attrs = await description.handle.getattr(caller=call.caller)
    if attrs is None:
        data = await _stat_bytes(description.location, True, call)
    else:
        data = pack_stat(attrs, description.location.mount.dev)
    call.write_memory(call.arg(1), data)
    return 0


def _host_statx(path: bytes, flags: int, mask: int) -> bytes:
    buffer = ctypes.create_string_buffer(STATX_SIZE)
    if _libc.syscall(332, -100, path, flags, mask, buffer) < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return buffer.raw


@kernel_unless_virtual
async def handle_statx(call: Call) -> Reply:
    """statx(dirfd, path, flags, mask, buf)."""
    flags, mask = call.int_arg(2), call.arg(3) & 0xFFFFFFFF
    valid = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE
    if flags & ~valid or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or mask & 0x80000000:
        raise LetKernel
    generation = call.session.answers.generation()
    follow = not flags & AT_SYMLINK_NOFOLLOW
    result = await resolve(call, 1, 0, follow=follow, at_flags=flags)
    location = result.location
    if isinstance(location, RealLocation):
        data = _host_statx(location.path, flags & ~AT_EMPTY_PATH, mask)
    else:
        fresh = await _fresh(location, call)
        if not flags & _AT_STATX_FORCE_SYNC:
            call.session.answers.offer(call.lexical_key, result, fresh.attrs, generation)
        data = pack_statx(fresh.attrs, location.mount.dev, location.mount.mount_id,
                          not location.parts)
    call.write_memory(call.arg(4), data)
    return 0


async def _statfs_bytes(location: Location, call: Call) -> bytes:
    if isinstance(location, RealLocation):
        buffer = ctypes.create_string_buffer(120)
        if _libc.statfs(location.path, buffer) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return buffer.raw
    info = await location.mount.provider.statfs(location.ino, caller=call.caller)
    return pack_statfs(info, location.mount.statfs_flags())


@kernel_unless_virtual
async def handle_statfs(call: Call) -> Reply:
    """statfs(path, buf)."""
    result = await resolve(call, 0)
    call.write_memory(call.arg(1), await _statfs_bytes(result.location, call))
    return 0


@kernel_unless_virtual
async def handle_fstatfs(call: Call) -> Reply:
    """fstatfs(fd, buf)."""
    description = virtual_fd(call, 0)
    call.write_memory(call.arg(1), await _statfs_bytes(description.location, call))
    return 0


# --- access ----------------------------------------------------------------------------------
@kernel_unless_virtual
async def handle_access(call: Call) -> Reply:
    """access, faccessat, faccessat2: real ids unless AT_EACCESS; W_OK on a ro mount: EROFS."""
    if call.name == "access":
        path_arg, dirfd_arg, mode, flags = 0, None, call.int_arg(1), 0
    else:
        path_arg, dirfd_arg, mode = 1, 0, call.int_arg(2)
        flags = call.int_arg(3) if call.name == "faccessat2" else 0
    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise LetKernel
    result = await resolve(
        call, path_arg, dirfd_arg, follow=not flags & AT_SYMLINK_NOFOLLOW, at_flags=flags
    )
    location = result.location
    if isinstance(location, RealLocation):
        return 0 if os.access(location.path, mode, effective_ids=bool(flags & AT_EACCESS),
                              follow_symlinks=not flags & AT_SYMLINK_NOFOLLOW) else _raise_access(
            location.path, mode)
    attrs = (await _fresh(location, call)).attrs
    kind = stat_module.S_IFMT(attrs.mode)
    read_only = location.mount.mount_flags & MS_RDONLY or "ro" in location.mount.options
    if mode & os.W_OK and read_only and kind in (stat_module.S_IFREG, stat_module.S_IFDIR,
                                                 stat_module.S_IFLNK):
        raise error(errno.EROFS)
    if location.mount.options.get("default_permissions") is not None:
        permission.check(attrs, call.identity, mode, real_ids=not flags & AT_EACCESS)
    else:
        await location.mount.provider.access(location.ino, mode, caller=call.caller)
    return 0


def _raise_access(path: bytes, mode: int) -> int:
    try:
        os.stat(path)
    except OSError as failure:
        raise error(failure.errno or errno.EACCES) from None
    raise error(errno.EACCES)


# --- readlink --------------------------------------------------------------------------------
@kernel_unless_virtual
async def handle_readlink(call: Call) -> Reply:
    """readlink(path, buf, size) and readlinkat(dirfd, path, buf, size)."""
    at = call.name == "readlinkat"
    path_arg, dirfd_arg = (1, 0) if at else (0, None)
    buffer, size = (call.arg(2), call.int_arg(3)) if at else (call.arg(1), call.int_arg(2))
    if size <= 0:
        raise LetKernel
    result = await resolve(call, path_arg, dirfd_arg, follow=False,
                           at_flags=AT_EMPTY_PATH if at else 0, real_too=True)
    location = result.location
    if isinstance(location, RealLocation):
        target = os.readlink(location.path)
        shown = call.session.display_path(target)
        if shown == target and result.kernel_can_do_it:
            return CONTINUE
        target = shown
    else:
        if not location.attrs.is_symlink:
            raise error(errno.EINVAL)
        target = await location.mount.provider.readlink(location.ino, caller=call.caller)
    target = target[:size]
    call.write_memory(buffer, target)
    return len(target)


# --- xattrs ----------------------------------------------------------------------------------
def _xattr_name(call: Call, address: int) -> bytes:
    try:
        name = call.session.tracer.read_string(call.tid, address, XATTR_NAME_MAX + 1)
    except OSError as failure:
        raise error(errno.ERANGE if failure.errno == errno.ENAMETOOLONG else errno.EFAULT) from None
    if not name:
        raise error(errno.ERANGE)
    return name


def _copy_value(call: Call, value: bytes, buffer: int, size: int, limit: int) -> int:
    if size == 0:
        return len(value)
    if len(value) > min(size, limit):
        raise error(errno.ERANGE)
    call.write_memory(buffer, value)
    return len(value)


async def _xattr_location(call: Call) -> VirtualLocation:
    name = call.name
    if name.startswith("f"):
        description = virtual_fd(call, 0)
        if description.path_only:
            raise error(errno.EBADF)
        return description.location
    result = await resolve(call, 0, follow=not name.startswith("l"))
    if isinstance(result.location, RealLocation):
        raise LetKernel if result.kernel_can_do_it else error(errno.EOPNOTSUPP)
    return result.location


@kernel_unless_virtual
async def handle_getxattr(call: Call) -> Reply:
    """getxattr, lgetxattr, fgetxattr (path-or-fd, name, value, size)."""
    location = await _xattr_location(call)
    name = _xattr_name(call, call.arg(1))
    value = await location.mount.provider.getxattr(location.ino, name, caller=call.caller)
    return _copy_value(call, value, call.arg(2), call.arg(3), XATTR_SIZE_MAX)


@kernel_unless_virtual
async def handle_listxattr(call: Call) -> Reply:
    """listxattr, llistxattr, flistxattr (path-or-fd, list, size)."""
    location = await _xattr_location(call)
    names = await location.mount.provider.listxattr(location.ino, caller=call.caller)
    data = b"".join(name + b"\0" for name in names)
    return _copy_value(call, data, call.arg(1), call.arg(2), XATTR_LIST_MAX)


@kernel_unless_virtual
async def handle_xattrat(call: Call) -> Reply:
    """getxattrat(dirfd, path, at_flags, name, args*, usize) and listxattrat(..., list, size)."""
    at_flags = call.int_arg(2)
    if at_flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise LetKernel
    result = await resolve(call, 1, 0, follow=not at_flags & AT_SYMLINK_NOFOLLOW,
                           at_flags=at_flags)
    location = result.location
    if isinstance(location, RealLocation):
        raise error(errno.EOPNOTSUPP)
    provider = location.mount.provider
    if call.name == "listxattrat":
        names = await provider.listxattr(location.ino, caller=call.caller)
        data = b"".join(name + b"\0" for name in names)
        return _copy_value(call, data, call.arg(3), call.arg(4), XATTR_LIST_MAX)
    if call.arg(5) < _XATTR_ARGS.size:
        raise error(errno.EINVAL)
    value_pointer, size, flags = _XATTR_ARGS.unpack(call.read_memory(call.arg(4), 16))
    if flags:
        raise error(errno.EINVAL)
    name = _xattr_name(call, call.arg(3))
    value = await provider.getxattr(location.ino, name, caller=call.caller)
    return _copy_value(call, value, value_pointer, size, XATTR_SIZE_MAX)


def register(dispatcher: Dispatcher) -> None:
    """Route the metadata syscalls."""
    dispatcher.register("stat lstat", handle_stat)
    dispatcher.register("newfstatat", handle_newfstatat)
    dispatcher.register("fstat", handle_fstat)
    dispatcher.register("statx", handle_statx)
    dispatcher.register("statfs", handle_statfs)
    dispatcher.register("fstatfs", handle_fstatfs)
    dispatcher.register("access faccessat faccessat2", handle_access)
    dispatcher.register("readlink readlinkat", handle_readlink)
    dispatcher.register("getxattr lgetxattr fgetxattr", handle_getxattr)
    dispatcher.register("listxattr llistxattr flistxattr", handle_listxattr)
    dispatcher.register("getxattrat listxattrat", handle_xattrat)
