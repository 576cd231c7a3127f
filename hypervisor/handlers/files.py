"""open (creating with O_CREAT), the read family, lseek and getdents on virtual files."""

from __future__ import annotations

import ctypes
import errno
import os
import stat as stat_module
import struct
from collections.abc import Awaitable

from .. import permission
from ..abi import (
    IOV_MAX,
    MAX_RW_COUNT,
    O_ACCMODE,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOCTTY,
    O_NOFOLLOW,
    O_PATH,
    O_RDONLY,
    O_RDWR,
    O_TMPFILE,
    O_TRUNC,
    O_WRONLY,
    SEEK_CUR,
    SEEK_DATA,
    SEEK_END,
    SEEK_HOLE,
    SEEK_SET,
    pack_dirent,
    pack_dirent64,
)
from ..dispatch import ANSWERED, Call, Dispatcher, Reply
from ..mounts import MS_RDONLY
from ..paths import Confinement, RealLocation, VirtualLocation
from ..provider import OpenFile
from ..vfd import OpenFileDescription, lowest_free_fd
from .common import (
    LetKernel,
    MissingName,
    error,
    kernel_unless_virtual,
    resolve,
    virtual_fd,
)

_OPEN_HOW = struct.Struct("<QQQ")
_IOVEC = struct.Struct("<QQ")
_VALID_OPEN_FLAGS = 0o37777777 & ~0o40  # every defined O_* bit (FMODE_* bits excluded)
FIOCLEX, FIONCLEX, FIONREAD = 0x5451, 0x5450, 0x541B
MAP_ANONYMOUS = 0x20

_libc = ctypes.CDLL(None, use_errno=True)


# --- injecting an fd ----------------------------------------------------------------------
def inject_fd(
    call: Call, srcfd: int, newfd: int, cloexec: bool,
    holds: OpenFileDescription | None = None,
) -> Reply:
    """ADDFD `srcfd` into the caller at `newfd` (-1: lowest free) and answer with it.

    `holds`: the virtual description the new fd refers to, counted as held by the caller's
    process *before* the answer — once answered, the process may be killed at once, and its
    FLUSH at death (fdtable.FdDrops) must already know of the fd."""
    if holds is not None:
        call.session.fd_drops.held(call.tgid, call.caller, holds)
    try:
        call.session.tracer.addfd(
            call.notification.id, srcfd, newfd=newfd, cloexec=cloexec, send=True
        )
    except OSError as failure:
        if holds is not None:
            call.session.fd_drops.dropped(call.tgid, holds)  # no fd was installed
        if failure.errno == errno.ENOENT:
            return ANSWERED  # the caller is gone or was interrupted: nobody to answer
        code = errno.EMFILE if failure.errno == errno.EBADF else failure.errno or errno.EIO
        raise error(code) from failure
    return ANSWERED


async def open_virtual(
    call: Call, location: VirtualLocation, flags: int, handle: OpenFile | None = None
) -> Reply:
    """Open a virtual object and give the caller a virtual fd at the lowest free ≥ FD_BASE
    (`handle`: already opened, by a create)."""
    if handle is not None:
        pass
    elif not flags & O_PATH:
        handle = await location.mount.provider.open(location.ino, flags, caller=call.caller)
    else:
        location.mount.provider.hold(location.ino)  # an O_PATH fd pins it (unheld at release)
    description, theirs = call.session.vfds.create(location, flags, handle)
    try:
        newfd = lowest_free_fd(call.tid, table=call.tgid)
        reply = inject_fd(call, theirs.fileno(), newfd, bool(flags & O_CLOEXEC), description)
    except BaseException:
        theirs.close()
        await call.session.vfds.release(description)
        raise
    theirs.close()
    return reply


def _check_open(location: VirtualLocation, flags: int, call: Call) -> None:
    """The errors the kernel's do_open/may_open give on a read-only mount, in their order."""
    attrs = location.attrs
    if flags & O_CREAT and flags & O_EXCL:
        raise error(errno.EEXIST)
    if flags & O_CREAT and attrs.is_dir:
        raise error(errno.EISDIR)
    if flags & O_DIRECTORY and not attrs.is_dir:
        raise error(errno.ENOTDIR)
    if flags & O_PATH:
        return
    if attrs.is_symlink:
        raise error(errno.ELOOP)
    access = flags & O_ACCMODE
    if attrs.is_dir and (access != O_RDONLY or flags & O_TRUNC):
        raise error(errno.EISDIR)
    read_only = location.mount.mount_flags & MS_RDONLY or "ro" in location.mount.options
    if read_only and (access != O_RDONLY or flags & O_TRUNC) and stat_module.S_ISREG(attrs.mode):
        raise error(errno.EROFS)
    if location.mount.options.get("default_permissions") is not None:
        mask = 0
        if access in (O_RDONLY, O_RDWR):
            mask |= permission.MAY_READ
        if access in (O_WRONLY, O_RDWR) or flags & O_TRUNC:
            mask |= permission.MAY_WRITE
        permission.check(attrs, call.identity, mask or permission.MAY_READ)


