"""fcntl, dup, ioctl, mmap, close and the rest on virtual fds (sendfile/splice: splicing.py).

Per-fd state (FD_CLOEXEC, locks) lives in the kernel on the socket itself, so most of these
only need an answer when the kernel's, on a socket, would differ from a file's.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as stat_module
import struct

from ..abi import (
    F_DUPFD,
    F_DUPFD_CLOEXEC,
    F_GETFL,
    F_SETFL,
    O_ACCMODE,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_EXCL,
    O_LARGEFILE,
    O_NOCTTY,
    O_RDONLY,
    O_TRUNC,
    O_WRONLY,
    SETFL_MASK,
)
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..syscalls import FD_BASE
from ..vfd import OpenFileDescription, lowest_free_fd
from .common import LetKernel, error, kernel_unless_virtual, virtual_fd
from .files import inject_fd, read_at

FIOCLEX, FIONCLEX, FIONREAD = 0x5451, 0x5450, 0x541B

_libc = ctypes.CDLL(None, use_errno=True)



# --- fcntl, dup, ioctl, close ------------------------------------------------------------------
def _pidfd_getfd(call: Call, fd: int) -> int:
    """A copy, in vufuse, of fd `fd` of the caller (same open file description)."""
    pidfd = os.pidfd_open(call.tgid)
    try:
        number = _libc.syscall(438, pidfd, fd, 0)
        if number < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return int(number)
    finally:
        os.close(pidfd)


def _duplicate(call: Call, fd: int, newfd: int, cloexec: bool) -> Reply:
    description = call.session.vfds.lookup_fd(call.tid, fd)
    copy = _pidfd_getfd(call, fd)
    try:
        return inject_fd(call, copy, newfd, cloexec, description)
    finally:
        os.close(copy)


@kernel_unless_virtual
async def handle_fcntl(call: Call) -> Reply:
    """F_GETFL/F_SETFL from the description; F_DUPFD* kept in the virtual range."""
    description = virtual_fd(call, 0)
    command = call.int_arg(1)
    if command == F_GETFL:
        hidden = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC
        return (description.flags & ~hidden) | O_LARGEFILE
    if command == F_SETFL:
        if description.path_only:
            raise error(errno.EBADF)
        argument = call.int_arg(2)
        description.flags = (description.flags & ~SETFL_MASK) | (argument & SETFL_MASK)
        return 0
    if command in (F_DUPFD, F_DUPFD_CLOEXEC):
        start = call.int_arg(2)
        if start < 0:
            raise error(errno.EINVAL)
        # Below FD_BASE the copy would escape the trap (DESIGN §4): kept virtual instead.
        newfd = lowest_free_fd(call.tid, max(start, FD_BASE), call.tgid)
        return _duplicate(call, call.int_arg(0), newfd, command == F_DUPFD_CLOEXEC)
    return CONTINUE  # F_GETFD/F_SETFD (per-fd, kernel-true), locks, owners...


@kernel_unless_virtual
async def handle_dup(call: Call) -> Reply:
    """dup(fd) of a virtual fd: the copy goes to the lowest free number ≥ FD_BASE."""
    virtual_fd(call, 0)
    return _duplicate(call, call.int_arg(0), lowest_free_fd(call.tid, table=call.tgid), False)


@kernel_unless_virtual
async def handle_dup2(call: Call) -> Reply:
    """dup2/dup3(old, new[, flags]) with a virtual `old` and `new` ≥ FD_BASE."""
    old, new = call.int_arg(0), call.int_arg(1)
    flags = call.int_arg(2) if call.name == "dup3" else 0
    if call.session.vfds.lookup_fd(call.tid, old) is None:
        from .fdtable import handle_dup2_over

        return await handle_dup2_over(call)  # only `new` may be virtual: FLUSH it
    call.touched_virtual = True
    if call.name == "dup3" and (old == new or flags & ~O_CLOEXEC):
        raise error(errno.EINVAL)
    if old == new:
        return new
    if new < FD_BASE:
        description = call.session.vfds.lookup_fd(call.tid, old)
        assert description is not None
        if description.path_only:
            raise LetKernel  # the known hole: a virtual socket at a low number
        if description.location.attrs.is_dir:
            return _stand_in_at(call, description, new, bool(flags & O_CLOEXEC))
        if not stat_module.S_ISREG(description.location.attrs.mode):
            raise LetKernel
        if description.flags & O_ACCMODE != O_RDONLY:
            return await _writable_stand_in_at(call, description, new, bool(flags & O_CLOEXEC))
        return await _snapshot_at(call, description, new, bool(flags & O_CLOEXEC))
    replaced = call.session.vfds.lookup_fd(call.tid, new) if _is_open(call, new) else None
    if replaced is not None:
        from .fdtable import flush

        await flush(call, replaced)  # ADDFD's replace_fd closes it: filp_close's FLUSH
    return _duplicate(call, old, new, bool(flags & O_CLOEXEC))


def _is_open(call: Call, fd: int) -> bool:
    return os.path.lexists(f"/proc/{call.tid}/fd/{fd}")


def _stand_in_at(
    call: Call, description: OpenFileDescription, newfd: int, cloexec: bool
) -> Reply:
    """A virtual directory at a low fd: its cwd stand-in, so read says EISDIR, fchdir works."""
    stand_in = call.session.stand_ins.stand_in_for(description.location)
    fd = os.open(stand_in, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return inject_fd(call, fd, newfd, cloexec)
    finally:
        os.close(fd)


_SNAPSHOT_PIECE = 8 << 20


async def _snapshot_at(
    call: Call, description: OpenFileDescription, newfd: int, cloexec: bool
) -> Reply:
    """`cmd < /mnt/f`: the low fd gets a memfd holding the file, at the current offset.

    Reads on fds below FD_BASE are not trapped, so the socket can't go there.  The copy no
    longer shares its offset with the virtual fd (docs/hypervisor.md, known holes).
    """
    memfd = await snapshot_fd(call, description)
    try:
        return inject_fd(call, memfd, newfd, cloexec)
    finally:
        os.close(memfd)


async def snapshot_fd(call: Call, description: OpenFileDescription) -> int:
    """A memfd (ours, the caller closes it) holding the file, at the description's offset."""
    provider = description.location.mount.provider
    await provider.getattr(description.location.ino, caller=call.caller)  # a fresh i_size
    memfd = os.memfd_create("vufuse-snapshot", os.MFD_CLOEXEC)
    try:
        async with description.lock:
            position = 0
            while True:
                # Pieces of a few MiB: a whole-file read would build the file twice in memory.
                chunk = await read_at(call, description, position, _SNAPSHOT_PIECE)
                if not chunk:
                    break
                os.write(memfd, chunk)
                position += len(chunk)
            os.lseek(memfd, min(description.offset, position), os.SEEK_SET)
    except BaseException:
        os.close(memfd)
        raise
    return memfd


