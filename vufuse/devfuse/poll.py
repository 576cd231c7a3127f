"""poll(2) on an open FUSE file (the kernel's fuse_file_poll and fuse_notify_poll_wakeup).

Every open file has a poll handle ("kh") from a per-connection counter, as the kernel numbers
its `struct fuse_file`s.  POLL carries it with POLL_SCHEDULE_NOTIFY when somebody is going to
wait; the file is then registered under it, and the daemon's NOTIFY_POLL with that kh wakes
the file's waiter.  A daemon that answers ENOSYS is never asked again: every file of the
connection is then always ready, as is a directory (no poll in the kernel's dir operations).
Any other error is POLLERR.
"""

from __future__ import annotations

import errno
import select
from collections.abc import Callable
from typing import TYPE_CHECKING

from hypervisor.provider import DEFAULT_POLLMASK, Caller
from vufuse import protocol as p

if TYPE_CHECKING:
    from .file import FuseFile


def new_handle(file: FuseFile) -> int:
    """The next kh of the file's connection (fuse_file_alloc: ++fc->khctr)."""
    connection = file.sb.connection
    connection.poll_handles += 1
    return connection.poll_handles


async def poll(
    file: FuseFile, events: int, waker: Callable[[], None] | None, caller: Caller | None
) -> int:
    """The daemon's answer to POLL for ``events`` (DEFAULT_POLLMASK when it has none)."""
    connection = file.sb.connection
    if file.is_dir or connection.no_poll:
        return DEFAULT_POLLMASK
    flags = 0
    if waker is not None:
        flags = int(p.PollFlag.SCHEDULE_NOTIFY)
        file.poll_waker = waker
        connection.polled[file.kh] = file  # fuse_register_polled_file
    arg = p.PollIn(fh=file.fh, kh=file.kh, flags=flags, events=events & 0xFFFFFFFF)
    try:
        body = await connection.call(p.PollRequest(file.sb.header(file.inode.nodeid, caller), arg))
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            connection.no_poll = True
            return DEFAULT_POLLMASK
        if exc.errno in (errno.EINTR, errno.ENOTCONN):
            raise
        return select.POLLERR
    out: p.PollOut = body
    return int(out.revents)


def wake(file_table: dict[int, FuseFile], kh: int) -> None:
    """NOTIFY_POLL: wake whoever waits on the file registered under ``kh`` (none: ignored,
    as the kernel ignores an unknown kh)."""
    file = file_table.get(kh)
    if file is not None and file.poll_waker is not None:
        file.poll_waker()


def forget(file: FuseFile) -> None:
    """The file is released: NOTIFY_POLL no longer finds it."""
    file.sb.connection.polled.pop(file.kh, None)
    file.poll_waker = None
