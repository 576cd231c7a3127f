"""poll, ppoll, select, pselect6 and epoll_ctl with a virtual fd (decisions.md D26).

A virtual fd is a socket that would always poll ready; its provider knows better (FUSE:
POLL).  The C core queues a poll or ppoll to Python only when its array holds an fd in the
virtual range, a select or pselect6 only when its nfds reaches the range, and only while a
virtual file is open at all.  Python then waits as the kernel's do_poll does: ask every
virtual fd's provider (with a waker when the call may sleep), look at the other fds through
copies, and sleep until a waker, a copy or the timeout says to look again.  epoll_ctl adds
the description's stand-in (readiness.py) in its place.
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import select
import struct

import trio

from ..dispatch import Call, Dispatcher, Reply
from ..syscalls import FD_BASE
from ..vfd import OpenFileDescription
from .common import LetKernel, error, kernel_unless_virtual, virtual_fd
from .descriptors import _pidfd_getfd

_libc = ctypes.CDLL(None, use_errno=True)
_POLLFD = struct.Struct("<ihh")
_TIMESPEC = struct.Struct("<qq")
_EPOLL_EVENT = struct.Struct("<IQ")  # packed on x86_64
_EPOLL_CTL_DEL = 2
_MAX_NFDS = 1 << 20  # the kernel's nr_open ceiling: more is EINVAL (poll) or clamped (select)
_ERR_HUP = select.POLLERR | select.POLLHUP
POLLIN_SET = select.POLLRDNORM | select.POLLRDBAND | select.POLLIN | select.POLLHUP | select.POLLERR
POLLOUT_SET = select.POLLWRBAND | select.POLLWRNORM | select.POLLOUT | select.POLLERR
POLLEX_SET = select.POLLPRI


def _lookup(call: Call, fd: int) -> OpenFileDescription | None:
    try:
        return call.session.vfds.lookup_fd(call.tid, fd)
    except OSError:
        return None


def _any_virtual(call: Call, fds: list[int]) -> bool:
    return any(fd >= FD_BASE and _lookup(call, fd) is not None for fd in fds)


async def gather(call: Call, targets: list[tuple[int, int]], timeout: float | None) -> list[int]:
    """The poll mask of each (fd, filter) of `targets`, masked by its filter, once one is not
    0 or `timeout` seconds have passed (None: for ever, 0: no wait).  A negative fd gets 0,
    a closed one POLLNVAL."""
    waiting = timeout is None or timeout > 0
    results = [0] * len(targets)
    virtual: dict[int, OpenFileDescription] = {}
    copies: dict[int, int] = {}
    invalid: set[int] = set()
    eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    sleeper = select.epoll()
    native = select.poll()
    try:
        sleeper.register(eventfd, select.EPOLLIN)
        native_events: dict[int, int] = {}
        for index, (fd, events) in enumerate(targets):
            if fd < 0:
                continue
            try:
                description = call.session.vfds.lookup_fd(call.tid, fd)
            except OSError:
                invalid.add(index)
                continue
            if description is not None:
                if description.path_only:  # fdget refuses O_PATH: as if not open
                    invalid.add(index)
                else:
                    virtual[index] = description
                continue
            if fd not in copies:
                try:
                    copies[fd] = _pidfd_getfd(call, fd)
                except OSError:
                    invalid.add(index)
                    continue
            native_events[copies[fd]] = native_events.get(copies[fd], 0) | events
        for copy, events in native_events.items():
            native.register(copy, events)
            if waiting:
                try:
                    sleeper.register(copy, events)
                except OSError:
                    pass  # EPERM: a regular file, which poll(0) shows ready anyway
        vfds = call.session.vfds
        if waiting:
            for description in virtual.values():
                vfds.readiness(description).add_waiter(eventfd)
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        while True:
            for index, description in virtual.items():
                assert description.handle is not None
                waker = vfds.readiness(description).wake if waiting else None
                mask = await description.handle.poll(
                    targets[index][1], waker, caller=call.caller
                )
                results[index] = mask & targets[index][1]
            ready = dict(native.poll(0))
            for index, (fd, events) in enumerate(targets):
                if fd in copies and index not in virtual:
                    results[index] = ready.get(copies[fd], 0) & (events | select.POLLNVAL)
            for index in invalid:
                results[index] = select.POLLNVAL
            if any(results) or not waiting or trio.current_time() >= deadline:
                return results
            with trio.move_on_at(deadline):
                await trio.lowlevel.wait_readable(sleeper.fileno())
            try:
                os.eventfd_read(eventfd)
            except BlockingIOError:
                pass
    finally:
        for description in virtual.values():
            if description.readiness is not None:
                description.readiness.remove_waiter(eventfd)
        for copy in copies.values():
            os.close(copy)
        sleeper.close()
        os.close(eventfd)


def _read_timespec(call: Call, address: int, micro: bool = False) -> float | None:
    """A timespec (timeval when `micro`) argument in seconds; None for NULL."""
    if not address:
        return None
    seconds, fraction = _TIMESPEC.unpack(call.read_memory(address, _TIMESPEC.size))
    if seconds < 0 or fraction < 0 or fraction >= (10**6 if micro else 10**9):
        raise error(errno.EINVAL)
    return seconds + fraction / (10**6 if micro else 10**9)


def _write_remaining(call: Call, address: int, timeout: float | None, started: float,
                     micro: bool = False) -> None:
    """What select and ppoll leave in their timeout: the time not slept."""
    if not address or timeout is None:
        return
    left = max(0.0, timeout - (trio.current_time() - started))
    seconds = int(left)
    fraction = int((left - seconds) * (10**6 if micro else 10**9))
    try:
        call.write_memory(address, _TIMESPEC.pack(seconds, fraction))
    except OSError:
        pass  # the kernel ignores a failed copy-out of the time left


def _signal_mask(call: Call, address: int, size: int) -> None:
    """ppoll/pselect6's mask: the signals that interrupt the wait are those it lets in."""
    if not address:
        return
    if size != 8:
        raise error(errno.EINVAL)
    (mask,) = struct.unpack("<Q", call.read_memory(address, 8))
    call.session.signal_watch.block_while(call.notification.id, mask)


