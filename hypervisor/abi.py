"""The kernel's x86_64 user ABI that handlers write into tracee memory.

Layouts of `struct stat`, `struct statx`, `struct statfs`, `struct linux_dirent(64)` and the
flag values of the syscalls we answer.  Pure functions, no I/O: the unit tests pin the layouts
against what the host kernel itself writes.
"""

from __future__ import annotations

import os
import stat as stat_module
import struct

from .provider import Attributes, DirEntry, StatFs

# --- flags -------------------------------------------------------------------------------
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000
AT_RECURSIVE = 0x8000

O_ACCMODE = 0o3
O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
O_ASYNC = 0o20000
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_PATH = 0o10000000
O_TMPFILE = 0o20000000 | O_DIRECTORY

SETFL_MASK = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME
"""The status flags F_SETFL may change (fs/fcntl.c)."""

F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_DUPFD_CLOEXEC = 1030

SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4

STATX_BASIC_STATS = 0x7FF
STATX_BTIME = 0x800
STATX_MNT_ID = 0x1000
STATX_ATTR_MOUNT_ROOT = 0x2000
STATX_ATTR_AUTOMOUNT = 0x1000
STATX_ATTR_DAX = 0x200000

ST_NOSUID = 0x2
ST_NODEV = 0x4
ST_VALID = 0x20
ST_RELATIME = 0x1000

IOV_MAX = 1024
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536
MAX_RW_COUNT = 0x7FFFF000
"""read(2) and friends never transfer more than this at once (INT_MAX & PAGE_MASK)."""


def signed32(value: int) -> int:
    """The C `int` in the low 32 bits of a syscall argument (fds, flags, dirfds)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def signed64(value: int) -> int:
    """The C `long` of a syscall argument (offsets, counts that may be negative)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


# --- struct stat (arch/x86/include/uapi/asm/stat.h) --------------------------------------
_STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")
STAT_SIZE = _STAT.size  # 144


def pack_stat(attrs: Attributes, dev: int) -> bytes:
    """`struct stat` for a provider object on the mount with st_dev `dev`."""
    return _STAT.pack(
        dev, attrs.ino, attrs.nlink, attrs.mode, attrs.uid, attrs.gid, 0, attrs.rdev,
        attrs.size, attrs.blksize, attrs.blocks,
        *divmod(attrs.atime_ns, 10**9), *divmod(attrs.mtime_ns, 10**9),
        *divmod(attrs.ctime_ns, 10**9),
    )


def unpack_stat(data: bytes) -> dict[str, int]:
    """Decode a `struct stat` (for tests and --debug output)."""
    fields = _STAT.unpack(data[:STAT_SIZE])
    names = ("dev ino nlink mode uid gid pad rdev size blksize blocks atime atime_nsec"
             " mtime mtime_nsec ctime ctime_nsec").split()
    return dict(zip(names, fields, strict=True))


# --- struct statx (include/uapi/linux/stat.h) --------------------------------------------
_STATX_HEAD = struct.Struct("<IIQIIIHxxQQQQ")  # mask .. attributes_mask: 64 bytes
_STATX_TIME = struct.Struct("<qI4x")
_STATX_TAIL = struct.Struct("<IIIIQ")  # rdev_major, rdev_minor, dev_major, dev_minor, mnt_id
STATX_SIZE = 256


