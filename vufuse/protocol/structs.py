"""Every FUSE wire struct of protocol 7.45, each declared exactly once.

A class per C struct (``struct fuse_attr`` is :class:`Attr`), fields in wire
order with the C type in the annotation, all defaulting to zero.  Next to each
class its :class:`Layout` (``ATTR``) knows the byte form; sizes equal
``sizeof`` of the C struct (asserted in tests).  Older minors use a prefix of
these structs; which prefix is decided in :mod:`.negotiate`.

Variable parts (names, data, dirent names, arrays) are not here: the message
codecs in :mod:`.requests`, :mod:`.replies` and :mod:`.notify` add them.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from ._layout import S32, S64, U16, U32, U64, Bytes, Layout

__all__ = [
    "Attr", "ATTR", "SxTime", "SX_TIME", "Statx", "STATX", "Kstatfs", "KSTATFS",
    "FileLock", "FILE_LOCK", "EntryOut", "ENTRY_OUT", "ForgetIn", "FORGET_IN",
    "ForgetOne", "FORGET_ONE", "BatchForgetIn", "BATCH_FORGET_IN", "GetattrIn",
    "GETATTR_IN", "AttrOut", "ATTR_OUT", "StatxIn", "STATX_IN", "StatxOut", "STATX_OUT",
    "MknodIn", "MKNOD_IN", "MkdirIn", "MKDIR_IN", "RenameIn", "RENAME_IN", "Rename2In",
    "RENAME2_IN", "LinkIn", "LINK_IN", "SetattrIn", "SETATTR_IN", "OpenIn", "OPEN_IN",
    "CreateIn", "CREATE_IN", "OpenOut", "OPEN_OUT", "ReleaseIn", "RELEASE_IN", "FlushIn",
    "FLUSH_IN", "ReadIn", "READ_IN", "WriteIn", "WRITE_IN", "WriteOut", "WRITE_OUT",
    "StatfsOut", "STATFS_OUT", "FsyncIn", "FSYNC_IN", "SetxattrIn", "SETXATTR_IN",
    "GetxattrIn", "GETXATTR_IN", "GetxattrOut", "GETXATTR_OUT", "LkIn", "LK_IN", "LkOut",
    "LK_OUT", "AccessIn", "ACCESS_IN", "InitIn", "INIT_IN", "InitOut", "INIT_OUT",
    "CuseInitIn", "CUSE_INIT_IN", "CuseInitOut", "CUSE_INIT_OUT", "InterruptIn",
    "INTERRUPT_IN", "BmapIn", "BMAP_IN", "BmapOut", "BMAP_OUT", "IoctlIn", "IOCTL_IN",
    "IoctlIovec", "IOCTL_IOVEC", "IoctlOut", "IOCTL_OUT", "PollIn", "POLL_IN", "PollOut",
    "POLL_OUT", "NotifyPollWakeupOut", "NOTIFY_POLL_WAKEUP_OUT", "FallocateIn",
    "FALLOCATE_IN", "InHeader", "IN_HEADER", "OutHeader", "OUT_HEADER", "DirentHead",
    "DIRENT_HEAD", "NotifyInvalInodeOut", "NOTIFY_INVAL_INODE_OUT", "NotifyInvalEntryOut",
    "NOTIFY_INVAL_ENTRY_OUT", "NotifyDeleteOut", "NOTIFY_DELETE_OUT", "NotifyStoreOut",
    "NOTIFY_STORE_OUT", "NotifyRetrieveOut", "NOTIFY_RETRIEVE_OUT", "NotifyRetrieveIn",
    "NOTIFY_RETRIEVE_IN", "NotifyPruneOut", "NOTIFY_PRUNE_OUT", "BackingMap", "BACKING_MAP",
    "LseekIn", "LSEEK_IN", "LseekOut", "LSEEK_OUT", "CopyFileRangeIn", "COPY_FILE_RANGE_IN",
    "CopyFileRangeOut", "COPY_FILE_RANGE_OUT", "SetupmappingIn", "SETUPMAPPING_IN",
    "RemovemappingIn", "REMOVEMAPPING_IN", "RemovemappingOne", "REMOVEMAPPING_ONE",
    "SyncfsIn", "SYNCFS_IN", "Secctx", "SECCTX", "SecctxHeader", "SECCTX_HEADER",
    "ExtHeader", "EXT_HEADER", "SuppGroupsHead", "SUPP_GROUPS_HEAD", "UringEntInOut",
    "URING_ENT_IN_OUT", "UringCmdReq", "URING_CMD_REQ", "ALL_LAYOUTS",
]  # fmt: skip


class Attr(NamedTuple):
    """fuse_attr: inode attributes in entry/attr replies (``blksize``/``flags`` 7.9+)."""

    ino: U64 = 0
    size: U64 = 0
    blocks: U64 = 0
    atime: U64 = 0
    mtime: U64 = 0
    ctime: U64 = 0
    atimensec: U32 = 0
    mtimensec: U32 = 0
    ctimensec: U32 = 0
    mode: U32 = 0
    nlink: U32 = 0
    uid: U32 = 0
    gid: U32 = 0
    rdev: U32 = 0
    blksize: U32 = 0
    flags: U32 = 0


ATTR = Layout(Attr, "attr")


class SxTime(NamedTuple):
    """fuse_sx_time: a statx timestamp."""

    tv_sec: S64 = 0
    tv_nsec: U32 = 0
    reserved: S32 = 0


SX_TIME = Layout(SxTime, "sx_time")


class Statx(NamedTuple):
    """fuse_statx: bit-for-bit the statx(2) buffer."""

    mask: U32 = 0
    blksize: U32 = 0
    attributes: U64 = 0
    nlink: U32 = 0
    uid: U32 = 0
    gid: U32 = 0
    mode: U16 = 0
    spare0: U16 = 0
    ino: U64 = 0
    size: U64 = 0
    blocks: U64 = 0
    attributes_mask: U64 = 0
    atime: SxTime = SxTime()
    btime: SxTime = SxTime()
    ctime: SxTime = SxTime()
    mtime: SxTime = SxTime()
    rdev_major: U32 = 0
    rdev_minor: U32 = 0
    dev_major: U32 = 0
    dev_minor: U32 = 0
    spare2: Annotated[bytes, Bytes(112)] = bytes(112)


STATX = Layout(Statx, "statx")


class Kstatfs(NamedTuple):
    """fuse_kstatfs: filesystem statistics (``frsize`` 7.4+)."""

    blocks: U64 = 0
    bfree: U64 = 0
    bavail: U64 = 0
    files: U64 = 0
    ffree: U64 = 0
    bsize: U32 = 0
    namelen: U32 = 0
    frsize: U32 = 0
    padding: U32 = 0
    spare: Annotated[bytes, Bytes(24)] = bytes(24)


KSTATFS = Layout(Kstatfs, "kstatfs")


class FileLock(NamedTuple):
    """fuse_file_lock: a POSIX lock range; ``pid`` is the owner's tgid."""

    start: U64 = 0
    end: U64 = 0
    type: U32 = 0
    pid: U32 = 0