async def _writable_stand_in_at(
    call: Call, description: OpenFileDescription, newfd: int, cloexec: bool
) -> Reply:
    """`cmd > /mnt/f`, `>>`, `<>`: a memfd written back to the file (hypervisor/lowfd.py)."""
    memfd = await writable_stand_in_fd(call, description, call.int_arg(0))
    try:
        return inject_fd(call, memfd, newfd, cloexec)
    finally:
        os.close(memfd)


async def writable_stand_in_fd(call: Call, description: OpenFileDescription, fd: int) -> int:
    """A written-back memfd (ours, the caller closes it) for `description`, the caller's
    virtual fd `fd`."""
    provider = description.location.mount.provider
    size = (await provider.getattr(description.location.ino, caller=call.caller)).size
    holder = _pidfd_getfd(call, fd)
    contents: bytes | None = None
    try:
        async with description.lock:
            if not (description.flags & O_APPEND and description.flags & O_ACCMODE == O_WRONLY):
                contents = await _read_whole(call, description, size) if size else b""
    except BaseException:
        os.close(holder)
        raise
    return await call.session.low_fds.create(
        description, holder, contents, size, call.caller, call.tgid
    )


async def _read_whole(call: Call, description: OpenFileDescription, size: int) -> bytes:
    """The file's bytes (a write-only description reads through a read-only open of its own:
    only the chunks a writer changes are written back, so the rest must be known)."""
    assert description.handle is not None
    handle, own = description.handle, False
    if description.flags & O_ACCMODE == O_WRONLY:
        location = description.location
        handle = await location.mount.provider.open(location.ino, O_RDONLY, caller=call.caller)
        own = True
    data = bytearray()
    try:
        while True:
            chunk = await handle.read(len(data), max(size - len(data), 1 << 20),
                                      caller=call.caller)
            if not chunk:
                return bytes(data)
            data += chunk
    finally:
        if own:
            await handle.flush(call.tgid, caller=call.caller)
            await handle.release()


