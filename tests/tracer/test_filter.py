"""What the BPF filter itself decides: ENOSYS, prctl(PR_SET_DUMPABLE, 0), the fd range."""

from __future__ import annotations

import errno
import os
import textwrap

import pytest

from hypervisor import _tracer

from .conftest import NR_FSTAT, NR_TUXCALL, TEST_SPEC, continue_all, run_script


def test_io_uring_setup_is_enosys(tracer):
    script = (
        "params = ctypes.create_string_buffer(120)\n"
        "report(libc.syscall(425, 8, params), ctypes.get_errno())"
    )
    assert run_script(tracer, script).lines == [f"-1 {errno.ENOSYS}"]


def test_numbers_above_max_nr_and_x32_are_enosys(tracer):
    # 451 is cachestat (Linux 6.5): natively EBADF/EINVAL/EFAULT, never ENOSYS; the test
    # Tracer has max_nr=450.  0x40000027 is getpid with the x32 bit.
    script = textwrap.dedent(
        """
        results = []
        for nr in (451, 0x40000000 | 39, 2**31 + 39):
            results.append((libc.syscall(nr, -1, 0, 0, 0, 0), ctypes.get_errno()))
        report(*(f"{value},{error}" for value, error in results))
        """
    )
    result = run_script(tracer, script)
    assert result.lines == [" ".join([f"-1,{errno.ENOSYS}"] * 3)]


def test_prctl_set_dumpable_0_is_a_noop_returning_0(tracer):
    script = textwrap.dedent(
        """
        PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_NAME, PR_GET_NAME = 3, 4, 15, 16
        set_result = libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        dumpable = libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
        bad = libc.prctl(PR_SET_DUMPABLE, 7, 0, 0, 0), ctypes.get_errno()
        name = ctypes.create_string_buffer(b"vufuse-probe")
        renamed = libc.prctl(PR_SET_NAME, name, 0, 0, 0)
        report(set_result, dumpable, *bad, renamed, open("/proc/self/comm").read().strip())
        """
    )
    result = run_script(tracer, script)
    # Other prctl calls run: PR_SET_DUMPABLE 7 is EINVAL, PR_SET_NAME works.
    assert result.lines == [f"0 1 -1 {errno.EINVAL} 0 vufuse-probe"]


FD_RANGE_SCRIPT = textwrap.dedent(
    """
    import socket
    plain = os.open(sys.executable, os.O_RDONLY)
    os.dup2(plain, 600)
    a, b = socket.socketpair()
    os.dup2(a.fileno(), 601)
    statbuf = ctypes.create_string_buffer(256)
    def fstat(fd):                  # the fstat syscall itself (os.fstat uses newfstatat)
        return libc.syscall(5, ctypes.c_long(fd), statbuf)
    barrier(0)                      # phase 0: nothing in between
    for fd in (-100, -1, 3, 511, 2**32 + 5):   # not in R: the filter lets them run
        fstat(fd)
    barrier(1)
    for _ in range(5):
        fstat(600)                  # in R, a plain file: trapped, fast-path CONTINUE
    barrier(2)
    barrier(601)                    # Python marks fd 601's socket virtual
    fstat(601)                      # in R and virtual: queued for Python (REASON_FD)
    report(os.read(600, 4) == open(sys.executable, "rb").read(4))
    """
)


def test_fd_range_trapping(tracer):
    snapshots = {}
    fd_notifications = []

    def handler(tracer, notification):
        if notification.nr == NR_TUXCALL:
            phase = notification.args[0]
            snapshots[phase] = tracer.stats()
            if phase == 601:
                ino = int(os.readlink(f"/proc/{notification.pid}/fd/601")[8:-1])
                tracer.add_virtual_inode(ino)
            tracer.respond(notification.id, value=0)
        elif notification.nr == NR_FSTAT:
            fd_notifications.append(notification)
            tracer.respond(notification.id, continue_=True)
        else:
            continue_all(tracer, notification)

    result = run_script(tracer, FD_RANGE_SCRIPT, handler)
    assert result.lines == ["True"]
    between = snapshots[1]["notifications"] - snapshots[0]["notifications"]
    assert between == 1  # only the barrier itself
    between = snapshots[2]["notifications"] - snapshots[1]["notifications"]
    fast = snapshots[2]["fast_continue"] - snapshots[1]["fast_continue"]
    assert between == 6 and fast == 5
    (virtual,) = fd_notifications
    assert virtual.reason == _tracer.REASON_FD
    assert virtual.fd == 601 and virtual.inode > 0
    assert result.stats["queued_fd"] == 1


def test_spec_validation():
    with pytest.raises(ValueError):
        _tracer.Tracer([(1, 99, 0, -1, -1, -1, -1)])
    with pytest.raises(ValueError):
        _tracer.Tracer([(1, 1, 0, -1, -1, -1)])
    with pytest.raises(ValueError):
        _tracer.Tracer([(500, 1, 0, -1, -1, -1, -1)], max_nr=470)
    with pytest.raises(ValueError):
        _tracer.Tracer([(1, 1, 0, 7, -1, -1, -1)])
    with pytest.raises(ValueError):
        _tracer.Tracer([(1, 1, 0, -1, -1, -1, -1), (1, 2, 1, -1, -1, -1, -1)])


def test_large_spec_builds_and_runs():
    """Every number trapped: the search tree's jumps must stay in range."""
    spec = [entry for entry in TEST_SPEC]
    taken = {entry[0] for entry in spec}
    # Plain-allowed numbers stay out so that the tracee can run; the rest become TRAP_FD.
    for nr in range(0, 451):
        if nr not in taken and nr not in (60, 231, 15):
            spec.append((nr, _tracer.ACTION_TRAP_FD, 0b111111, -1, -1, -1, -1))
    tracer = _tracer.Tracer(spec, max_nr=450)
    try:
        result = run_script(
            tracer,
            "report(*barrier(9))",
            lambda t, n: t.respond(n.id, value=77) if n.nr == NR_TUXCALL else continue_all(t, n),
        )
        assert result.lines == ["77 0"]
    finally:
        tracer.kill_all()


def test_the_hypervisors_spec_builds_and_runs():
    """Compatibility with hypervisor/syscalls.py (the real spec), when it imports."""
    syscalls = pytest.importorskip("hypervisor.syscalls")
    tracer = _tracer.Tracer(syscalls.build_spec(), fd_base=syscalls.FD_BASE, max_nr=syscalls.MAX_NR)
    try:
        result = run_script(tracer, "report(len(os.listdir('/')) > 0); sys.exit(5)")
        assert result.lines == ["True"] and result.exit_code == 5
    finally:
        tracer.kill_all()
