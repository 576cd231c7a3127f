"""The writeback cache (FUSE_WRITEBACK_CACHE; Linux fs/fuse/file.c write_begin/write_end,
writepages, fuse_flush_times; docs/decisions.md D24).

With it agreed, write(2) only dirties pages of the inode's page cache: a partly written page
that is not cached and lies inside i_size is read first (one READ through the writing file:
read-modify-write).  i_size, mtime and ctime become the emulator's (inode.py keeps them
against attribute replies).  Dirty pages go to the daemon as WRITEs with FUSE_WRITE_CACHE,
without credentials, through any writable open of the inode, runs of contiguous pages cut by
max_write/max_pages and clamped to i_size; then, if a write moved the times, a SETATTR with
MTIME|CTIME|FH (fuse_flush_times).  That happens at close (before FLUSH), fsync (before
FSYNC), a chmod/chown/utimes (before its SETATTR), after a truncate (the kept dirty part of
the last page), before an open that drops the cache, a direct or copy I/O, the last
RELEASE, and when an inode holds more than :data:`DIRTY_LIMIT` dirty pages.
"""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING, Any

import trio

from hypervisor.provider import Caller
from vufuse import protocol as p

from .connection import PAGE_SIZE
from .inode import Inode

if TYPE_CHECKING:
    from .file import FuseFile
    from .superblock import Superblock

F = p.InitFlag
FATTR = p.SetattrValid
WAKE_INTERVAL = 5.0
"""Seconds between two passes of the periodic writeback (dirty_writeback_centisecs)."""
DIRTY_EXPIRE = 30.0
"""Seconds a page may stay dirty before the periodic pass writes it (dirty_expire_centisecs)."""
DIRTY_LIMIT = 4096
"""Dirty pages (16 MiB) one inode may hold before its writes go out: the kernel's dirty
throttling, reduced to a bound per inode."""


def enabled(sb: Superblock) -> bool:
    """WRITEBACK_CACHE agreed at INIT."""
    return sb.connection.negotiated.has(F.WRITEBACK_CACHE)


def _writable(file: Any) -> bool:
    return bool(file.flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR))


def add_writer(file: FuseFile) -> None:
    """A writable open joins the inode's write_files at the head (fuse_link_write_file):
    writeback uses the most recent writable open."""
    if _writable(file) and not file.is_dir:
        file.inode.writers.insert(0, file)


def remove_writer(file: FuseFile) -> None:
    """The open leaves write_files at RELEASE."""
    if file in file.inode.writers:
        file.inode.writers.remove(file)


def _touch(inode: Inode) -> None:
    """file_update_time: mtime and ctime become now, to be sent later."""
    now = time.time_ns()
    seconds, nanoseconds = divmod(now, 1_000_000_000)
    attr = inode.attr
    if (attr.mtime, attr.mtimensec, attr.ctime, attr.ctimensec) != (
        seconds, nanoseconds, seconds, nanoseconds
    ):
        inode.attr = attr._replace(mtime=seconds, mtimensec=nanoseconds, ctime=seconds,
                                   ctimensec=nanoseconds)  # fmt: skip
        inode.times_dirty = True


async def write(file: FuseFile, offset: int, data: bytes, caller: Caller | None) -> int:
    """Copy ``data`` into the page cache at ``offset``; bytes written (all of them)."""
    inode, sb = file.inode, file.sb
    end = offset + len(data)
    index = offset // PAGE_SIZE
    while index * PAGE_SIZE < end:
        page_start = index * PAGE_SIZE
        lo, hi = max(offset, page_start), min(end, page_start + PAGE_SIZE)
        page = inode.pages.get(index)
        if page is None:
            whole = hi - lo == PAGE_SIZE or (lo == page_start and hi >= inode.size)
            if whole or page_start >= inode.size:
                page = bytes(PAGE_SIZE)  # nothing to read: all new, or beyond EOF
            else:
                page = await _read_page(file, index, caller)
        buffer = bytearray(page)
        buffer[lo - page_start : hi - page_start] = data[lo - offset : hi - offset]
        inode.pages[index] = bytes(buffer)
        if not inode.dirty:
            inode.dirtied_at = trio.current_time()
        inode.dirty.add(index)
        index += 1
    if end > inode.size:
        inode.attr = inode.attr._replace(size=end)
    _touch(inode)
    sb.inodes.changed()
    if len(inode.dirty) > DIRTY_LIMIT:
        await write_pages(sb, inode)
    return len(data)


async def _read_page(file: FuseFile, index: int, caller: Caller | None) -> bytes:
    """fuse_write_begin's read of one page through the writing file (O_WRONLY too)."""
    inode = file.inode
    arg = p.ReadIn(fh=file.fh, offset=index * PAGE_SIZE, size=PAGE_SIZE,
                   flags=file.flags & 0xFFFFFFFF)  # fmt: skip
    try:
        body = await file.sb.connection.call(
            p.ReadRequest(file.sb.header(inode.nodeid, caller), arg)
        )
    finally:
        file.sb.inodes.invalidate_atime(inode)
    data: bytes = body or b""
    page = data[:PAGE_SIZE].ljust(PAGE_SIZE, b"\0")
    if index in inode.pages:  # a racing write got there first: keep its bytes
        return inode.pages[index]
    return page


