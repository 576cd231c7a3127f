"""From a seccomp notification to a handler, and from its result to the answer.

A handler is an async function of one :class:`Call`.  It returns the syscall's value, or
:data:`CONTINUE` (let the kernel run the syscall: the object is not virtual), or
:data:`ANSWERED` (it answered itself, e.g. with an ADDFD that also answers).  It raises
``OSError(errno)`` for an error answer; the dispatcher sends ``-errno``.  Any other exception is
a bug: it is logged once per syscall and answered EIO if the handler had already found a
virtual object (the kernel can't do it for us), CONTINUE otherwise.  The session never dies of
a handler.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from . import syscalls
from .abi import signed32, signed64
from .process import Credentials, credentials
from .provider import Caller

if TYPE_CHECKING:
    from .lowfd import LowFdStandIn
    from .session import Session

log = logging.getLogger("vufuse.hypervisor")


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


CONTINUE = _Sentinel("CONTINUE")
"""Let the kernel run the syscall as the tracee made it."""
ANSWERED = _Sentinel("ANSWERED")
"""The handler has answered the notification itself."""

Reply = int | _Sentinel


class NotificationLike(Protocol):
    """What the dispatcher reads of a `_tracer.Notification`."""

    id: int
    pid: int
    nr: int
    args: tuple[int, int, int, int, int, int]
    reason: int
    fd: int
    inode: int


@dataclass
class Call:
    """One trapped syscall being handled."""

    notification: NotificationLike
    session: Session
    touched_virtual: bool = False
    lexical_key: bytes | None = None
    """The caller's path as an absolute name (joined to its real base), set by
    `handlers.common.resolve`: the key of the C core's answer cache."""
    _credentials: Credentials | None = field(default=None, repr=False)
    _tgid: int = field(default=0, repr=False)
    stand_in: LowFdStandIn | None = None
    """The low-fd stand-in (lowfd.LowFdStandIn) `handlers.common.virtual_fd` found behind an
    fd of the call, if any: the handler keeps its memfd coherent (decisions D29)."""

    @property
    def tid(self) -> int:
        """Thread id of the caller (the notification's pid)."""
        return self.notification.pid

    @property
    def nr(self) -> int:
        """Syscall number."""
        return self.notification.nr

    @property
    def name(self) -> str:
        """Syscall name."""
        return syscalls.NAMES.get(self.nr, f"syscall_{self.nr}")

    def arg(self, index: int) -> int:
        """Argument `index` as an unsigned 64-bit value."""
        return self.notification.args[index]

    def int_arg(self, index: int) -> int:
        """Argument `index` as a C int (fds, flags)."""
        return signed32(self.notification.args[index])

    def long_arg(self, index: int) -> int:
        """Argument `index` as a C long (offsets)."""
        return signed64(self.notification.args[index])

    @property
    def tgid(self) -> int:
        """Process id of the caller (looked up once per call: the caller waits meanwhile)."""
        if not self._tgid:
            self._tgid = self.session.processes.tgid(self.tid)
        return self._tgid

    @property
    def credentials(self) -> Credentials:
        """The caller's credentials (read once per call)."""
        if self._credentials is None:
            self._credentials = credentials(self.tid)
        return self._credentials

    @property
    def identity(self) -> Credentials:
        """The caller's ids for permission checks and request headers: the session's own
        while no tracee may have changed its ids (no /proc read), else :attr:`credentials`.
        Its umask is not the caller's: use :attr:`credentials` for that."""
        if self._credentials is not None:
            return self._credentials
        shared = self.session.answers.session_identity()
        return shared if shared is not None else self.credentials

    @property
    def caller(self) -> Caller:
        """The caller as providers see it (FUSE's request header: thread id, fsuid, fsgid)."""
        creds = self.identity
        return Caller(pid=self.tid, uid=creds.fsuid, gid=creds.fsgid, groups=list(creds.groups))

    def read_path(self, index: int) -> bytes:
        """The NUL-terminated string argument `index` (EFAULT, ENAMETOOLONG)."""
        return self.session.tracer.read_string(self.tid, self.arg(index), 4097)

    def read_memory(self, address: int, size: int) -> bytes:
        """`size` bytes of the caller's memory (EFAULT when none is readable)."""
        if size == 0:
            return b""
        data = self.session.tracer.read_mem(self.tid, address, size)
        if len(data) < size:
            raise OSError(errno.EFAULT, "bad address")
        return data

    def write_memory(self, address: int, data: bytes) -> None:
        """Write into the caller's memory (EFAULT on a bad pointer)."""
        if data:
            self.session.tracer.write_mem(self.tid, address, data)


Handler = Callable[[Call], Awaitable[Reply]]


class Dispatcher:
    """Syscall number → handler."""

    def __init__(self) -> None:
        self.handlers: dict[int, Handler] = {}
        self._logged: set[int] = set()

    def register(self, names: str, handler: Handler) -> None:
        """Route every syscall named in `names` (space-separated) to `handler`."""
        for name in names.split():
            self.handlers[syscalls.nr(name)] = handler

    async def handle(self, call: Call) -> Reply | OSError:
        """Run the handler of `call`; returns its reply or the OSError to answer."""
        handler = self.handlers.get(call.nr)
        if handler is None:
            return CONTINUE
        try:
            return await handler(call)
        except OSError as error:
            if not error.errno:
                error = OSError(errno.EIO, "I/O error")
            return error
        except Exception:
            if call.nr not in self._logged:
                self._logged.add(call.nr)
                log.exception("vufuse: internal error in %s handler", call.name)
            return OSError(errno.EIO, "I/O error") if call.touched_virtual else CONTINUE
