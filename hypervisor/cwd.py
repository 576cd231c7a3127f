"""The virtual current directory: stand-in directories and the narrow ptrace road that moves
a tracee's real cwd into one.

A process whose cwd is inside a mount keeps a *real* cwd in a stand-in directory
``RUNTIME/cwd/N`` (one per virtual directory), which is a watched prefix of the C fast path.
So the kernel keeps the cwd per fs_struct: fork, CLONE_FS threads and exec inherit it exactly
as on the kernel, and every relative path from there reaches Python (the fast path queues any
path whose base lies under a watched prefix).  Python maps a stand-in back to its virtual
directory for path walks, getcwd and readlink of /proc/PID/cwd.

Seccomp user notification can't change a syscall's arguments, so chdir("/mnt/x") can't simply
be redirected: the hypervisor answers it and, before the tracee returns to user space, seizes
the thread with ptrace, rewinds it onto its `syscall` instruction to run
chdir(stand-in) (a string written below its stack's red zone), restores its registers with
the result and detaches.  This is the only use of ptrace (docs/decisions.md).
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .paths import VirtualLocation
from .syscalls import nr

PTRACE_SYSCALL = 24
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_O_TRACESYSGOOD = 1
PTRACE_EVENT_STOP = 128
_WALL = 0x40000000
_RED_ZONE = 128
_SYSCALL_INSTRUCTION = b"\x0f\x05"


@dataclass(frozen=True)
class StandIn:
    """A real directory that stands for a virtual one."""

    path: bytes
    location: VirtualLocation


class StandInDirectories:
    """Virtual directory ↔ stand-in directory under ``root``."""

    def __init__(self, root: bytes) -> None:
        self.root = root.rstrip(b"/")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        # Never empty: the C core takes an empty prefix directory for a mountpoint, with
        # nothing real beneath it, and would not look at the stand-ins made later.
        open(self.root + b"/.keep", "wb").close()
        self._by_key: dict[tuple[int, tuple[bytes, ...]], StandIn] = {}
        self._by_path: dict[bytes, StandIn] = {}
        self._removed: set[bytes] = set()

    def stand_in_for(self, location: VirtualLocation) -> bytes:
        """The stand-in of virtual directory `location` (made on first use)."""
        key = (location.mount.mount_id, location.parts)
        found = self._by_key.get(key)
        if found is None:
            path = b"%s/%d" % (self.root, len(self._by_path))  # never reused
            os.makedirs(path, mode=0o700, exist_ok=True)
            # A stand-in lives as long as the session: its directory stays pinned (the
            # kernel's dget of a cwd), so the provider never forgets it under a process.
            location.mount.provider.hold(location.ino)
            found = StandIn(path, location)
            self._by_key[key] = found
            self._by_path[path] = found
        return found.path

    def location_of(self, path: bytes) -> VirtualLocation | None:
        """The virtual directory whose stand-in is `path` (a canonical path), if any."""
        found = self._by_path.get(path)
        return None if found is None else found.location

    def removed(self, mount_id: int, parts: tuple[bytes, ...]) -> None:
        """The directory was removed through the session: a cwd there is a deleted
        directory (getcwd ENOENT, "(deleted)" links); a new one at that path gets its own."""
        found = self._by_key.pop((mount_id, parts), None)
        if found is not None:
            self._removed.add(found.path)

    def renamed(self, old: VirtualLocation, parent: VirtualLocation, name: bytes,
                old_name: bytes) -> None:
        """Directory `old_name` of `old` moved to `name` in `parent`: the stand-ins of it and
        below follow it (a cwd there reports the new path, as the kernel's dentry moves)."""
        mount_id = old.mount.mount_id
        moved = (*old.parts, old_name)
        if moved == (*parent.parts, name):
            return
        self.removed(mount_id, (*parent.parts, name))  # an empty directory renamed over
        for key in [k for k in self._by_key if k[0] == mount_id and k[1][: len(moved)] == moved]:
            stand_in = self._by_key.pop(key)
            location = stand_in.location
            parts = (*parent.parts, name, *location.parts[len(moved):])
            inodes = (*parent.inodes, *location.inodes[len(moved):])
            new = StandIn(stand_in.path, VirtualLocation(location.mount, parts, inodes,
                                                         location.attrs))
            self._by_key[(mount_id, parts)] = new
            self._by_path[stand_in.path] = new

    def is_removed(self, path: bytes) -> bool:
        """True if stand-in `path` stands for a directory removed since."""
        return path in self._removed

    def is_inside(self, path: bytes) -> bool:
        """True if `path` is the stand-in root or below it."""
        return path == self.root or path.startswith(self.root + b"/")


class _Registers:
    """x86_64 `struct user_regs_struct` through python-ptrace (its one job here)."""

    @staticmethod
    def get(tid: int) -> object:
        from ptrace.binding import ptrace_getregs

        return ptrace_getregs(tid)

    @staticmethod
    def set(tid: int, registers: object) -> None:
        from ptrace.binding import ptrace_setregs

        ptrace_setregs(tid, registers)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def _ptrace(request: int, tid: int, address: int = 0, data: int = 0) -> None:
    if _libc.ptrace(request, tid, address, data) == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _wait_stop(tid: int) -> int:
    """Wait for the next stop of `tid`; ESRCH if it died meanwhile."""
    while True:
        try:
            _, status = os.waitpid(tid, _WALL)
        except ChildProcessError:
            raise OSError(errno.ESRCH, "tracee gone") from None
        except InterruptedError:
            continue
        if os.WIFSTOPPED(status):
            return status
        raise OSError(errno.ESRCH, "tracee gone")


def run_chdir_in(
    tid: int,
    target: bytes,
    answer: Callable[[], None],
    write_memory: Callable[[int, int, bytes], None],
) -> int:
    """Make thread `tid`, stopped in a trapped syscall, chdir to `target`; returns 0/-errno.

    `answer()` answers the pending notification (with 0) once the thread is seized, so that
    the thread stops at the very instruction after its `syscall`.  `write_memory(tid, address,
    data)` writes tracee memory.  Runs in one OS thread from seize to detach (ptrace requires
    it); the injected chdir traps again and is let through by the session's chdir handler,
    because its path lies under the stand-in root.
    """

    def setup(registers: Any, base: int) -> None:
        registers.rdi = base

    blob = target + b"\0"
    return run_syscall_in(tid, nr("chdir"), len(blob), lambda _base: blob, setup, answer,
                          write_memory)


_ERESTARTSYS, _ERESTART_RESTARTBLOCK = 512, 516
"""The kernel-internal restart codes (ERESTARTSYS .. ERESTART_RESTARTBLOCK)."""


def run_syscall_in(
    tid: int,
    number: int,
    blob_size: int,
    blob_at: Callable[[int], bytes],
    setup: Callable[[Any, int], None],
    answer: Callable[[], None],
    write_memory: Callable[[int, int, bytes], None],
    keep_on_success: bool = False,
) -> int:
    """Make thread `tid`, stopped in a trapped syscall, run syscall `number` instead.

    `blob_at(base)` (`blob_size` bytes, which may point into itself) is written below the
    stack's red zone at `base`; `setup(registers, base)` sets the argument registers.
    Returns the result (0 or -errno); the thread's registers are restored with that result,
    unless `keep_on_success` and it succeeded (exec: the old registers belong to an image
    that is gone).
    """
    _ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD)
    pending_signal = 0
    try:
        _ptrace(PTRACE_INTERRUPT, tid)
        answer()
        status = _wait_stop(tid)
        if os.WSTOPSIG(status) != signal.SIGTRAP or status >> 16 != PTRACE_EVENT_STOP:
            if (status >> 16) == 0 and os.WSTOPSIG(status) not in (signal.SIGTRAP,):
                pending_signal = os.WSTOPSIG(status)  # deliver it when we let go
        registers = _Registers.get(tid)
        saved = type(registers).from_buffer_copy(registers)  # type: ignore[attr-defined]
        with open(f"/proc/{tid}/mem", "rb", buffering=0) as memory:
            memory.seek(registers.rip - 2)  # type: ignore[attr-defined]
            if memory.read(2) != _SYSCALL_INSTRUCTION:
                raise OSError(errno.ENOSYS, "not stopped after a syscall instruction")
        base = (registers.rsp - _RED_ZONE - blob_size) & ~15  # type: ignore[attr-defined]
        write_memory(tid, base, blob_at(base))
        registers.rax = registers.orig_rax = number  # type: ignore[attr-defined]
        setup(registers, base)
        registers.rip -= 2  # type: ignore[attr-defined]
        _Registers.set(tid, registers)
        result = None
        stops = 0
        while result is None:
            _ptrace(PTRACE_SYSCALL, tid, 0, 0)
            status = _wait_stop(tid)
            if os.WSTOPSIG(status) == (signal.SIGTRAP | 0x80):
                stops += 1
                if stops == 2:  # syscall exit
                    result = _Registers.get(tid).rax  # type: ignore[attr-defined]
            elif status >> 16 == 0:
                pending_signal = os.WSTOPSIG(status)
        result = ctypes.c_long(result).value
        if -_ERESTART_RESTARTBLOCK <= result <= -_ERESTARTSYS:
            # Interrupted by a signal we hold until detach: the restart codes must never
            # reach user space, so the caller sees EINTR (as without SA_RESTART).
            result = -errno.EINTR
        if not (keep_on_success and result == 0):
            saved.rax = result
            _Registers.set(tid, saved)
        return int(result)
    finally:
        try:
            _ptrace(PTRACE_DETACH, tid, 0, pending_signal)
        except OSError:
            pass
