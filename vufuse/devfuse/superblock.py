"""One mounted FUSE file system: connection + caches + mount options (the kernel's
fuse_mount/super_block, fs/fuse/inode.c).  Also STATFS and the notifications that act on the
caches (fs/fuse/dev.c fuse_notify_*; here because they are policy on inodes and dentries).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from hypervisor.provider import Caller
from vufuse import protocol as p

from . import poll as fuse_poll
from .connection import Connection
from .dentry import DentryCache
from .inode import Inode, InodeTable
from .mountopts import MountOptions

log = logging.getLogger(__name__)

FUSE_SUPER_MAGIC = 0x65735546
FUSEBLK_SUPER_MAGIC = 0x65735543


_MISSED_LIMIT = 4096


class Superblock:
    """Everything the per-object modules (dir, file, readdir, xattr) share for one mount."""

    def __init__(
        self,
        connection: Connection,
        options: MountOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        dentry_limit: int = 32768,
    ) -> None:
        self.connection = connection
        self.options = options
        self.clock = clock
        self.inodes = InodeTable(clock, options.rootmode)
        self.inodes.readonly = options.readonly
        self.dentries = DentryCache(self.inodes, dentry_limit)
        self.default_caller = Caller(pid=0, uid=options.user_id, gid=options.group_id)
        self.missed: dict[int, tuple[int, bytes, int]] = {}
        """Thread id → (parent nodeid, name, dentry generation) of that thread's last LOOKUP
        when the daemon answered ENOENT: see :meth:`just_missed`."""
        connection.on_notification = self.notify
        connection.after_notification = self.flush_forgets

    # ------------------------------------------------------------------ requests

    def header(self, nodeid: int, caller: Caller | None) -> p.InHeader:
        """The in_header of a request made by ``caller`` (its fsuid, fsgid and thread id)."""
        who = caller or self.default_caller
        return p.InHeader(nodeid=nodeid, uid=who.uid, gid=who.gid, pid=who.pid)

    def note_lookup(self, caller: Caller | None, parent: int, name: bytes, missing: bool) -> None:
        """Remember (``missing``) or forget the ENOENT of ``caller``'s LOOKUP just answered."""
        if caller is None or not caller.pid:
            return
        if not missing:
            self.missed.pop(caller.pid, None)
            return
        if len(self.missed) >= _MISSED_LIMIT:
            self.missed.clear()  # threads long gone: what they missed is of no use any more
        self.missed[caller.pid] = (parent, name, self.dentries.generation)

    def just_missed(self, caller: Caller | None, parent: int, name: bytes) -> bool:
        """Whether ``caller``'s last LOOKUP asked for ``name`` in ``parent``, the daemon said
        ENOENT and no name in the cache changed since (consumed).

        open(O_CREAT) walks to the last name with a LOOKUP before it creates: that LOOKUP is
        the one the kernel's atomic_open sends, so the create needs no second one.  Only an
        ENOENT error counts (it leaves no dentry, so any later walk of the name asks the
        daemon again and replaces this note); any dentry change, here or elsewhere, voids it.
        """
        if caller is None or not caller.pid:
            return False
        noted = self.missed.pop(caller.pid, None)
        return noted == (parent, name, self.dentries.generation)

    def check_allowed(self, caller: Caller | None) -> None:
        """fuse_allow_current_process: without allow_other only the mount owner gets in."""
        if caller is None or self.options.allow_other:
            return
        if caller.uid != self.options.user_id or caller.gid != self.options.group_id:
            raise OSError(errno.EACCES, "FUSE mount without allow_other")

    def apply_negotiated(self) -> None:
        """Copy INIT's cache policy into the inode table (once INIT has completed)."""
        negotiated = self.connection.negotiated
        self.inodes.auto_inval_data = negotiated.has(p.InitFlag.AUTO_INVAL_DATA)
        self.inodes.explicit_inval_data = negotiated.has(p.InitFlag.EXPLICIT_INVAL_DATA)
        self.inodes.writeback_cache = negotiated.has(p.InitFlag.WRITEBACK_CACHE)

    async def flush_forgets(self) -> None:
        """Send the FORGETs owed for evicted inodes: one BATCH_FORGET from 7.16, else FORGETs.

        Shielded: a reference the daemon counted must be given back even if the caller was
        cancelled meanwhile.
        """
        forgets = self.inodes.take_forgets()
        if not forgets or not self.connection.connected:
            return
        with trio.CancelScope(shield=True):
            if self.connection.negotiated.minor >= 16:
                for start in range(0, len(forgets), 512):
                    batch = tuple(forgets[start : start + 512])
                    await self.connection.send_background(
                        p.BatchForgetRequest(
                            p.InHeader(nodeid=0), p.BatchForgetIn(count=len(batch)), batch
                        )
                    )
            else:
                for forget in forgets:
                    await self.connection.send_background(
                        p.ForgetRequest(
                            p.InHeader(nodeid=forget.nodeid), p.ForgetIn(nlookup=forget.nlookup)
                        )
                    )

    # ------------------------------------------------------------------ statfs

    async def statfs(self, inode: Inode, caller: Caller | None) -> p.Kstatfs:
        """STATFS (fuse_statfs); a caller shut out by allow_other sees an empty one."""
        try:
            self.check_allowed(caller)
        except OSError:
            return p.Kstatfs()
        body = await self.connection.call(p.StatfsRequest(self.header(inode.nodeid, caller)))
        return body.st

    # ------------------------------------------------------------------ notifications

    def notify(self, notification: Any) -> None:
        """Apply a daemon's notification to the caches (fuse_notify_inval_inode/entry, delete).

        POLL wakes the waiter of the file registered under its kh (poll.py); STORE and
        RETRIEVE are store.py's; the rest are logged and ignored.
        """
        if isinstance(notification, p.InvalInodeNotification):
            inode = self.inodes.find(notification.arg.ino)
            if inode is None:
                return
            self.inodes.invalidate_attr(inode)
            if notification.arg.off >= 0:
                self._drop_pages(inode, notification.arg.off, notification.arg.len)
        elif isinstance(notification, p.InvalEntryNotification):
            if notification.arg.flags & p.InvalEntryFlag.EXPIRE_ONLY:
                self.dentries.expire(notification.arg.parent, notification.name)
            else:
                self.dentries.invalidate(notification.arg.parent, notification.name)
            parent = self.inodes.find(notification.arg.parent)
            if parent is not None:
                self.inodes.invalidate_attr(parent)
        elif isinstance(notification, p.DeleteNotification):
            self.dentries.invalidate(notification.arg.parent, notification.name)
            for nodeid in (notification.arg.parent, notification.arg.child):
                inode = self.inodes.find(nodeid)
                if inode is not None:
                    self.inodes.invalidate_attr(inode)
        elif isinstance(notification, p.PollNotification):
            fuse_poll.wake(self.connection.polled, notification.arg.kh)
        else:
            log.debug("FUSE notification ignored: %s", type(notification).__name__)
        # Evictions caused here owe FORGETs: the receive loop awaits flush_forgets next.

    @staticmethod
    def _drop_pages(inode: Inode, offset: int, length: int) -> None:
        page_size = 4096
        first = offset // page_size
        last = (offset + length - 1) // page_size if length > 0 else 1 << 62
        for index in [index for index in inode.pages if first <= index <= last]:
            del inode.pages[index]
        inode.dir_cache = None
        inode.cache_epoch += 1
