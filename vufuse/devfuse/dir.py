"""Name and attribute operations (Linux fs/fuse/dir.c): LOOKUP with dentry revalidation,
GETATTR with attribute timeouts, READLINK, ACCESS.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module

from hypervisor.provider import Caller
from vufuse import protocol as p

from .inode import STATX_BASIC_STATS, Inode, deadline, invalid_attr
from .superblock import Superblock


async def lookup(sb: Superblock, parent: Inode, name: bytes, caller: Caller | None) -> Inode:
    """The child ``name`` of ``parent``: from a fresh dentry, else a LOOKUP.

    A cached negative entry answers ENOENT; an expired entry is revalidated by the LOOKUP
    itself (a second reference to the same nodeid is counted, as fuse_dentry_revalidate
    does); a reply naming another nodeid replaces the dentry, which may evict the old inode.
    """
    parent.check()
    if parent.file_type != stat_module.S_IFDIR:
        raise OSError(errno.ENOTDIR, "not a directory")
    if len(name) > p.NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, "name too long for FUSE")
    dentry = sb.dentries.get(parent.nodeid, name)
    # A dentry of a bad inode is invalid: look the name up afresh (fuse_dentry_revalidate).
    if dentry is not None and sb.dentries.fresh(dentry) and not _bad(dentry.inode):
        child = dentry.inode
        if child is None:
            raise OSError(errno.ENOENT, "cached negative entry")
        if child.init_readdirplus:
            # First use of an entry READDIRPLUS brought in: ls -l is likely, so the next
            # readdir of the parent uses READDIRPLUS again.
            child.init_readdirplus = False
            parent.advise_readdirplus = True
        return child
    request = p.LookupRequest(sb.header(parent.nodeid, caller), name)
    attr_version = sb.inodes.attr_version
    try:
        body = await sb.connection.call(request)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            # An ENOENT error is a negative dentry that is never trusted again.
            sb.dentries.invalidate(parent.nodeid, name)
            sb.note_lookup(caller, parent.nodeid, name, missing=True)
            await sb.flush_forgets()
        else:
            sb.note_lookup(caller, parent.nodeid, name, missing=False)
        raise
    sb.note_lookup(caller, parent.nodeid, name, missing=False)
    entry: p.EntryOut = body
    entry_deadline = deadline(sb.clock(), entry.entry_valid, entry.entry_valid_nsec)
    if entry.nodeid == 0:
        sb.dentries.add(parent, name, None, entry_deadline)
        await sb.flush_forgets()
        raise OSError(errno.ENOENT, "negative entry")
    if invalid_attr(entry.attr):
        sb.inodes.owe_forget(entry.nodeid, 1)
        await sb.flush_forgets()
        raise OSError(errno.EIO, "FUSE lookup returned invalid attributes")
    if entry.nodeid == p.ROOT_ID:
        # fuse_lookup refuses the root as a child (EIO); its count stays on the root.
        sb.inodes.root.nlookup += 1
        raise OSError(errno.EIO, "FUSE lookup returned the root")
    inode = sb.inodes.iget(entry, attr_version)
    sb.dentries.add(parent, name, inode, entry_deadline)
    parent.advise_readdirplus = True  # fuse_lookup: fuse_advise_use_readdirplus(dir)
    await sb.flush_forgets()
    inode.check()
    return inode


def _bad(inode: Inode | None) -> bool:
    return inode is not None and inode.bad


async def getattr(
    sb: Superblock,
    inode: Inode,
    caller: Caller | None,
    *,
    fh: int | None = None,
    force: bool = False,
    mask: int = STATX_BASIC_STATS,
) -> p.Attr:
    """Attributes of ``inode``: cached until the attribute timeout, else GETATTR.

    The cache also goes stale for the statx fields in ``mask`` (stat asks for
    STATX_BASIC_STATS) when one of them was invalidated on its own: st_atime after a READ
    (fuse_update_get_attr).  ``fh`` is the open file's handle for fstat of a regular file
    (FUSE_GETATTR_FH).  A reply with another file type marks the inode bad: EIO now and for
    all later I/O on it.
    """
    inode.check()
    fresh = inode.attr_deadline > sb.clock() and not inode.inval_mask & mask
    if not force and fresh:
        return inode.attr
    arg = p.GetattrIn()
    if fh is not None and inode.file_type == stat_module.S_IFREG:
        arg = p.GetattrIn(getattr_flags=p.GetattrFlag.FH, fh=fh)
    attr_version = sb.inodes.attr_version
    body = await sb.connection.call(p.GetattrRequest(sb.header(inode.nodeid, caller), arg))
    out: p.AttrOut = body
    if invalid_attr(out.attr) or stat_module.S_IFMT(out.attr.mode) != inode.file_type:
        inode.bad = True
        sb.inodes.changed()
        raise OSError(errno.EIO, "FUSE inode changed type")
    # The caller gets the reply even when it is too old to be cached (fuse_do_getattr).
    sb.inodes.change_attributes(inode, out.attr, out.attr_valid, out.attr_valid_nsec, attr_version)
    if sb.inodes.writeback_cache and inode.file_type == stat_module.S_IFREG:
        # fuse_fillattr: size, mtime and ctime are the writeback cache's own
        local = inode.attr
        return out.attr._replace(size=local.size, mtime=local.mtime, mtimensec=local.mtimensec,
                                 ctime=local.ctime, ctimensec=local.ctimensec)  # fmt: skip
    return out.attr


async def readlink(sb: Superblock, inode: Inode, caller: Caller | None) -> bytes:
    """READLINK of a symlink (not cached: CACHE_SYMLINKS is not offered)."""
    inode.check()
    if inode.file_type != stat_module.S_IFLNK:
        raise OSError(errno.EINVAL, "not a symlink")
    try:
        body = await sb.connection.call(p.ReadlinkRequest(sb.header(inode.nodeid, caller)))
    finally:
        sb.inodes.invalidate_atime(inode)
    target: bytes = body or b""
    if b"\0" in target:
        target = target[: target.index(b"\0")]
    return target


async def access(sb: Superblock, inode: Inode, mask: int, caller: Caller | None) -> None:
    """ACCESS (fuse_access); a daemon answering ENOSYS is never asked again and allows all."""
    inode.check()
    if sb.connection.no_access:
        return
    arg = p.AccessIn(mask=mask & (os.R_OK | os.W_OK | os.X_OK))  # MAY_READ|MAY_WRITE|MAY_EXEC
    request = p.AccessRequest(sb.header(inode.nodeid, caller), arg)
    try:
        await sb.connection.call(request)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        sb.connection.no_access = True
