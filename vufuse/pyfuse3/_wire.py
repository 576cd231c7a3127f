"""The bridge between pyfuse3's value classes and `vufuse.protocol`'s wire structs.

Everything about bytes on the device goes through here: decoding a request, turning
`EntryAttributes`/`FileInfo`/`StatvfsData` into entry_out/attr_out/open_out/statfs_out,
building READDIRPLUS entries and notifications, and writing a message in one write(2) (the
kernel takes a reply only whole). The struct layouts themselves are vufuse.protocol's.
"""

from __future__ import annotations

import os
import select
import stat
from typing import Any

from vufuse.protocol import notify, replies, requests
from vufuse.protocol.constants import OpenReplyFlag
from vufuse.protocol.negotiate import Negotiated
from vufuse.protocol.structs import (
    IN_HEADER,
    OUT_HEADER,
    Attr,
    AttrOut,
    EntryOut,
    InHeader,
    Kstatfs,
    NotifyDeleteOut,
    NotifyInvalEntryOut,
    NotifyInvalInodeOut,
    NotifyPollWakeupOut,
    NotifyStoreOut,
    OpenOut,
    StatfsOut,
)

from ._data import _NANOS_PER_SEC, EntryAttributes, FileInfo, StatvfsData

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1

decode_request = requests.decode_request
encode_error = replies.encode_error


def peek_header(message: bytes) -> InHeader | None:
    """The header of a message that failed to decode, if at least that much is there."""
    if len(message) < IN_HEADER.size:
        return None
    return IN_HEADER.unpack(message)


def encode_reply(unique: int, opcode: int, body: Any, negotiated: Negotiated) -> tuple[bytes, ...]:
    """A success reply as (header, payload) for one writev."""
    if isinstance(body, bytes | bytearray | memoryview) and opcode in _RAW_DATA_OPCODES:
        return replies.encode_data_reply(unique, body)  # type: ignore[return-value]
    return replies.encode_reply_parts(unique, opcode, body, negotiated)


_RAW_DATA_OPCODES = frozenset(
    {requests.Opcode.READ, requests.Opcode.READLINK, requests.Opcode.GETXATTR,
     requests.Opcode.LISTXATTR}
)  # fmt: skip


def write_message(fd: int, *parts: bytes) -> None:
    """Write one whole message; wait for room if the fd is non-blocking and full."""
    while True:
        try:
            os.writev(fd, parts)
            return
        except BlockingIOError:
            select.select([], [fd], [])


def describe_reply(header: bytes) -> str:
    """A one-line summary of a reply or notification header, for --debug logs."""
    out = OUT_HEADER.unpack(header)
    return f"unique: {out.unique}, error: {out.error}, outsize: {out.len}"


def _split_ns(nanoseconds: int) -> tuple[int, int]:
    seconds, rest = divmod(int(nanoseconds), _NANOS_PER_SEC)
    return seconds & _U64, rest


def _split_timeout(timeout: float) -> tuple[int, int]:
    if timeout <= 0:
        return 0, 0
    seconds = int(timeout)
    return seconds, min(int((timeout - seconds) * _NANOS_PER_SEC), _NANOS_PER_SEC - 1)


def _attr(entry: EntryAttributes) -> Attr:
    atime, atimensec = _split_ns(entry.st_atime_ns)
    mtime, mtimensec = _split_ns(entry.st_mtime_ns)
    ctime, ctimensec = _split_ns(entry.st_ctime_ns)
    return Attr(
        ino=entry.st_ino, size=entry.st_size, blocks=entry.st_blocks,
        atime=atime, mtime=mtime, ctime=ctime,
        atimensec=atimensec, mtimensec=mtimensec, ctimensec=ctimensec,
        mode=entry.st_mode, nlink=entry.st_nlink, uid=entry.st_uid, gid=entry.st_gid,
        rdev=entry.st_rdev & _U32, blksize=entry.st_blksize,
    )  # fmt: skip


