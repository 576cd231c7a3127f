"""Failing a syscall that a thread is blocked in natively (docs/decisions.md D3).

Some objects the hypervisor hands out are read natively, untrapped (a device socket at a low
fd number).  When the object dies the kernel would make a blocked read fail with a chosen
errno (a FUSE device: ENODEV after unmount); a socket can only give EOF.  So: find the
threads blocked in a given syscall on an fd that refers to the object (/proc/TID/syscall),
and, with the same narrow ptrace use as the cwd injection (D1), interrupt each one, set the
syscall's return value and stop it from being restarted, then let it go.

A thread that waits for the object in poll/epoll instead is woken by the object's death, and
its next read must fail the same way: :func:`fail_next_syscall` stops such threads, lets the
caller wake them (hang up its end), then follows each one syscall by syscall until it reads
the object, and fails that read.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import time
from collections.abc import Callable

from .cwd import (
    _WALL,
    PTRACE_DETACH,
    PTRACE_EVENT_STOP,
    PTRACE_INTERRUPT,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SEIZE,
    PTRACE_SYSCALL,
    _ptrace,
    _wait_stop,
)

PTRACE_CONT = 7
_SYSCALL_STOP = signal.SIGTRAP | 0x80  # WSTOPSIG of a syscall stop under TRACESYSGOOD

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


def threads_in(pid: int, syscalls: frozenset[int]) -> list[int]:
    """Threads of `pid` now blocked in one of `syscalls` (any arguments)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall", "rb") as status:
                first = status.read().split(b" ", 1)[0]
        except OSError:
            continue
        if first.isdigit() and int(first) in syscalls:
            found.append(int(tid))
    return found


def fail_next_syscall(
    threads: list[tuple[int, set[int]]],
    syscalls: frozenset[int],
    code: int,
    wake: Callable[[], None],
    timeout: float,
) -> int:
    """Make each thread's next call of one of `syscalls` on one of its fds return -`code`.

    `threads`: (tid, fds) of threads now waiting (in poll, epoll...) for those fds.  All are
    stopped, then `wake()` is called (it must make their wait return), then each runs under
    PTRACE_SYSCALL until it enters such a syscall, which is skipped and given -`code`; its
    other syscalls and signals pass untouched.  A thread that does not get there within
    `timeout` seconds is let go unchanged.  Returns how many threads were failed so.  Must
    run in one OS thread from seize to detach (ptrace's rule).
    """
    seized: list[tuple[int, set[int], int]] = []
    failed = 0
    try:
        for tid, fds in threads:
            try:
                _ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD)
            except OSError as failure:
                log.debug("cannot seize %d: %s", tid, failure)
                continue
            try:
                _ptrace(PTRACE_INTERRUPT, tid)
                status = _wait_stop(tid)
            except OSError as failure:
                log.debug("cannot stop %d: %s", tid, failure)
                _detach(tid)
                continue
            # A signal-delivery stop may come before our interrupt's: deliver it on resuming.
            pending_signal = os.WSTOPSIG(status) if status >> 16 == 0 else 0
            seized.append((tid, fds, pending_signal))
        wake()
        deadline = time.monotonic() + timeout
        for tid, fds, pending_signal in seized:
            try:
                failed += _fail_next(tid, fds, syscalls, code, pending_signal, deadline)
            except OSError as failure:
                log.debug("following %d: %s", tid, failure)
    finally:
        for tid, _, _ in seized:  # a detached thread runs on untouched
            _detach(tid)
    return failed


def _detach(tid: int) -> None:
    try:
        _ptrace(PTRACE_DETACH, tid, 0, 0)
    except OSError:
        pass


def _fail_next(tid: int, fds: set[int], syscalls: frozenset[int], code: int,
               pending_signal: int, deadline: float) -> bool:
    """Step stopped tracee `tid` to its next entry into `syscalls` on `fds` and fail it.
    Leaves it stopped (for the caller's detach)."""
    from .cwd import _Registers

    entering = True  # we stopped it between syscalls: the next syscall stop is an entry
    while True:
        _ptrace(PTRACE_SYSCALL, tid, 0, pending_signal)
        pending_signal = 0
        status = _wait_stop_until(tid, deadline)
        if status is None:  # stuck elsewhere (a lock, a sleep): stop it and let it go
            _ptrace(PTRACE_INTERRUPT, tid)
            _wait_stop(tid)
            return False
        if os.WSTOPSIG(status) != _SYSCALL_STOP:
            if status >> 16 == 0:  # a signal for the thread: deliver it
                pending_signal = os.WSTOPSIG(status)
            continue
        if not entering:
            entering = True
            continue
        entering = False
        registers = _Registers.get(tid)
        number = ctypes.c_long(registers.orig_rax).value  # type: ignore[attr-defined]
        if number in syscalls and registers.rdi in fds:  # type: ignore[attr-defined]
            registers.orig_rax = -1  # type: ignore[attr-defined]  # skip it
            _Registers.set(tid, registers)
            _ptrace(PTRACE_SYSCALL, tid, 0, 0)
            status = _wait_stop_until(tid, deadline + 1.0)
            if status is None:
                _ptrace(PTRACE_INTERRUPT, tid)
                _wait_stop(tid)
                return False
            registers = _Registers.get(tid)
            registers.rax = -code  # type: ignore[attr-defined]
            _Registers.set(tid, registers)
            return True


def _wait_stop_until(tid: int, deadline: float) -> int | None:
    """The next stop of `tid`, or None at `deadline`; ESRCH if it died meanwhile."""
    while True:
        try:
            waited, status = os.waitpid(tid, _WALL | os.WNOHANG)
        except ChildProcessError:
            raise OSError(errno.ESRCH, "tracee gone") from None
        if waited == tid:
            if os.WIFSTOPPED(status):
                return status
            raise OSError(errno.ESRCH, "tracee gone")
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.0005)


def fail_blocked_syscall(tid: int, number: int, fd: int, code: int) -> bool:
    """Make thread `tid`, blocked in syscall `number` on `fd`, return -`code` from it.

    True if done; False if the thread was no longer in that syscall when it stopped (it then
    continues untouched).  Must run in one OS thread from seize to detach (ptrace's rule).
    """
    return fail_blocked_syscalls([(tid, number, fd)], code) == 1


def fail_blocked_syscalls(
    threads: list[tuple[int, int, int]], code: int, before_resume: Callable[[], None] | None = None
) -> int:
    """:func:`fail_blocked_syscall` for each (tid, number, fd) at once: every thread is
    stopped and given -`code` first, then `before_resume()` runs (the object can die while
    none of them runs: whatever they do next sees it dead), then all are let go.  Returns how
    many were failed.  Must run in one OS thread (ptrace's rule)."""
    seized: list[int] = []
    failed = 0
    try:
        for tid, number, fd in threads:
            try:
                _ptrace(PTRACE_SEIZE, tid, 0, 0)
            except OSError as failure:
                log.debug("cannot seize %d: %s", tid, failure)
                continue
            seized.append(tid)
            try:
                failed += _fail_stopped(tid, number, fd, code)
            except OSError as failure:
                log.debug("failing the syscall of %d: %s", tid, failure)
        if before_resume is not None:
            before_resume()
    finally:
        for tid in seized:
            _detach(tid)
    return failed


def _fail_stopped(tid: int, number: int, fd: int, code: int) -> bool:
    """Interrupt seized `tid`; if it was blocked in `number` on `fd`, make that return
    -`code` (no restart).  Leaves it stopped."""
    from .cwd import _Registers

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
        return True
    return False
