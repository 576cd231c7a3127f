"""Writing to open files (Linux fs/fuse/file.c write side): WRITE through the page cache or
direct, FSYNC/FSYNCDIR, FALLOCATE, COPY_FILE_RANGE, LSEEK.

Under WRITEBACK_CACHE a cached write only dirties pages (writeback.py); otherwise writes are
write-through, as the kernel without it: each write(2) becomes
WRITEs of at most max_write bytes and max_pages pages (one page each without BIG_WRITES) that
carry FUSE_WRITE_CACHE; whole pages written go into the page cache, cached pages partly
written are updated, and i_size grows to the end of what the daemon accepted.  O_APPEND writes
at the cached i_size (generic_write_checks).  A direct write (FOPEN_DIRECT_IO, O_DIRECT) drops
the cached pages it covers.  Every write leaves the attributes stale (fuse_write_update_attr).
ENOSYS answers are remembered: FSYNC/FSYNCDIR then succeed, FALLOCATE fails EOPNOTSUPP,
COPY_FILE_RANGE fails EOPNOTSUPP (the caller copies by hand), LSEEK falls back to i_size.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module

from hypervisor.provider import Caller
from vufuse import protocol as p

from . import dir as fuse_dir
from . import writeback
from .connection import PAGE_SIZE
from .file import FuseFile
from .inode import Inode
from .permission import is_root
from .setattr import SetattrChanges, setattr

F = p.InitFlag
FOPEN = p.OpenReplyFlag
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
_FALLOC_SUPPORTED = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE
SEEK_DATA = 3
SEEK_HOLE = 4
MAX_FILE_SIZE = (1 << 63) - 1


def writable(file: FuseFile) -> bool:
    """Opened O_WRONLY or O_RDWR (FMODE_WRITE)."""
    return file.flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def readable(file: FuseFile) -> bool:
    """Opened O_RDONLY or O_RDWR (FMODE_READ)."""
    return file.flags & os.O_ACCMODE in (os.O_RDONLY, os.O_RDWR)


def write_update_attr(file: FuseFile, end: int, written: int) -> None:
    """fuse_write_update_attr: i_size grows to ``end``; size and mtime are stale."""
    inode = file.inode
    if written > 0 and end > inode.size:
        inode.attr = inode.attr._replace(size=end)
    file.sb.inodes.invalidate_attr(inode)


def drop_pages(inode: Inode, start: int, end: int) -> None:
    """truncate_inode_pages_range: forget cached pages touching [start, end)."""
    if end <= start:
        return
    first, last = start // PAGE_SIZE, (end - 1) // PAGE_SIZE
    for index in [index for index in inode.pages if first <= index <= last]:
        del inode.pages[index]
    inode.cache_epoch += 1


def _cache_written(inode: Inode, offset: int, data: bytes) -> None:
    """Whole pages written become cached; cached pages partly written are updated."""
    end = offset + len(data)
    index = offset // PAGE_SIZE
    while index * PAGE_SIZE < end:
        page_start = index * PAGE_SIZE
        lo, hi = max(offset, page_start), min(end, page_start + PAGE_SIZE)
        piece = data[lo - offset : hi - offset]
        if hi - lo == PAGE_SIZE:
            inode.pages[index] = piece
        elif index in inode.pages:
            page = bytearray(inode.pages[index])
            page[lo - page_start : hi - page_start] = piece
            inode.pages[index] = bytes(page)
        index += 1


async def _remove_privs(file: FuseFile, caller: Caller | None) -> int:
    """file_remove_privs before a write by a caller without CAP_FSETID: the write flag
    KILL_SUIDGID under HANDLE_KILLPRIV_V2, else a SETATTR clearing the bits first."""
    inode = file.inode
    mode = inode.attr.mode
    kill = mode & stat_module.S_ISUID
    if mode & stat_module.S_ISGID and mode & stat_module.S_IXGRP:
        kill |= stat_module.S_ISGID
    if not kill or is_root(caller):
        return 0
    negotiated = file.sb.connection.negotiated
    if negotiated.has(F.HANDLE_KILLPRIV_V2):
        return int(p.WriteFlag.KILL_SUIDGID)
    if not negotiated.has(F.HANDLE_KILLPRIV):
        # fuse_setattr with ATTR_KILL_S*ID: recompute from fresh attributes, then SETATTR.
        await fuse_dir.getattr(file.sb, inode, caller, fh=file.fh, force=True)
        mode = inode.attr.mode
        kill = mode & stat_module.S_ISUID
        if mode & stat_module.S_ISGID and mode & stat_module.S_IXGRP:
            kill |= stat_module.S_ISGID
        if kill:
            await setattr(file.sb, inode, SetattrChanges(mode=mode & ~kill), None)
    return 0


async def write(
    file: FuseFile, offset: int, data: bytes, caller: Caller | None, *, lock_owner: int = 0
) -> int:
    """write(2)/pwrite(2): bytes accepted (fuse_file_write_iter); O_APPEND ignores
    ``offset`` and writes at i_size."""
    inode = file.inode
    inode.check()
    if file.is_dir:
        raise OSError(errno.EISDIR, "is a directory")
    if not writable(file):
        raise OSError(errno.EBADF, "not open for writing")
    file.sb.check_allowed(caller)
    if file.flags & os.O_APPEND:
        offset = inode.size
    if offset < 0:
        raise OSError(errno.EINVAL, "negative offset")
    if not data:
        return 0
    if offset >= MAX_FILE_SIZE:
        raise OSError(errno.EFBIG, "file too large")
    data = data[: MAX_FILE_SIZE - offset]
    write_flags = await _remove_privs(file, caller)
    negotiated = file.sb.connection.negotiated
    max_write = max(PAGE_SIZE, negotiated.max_write)
    direct = file.direct_io
    if writeback.enabled(file.sb):
        if not direct:
            return await writeback.write(file, offset, data, caller)
        await writeback.sync(file.sb, inode)  # a direct write goes after the cached ones
    if not direct:
        write_flags |= p.WriteFlag.CACHE
    written = 0
    try:
        while written < len(data):
            position = offset + written
            if direct:
                chunk = min(max_write, negotiated.max_pages * PAGE_SIZE)
            elif negotiated.has(F.BIG_WRITES):
                chunk = min(max_write, negotiated.max_pages * PAGE_SIZE - position % PAGE_SIZE)
            else:
                chunk = PAGE_SIZE - position % PAGE_SIZE
            piece = data[written : written + chunk]
            arg = p.WriteIn(fh=file.fh, offset=position, size=len(piece),
                            write_flags=int(write_flags),
                            flags=file.flags & 0xFFFFFFFF)  # fmt: skip
            request = p.WriteRequest(file.sb.header(inode.nodeid, caller), arg, piece)
            out: p.WriteOut = await file.sb.connection.call(request)
            if out.size > len(piece):
                raise OSError(errno.EIO, "FUSE daemon wrote more than asked")
            if direct:
                drop_pages(inode, position, position + len(piece))
            else:
                _cache_written(inode, position, piece[: out.size])
                if out.size < len(piece):
                    drop_pages(inode, position + out.size, position + len(piece))
            written += out.size
            if out.size < len(piece):
                break
    except OSError:
        if not written:
            write_update_attr(file, offset, 0)
            raise
    write_update_attr(file, offset + written, written)
    return written


async def fsync(file: FuseFile, datasync: bool, caller: Caller | None) -> None:
    """fsync(2)/fdatasync(2): FSYNC, or FSYNCDIR on a directory; ENOSYS means "nothing to
    do" and is remembered."""
    inode = file.inode
    inode.check()
    connection = file.sb.connection
    is_dir = file.is_dir
    if not is_dir:
        await writeback.sync(file.sb, inode)  # pages, then the times (sync_inode_metadata)
    if connection.no_fsyncdir if is_dir else connection.no_fsync:
        return
    arg = p.FsyncIn(fh=file.fh, fsync_flags=int(p.FsyncFlag.FDATASYNC) if datasync else 0)
    header = file.sb.header(inode.nodeid, caller)
    request = p.FsyncdirRequest(header, arg) if is_dir else p.FsyncRequest(header, arg)
    try:
        await connection.call(request)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        if is_dir:
            connection.no_fsyncdir = True
        else:
            connection.no_fsync = True