def entry_out(entry: EntryAttributes) -> EntryOut:
    """entry_out for LOOKUP and the creating ops (st_ino 0: a cacheable negative entry)."""
    entry_valid, entry_valid_nsec = _split_timeout(entry.entry_timeout)
    attr_valid, attr_valid_nsec = _split_timeout(entry.attr_timeout)
    return EntryOut(
        nodeid=entry.st_ino, generation=entry.generation,
        entry_valid=entry_valid, attr_valid=attr_valid,
        entry_valid_nsec=entry_valid_nsec, attr_valid_nsec=attr_valid_nsec,
        attr=_attr(entry),
    )  # fmt: skip


def attr_out(entry: EntryAttributes) -> AttrOut:
    """attr_out for GETATTR and SETATTR."""
    attr_valid, attr_valid_nsec = _split_timeout(entry.attr_timeout)
    return AttrOut(attr_valid=attr_valid, attr_valid_nsec=attr_valid_nsec, attr=_attr(entry))


def open_out(info: FileInfo) -> OpenOut:
    """open_out: the handle plus how the kernel may cache this open file."""
    flags = 0
    if info.direct_io:
        flags |= OpenReplyFlag.DIRECT_IO
    if info.keep_cache:
        flags |= OpenReplyFlag.KEEP_CACHE
    if info.nonseekable:
        flags |= OpenReplyFlag.NONSEEKABLE
    return OpenOut(fh=int(info.fh), open_flags=int(flags))


def statfs_out(stats: StatvfsData) -> StatfsOut:
    """statfs_out (f_favail has no place on the wire: the kernel reports f_ffree)."""
    return StatfsOut(
        Kstatfs(
            blocks=stats.f_blocks, bfree=stats.f_bfree, bavail=stats.f_bavail,
            files=stats.f_files, ffree=stats.f_ffree, bsize=stats.f_bsize,
            namelen=stats.f_namemax, frsize=stats.f_frsize,
        )
    )  # fmt: skip


def encode_direntplus(name: bytes, entry: EntryAttributes, next_id: int) -> bytes:
    """One READDIRPLUS record for *name*; *next_id* is where a later listing resumes."""
    dirent = replies.Dirent(
        ino=entry.st_ino, off=next_id & _U64, type=stat.S_IFMT(entry.st_mode) >> 12, name=name
    )
    return replies.encode_direntplus(replies.DirentPlus(entry_out(entry), dirent))


def encode_inval_inode(inode: int, attr_only: bool) -> bytes:
    """INVAL_INODE: attributes only (offset -1), or attributes and all cached data."""
    arg = NotifyInvalInodeOut(ino=inode, off=-1 if attr_only else 0, len=0)
    return notify.encode_notification(notify.InvalInodeNotification(arg))


def encode_inval_entry(parent: int, name: bytes) -> bytes:
    """INVAL_ENTRY: forget the cached dentry *name* in *parent*."""
    arg = NotifyInvalEntryOut(parent=parent, namelen=len(name))
    return notify.encode_notification(notify.InvalEntryNotification(arg, name))


def encode_delete(parent: int, child: int, name: bytes) -> bytes:
    """DELETE: *name* (inode *child*) is gone from *parent*; tells inotify too."""
    arg = NotifyDeleteOut(parent=parent, child=child, namelen=len(name))
    return notify.encode_notification(notify.DeleteNotification(arg, name))


def encode_store(inode: int, offset: int, data: bytes) -> bytes:
    """STORE: put *data* into the page cache of *inode*."""
    arg = NotifyStoreOut(nodeid=inode, offset=offset, size=len(data))
    return notify.encode_notification(notify.StoreNotification(arg, data))


def encode_poll_wakeup(kernel_handle: int) -> bytes:
    """POLL: wake the waiters registered under *kernel_handle*."""
    wakeup = NotifyPollWakeupOut(kh=kernel_handle)
    return notify.encode_notification(notify.PollNotification(wakeup))
