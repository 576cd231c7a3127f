"""sendfile and splice with a virtual file on either side (or both), as the kernel's
do_sendfile/do_splice answer them: the same checks in the same order, the data moved through
the provider on the virtual side and through a copy of the caller's fd on the real side.

The kernel's order: EBADF unless `in` is open for reading and `out` for writing; an O_APPEND
`out` file is EINVAL (do_splice_direct); a side without splice_read (a directory) is EINVAL;
splice needs a pipe on one side (EINVAL), takes no offset for the pipe (ESPIPE).  A transfer
may be short (at most :data:`CHUNK` here); callers loop, as for any file system.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat as stat_module
import struct
from collections.abc import Iterator

import trio

from ..abi import MAX_RW_COUNT, O_ACCMODE, O_APPEND, O_RDONLY, O_WRONLY
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..vfd import OpenFileDescription
from .common import error, kernel_unless_virtual
from .descriptors import _pidfd_getfd
from .files import read_at
from .writes import _write_common_at

CHUNK = 1 << 20
"""The most one call moves (a short transfer, as a huge one would need our memory at once)."""
SPLICE_F_NONBLOCK = 0x02
_LOFF = struct.Struct("<q")


class _Side:
    """One end of a transfer: a virtual description, or a copy of a real fd of the caller."""

    def __init__(self, call: Call, fd: int) -> None:
        self.description: OpenFileDescription | None = call.session.vfds.lookup_fd(call.tid, fd)
        self.copy = -1
        self.flags = 0
        self.mode = 0
        if self.description is not None:
            call.touched_virtual = True
            self.flags = self.description.flags
            self.mode = stat_module.S_IFDIR if self.description.location.attrs.is_dir else (
                stat_module.S_IFREG)
        else:
            self.copy = _pidfd_getfd(call, fd)
            self.flags = fcntl.fcntl(self.copy, fcntl.F_GETFL)
            self.mode = os.fstat(self.copy).st_mode

    def close(self) -> None:
        if self.copy >= 0:
            os.close(self.copy)

    @property
    def readable(self) -> bool:
        if self.description is not None and self.description.path_only:
            return False
        return self.flags & O_ACCMODE != O_WRONLY

    @property
    def writable(self) -> bool:
        if self.description is not None and self.description.path_only:
            return False
        return self.flags & O_ACCMODE != O_RDONLY

    @property
    def is_pipe(self) -> bool:
        return stat_module.S_ISFIFO(self.mode)


async def _read(call: Call, side: _Side, position: int | None, size: int,
                nonblocking: bool = False) -> tuple[bytes, int]:
    """Up to `size` bytes from `side` at `position` (None: its file position) and where they
    were read from.  A virtual side's position is left for :func:`_advance` (by what was
    written on the other side); a real one's moves with the read."""
    size = min(size, CHUNK, MAX_RW_COUNT)
    description = side.description
    if description is not None:
        if description.location.attrs.is_dir or description.handle is None:
            raise error(errno.EINVAL)  # no splice_read for directories
        start = description.offset if position is None else position
        return await read_at(call, description, start, size), start
    if stat_module.S_ISDIR(side.mode):
        raise error(errno.EINVAL)
    if side.is_pipe and nonblocking:
        available = struct.unpack("i", fcntl.ioctl(side.copy, 0x541B, b"\0" * 4))[0]  # FIONREAD
        if available == 0:
            raise error(errno.EAGAIN)
    elif side.is_pipe:
        await trio.lowlevel.wait_readable(side.copy)
    copy = side.copy
    if position is None:
        data = await trio.to_thread.run_sync(os.read, copy, size, abandon_on_cancel=True)
        return data, -1
    data = await trio.to_thread.run_sync(os.pread, copy, size, position, abandon_on_cancel=True)
    return data, position


def _advance(call: Call, side: _Side, pointer: int, start: int, moved: int) -> None:
    """Move the source's position past what was written: the caller's offset when it gave
    one, else a virtual description's own."""
    if pointer:
        call.write_memory(pointer, _LOFF.pack(start + moved))
    elif side.description is not None:
        side.description.offset = start + moved


