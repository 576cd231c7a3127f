"""FIFOs on a mount: a real named pipe per FIFO inode, opened for the caller.

The kernel gives a FIFO that lives on a FUSE mount the local pipe code (init_special_inode):
the daemon only holds the inode, opening never reaches it, and readers and writers of that
inode meet in one kernel pipe.  Here each virtual FIFO (mount, node) gets a real FIFO in the
session's runtime directory; an open of the virtual one opens the real one with the caller's
flags in a worker thread (a blocking open waits there for the other end, as the kernel's
fifo_open does) and installs the fd at the caller's lowest free number, where reads and
writes run natively.
"""

from __future__ import annotations

import os

import trio

from .paths import VirtualLocation

O_CLOEXEC = os.O_CLOEXEC


class FifoDirectory:
    """Real FIFOs standing for virtual ones, under ``root`` (made on first use)."""

    def __init__(self, root: bytes) -> None:
        self.root = root
        self._paths: dict[tuple[int, int], bytes] = {}

    def path_for(self, location: VirtualLocation) -> bytes:
        """The real FIFO of virtual FIFO `location`."""
        key = (location.mount.mount_id, location.ino)
        path = self._paths.get(key)
        if path is None:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            path = b"%s/%d" % (self.root, len(self._paths))
            os.mkfifo(path, 0o600)
            self._paths[key] = path
        return path

    async def open(self, location: VirtualLocation, flags: int) -> int:
        """Our fd of the real FIFO, opened as the caller asked (blocking as the kernel's)."""
        path = self.path_for(location)
        wanted = flags & (os.O_ACCMODE | os.O_NONBLOCK) | O_CLOEXEC
        return await trio.to_thread.run_sync(os.open, path, wanted, abandon_on_cancel=True)
