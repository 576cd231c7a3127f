"""Numbers of the FUSE wire protocol, 7.45 (Linux 6.18): opcodes, notify codes, flags.

These are facts of the ABI from ``<linux/fuse.h>``; names drop the ``FUSE_``
prefix because the enum says which family a member belongs to
(``Opcode.LOOKUP``, ``InitFlag.ASYNC_READ``, ``SetattrValid.MODE``).  Decoders
keep plain ``int`` on the hot path; the enums are for building messages,
comparing and printing.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Final

#: Protocol major version; a different major is not this protocol at all.
KERNEL_VERSION: Final = 7
#: The newest minor this package speaks (Linux 6.18 offers 7.45).
KERNEL_MINOR_VERSION: Final = 45
#: Node id of the root directory of every mount.
ROOT_ID: Final = 1
#: The daemon's read buffer must hold at least this many bytes.
MIN_READ_BUFFER: Final = 8192

# Reply and request sizes of older minors (a prefix of today's struct).
COMPAT_ENTRY_OUT_SIZE: Final = 120  #: fuse_entry_out before 7.9
COMPAT_ATTR_OUT_SIZE: Final = 96  #: fuse_attr_out before 7.9
COMPAT_MKNOD_IN_SIZE: Final = 8  #: fuse_mknod_in before 7.12
COMPAT_WRITE_IN_SIZE: Final = 24  #: fuse_write_in before 7.9
COMPAT_STATFS_SIZE: Final = 48  #: fuse_statfs_out before 7.4
COMPAT_INIT_OUT_SIZE: Final = 8  #: fuse_init_out before 7.5
COMPAT_22_INIT_OUT_SIZE: Final = 24  #: fuse_init_out before 7.23
COMPAT_SETXATTR_IN_SIZE: Final = 8  #: fuse_setxattr_in without FUSE_SETXATTR_EXT
CUSE_INIT_INFO_MAX: Final = 4096  #: longest device info string after cuse_init_out
IOCTL_MAX_IOV: Final = 256  #: most in_iovecs + out_iovecs in an ioctl retry

#: Bit 63 of ``in_header.unique`` marks a request the kernel resends (7.40).
UNIQUE_RESEND: Final = 1 << 63
#: uid/gid the kernel puts in a header it cannot map through an idmapping.
INVALID_UIDGID: Final = 0xFFFFFFFF

# Kernel conventions that are not in the uapi header but that every daemon
# sees: request ids step by 2, and an INTERRUPT request carries the id of the
# request it interrupts with bit 0 set.  Longest name in a directory entry.
UNIQUE_STEP: Final = 2
INTERRUPT_UNIQUE_BIT: Final = 1
NAME_MAX: Final = 1024
#: Longest READLINK reply the kernel accepts (PAGE_SIZE - 1 with 4 KiB pages).
READLINK_MAX: Final = 4095


class Opcode(IntEnum):
    """Request opcodes (``in_header.opcode``)."""

    LOOKUP = 1
    FORGET = 2  # no reply
    GETATTR = 3
    SETATTR = 4
    READLINK = 5
    SYMLINK = 6
    MKNOD = 8
    MKDIR = 9
    UNLINK = 10
    RMDIR = 11
    RENAME = 12
    LINK = 13
    OPEN = 14
    READ = 15
    WRITE = 16
    STATFS = 17
    RELEASE = 18
    FSYNC = 20
    SETXATTR = 21
    GETXATTR = 22
    LISTXATTR = 23
    REMOVEXATTR = 24
    FLUSH = 25
    INIT = 26
    OPENDIR = 27
    READDIR = 28
    RELEASEDIR = 29
    FSYNCDIR = 30
    GETLK = 31
    SETLK = 32
    SETLKW = 33
    ACCESS = 34
    CREATE = 35
    INTERRUPT = 36
    BMAP = 37
    DESTROY = 38
    IOCTL = 39
    POLL = 40
    NOTIFY_REPLY = 41  # no reply
    BATCH_FORGET = 42  # no reply
    FALLOCATE = 43
    READDIRPLUS = 44
    RENAME2 = 45
    LSEEK = 46
    COPY_FILE_RANGE = 47
    SETUPMAPPING = 48
    REMOVEMAPPING = 49
    SYNCFS = 50
    TMPFILE = 51
    STATX = 52
    COPY_FILE_RANGE_64 = 53
    CUSE_INIT = 4096
    # Never sent: they let a daemon detect a peer of the other byte order.
    CUSE_INIT_BSWAP_RESERVED = 1048576
    FUSE_INIT_BSWAP_RESERVED = 436207616


#: Opcodes the daemon never answers.
NO_REPLY_OPCODES: Final = frozenset({Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.NOTIFY_REPLY})

#: First minor in which each opcode exists; a kernel never sends an opcode the
#: agreed minor does not know (opcodes not listed exist since 7.0/7.1).
OPCODE_SINCE_MINOR: Final[dict[int, int]] = {
    Opcode.FSYNCDIR: 2,
    Opcode.ACCESS: 3,
    Opcode.CREATE: 3,
    Opcode.INTERRUPT: 7,
    Opcode.GETLK: 7,
    Opcode.SETLK: 7,
    Opcode.SETLKW: 7,
    Opcode.BMAP: 8,
    Opcode.DESTROY: 8,
    Opcode.IOCTL: 11,
    Opcode.POLL: 11,
    Opcode.NOTIFY_REPLY: 15,
    Opcode.BATCH_FORGET: 16,
    Opcode.FALLOCATE: 19,
    Opcode.READDIRPLUS: 21,
    Opcode.RENAME2: 23,
    Opcode.LSEEK: 24,
    Opcode.COPY_FILE_RANGE: 28,
    Opcode.SETUPMAPPING: 31,
    Opcode.REMOVEMAPPING: 31,
    Opcode.SYNCFS: 34,
    Opcode.TMPFILE: 37,
    Opcode.STATX: 39,
    Opcode.COPY_FILE_RANGE_64: 45,
}


class NotifyCode(IntEnum):
    """Notification codes: sent by the daemon with unique 0 and error = code."""

    POLL = 1
    INVAL_INODE = 2
    INVAL_ENTRY = 3
    STORE = 4
    RETRIEVE = 5
    DELETE = 6
    RESEND = 7
    INC_EPOCH = 8
    PRUNE = 9


#: First minor in which each notification exists.
NOTIFY_SINCE_MINOR: Final[dict[int, int]] = {
    NotifyCode.POLL: 11,
    NotifyCode.INVAL_INODE: 12,
    NotifyCode.INVAL_ENTRY: 12,
    NotifyCode.STORE: 15,
    NotifyCode.RETRIEVE: 15,
    NotifyCode.DELETE: 18,
    NotifyCode.RESEND: 40,
    NotifyCode.INC_EPOCH: 44,
    NotifyCode.PRUNE: 45,
}


class InitFlag(IntFlag):
    """INIT capability bits as one 64-bit word.

    On the wire bits 0..31 travel in ``flags`` and bits 32..63 in ``flags2``;
    ``flags2`` is only read when ``INIT_EXT`` is set (7.36+).  Keeping one word
    here means nobody has to remember which half a feature lives in.
    """

    ASYNC_READ = 1 << 0
    POSIX_LOCKS = 1 << 1
    FILE_OPS = 1 << 2
    ATOMIC_O_TRUNC = 1 << 3
    EXPORT_SUPPORT = 1 << 4
    BIG_WRITES = 1 << 5
    DONT_MASK = 1 << 6
    SPLICE_WRITE = 1 << 7
    SPLICE_MOVE = 1 << 8
    SPLICE_READ = 1 << 9
    FLOCK_LOCKS = 1 << 10
    HAS_IOCTL_DIR = 1 << 11
    AUTO_INVAL_DATA = 1 << 12
    DO_READDIRPLUS = 1 << 13
    READDIRPLUS_AUTO = 1 << 14
    ASYNC_DIO = 1 << 15
    WRITEBACK_CACHE = 1 << 16
    NO_OPEN_SUPPORT = 1 << 17
    PARALLEL_DIROPS = 1 << 18
    HANDLE_KILLPRIV = 1 << 19
    POSIX_ACL = 1 << 20
    ABORT_ERROR = 1 << 21
    MAX_PAGES = 1 << 22
    CACHE_SYMLINKS = 1 << 23
    NO_OPENDIR_SUPPORT = 1 << 24
    EXPLICIT_INVAL_DATA = 1 << 25
    MAP_ALIGNMENT = 1 << 26
    SUBMOUNTS = 1 << 27
    HANDLE_KILLPRIV_V2 = 1 << 28
    SETXATTR_EXT = 1 << 29
    INIT_EXT = 1 << 30
    INIT_RESERVED = 1 << 31
    SECURITY_CTX = 1 << 32
    HAS_INODE_DAX = 1 << 33
    CREATE_SUPP_GROUP = 1 << 34
    HAS_EXPIRE_ONLY = 1 << 35
    DIRECT_IO_ALLOW_MMAP = 1 << 36
    DIRECT_IO_RELAX = 1 << 36  # older name of DIRECT_IO_ALLOW_MMAP
    PASSTHROUGH = 1 << 37
    NO_EXPORT_SUPPORT = 1 << 38
    HAS_RESEND = 1 << 39
    ALLOW_IDMAP = 1 << 40
    OVER_IO_URING = 1 << 41
    REQUEST_TIMEOUT = 1 << 42


#: First minor whose INIT knows each flag (from the header's changelog; flags the
#: changelog does not date are counted from 7.6, when INIT got its flags word).
INIT_FLAG_SINCE_MINOR: Final[dict[InitFlag, int]] = {
    InitFlag.DONT_MASK: 12,
    InitFlag.SPLICE_WRITE: 14,
    InitFlag.SPLICE_MOVE: 14,
    InitFlag.SPLICE_READ: 14,
    InitFlag.FLOCK_LOCKS: 17,
    InitFlag.HAS_IOCTL_DIR: 18,
    InitFlag.AUTO_INVAL_DATA: 20,
    InitFlag.DO_READDIRPLUS: 21,
    InitFlag.READDIRPLUS_AUTO: 21,
    InitFlag.ASYNC_DIO: 22,
    InitFlag.WRITEBACK_CACHE: 23,
    InitFlag.NO_OPEN_SUPPORT: 23,
    InitFlag.PARALLEL_DIROPS: 25,
    InitFlag.HANDLE_KILLPRIV: 26,
    InitFlag.POSIX_ACL: 26,
    InitFlag.ABORT_ERROR: 27,
    InitFlag.MAX_PAGES: 28,
    InitFlag.CACHE_SYMLINKS: 28,
    InitFlag.NO_OPENDIR_SUPPORT: 29,
    InitFlag.EXPLICIT_INVAL_DATA: 30,
    InitFlag.MAP_ALIGNMENT: 31,
    InitFlag.SUBMOUNTS: 32,
    InitFlag.HANDLE_KILLPRIV_V2: 33,
    InitFlag.SETXATTR_EXT: 33,
    InitFlag.INIT_EXT: 36,
    InitFlag.SECURITY_CTX: 36,
    InitFlag.HAS_INODE_DAX: 36,
    InitFlag.CREATE_SUPP_GROUP: 38,
    InitFlag.HAS_EXPIRE_ONLY: 38,
    InitFlag.DIRECT_IO_ALLOW_MMAP: 39,
    InitFlag.PASSTHROUGH: 40,
    InitFlag.NO_EXPORT_SUPPORT: 40,
    InitFlag.HAS_RESEND: 40,
    InitFlag.ALLOW_IDMAP: 41,
    InitFlag.OVER_IO_URING: 42,
    InitFlag.REQUEST_TIMEOUT: 43,
}


def init_flags_known_at(minor: int) -> int:
    """The INIT flags a peer speaking ``minor`` knows (none before 7.6)."""
    if minor < 6:
        return 0
    known = 0
    for flag in InitFlag:
        if INIT_FLAG_SINCE_MINOR.get(flag, 6) <= minor:
            known |= int(flag)
    return known


class CuseInitFlag(IntFlag):
    """CUSE INIT flags."""

    UNRESTRICTED_IOCTL = 1 << 0


class OpenReplyFlag(IntFlag):
    """FOPEN_* bits in ``open_out.open_flags``: how the kernel treats an open file."""

    DIRECT_IO = 1 << 0
    KEEP_CACHE = 1 << 1
    NONSEEKABLE = 1 << 2
    CACHE_DIR = 1 << 3
    STREAM = 1 << 4
    NOFLUSH = 1 << 5
    PARALLEL_DIRECT_WRITES = 1 << 6
    PASSTHROUGH = 1 << 7


class OpenRequestFlag(IntFlag):
    """FUSE_OPEN_* bits in ``open_in.open_flags`` / ``create_in.open_flags``."""

    KILL_SUIDGID = 1 << 0


class SetattrValid(IntFlag):
    """FATTR_* bits in ``setattr_in.valid``: which fields of SETATTR are meant."""

    MODE = 1 << 0
    UID = 1 << 1
    GID = 1 << 2
    SIZE = 1 << 3
    ATIME = 1 << 4
    MTIME = 1 << 5
    FH = 1 << 6
    ATIME_NOW = 1 << 7
    MTIME_NOW = 1 << 8
    LOCKOWNER = 1 << 9
    CTIME = 1 << 10
    KILL_SUIDGID = 1 << 11


class GetattrFlag(IntFlag):
    """``getattr_in.getattr_flags``."""

    FH = 1 << 0


class ReleaseFlag(IntFlag):
    """``release_in.release_flags``."""

    FLUSH = 1 << 0
    FLOCK_UNLOCK = 1 << 1


class LockFlag(IntFlag):
    """``lk_in.lk_flags``."""

    FLOCK = 1 << 0


class WriteFlag(IntFlag):
    """``write_in.write_flags``."""

    CACHE = 1 << 0
    LOCKOWNER = 1 << 1
    KILL_SUIDGID = 1 << 2
    KILL_PRIV = 1 << 2  # older name of KILL_SUIDGID


class ReadFlag(IntFlag):
    """``read_in.read_flags``."""

    LOCKOWNER = 1 << 1


class IoctlFlag(IntFlag):
    """``ioctl_in.flags`` / ``ioctl_out.flags``."""

    COMPAT = 1 << 0
    UNRESTRICTED = 1 << 1
    RETRY = 1 << 2
    BIT32 = 1 << 3
    DIR = 1 << 4
    COMPAT_X32 = 1 << 5


class PollFlag(IntFlag):
    """``poll_in.flags``."""

    SCHEDULE_NOTIFY = 1 << 0


class FsyncFlag(IntFlag):
    """``fsync_in.fsync_flags``."""

    FDATASYNC = 1 << 0


class AttrFlag(IntFlag):
    """``attr.flags`` (7.32+)."""

    SUBMOUNT = 1 << 0
    DAX = 1 << 1


class SetxattrFlag(IntFlag):
    """``setxattr_in.setxattr_flags`` (with FUSE_SETXATTR_EXT)."""

    ACL_KILL_SGID = 1 << 0


class InvalEntryFlag(IntFlag):
    """``notify_inval_entry_out.flags``."""

    EXPIRE_ONLY = 1 << 0


class SetupMappingFlag(IntFlag):
    """``setupmapping_in.flags`` (DAX)."""

    WRITE = 1 << 0
    READ = 1 << 1


class ExtensionType(IntEnum):
    """``ext_header.type`` of request extensions (7.38+).

    Types 0..31 are a security-context block whose header counts contexts.
    """

    MAX_NR_SECCTX = 31
    GROUPS = 32


class UringCommand(IntEnum):
    """Commands of FUSE over io_uring (7.42)."""

    INVALID = 0
    REGISTER = 1
    COMMIT_AND_FETCH = 2


URING_IN_OUT_HEADER_SIZE: Final = 128
URING_OP_IN_OUT_SIZE: Final = 128


def _ioctl_number(direction: int, type_: int, number: int, size: int) -> int:
    # Linux asm-generic _IOC encoding: dir(2) size(14) type(8) nr(8).
    return (direction << 30) | (size << 16) | (type_ << 8) | number


DEV_IOC_MAGIC: Final = 229
#: ioctls on /dev/fuse: clone a device fd, register/unregister a passthrough
#: backing file, ask for a synchronous INIT.
DEV_IOC_CLONE: Final = _ioctl_number(2, DEV_IOC_MAGIC, 0, 4)
DEV_IOC_BACKING_OPEN: Final = _ioctl_number(1, DEV_IOC_MAGIC, 1, 16)
DEV_IOC_BACKING_CLOSE: Final = _ioctl_number(1, DEV_IOC_MAGIC, 2, 4)
DEV_IOC_SYNC_INIT: Final = _ioctl_number(0, DEV_IOC_MAGIC, 3, 0)
