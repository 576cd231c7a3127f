"""The inode cache: nodeid → attributes, lookup counts, page cache (Linux fs/fuse/inode.c).

Every positive LOOKUP reply (and every READDIRPLUS entry but "." and "..") makes the daemon
count one more reference to the nodeid; we count the same in :attr:`Inode.nlookup` and hand
the whole count back with FORGET when the inode is evicted.  As in the kernel (fuse's
``drop_inode`` is ``generic_delete_inode``) an inode lives exactly as long as something holds
it: a dentry naming it (:mod:`.dentry`), a child dentry below it (parents stay pinned -- the
kernel never looks up ".."), an open file, or an explicit hold from the hypervisor.
The root is never forgotten, and nothing is forgotten at unmount.
"""

from __future__ import annotations

import errno
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vufuse import protocol as p

PAGE_SIZE = 4096
STATX_ATIME = 0x20
STATX_SIZE = 0x200
STATX_BASIC_STATS = 0x7FF
"""What stat(2), lstat(2) and fstat(2) ask of the filesystem (vfs_getattr's request mask)."""
_MAX_SIZE = (1 << 63) - 1
_VALID_TYPES = frozenset({
    stat_module.S_IFREG, stat_module.S_IFDIR, stat_module.S_IFLNK, stat_module.S_IFCHR,
    stat_module.S_IFBLK, stat_module.S_IFIFO, stat_module.S_IFSOCK,
})  # fmt: skip


def deadline(now: float, seconds: int, nanoseconds: int) -> float:
    """When a timeout of (seconds, nanoseconds) from the daemon runs out (0 = already)."""
    if not seconds and not nanoseconds:
        return now
    return now + min(seconds, 1 << 40) + nanoseconds / 1e9


def invalid_attr(attr: p.Attr) -> bool:
    """fuse_invalid_attr: a file type Linux does not know, or a size beyond LLONG_MAX."""
    return stat_module.S_IFMT(attr.mode) not in _VALID_TYPES or attr.size > _MAX_SIZE


@dataclass(eq=False)
class Inode:
    """One FUSE inode as the kernel keeps it (struct fuse_inode)."""

    nodeid: int
    generation: int
    attr: p.Attr
    attr_deadline: float
    nlookup: int = 0
    aliases: int = 0  # positive dentries naming it
    children: int = 0  # positive dentries below it (d_parent pins)
    opens: int = 0
    holds: int = 0
    bad: bool = False
    pages: dict[int, bytes] = field(default_factory=dict)
    dir_cache: list[p.Dirent] | None = None
    dir_cache_mtime: tuple[int, int] = (0, 0)
    advise_readdirplus: bool = False  # FUSE_I_ADVISE_RDPLUS (on a directory)
    init_readdirplus: bool = False  # FUSE_I_INIT_RDPLUS: brought in by READDIRPLUS, unused
    cache_epoch: int = 0  # bumped by every invalidation: a READ that raced one is not cached
    inval_mask: int = 0  # fuse_inode.inval_mask: statx fields to fetch again despite the timeout
    attr_version: int = 0  # fuse_inode.attr_version: the table's counter at the last change
    #: A directory's parent as its last dentry named it (d_parent: an invalidated dentry keeps
    #: it, as the kernel's unhashed dentry does), for rename's loop checks (namei.py).
    d_parent: Inode | None = field(default=None, repr=False)
    attributes_memo: Any = None  # (attr, valid_until, Attributes): provider.attributes() reuse
    #: Writeback cache (writeback.py): pages written but not yet sent, whether the local
    #: mtime/ctime are still to be sent (I_DIRTY_SYNC), the writable opens (write_files).
    dirty: set[int] = field(default_factory=set)
    times_dirty: bool = False
    writers: list[Any] = field(default_factory=list)
    writeback_lock: Any = None  # a trio.Lock, made by writeback.py when first needed
    dirtied_at: float = 0.0  # trio time when the first of the current dirty pages was written

    @property
    def file_type(self) -> int:
        """S_IFMT of the mode: fixed for the life of the inode."""
        return stat_module.S_IFMT(self.attr.mode)

    @property
    def size(self) -> int:
        """i_size: what cached reads are clamped to."""
        return self.attr.size

    @property
    def in_use(self) -> bool:
        """Held by something other than the dentry cache's unused entries."""
        return (
            bool(self.aliases or self.children or self.opens or self.holds)
            or self.nodeid == p.ROOT_ID
        )

    def check(self) -> None:
        """EIO for an inode the kernel would have marked bad (fuse_is_bad)."""
        if self.bad:
            raise OSError(errno.EIO, "FUSE inode is bad")

    def invalidate_pages(self) -> None:
        """invalidate_inode_pages2: drop the page cache (and the readdir cache).

        Dirty pages of a writeback cache stay: the kernel launders them to the daemon before
        dropping them; callers that can wait write them back first (writeback.py), and one
        that cannot must not lose them."""
        if self.dirty:
            for index in [index for index in self.pages if index not in self.dirty]:
                del self.pages[index]
        else:
            self.pages.clear()
        self.dir_cache = None
        self.cache_epoch += 1