@kernel_unless_virtual
async def handle_ioctl(call: Call) -> Reply:
    """FIOCLEX/FIONCLEX are per-fd (kernel-true); FIONREAD as for a file; else ENOTTY.
    On a real fd: an extension's request (its device, read natively), else the kernel's."""
    request = call.arg(1) & 0xFFFFFFFF
    if call.session.vfds.lookup_fd(call.tid, call.int_arg(0)) is None:
        handler = call.session.extensions.ioctl_handler(request)
        result = None if handler is None else await handler(call)
        return CONTINUE if result is None else result
    description = virtual_fd(call, 0)
    if request in (FIOCLEX, FIONCLEX):
        return CONTINUE
    if description.path_only:
        raise error(errno.EBADF)
    if request == FIONREAD and not description.location.attrs.is_dir:
        provider = description.location.mount.provider
        size = (await provider.getattr(description.location.ino, caller=call.caller)).size
        left = max(0, min(size - description.offset, 2**31 - 1))
        call.write_memory(call.arg(2), struct.pack("<i", left))
        return 0
    raise error(errno.ENOTTY)


# --- everything else on a read-only virtual fd ------------------------------------------------
def _answer_for(errno_value: int, allow_path: bool = False) -> object:
    @kernel_unless_virtual
    async def handler(call: Call) -> Reply:
        fds = [i for i in range(6) if _is_virtual_arg(call, i)]
        if not fds:
            return CONTINUE
        description = call.session.vfds.lookup_fd(call.tid, call.int_arg(fds[0]))
        if description is not None and description.path_only and not allow_path:
            raise error(errno.EBADF)
        if errno_value == 0:
            return 0
        raise error(errno_value)

    return handler


def _is_virtual_arg(call: Call, index: int) -> bool:
    from ..syscalls import rule_for

    rule = rule_for(call.nr)
    if rule is None or index not in rule.fd_args:
        return False
    try:
        found = call.session.vfds.lookup_fd(call.tid, call.int_arg(index))
    except OSError:
        return False
    if found is not None:
        call.touched_virtual = True
    return found is not None


def register(dispatcher: Dispatcher) -> None:
    """Route the other syscalls on virtual fds."""
    dispatcher.register("fcntl", handle_fcntl)
    dispatcher.register("dup", handle_dup)
    dispatcher.register("dup2 dup3", handle_dup2)
    dispatcher.register("ioctl", handle_ioctl)
    not_open_for_writing = "write pwrite64 writev pwritev pwritev2 fallocate vmsplice"
    dispatcher.register(not_open_for_writing, _answer_for(errno.EBADF))  # type: ignore[arg-type]
    dispatcher.register("ftruncate", _answer_for(errno.EINVAL))  # type: ignore[arg-type]
    dispatcher.register(
        "fchmod fchown fsetxattr fremovexattr", _answer_for(errno.EROFS, True)  # type: ignore[arg-type]
    )
    dispatcher.register(
        "fsync fdatasync syncfs readahead fadvise64 sync_file_range", _answer_for(0)  # type: ignore[arg-type]
    )
    dispatcher.register("copy_file_range", _answer_for(errno.EXDEV))  # type: ignore[arg-type]
    dispatcher.register("tee", _answer_for(errno.EINVAL))  # type: ignore[arg-type]
    dispatcher.register(
        "quotactl_fd open_by_handle_at", _answer_for(errno.EOPNOTSUPP, True)  # type: ignore[arg-type]
    )
    dispatcher.register(
        "accept sendto recvfrom sendmsg recvmsg shutdown listen getsockname"
        " getpeername setsockopt getsockopt accept4 recvmmsg",
        _answer_for(errno.ENOTSOCK, True),  # type: ignore[arg-type]
    )
