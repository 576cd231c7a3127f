"""Failing a syscall that a thread is blocked in natively (docs/decisions.md D3).

Some objects the hypervisor hands out are read natively, untrapped (a device socket at a low
fd number).  When the object dies the kernel would make a blocked read fail with a chosen
errno (a FUSE device: ENODEV after unmount); a socket can only give EOF.  So: find the
threads blocked in a given syscall on an fd that refers to the object (/proc/TID/syscall),
and, with the same narrow ptrace use as the cwd injection (D1), interrupt each one, set the
syscall's return value and stop it from being restarted, then let it go.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os

from .cwd import (
    PTRACE_DETACH,
    PTRACE_EVENT_STOP,
    PTRACE_INTERRUPT,
    PTRACE_SEIZE,
    _ptrace,
    _wait_stop,
)

PTRACE_CONT = 7

log = logging.getLogger("vufuse.hypervisor")

# What an interrupted syscall leaves in rax before the kernel decides to restart it.
_RESTART_CODES = frozenset({-512, -513, -514, -516, -errno.EINTR})  # ERESTART*, EINTR


def holders(inode: int) -> dict[int, set[int]]:
    """Processes with an fd on socket `inode`: pid → fd numbers (those we may inspect)."""
    wanted = f"socket:[{inode}]"
    found: dict[int, set[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") == wanted:
                    found.setdefault(int(name), set()).add(int(fd))
            except OSError:
                continue
    return found


def blocked_threads(
    pid: int, fds: set[int], syscalls: frozenset[int]
) -> list[tuple[int, int, int]]:
    """Threads of `pid` now in one of `syscalls` whose first argument is one of `fds`:
    (tid, syscall number, fd)."""
    found: list[tuple[int, int, int]] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall", "rb") as status:
                fields = status.read().split()
        except OSError:
            continue
        if len(fields) < 2 or not fields[0].lstrip(b"-").isdigit():
            continue  # "running"
        number = int(fields[0])
        fd = int(fields[1], 16)
        if number in syscalls and fd in fds:
            found.append((int(tid), number, fd))
    return found


def any_thread_in(pid: int, syscalls: frozenset[int]) -> bool:
    """True if some thread of `pid` is now blocked in one of `syscalls` (any arguments)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall", "rb") as status:
                first = status.read().split(b" ", 1)[0]
        except OSError:
            continue
        if first.isdigit() and int(first) in syscalls:
            return True
    return False


def fail_blocked_syscall(tid: int, number: int, fd: int, code: int) -> bool:
    """Make thread `tid`, blocked in syscall `number` on `fd`, return -`code` from it.

    True if done; False if the thread was no longer in that syscall when it stopped (it then
    continues untouched).  Must run in one OS thread from seize to detach (ptrace's rule).
    """
    from .cwd import _Registers

    try:
        _ptrace(PTRACE_SEIZE, tid, 0, 0)
    except OSError as failure:
        log.debug("cannot seize %d: %s", tid, failure)
        return False
    done = False
    try:
        _ptrace(PTRACE_INTERRUPT, tid)
        status = _wait_stop(tid)
        while status >> 16 != PTRACE_EVENT_STOP:
            # A signal-delivery stop came first: deliver the signal now (a detach from our
            # event stop could not: it would be lost -- glibc's SIGCANCEL, and pthread_join
            # of that thread hangs for ever).  Our interrupt stops the thread again later.
            signal_number = os.WSTOPSIG(status) if status >> 16 == 0 else 0
            _ptrace(PTRACE_CONT, tid, 0, signal_number)
            status = _wait_stop(tid)
        registers = _Registers.get(tid)
        result = ctypes.c_long(registers.rax).value  # type: ignore[attr-defined]
        current = ctypes.c_long(registers.orig_rax).value  # type: ignore[attr-defined]
        first = registers.rdi  # type: ignore[attr-defined]
        if current == number and first == fd and result in _RESTART_CODES:
            registers.rax = -code  # type: ignore[attr-defined]
            registers.orig_rax = -1  # type: ignore[attr-defined]  # no restart
            _Registers.set(tid, registers)
            done = True
    except OSError as failure:
        log.debug("failing the syscall of %d: %s", tid, failure)
    finally:
        try:
            _ptrace(PTRACE_DETACH, tid, 0, 0)
        except OSError:
            pass
    return done
