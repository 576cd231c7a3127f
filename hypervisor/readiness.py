"""Who waits for an open file description's poll mask to change (decisions.md D26).

The provider is asked at each poll, select or epoll_ctl of a virtual fd (the kernel's
f_op->poll) and given :meth:`Readiness.wake` when somebody will wait.  Waiting callers are
eventfds that a wake makes readable.  An epoll instance can't be handed an answer, so it
watches a stand-in instead of the tracee's socket: one end of a socket pair vufuse holds
both ends of, whose readability (a byte queued), urgent data (a byte sent MSG_OOB: POLLPRI)
and writability (its send buffer full or not) vufuse sets from the provider's mask, and
refreshes after each wake and each read or write through the description.
"""

from __future__ import annotations

import logging
import os
import select
import socket

import trio

from .provider import Caller, OpenFile

log = logging.getLogger("vufuse.hypervisor")

_READABLE = select.POLLIN | select.POLLRDNORM
_WRITABLE = select.POLLOUT | select.POLLWRNORM


class EpollStandIn:
    """The socket an epoll instance watches for a virtual fd, its readiness set by vufuse."""

    def __init__(self) -> None:
        self.watched, self._driver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.watched.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self._readable = False
        self._urgent = False
        self._blocked = False
        #: Every event any epoll_ctl asked of this description (what a refresh asks).
        self.interest = 0
        self.caller: Caller | None = None

    def fileno(self) -> int:
        """The number under which epoll instances hold the stand-in (stable for its life)."""
        return self.watched.fileno()

    def show(self, mask: int) -> None:
        """Make the stand-in poll as `mask` says (POLLIN, POLLPRI, POLLOUT; POLLPRI implies
        POLLIN on a socket)."""
        readable, urgent = bool(mask & _READABLE), bool(mask & select.POLLPRI)
        if (readable, urgent) != (self._readable, self._urgent):
            self._drain(self.watched, urgent_too=self._urgent)
            if urgent:
                self._driver.send(b"!", socket.MSG_OOB | socket.MSG_DONTWAIT)
            elif readable:
                self._driver.send(b".", socket.MSG_DONTWAIT)
            self._readable, self._urgent = readable, urgent
        blocked = not mask & _WRITABLE
        if blocked and not self._blocked:
            try:
                while True:
                    self.watched.send(b"\0" * 4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
        elif self._blocked and not blocked:
            self._drain(self._driver, urgent_too=False)
        self._blocked = blocked

    @staticmethod
    def _drain(end: socket.socket, urgent_too: bool) -> None:
        if urgent_too:
            try:
                end.recv(1, socket.MSG_OOB | socket.MSG_DONTWAIT)
            except OSError:
                pass
        try:
            while end.recv(65536, socket.MSG_DONTWAIT):
                pass
        except OSError:
            pass

    def close(self) -> None:
        """The description is released: closing the stand-in takes it out of every epoll."""
        self.watched.close()
        self._driver.close()


class Readiness:
    """The waiters of one open file description (created at its first poll)."""

    def __init__(self, handle: OpenFile, nursery: trio.Nursery | None) -> None:
        self._handle = handle
        self._nursery = nursery
        self._waiters: set[int] = set()
        self.epoll: EpollStandIn | None = None
        self._stale = trio.Event()
        self._refreshing = False
        self.closed = False

    def wake(self) -> None:
        """The provider says the mask may have changed: wake the waiters, refresh epoll."""
        for fd in list(self._waiters):
            try:
                os.eventfd_write(fd, 1)
            except OSError:
                pass
        self.changed()

    def changed(self) -> None:
        """The mask may differ now (a wake, a read or write): refresh the epoll stand-in."""
        if self.epoll is None or self.closed:
            return
        self._stale.set()
        if not self._refreshing and self._nursery is not None:
            self._refreshing = True
            self._nursery.start_soon(self._refresh_loop)

    def add_waiter(self, eventfd: int) -> None:
        """A poll or select that waits on this description."""
        self._waiters.add(eventfd)

    def remove_waiter(self, eventfd: int) -> None:
        """Its call is over."""
        self._waiters.discard(eventfd)

    def stand_in(self) -> EpollStandIn:
        """The epoll stand-in (made at the first epoll_ctl)."""
        if self.epoll is None:
            self.epoll = EpollStandIn()
        return self.epoll

    async def refresh(self) -> None:
        """Ask the provider for the epoll interest and show its answer on the stand-in."""
        stand_in = self.epoll
        if stand_in is None or self.closed:
            return
        events = stand_in.interest | select.POLLERR | select.POLLHUP
        mask = await self._handle.poll(events, self.wake, caller=stand_in.caller)
        if not self.closed:
            stand_in.show(mask)

    async def _refresh_loop(self) -> None:
        try:
            while self._stale.is_set() and not self.closed:
                self._stale = trio.Event()
                try:
                    await self.refresh()
                except (OSError, trio.ClosedResourceError):
                    log.debug("epoll stand-in refresh failed", exc_info=True)
        finally:
            self._refreshing = False

    def close(self) -> None:
        """The description is released."""
        self.closed = True
        self._waiters.clear()
        if self.epoll is not None:
            self.epoll.close()