@kernel_unless_virtual
async def handle_poll(call: Call) -> Reply:
    """poll/ppoll over an array holding a virtual fd."""
    count = call.arg(1)
    if count > _MAX_NFDS:
        raise LetKernel  # EINVAL
    try:
        raw = call.read_memory(call.arg(0), count * _POLLFD.size)
    except OSError:
        raise LetKernel from None  # EFAULT, as the kernel says it
    entries = [_POLLFD.unpack_from(raw, index * _POLLFD.size) for index in range(count)]
    if not _any_virtual(call, [fd for fd, _, _ in entries]):
        raise LetKernel
    call.touched_virtual = True
    if call.name == "poll":
        milliseconds = call.int_arg(2)
        timeout = None if milliseconds < 0 else milliseconds / 1000
    else:
        timeout = _read_timespec(call, call.arg(2))
        _signal_mask(call, call.arg(3), call.arg(4))
    started = trio.current_time()
    targets = [(fd, (events & 0xFFFF) | _ERR_HUP if fd >= 0 else 0) for fd, events, _ in entries]
    results = await gather(call, targets, timeout)
    out = b"".join(_POLLFD.pack(fd, events, results[index] & 0x7FFF)
                   for index, (fd, events, _) in enumerate(entries))
    call.write_memory(call.arg(0), out)
    if call.name == "ppoll":
        _write_remaining(call, call.arg(2), timeout, started)
    return sum(1 for mask in results if mask)


