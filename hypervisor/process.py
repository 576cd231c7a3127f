"""What the hypervisor learns about tracees, lazily, from /proc.

Without ptrace there are no fork or exit events: a thread id is first met in a notification.
Its thread group (tgid), parent and credentials are read from /proc/TID/status when needed.
Credentials and umask are read fresh each time (setuid and umask change them); the tgid of a
thread never changes, so it is cached until the tid disappears.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """The caller's identity as the kernel's permission checks see it."""

    uid: int
    gid: int
    euid: int
    egid: int
    fsuid: int
    fsgid: int
    groups: tuple[int, ...] = ()
    umask: int = 0o022


@dataclass
class ProcessTable:
    """Thread id → thread group id, learned lazily and forgotten when the tid is gone."""

    _tgids: dict[int, int] = field(default_factory=dict)

    def tgid(self, tid: int) -> int:
        """The thread group (process) id of thread `tid`."""
        cached = self._tgids.get(tid)
        if cached is not None and os.path.exists(f"/proc/{cached}/task/{tid}"):
            return cached  # still the same thread: a reused tid would not be in that group
        status = read_status(tid)
        tgid = int(status[b"Tgid"])
        self._tgids[tid] = tgid
        return tgid

    def forget(self, tid: int) -> None:
        """Drop what is known about `tid` (it exited; its number may be reused)."""
        self._tgids.pop(tid, None)

    def prune(self) -> None:
        """Forget every thread that no longer exists."""
        for tid in list(self._tgids):
            try:
                with open(f"/proc/{tid}/stat", "rb"):
                    pass
            except OSError:
                del self._tgids[tid]


def read_status(tid: int) -> dict[bytes, bytes]:
    """The fields of /proc/TID/status (ESRCH when the thread is gone)."""
    fields: dict[bytes, bytes] = {}
    for line in _status_text(tid).splitlines():
        key, _, value = line.partition(b":")
        fields[key] = value.strip()
    return fields


def _status_text(tid: int) -> bytes:
    """/proc/TID/status in one read (it is far below a page): no buffered file object."""
    try:
        fd = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        raise OSError(errno.ESRCH, "no such thread") from None
    try:
        chunks = [os.read(fd, 8192)]
        while len(chunks[-1]) == 8192:  # never seen, but a longer file must not be cut
            chunks.append(os.read(fd, 8192))
    except ProcessLookupError:
        raise OSError(errno.ESRCH, "no such thread") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _field(text: bytes, key: bytes) -> bytes | None:
    """The value of line ``key:`` of a status text (None when absent)."""
    start = text.find(b"\n" + key + b":")
    if start < 0:
        return None
    start += len(key) + 2
    end = text.find(b"\n", start)
    return text[start:] if end < 0 else text[start:end]


def credentials(tid: int) -> Credentials:
    """The current credentials and umask of thread `tid` (the few lines needed, not a dict
    of the whole file: this is read on every call that creates or checks permissions)."""
    text = _status_text(tid)
    uids, gids = _field(text, b"Uid"), _field(text, b"Gid")
    if uids is None or gids is None:
        raise OSError(errno.ESRCH, "no such thread")  # an empty status: it is exiting
    uid, euid, _, fsuid = (int(v) for v in uids.split())
    gid, egid, _, fsgid = (int(v) for v in gids.split())
    groups = tuple(int(g) for g in (_field(text, b"Groups") or b"").split())
    umask = int((_field(text, b"Umask") or b"0022").strip(), 8)
    return Credentials(uid, gid, euid, egid, fsuid, fsgid, groups, umask)
