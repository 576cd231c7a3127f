"""Directory reading (Linux fs/fuse/readdir.c): READDIR, READDIRPLUS and the readdir cache.

READDIRPLUS is used when agreed -- with READDIRPLUS_AUTO only at offset 0 or after a lookup in
the directory (fuse_use_readdirplus).  Its entries fill the dentry and inode caches: each one
but ".", ".." and nodeid 0 is a lookup the daemon counted (fuse_direntplus_link), and one we
cannot use (invalid nodeid or attributes) is forgotten at once.  With FOPEN_CACHE_DIR a
complete listing read from offset 0 is kept and served from memory until the directory's
mtime changes or it is opened without FOPEN_KEEP_CACHE.
"""

from __future__ import annotations

from hypervisor.provider import Caller
from vufuse import protocol as p

from . import dir as fuse_dir
from .connection import PAGE_SIZE
from .file import FuseFile
from .inode import Inode, deadline, invalid_attr
from .superblock import Superblock

F = p.InitFlag


def use_readdirplus(sb: Superblock, inode: Inode, offset: int) -> bool:
    """fuse_use_readdirplus, including its test-and-clear of the lookup advice."""
    negotiated = sb.connection.negotiated
    if not negotiated.has(F.DO_READDIRPLUS):
        return False
    if not negotiated.has(F.READDIRPLUS_AUTO):
        return True
    advised, inode.advise_readdirplus = inode.advise_readdirplus, False
    return advised or offset == 0


def request_size(sb: Superblock, size: int) -> int:
    """fuse_readdir_uncached (Linux 6.15+): the caller's buffer, at least a page, at most
    max_pages pages (0, an unknown size: a page)."""
    return min(max(size, PAGE_SIZE), sb.connection.negotiated.max_pages * PAGE_SIZE)


async def readdir(
    file: FuseFile, offset: int, caller: Caller | None, size: int = 0
) -> list[p.Dirent]:
    """Entries after cookie ``offset``, one daemon request's worth; [] at the end.
    ``size`` is the caller's buffer (getdents' count): the request asks for as much."""
    sb, inode = file.sb, file.inode
    inode.check()
    cache_dir = bool(file.open_flags & p.OpenReplyFlag.CACHE_DIR)
    if cache_dir:
        cached = await _from_cache(file, offset, caller)
        if cached is not None:
            return cached
    plus = use_readdirplus(sb, inode, offset)
    arg = p.ReadIn(
        fh=file.fh, offset=offset, size=request_size(sb, size), flags=file.flags & 0xFFFFFFFF
    )
    header = sb.header(inode.nodeid, caller)
    attr_version = sb.inodes.attr_version
    try:
        request = p.ReaddirplusRequest(header, arg) if plus else p.ReaddirRequest(header, arg)
        body = await sb.connection.call(request)
    finally:
        sb.inodes.invalidate_atime(inode)  # fuse_readdir_uncached, whatever the answer
    if plus:
        plus_entries: tuple[p.DirentPlus, ...] = body or ()
        for item in plus_entries:
            _link(sb, inode, item, attr_version)
        await sb.flush_forgets()
        entries = [item.dirent for item in plus_entries]
    else:
        entries = list(body or ())
    if cache_dir:
        _add_to_cache(inode, offset, entries)
    return entries


def _link(sb: Superblock, directory: Inode, item: p.DirentPlus, attr_version: int) -> None:
    """fuse_direntplus_link: count the lookup and cache the entry and its attributes (unless
    they changed since the request went out: ``attr_version``)."""
    entry, name = item.entry, item.dirent.name
    if entry.nodeid == 0 or name in (b".", b".."):
        return
    if entry.nodeid == p.ROOT_ID or invalid_attr(entry.attr):
        sb.inodes.owe_forget(entry.nodeid, 1)  # fuse_force_forget
        return
    child = sb.inodes.iget(entry, attr_version)
    if sb.connection.negotiated.has(F.READDIRPLUS_AUTO):
        child.init_readdirplus = True
    entry_deadline = deadline(sb.clock(), entry.entry_valid, entry.entry_valid_nsec)
    sb.dentries.add(directory, name, child, entry_deadline)


# ---------------------------------------------------------------------- readdir cache


async def _from_cache(file: FuseFile, offset: int, caller: Caller | None) -> list[p.Dirent] | None:
    inode = file.inode
    if offset == 0 and inode.dir_cache is not None and file.sb.inodes.auto_inval_data:
        await fuse_dir.getattr(file.sb, inode, caller)  # may drop the cache on an mtime change
    cache = inode.dir_cache
    if cache is None or not _complete(inode):
        return None
    if (inode.attr.mtime, inode.attr.mtimensec) != inode.dir_cache_mtime:
        inode.dir_cache = None
        return None
    entries = cache[:-1]  # the sentinel marks completeness
    if offset == 0:
        start = 0
    else:
        positions = [index for index, entry in enumerate(entries) if entry.off == offset]
        if not positions:
            return None
        start = positions[0] + 1
    return entries[start : start + _entries_per_page(entries[start:])]


_COMPLETE = p.Dirent(ino=0, off=-1, type=0, name=b"")


def _complete(inode: Inode) -> bool:
    return bool(inode.dir_cache) and inode.dir_cache[-1] is _COMPLETE  # type: ignore[index]


def _entries_per_page(entries: list[p.Dirent]) -> int:
    used = count = 0
    for entry in entries:
        used += p.dirent_size(len(entry.name))
        if used > PAGE_SIZE:
            break
        count += 1
    return count


def _add_to_cache(inode: Inode, offset: int, entries: list[p.Dirent]) -> None:
    """Append a listing read in order from offset 0; an empty reply completes it."""
    if offset == 0:
        inode.dir_cache = []
        inode.dir_cache_mtime = (inode.attr.mtime, inode.attr.mtimensec)
    cache = inode.dir_cache
    if cache is None or _complete(inode):
        return
    if offset != (cache[-1].off if cache else 0):
        inode.dir_cache = None  # a seek: the listing would have holes
        return
    if entries:
        cache.extend(entries)
    else:
        cache.append(_COMPLETE)
