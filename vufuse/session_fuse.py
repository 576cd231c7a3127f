"""The FUSE glue of a session: /dev/fuse, mount(2) of FUSE types, unmount as the daemon sees it.

The hypervisor knows nothing of FUSE and devfuse nothing of tracing; this module joins them
through the hypervisor's extension points (docs/hypervisor.md, "Extension points"):

- ``open("/dev/fuse")`` in a tracee → one end of a SOCK_SEQPACKET socketpair at the caller's
  lowest free fd (its read/writev/splice run natively); our end waits for a mount;
- ``mount(2)`` of fuse, fuse.SUBTYPE, fuseblk → the data parsed as the kernel does
  (:mod:`vufuse.devfuse.mountopts`), ``fd=N`` resolved in the caller by socket inode, a
  :class:`~vufuse.devfuse.FuseProvider` started on our end and mounted in the session's mount
  table; it returns at once, INIT is answered asynchronously and accesses wait for it;
- unmount → pending requests aborted (devfuse), then the daemon's blocked reads on the device
  fail with ENODEV (:mod:`hypervisor.blocked`, docs/decisions.md D3), and its end reads EOF
  once nothing of it reads any more.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat as stat_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from hypervisor import blocked, syscalls
from hypervisor.dispatch import Call
from hypervisor.extensions import MountRequest
from hypervisor.mounts import (
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_RDONLY,
    MS_STRICTATIME,
    Mount,
)
from hypervisor.session import Session
from hypervisor.vfd import socket_inode

from .devfuse import FuseProvider, parse_mount_data, show_super_options, start_fuse

log = logging.getLogger("vufuse")

FUSE_DEVICE = b"/dev/fuse"
SOCKET_BUFFER = 4 << 20
"""Asked for both ends' SO_SNDBUF/SO_RCVBUF; the kernel caps it at net.core.[wr]mem_max (and
doubles it).  A SEQPACKET message must fit the sender's buffer: devfuse caps max_pages so that
a READ reply fits even the ~416 KiB of a stock kernel (docs/devfuse.md)."""

_PER_MOUNT_FLAGS = (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW | MS_NOATIME
                    | MS_NODIRATIME | MS_STRICTATIME)  # fmt: skip
_DEVICE_READS = frozenset(syscalls.nr(name) for name in ("read", "readv", "splice"))
_POLL_WAITS = frozenset(
    syscalls.nr(name)
    for name in ("poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait",
                 "epoll_pwait2")
)  # fmt: skip
SHUTDOWN_TIMEOUT = 5.0
"""How long an unmounted device keeps failing reads with ENODEV before it just hangs up."""
POLLER_TIMEOUT = 1.0

REQUEST_TIMEOUT_VARIABLE = "VUFUSE_REQUEST_TIMEOUT"
"""In the environment of the process that calls mount(2): that mount's request timeout in
seconds (the kernel's default_request_timeout sysctl, per mount; the daemon's own INIT value
wins).  Export it in the session to give every mount one."""


def request_timeout_of(pid: int) -> int:
    """:data:`REQUEST_TIMEOUT_VARIABLE` of the mounting process, else of its parent (the
    daemon, when fusermount3 mounts for it with a scrubbed environment, as go-fuse runs it);
    0 when neither has it."""
    for _ in range(2):
        try:
            with open(f"/proc/{pid}/environ", "rb") as file:
                environment = file.read()
            with open(f"/proc/{pid}/stat", "rb") as file:
                parent = int(file.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return 0
        prefix = REQUEST_TIMEOUT_VARIABLE.encode() + b"="
        for entry in environment.split(b"\0"):
            if entry.startswith(prefix):
                value = entry[len(prefix) :]
                return min(int(value), 0xFFFF) if value.isdigit() else 0
        pid = parent
    return 0


def is_fuse_type(fstype: bytes) -> bool:
    """fuse, fuse.SUBTYPE, fuseblk, fuseblk.SUBTYPE: the types FUSE registers."""
    base = fstype.split(b".", 1)[0]
    return base in (b"fuse", b"fuseblk")


@dataclass(eq=False)
class Device:
    """One opened /dev/fuse: our end of the pair, and the mount it serves once mounted."""

    ours: socket.socket
    inode: int  # of the tracee's end, as /proc/PID/fd/N shows it
    provider: FuseProvider | None = None
    connection_socket: trio.socket.SocketType | None = None
    closed: bool = False

    def drain(self) -> None:
        """Discard what the daemon wrote after the abort (late replies): unread messages
        would fill its socket buffer (blocking its writev), and our close with messages
        unread would give it ECONNRESET instead of a clean end of file."""
        if self.closed:
            return
        while True:
            try:
                if not self.ours.recv(1, socket.MSG_DONTWAIT):
                    return
            except OSError:  # BlockingIOError: empty; anything else: nothing to drain
                return

    def close(self) -> None:
        """Hang up our end (the daemon's reads then return 0)."""
        self.drain()
        if not self.closed:
            self.closed = True
            if self.connection_socket is not None:
                self.connection_socket.close()  # tells trio's waiters first
            else:
                self.ours.close()


class FuseMounting:
    """The FUSE extension of one :class:`~hypervisor.session.Session`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.devices: dict[int, Device] = {}
        session.extensions.add_device(FUSE_DEVICE, self._open_device)
        session.extensions.add_mount_type(is_fuse_type, self._mount)

    # ------------------------------------------------------------------ /dev/fuse

    async def _open_device(self, call: Call, path: bytes, flags: int) -> int:
        """A fresh device: the tracee gets one end of a SEQPACKET pair (message boundaries
        hold, as on /dev/fuse); we keep the other until it is mounted and unmounted."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        inode = os.fstat(theirs.fileno()).st_ino
        self.devices[inode] = Device(ours, inode)
        return theirs.detach()

    def _device_of(self, call: Call, fd: int) -> Device | None:
        try:
            link = os.readlink(f"/proc/{call.tid}/fd/{fd}")
        except OSError:
            return None
        inode = socket_inode(link)
        return None if inode is None else self.devices.get(inode)

    # ------------------------------------------------------------------ mount(2)

    async def _mount(self, call: Call, request: MountRequest) -> int:
        """mount(2) of a FUSE type: fuse_get_tree's checks, then the mount, before INIT."""
        options = parse_mount_data(
            request.fstype, request.data, readonly=bool(request.flags & MS_RDONLY)
        )  # EINVAL, ENODEV as the kernel
        device = self._device_of(call, options.fd)
        if device is None or device.provider is not None or device.closed:
            raise OSError(errno.EINVAL, "fd is not an unused FUSE device")
        if stat_module.S_ISDIR(options.rootmode) != request.target_is_dir:
            raise OSError(errno.ENOTDIR, "root type differs from the mountpoint's")
        nursery = self.session.nursery
        if nursery is None:
            raise OSError(errno.EIO, "session not running")
        device.connection_socket = trio.socket.from_stdlib_socket(device.ours)
        provider = await start_fuse(
            nursery, device.connection_socket, options,
            default_request_timeout=request_timeout_of(call.tid),
        )  # fmt: skip
        device.provider = provider
        flags = request.flags & _PER_MOUNT_FLAGS
        mount_options = {}
        if options.default_permissions:
            mount_options["default_permissions"] = ""
        if options.allow_other:
            mount_options["allow_other"] = ""
        source = request.source if request.source else b"none"
        self.session.mounts.add(
            request.target, provider,
            fstype=options.fstype.encode(), source=source, options=mount_options,
            mount_flags=flags, super_options=show_super_options(options),
            owner_uid=options.user_id, on_unmount=self._unmounted(device),
        )  # fmt: skip
        log.debug("mounted %s at %s", options.fstype, request.target.decode(errors="replace"))
        return 0

    # ------------------------------------------------------------------ unmount

    def _unmounted(self, device: Device) -> Callable[[Mount], Awaitable[None]]:
        async def on_unmount(mount: Mount) -> None:
            assert device.provider is not None
            await device.provider.unmount()  # DESTROY (fuseblk), abort pending requests
            nursery = self.session.nursery
            if self.session.ending:
                await self._shut_down(device)  # the session waits until the daemon is told
            elif nursery is not None:
                nursery.start_soon(self._shut_down, device)
            else:
                device.close()

        return on_unmount

    async def _shut_down(self, device: Device) -> None:
        """Make the daemon learn of the unmount as from the kernel: its reads fail ENODEV.

        Every thread blocked in read/readv/splice on the device gets -ENODEV (ptrace, D3);
        we keep our end open meanwhile, so that a thread that reads later blocks (and is
        failed in the next round) instead of reading 0, which libfuse calls a "short read"
        and exits 1 on.  A daemon that waits in poll/epoll instead (trio, asyncio: pyfuse3)
        is woken by the hang-up of our end as soon as one of its threads waits so and none
        reads, and followed to its next read of the device, which fails ENODEV too.
        """
        started = trio.current_time()
        deadline = started + SHUTDOWN_TIMEOUT
        delay = 0.005
        failed = 0
        try:
            while trio.current_time() < deadline:
                device.drain()
                holders = await trio.to_thread.run_sync(blocked.holders, device.inode)
                if not holders:
                    break
                readers = 0
                pollers: list[tuple[int, set[int]]] = []
                for pid, fds in holders.items():
                    for tid, number, fd in blocked.blocked_threads(pid, fds, _DEVICE_READS):
                        readers += 1
                        failed += await trio.to_thread.run_sync(
                            blocked.fail_blocked_syscall, tid, number, fd, errno.ENODEV
                        )
                    pollers += [(tid, fds) for tid in blocked.threads_in(pid, _POLL_WAITS)]
                if pollers and not readers:
                    # Hang up to wake them, and fail the read each then makes (libfuse takes
                    # a read of 0 for "short read on fuse device" and exits 1).
                    failed += await trio.to_thread.run_sync(
                        blocked.fail_next_syscall, pollers, _DEVICE_READS, errno.ENODEV,
                        lambda: trio.from_thread.run_sync(device.close), POLLER_TIMEOUT,
                    )
                    break
                await trio.sleep(delay)
                delay = min(delay * 2, 0.1)
        finally:
            device.close()
            self.devices.pop(device.inode, None)
            log.debug("device socket:[%d]: %d blocked read(s) failed with ENODEV, hung up "
                      "after %.1f ms", device.inode, failed,
                      (trio.current_time() - started) * 1000)
