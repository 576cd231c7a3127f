"""SETATTR (Linux fs/fuse/dir.c fuse_do_setattr, with the VFS's setattr_prepare and
notify_change in front): chmod, chown, truncate, utimensat, and O_TRUNC without
ATOMIC_O_TRUNC.

What goes on the wire follows iattr_to_fattr: a time given explicitly is sent with
FATTR_ATIME/FATTR_MTIME, UTIME_NOW adds FATTR_ATIME_NOW/FATTR_MTIME_NOW; a size change alone
(truncate(2), ftruncate(2), O_TRUNC) sends no time at all -- the daemon updates mtime, as for
a write (measured on Linux 6.18: SIZE|LOCKOWNER, plus FH for ftruncate); ctime is sent only
under a writeback cache (writeback.py: there "now" is a value and a truncate adds times).
ftruncate's FATTR_FH carries its handle; O_TRUNC without ATOMIC_O_TRUNC does not
(fuse_setattr drops the file for ATTR_OPEN).
Clearing set-user/group-ID bits on chown and truncate is FATTR_KILL_SUIDGID under
HANDLE_KILLPRIV_V2, else a FATTR_MODE we add.
Under ``default_permissions`` the checks of setattr_prepare apply (EPERM, EACCES).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time

from hypervisor.provider import UTIME_NOW, UTIME_OMIT, Caller, SetattrChanges, Timestamp
from vufuse import protocol as p

from . import dir as fuse_dir
from . import writeback
from .inode import PAGE_SIZE, Inode, invalid_attr
from .locks import lock_owner_id
from .permission import MAY_WRITE, check_writable_mount, in_group, is_root, owner_or_capable
from .permission import permission as check_permission
from .superblock import Superblock

FATTR = p.SetattrValid
F = p.InitFlag
__all__ = ["UTIME_NOW", "UTIME_OMIT", "SetattrChanges", "Timestamp", "setattr"]


def _suid_bits(mode: int) -> int:
    """The set-ID bits a change of owner or content clears (should_remove_suid)."""
    kill = mode & stat_module.S_ISUID
    if mode & stat_module.S_ISGID and mode & stat_module.S_IXGRP:
        kill |= stat_module.S_ISGID
    return kill


def _prepare(inode: Inode, changes: SetattrChanges, caller: Caller | None) -> None:
    """setattr_prepare under default_permissions: who may change what (EPERM)."""
    attr = inode.attr
    root = is_root(caller)
    uid = caller.uid if caller is not None else 0
    if changes.uid is not None and not root and not (uid == attr.uid == changes.uid):
        raise OSError(errno.EPERM, "chown needs CAP_CHOWN")
    if changes.gid is not None and not root:
        assert caller is not None
        if uid != attr.uid or not (in_group(caller, changes.gid) or changes.gid == attr.gid):
            raise OSError(errno.EPERM, "chgrp needs CAP_CHOWN")
    if changes.mode is not None and not owner_or_capable(caller, attr):
        raise OSError(errno.EPERM, "chmod of another's file")
    for value in (changes.atime, changes.mtime):
        if value is not None and value[1] not in (UTIME_NOW, UTIME_OMIT):
            if not owner_or_capable(caller, attr):
                raise OSError(errno.EPERM, "setting times of another's file")


async def setattr(
    sb: Superblock,
    inode: Inode,
    changes: SetattrChanges,
    caller: Caller | None,
    *,
    fh: int | None = None,
    lock_owner: int = 0,
) -> p.Attr:
    """Apply ``changes`` (fuse_setattr + fuse_do_setattr); the new attributes.

    ``fh`` is the open file's handle for ftruncate and O_TRUNC (the only setattrs the VFS
    makes through a file); ``lock_owner`` identifies the caller's file table (a size change
    sends it, scrambled as fuse_lock_owner_id).
    """
    inode.check()
    check_writable_mount(sb)
    if changes.empty:
        return inode.attr
    attr = inode.attr
    is_reg = inode.file_type == stat_module.S_IFREG
    if changes.size is not None:
        if inode.file_type == stat_module.S_IFDIR:
            raise OSError(errno.EISDIR, "is a directory")
        if not is_reg or changes.size < 0:
            raise OSError(errno.EINVAL, "cannot truncate this")
        if fh is None and not changes.from_open:
            await check_permission(sb, inode, MAY_WRITE, caller)
    touch = any(v is not None and v[1] == UTIME_NOW for v in (changes.atime, changes.mtime))
    if sb.options.default_permissions:
        _prepare(inode, changes, caller)
        if touch and not owner_or_capable(caller, attr):
            await check_permission(sb, inode, MAY_WRITE, caller)
    negotiated = sb.connection.negotiated
    if not negotiated.has(F.HANDLE_KILLPRIV) and not negotiated.has(F.HANDLE_KILLPRIV_V2):
        chown = not stat_module.S_ISDIR(attr.mode) and (
            changes.uid is not None or changes.gid is not None
        )
        truncate = changes.size is not None and not is_root(caller) and _suid_bits(attr.mode)
        if chown or truncate:
            # fuse_setattr: the set-ID bits to clear are computed from fresh attributes.
            await fuse_dir.getattr(sb, inode, caller, fh=fh, force=True)
    wb = is_reg and writeback.enabled(sb)
    if wb and changes.size is None:
        await writeback.sync(sb, inode)  # dirty data and times before a chmod/chown/utimes
    arg = _to_fattr(sb, inode, changes, caller, fh, lock_owner)
    if wb:
        arg = _local_times(arg, changes)
    request = p.SetattrRequest(sb.header(inode.nodeid, caller), arg)
    try:
        body = await sb.connection.call(request)
    except OSError as exc:
        if exc.errno == errno.EINTR:
            sb.inodes.invalidate_attr(inode)
        raise
    out: p.AttrOut = body
    if invalid_attr(out.attr) or stat_module.S_IFMT(out.attr.mode) != inode.file_type:
        inode.bad = True
        sb.inodes.changed()
        raise OSError(errno.EIO, "FUSE inode changed type")
    old_size = inode.attr.size
    sb.inodes.change_attributes(inode, out.attr, out.attr_valid, out.attr_valid_nsec)
    if wb:
        await _after_wb_setattr(sb, inode, out.attr, truncate=changes.size is not None)
        return out.attr
    if is_reg and old_size != out.attr.size:
        # truncate_pagecache + invalidate_inode_pages2, whatever EXPLICIT_INVAL_DATA says.
        inode.invalidate_pages()
    return out.attr


def _local_times(arg: p.SetattrIn, changes: SetattrChanges) -> p.SetattrIn:
    """Under a writeback cache the times are ours (trust_local_cmtime): "now" is sent as a
    value, not MTIME_NOW, a truncate sends MTIME and CTIME, and every change sends CTIME."""
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    valid = arg.valid | FATTR.CTIME
    fields: dict[str, int] = {"ctime": seconds, "ctimensec": nanoseconds}
    if changes.size is not None and not valid & FATTR.MTIME:
        valid |= FATTR.MTIME
        fields.update(mtime=seconds, mtimensec=nanoseconds)
    for name, now_bit in (("atime", FATTR.ATIME_NOW), ("mtime", FATTR.MTIME_NOW)):
        if valid & now_bit:
            valid &= ~now_bit
            fields.update({name: seconds, name + "nsec": nanoseconds})
    return arg._replace(valid=int(valid), **fields)


async def _after_wb_setattr(sb: Superblock, inode: Inode, attr: p.Attr, *, truncate: bool) -> None:
    """The reply's times become the local ones; a truncate sets i_size, writes what stays
    dirty below it (clamped), then drops the page cache (invalidate_inode_pages2)."""
    inode.attr = inode.attr._replace(mtime=attr.mtime, mtimensec=attr.mtimensec,
                                     ctime=attr.ctime, ctimensec=attr.ctimensec)  # fmt: skip
    inode.times_dirty = False
    sb.inodes.changed()
    if not truncate or attr.size == inode.size:
        return
    inode.attr = inode.attr._replace(size=attr.size)
    last = (attr.size + PAGE_SIZE - 1) // PAGE_SIZE
    inode.dirty = {index for index in inode.dirty if index < last}
    tail = attr.size % PAGE_SIZE
    if tail and last - 1 in inode.pages:
        page = inode.pages[last - 1]
        inode.pages[last - 1] = page[:tail] + bytes(PAGE_SIZE - tail)
    try:
        await writeback.write_pages(sb, inode)
    finally:
        inode.invalidate_pages()


def _to_fattr(
    sb: Superblock, inode: Inode, changes: SetattrChanges, caller: Caller | None,
    fh: int | None, lock_owner: int,
) -> p.SetattrIn:  # fmt: skip
    """iattr_to_fattr plus fuse_do_setattr's FH, LOCKOWNER and KILL_SUIDGID."""
    negotiated = sb.connection.negotiated
    killpriv_v2 = negotiated.has(F.HANDLE_KILLPRIV_V2)
    valid = 0
    fields: dict[str, int] = {}
    mode = changes.mode
    is_dir = inode.file_type == stat_module.S_IFDIR
    kill = 0
    if not is_dir and (changes.uid is not None or changes.gid is not None):
        kill = _suid_bits(inode.attr.mode)  # chown_common: ATTR_KILL_SUID|ATTR_KILL_SGID
        if killpriv_v2:
            valid |= FATTR.KILL_SUIDGID
    if changes.size is not None and not is_root(caller):
        kill |= _suid_bits(inode.attr.mode)  # do_truncate: dentry_needs_remove_privs
        if killpriv_v2:
            valid |= FATTR.KILL_SUIDGID
    if kill and not killpriv_v2 and not negotiated.has(F.HANDLE_KILLPRIV):
        mode = (inode.attr.mode if mode is None else mode) & ~kill
    if mode is not None:
        valid |= FATTR.MODE
        fields["mode"] = stat_module.S_IFMT(inode.attr.mode) | (mode & 0o7777)
    if changes.uid is not None:
        valid |= FATTR.UID
        fields["uid"] = changes.uid
    if changes.gid is not None:
        valid |= FATTR.GID
        fields["gid"] = changes.gid
    if changes.size is not None:
        valid |= FATTR.SIZE
        fields["size"] = changes.size
    atime, mtime = changes.atime, changes.mtime
    gran = sb.connection.negotiated.time_gran or 1
    for name, value, set_bit, now_bit in (
        ("atime", atime, FATTR.ATIME, FATTR.ATIME_NOW),
        ("mtime", mtime, FATTR.MTIME, FATTR.MTIME_NOW),
    ):
        if value is None or value[1] == UTIME_OMIT:
            continue
        valid |= set_bit
        if value[1] == UTIME_NOW:
            # notify_change fills an unset time with current_time(): the kernel sends now
            # *and* the _NOW bit (a daemon that honours FATTR_ATIME first reads the value)
            valid |= now_bit
            seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        else:
            seconds, nanoseconds = value
        # notify_change's timestamp_truncate to the superblock's s_time_gran, which
        # process_init_reply took from INIT's time_gran
        fields[name], fields[name + "nsec"] = seconds, nanoseconds - nanoseconds % gran
    if fh is not None:
        valid |= FATTR.FH
        fields["fh"] = fh
    if changes.size is not None:
        valid |= FATTR.LOCKOWNER
        fields["lock_owner"] = lock_owner_id(sb.connection, lock_owner)
    return p.SetattrIn(valid=int(valid), **fields)


