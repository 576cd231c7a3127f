"""Helpers for the C tracing core's tests: a test-only syscall spec and a session driver.

The spec here is deliberately small and independent of ``hypervisor/syscalls.py``: it traps
the path syscalls the tests exercise, fd syscalls in the virtual range, and uses ``tuxcall``
(184: never implemented, so nothing calls it and natively it fails with ENOSYS) as the
"always ask Python" barrier that the tracee scripts call through ctypes.  ``getppid`` is
never trapped (the benchmark's untrapped loop).
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hypervisor import _tracer

NR_READ = 0
NR_OPEN = 2
NR_STAT = 4
NR_FSTAT = 5
NR_LSTAT = 6
NR_ACCESS = 21
NR_EXECVE = 59
NR_READLINK = 89
NR_TUXCALL = 184
NR_PRCTL = 157
NR_OPENAT = 257
NR_NEWFSTATAT = 262
NR_READLINKAT = 267
NR_FACCESSAT = 269
NR_STATX = 332
NR_IO_URING_SETUP = 425
NR_FACCESSAT2 = 439

PATH_SYSCALLS = {
    NR_OPEN: 0,
    NR_STAT: 0,
    NR_LSTAT: 0,
    NR_ACCESS: 0,
    NR_READLINK: 0,
    NR_OPENAT: 1,
    NR_NEWFSTATAT: 1,
    NR_READLINKAT: 1,
    NR_FACCESSAT: 1,
    NR_STATX: 1,
    NR_FACCESSAT2: 1,
}

T = _tracer
TEST_SPEC = [
    (NR_OPEN, T.ACTION_TRAP, 0, 0, -1, -1, -1),
    (NR_STAT, T.ACTION_TRAP, 0, 0, -1, -1, -1),
    (NR_LSTAT, T.ACTION_TRAP, 0, 0, -1, -1, -1),
    (NR_ACCESS, T.ACTION_TRAP, 0, 0, -1, -1, -1),
    (NR_READLINK, T.ACTION_TRAP, 0, 0, -1, -1, -1),
    (NR_EXECVE, T.ACTION_TRAP, 0, 0, -1, -1, -1),
    (NR_OPENAT, T.ACTION_TRAP, 0b1, 1, 0, -1, -1),
    (NR_NEWFSTATAT, T.ACTION_TRAP, 0b1, 1, 0, -1, -1),
    (NR_READLINKAT, T.ACTION_TRAP, 0b1, 1, 0, -1, -1),
    (NR_FACCESSAT, T.ACTION_TRAP, 0b1, 1, 0, -1, -1),
    (NR_STATX, T.ACTION_TRAP, 0b1, 1, 0, -1, -1),
    (NR_FACCESSAT2, T.ACTION_TRAP, 0b1, 1, 0, -1, -1),
    (NR_READ, T.ACTION_TRAP_FD, 0b1, -1, -1, -1, -1),
    (NR_FSTAT, T.ACTION_TRAP_FD, 0b1, -1, -1, -1, -1),
    (NR_TUXCALL, T.ACTION_PYTHON, 0, -1, -1, -1, -1),
    (NR_PRCTL, T.ACTION_DUMPABLE, 0, -1, -1, -1, -1),
    (NR_IO_URING_SETUP, T.ACTION_ENOSYS, 0, -1, -1, -1, -1),
]

# Prepended to every tracee script: `barrier(*args)` is a trapped tuxcall() that Python
# answers (the value it returns is the test's answer), `report(text)` writes to the result
# pipe whose number is argv[1].
TRACEE_PRELUDE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
RESULT_FD = int(sys.argv[1])
def barrier(*args):
    value = libc.syscall(184, *[ctypes.c_long(a) for a in args])
    return value, ctypes.get_errno()
def report(*items):
    os.write(RESULT_FD, (" ".join(str(i) for i in items) + "\\n").encode())
"""


@dataclass
class SessionResult:
    """What a finished tracee session left behind."""

    status: int
    lines: list[str]
    notifications: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int | None:
        return os.WEXITSTATUS(self.status) if os.WIFEXITED(self.status) else None


def continue_all(tracer, notification) -> None:
    """The default handler: let the syscall run."""
    tracer.respond(notification.id, continue_=True)


def run_script(
    tracer,
    script: str,
    handler: Callable | None = None,
    timeout: float = 20.0,
    cwd: str | None = None,
    kill: bool = True,
) -> SessionResult:
    """Spawn `python -c PRELUDE+script RESULT_FD` under `tracer`, answer its notifications
    with `handler(tracer, notification)` until it exits, and collect its report lines."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    argv = [sys.executable, "-S", "-c", TRACEE_PRELUDE + script, str(write_end)]
    env = [f"{k}={v}".encode() for k, v in os.environ.items()]
    try:
        tracer.spawn(argv, env, cwd)
    finally:
        os.close(write_end)
    handler = handler or continue_all
    seen = []
    output = b""
    deadline = time.monotonic() + timeout
    status = None
    reading = True
    while status is None or reading:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            tracer.kill_all()
            raise TimeoutError(f"tracee did not finish; output so far: {output!r}")
        watch = [tracer.fileno()] + ([read_end] if reading else [])
        if status is None:
            watch.append(tracer.status_fd())
        ready, _, _ = select.select(watch, [], [], min(remaining, 0.5))
        for notification in tracer.take():
            seen.append(notification)
            try:
                handler(tracer, notification)
            except OSError:
                pass  # the tracee may be gone: respond raises ENOENT then
        if read_end in ready:
            chunk = os.read(read_end, 65536)
            if chunk:
                output += chunk
            else:
                reading = False
        if status is None:
            status = tracer.wait_status()
    os.close(read_end)
    stats = tracer.stats()
    if kill:
        tracer.kill_all()
    return SessionResult(status, output.decode().splitlines(), seen, stats)


def tracer_fixture(spec):
    """A `tracer` fixture: a Tracer with `spec`, its session killed at teardown."""

    @pytest.fixture
    def tracer():
        instance = _tracer.Tracer(spec, fd_base=512, max_nr=450)
        yield instance
        instance.close()
        instance.kill_all()

    return tracer


tracer = tracer_fixture(TEST_SPEC)
