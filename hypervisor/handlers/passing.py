"""Virtual fds handed to another process: SCM_RIGHTS and pidfd_getfd (decisions D23).

A virtual fd is a socket whose reads are trapped only at numbers ≥ FD_BASE; passed as it is,
it would land in the receiver at its lowest free number as a bare socket that reads EOF.

- sendmsg (trapped while the session has a live virtual fd, ACTION_TRAP_VIRTUAL): when its
  SCM_RIGHTS carry a virtual fd of a regular file or directory, vufuse sends the message
  itself, on a copy of the caller's socket, with each virtual fd replaced by what a low
  number gets at a redirection (D7): a snapshot memfd for a read-only description, a
  written-back stand-in otherwise, the cwd stand-in for a directory.  Other messages run
  natively.  sendmmsg likewise: when one of its messages carries a virtual fd, vufuse sends
  them all, in order.
- pidfd_getfd of a virtual fd gives the caller a copy of the same description at its lowest
  free number ≥ FD_BASE, as an open would.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import stat as stat_module
import struct

import trio

from ..abi import O_ACCMODE, O_RDONLY
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..syscalls import FD_BASE
from ..vfd import OpenFileDescription, lowest_free_fd
from .common import error
from .descriptors import _pidfd_getfd, snapshot_fd, writable_stand_in_fd
from .files import inject_fd

_MSGHDR = struct.Struct("<QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
_MMSGHDR_SIZE = _MSGHDR.size + 8  # msghdr, msg_len, padding
_IOVEC = struct.Struct("<QQ")
_CMSGHDR = struct.Struct("<Qii")
_MSG_DONTWAIT, _MSG_NOSIGNAL = 0x40, 0x4000
_IOV_MAX = 1024
_libc = ctypes.CDLL(None, use_errno=True)


def _align(length: int) -> int:
    return (length + 7) & ~7


def _control_messages(control: bytes) -> list[tuple[int, int, bytes]]:
    """(level, type, data) of each cmsghdr in `control` (EINVAL for a malformed one)."""
    messages, position = [], 0
    while position + _CMSGHDR.size <= len(control):
        length, level, kind = _CMSGHDR.unpack_from(control, position)
        if length < _CMSGHDR.size or position + length > len(control):
            raise error(errno.EINVAL)
        messages.append((level, kind, control[position + _CMSGHDR.size : position + length]))
        position += _align(length)
    return messages


async def _replacement(call: Call, fd: int, description: OpenFileDescription) -> int | None:
    """Ours: what the receiver gets for virtual fd `fd` (None: the socket as it is)."""
    if description.path_only:
        return None
    attrs = description.location.attrs
    if attrs.is_dir:
        stand_in = call.session.stand_ins.stand_in_for(description.location)
        return os.open(stand_in, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if not stat_module.S_ISREG(attrs.mode):
        return None
    if description.flags & O_ACCMODE == O_RDONLY:
        return await snapshot_fd(call, description)
    return await writable_stand_in_fd(call, description, fd)


async def handle_sendmsg(call: Call) -> Reply:
    """sendmsg whose SCM_RIGHTS carry a virtual fd: sent by vufuse with stand-ins."""
    if call.session.vfds.lookup_fd(call.tid, call.int_arg(0)) is not None:
        call.touched_virtual = True
        raise error(errno.ENOTSOCK)
    try:
        parsed = _parse(call, call.read_memory(call.arg(1), _MSGHDR.size))
    except OSError:
        return CONTINUE  # the kernel says EFAULT
    if parsed is None or not parsed[2]:
        return CONTINUE
    call.touched_virtual = True
    header, messages, virtual = parsed
    return await _send_with_stand_ins(call, header, messages, virtual, call.int_arg(2))


async def handle_sendmmsg(call: Call) -> Reply:
    """sendmmsg with a virtual fd in some message's SCM_RIGHTS: vufuse sends every message
    itself, in order, as sendmsg does one (the count sent; an error only if none was)."""
    if call.session.vfds.lookup_fd(call.tid, call.int_arg(0)) is not None:
        call.touched_virtual = True
        raise error(errno.ENOTSOCK)
    count = min(call.arg(2) & 0xFFFFFFFF, _IOV_MAX)
    try:
        raw = call.read_memory(call.arg(1), count * _MMSGHDR_SIZE)
        parsed = [_parse(call, raw[i * _MMSGHDR_SIZE:i * _MMSGHDR_SIZE + _MSGHDR.size])
                  for i in range(count)]
    except OSError:
        return CONTINUE  # EFAULT
    if not any(one is not None and one[2] for one in parsed):
        return CONTINUE
    call.touched_virtual = True
    sent = 0
    for index, one in enumerate(parsed):
        try:
            if one is None:  # no control data: the message alone
                header = _MSGHDR.unpack_from(raw, index * _MMSGHDR_SIZE)[:4]
                one = (header, [], {})
            length = await _send_with_stand_ins(call, *one, call.int_arg(3))
        except OSError:
            if sent:
                return sent  # the kernel's sendmmsg: the count when some went
            raise
        assert isinstance(length, int)
        call.write_memory(call.arg(1) + index * _MMSGHDR_SIZE + _MSGHDR.size,
                          struct.pack("<I", length))
        sent += 1
    return sent


def _parse(
    call: Call, header: bytes
) -> tuple[tuple[int, int, int, int], list[tuple[int, int, bytes]],
           dict[int, OpenFileDescription]] | None:
    """A msghdr's (name, namelen, iov, iovlen), its control messages and the virtual fds
    their SCM_RIGHTS name; None when it has no control data (or what the kernel refuses)."""
    name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(header)
    if not controllen or controllen > 1 << 16 or iovlen > _IOV_MAX:
        return None
    messages = _control_messages(call.read_memory(control, controllen))
    passed = [
        fd
        for level, kind, data in messages
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
        for fd in struct.unpack(f"<{len(data) // 4}i", data[: len(data) // 4 * 4])
    ]
    virtual = {fd: d for fd in passed if fd >= FD_BASE
               and (d := _lookup(call, fd)) is not None}
    return (name, namelen, iov, iovlen), messages, virtual


def _lookup(call: Call, fd: int) -> OpenFileDescription | None:
    try:
        return call.session.vfds.lookup_fd(call.tid, fd)
    except OSError:
        return None  # not open: the kernel says EBADF


async def _send_with_stand_ins(
    call: Call, message: tuple[int, int, int, int],
    messages: list[tuple[int, int, bytes]], virtual: dict[int, OpenFileDescription],
    flags: int,
) -> Reply:
    name, namelen, iov, iovlen = message
    ours: list[int] = []
    try:
        for fd, description in virtual.items():
            if (replacement := await _replacement(call, fd, description)) is not None:
                ours.append(replacement)
                virtual[fd] = replacement  # type: ignore[assignment]
        ancillary = []
        for level, kind, data in messages:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = []
                for fd in struct.unpack(f"<{len(data) // 4}i", data[: len(data) // 4 * 4]):
                    given = virtual.get(fd)
                    if isinstance(given, int):
                        fds.append(given)
                    else:
                        copy = _pidfd_getfd(call, fd)  # EBADF as the kernel's
                        ours.append(copy)
                        fds.append(copy)
                data = struct.pack(f"<{len(fds)}i", *fds)
            ancillary.append((level, kind, data))
        vectors = call.read_memory(iov, iovlen * _IOVEC.size)
        buffers = [call.read_memory(base, length)
                   for base, length in (_IOVEC.unpack_from(vectors, i * _IOVEC.size)
                                        for i in range(iovlen))]
        address = call.read_memory(name, namelen) if name and namelen else None
        return await _send(call, buffers, ancillary, address, flags)
    finally:
        for fd in ours:
            os.close(fd)


async def _send(call: Call, buffers: list[bytes], ancillary: list[tuple[int, int, bytes]],
                address: bytes | None, flags: int) -> Reply:
    """sendmsg on a copy of the caller's socket, blocking as the caller's would."""
    copy = _pidfd_getfd(call, call.int_arg(0))
    with socket.socket(fileno=copy) as sock:
        if sock.family != socket.AF_UNIX:
            raise error(errno.EINVAL)  # SCM_RIGHTS travel on unix sockets only
        path = None
        if address is not None:
            raw = address[2:]
            path = raw if raw[:1] == b"\0" else raw.split(b"\0", 1)[0]
        blocking = not flags & _MSG_DONTWAIT and os.get_blocking(sock.fileno())
        data = b"".join(buffers)
        sent = 0
        while True:
            try:
                # The fds go with the first bytes; a blocking stream send then sends the
                # rest as the kernel's would before returning.
                arguments = (ancillary if not sent else [], flags | _MSG_DONTWAIT)
                pieces = [data[sent:]]
                sent += (sock.sendmsg(pieces, *arguments) if path is None
                         else sock.sendmsg(pieces, *arguments, path))
                if not blocking or sent >= len(data) or sock.type != socket.SOCK_STREAM:
                    return sent
            except BlockingIOError:
                if not blocking:
                    raise error(errno.EAGAIN) from None
            except BrokenPipeError:
                if sent:
                    return sent
                if not flags & _MSG_NOSIGNAL:
                    _libc.syscall(234, call.tgid, call.tid, signal.SIGPIPE)  # tgkill
                raise error(errno.EPIPE) from None
            await trio.lowlevel.wait_writable(sock)


async def handle_pidfd_getfd(call: Call) -> Reply:
    """pidfd_getfd of another process's virtual fd: a virtual fd of the caller."""
    pidfd, fd, flags = call.int_arg(0), call.int_arg(1), call.int_arg(2)
    if fd < FD_BASE or flags:
        return CONTINUE
    target = _pidfd_target(call.tid, pidfd)
    if target is None:
        return CONTINUE
    description = _lookup_in(call, target, fd)
    if description is None:
        return CONTINUE
    call.touched_virtual = True
    holder = os.pidfd_open(target)
    try:
        number = _libc.syscall(438, holder, fd, 0)
        if number < 0:
            raise error(ctypes.get_errno())
    finally:
        os.close(holder)
    try:
        return inject_fd(call, number, lowest_free_fd(call.tid, table=call.tgid), True,
                         description)
    finally:
        os.close(number)


def _lookup_in(call: Call, pid: int, fd: int) -> OpenFileDescription | None:
    try:
        return call.session.vfds.lookup_fd(pid, fd)
    except OSError:
        return None


def _pidfd_target(tid: int, pidfd: int) -> int | None:
    """The pid a pidfd of thread `tid` refers to (None: not a live pidfd)."""
    try:
        with open(f"/proc/{tid}/fdinfo/{pidfd}") as info:
            for line in info:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except (OSError, ValueError):
        return None
    return None


def register(dispatcher: Dispatcher) -> None:
    """Route sendmsg and pidfd_getfd here."""
    dispatcher.register("sendmsg", handle_sendmsg)
    dispatcher.register("sendmmsg", handle_sendmmsg)
    dispatcher.register("pidfd_getfd", handle_pidfd_getfd)