async def _open(call: Call, path_arg: int, dirfd_arg: int | None, flags: int, mode: int,
                max_links: int | None = None, confine: Confinement | None = None) -> Reply:
    follow = not flags & O_NOFOLLOW and not (flags & O_CREAT and flags & O_EXCL)
    extensions = call.session.extensions
    try:
        result = await resolve(
            call, path_arg, dirfd_arg, follow=follow, real_too=extensions.has_special_files,
            max_links=max_links, confine=confine,
        )
    except OSError as failure:
        if failure.errno == errno.ENOENT and flags & O_CREAT and flags & O_TMPFILE != O_TMPFILE:
            missing = failure if isinstance(failure, MissingName) else None
            return await _create(call, path_arg, dirfd_arg, flags, mode, missing)
        raise
    location = result.location
    if isinstance(location, RealLocation):
        opener = extensions.special_file(location.path)
        if opener is not None and not flags & O_PATH:
            return await _open_special(call, opener(call, location.path, flags), flags)
        if result.kernel_can_do_it:
            raise LetKernel
        return await _open_real(call, location.path, flags, mode)
    if flags & O_TMPFILE == O_TMPFILE:
        return await _tmpfile(call, location, flags, mode)
    _check_open(location, flags, call)
    if stat_module.S_ISFIFO(location.attrs.mode) and not flags & O_PATH:
        # The kernel's local pipe, never the daemon (hypervisor/fifos.py).
        return await _open_special(call, call.session.fifos.open(location, flags), flags)
    return await open_virtual(call, location, flags)


async def _open_special(call: Call, opening: Awaitable[int], flags: int) -> Reply:
    """A special file (a device, a generated file): the extension's fd at the lowest free."""
    fd = await opening
    try:
        return inject_fd(call, fd, -1, bool(flags & O_CLOEXEC))
    finally:
        os.close(fd)


async def _create(
    call: Call, path_arg: int, dirfd_arg: int | None, flags: int, mode: int,
    missing: MissingName | None = None,
) -> Reply:  # fmt: skip
    """O_CREAT of a missing name: the provider's create when its directory is virtual
    (`missing`: the walk found the directory already, else it is walked again)."""
    from .write_side import Parent, _virtual_parent, parent_of

    if missing is not None:
        parent = Parent(missing.directory, missing.name, False, False)
    else:
        try:
            parent = await parent_of(call, path_arg, dirfd_arg)
        except LetKernel:
            raise error(errno.ENOENT) from None  # the walk failed inside a mount
    if parent.slash:
        raise error(errno.EISDIR)
    directory = _virtual_parent(call, parent, errno.EEXIST)
    provider = directory.mount.provider
    attrs, handle = await provider.create(
        directory.ino, parent.name, mode & 0o7777, flags, call.credentials.umask,
        caller=call.caller,
    )
    location = VirtualLocation(
        directory.mount, directory.parts + (parent.name,),
        directory.inodes + (attrs.node,), attrs,
    )
    return await open_virtual(call, location, flags & ~(O_CREAT | O_EXCL | O_TRUNC), handle)


async def _tmpfile(call: Call, location: VirtualLocation, flags: int, mode: int) -> Reply:
    """O_TMPFILE in a virtual directory."""
    if not location.attrs.is_dir:
        raise error(errno.ENOTDIR)
    if flags & O_ACCMODE == O_RDONLY:
        raise error(errno.EINVAL)
    attrs, handle = await location.mount.provider.tmpfile(
        location.ino, mode & 0o7777, flags, call.credentials.umask, caller=call.caller
    )
    made = VirtualLocation(location.mount, location.parts, location.inodes + (attrs.node,), attrs)
    return await open_virtual(call, made, flags & ~O_TMPFILE, handle)


async def _open_real(call: Call, path: bytes, flags: int, mode: int) -> Reply:
    """A real file reached through virtual territory: open it here and pass it over."""
    umask = call.credentials.umask
    previous = os.umask(umask)
    try:
        fd = os.open(path, (flags | O_CLOEXEC) & ~O_NOCTTY, mode & 0o7777)
    finally:
        os.umask(previous)
    try:
        return inject_fd(call, fd, -1, bool(flags & O_CLOEXEC))
    finally:
        os.close(fd)


@kernel_unless_virtual
async def handle_open(call: Call) -> Reply:
    """open(path, flags, mode)."""
    return await _open(call, 0, None, call.int_arg(1), call.int_arg(2))