FILE_LOCK = Layout(FileLock, "file_lock")


class EntryOut(NamedTuple):
    """fuse_entry_out: reply to LOOKUP and the creating ops; nodeid 0 = negative entry."""

    nodeid: U64 = 0
    generation: U64 = 0
    entry_valid: U64 = 0
    attr_valid: U64 = 0
    entry_valid_nsec: U32 = 0
    attr_valid_nsec: U32 = 0
    attr: Attr = Attr()


ENTRY_OUT = Layout(EntryOut, "entry_out")


class ForgetIn(NamedTuple):
    """fuse_forget_in: drop ``nlookup`` lookups of ``in_header.nodeid``."""

    nlookup: U64 = 0


FORGET_IN = Layout(ForgetIn, "forget_in")


class ForgetOne(NamedTuple):
    """fuse_forget_one: one element of BATCH_FORGET."""

    nodeid: U64 = 0
    nlookup: U64 = 0


FORGET_ONE = Layout(ForgetOne, "forget_one")


class BatchForgetIn(NamedTuple):
    """fuse_batch_forget_in: ``count`` forget_one records follow."""

    count: U32 = 0  # type: ignore[assignment]  # the C name shadows tuple.count
    dummy: U32 = 0


BATCH_FORGET_IN = Layout(BatchForgetIn, "batch_forget_in")


