"""Notifications answered from Python: values, errnos, CONTINUE, ADDFD, tracee memory."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import trio

from hypervisor import _tracer

from .conftest import NR_TUXCALL, continue_all, run_script


def test_respond_value_errno_and_continue(tracer):
    answers = iter([("value", 4242), ("error", errno.EPERM), ("continue", None)])

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        assert notification.reason == _tracer.REASON_ALWAYS
        assert notification.args[:3] == (1, 2, 3)
        kind, value = next(answers)
        if kind == "value":
            tracer.respond(notification.id, value=value)
        elif kind == "error":
            tracer.respond(notification.id, error=value)
        else:
            tracer.respond(notification.id, continue_=True)

    result = run_script(
        tracer,
        "report(*barrier(1, 2, 3)); report(*barrier(1, 2, 3)); report(*barrier(1, 2, 3))",
        handler,
    )
    assert result.exit_code == 0
    # The CONTINUEd tuxcall ran natively: the kernel never implemented it.
    assert result.lines == ["4242 0", f"-1 {errno.EPERM}", f"-1 {errno.ENOSYS}"]


def test_notification_fields(tracer):
    seen = []

    def handler(tracer, notification):
        if notification.nr == NR_TUXCALL:
            seen.append(notification)
            tracer.respond(notification.id, value=0)
        else:
            continue_all(tracer, notification)

    result = run_script(tracer, "barrier(2**64 - 1, 0, 7); report(os.getpid())", handler)
    (notification,) = seen
    assert notification.pid == int(result.lines[0])
    assert notification.args[0] == 2**64 - 1
    assert notification.args[2] == 7
    assert notification.fd == -1 and notification.inode == 0
    assert "nr=184" in repr(notification)
    assert result.stats["queued_always"] == 1


def test_respond_to_stale_id_raises_enoent(tracer):
    stale = []

    def handler(tracer, notification):
        if notification.nr == NR_TUXCALL:
            assert tracer.id_valid(notification.id)
            tracer.respond(notification.id, value=0)
            assert not tracer.id_valid(notification.id)
            stale.append(notification.id)
        else:
            continue_all(tracer, notification)

    run_script(tracer, "barrier()", handler)
    with pytest.raises(OSError) as raised:
        tracer.respond(stale[0], value=0)
    assert raised.value.errno == errno.ENOENT


def test_addfd_socketpair_at_chosen_number(tracer):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        number = tracer.addfd(notification.id, theirs.fileno(), newfd=600, cloexec=True)
        assert number == 600
        ours.send(b"hello from vufuse")
        tracer.respond(notification.id, value=number)

    script = textwrap.dedent(
        """
        import fcntl
        fd, _ = barrier()
        report(fd, os.read(fd, 100).decode().replace(" ", "_"),
               bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
        os.write(fd, b"reply")
        """
    )
    result = run_script(tracer, script, handler)
    assert result.lines == ["600 hello_from_vufuse True"]
    assert ours.recv(100) == b"reply"
    ours.close()
    theirs.close()


def test_addfd_send_answers_atomically(tracer):
    ours, theirs = socket.socketpair()

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        tracer.addfd(notification.id, theirs.fileno(), send=True)

    result = run_script(
        tracer, "fd, _ = barrier(); report(fd, os.readlink(f'/proc/self/fd/{fd}'))", handler
    )
    fd, link = result.lines[0].split()
    assert int(fd) >= 3 and link == f"socket:[{os.fstat(theirs.fileno()).st_ino}]"
    ours.close()
    theirs.close()


MEMORY_SCRIPT = textwrap.dedent(
    """
    buffer = ctypes.create_string_buffer(b"tracee says hi", 64)
    address = ctypes.addressof(buffer)
    barrier(address, 14)
    report(buffer.value.decode())
    """
)


def test_read_write_memory(tracer):
    checks = []

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        pid, (address, size) = notification.pid, notification.args[:2]
        checks.append(tracer.read_mem(pid, address, size) == b"tracee says hi")
        checks.append(tracer.read_string(pid, address) == b"tracee says hi")
        with pytest.raises(OSError) as raised:
            tracer.read_string(pid, address, limit=5)
        checks.append(raised.value.errno == errno.ENAMETOOLONG)
        tracer.write_mem(pid, address, b"vufuse wrote this\0")
        for bad in (0, 8, 2**63 + 5, 2**64 - 4096):
            for call, arguments in (
                (tracer.read_mem, (pid, bad, 16)),
                (tracer.read_string, (pid, bad)),
                (tracer.write_mem, (pid, bad, b"x")),
            ):
                with pytest.raises(OSError) as raised:
                    call(*arguments)
                checks.append(raised.value.errno == errno.EFAULT)
        tracer.forget_pid(pid)
        checks.append(tracer.read_mem(pid, address, 6) == b"vufuse")
        tracer.respond(notification.id, value=0)

    result = run_script(tracer, MEMORY_SCRIPT, handler)
    assert result.lines == ["vufuse wrote this"]
    assert checks and all(checks), checks


def test_read_string_at_end_of_mapping(tracer):
    """A string ending right before an unmapped page reads fine; one running into it is
    EFAULT; a short read_mem stops at the hole."""
    checks = []

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        pid, end = notification.pid, notification.args[0]
        checks.append(tracer.read_string(pid, end - 4) == b"abc")
        checks.append(tracer.read_mem(pid, end - 4, 100) == b"abc\0")
        tracer.write_mem(pid, end - 4, b"abcd")  # now the string runs into the hole
        with pytest.raises(OSError) as raised:
            tracer.read_string(pid, end - 4)
        checks.append(raised.value.errno == errno.EFAULT)
        tracer.respond(notification.id, value=0)

    script = textwrap.dedent(
        """
        import mmap
        area = mmap.mmap(-1, 8192)
        base = ctypes.addressof(ctypes.c_char.from_buffer(area))
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        area[4092:4096] = b"abc\\0"
        assert libc.munmap(ctypes.c_void_p(base + 4096), 4096) == 0
        barrier(base + 4096)
        """
    )
    result = run_script(tracer, script, handler)
    assert result.exit_code == 0
    assert checks == [True, True, True]


def test_memory_calls_checked_against_the_notification_id(tracer):
    """With id=, a read is only returned, and a write only made, while the notification is
    pending: the thread id can't have been reused meanwhile."""
    checks = []
    first = []

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        pid, (address, size) = notification.pid, notification.args[:2]
        if not first:
            first.append(notification.id)
            checks.append(tracer.read_mem(pid, address, size, id=notification.id) == b"hi")
            checks.append(tracer.read_string(pid, address, id=notification.id) == b"hi")
            tracer.write_mem(pid, address, b"HI", id=notification.id)
        else:
            for call, arguments in (
                (tracer.read_mem, (pid, address, size)),
                (tracer.read_string, (pid, address)),
                (tracer.write_mem, (pid, address, b"no")),
            ):
                with pytest.raises(OSError) as raised:
                    call(*arguments, id=first[0])
                checks.append(raised.value.errno == errno.ENOENT)
        tracer.respond(notification.id, value=0)

    script = """
    buffer = ctypes.create_string_buffer(b"hi", 8)
    barrier(ctypes.addressof(buffer), 2)
    barrier(ctypes.addressof(buffer), 2)
    report(buffer.value.decode())
    """
    result = run_script(tracer, textwrap.dedent(script), handler)
    assert result.lines == ["HI"]
    assert checks == [True] * 5, checks


def test_write_into_read_only_mapping(tracer):
    """process_vm_writev refuses a read-only page; write_mem gets there like a debugger."""

    def handler(tracer, notification):
        if notification.nr != NR_TUXCALL:
            return continue_all(tracer, notification)
        tracer.write_mem(notification.pid, notification.args[0], b"written\0")
        tracer.respond(notification.id, value=0)

    result = run_script(tracer, READ_ONLY_SCRIPT, handler)
    assert result.lines == ["written"]


READ_ONLY_SCRIPT = textwrap.dedent(
    """
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    address = libc.mmap(None, 4096, 1, 0x22, -1, 0)  # PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS
    barrier(address)
    report(ctypes.string_at(address).decode())
    """
)

REUSING_PROCESS = """
import ctypes, sys, threading
marker = ctypes.create_string_buffer(b"old process's marker")
done = threading.Event()
def thread():
    print(threading.get_native_id(), ctypes.addressof(marker), flush=True)
    done.wait()
worker = threading.Thread(target=thread)
worker.start()
sys.stdin.readline()
done.set()
worker.join()
print("joined", flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs /proc/sys/kernel/ns_last_pid (root)")
def test_thread_id_reused_while_its_process_lives(tracer):
    """A thread exits, its process lives on, another process gets its id: memory calls on
    that id reach the new process, never the old one's mm."""
    process = subprocess.Popen(
        [sys.executable, "-c", REUSING_PROCESS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    newcomer = None
    try:
        tid, address = (int(word) for word in process.stdout.readline().split())
        assert tracer.read_mem(tid, address, 20) == b"old process's marker"
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline() == "joined\n"
        for _ in range(200):  # other processes may take the number first
            with open("/proc/sys/kernel/ns_last_pid", "w") as last_pid:
                last_pid.write(str(tid - 1))
            newcomer = subprocess.Popen(["sleep", "30"])
            if newcomer.pid == tid:
                break
            newcomer.kill()
            newcomer.wait()
            newcomer = None
        if newcomer is None:
            pytest.skip("could not get the thread id reused")
        try:
            data = tracer.read_mem(tid, address, 20)
        except OSError:
            data = None
        assert data != b"old process's marker"
    finally:
        if newcomer is not None:
            newcomer.kill()
            newcomer.wait()
        process.kill()
        process.wait()


def test_memory_of_dead_process_is_esrch(tracer):
    result = run_script(tracer, "report(os.getpid())")
    pid = int(result.lines[0])
    with pytest.raises(OSError) as raised:
        tracer.read_mem(pid, 4096, 8)
    assert raised.value.errno in (errno.ESRCH, errno.EFAULT)


async def test_trio_waits_on_fileno(tracer):
    """The way hypervisor/ drives it: trio waits for the eventfd, then take()s."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    from .conftest import TRACEE_PRELUDE

    tracer.spawn(
        [os.sys.executable, "-S", "-c", TRACEE_PRELUDE + "report(*barrier(5))", str(write_end)],
        [],
    )
    os.close(write_end)
    answered = False
    with trio.fail_after(10):
        while not answered:
            await trio.lowlevel.wait_readable(tracer.fileno())
            for notification in tracer.take():
                if notification.nr == NR_TUXCALL:
                    tracer.respond(notification.id, value=notification.args[0] * 2)
                    answered = True
                else:
                    tracer.respond(notification.id, continue_=True)
        await trio.lowlevel.wait_readable(tracer.status_fd())
    assert os.read(read_end, 100) == b"10 0\n"
    os.close(read_end)
    assert tracer.wait_status() == 0