async def fallocate(
    file: FuseFile, mode: int, offset: int, length: int, caller: Caller | None
) -> None:
    """fallocate(2) (vfs_fallocate's checks, then fuse_file_fallocate)."""
    inode = file.inode
    inode.check()
    if offset < 0 or length <= 0:
        raise OSError(errno.EINVAL, "bad range")
    if mode & ~_FALLOC_SUPPORTED:
        raise OSError(errno.EOPNOTSUPP, "fallocate mode not supported by FUSE")
    if mode & FALLOC_FL_PUNCH_HOLE and (
        not mode & FALLOC_FL_KEEP_SIZE or mode & FALLOC_FL_ZERO_RANGE
    ):
        raise OSError(errno.EOPNOTSUPP, "PUNCH_HOLE needs KEEP_SIZE alone")
    if not writable(file):
        raise OSError(errno.EBADF, "not open for writing")
    if file.flags & os.O_APPEND and mode & ~FALLOC_FL_KEEP_SIZE:
        raise OSError(errno.EPERM, "append-only")
    if file.is_dir:
        raise OSError(errno.EISDIR, "is a directory")
    if inode.file_type != stat_module.S_IFREG:
        raise OSError(errno.ENODEV, "not a regular file")
    if offset + length > MAX_FILE_SIZE:
        raise OSError(errno.EFBIG, "file too large")
    connection = file.sb.connection
    await writeback.sync(file.sb, inode)
    if connection.no_fallocate:
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no FALLOCATE")
    arg = p.FallocateIn(fh=file.fh, offset=offset, length=length, mode=mode)
    try:
        await connection.call(p.FallocateRequest(file.sb.header(inode.nodeid, caller), arg))
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        connection.no_fallocate = True
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no FALLOCATE") from None
    if not mode & FALLOC_FL_KEEP_SIZE:
        write_update_attr(file, offset + length, length)
    if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
        drop_pages(inode, offset, offset + length)
    file.sb.inodes.invalidate_attr(inode)