class GetattrIn(NamedTuple):
    """fuse_getattr_in (7.9+): ``fh`` is meant when GETATTR_FH is set."""

    getattr_flags: U32 = 0
    dummy: U32 = 0
    fh: U64 = 0


GETATTR_IN = Layout(GetattrIn, "getattr_in")


class AttrOut(NamedTuple):
    """fuse_attr_out: reply to GETATTR and SETATTR."""

    attr_valid: U64 = 0
    attr_valid_nsec: U32 = 0
    dummy: U32 = 0
    attr: Attr = Attr()


ATTR_OUT = Layout(AttrOut, "attr_out")


class StatxIn(NamedTuple):
    """fuse_statx_in (7.39)."""

    getattr_flags: U32 = 0
    reserved: U32 = 0
    fh: U64 = 0
    sx_flags: U32 = 0
    sx_mask: U32 = 0


STATX_IN = Layout(StatxIn, "statx_in")


class StatxOut(NamedTuple):
    """fuse_statx_out (7.39)."""

    attr_valid: U64 = 0
    attr_valid_nsec: U32 = 0
    flags: U32 = 0
    spare: Annotated[bytes, Bytes(16)] = bytes(16)
    stat: Statx = Statx()


STATX_OUT = Layout(StatxOut, "statx_out")


class MknodIn(NamedTuple):
    """fuse_mknod_in (``umask`` 7.12+; 8 bytes before)."""

    mode: U32 = 0
    rdev: U32 = 0
    umask: U32 = 0
    padding: U32 = 0


MKNOD_IN = Layout(MknodIn, "mknod_in")


class MkdirIn(NamedTuple):
    """fuse_mkdir_in (``umask`` 7.12+, padding before)."""

    mode: U32 = 0
    umask: U32 = 0


MKDIR_IN = Layout(MkdirIn, "mkdir_in")


class RenameIn(NamedTuple):
    """fuse_rename_in."""

    newdir: U64 = 0


RENAME_IN = Layout(RenameIn, "rename_in")


class Rename2In(NamedTuple):
    """fuse_rename2_in (7.23): ``flags`` are renameat2's RENAME_*."""

    newdir: U64 = 0
    flags: U32 = 0
    padding: U32 = 0


RENAME2_IN = Layout(Rename2In, "rename2_in")


class LinkIn(NamedTuple):
    """fuse_link_in."""

    oldnodeid: U64 = 0


LINK_IN = Layout(LinkIn, "link_in")


class SetattrIn(NamedTuple):
    """fuse_setattr_in: ``valid`` (FATTR_*) says which fields are meant."""

    valid: U32 = 0
    padding: U32 = 0
    fh: U64 = 0
    size: U64 = 0
    lock_owner: U64 = 0
    atime: U64 = 0
    mtime: U64 = 0
    ctime: U64 = 0
    atimensec: U32 = 0
    mtimensec: U32 = 0
    ctimensec: U32 = 0
    mode: U32 = 0
    unused4: U32 = 0
    uid: U32 = 0
    gid: U32 = 0
    unused5: U32 = 0


SETATTR_IN = Layout(SetattrIn, "setattr_in")


class OpenIn(NamedTuple):
    """fuse_open_in: ``flags`` are open(2) flags; ``open_flags`` FUSE_OPEN_* (7.33)."""

    flags: U32 = 0
    open_flags: U32 = 0


OPEN_IN = Layout(OpenIn, "open_in")


class CreateIn(NamedTuple):
    """fuse_create_in (7.12+; before, an 8-byte flags+mode)."""

    flags: U32 = 0
    mode: U32 = 0
    umask: U32 = 0
    open_flags: U32 = 0


CREATE_IN = Layout(CreateIn, "create_in")


