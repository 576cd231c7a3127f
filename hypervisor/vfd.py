"""Virtual file descriptors: real kernel objects at reserved numbers (DESIGN §4).

An open of a virtual object gives the tracee one end of a SOCK_SEQPACKET socketpair, injected
with ADDFD at the lowest free number ≥ FD_BASE.  The kernel then keeps every fd table true
for us (fork, CLONE_FILES, dup, O_CLOEXEC on exec): the hypervisor only keeps, per open file
description, what the kernel would keep in `struct file` (offset, status flags, the provider's
handle, the directory position), keyed by the tracee-side socket's inode.  Our end of the pair
sees a hang-up when the last reference anywhere is closed: that is RELEASE.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import trio

from .paths import VirtualLocation
from .provider import DirEntry, OpenFile
from .readiness import Readiness
from .syscalls import FD_BASE

log = logging.getLogger("vufuse.hypervisor")


class DescriptionLock:
    """The lock of a description's offset (f_pos_lock): a trio.Lock taken at once when it is
    free, without the scheduler pass trio's acquire makes even then (one per read, write or
    getdents, ≈ a tenth of a cached read's time); a held one is waited for as usual."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def acquire(self) -> None:
        """Take the lock, waiting (a checkpoint) only when another task holds it."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    def release(self) -> None:
        """Let go (the task that took it)."""
        self._lock.release()

    def locked(self) -> bool:
        """Whether some task holds it."""
        return self._lock.locked()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


@dataclass(eq=False)
class OpenFileDescription:
    """What the kernel's `struct file` holds for a virtual open."""

    inode: int
    location: VirtualLocation
    flags: int
    handle: OpenFile | None  # None for O_PATH
    our_end: socket.socket
    offset: int = 0
    lock: DescriptionLock = field(default_factory=DescriptionLock)
    dir_buffer: list[DirEntry] = field(default_factory=list)
    released: bool = False
    readiness: Readiness | None = None
    created: float = field(default_factory=lambda: time.clock_gettime(time.CLOCK_BOOTTIME))
    """When it was opened (CLOCK_BOOTTIME): a child born before may have inherited it."""
    """Poll waiters and epoll stand-in, from the first poll (readiness.py)."""

    @property
    def path_only(self) -> bool:
        """True for an O_PATH descriptor (no I/O allowed)."""
        return self.handle is None


def socket_inode(link: str | bytes) -> int | None:
    """The inode of a `/proc/PID/fd/N` link that reads `socket:[INO]`, else None."""
    text = os.fsdecode(link)
    if text.startswith("socket:[") and text.endswith("]"):
        return int(text[8:-1])
    return None


_free_from: dict[int, int] = {}
"""Per fd table (tgid): every number in [FD_BASE, value) was open when last looked at."""
_FREE_FROM_LIMIT = 4096


def lowest_free_fd(pid: int, start: int = FD_BASE, table: int | None = None) -> int:
    """Lowest number ≥ `start` not open in the fd table of thread `pid`.

    With `table` (the process's tgid) a hint keeps where the last search ended, so that a
    process holding 10,000 virtual files does not cost a /proc listing of 10,000 entries per
    open (quadratic).  The hint is trusted only while the number below it is still open, and
    :func:`fd_closed` lowers it; a wrong hint could only make a number not the lowest.
    """
    hint = _free_from.get(table) if table is not None else None
    if hint is not None and start <= hint and (hint == FD_BASE or _is_open(pid, hint - 1)):
        number = hint
    else:
        number = _lowest_by_listing(pid, start)
    while _is_open(pid, number):
        number += 1
    if table is not None and (start == FD_BASE or (hint is not None and start <= hint)):
        if len(_free_from) >= _FREE_FROM_LIMIT:
            _free_from.clear()
        _free_from[table] = number + 1
    return number


def fd_closed(table: int, fd: int) -> None:
    """Number `fd` of process `table` was closed: the next search starts no higher."""
    hint = _free_from.get(table)
    if hint is not None and fd < hint:
        _free_from[table] = max(FD_BASE, fd)


def _is_open(pid: int, fd: int) -> bool:
    return os.path.lexists(f"/proc/{pid}/fd/{fd}")


def _lowest_by_listing(pid: int, start: int) -> int:
    try:
        used = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    except FileNotFoundError:
        raise OSError(errno.ESRCH, "no such process") from None
    number = start
    while number in used:
        number += 1
    return number


