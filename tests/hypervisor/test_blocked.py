"""hypervisor.blocked: a read blocked natively is made to fail with a chosen errno."""

from __future__ import annotations

import errno
import os
import socket
import time

from hypervisor import blocked

READ = frozenset({0})


def _wait_blocked(pid: int, sock: socket.socket) -> None:
    deadline = time.monotonic() + 5
    while not blocked.blocked_threads(pid, {sock.fileno()}, READ):
        assert time.monotonic() < deadline, "the child never blocked in read"
        time.sleep(0.001)


def _reap(pid: int, report: int) -> None:
    """Never leave a child behind, even when an assertion failed."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    os.close(report)


def _child_reading(sock: socket.socket) -> tuple[int, int]:
    """Fork a child blocked in read(sock); it reports the errno (or 0) on a pipe."""
    report_read, report_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.read(sock.fileno(), 100)
            os.write(report_write, b"0")
        except OSError as failure:
            os.write(report_write, str(failure.errno).encode())
        os._exit(0)
    os.close(report_write)
    _wait_blocked(pid, sock)
    return pid, report_read


def test_blocked_read_fails_with_enodev() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        pid, report = _child_reading(theirs)
        try:
            holders = blocked.holders(os.fstat(theirs.fileno()).st_ino)
            assert theirs.fileno() in holders[pid] and theirs.fileno() in holders[os.getpid()]
            [(tid, number, fd)] = blocked.blocked_threads(pid, {theirs.fileno()}, READ)
            assert (tid, number, fd) == (pid, 0, theirs.fileno())
            assert blocked.fail_blocked_syscall(tid, number, fd, errno.ENODEV)
            assert os.read(report, 10) == str(errno.ENODEV).encode()
        finally:
            _reap(pid, report)


def test_other_syscalls_are_left_alone() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        pid, report = _child_reading(theirs)
        try:
            # Asked about another fd, the thread is not touched: its read restarts.
            assert not blocked.fail_blocked_syscall(pid, 0, theirs.fileno() + 100, errno.ENODEV)
            _wait_blocked(pid, theirs)
            ours.send(b"data")
            assert os.read(report, 10) == b"0"
        finally:
            _reap(pid, report)
