"""The write side on virtual fds: the write family, ftruncate, fchmod/fchown, fsync,
fallocate, fsetxattr/fremovexattr, and locks (flock, fcntl F_*LK, F_OFD_*LK).

With O_APPEND the provider ignores the offset; the description's position then follows the
file's size after the write, as the kernel's generic_write_checks leaves it.  Locks go to the
provider first; when it raises :class:`~hypervisor.provider.LocalLocks` (a FUSE daemon without
POSIX_LOCKS/FLOCK_LOCKS, or any provider that keeps none), the hypervisor's own table serves
them, as the kernel's posix_lock_file and flock_lock_file do.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from ..abi import (
    MAX_RW_COUNT,
    O_ACCMODE,
    O_APPEND,
    O_RDONLY,
    O_WRONLY,
    SEEK_CUR,
    SEEK_END,
    SEEK_SET,
)
from ..dispatch import ANSWERED, CONTINUE, Call, Dispatcher, Reply
from ..provider import LocalLocks, OpenFile, SetattrChanges
from ..syscall_result import continue_then_fail
from ..vfd import OpenFileDescription, fd_closed
from . import descriptors
from .common import error, kernel_unless_virtual, virtual_fd

_IOVEC = struct.Struct("<QQ")
_FLOCK = struct.Struct("<hh4xqqi4x")
F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
LOCK_COMMANDS = {F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW}
OFFSET_MAX = (1 << 63) - 1
_POLL = 0.02  # seconds between retries of a waiting lock

log = logging.getLogger("vufuse.hypervisor")
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def _writable(description: OpenFileDescription) -> None:
    if description.path_only or description.flags & O_ACCMODE == O_RDONLY:
        raise error(errno.EBADF)
    if description.location.attrs.is_dir:
        raise error(errno.EISDIR)


def _handle(description: OpenFileDescription) -> OpenFile:
    if description.handle is None:
        raise error(errno.EBADF)
    return description.handle


# --- the write family ------------------------------------------------------------------------
WRITE_CHUNK = 64 << 20
"""At most this much per write(2): a short write, as a huge one needs our memory at once."""


def _gather(call: Call, vectors: list[tuple[int, int]]) -> bytes:
    data = bytearray()
    for base, length in vectors:
        length = min(length, WRITE_CHUNK - len(data))
        if length <= 0:
            break
        data += call.read_memory(base, length)
    return bytes(data)


def _iovecs(call: Call, address: int, count: int) -> list[tuple[int, int]]:
    if count < 0 or count > 1024:
        raise error(errno.EINVAL)
    raw = call.read_memory(address, _IOVEC.size * count) if count else b""
    vectors = [_IOVEC.unpack_from(raw, i * _IOVEC.size) for i in range(count)]
    if any(length >= 1 << 63 for _, length in vectors):
        raise error(errno.EINVAL)
    return vectors


async def _write_common(
    call: Call, vectors: list[tuple[int, int]] | None, position: int | None
) -> Reply:
    description = virtual_fd(call, 0)
    _writable(description)
    if position is not None and position < 0:
        raise error(errno.EINVAL)
    if vectors is None:
        vectors = _iovecs(call, call.arg(1), call.int_arg(2))
    return await _write_common_at(call, description, _gather(call, vectors), position)


async def _write_common_at(
    call: Call, description: OpenFileDescription, data: bytes, position: int | None
) -> int:
    """Write `data` to a virtual description at `position` (None: its file position, which
    then moves; with O_APPEND to the file's new size)."""
    _writable(description)
    handle = _handle(description)
    async with description.lock:
        start = description.offset if position is None else position
        if not data:
            return 0
        written = await handle.write(start, data, caller=call.caller)
        if description.readiness is not None:
            description.readiness.changed()  # an epoll stand-in shows the mask after it
        if position is None:
            if description.flags & O_APPEND:
                provider = description.location.mount.provider
                attrs = await handle.getattr(caller=call.caller) or await provider.getattr(
                    description.location.ino, caller=call.caller
                )
                description.offset = attrs.size
            else:
                description.offset = start + written
    return written


@kernel_unless_virtual
async def handle_write(call: Call) -> Reply:
    """write(fd, buf, count)."""
    return await _write_common(call, [(call.arg(1), call.arg(2))], None)


@kernel_unless_virtual
async def handle_pwrite64(call: Call) -> Reply:
    """pwrite64(fd, buf, count, offset)."""
    return await _write_common(call, [(call.arg(1), call.arg(2))], call.long_arg(3))


@kernel_unless_virtual
async def handle_writev(call: Call) -> Reply:
    """writev(fd, iov, iovcnt)."""
    return await _write_common(call, None, None)


@kernel_unless_virtual
async def handle_pwritev(call: Call) -> Reply:
    """pwritev(fd, iov, iovcnt, pos_l, pos_h), pwritev2(..., flags): pos -1 = current."""
    position: int | None = call.long_arg(3)
    if call.name == "pwritev2" and position == -1:
        position = None
    return await _write_common(call, None, position)


# --- attributes through an fd ----------------------------------------------------------------
@kernel_unless_virtual
async def handle_ftruncate(call: Call) -> Reply:
    """ftruncate(fd, length)."""
    description = virtual_fd(call, 0)
    if description.path_only:
        raise error(errno.EBADF)
    length = call.long_arg(1)
    if length < 0:
        raise error(errno.EINVAL)
    if description.flags & O_ACCMODE == O_RDONLY or description.location.attrs.is_dir:
        raise error(errno.EINVAL)
    await settle_first(call, description)
    await _handle(description).setattr(
        SetattrChanges(size=length), lock_owner=call.tgid, caller=call.caller
    )
    if call.stand_in is not None:
        await call.session.low_fds.resized(call.stand_in, lambda fd: os.ftruncate(fd, length))
    return 0


@kernel_unless_virtual
async def handle_fchmod_fchown(call: Call) -> Reply:
    """fchmod(fd, mode), fchown(fd, uid, gid)."""
    description = virtual_fd(call, 0)
    handle = _handle(description)  # EBADF on O_PATH
    if call.name == "fchmod":
        changes = SetattrChanges(mode=call.int_arg(1) & 0o7777)
    else:
        uid, gid = call.arg(1) & 0xFFFFFFFF, call.arg(2) & 0xFFFFFFFF
        changes = SetattrChanges(
            uid=None if uid == 0xFFFFFFFF else uid, gid=None if gid == 0xFFFFFFFF else gid
        )
    await settle_first(call, description)
    await handle.setattr(changes, lock_owner=call.tgid, caller=call.caller)
    if call.stand_in is not None and changes.mode is not None:
        _quietly(os.fchmod, call.stand_in.memfd, changes.mode)  # fstat of the low fd shows it
    return 0


@kernel_unless_virtual
async def handle_fsync(call: Call) -> Reply:
    """fsync(fd), fdatasync(fd); syncfs(fd) is a no-op success."""
    description = virtual_fd(call, 0)
    handle = _handle(description)
    if call.name != "syncfs":
        await settle_first(call, description)  # what the caller wrote reaches the daemon
        await handle.fsync(call.name == "fdatasync", caller=call.caller)
    return 0


@kernel_unless_virtual
async def handle_fallocate(call: Call) -> Reply:
    """fallocate(fd, mode, offset, len)."""
    description = virtual_fd(call, 0)
    mode, offset, length = call.int_arg(1), call.long_arg(2), call.long_arg(3)
    if offset < 0 or length <= 0:
        raise error(errno.EINVAL)
    if description.path_only or description.flags & O_ACCMODE == O_RDONLY:
        raise error(errno.EBADF)
    if description.location.attrs.is_dir:
        raise error(errno.EISDIR)
    await settle_first(call, description)
    await _handle(description).fallocate(mode, offset, length, caller=call.caller)
    if call.stand_in is not None:
        await call.session.low_fds.resized(
            call.stand_in, lambda fd: _fallocate(fd, mode, offset, length))
    return 0


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc.fallocate(fd, mode, ctypes.c_int64(offset), ctypes.c_int64(length)) < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _quietly(function: Callable[..., object], *args: object) -> None:
    """Mirror a change on a stand-in's memfd; the file's own answer was already given."""
    try:
        function(*args)
    except OSError:
        log.debug("mirroring on a stand-in failed", exc_info=True)


async def settle_first(call: Call, description: OpenFileDescription) -> None:
    """Low-fd stand-ins of the mount write back first (a stand-in's own writes come before
    what the caller does to its file now, as in the kernel's page cache; decisions D29)."""
    await call.session.low_fds.settle(description.location.mount)


@kernel_unless_virtual
async def handle_fxattr(call: Call) -> Reply:
    """fsetxattr(fd, name, value, size, flags), fremovexattr(fd, name)."""
    from .metadata import _xattr_name
    from .write_side import read_xattr_value, set_xattr

    description = virtual_fd(call, 0)
    if description.path_only:
        raise error(errno.EBADF)
    location = description.location
    name = _xattr_name(call, call.arg(1))
    if call.name == "fsetxattr":
        value = read_xattr_value(call, call.arg(2), call.arg(3))
        return await set_xattr(call, location, name, value, call.int_arg(4))
    await location.mount.provider.removexattr(location.ino, name, caller=call.caller)
    return 0


# --- copy_file_range -------------------------------------------------------------------------
_LOFF = struct.Struct("<q")


@kernel_unless_virtual
async def handle_copy_file_range(call: Call) -> Reply:
    """copy_file_range(fd_in, off_in*, fd_out, off_out*, len, flags) between virtual files of
    one provider type (the kernel's "same f_op->copy_file_range"): the provider's copy, else
    -- EOPNOTSUPP, EXDEV (two mounts), ENOSYS -- read and write here, as fuse_copy_file_range
    falls back to splice.  Between a mount and a real file: EXDEV, as across two file
    system types."""
    vfds = call.session.vfds
    source = vfds.lookup_fd(call.tid, call.int_arg(0))
    target = vfds.lookup_fd(call.tid, call.int_arg(2))
    if source is None and target is None:
        return CONTINUE
    call.touched_virtual = True
    if call.int_arg(5) != 0:
        raise error(errno.EINVAL)
    if source is None or target is None:
        raise error(errno.EXDEV)
    if source.path_only or source.flags & O_ACCMODE == O_WRONLY:
        raise error(errno.EBADF)
    _writable(target)
    if target.flags & O_APPEND:
        raise error(errno.EBADF)
    if source.location.attrs.is_dir:
        raise error(errno.EISDIR)
    if type(source.location.mount.provider) is not type(target.location.mount.provider):
        raise error(errno.EXDEV)
    length = min(call.arg(4), MAX_RW_COUNT)
    in_pointer, out_pointer = call.arg(1), call.arg(3)
    in_handle, out_handle = _handle(source), _handle(target)
    async with source.lock:
        if target is not source:
            await target.lock.acquire()
        try:
            position_in = (_LOFF.unpack(call.read_memory(in_pointer, 8))[0] if in_pointer
                           else source.offset)
            position_out = (_LOFF.unpack(call.read_memory(out_pointer, 8))[0] if out_pointer
                            else target.offset)
            if position_in < 0 or position_out < 0:
                raise error(errno.EINVAL)
            same = source.location.ino == target.location.ino
            if same and position_in < position_out + length and position_out < position_in + length:
                raise error(errno.EINVAL)
            if length == 0:
                return 0
            try:
                copied = await in_handle.copy_file_range(
                    position_in, out_handle, position_out, length, 0, caller=call.caller
                )
            except OSError as failure:
                if failure.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
                    raise
                data = await in_handle.read(position_in, min(length, 1 << 20), caller=call.caller)
                copied = 0
                if data:
                    copied = await out_handle.write(position_out, data, caller=call.caller)
            if in_pointer:
                call.write_memory(in_pointer, _LOFF.pack(position_in + copied))
            else:
                source.offset = position_in + copied
            if out_pointer:
                call.write_memory(out_pointer, _LOFF.pack(position_out + copied))
            else:
                target.offset = position_out + copied
            return copied
        finally:
            if target is not source:
                target.lock.release()


# --- locks -----------------------------------------------------------------------------------
@dataclass
class _Lock:
    owner: object  # a tgid (POSIX), an OpenFileDescription (OFD, flock)
    type: int
    start: int
    end: int  # inclusive
    pid: int
    ofd: bool = False


class LockTable:
    """Record locks and flocks the hypervisor keeps itself, per (provider, inode)."""

    def __init__(self) -> None:
        self.records: dict[tuple[int, int], list[_Lock]] = {}
        self.flocks: dict[tuple[int, int], list[_Lock]] = {}

    @staticmethod
    def _alive(lock: _Lock) -> bool:
        if isinstance(lock.owner, OpenFileDescription):
            return not lock.owner.released
        return os.path.exists(f"/proc/{lock.owner}")  # the kernel drops them at exit

    def _prune(
        self, table: dict[tuple[int, int], list[_Lock]], key: tuple[int, int]
    ) -> list[_Lock]:
        locks = [lock for lock in table.get(key, []) if self._alive(lock)]
        table[key] = locks
        return locks

    def conflict(self, key: tuple[int, int], owner: object, kind: int, start: int,
                 end: int) -> _Lock | None:
        """The first lock of another owner in the way of `kind` over [start, end]."""
        for lock in self._prune(self.records, key):
            if lock.owner is owner or lock.owner == owner:
                continue
            if lock.end < start or lock.start > end:
                continue
            if kind == fcntl.F_WRLCK or lock.type == fcntl.F_WRLCK:
                return lock
        return None

    def apply(self, key: tuple[int, int], new: _Lock) -> None:
        """Set (or with F_UNLCK clear) `new`'s range for its owner, splitting older ones."""
        kept: list[_Lock] = []
        for lock in self._prune(self.records, key):
            if not (lock.owner is new.owner or lock.owner == new.owner):
                kept.append(lock)
                continue
            if lock.end < new.start or lock.start > new.end:
                kept.append(lock)
                continue
            if lock.start < new.start:
                kept.append(_Lock(lock.owner, lock.type, lock.start, new.start - 1, lock.pid,
                                  lock.ofd))
            if lock.end > new.end:
                kept.append(_Lock(lock.owner, lock.type, new.end + 1, lock.end, lock.pid,
                                  lock.ofd))
        if new.type != fcntl.F_UNLCK:
            kept.append(new)
        self.records[key] = kept

    def drop_owner(self, key: tuple[int, int], owner: object) -> None:
        """close(2): a process loses its POSIX locks on the file."""
        self.records[key] = [
            lock for lock in self.records.get(key, []) if lock.owner != owner or lock.ofd
        ]

    def flock_conflict(self, key: tuple[int, int], owner: object, exclusive: bool) -> bool:
        """Another description holds a flock in the way."""
        return any(
            lock.owner is not owner and (exclusive or lock.type == fcntl.F_WRLCK)
            for lock in self._prune(self.flocks, key)
        )

    def set_flock(self, key: tuple[int, int], owner: object, kind: int) -> None:
        """Replace `owner`'s flock (F_UNLCK: drop it)."""
        kept = [lock for lock in self._prune(self.flocks, key) if lock.owner is not owner]
        if kind != fcntl.F_UNLCK:
            kept.append(_Lock(owner, kind, 0, OFFSET_MAX, 0))
        self.flocks[key] = kept


LOCKS = LockTable()
"""One table for the process: keys name the provider and the inode."""


def lock_key(description: OpenFileDescription) -> tuple[int, int]:
    """The lock table's key of a description's file."""
    return id(description.location.mount.provider), description.location.ino


def _range(start: int, length: int) -> tuple[int, int]:
    if length > 0:
        end = start + length - 1
    elif length < 0:
        start, end = start + length, start - 1
    else:
        end = OFFSET_MAX
    if start < 0:
        raise error(errno.EINVAL)
    if end > OFFSET_MAX:
        raise error(errno.EOVERFLOW)
    return start, end


async def _lock_fcntl(call: Call, description: OpenFileDescription, command: int) -> Reply:
    handle = _handle(description)
    address = call.arg(2)
    kind, whence, start, length, _pid = _FLOCK.unpack(call.read_memory(address, _FLOCK.size))
    ofd = command in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    if ofd and _pid != 0:
        raise error(errno.EINVAL)
    if kind not in (fcntl.F_RDLCK, fcntl.F_WRLCK, fcntl.F_UNLCK):
        raise error(errno.EINVAL)
    if whence == SEEK_CUR:
        start += description.offset
    elif whence == SEEK_END:
        attrs = await description.location.mount.provider.getattr(
            description.location.ino, caller=call.caller
        )
        start += attrs.size
    elif whence != SEEK_SET:
        raise error(errno.EINVAL)
    first, last = _range(start, length)
    getting = command in (F_GETLK, F_OFD_GETLK)
    access = description.flags & O_ACCMODE
    if not getting:
        if kind == fcntl.F_RDLCK and access == O_WRONLY:
            raise error(errno.EBADF)
        if kind == fcntl.F_WRLCK and access == O_RDONLY:
            raise error(errno.EBADF)
    owner: object = description if ofd else call.tgid
    owner_id = id(description) if ofd else call.tgid
    wait = command in (F_SETLKW, F_OFD_SETLKW)
    try:
        if getting:
            found = await handle.getlk(kind, start, length, owner_id, call.tgid,
                                       caller=call.caller)
            _report(call, address, found.type, found.start, found.end, found.pid)
            return 0
        await handle.setlk(kind, start, length, owner_id, call.tgid, wait, caller=call.caller)
        return 0
    except LocalLocks:
        pass
    key = lock_key(description)
    if getting:
        if kind == fcntl.F_UNLCK:
            raise error(errno.EINVAL)
        blocker = LOCKS.conflict(key, owner, kind, first, last)
        if blocker is None:
            _report(call, address, fcntl.F_UNLCK, first, last, 0, keep=True)
        else:
            _report(call, address, blocker.type, blocker.start, blocker.end,
                    -1 if blocker.ofd else blocker.pid)
        return 0
    while kind != fcntl.F_UNLCK and LOCKS.conflict(key, owner, kind, first, last):
        if not wait:
            raise error(errno.EAGAIN)
        await trio.sleep(_POLL)
    LOCKS.apply(key, _Lock(owner, kind, first, last, call.tgid, ofd))
    return 0


def _report(call: Call, address: int, kind: int, start: int, end: int, pid: int,
            keep: bool = False) -> None:
    """Write F_GETLK's answer back into the caller's struct flock."""
    if keep:  # no conflict: only l_type changes
        old = _FLOCK.unpack(call.read_memory(address, _FLOCK.size))
        call.write_memory(address, _FLOCK.pack(kind, *old[1:]))
        return
    length = 0 if end >= OFFSET_MAX else end - start + 1
    call.write_memory(address, _FLOCK.pack(kind, SEEK_SET, start, length, pid))


@kernel_unless_virtual
async def handle_fcntl(call: Call) -> Reply:
    """Locks on a virtual fd here; everything else as descriptors.handle_fcntl."""
    command = call.int_arg(1)
    if command not in LOCK_COMMANDS:
        return await descriptors.handle_fcntl(call)
    description = virtual_fd(call, 0)
    return await _lock_fcntl(call, description, command)


@kernel_unless_virtual
async def handle_flock(call: Call) -> Reply:
    """flock(fd, operation)."""
    description = virtual_fd(call, 0)
    handle = _handle(description)
    operation = call.int_arg(1)
    kinds = {fcntl.LOCK_SH: fcntl.F_RDLCK, fcntl.LOCK_EX: fcntl.F_WRLCK,
             fcntl.LOCK_UN: fcntl.F_UNLCK}
    kind = kinds.get(operation & ~fcntl.LOCK_NB)
    if kind is None:
        raise error(errno.EINVAL)
    try:
        await handle.flock(operation, call.tgid, caller=call.caller)
        return 0
    except LocalLocks:
        pass
    key = lock_key(description)
    if kind != fcntl.F_UNLCK:
        LOCKS.set_flock(key, description, fcntl.F_UNLCK)  # a conversion is not atomic
        while LOCKS.flock_conflict(key, description, kind == fcntl.F_WRLCK):
            if operation & fcntl.LOCK_NB:
                raise error(errno.EWOULDBLOCK)
            await trio.sleep(_POLL)
    LOCKS.set_flock(key, description, kind)
    return 0


@kernel_unless_virtual
async def handle_close(call: Call) -> Reply:
    """close(fd): FLUSH (lock owner: the process; its POSIX locks on the file go), then the
    kernel drops the fd; the hang-up of the last copy anywhere sends RELEASE."""
    from .fdtable import flush

    description = virtual_fd(call, 0)
    fd_closed(call.tgid, call.int_arg(0))
    failure = await flush(call, description)
    if failure:
        return await _close_failing(call, failure)
    return CONTINUE


async def _close_failing(call: Call, code: int) -> Reply:
    """The FLUSH failed: close(2) still closes the fd (and the last close sends RELEASE),
    and returns the daemon's error -- the kernel runs the close, we change its result."""
    session = call.session

    def answer_continue() -> None:
        session.tracer.respond(call.notification.id, continue_=True)

    try:
        await trio.to_thread.run_sync(
            continue_then_fail, call.tid, call.nr, answer_continue, code
        )
    except OSError:
        log.debug("close of %d: could not hand back the FLUSH error", call.tid, exc_info=True)
    return ANSWERED


def register(dispatcher: Dispatcher) -> None:
    """Route the writing syscalls on virtual fds (after descriptors: these win)."""
    dispatcher.register("write", handle_write)
    dispatcher.register("pwrite64", handle_pwrite64)
    dispatcher.register("writev", handle_writev)
    dispatcher.register("pwritev pwritev2", handle_pwritev)
    dispatcher.register("ftruncate", handle_ftruncate)
    dispatcher.register("fchmod fchown", handle_fchmod_fchown)
    dispatcher.register("fsync fdatasync syncfs", handle_fsync)
    dispatcher.register("fallocate", handle_fallocate)
    dispatcher.register("fsetxattr fremovexattr", handle_fxattr)
    dispatcher.register("copy_file_range", handle_copy_file_range)
    dispatcher.register("fcntl", handle_fcntl)
    dispatcher.register("flock", handle_flock)
    dispatcher.register("close", handle_close)