def _write_file(inode: Inode) -> Any:
    """fuse_write_file_get: the first writable open still live, or None."""
    for file in inode.writers:
        if not file.released:
            return file
    return None


def _lock(inode: Inode) -> trio.Lock:
    """One writeback at a time per inode: an fsync or close that finds nothing dirty still
    waits for the WRITEs another task has in flight (fuse_sync_writes)."""
    if inode.writeback_lock is None:
        inode.writeback_lock = trio.Lock()
    lock: trio.Lock = inode.writeback_lock
    return lock


async def write_pages(sb: Superblock, inode: Inode) -> None:
    """Send every dirty page of ``inode`` (writepages), runs clamped to i_size."""
    async with _lock(inode):
        await _write_pages(sb, inode)


async def _write_pages(sb: Superblock, inode: Inode) -> None:
    if not inode.dirty:
        return
    file = _write_file(inode)
    if file is None:
        # No writable open left (cannot happen through write(2)): nothing to send with.
        inode.dirty.clear()
        return
    negotiated = sb.connection.negotiated
    max_bytes = min(max(PAGE_SIZE, negotiated.max_write), negotiated.max_pages * PAGE_SIZE)
    run_pages = max(1, max_bytes // PAGE_SIZE)
    indices = sorted(inode.dirty)
    error: OSError | None = None
    while indices:
        first = indices[0]
        count = 1
        while count < len(indices) and indices[count] == first + count and count < run_pages:
            count += 1
        run, indices = indices[:count], indices[count:]
        start = first * PAGE_SIZE
        size = min(count * PAGE_SIZE, inode.size - start)
        inode.dirty.difference_update(run)
        if size <= 0:
            continue
        data = b"".join(inode.pages.get(index, bytes(PAGE_SIZE)) for index in run)[:size]
        arg = p.WriteIn(fh=file.fh, offset=start, size=size,
                        write_flags=int(p.WriteFlag.CACHE),
                        flags=file.flags & 0xFFFFFFFF)  # fmt: skip
        request = p.WriteRequest(p.InHeader(nodeid=inode.nodeid), arg, data)
        try:
            await sb.connection.call(request, interruptible=False)
        except OSError as exc:
            error = error or exc  # mapping_set_error: reported by fsync/close
    if error is not None:
        raise error


async def flush_times(sb: Superblock, inode: Inode) -> None:
    """fuse_flush_times: SETATTR with the local mtime (and ctime from 7.23), through a
    writable open's handle when there is one."""
    if not inode.times_dirty:
        return
    inode.times_dirty = False
    attr = inode.attr
    valid = FATTR.MTIME
    fields = {"mtime": attr.mtime, "mtimensec": attr.mtimensec}
    if sb.connection.negotiated.minor >= 23:
        valid |= FATTR.CTIME
        fields.update(ctime=attr.ctime, ctimensec=attr.ctimensec)
    file = _write_file(inode)
    if file is not None:
        valid |= FATTR.FH
        fields["fh"] = file.fh
    request = p.SetattrRequest(p.InHeader(nodeid=inode.nodeid), p.SetattrIn(valid=int(valid),
                                                                              **fields))
    out: p.AttrOut = await sb.connection.call(request, interruptible=False)
    sb.inodes.change_attributes(inode, out.attr, out.attr_valid, out.attr_valid_nsec)


async def update_ctime(sb: Superblock, inode: Inode) -> None:
    """fuse_update_ctime after LINK, UNLINK and RENAME: a regular file's ctime is ours, so it
    becomes now and goes to the daemon at once (fuse_flush_time_update); a failure is only
    remembered by the kernel (mapping_set_error), so it is not the caller's."""
    if not enabled(sb) or inode.file_type != stat.S_IFREG or inode.bad:
        return
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    inode.attr = inode.attr._replace(ctime=seconds, ctimensec=nanoseconds)
    inode.times_dirty = True
    sb.inodes.changed()
    try:
        await flush_times(sb, inode)
    except OSError:
        pass


async def sync(sb: Superblock, inode: Inode) -> None:
    """write_inode_now: dirty pages, then the times."""
    if not enabled(sb):
        return
    async with _lock(inode):
        try:
            await _write_pages(sb, inode)
        finally:
            await flush_times(sb, inode)


async def periodic(sb: Superblock) -> None:
    """The flusher thread: every WAKE_INTERVAL, write back inodes dirty for DIRTY_EXPIRE.
    Runs until cancelled (start_fuse cancels it when the connection ends); a failed
    writeback is only remembered by the kernel, so it is dropped here."""
    while sb.connection.connected:
        await trio.sleep(WAKE_INTERVAL)
        now = trio.current_time()
        for inode in sb.inodes.values():
            if inode.dirty and now - inode.dirtied_at >= DIRTY_EXPIRE:
                try:
                    await sync(sb, inode)
                except OSError:
                    pass
