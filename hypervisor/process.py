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
    try:
        with open(f"/proc/{tid}/status", "rb") as status:
            text = status.read()
    except (FileNotFoundError, ProcessLookupError):
        raise OSError(errno.ESRCH, "no such thread") from None
    fields: dict[bytes, bytes] = {}
    for line in text.splitlines():
        key, _, value = line.partition(b":")
        fields[key] = value.strip()
    return fields


def credentials(tid: int) -> Credentials:
    """The current credentials and umask of thread `tid`."""
    status = read_status(tid)
    uid, euid, _, fsuid = (int(v) for v in status[b"Uid"].split())
    gid, egid, _, fsgid = (int(v) for v in status[b"Gid"].split())
    groups = tuple(int(g) for g in status.get(b"Groups", b"").split())
    umask = int(status.get(b"Umask", b"0022"), 8)
    return Credentials(uid, gid, euid, egid, fsuid, fsgid, groups, umask)