@kernel_unless_virtual
async def handle_creat(call: Call) -> Reply:
    """creat(path, mode) = open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)."""
    return await _open(call, 0, None, O_CREAT | O_WRONLY | O_TRUNC, call.int_arg(1))


@kernel_unless_virtual
async def handle_openat(call: Call) -> Reply:
    """openat(dirfd, path, flags, mode)."""
    return await _open(call, 1, 0, call.int_arg(2), call.int_arg(3))


@kernel_unless_virtual
async def handle_openat2(call: Call) -> Reply:
    """openat2(dirfd, path, struct open_how *, size)."""
    size = call.arg(3)
    if size < _OPEN_HOW.size:
        raise LetKernel  # EINVAL from the kernel
    try:
        flags, mode, how = _OPEN_HOW.unpack(call.read_memory(call.arg(2), _OPEN_HOW.size))
    except OSError:
        raise LetKernel from None
    if flags & ~_VALID_OPEN_FLAGS or (mode and not flags & (O_CREAT | O_TMPFILE)):
        raise LetKernel
    if how & ~_RESOLVE_VALID or (how & RESOLVE_BENEATH and how & RESOLVE_IN_ROOT):
        raise LetKernel  # EINVAL: the kernel checks it before the walk
    if how & RESOLVE_CACHED and flags & (O_TRUNC | O_CREAT | O_TMPFILE):
        raise LetKernel
    if how & RESOLVE_CACHED:
        # "Only from the caches": EAGAIN is always a correct answer (the caller retries
        # without); a walk that never meets a mount is the kernel's.
        await resolve(call, 1, 0, follow=not flags & O_NOFOLLOW)  # LetKernel if all real
        raise error(errno.EAGAIN)
    confine = None
    if how & (RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV):
        confine = Confinement(beneath=bool(how & RESOLVE_BENEATH),
                              in_root=bool(how & RESOLVE_IN_ROOT),
                              no_xdev=bool(how & RESOLVE_NO_XDEV))  # fmt: skip
    return await _open(
        call, 1, 0, flags, mode, 0 if how & RESOLVE_NO_SYMLINKS else None, confine
    )


RESOLVE_NO_XDEV, RESOLVE_NO_SYMLINKS = 0x01, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
_RESOLVE_VALID = 0x3F


# --- reading ------------------------------------------------------------------------------
def check_readable(description: OpenFileDescription) -> None:
    """EBADF unless the description was opened for reading; EISDIR for a directory."""
    if description.path_only or (description.flags & O_ACCMODE) == O_WRONLY:
        raise error(errno.EBADF)
    if description.location.attrs.is_dir:
        raise error(errno.EISDIR)


async def read_at(
    call: Call, description: OpenFileDescription, position: int, size: int
) -> bytes:
    """Read through the provider's file handle, clamped like read(2) (MAX_RW_COUNT)."""
    assert description.handle is not None
    await call.session.low_fds.settle(description.location.mount)
    try:
        return await description.handle.read(position, min(size, MAX_RW_COUNT),
                                             caller=call.caller)
    finally:
        if description.readiness is not None:
            description.readiness.changed()  # an epoll stand-in shows the mask after it


def _iovecs(call: Call, address: int, count: int) -> list[tuple[int, int]]:
    if count < 0 or count > IOV_MAX:
        raise error(errno.EINVAL)
    raw = call.read_memory(address, _IOVEC.size * count)
    vectors = [_IOVEC.unpack_from(raw, i * _IOVEC.size) for i in range(count)]
    total = 0
    for _, length in vectors:
        if length >= 1 << 63:
            raise error(errno.EINVAL)
        total += length
    if total >= 1 << 63:
        raise error(errno.EINVAL)
    return vectors


def _scatter(call: Call, vectors: list[tuple[int, int]], data: bytes) -> None:
    done = 0
    for base, length in vectors:
        if done >= len(data):
            break
        piece = data[done : done + length]
        call.write_memory(base, piece)
        done += len(piece)


async def _read_common(call: Call, vectors: list[tuple[int, int]], position: int | None) -> int:
    description = virtual_fd(call, 0)
    check_readable(description)
    if position is not None and position < 0:
        raise error(errno.EINVAL)
    size = sum(length for _, length in vectors)
    async with description.lock:
        start = description.offset if position is None else position
        data = await read_at(call, description, start, size) if size else b""
        _scatter(call, vectors, data)
        if position is None:
            description.offset = start + len(data)
    return len(data)


@kernel_unless_virtual
async def handle_read(call: Call) -> Reply:
    """read(fd, buf, count)."""
    return await _read_common(call, [(call.arg(1), call.arg(2))], None)


@kernel_unless_virtual
async def handle_pread64(call: Call) -> Reply:
    """pread64(fd, buf, count, offset)."""
    return await _read_common(call, [(call.arg(1), call.arg(2))], call.long_arg(3))


