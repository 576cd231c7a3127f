"""Let the kernel run a trapped syscall, then change what it returns (one ptrace stop).

close(2) always closes the fd, even when it fails (a FUSE daemon's FLUSH error is close's
error, yet the fd is gone): seccomp user notification can either run the syscall (CONTINUE,
the kernel's result) or answer it (our result, nothing run) -- not both.  So the thread is
seized, the notification answered CONTINUE, and at the stop right after the syscall its
return value is replaced.  Same narrow road as hypervisor/cwd.py's chdir injection (D3).
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable

from .cwd import PTRACE_DETACH, PTRACE_INTERRUPT, PTRACE_SEIZE, _ptrace, _Registers, _wait_stop


def continue_then_fail(tid: int, number: int, answer_continue: Callable[[], None],
                       code: int) -> bool:  # fmt: skip
    """Run thread `tid`'s trapped syscall `number` for real, then make it return -`code`.

    `answer_continue()` answers the pending notification with CONTINUE once the thread is
    seized.  Returns False (the kernel's own result stands) when the thread did not stop
    right after that syscall.  Runs in one OS thread from seize to detach.
    """
    _ptrace(PTRACE_SEIZE, tid, 0, 0)
    pending_signal = 0
    try:
        _ptrace(PTRACE_INTERRUPT, tid)
        answer_continue()
        status = _wait_stop(tid)
        if status >> 16 == 0 and os.WSTOPSIG(status) != signal.SIGTRAP:
            pending_signal = os.WSTOPSIG(status)  # a signal-delivery stop: re-sent at detach
        registers = _Registers.get(tid)
        if registers.orig_rax != number:  # type: ignore[attr-defined]
            return False
        registers.rax = -code  # type: ignore[attr-defined]
        _Registers.set(tid, registers)
        return True
    except OSError as failure:
        if failure.errno == errno.ESRCH:
            return False
        raise
    finally:
        try:
            _ptrace(PTRACE_DETACH, tid, 0, pending_signal)
        except OSError:
            pass