@kernel_unless_virtual
async def handle_select(call: Call) -> Reply:
    """select/pselect6 whose sets hold a virtual fd."""
    nfds = call.int_arg(0)
    if nfds <= FD_BASE:
        raise LetKernel  # no fd of the range, or EINVAL for a negative one
    nfds = min(nfds, _MAX_NFDS)
    size = (nfds + 63) // 64 * 8
    sets: list[int | None] = []
    try:
        for index in (1, 2, 3):
            address = call.arg(index)
            sets.append(int.from_bytes(call.read_memory(address, size), "little")
                        if address else None)
    except OSError:
        raise LetKernel from None  # EFAULT
    wanted = [0] * nfds
    masks = ((0, POLLIN_SET), (1, POLLOUT_SET), (2, 0))
    for which, bits in enumerate(sets):
        while bits:
            low = bits & -bits
            fd = low.bit_length() - 1
            bits ^= low
            if fd < nfds:
                wanted[fd] |= 1 << which
    fds = [fd for fd in range(nfds) if wanted[fd]]
    if not _any_virtual(call, [fd for fd in fds if fd >= FD_BASE]):
        raise LetKernel
    call.touched_virtual = True
    micro = call.name == "select"
    timeout = _read_timespec(call, call.arg(4), micro=micro)
    if not micro and call.arg(5):
        sigset, sigsize = struct.unpack("<QQ", call.read_memory(call.arg(5), 16))
        _signal_mask(call, sigset, sigsize)
    started = trio.current_time()
    targets = []
    for fd in fds:
        events = POLLEX_SET
        for which, bit_set in masks[:2]:
            if wanted[fd] & (1 << which):
                events |= bit_set
        targets.append((fd, events))
    results = await gather(call, targets, timeout)
    if any(mask & select.POLLNVAL for mask in results):
        raise error(errno.EBADF)
    out = [0, 0, 0]
    count = 0
    for fd, mask in zip(fds, results, strict=True):
        for which, bit_set in ((0, POLLIN_SET), (1, POLLOUT_SET), (2, POLLEX_SET)):
            if wanted[fd] & (1 << which) and mask & bit_set:
                out[which] |= 1 << fd
                count += 1
    for which, index in enumerate((1, 2, 3)):
        if sets[which] is not None:
            call.write_memory(call.arg(index), out[which].to_bytes(size, "little"))
    _write_remaining(call, call.arg(4), timeout, started, micro=micro)
    return count


@kernel_unless_virtual
async def handle_epoll_ctl(call: Call) -> Reply:
    """epoll_ctl of a virtual fd: the epoll instance watches its stand-in (readiness.py)."""
    description = virtual_fd(call, 2)
    if description.path_only:
        raise error(errno.EBADF)
    if description.location.attrs.is_dir:
        raise error(errno.EPERM)  # no poll in a directory's operations
    operation = call.int_arg(1)
    event = b"" if operation == _EPOLL_CTL_DEL else call.read_memory(call.arg(3), 12)
    readiness = call.session.vfds.readiness(description)
    stand_in = readiness.stand_in()
    copy = _pidfd_getfd(call, call.int_arg(0))  # EBADF as the kernel's
    try:
        buffer = ctypes.create_string_buffer(event, 12) if event else None
        if _libc.epoll_ctl(copy, operation, stand_in.fileno(), buffer) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    finally:
        os.close(copy)
    if event:
        (events, _) = _EPOLL_EVENT.unpack(event)
        stand_in.interest |= events & 0xFFFF
        stand_in.caller = call.caller
        try:
            await readiness.refresh()
        except OSError:
            stand_in.show(select.POLLERR | select.POLLIN | select.POLLOUT)
    return 0


def register(dispatcher: Dispatcher) -> None:
    """Route the poll family here."""
    dispatcher.register("poll ppoll", handle_poll)
    dispatcher.register("select pselect6", handle_select)
    dispatcher.register("epoll_ctl", handle_epoll_ctl)