class OpenOut(NamedTuple):
    """fuse_open_out: file handle and FOPEN_* flags (``backing_id`` 7.40)."""

    fh: U64 = 0
    open_flags: U32 = 0
    backing_id: S32 = 0


OPEN_OUT = Layout(OpenOut, "open_out")


class ReleaseIn(NamedTuple):
    """fuse_release_in."""

    fh: U64 = 0
    flags: U32 = 0
    release_flags: U32 = 0
    lock_owner: U64 = 0


RELEASE_IN = Layout(ReleaseIn, "release_in")


class FlushIn(NamedTuple):
    """fuse_flush_in."""

    fh: U64 = 0
    unused: U32 = 0
    padding: U32 = 0
    lock_owner: U64 = 0


FLUSH_IN = Layout(FlushIn, "flush_in")


class ReadIn(NamedTuple):
    """fuse_read_in: READ and READDIR(PLUS) (``lock_owner``/``flags`` 7.9+)."""

    fh: U64 = 0
    offset: U64 = 0
    size: U32 = 0
    read_flags: U32 = 0
    lock_owner: U64 = 0
    flags: U32 = 0
    padding: U32 = 0


READ_IN = Layout(ReadIn, "read_in")


class WriteIn(NamedTuple):
    """fuse_write_in: ``size`` bytes of data follow (24 bytes before 7.9)."""

    fh: U64 = 0
    offset: U64 = 0
    size: U32 = 0
    write_flags: U32 = 0
    lock_owner: U64 = 0
    flags: U32 = 0
    padding: U32 = 0


WRITE_IN = Layout(WriteIn, "write_in")


class WriteOut(NamedTuple):
    """fuse_write_out: bytes written (also COPY_FILE_RANGE's reply)."""

    size: U32 = 0
    padding: U32 = 0


WRITE_OUT = Layout(WriteOut, "write_out")


class StatfsOut(NamedTuple):
    """fuse_statfs_out."""

    st: Kstatfs = Kstatfs()


STATFS_OUT = Layout(StatfsOut, "statfs_out")


class FsyncIn(NamedTuple):
    """fuse_fsync_in: FSYNC and FSYNCDIR."""

    fh: U64 = 0
    fsync_flags: U32 = 0
    padding: U32 = 0


FSYNC_IN = Layout(FsyncIn, "fsync_in")


class SetxattrIn(NamedTuple):
    """fuse_setxattr_in (last two fields only with FUSE_SETXATTR_EXT)."""

    size: U32 = 0
    flags: U32 = 0
    setxattr_flags: U32 = 0
    padding: U32 = 0


SETXATTR_IN = Layout(SetxattrIn, "setxattr_in")


class GetxattrIn(NamedTuple):
    """fuse_getxattr_in: GETXATTR/LISTXATTR; ``size`` 0 asks for the size only."""

    size: U32 = 0
    padding: U32 = 0


GETXATTR_IN = Layout(GetxattrIn, "getxattr_in")


class GetxattrOut(NamedTuple):
    """fuse_getxattr_out: the size answer to a size-0 GETXATTR/LISTXATTR."""

    size: U32 = 0
    padding: U32 = 0


GETXATTR_OUT = Layout(GetxattrOut, "getxattr_out")


class LkIn(NamedTuple):
    """fuse_lk_in: GETLK/SETLK/SETLKW (``lk_flags`` 7.9+)."""

    fh: U64 = 0
    owner: U64 = 0
    lk: FileLock = FileLock()
    lk_flags: U32 = 0
    padding: U32 = 0


LK_IN = Layout(LkIn, "lk_in")


class LkOut(NamedTuple):
    """fuse_lk_out."""

    lk: FileLock = FileLock()


LK_OUT = Layout(LkOut, "lk_out")


class AccessIn(NamedTuple):
    """fuse_access_in."""

    mask: U32 = 0
    padding: U32 = 0


ACCESS_IN = Layout(AccessIn, "access_in")


