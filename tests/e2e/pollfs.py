"""A filesystem on our pyfuse3 API whose one file, ``queue``, is a message queue with poll.

``printf MSG >> queue`` queues a message and wakes the pollers the kernel registered
(PollHandle.notify); a read takes the oldest message (b"" when there is none).  poll answers
POLLIN while a message waits, POLLOUT always.  ``--no-poll``: the same without a poll
method (the kernel then gets ENOSYS and polls the file always ready).  Every POLL, FLUSH and
RELEASE is logged, one line each, to the file named by POLLFS_LOG.

Usage: python3 pollfs.py MOUNTPOINT [--no-poll]
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "fs"))

from _common import parse_args, pyfuse3, serve  # noqa: E402

QUEUE = pyfuse3.ROOT_INODE + 1
_LOG = os.environ.get("POLLFS_LOG", "/dev/null")


def log(line: str) -> None:
    """One line to the log, flushed at once (the test reads it while we run)."""
    with open(_LOG, "a") as out:
        out.write(line + "\n")


class QueueFs(pyfuse3.Operations):
    """One file, a message queue."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[bytes] = []
        self.waiters: dict[int, pyfuse3.PollHandle] = {}
        self.next_fh = 1

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext | None = None
                      ) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        if inode == pyfuse3.ROOT_INODE:
            entry.st_mode, entry.st_nlink = stat.S_IFDIR | 0o755, 2
        elif inode == QUEUE:
            entry.st_mode, entry.st_nlink = stat.S_IFREG | 0o666, 1
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        entry.st_ino = inode
        entry.st_uid, entry.st_gid = os.getuid(), os.getgid()
        return entry

    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
                     ) -> pyfuse3.EntryAttributes:
        if parent_inode != pyfuse3.ROOT_INODE or name != b"queue":
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(QUEUE)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if start_id == 0:
            pyfuse3.readdir_reply(token, b"queue", await self.getattr(QUEUE), 1)

    async def releasedir(self, fh: int) -> None:
        pass

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext
                   ) -> pyfuse3.FileInfo:
        fh, self.next_fh = self.next_fh, self.next_fh + 1
        return pyfuse3.FileInfo(fh=fh, direct_io=True, nonseekable=True)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return self.messages.pop(0) if self.messages else b""

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        self.messages.append(bytes(buf))
        waiters, self.waiters = self.waiters, {}
        for handle in waiters.values():
            handle.notify()
        log(f"write {len(buf)} notified {len(waiters)}")
        return len(buf)

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes,
                      fields: pyfuse3.SetattrFields, fh: int | None,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return await self.getattr(inode)

    async def flush(self, fh: int) -> None:
        log(f"flush {fh}")

    async def release(self, fh: int) -> None:
        log(f"release {fh}")


class PollingQueueFs(QueueFs):
    """The queue with poll."""

    async def poll(self, inode: int, fh: int, poll_handle: pyfuse3.PollHandle | None,
                   ctx: pyfuse3.RequestContext) -> int:
        if poll_handle is not None:
            self.waiters[fh] = poll_handle
        revents = select.POLLOUT | (select.POLLIN if self.messages else 0)
        log(f"poll {fh} schedule={int(poll_handle is not None)} revents={revents}")
        return revents


def main() -> None:
    argv = [arg for arg in sys.argv[1:] if arg != "--no-poll"]
    args = parse_args("a message queue with poll", argv, with_source=False)
    serve(QueueFs() if "--no-poll" in sys.argv else PollingQueueFs(), args, "pollfs")


if __name__ == "__main__":
    main()
