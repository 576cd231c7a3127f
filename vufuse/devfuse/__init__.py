"""vufuse.devfuse: the FUSE kernel emulator, split like Linux fs/fuse.

- :mod:`.connection` (dev.c) requests, replies, interrupts, abort over the /dev/fuse socket
- :mod:`.init` (inode.c) INIT negotiation and the flags we offer
- :mod:`.superblock` (inode.c) one mount: caches, options, STATFS, notifications
- :mod:`.inode` / :mod:`.dentry` the inode and dentry caches, lookup counting and FORGET
- :mod:`.dir` (dir.c) LOOKUP, GETATTR, READLINK, ACCESS
- :mod:`.file` (file.c) OPEN, READ and the page cache, FLUSH, RELEASE
- :mod:`.readdir` (readdir.c) READDIR, READDIRPLUS, the readdir cache
- :mod:`.xattr` (xattr.c) GETXATTR, LISTXATTR
- :mod:`.mountopts` mount(2) data and the mountinfo super options
- :mod:`.provider` :class:`FuseProvider`, the hypervisor's provider interface
- :mod:`.permission` (namei.c) default_permissions, sticky directories
- :mod:`.namei` (dir.c) CREATE, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME(2), TMPFILE
- :mod:`.setattr` (dir.c) SETATTR, O_TRUNC
- :mod:`.write` (file.c) WRITE, FSYNC, FALLOCATE, COPY_FILE_RANGE, LSEEK
- :mod:`.locks` (file.c) GETLK, SETLK, SETLKW, flock
- :mod:`.xattr_write` (xattr.c) SETXATTR, REMOVEXATTR
- :mod:`.store` (dev.c) the STORE and RETRIEVE notifications
- :mod:`.provider_write` the write side of the provider interface

It knows nothing of tracing or seccomp; see docs/devfuse.md.
"""

from __future__ import annotations

from .connection import Connection
from .mountopts import MountOptions, parse_mount_data, show_super_options
from .provider import FuseOpenFile, FuseProvider, start_fuse

__all__ = [
    "Connection",
    "FuseOpenFile",
    "FuseProvider",
    "MountOptions",
    "parse_mount_data",
    "show_super_options",
    "start_fuse",
]