def pack_statx(attrs: Attributes, dev: int, mount_id: int, mount_root: bool) -> bytes:
    """`struct statx` as FUSE fills it: basic stats (+ btime when known) and the mount id."""
    mask = STATX_BASIC_STATS | STATX_MNT_ID | (STATX_BTIME if attrs.btime_ns is not None else 0)
    head = _STATX_HEAD.pack(
        mask, attrs.blksize, STATX_ATTR_MOUNT_ROOT if mount_root else 0, attrs.nlink,
        attrs.uid, attrs.gid, attrs.mode & 0xFFFF, attrs.ino, attrs.size, attrs.blocks,
        STATX_ATTR_MOUNT_ROOT | STATX_ATTR_AUTOMOUNT | STATX_ATTR_DAX,
    )
    times = b"".join(
        _STATX_TIME.pack(*divmod(ns, 10**9))
        for ns in (attrs.atime_ns, attrs.btime_ns or 0, attrs.ctime_ns, attrs.mtime_ns)
    )
    tail = _STATX_TAIL.pack(
        os.major(attrs.rdev), os.minor(attrs.rdev), os.major(dev), os.minor(dev), mount_id
    )
    data = head + times + tail
    return data + bytes(STATX_SIZE - len(data))


def unpack_statx(data: bytes) -> dict[str, int]:
    """Decode the fields of a `struct statx` that pack_statx writes."""
    names = "mask blksize attributes nlink uid gid mode ino size blocks attributes_mask".split()
    result = dict(zip(names, _STATX_HEAD.unpack_from(data), strict=True))
    for index, name in enumerate(("atime", "btime", "ctime", "mtime")):
        sec, nsec = _STATX_TIME.unpack_from(data, 64 + 16 * index)
        result[name], result[name + "_nsec"] = sec, nsec
    tail = _STATX_TAIL.unpack_from(data, 128)
    names = "rdev_major rdev_minor dev_major dev_minor mnt_id".split()
    result.update(zip(names, tail, strict=True))
    return result


# --- struct statfs (asm-generic/statfs.h, 64-bit) ----------------------------------------
_STATFS = struct.Struct("<qqQQQQQiiqqq32x")
STATFS_SIZE = _STATFS.size  # 120


def pack_statfs(info: StatFs, mount_flags: int = ST_NOSUID | ST_NODEV | ST_RELATIME) -> bytes:
    """`struct statfs`; fuse_statfs leaves f_fsid zero, the mount adds its flags (ST_*)."""
    return _STATFS.pack(
        info.type, info.bsize, info.blocks, info.bfree, info.bavail, info.files, info.ffree,
        0, 0, info.namelen, info.frsize or info.bsize,
        info.flags | ST_VALID | mount_flags,
    )


# --- directory entries -------------------------------------------------------------------
_DIRENT64 = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type; then d_name


def dirent64_size(name: bytes) -> int:
    """d_reclen of a `struct linux_dirent64` for `name` (NUL included, 8-aligned)."""
    return (_DIRENT64.size + len(name) + 1 + 7) & ~7


def pack_dirent64(entry: DirEntry) -> bytes:
    """One `struct linux_dirent64`."""
    size = dirent64_size(entry.name)
    head = _DIRENT64.pack(entry.ino, entry.next_offset, size, entry.type)
    return (head + entry.name).ljust(size, b"\0")


def dirent_size(name: bytes) -> int:
    """d_reclen of an old `struct linux_dirent` (getdents): d_type is its last byte."""
    return (8 + 8 + 2 + len(name) + 2 + 7) & ~7


def pack_dirent(entry: DirEntry) -> bytes:
    """One old-style `struct linux_dirent`."""
    size = dirent_size(entry.name)
    body = struct.pack("<QqH", entry.ino, entry.next_offset, size) + entry.name
    return body.ljust(size - 1, b"\0") + bytes([entry.type])


def attributes_from_stat(result: os.stat_result) -> Attributes:
    """Provider-style attributes of a host `os.stat_result` (for tests and emulation)."""
    return Attributes(
        ino=result.st_ino, mode=result.st_mode, nlink=result.st_nlink, uid=result.st_uid,
        gid=result.st_gid, rdev=result.st_rdev, size=result.st_size,
        blksize=result.st_blksize, blocks=result.st_blocks, atime_ns=result.st_atime_ns,
        mtime_ns=result.st_mtime_ns, ctime_ns=result.st_ctime_ns,
    )


def dtype_of(mode: int) -> int:
    """DT_* of a st_mode."""
    return stat_module.S_IFMT(mode) >> 12