async def _write(call: Call, side: _Side, position: int | None, data: bytes) -> int:
    """`data` into `side` at `position` (None: its file position, advanced)."""
    if not data:
        return 0
    if side.description is not None:
        return await _write_common_at(call, side.description, data, position)
    if position is None:
        return await trio.to_thread.run_sync(os.write, side.copy, data, abandon_on_cancel=True)
    return await trio.to_thread.run_sync(os.pwrite, side.copy, data, position,
                                         abandon_on_cancel=True)


def _offset_at(call: Call, pointer: int) -> int | None:
    if not pointer:
        return None
    (position,) = _LOFF.unpack(call.read_memory(pointer, 8))
    if position < 0:
        raise error(errno.EINVAL)
    return position


def _sides(call: Call, source_fd: int, target_fd: int) -> tuple[_Side, _Side] | None:
    """Both ends of a copy, or None when neither is virtual (the kernel does it all)."""
    vfds = call.session.vfds
    if vfds.lookup_fd(call.tid, source_fd) is None and vfds.lookup_fd(call.tid, target_fd) is None:
        return None
    source = _Side(call, source_fd)
    try:
        return source, _Side(call, target_fd)
    except BaseException:
        source.close()
        raise


@contextlib.contextmanager
def _checked(sides: tuple[_Side, _Side]) -> Iterator[tuple[_Side, _Side]]:
    """The two ends, EBADF unless the source reads and the target writes; closed after."""
    source, target = sides
    try:
        if not source.readable or not target.writable:
            raise error(errno.EBADF)
        yield source, target
    finally:
        source.close()
        target.close()


@kernel_unless_virtual
async def handle_sendfile(call: Call) -> Reply:
    """sendfile(out, in, offset*, count)."""
    sides = _sides(call, call.int_arg(1), call.int_arg(0))
    if sides is None:
        return CONTINUE
    with _checked(sides) as (source, target):
        pointer = call.arg(2)
        position = _offset_at(call, pointer)
        if target.flags & O_APPEND and not target.is_pipe:
            raise error(errno.EINVAL)
        count = call.arg(3)
        if count == 0:
            return 0
        data, start = await _read(call, source, position, count)
        written = await _write(call, target, None, data)
        _advance(call, source, pointer, start, written)
        return written


@kernel_unless_virtual
async def handle_splice(call: Call) -> Reply:
    """splice(in, off_in*, out, off_out*, len, flags): a pipe on one side."""
    sides = _sides(call, call.int_arg(0), call.int_arg(2))
    if sides is None:
        return CONTINUE
    with _checked(sides) as (source, target):
        in_pointer, out_pointer = call.arg(1), call.arg(3)
        length, flags = call.arg(4), call.int_arg(5)
        if source.is_pipe:
            if in_pointer:
                raise error(errno.ESPIPE)
            position = _offset_at(call, out_pointer)
            if target.flags & O_APPEND:
                raise error(errno.EINVAL)
            if length == 0:
                return 0
            data, _ = await _read(call, source, None, length, bool(flags & SPLICE_F_NONBLOCK))
            written = await _write(call, target, position, data)
            if out_pointer and position is not None:
                call.write_memory(out_pointer, _LOFF.pack(position + written))
            return written
        if target.is_pipe:
            if out_pointer:
                raise error(errno.ESPIPE)
            position = _offset_at(call, in_pointer)
            if length == 0:
                return 0
            data, start = await _read(call, source, position, length)
            written = await _write(call, target, None, data)
            _advance(call, source, in_pointer, start, written)
            return written
        raise error(errno.EINVAL)


def register(dispatcher: Dispatcher) -> None:
    """Route sendfile and splice (after descriptors and writes: these win)."""
    dispatcher.register("sendfile", handle_sendfile)
    dispatcher.register("splice", handle_splice)