class InodeTable:
    """All inodes of one mount by nodeid, and the FORGETs owed for evicted ones."""

    def __init__(self, clock: Callable[[], float], root_mode: int) -> None:
        self.clock = clock
        self.auto_inval_data = False
        self.explicit_inval_data = False
        #: WRITEBACK_CACHE agreed: a regular file's size, mtime and ctime are owned here
        #: (fuse_get_cache_mask), attribute replies never overwrite them.
        self.writeback_cache = False
        self.readonly = False  # IS_RDONLY: a read-only superblock keeps its atimes
        #: fc->attr_version: sampled before a request whose reply carries attributes, so that
        #: a reply older than the inode's last change is recognised (change_attributes).
        self.attr_version = 0
        root_attr = p.Attr(ino=p.ROOT_ID, mode=root_mode, nlink=1)
        # fuse_get_root_inode: attributes from rootmode only, already stale.
        self.root = Inode(p.ROOT_ID, 0, root_attr, clock() - 1, nlookup=1)
        self._inodes: dict[int, Inode] = {p.ROOT_ID: self.root}
        self.forgets: list[p.ForgetOne] = []
        self.on_change: Callable[[], None] | None = None
        """Called when a cached answer (a name, attributes, their timeouts) changes other than
        by being refreshed to the same values or a later deadline: the hypervisor's answer
        cache must then forget what it copied (FuseProvider.watch_changes)."""

    def changed(self) -> None:
        """Tell the watcher that cached names or attributes were invalidated or changed."""
        if self.on_change is not None:
            self.on_change()

    def __len__(self) -> int:
        return len(self._inodes)

    def get(self, nodeid: int) -> Inode:
        """The live inode ``nodeid``; ESTALE if we have forgotten it (never ask the daemon)."""
        inode = self._inodes.get(nodeid)
        if inode is None:
            raise OSError(errno.ESTALE, f"FUSE nodeid {nodeid} is not cached")
        return inode

    def values(self) -> list[Inode]:
        """Every live inode (a copy: callers may await while walking it)."""
        return list(self._inodes.values())

    def find(self, nodeid: int) -> Inode | None:
        """The live inode ``nodeid`` or None."""
        return self._inodes.get(nodeid)

    def iget(self, entry: p.EntryOut, attr_version: int = 0) -> Inode:
        """Account one lookup of ``entry`` (fuse_iget): a new inode or nlookup + 1.

        A nodeid that comes back with another file type or generation is a new object: the
        old inode is marked bad (its I/O fails EIO) and replaced, keeping the daemon's count.
        ``attr_version`` is :attr:`attr_version` when the request went out (0: always apply).
        """
        now = self.clock()
        attr_deadline = deadline(now, entry.attr_valid, entry.attr_valid_nsec)
        inode = self._inodes.get(entry.nodeid)
        if inode is not None and (
            stat_module.S_IFMT(entry.attr.mode) != inode.file_type
            or (entry.generation != inode.generation and inode.nodeid != p.ROOT_ID)
        ):
            # The daemon's count moves to the new object; whatever still holds the old one
            # (dentries, open files) lets go of it without a FORGET.
            inode.bad = True
            self.changed()
            replacement = Inode(entry.nodeid, entry.generation, entry.attr, attr_deadline)
            replacement.nlookup, inode.nlookup = inode.nlookup, 0
            self._inodes[entry.nodeid] = replacement
            inode = replacement
            inode.attr_version = self._next_version()
        elif inode is not None:
            self.change_attributes(
                inode, entry.attr, entry.attr_valid, entry.attr_valid_nsec, attr_version
            )
        else:
            inode = Inode(entry.nodeid, entry.generation, entry.attr, attr_deadline)
            inode.attr_version = self._next_version()
            self._inodes[entry.nodeid] = inode
        inode.nlookup += 1
        return inode

    def _next_version(self) -> int:
        self.attr_version += 1
        return self.attr_version

    def change_attributes(
        self, inode: Inode, attr: p.Attr, valid: int, valid_nsec: int, attr_version: int = 0
    ) -> bool:
        """fuse_change_attributes: new attributes and timeout; drop stale cached data.

        A reply to a request sent before the inode's attributes last changed (``attr_version``
        older than the inode's; 0 means "always apply") is stale and dropped: False.  So of
        one READDIRPLUS naming a nodeid twice (a daemon with one node for two hard links) the
        first entry's attributes stay, as on the kernel.
        For regular files, a size change truncates the page cache (and invalidates it unless
        the daemon agreed EXPLICIT_INVAL_DATA); an mtime change invalidates it only with
        AUTO_INVAL_DATA.
        """
        if attr_version and inode.attr_version > attr_version:
            return False
        inode.attr_version = self._next_version()
        old, old_deadline = inode.attr, inode.attr_deadline
        if self.writeback_cache and inode.file_type == stat_module.S_IFREG:
            attr = attr._replace(size=old.size, mtime=old.mtime, mtimensec=old.mtimensec,
                                 ctime=old.ctime, ctimensec=old.ctimensec)  # fmt: skip
        inode.attr = attr
        inode.attr_deadline = deadline(self.clock(), valid, valid_nsec)
        inode.inval_mask = 0
        if attr != old or inode.attr_deadline < old_deadline:
            self.changed()
        if inode.file_type != stat_module.S_IFREG:
            return True  # directories: the readdir cache checks mtime itself
        if old.size != attr.size:
            last_page = (attr.size + PAGE_SIZE - 1) // PAGE_SIZE
            for index in [index for index in inode.pages if index >= last_page]:
                del inode.pages[index]
            if not self.explicit_inval_data:
                inode.invalidate_pages()
        elif self.auto_inval_data and (old.mtime, old.mtimensec) != (attr.mtime, attr.mtimensec):
            inode.invalidate_pages()
        return True

    def invalidate_attr(self, inode: Inode) -> None:
        """fuse_invalidate_attr: the next getattr asks the daemon."""
        inode.attr_deadline = self.clock() - 1
        self.changed()

    def invalidate_atime(self, inode: Inode) -> None:
        """fuse_invalidate_atime, after every READ, READDIR(PLUS) and READLINK sent: the
        daemon may have moved st_atime, so the next stat asks again; permission checks,
        which need no atime, keep using the cached attributes."""
        if not self.readonly:
            inode.inval_mask |= STATX_ATIME
            self.changed()

    def release_if_unused(self, inode: Inode) -> None:
        """Evict ``inode`` once nothing holds it, owing the daemon FORGET(nlookup)."""
        if inode.in_use or self._inodes.get(inode.nodeid) is not inode:
            return
        del self._inodes[inode.nodeid]
        if inode.nlookup:
            self.forgets.append(p.ForgetOne(nodeid=inode.nodeid, nlookup=inode.nlookup))
            inode.nlookup = 0

    def owe_forget(self, nodeid: int, nlookup: int = 1) -> None:
        """A lookup reply we refuse (bad attributes): give its reference back at once."""
        self.forgets.append(p.ForgetOne(nodeid=nodeid, nlookup=nlookup))

    def take_forgets(self) -> list[p.ForgetOne]:
        """The FORGETs owed so far, for the caller to send."""
        forgets, self.forgets = self.forgets, []
        return forgets