class InitIn(NamedTuple):
    """fuse_init_in: 8 bytes before 7.6, 16 before 7.36, 64 since (``flags2``)."""

    major: U32 = 0
    minor: U32 = 0
    max_readahead: U32 = 0
    flags: U32 = 0
    flags2: U32 = 0
    unused: Annotated[bytes, Bytes(44)] = bytes(44)


INIT_IN = Layout(InitIn, "init_in")


class InitOut(NamedTuple):
    """fuse_init_out: 8 bytes before 7.5, 24 before 7.23, 64 since."""

    major: U32 = 0
    minor: U32 = 0
    max_readahead: U32 = 0
    flags: U32 = 0
    max_background: U16 = 0
    congestion_threshold: U16 = 0
    max_write: U32 = 0
    time_gran: U32 = 0
    max_pages: U16 = 0
    map_alignment: U16 = 0
    flags2: U32 = 0
    max_stack_depth: U32 = 0
    request_timeout: U16 = 0
    unused: Annotated[bytes, Bytes(22)] = bytes(22)


INIT_OUT = Layout(InitOut, "init_out")


class CuseInitIn(NamedTuple):
    """cuse_init_in."""

    major: U32 = 0
    minor: U32 = 0
    unused: U32 = 0
    flags: U32 = 0


CUSE_INIT_IN = Layout(CuseInitIn, "cuse_init_in")


class CuseInitOut(NamedTuple):
    """cuse_init_out: device info strings follow."""

    major: U32 = 0
    minor: U32 = 0
    unused: U32 = 0
    flags: U32 = 0
    max_read: U32 = 0
    max_write: U32 = 0
    dev_major: U32 = 0
    dev_minor: U32 = 0
    spare: Annotated[bytes, Bytes(40)] = bytes(40)


CUSE_INIT_OUT = Layout(CuseInitOut, "cuse_init_out")


class InterruptIn(NamedTuple):
    """fuse_interrupt_in: the unique id of the request to interrupt."""

    unique: U64 = 0


INTERRUPT_IN = Layout(InterruptIn, "interrupt_in")


class BmapIn(NamedTuple):
    """fuse_bmap_in."""

    block: U64 = 0
    blocksize: U32 = 0
    padding: U32 = 0


BMAP_IN = Layout(BmapIn, "bmap_in")


class BmapOut(NamedTuple):
    """fuse_bmap_out."""

    block: U64 = 0


BMAP_OUT = Layout(BmapOut, "bmap_out")


class IoctlIn(NamedTuple):
    """fuse_ioctl_in: ``in_size`` bytes of input follow."""

    fh: U64 = 0
    flags: U32 = 0
    cmd: U32 = 0
    arg: U64 = 0
    in_size: U32 = 0
    out_size: U32 = 0


IOCTL_IN = Layout(IoctlIn, "ioctl_in")


class IoctlIovec(NamedTuple):
    """fuse_ioctl_iovec: an iovec in an unrestricted-ioctl retry."""

    base: U64 = 0
    len: U64 = 0


IOCTL_IOVEC = Layout(IoctlIovec, "ioctl_iovec")


class IoctlOut(NamedTuple):
    """fuse_ioctl_out."""

    result: S32 = 0
    flags: U32 = 0
    in_iovs: U32 = 0
    out_iovs: U32 = 0


IOCTL_OUT = Layout(IoctlOut, "ioctl_out")


class PollIn(NamedTuple):
    """fuse_poll_in: ``kh`` names the poll handle for NOTIFY_POLL (``events`` 7.21)."""

    fh: U64 = 0
    kh: U64 = 0
    flags: U32 = 0
    events: U32 = 0


POLL_IN = Layout(PollIn, "poll_in")


class PollOut(NamedTuple):
    """fuse_poll_out."""

    revents: U32 = 0
    padding: U32 = 0


POLL_OUT = Layout(PollOut, "poll_out")


class NotifyPollWakeupOut(NamedTuple):
    """fuse_notify_poll_wakeup_out."""

    kh: U64 = 0


NOTIFY_POLL_WAKEUP_OUT = Layout(NotifyPollWakeupOut, "notify_poll_wakeup_out")


