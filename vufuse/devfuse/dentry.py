"""The dentry cache: (parent nodeid, name) → nodeid with entry timeouts (Linux fs/dcache.c
as fs/fuse/dir.c uses it).

A positive dentry holds its inode (``aliases``) and pins its parent directory (``children``),
so a cached path never loses the inodes above it.  A negative dentry (a LOOKUP reply with
nodeid 0 and an entry timeout) answers ENOENT without asking the daemon until it expires.
An expired dentry stays in the cache and is revalidated by the next lookup, as
fuse_dentry_revalidate does.  Unused dentries beyond ``limit`` are evicted least recently used
first; evicting the last dentry of an unused inode evicts the inode (and owes a FORGET).
"""

from __future__ import annotations

import stat as stat_module
from collections import OrderedDict
from dataclasses import dataclass

from .inode import Inode, InodeTable

NEGATIVE = 0
"""nodeid of a negative dentry."""


@dataclass(eq=False)
class Dentry:
    """One cached name."""

    parent: Inode
    name: bytes
    inode: Inode | None  # None: negative
    deadline: float

    @property
    def nodeid(self) -> int:
        """The child's nodeid, 0 for a negative entry."""
        return self.inode.nodeid if self.inode is not None else NEGATIVE


class DentryCache:
    """All cached names of one mount."""

    def __init__(self, inodes: InodeTable, limit: int = 32768) -> None:
        self.inodes = inodes
        self.limit = limit
        self._entries: OrderedDict[tuple[int, bytes], Dentry] = OrderedDict()
        self.generation = 0
        """Bumped whenever a name is entered, replaced, dropped or expired: a LOOKUP answer
        remembered with the generation it saw is still the cache's view while it is equal."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, parent: int, name: bytes) -> Dentry | None:
        """The cached dentry, fresh or expired (the caller checks the deadline)."""
        dentry = self._entries.get((parent, name))
        if dentry is not None:
            self._entries.move_to_end((parent, name))
        return dentry

    def fresh(self, dentry: Dentry) -> bool:
        """Whether the entry timeout still runs."""
        return dentry.deadline > self.inodes.clock()

    def add(self, parent: Inode, name: bytes, inode: Inode | None, deadline: float) -> Dentry:
        """Cache ``name`` under ``parent`` (replacing any older entry)."""
        key = (parent.nodeid, name)
        old = self._entries.get(key)
        if old is not None and old.inode is inode and old.parent is parent:
            if deadline < old.deadline:
                self.inodes.changed()
            old.deadline = deadline
            self._entries.move_to_end(key)
            return old
        dentry = Dentry(parent, name, inode, deadline)
        self.generation += 1
        if inode is not None:
            inode.aliases += 1
            parent.children += 1
            if inode.file_type == stat_module.S_IFDIR:
                inode.d_parent = parent  # a directory has one name: the latest (d_splice_alias)
        self._entries[key] = dentry
        if old is not None:
            self.inodes.changed()
            self._unlink(old)
        self.shrink()
        return dentry

    def invalidate(self, parent: int, name: bytes) -> None:
        """d_invalidate: forget the name (INVAL_ENTRY, a revalidation that failed)."""
        dentry = self._entries.pop((parent, name), None)
        if dentry is not None:
            self.generation += 1
            self.inodes.changed()
            self._unlink(dentry)

    def expire(self, parent: int, name: bytes) -> None:
        """Keep the entry but make the next lookup revalidate it (INVAL_ENTRY EXPIRE_ONLY)."""
        dentry = self._entries.get((parent, name))
        if dentry is not None:
            dentry.deadline = self.inodes.clock() - 1
            self.generation += 1
            self.inodes.changed()

    def children_of(self, parent: int) -> list[Dentry]:
        """Cached entries of one directory (for invalidation)."""
        return [dentry for (owner, _), dentry in self._entries.items() if owner == parent]

    def _unlink(self, dentry: Dentry) -> None:
        if dentry.inode is None:
            return
        dentry.inode.aliases -= 1
        dentry.parent.children -= 1
        self.inodes.release_if_unused(dentry.inode)
        self.inodes.release_if_unused(dentry.parent)

    def shrink(self, limit: int | None = None) -> int:
        """Evict unused dentries, least recently used first, down to ``limit``; how many.

        A dentry is unused when its inode has no children, open files or holds (the
        dcache's refcount 0); negative dentries are always unused.
        """
        target = self.limit if limit is None else limit
        evicted = 0
        if len(self._entries) <= target:
            return 0
        for key, dentry in list(self._entries.items()):
            if len(self._entries) <= target:
                break
            inode = dentry.inode
            if inode is not None and (inode.children or inode.opens or inode.holds):
                continue
            del self._entries[key]
            self.generation += 1
            self._unlink(dentry)
            evicted += 1
        return evicted

    def drop_all_unused(self) -> int:
        """Shrink until nothing unused is left (like ``echo 2 > drop_caches``)."""
        total = 0
        while True:
            evicted = self.shrink(0)
            total += evicted
            if not evicted:
                return total
