"""Unix sockets bound at a path on a mount (docs/decisions.md D12).

On the kernel, bind(2) of an AF_UNIX socket to a path makes the file system create a socket
inode there (for FUSE: MKNOD with S_IFSOCK), and connect(2) to that path finds the bound
socket *by inode*: the inode is only a rendezvous, the file system never carries data.
We do the same with two halves: the provider creates the socket inode, and the tracee's
socket is bound for real to a hidden path in the session's runtime directory; this table
maps the provider's object to that hidden path, so that connect(2) of the mount path can be
made to the hidden one.
"""

from __future__ import annotations

import errno
import os
import socket

SUN_PATH_MAX = 108
"""sizeof(sockaddr_un.sun_path)."""


class UnixBindings:
    """(mount id, provider handle) → the hidden real path its socket is bound to."""

    def __init__(self, directory: bytes) -> None:
        self.directory = directory
        self._paths: dict[tuple[int, int], bytes] = {}
        self._counter = 0

    def new_path(self) -> bytes:
        """A fresh hidden path to bind to (the directory is made on first use, mode 0700)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._counter += 1
        path = self.directory + b"/" + str(self._counter).encode()
        if len(path) >= SUN_PATH_MAX:
            raise OSError(errno.ENAMETOOLONG, "runtime directory too deep for sun_path")
        return path

    def record(self, mount_id: int, handle: int, path: bytes) -> None:
        """The socket at (mount, handle) is bound to `path` (a rebound name replaces it)."""
        old = self._paths.get((mount_id, handle))
        if old is not None and old != path:
            _remove(old)
        self._paths[(mount_id, handle)] = path

    def lookup(self, mount_id: int, handle: int) -> bytes | None:
        """The hidden path of the socket bound at (mount, handle), if any."""
        return self._paths.get((mount_id, handle))

    def forget(self, mount_id: int, handle: int) -> None:
        """The socket bound there is gone (a connect found nobody listening)."""
        path = self._paths.pop((mount_id, handle), None)
        if path is not None:
            _remove(path)

    def __len__(self) -> int:
        return len(self._paths)


def _remove(path: bytes) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def parse_unix_address(raw: bytes) -> bytes | None:
    """The pathname of a sockaddr_un as the kernel reads it (unix_mkname_bsd: up to the first
    NUL or the given length); None for another family, an abstract or unnamed address."""
    if len(raw) <= 2 or int.from_bytes(raw[:2], "little") != socket.AF_UNIX:
        return None
    path = raw[2 : 2 + SUN_PATH_MAX].split(b"\0", 1)[0]
    return path or None