class FallocateIn(NamedTuple):
    """fuse_fallocate_in."""

    fh: U64 = 0
    offset: U64 = 0
    length: U64 = 0
    mode: U32 = 0
    padding: U32 = 0


FALLOCATE_IN = Layout(FallocateIn, "fallocate_in")


class InHeader(NamedTuple):
    """fuse_in_header: starts every request (``total_extlen`` 7.38, in 8-byte units)."""

    len: U32 = 0
    opcode: U32 = 0
    unique: U64 = 0
    nodeid: U64 = 0
    uid: U32 = 0
    gid: U32 = 0
    pid: U32 = 0
    total_extlen: U16 = 0
    padding: U16 = 0


IN_HEADER = Layout(InHeader, "in_header")


class OutHeader(NamedTuple):
    """fuse_out_header: starts every reply (error = -errno) and notification (error = code)."""

    len: U32 = 0
    error: S32 = 0
    unique: U64 = 0


OUT_HEADER = Layout(OutHeader, "out_header")


class DirentHead(NamedTuple):
    """fuse_dirent without its name: ``namelen`` bytes of name follow, then 8-alignment."""

    ino: U64 = 0
    off: U64 = 0
    namelen: U32 = 0
    type: U32 = 0


DIRENT_HEAD = Layout(DirentHead, "dirent")


class NotifyInvalInodeOut(NamedTuple):
    """fuse_notify_inval_inode_out: ``off``/``len`` < 0 mean attributes only / to EOF."""

    ino: U64 = 0
    off: S64 = 0
    len: S64 = 0


NOTIFY_INVAL_INODE_OUT = Layout(NotifyInvalInodeOut, "notify_inval_inode_out")


class NotifyInvalEntryOut(NamedTuple):
    """fuse_notify_inval_entry_out: name + NUL follow."""

    parent: U64 = 0
    namelen: U32 = 0
    flags: U32 = 0


NOTIFY_INVAL_ENTRY_OUT = Layout(NotifyInvalEntryOut, "notify_inval_entry_out")


class NotifyDeleteOut(NamedTuple):
    """fuse_notify_delete_out: name + NUL follow."""

    parent: U64 = 0
    child: U64 = 0
    namelen: U32 = 0
    padding: U32 = 0


NOTIFY_DELETE_OUT = Layout(NotifyDeleteOut, "notify_delete_out")


class NotifyStoreOut(NamedTuple):
    """fuse_notify_store_out: ``size`` bytes of data follow."""

    nodeid: U64 = 0
    offset: U64 = 0
    size: U32 = 0
    padding: U32 = 0


NOTIFY_STORE_OUT = Layout(NotifyStoreOut, "notify_store_out")


class NotifyRetrieveOut(NamedTuple):
    """fuse_notify_retrieve_out: ``notify_unique`` comes back in the NOTIFY_REPLY."""

    notify_unique: U64 = 0
    nodeid: U64 = 0
    offset: U64 = 0
    size: U32 = 0
    padding: U32 = 0


NOTIFY_RETRIEVE_OUT = Layout(NotifyRetrieveOut, "notify_retrieve_out")


class NotifyRetrieveIn(NamedTuple):
    """fuse_notify_retrieve_in: NOTIFY_REPLY's argument; shaped like write_in."""

    dummy1: U64 = 0
    offset: U64 = 0
    size: U32 = 0
    dummy2: U32 = 0
    dummy3: U64 = 0
    dummy4: U64 = 0


NOTIFY_RETRIEVE_IN = Layout(NotifyRetrieveIn, "notify_retrieve_in")


class NotifyPruneOut(NamedTuple):
    """fuse_notify_prune_out (7.45): ``count`` u64 node ids follow."""

    count: U32 = 0  # type: ignore[assignment]  # the C name shadows tuple.count
    padding: U32 = 0
    spare: U64 = 0


NOTIFY_PRUNE_OUT = Layout(NotifyPruneOut, "notify_prune_out")


class BackingMap(NamedTuple):
    """fuse_backing_map: argument of the BACKING_OPEN device ioctl."""

    fd: S32 = 0
    flags: U32 = 0
    padding: U64 = 0


