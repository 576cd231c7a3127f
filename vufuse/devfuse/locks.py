"""Record locks and flock (Linux fs/fuse/file.c fuse_file_lock, fuse_file_flock,
fuse_setlk, fuse_getlk).

With POSIX_LOCKS agreed, fcntl locks (POSIX and OFD) go to the daemon as GETLK, SETLK and
SETLKW; with FLOCK_LOCKS, flock(2) goes as SETLK/SETLKW of the whole file with FUSE_LK_FLOCK
and the open file as owner, and RELEASE then carries FUSE_RELEASE_FLOCK_UNLOCK.  Without them
the kernel keeps the locks itself (posix_lock_file, locks_lock_file_wait): we raise
:class:`LocalLocks` so that the hypervisor's own lock table serves them.  Lock owners go to
the daemon scrambled, as fuse_lock_owner_id does with a per-connection key.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import weakref

from hypervisor.provider import Caller, LocalLocks
from vufuse import protocol as p

from .connection import Connection
from .file import FuseFile

F = p.InitFlag
OFFSET_MAX = (1 << 63) - 1
F_RDLCK, F_WRLCK, F_UNLCK = fcntl.F_RDLCK, fcntl.F_WRLCK, fcntl.F_UNLCK
_KEYS: weakref.WeakKeyDictionary[Connection, bytes] = weakref.WeakKeyDictionary()


def lock_owner_id(connection: Connection, owner: int) -> int:
    """fuse_lock_owner_id: a stable 64-bit id for ``owner`` that reveals nothing of it."""
    key = _KEYS.get(connection)
    if key is None:
        key = _KEYS[connection] = os.urandom(16)
    digest = hashlib.blake2b(owner.to_bytes(8, "little", signed=False), key=key, digest_size=8)
    return int.from_bytes(digest.digest(), "little")


def lock_range(start: int, length: int) -> tuple[int, int]:
    """flock_to_posix_lock: (start, end inclusive) for l_start/l_len after l_whence."""
    if length > 0:
        end = start + length - 1
    elif length < 0:
        start, end = start + length, start - 1
    else:
        end = OFFSET_MAX
    if start < 0 or end < start - 1 and length:
        raise OSError(errno.EINVAL, "bad lock range")
    if end > OFFSET_MAX:
        raise OSError(errno.EOVERFLOW, "lock range overflows")
    return start, end


def _lk_in(file: FuseFile, owner: int, lock: p.FileLock, flock: bool) -> p.LkIn:
    return p.LkIn(
        fh=file.fh, owner=lock_owner_id(file.sb.connection, owner), lk=lock,
        lk_flags=int(p.LockFlag.FLOCK) if flock else 0,
    )  # fmt: skip


async def getlk(
    file: FuseFile, lock_type: int, start: int, length: int, owner: int, pid: int,
    caller: Caller | None,
) -> p.FileLock:  # fmt: skip
    """F_GETLK / F_OFD_GETLK: the conflicting lock, or one of type F_UNLCK."""
    if not file.sb.connection.negotiated.has(F.POSIX_LOCKS):
        raise LocalLocks()
    file.inode.check()
    first, last = lock_range(start, length)
    arg = _lk_in(file, owner, p.FileLock(start=first, end=last, type=lock_type, pid=pid), False)
    out: p.LkOut = await file.sb.connection.call(
        p.GetlkRequest(file.sb.header(file.inode.nodeid, caller), arg)
    )
    found = out.lk
    if found.start > OFFSET_MAX or found.end > OFFSET_MAX or found.end < found.start:
        raise OSError(errno.EIO, "FUSE daemon sent a bad lock")
    return found


async def setlk(
    file: FuseFile, lock_type: int, start: int, length: int, owner: int, pid: int, wait: bool,
    caller: Caller | None, *, flock: bool = False,
) -> None:  # fmt: skip
    """F_SETLK/F_SETLKW (and the OFD variants: ``owner`` is then the open file)."""
    negotiated = file.sb.connection.negotiated
    if not negotiated.has(F.FLOCK_LOCKS if flock else F.POSIX_LOCKS):
        raise LocalLocks()
    file.inode.check()
    first, last = lock_range(start, length)
    lock = p.FileLock(start=first, end=last, type=lock_type,
                      pid=pid if lock_type != F_UNLCK else 0)  # fmt: skip
    arg = _lk_in(file, owner, lock, flock)
    header = file.sb.header(file.inode.nodeid, caller)
    request = p.SetlkwRequest(header, arg) if wait else p.SetlkRequest(header, arg)
    await file.sb.connection.call(request)


async def flock(file: FuseFile, operation: int, pid: int, caller: Caller | None) -> None:
    """flock(2): LOCK_SH/LOCK_EX/LOCK_UN, LOCK_NB for no waiting (fuse_file_flock)."""
    kinds = {fcntl.LOCK_SH: F_RDLCK, fcntl.LOCK_EX: F_WRLCK, fcntl.LOCK_UN: F_UNLCK}
    kind = kinds.get(operation & ~fcntl.LOCK_NB)
    if kind is None:
        raise OSError(errno.EINVAL, "bad flock operation")
    if not file.sb.connection.negotiated.has(F.FLOCK_LOCKS):
        raise LocalLocks()
    file.flock_owner = lock_owner_id(file.sb.connection, id(file))
    await setlk(file, kind, 0, 0, id(file), pid, not operation & fcntl.LOCK_NB, caller,
                flock=True)  # fmt: skip
