"""Attributes that are older than the inode's last change are not cached (fc->attr_version).

fuse-overlayfs gives the two names of a hard link in its lower layer one nodeid but reports
each name's own file: after writing through one name, a READDIRPLUS lists the nodeid twice,
new size first, old size second.  The kernel keeps the first (the second was sampled before
the first changed the inode); so must we, or `ls -l` shows the old size.
"""

from __future__ import annotations

import os
import stat as stat_module
from typing import Any

from fusehelp import FakeClock, mounted

from vufuse import protocol as p
from vufuse.devfuse.inode import InodeTable

O = p.Opcode  # noqa: E741


def _aliasing(daemon: Any) -> None:
    """READDIRPLUS names hello.txt's nodeid for "link" too, with attributes of its own."""
    plain = daemon._readdir

    def readdir(node: Any, arg: p.ReadIn, *, plus: bool) -> tuple[Any, ...]:
        chunks = list(plain(node, arg, plus=plus))
        if plus and node.nodeid == p.ROOT_ID:
            first = next(c for c in chunks if c.dirent.name == b"hello.txt")
            entry = first.entry._replace(attr=first.entry.attr._replace(size=99))
            chunks.append(p.DirentPlus(entry, first.dirent._replace(name=b"alias", off=100)))
        return tuple(chunks)

    daemon._readdir = readdir


async def test_readdirplus_naming_a_nodeid_twice_keeps_the_first() -> None:
    async with mounted(clock=FakeClock(), attr_timeout=60, setup=_aliasing) as (fs, daemon):
        ino = (await fs.lookup(1, b"hello.txt")).ino
        handle = await fs.open(1, os.O_RDONLY | os.O_DIRECTORY)
        names = [entry.name for entry in await handle.readdir(0)]
        assert b"alias" in names
        assert fs.sb.inodes.get(ino).size == 14  # hello.txt's entry, not the alias's 99
        assert (await fs.getattr(ino)).size == 14
        assert daemon.count(O.GETATTR) == 0


def test_a_reply_sampled_before_a_change_is_dropped() -> None:
    """A reply to a request sent before the inode last changed is not cached; version 0
    (CREATE, SETATTR) always is; a reply sampled after the change is."""
    table = InodeTable(FakeClock(), stat_module.S_IFDIR | 0o755)
    attr = p.Attr(ino=5, size=14, mode=stat_module.S_IFREG | 0o644, nlink=1)
    inode = table.iget(p.EntryOut(nodeid=5, attr=attr, attr_valid=60))
    before = table.attr_version  # a GETATTR goes out
    assert table.change_attributes(inode, attr._replace(size=21), 60, 0)  # e.g. a LOOKUP
    assert not table.change_attributes(inode, attr, 60, 0, before)  # the GETATTR's reply
    assert inode.size == 21
    after = table.attr_version
    assert table.change_attributes(inode, attr._replace(size=30), 60, 0, after)
    assert inode.size == 30
    table.iget(p.EntryOut(nodeid=5, attr=attr._replace(size=40), attr_valid=60), before)
    assert (inode.size, inode.nlookup) == (30, 2)  # counted, not cached
