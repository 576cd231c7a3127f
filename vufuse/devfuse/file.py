"""Open files and reading (Linux fs/fuse/file.c): OPEN/OPENDIR, READ through a per-inode
page cache or direct, FLUSH, RELEASE/RELEASEDIR.

The page cache is a dict of 4 KiB pages per inode, kept like the kernel's: an open without
FOPEN_KEEP_CACHE drops it, a size change (or an mtime change under AUTO_INVAL_DATA) drops it
(inode.py), INVAL_INODE drops a range; cached reads are clamped to i_size, and a short READ
shrinks i_size.  FOPEN_DIRECT_IO or O_DIRECT bypass it: reads go straight to the daemon,
split by ``min(max_read, max_pages)``, and are not clamped to i_size.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from collections.abc import Callable

from hypervisor.provider import Caller
from vufuse import protocol as p

from . import dir as fuse_dir
from . import poll as fuse_poll
from . import writeback
from .connection import PAGE_SIZE
from .init import MAX_READAHEAD, read_chunk_size
from .inode import STATX_SIZE, Inode
from .permission import is_root
from .superblock import Superblock

FOPEN = p.OpenReplyFlag
F = p.InitFlag
_STRIPPED_OPEN_FLAGS = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC
KERNEL_O_LARGEFILE = 0o100000
"""x86_64's O_LARGEFILE as the kernel sees it (glibc's os.O_LARGEFILE is 0 there): open(2)
on a 64-bit kernel always adds it to f_flags, so daemons see it in OPEN, READ and RELEASE."""


class FuseFile:
    """One open file description of a FUSE inode (struct fuse_file)."""

    def __init__(
        self, sb: Superblock, inode: Inode, fh: int, open_flags: int, flags: int, *, release: bool
    ) -> None:
        self.sb = sb
        self.inode = inode
        self.fh = fh
        self.open_flags = open_flags
        self.flags = flags
        self.needs_release = release
        self.released = False
        #: Scrambled owner id once flock(2) went to the daemon (locks.py): RELEASE unlocks.
        self.flock_owner: int | None = None
        self.kh = fuse_poll.new_handle(self)
        #: Called at the daemon's NOTIFY_POLL for ``kh`` (set by the last POLL that waits).
        self.poll_waker: Callable[[], None] | None = None
        if writeback.enabled(sb):
            writeback.add_writer(self)  # OPEN and CREATE alike

    @property
    def is_dir(self) -> bool:
        """Opened with OPENDIR."""
        return self.inode.file_type == stat_module.S_IFDIR

    @property
    def direct_io(self) -> bool:
        """Reads bypass the page cache (FOPEN_DIRECT_IO, or O_DIRECT from the caller)."""
        return bool(self.open_flags & FOPEN.DIRECT_IO or self.flags & os.O_DIRECT)

    @property
    def seekable(self) -> bool:
        """False for FOPEN_NONSEEKABLE and FOPEN_STREAM: lseek and pread fail ESPIPE."""
        return not self.open_flags & (FOPEN.NONSEEKABLE | FOPEN.STREAM)

    @classmethod
    async def open(
        cls, sb: Superblock, inode: Inode, flags: int, caller: Caller | None
    ) -> FuseFile:
        """OPEN or OPENDIR (fuse_do_open + fuse_finish_open).

        The daemon sees the open(2) flags plus O_LARGEFILE, without O_CREAT, O_EXCL, O_NOCTTY,
        and without O_TRUNC unless ATOMIC_O_TRUNC was agreed: then the OPEN truncates (with
        FUSE_OPEN_KILL_SUIDGID under HANDLE_KILLPRIV_V2 for a caller without CAP_FSETID) and
        i_size becomes 0 here, as fuse_finish_open does.  ENOSYS is remembered: later opens
        succeed with fh 0 and no RELEASE, and keep the cache.
        """
        inode.check()
        is_dir = inode.file_type == stat_module.S_IFDIR
        connection = sb.connection
        skip = connection.no_opendir if is_dir else connection.no_open
        open_flags = int(FOPEN.KEEP_CACHE | (FOPEN.CACHE_DIR if is_dir else 0))
        fh = 0
        release = False
        negotiated = connection.negotiated
        atomic_trunc = bool(flags & os.O_TRUNC) and negotiated.has(F.ATOMIC_O_TRUNC) and not is_dir
        if not skip:
            stripped = _STRIPPED_OPEN_FLAGS & ~(os.O_TRUNC if atomic_trunc else 0)
            arg = p.OpenIn(flags=(flags | KERNEL_O_LARGEFILE) & ~stripped & 0xFFFFFFFF)
            if atomic_trunc and negotiated.has(F.HANDLE_KILLPRIV_V2) and not is_root(caller):
                arg = arg._replace(open_flags=int(p.OpenRequestFlag.KILL_SUIDGID))
            header = sb.header(inode.nodeid, caller)
            request = p.OpendirRequest(header, arg) if is_dir else p.OpenRequest(header, arg)
            try:
                body = await connection.call(request)
            except OSError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
                if is_dir:
                    connection.no_opendir = True
                else:
                    connection.no_open = True
            else:
                out: p.OpenOut = body
                fh, open_flags, release = out.fh, out.open_flags, True
        if is_dir:
            open_flags &= ~FOPEN.DIRECT_IO
        open_flags &= ~FOPEN.PASSTHROUGH  # not offered: no backing file to pass through to
        if not open_flags & FOPEN.KEEP_CACHE:
            if inode.dirty:  # invalidate_inode_pages2 launders dirty pages first
                await writeback.write_pages(sb, inode)
            inode.invalidate_pages()
        if atomic_trunc:
            # fuse_finish_open: the daemon truncated; i_size 0, new size and times to fetch.
            inode.attr = inode.attr._replace(size=0)
            inode.dirty.clear()  # truncate_pagecache(0): dirty pages go too
            inode.invalidate_pages()
            sb.inodes.invalidate_attr(inode)
        inode.opens += 1
        # f_flags after do_dentry_open: what READ and RELEASE carry.
        file_flags = (flags | KERNEL_O_LARGEFILE) & ~_STRIPPED_OPEN_FLAGS & 0xFFFFFFFF
        return cls(sb, inode, fh, open_flags, file_flags, release=release)

    # ------------------------------------------------------------------ reading

    def _read_request(self, offset: int, size: int, caller: Caller | None) -> p.ReadRequest:
        arg = p.ReadIn(fh=self.fh, offset=offset, size=size, flags=self.flags & 0xFFFFFFFF)
        return p.ReadRequest(self.sb.header(self.inode.nodeid, caller), arg)

    async def read(self, offset: int, size: int, caller: Caller | None = None) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fuse_file_read_iter)."""
        self.inode.check()
        if self.is_dir:
            raise OSError(errno.EISDIR, "is a directory")
        if size <= 0:
            return b""
        if self.direct_io:
            await writeback.sync(self.sb, self.inode)
            return await self._read_direct(offset, size, caller)
        return await self._read_cached(offset, size, caller)

    async def _read_direct(self, offset: int, size: int, caller: Caller | None) -> bytes:
        chunk = read_chunk_size(self.sb.connection.negotiated, self.sb.options.effective_max_read)
        pieces: list[bytes] = []
        try:
            while size > 0:
                want = min(size, chunk)
                body = await self.sb.connection.call(self._read_request(offset, want, caller))
                data: bytes = body or b""
                pieces.append(data)
                if len(data) < want:
                    break
                offset += want
                size -= want
        finally:
            self.sb.inodes.invalidate_atime(self.inode)  # __fuse_direct_read
        return b"".join(pieces)

    async def _read_cached(self, offset: int, size: int, caller: Caller | None) -> bytes:
        inode = self.inode
        if (
            self.sb.inodes.auto_inval_data
            and not self.sb.inodes.writeback_cache  # i_size is ours: nothing to refresh
            and offset + size > inode.size
        ):
            # fuse_cache_read_iter: a read past EOF refreshes (possibly stale) i_size first.
            await fuse_dir.getattr(self.sb, inode, caller, fh=self.fh, mask=STATX_SIZE)
        end = min(offset + size, inode.size)
        if offset >= end:
            return b""
        first, last = offset // PAGE_SIZE, (end - 1) // PAGE_SIZE
        wanted = range(first, last + 1)
        pages = {index: inode.pages[index] for index in wanted if index in inode.pages}
        missing = [index for index in wanted if index not in pages]
        if missing:
            filled = await self._fill(missing[0], last, caller)
            pages.update({index: page for index, page in filled.items()
                          if index not in inode.dirty})  # fmt: skip
        end = min(end, inode.size)  # a short read may have shrunk i_size
        data = b"".join(pages.get(index, bytes(PAGE_SIZE)) for index in range(first, last + 1))
        start = offset - first * PAGE_SIZE
        return data[start : start + max(0, end - offset)]

    async def _fill(self, first: int, last: int, caller: Caller | None) -> dict[int, bytes]:
        """Read pages ``first``..``last`` and readahead beyond, in READs of whole pages.

        Readahead extends the run to MAX_READAHEAD (the kernel's default window) but never
        past the page holding i_size.  Cached pages inside the run are read again: simpler
        than the kernel's per-page holes, and correct.
        """
        inode = self.inode
        negotiated = self.sb.connection.negotiated
        window = min(MAX_READAHEAD, negotiated.max_readahead or MAX_READAHEAD) // PAGE_SIZE
        eof_page = (inode.size + PAGE_SIZE - 1) // PAGE_SIZE
        stop = min(max(last + 1, first + window), eof_page)
        stop = max(stop, last + 1)
        chunk_pages = read_chunk_size(negotiated, self.sb.options.effective_max_read) // PAGE_SIZE
        filled: dict[int, bytes] = {}
        epoch = inode.cache_epoch
        index = first
        while index < stop:
            count = min(chunk_pages, stop - index)
            offset, want = index * PAGE_SIZE, count * PAGE_SIZE
            try:
                body = await self.sb.connection.call(self._read_request(offset, want, caller))
            finally:
                self.sb.inodes.invalidate_atime(inode)  # fuse_readpages_end
            data: bytes = body or b""
            for page in range(count):
                piece = data[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
                filled[index + page] = piece.ljust(PAGE_SIZE, b"\0")
            if len(data) < want:
                self._short_read(offset + len(data))
                # fuse_short_read: the rest of this request is zeroes, nothing after it exists.
                filled = {page: value for page, value in filled.items()
                          if page * PAGE_SIZE < max(inode.size, 1)}  # fmt: skip
                break
            index += count
        if not inode.bad and inode.cache_epoch == epoch:
            # Dirty pages of the writeback cache are newer than what the daemon has.
            inode.pages.update({index: page for index, page in filled.items()
                                if index not in inode.dirty})  # fmt: skip
        return filled

    def _short_read(self, end: int) -> None:
        """fuse_read_update_size: EOF came early, so i_size shrinks and attrs go stale."""
        inode = self.inode
        if self.sb.inodes.writeback_cache:
            return  # a hole before data still in the cache: the rest reads as zeroes
        if end < inode.size:
            inode.attr = inode.attr._replace(size=end)
            self.sb.inodes.invalidate_attr(inode)

    # ------------------------------------------------------------------ close

    async def flush(self, lock_owner: int = 0, caller: Caller | None = None) -> None:
        """FLUSH at every close(2) of a regular file (fuse_flush); ENOSYS is remembered."""
        self.inode.check()
        connection = self.sb.connection
        if self.is_dir:
            return
        if writeback.enabled(self.sb):
            await writeback.sync(self.sb, self.inode)  # write_inode_now, even with NOFLUSH
        if self.open_flags & FOPEN.NOFLUSH or connection.no_flush:
            return
        arg = p.FlushIn(fh=self.fh, lock_owner=lock_owner)
        try:
            request = p.FlushRequest(self.sb.header(self.inode.nodeid, caller), arg)
            await connection.call(request, interruptible=False)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            connection.no_flush = True

    async def release(self) -> None:
        """RELEASE/RELEASEDIR when the last reference goes; sent without waiting, as the
        kernel's background release, and without credentials (uid/gid/pid 0)."""
        if self.released:
            return
        inode = self.inode
        if writeback.enabled(self.sb) and not self.is_dir:
            try:
                await writeback.sync(self.sb, inode)  # fuse_release: write_inode_now
            except OSError:
                pass  # nobody to tell: close(2) already returned
            writeback.remove_writer(self)
        self.released = True
        fuse_poll.forget(self)
        if self.needs_release:
            arg = p.ReleaseIn(fh=self.fh, flags=self.flags & 0xFFFFFFFF)
            if self.flock_owner is not None:
                arg = arg._replace(release_flags=int(p.ReleaseFlag.FLOCK_UNLOCK),
                                   lock_owner=self.flock_owner)  # fmt: skip
            header = p.InHeader(nodeid=inode.nodeid)
            request: p.Request = (
                p.ReleasedirRequest(header, arg) if self.is_dir else p.ReleaseRequest(header, arg)
            )
            await self.sb.connection.send_background(request)
        inode.opens -= 1
        self.sb.inodes.release_if_unused(inode)
        await self.sb.flush_forgets()