class VirtualFdTable:
    """Open file descriptions of virtual objects, by the inode of the tracee-side socket."""

    def __init__(
        self,
        add_inode: Callable[[int], None],
        remove_inode: Callable[[int], None],
    ) -> None:
        self._by_inode: dict[int, OpenFileDescription] = {}
        self._add_inode = add_inode
        self._remove_inode = remove_inode
        self._nursery: trio.Nursery | None = None
        self.before_release: Callable[[OpenFileDescription], Awaitable[None]] | None = None
        """Awaited once the last copy is gone, before RELEASE (FLUSHes still owed)."""

    def attach(self, nursery: trio.Nursery) -> None:
        """Run hang-up watchers in `nursery` (the session's)."""
        self._nursery = nursery

    def get(self, inode: int) -> OpenFileDescription | None:
        """The open file description behind a tracee socket inode, if it is ours."""
        return self._by_inode.get(inode)

    def lookup_fd(self, pid: int, fd: int) -> OpenFileDescription | None:
        """The description behind fd `fd` of thread `pid`, if it is virtual.

        Raises EBADF when the fd is not open: the caller answers as the kernel would.
        """
        if fd < 0:
            raise OSError(errno.EBADF, "bad file descriptor")
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            raise OSError(errno.EBADF, "bad file descriptor") from None
        inode = socket_inode(link)
        return None if inode is None else self._by_inode.get(inode)

    def readiness(self, description: OpenFileDescription) -> Readiness:
        """The poll waiters of `description` (made at its first poll)."""
        assert description.handle is not None
        if description.readiness is None:
            description.readiness = Readiness(description.handle, self._nursery)
        return description.readiness

    def __len__(self) -> int:
        return len(self._by_inode)

    def __iter__(self) -> Iterator[OpenFileDescription]:
        return iter(list(self._by_inode.values()))

    def create(
        self, location: VirtualLocation, flags: int, handle: OpenFile | None
    ) -> tuple[OpenFileDescription, socket.socket]:
        """A new description and the socket to inject into the tracee.

        The caller must close its copy of the tracee end once injected (or on failure), or the
        hang-up, and so RELEASE, never comes.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Nothing is ever sent to the tracee end: shutting our sending side makes it read EOF
        # and poll ready at once, as a regular file does.  So a copy that escapes the trapped
        # range (a known hole) reads EOF instead of blocking forever.
        ours.shutdown(socket.SHUT_WR)
        inode = os.fstat(theirs.fileno()).st_ino
        description = OpenFileDescription(inode, location, flags, handle, ours)
        self._by_inode[inode] = description
        self._add_inode(inode)
        if self._nursery is not None:
            self._nursery.start_soon(self._watch, description)
        return description, theirs

    async def _watch(self, description: OpenFileDescription) -> None:
        """Wait for the hang-up on our end, then RELEASE."""
        try:
            while not description.released:
                try:
                    await trio.lowlevel.wait_readable(description.our_end)
                except (trio.ClosedResourceError, ValueError):
                    break  # released (and closed) by someone else meanwhile
                try:
                    data = description.our_end.recv(1, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    break
                if not data:
                    break  # end of stream: every tracee copy is closed
                # A tracee wrote into its (read-only) virtual fd through an untrapped path
                # (a dup below FD_BASE): drop the message, the data has nowhere to go.
        finally:
            with trio.CancelScope(shield=True):
                await self.release(description)

    async def release(self, description: OpenFileDescription) -> None:
        """Forget `description` and send RELEASE to the provider (once)."""
        if description.released:
            return
        description.released = True
        self._by_inode.pop(description.inode, None)
        try:
            self._remove_inode(description.inode)
        except Exception:  # the tracer may be closed at teardown
            log.debug("remove_virtual_inode failed", exc_info=True)
        if description.our_end.fileno() >= 0:
            trio.lowlevel.notify_closing(description.our_end)  # wakes our _watch, if waiting
        description.our_end.close()
        if description.readiness is not None:
            description.readiness.close()  # out of every epoll instance, as the kernel's fput
        if description.handle is not None:
            if self.before_release is not None:
                try:
                    await self.before_release(description)
                except Exception:
                    log.exception("before_release failed")
            try:
                await description.handle.release()
            except Exception:
                log.exception("provider release failed")
        else:
            try:
                await description.location.mount.provider.unhold(description.location.ino)
            except Exception:
                log.exception("provider unhold failed")

    async def release_hung_up(self) -> None:
        """Release now every description whose last tracee copy is already closed, rather than
        when its watcher task next runs: an unmount right after the last close (a stand-in
        finished just before, D7) must not find the mount busy, as the kernel would not."""
        for description in list(self._by_inode.values()):
            events = select.poll()
            events.register(description.our_end, select.POLLHUP)
            if any(mask & select.POLLHUP for _, mask in events.poll(0)):
                await self.release(description)

    async def release_all(self) -> None:
        """Teardown: release every description still open."""
        for description in list(self._by_inode.values()):
            await self.release(description)