async def copy_file_range(
    source: FuseFile, offset_in: int, target: FuseFile, offset_out: int, length: int,
    flags: int, caller: Caller | None,
) -> int:  # fmt: skip
    """copy_file_range(2) between two files of this mount: bytes copied.

    EXDEV between mounts, EOPNOTSUPP once the daemon answered ENOSYS (remembered): the
    caller then copies with read and write, as the VFS's splice fallback does.
    """
    if flags:
        raise OSError(errno.EINVAL, "copy_file_range flags")
    if target.sb is not source.sb:
        raise OSError(errno.EXDEV, "different FUSE mounts")
    if not readable(source) or not writable(target) or target.flags & os.O_APPEND:
        raise OSError(errno.EBADF, "bad file modes for copy_file_range")
    if source.is_dir or target.is_dir:
        raise OSError(errno.EISDIR, "is a directory")
    if offset_in < 0 or offset_out < 0:
        raise OSError(errno.EINVAL, "negative offset")
    source.inode.check()
    target.inode.check()
    # generic_copy_file_checks: the copy stops at the cached i_size of the source, and a copy
    # at or past it is 0 without a request (cp's last call, at EOF).
    length = max(0, min(length, source.inode.size - offset_in))
    if length == 0:
        return 0
    if source.inode is target.inode and (
        offset_in < offset_out + length and offset_out < offset_in + length
    ):
        raise OSError(errno.EINVAL, "overlapping copy within one file")
    connection = source.sb.connection
    await writeback.sync(source.sb, source.inode)
    await writeback.sync(target.sb, target.inode)
    if connection.no_copy_file_range:
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no COPY_FILE_RANGE")
    length = min(length, 0xFFFFFFFF & ~(PAGE_SIZE - 1))  # the reply's size is 32 bits
    arg = p.CopyFileRangeIn(fh_in=source.fh, off_in=offset_in, nodeid_out=target.inode.nodeid,
                            fh_out=target.fh, off_out=offset_out, len=length)  # fmt: skip
    request = p.CopyFileRangeRequest(source.sb.header(source.inode.nodeid, caller), arg)
    try:
        out: p.WriteOut = await connection.call(request)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        connection.no_copy_file_range = True
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no COPY_FILE_RANGE") from None
    if out.size > length:
        raise OSError(errno.EIO, "FUSE daemon copied more than asked")
    drop_pages(target.inode, offset_out, offset_out + out.size)
    write_update_attr(target, offset_out + out.size, out.size)
    return int(out.size)


async def lseek(
    file: FuseFile, offset: int, whence: int, position: int, caller: Caller | None
) -> int:
    """lseek(2) (fuse_file_llseek): the new position.  ``position`` is the current one.

    SEEK_END looks at fresh attributes; SEEK_DATA/SEEK_HOLE ask the daemon (LSEEK) and fall
    back, after ENOSYS (remembered), to "all data, one hole at i_size".
    """
    inode = file.inode
    inode.check()
    if not file.seekable:
        raise OSError(errno.ESPIPE, "not seekable")
    sb = file.sb
    if whence == os.SEEK_SET:
        result = offset
    elif whence == os.SEEK_CUR:
        result = position + offset
    elif whence == os.SEEK_END:
        await fuse_dir.getattr(sb, inode, caller, fh=file.fh)
        result = inode.size + offset
    elif whence in (SEEK_DATA, SEEK_HOLE):
        return await _seek_data_hole(file, offset, whence, caller)
    else:
        raise OSError(errno.EINVAL, "bad whence")
    if result < 0 or result > MAX_FILE_SIZE:
        raise OSError(errno.EINVAL, "bad offset")
    return result


async def _seek_data_hole(file: FuseFile, offset: int, whence: int, caller: Caller | None) -> int:
    sb, inode = file.sb, file.inode
    connection = sb.connection
    await writeback.write_pages(sb, inode)  # the daemon can only find data it has
    if not connection.no_lseek:
        arg = p.LseekIn(fh=file.fh, offset=offset, whence=whence)
        try:
            out: p.LseekOut = await connection.call(
                p.LseekRequest(sb.header(inode.nodeid, caller), arg)
            )
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            connection.no_lseek = True
        else:
            if out.offset > MAX_FILE_SIZE:
                raise OSError(errno.EINVAL, "bad offset")
            return int(out.offset)
    await fuse_dir.getattr(sb, inode, caller, fh=file.fh)
    if offset < 0 or offset >= inode.size:
        raise OSError(errno.ENXIO, "past the end")
    return offset if whence == SEEK_DATA else inode.size