async def truncate_on_open(
    sb: Superblock, inode: Inode, caller: Caller | None, lock_owner: int = 0
) -> None:
    """O_TRUNC without ATOMIC_O_TRUNC: after OPEN, SETATTR(size 0) -- without the new handle:
    handle_truncate passes the file (ATTR_OPEN|ATTR_FILE), but fuse_setattr drops it, so a
    daemon truncates by inode (and a 0400 file opened O_RDONLY|O_TRUNC is EACCES, not EINVAL
    from ftruncate of a read-only descriptor).  Only for a regular file."""
    if inode.file_type != stat_module.S_IFREG:
        return
    await setattr(sb, inode, SetattrChanges(size=0, from_open=True), caller,
                  lock_owner=lock_owner)  # fmt: skip


async def may_open_truncate(sb: Superblock, inode: Inode, caller: Caller | None) -> None:
    """may_open with O_TRUNC: write permission (also for O_RDONLY|O_TRUNC), EROFS."""
    if inode.file_type != stat_module.S_IFREG:
        return
    check_writable_mount(sb)
    await check_permission(sb, inode, MAY_WRITE, caller)


def open_truncates(sb: Superblock, flags: int) -> bool:
    """Whether an open with ``flags`` must be followed by SETATTR(size 0) (with ATOMIC_O_TRUNC
    the OPEN itself truncates: file.py)."""
    return bool(flags & os.O_TRUNC) and not sb.connection.negotiated.has(F.ATOMIC_O_TRUNC)
