"""bind(2) and connect(2) of unix sockets at paths on a mount (docs/decisions.md D12).

bind: the provider makes the socket inode (mknod S_IFSOCK, mode 0777 & ~umask, as
unix_bind_bsd), and the tracee's socket -- a copy taken with pidfd_getfd shares its open
file description -- is bound for real to a hidden path (`hypervisor.unixsock`).  connect:
the path is walked like any other; a socket inode bound in this session is connected to
through its hidden path, any other one is ECONNREFUSED, as on the kernel (a FUSE socket
inode is a rendezvous only this kernel's bind can make).  Everything else -- another
family, an abstract or real path, a bad fd -- is the kernel's.
"""

from __future__ import annotations

import errno
import os
import socket
import stat as stat_module

import trio

from .. import permission
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..paths import VirtualLocation
from ..unixsock import SUN_PATH_MAX, UnixBindings, parse_unix_address
from .common import LetKernel, error, kernel_unless_virtual, resolve
from .descriptors import _pidfd_getfd
from .write_side import _refuse_slash, _virtual_parent, parent_of


def _address_path(call: Call) -> bytes:
    """The pathname in the sockaddr_un of arguments 1 and 2, or LetKernel."""
    length = call.int_arg(2)
    if not 2 < length <= 2 + SUN_PATH_MAX:
        raise LetKernel  # unix_validate_addr's EINVAL, autobind: the kernel's
    try:
        raw = call.read_memory(call.arg(1), length)
    except OSError:
        raise LetKernel from None  # EFAULT
    path = parse_unix_address(raw)
    if path is None:
        raise LetKernel
    return path


def _refuse_virtual_fd(call: Call) -> None:
    """A virtual fd is a file to the caller: ENOTSOCK, before anything else (and never
    CONTINUE: the kernel would bind our socketpair end)."""
    if call.session.vfds.lookup_fd(call.tid, call.int_arg(0)) is not None:
        call.touched_virtual = True
        raise error(errno.ENOTSOCK)


def _unix_socket(call: Call) -> socket.socket:
    """A copy of the caller's fd argument 0 as a unix socket, or LetKernel (EBADF, ENOTSOCK,
    another family: the kernel answers before looking at the path)."""
    try:
        copy = _pidfd_getfd(call, call.int_arg(0))
    except OSError:
        raise LetKernel from None
    try:
        sock = socket.socket(fileno=copy)
    except OSError:
        os.close(copy)
        raise LetKernel from None
    if sock.family != socket.AF_UNIX:
        sock.close()
        raise LetKernel
    return sock


def _bindings(call: Call) -> UnixBindings:
    return call.session.unix_bindings


@kernel_unless_virtual
async def handle_bind(call: Call) -> Reply:
    """bind(fd, addr, len) of an AF_UNIX socket to a path on a mount."""
    _refuse_virtual_fd(call)
    path = _address_path(call)
    with _unix_socket(call) as sock:
        parent = await parent_of(call, 1, None, path=path)
        if parent.dotted:
            raise error(errno.EADDRINUSE)
        directory = _virtual_parent(call, parent, errno.EADDRINUSE)
        await _refuse_slash(call, parent)
        umask = call.credentials.umask
        provider = directory.mount.provider
        try:
            attrs = await provider.mknod(
                directory.ino, parent.name, stat_module.S_IFSOCK | (0o777 & ~umask), 0, umask,
                caller=call.caller,
            )  # fmt: skip
        except OSError as failure:
            if failure.errno == errno.EEXIST:
                raise error(errno.EADDRINUSE) from None
            raise
        bindings = _bindings(call)
        hidden = bindings.new_path()
        try:
            sock.bind(hidden)
        except OSError as failure:
            # Already bound (EINVAL): unix_bind_bsd unlinks what it made, and so do we.
            await provider.unlink(directory.ino, parent.name, caller=call.caller)
            raise error(failure.errno or errno.EINVAL) from None
        bindings.record(directory.mount.mount_id, attrs.node, hidden)
    return 0


@kernel_unless_virtual
async def handle_connect(call: Call) -> Reply:
    """connect(fd, addr, len) of an AF_UNIX socket to a path on a mount."""
    _refuse_virtual_fd(call)
    path = _address_path(call)
    with _unix_socket(call) as sock:
        location = (await resolve(call, 1, None, path=path)).location
        if not isinstance(location, VirtualLocation):
            return CONTINUE  # a real socket file reached through a mount: the kernel's
        attrs = location.attrs
        if location.mount.options.get("default_permissions") is not None:
            permission.check(attrs, call.credentials, permission.MAY_WRITE)
        if not stat_module.S_ISSOCK(attrs.mode):
            raise error(errno.ECONNREFUSED)
        bindings = _bindings(call)
        key = (location.mount.mount_id, location.ino)
        hidden = bindings.lookup(*key)
        if hidden is None:
            raise error(errno.ECONNREFUSED)
        # A blocking connect may wait for room in the listener's backlog: off the event loop.
        code = await trio.to_thread.run_sync(sock.connect_ex, hidden, abandon_on_cancel=True)
        if code in (errno.ECONNREFUSED, errno.ENOENT):
            bindings.forget(*key)  # the bound socket was closed: nobody will listen again
            raise error(errno.ECONNREFUSED)
        if code:
            raise error(code)
    return 0


def register(dispatcher: Dispatcher) -> None:
    """Route bind and connect (the C core queues only unix paths that may be on a mount)."""
    dispatcher.register("bind", handle_bind)
    dispatcher.register("connect", handle_connect)