BACKING_MAP = Layout(BackingMap, "backing_map")


class LseekIn(NamedTuple):
    """fuse_lseek_in."""

    fh: U64 = 0
    offset: U64 = 0
    whence: U32 = 0
    padding: U32 = 0


LSEEK_IN = Layout(LseekIn, "lseek_in")


class LseekOut(NamedTuple):
    """fuse_lseek_out."""

    offset: U64 = 0


LSEEK_OUT = Layout(LseekOut, "lseek_out")


class CopyFileRangeIn(NamedTuple):
    """fuse_copy_file_range_in."""

    fh_in: U64 = 0
    off_in: U64 = 0
    nodeid_out: U64 = 0
    fh_out: U64 = 0
    off_out: U64 = 0
    len: U64 = 0
    flags: U64 = 0


COPY_FILE_RANGE_IN = Layout(CopyFileRangeIn, "copy_file_range_in")


class CopyFileRangeOut(NamedTuple):
    """fuse_copy_file_range_out: COPY_FILE_RANGE_64's reply (7.45)."""

    bytes_copied: U64 = 0


COPY_FILE_RANGE_OUT = Layout(CopyFileRangeOut, "copy_file_range_out")


class SetupmappingIn(NamedTuple):
    """fuse_setupmapping_in (DAX)."""

    fh: U64 = 0
    foffset: U64 = 0
    len: U64 = 0
    flags: U64 = 0
    moffset: U64 = 0


SETUPMAPPING_IN = Layout(SetupmappingIn, "setupmapping_in")


class RemovemappingIn(NamedTuple):
    """fuse_removemapping_in (DAX): ``count`` removemapping_one follow."""

    count: U32 = 0  # type: ignore[assignment]  # the C name shadows tuple.count


REMOVEMAPPING_IN = Layout(RemovemappingIn, "removemapping_in")


class RemovemappingOne(NamedTuple):
    """fuse_removemapping_one."""

    moffset: U64 = 0
    len: U64 = 0


REMOVEMAPPING_ONE = Layout(RemovemappingOne, "removemapping_one")


class SyncfsIn(NamedTuple):
    """fuse_syncfs_in."""

    padding: U64 = 0


SYNCFS_IN = Layout(SyncfsIn, "syncfs_in")


class Secctx(NamedTuple):
    """fuse_secctx: one security context; name and label follow."""

    size: U32 = 0
    padding: U32 = 0


SECCTX = Layout(Secctx, "secctx")


class SecctxHeader(NamedTuple):
    """fuse_secctx_header: ``nr_secctx`` contexts, ``size`` bytes in all."""

    size: U32 = 0
    nr_secctx: U32 = 0


SECCTX_HEADER = Layout(SecctxHeader, "secctx_header")


class ExtHeader(NamedTuple):
    """fuse_ext_header: one request extension, ``size`` including this header."""

    size: U32 = 0
    type: U32 = 0


EXT_HEADER = Layout(ExtHeader, "ext_header")


class SuppGroupsHead(NamedTuple):
    """fuse_supp_groups without its array: ``nr_groups`` u32 gids follow."""

    nr_groups: U32 = 0


SUPP_GROUPS_HEAD = Layout(SuppGroupsHead, "supp_groups")


class UringEntInOut(NamedTuple):
    """fuse_uring_ent_in_out (7.42)."""

    flags: U64 = 0
    commit_id: U64 = 0
    payload_sz: U32 = 0
    padding: U32 = 0
    reserved: U64 = 0


URING_ENT_IN_OUT = Layout(UringEntInOut, "uring_ent_in_out")


class UringCmdReq(NamedTuple):
    """fuse_uring_cmd_req (7.42): the 80-byte SQE command area's head."""

    flags: U64 = 0
    commit_id: U64 = 0
    qid: U16 = 0
    padding: Annotated[bytes, Bytes(6)] = bytes(6)


URING_CMD_REQ = Layout(UringCmdReq, "uring_cmd_req")

#: Every layout, for tests and tools.
ALL_LAYOUTS: tuple[Layout[Any], ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Layout)
)
