"""The mounted session and its trio main loop: init(), main(), terminate(), close().

pyfuse3 keeps one session per process in module state, and so do we. main() runs worker tasks
in a nursery. A worker waits for the device to become readable (one at a time, under a lock),
reads one request, starts another worker if none is left waiting, and then serves the request
to the end, so slow handlers run concurrently while idle workers stay few (min_tasks..max_tasks).

The trio module is looked up on the package at call time (``pyfuse3.trio``) because
`pyfuse3.asyncio.enable()` swaps it for an asyncio shim with the same small surface: Lock,
open_nursery, lowlevel.wait_readable/notify_closing/current_trio_token, ClosedResourceError.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import sys
from types import ModuleType
from typing import Any

from . import _mount, _notify
from ._dispatch import MAX_WRITE, Dispatcher
from ._operations import Operations

log = logging.getLogger("pyfuse3")

#: Read buffer: the largest WRITE request (max_write) plus room for its headers.
READ_BUFFER_SIZE = MAX_WRITE + 4096


class Session:
    """One mounted filesystem: the device fd, the handlers, and the workers' bookkeeping."""

    def __init__(
        self,
        operations: Operations,
        mountpoint: str,
        fd: int,
        options: _mount.MountOptions,
        helper_socket: socket.socket | None,
    ) -> None:
        self.operations = operations
        self.mountpoint = mountpoint
        #: The mount we made, to unmount only that one (not a later mount at the same path).
        self.mount_id = _mount.mount_id_at(mountpoint)
        self.fd = fd
        self.options = options
        self.helper_socket = helper_socket
        self.dispatcher = Dispatcher(operations, fd, debug=options.debug)
        self.exiting = False
        self.worker_count = 0
        self.worker_serial = 0
        self.idle_workers = 0
        self.read_lock: Any = None

    def next_worker_name(self) -> str:
        self.worker_serial += 1
        return f"pyfuse-{self.worker_serial:02d}"


_session: Session | None = None


def _package() -> ModuleType:
    return sys.modules[__name__.rpartition(".")[0]]


def current_session() -> Session:
    """The mounted session; RuntimeError before init() or after close()."""
    if _session is None:
        raise RuntimeError("Need to call init() first")
    return _session


def init(ops: Operations, mountpoint: str, options: set[str] | frozenset[str]) -> None:
    """Mount the filesystem *ops* at *mountpoint* with libfuse-style *options*.

    Requests are not read until main() runs, so the kernel's INIT waits for it.
    """
    global _session
    if not isinstance(mountpoint, str):
        raise TypeError("*mountpoint_* argument must be of type str")
    if _session is not None:
        raise RuntimeError("pyfuse3 is already initialized: call close() first")
    parsed = _mount.parse_options(options)
    if parsed.debug:
        log.setLevel(logging.DEBUG)
    mountpoint = os.path.abspath(mountpoint)
    log.debug("Initializing pyfuse3")
    fd, helper_socket = _mount.mount(mountpoint, parsed)
    # Non-blocking, so a worker woken for a request another worker took cannot stall the loop.
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    _session = Session(ops, mountpoint, fd, parsed, helper_socket)
    _notify.attach(fd)


async def main(min_tasks: int = 1, max_tasks: int = 99) -> None:
    """Serve requests until the filesystem is unmounted or terminate() is called."""
    session = current_session()
    package = _package()
    trio = package.trio
    # pyfuse3.trio_token is public module state, for trio.from_thread calls into the loop.
    setattr(package, "trio_token", trio.lowlevel.current_trio_token())  # noqa: B010
    session.read_lock = trio.Lock()
    try:
        async with trio.open_nursery() as nursery:
            session.worker_count = 1
            nursery.start_soon(
                _worker, session, nursery, min_tasks, max_tasks, name=session.next_worker_name()
            )
    finally:
        setattr(package, "trio_token", None)  # noqa: B010
        _notify.stop_async_invalidations()


async def _wait_for_request(session: Session) -> bool:
    """Wait, one worker at a time, until a request can be read; False means stop."""
    trio = _package().trio
    session.idle_workers += 1
    try:
        async with session.read_lock:
            if session.exiting:
                return False
            await trio.lowlevel.wait_readable(session.fd)
    except trio.ClosedResourceError:
        log.debug("FUSE fd about to be closed.")
        return False
    finally:
        session.idle_workers -= 1
    return True


def _read_request(session: Session) -> bytes | None:
    """One request from the device; b"" to retry, None once the kernel side is gone."""
    try:
        request = os.read(session.fd, READ_BUFFER_SIZE)
        if not request:  # end of file: a socket standing in for /dev/fuse was closed
            session.exiting = True
            return None
        return request
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # the request was interrupted before we read it
            return b""
        if exc.errno == errno.ENODEV:  # unmounted
            session.exiting = True
            return None
        raise


async def _worker(session: Session, nursery: Any, min_tasks: int, max_tasks: int) -> None:
    try:
        while not session.exiting:
            if session.idle_workers > min_tasks:
                break
            if not await _wait_for_request(session):
                break
            request = _read_request(session)
            if request is None:
                break
            if not request:
                continue
            if not session.idle_workers and session.worker_count < max_tasks:
                session.worker_count += 1
                nursery.start_soon(
                    _worker, session, nursery, min_tasks, max_tasks,
                    name=session.next_worker_name(),
                )  # fmt: skip
            await session.dispatcher.handle(request)
            if session.dispatcher.destroyed:
                session.exiting = True
    finally:
        session.worker_count -= 1


def terminate() -> None:
    """Make main() return once running requests are done (from a handler, or via from_thread)."""
    session = current_session()
    session.exiting = True
    _package().trio.lowlevel.notify_closing(session.fd)


def close(unmount: bool = True) -> None:
    """Unmount (unless *unmount* is False) and release the device; call after main()."""
    global _session
    session = _session
    if session is None:
        return
    _session = None
    _notify.detach()
    try:
        if unmount:
            log.debug("Unmounting %s", session.mountpoint)
            _mount.unmount(session.mountpoint, session.fd, session.mount_id)
    finally:
        os.close(session.fd)
        if session.helper_socket is not None:
            session.helper_socket.close()