@kernel_unless_virtual
async def handle_readv(call: Call) -> Reply:
    """readv(fd, iov, iovcnt)."""
    virtual_fd(call, 0)
    return await _read_common(call, _iovecs(call, call.arg(1), call.int_arg(2)), None)


@kernel_unless_virtual
async def handle_preadv(call: Call) -> Reply:
    """preadv(fd, iov, iovcnt, pos_l, pos_h) and preadv2(..., flags): pos -1 = current."""
    virtual_fd(call, 0)
    position: int | None = call.long_arg(3)
    if call.name == "preadv2" and position == -1:
        position = None
    return await _read_common(call, _iovecs(call, call.arg(1), call.int_arg(2)), position)


@kernel_unless_virtual
async def handle_lseek(call: Call) -> Reply:
    """lseek(fd, offset, whence) on files and directories (a directory offset is a cookie)."""
    description = virtual_fd(call, 0)
    if description.path_only:
        raise error(errno.EBADF)
    offset, whence = call.long_arg(1), call.int_arg(2)
    async with description.lock:
        if description.location.attrs.is_dir:
            if whence == SEEK_SET:
                new = offset
            elif whence == SEEK_CUR:
                new = description.offset + offset
            else:
                raise error(errno.EINVAL)
            if new < 0:
                raise error(errno.EINVAL)
            if new != description.offset:
                description.dir_buffer.clear()
            description.offset = new
            return new
        handle = description.handle
        if handle is not None and type(handle).lseek is not OpenFile.lseek:
            # The provider's own (FUSE: SEEK_END on fresh attributes, SEEK_DATA/SEEK_HOLE
            # asked with LSEEK, ESPIPE for a stream), as the kernel's f_op->llseek.
            new = await handle.lseek(offset, whence, description.offset, caller=call.caller)
            description.offset = new
            return new
        provider = description.location.mount.provider
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = description.offset + offset
        elif whence in (SEEK_END, SEEK_DATA, SEEK_HOLE):
            size = (await provider.getattr(description.location.ino, caller=call.caller)).size
            if whence == SEEK_END:
                new = size + offset
            else:
                if offset < 0 or offset >= size:
                    raise error(errno.ENXIO)
                new = offset if whence == SEEK_DATA else size
        else:
            raise error(errno.EINVAL)
        if new < 0:
            raise error(errno.EINVAL)
        description.offset = new
        return new


async def _getdents(call: Call, pack: object, size_of: object) -> Reply:
    description = virtual_fd(call, 0)
    if description.path_only:
        raise error(errno.EBADF)
    if not description.location.attrs.is_dir:
        raise error(errno.ENOTDIR)
    assert description.handle is not None
    capacity = call.arg(2) & 0xFFFFFFFF
    out = bytearray()
    async with description.lock:
        offset = description.offset
        buffered = list(description.dir_buffer)
        while True:
            if not buffered:
                if out:
                    # One request per getdents, as the kernel's readdir: what the caller does
                    # with these entries (stat them) decides how the next ones are asked for
                    # (READDIRPLUS when advised, fuse_use_readdirplus), and they are fresh.
                    break
                buffered = list(
                    await description.handle.readdir(offset, caller=call.caller, size=capacity)
                )
                if not buffered:
                    break
            record: bytes = pack(buffered[0])  # type: ignore[operator]
            if len(out) + len(record) > capacity:
                break
            out += record
            offset = buffered.pop(0).next_offset
        if not out and buffered:
            raise error(errno.EINVAL)  # the buffer can't hold one entry
        call.write_memory(call.arg(1), bytes(out))
        description.offset = offset
        description.dir_buffer[:] = buffered
    return len(out)


@kernel_unless_virtual
async def handle_getdents64(call: Call) -> Reply:
    """getdents64(fd, dirp, count): d_off is the provider's cookie, so seekdir works."""
    return await _getdents(call, pack_dirent64, None)


@kernel_unless_virtual
async def handle_getdents(call: Call) -> Reply:
    """getdents(fd, dirp, count), the old layout."""
    return await _getdents(call, pack_dirent, None)


def register(dispatcher: Dispatcher) -> None:
    """Route open and the reading syscalls."""
    dispatcher.register("open", handle_open)
    dispatcher.register("creat", handle_creat)
    dispatcher.register("openat", handle_openat)
    dispatcher.register("openat2", handle_openat2)
    dispatcher.register("read", handle_read)
    dispatcher.register("pread64", handle_pread64)
    dispatcher.register("readv", handle_readv)
    dispatcher.register("preadv preadv2", handle_preadv)
    dispatcher.register("lseek", handle_lseek)
    dispatcher.register("getdents64", handle_getdents64)
    dispatcher.register("getdents", handle_getdents)
