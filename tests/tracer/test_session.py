"""Spawn, exit status, exec failures, fd hygiene and the keeper's kill sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hypervisor import _tracer

from .conftest import TEST_SPEC, run_script


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pids, timeout=5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.02)
    return alive


def test_exit_status(tracer):
    result = run_script(tracer, "sys.exit(7)")
    assert os.WIFEXITED(result.status) and os.WEXITSTATUS(result.status) == 7


def test_killed_by_signal_gives_raw_status(tracer):
    result = run_script(tracer, "import signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert os.WIFSIGNALED(result.status)
    assert os.WTERMSIG(result.status) == signal.SIGTERM


def test_spawn_returns_command_pid_and_keeper_is_its_parent(tracer):
    result = run_script(tracer, "report(os.getpid(), os.getppid())", kill=False)
    pid, ppid = map(int, result.lines[0].split())
    assert ppid == tracer.keeper_pid()
    assert pid != tracer.keeper_pid()


def test_exec_failure_is_127_with_message(tracer, capfd):
    env = [b"PATH=/nonexistent:/also-not-there"]
    tracer.spawn([b"no-such-command-vufuse"], env)
    deadline = time.monotonic() + 10
    while tracer.wait_status() is None and time.monotonic() < deadline:
        for notification in tracer.take():
            tracer.respond(notification.id, continue_=True)
        time.sleep(0.01)
    status = tracer.wait_status()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 127
    assert "vufuse: no-such-command-vufuse: No such file or directory" in capfd.readouterr().err


def test_exec_of_non_executable_is_126(tracer, tmp_path, capfd):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    tracer.spawn([str(script).encode()], [b"PATH=/usr/bin"])
    deadline = time.monotonic() + 10
    while tracer.wait_status() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    status = tracer.wait_status()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 126
    assert "Permission denied" in capfd.readouterr().err


def test_cwd_and_path_lookup(tracer, tmp_path):
    result = run_script(tracer, "report(os.getcwd())", cwd=str(tmp_path))
    assert result.lines == [str(tmp_path)]


def test_bad_cwd_raises(tracer, capfd):
    with pytest.raises(FileNotFoundError):
        tracer.spawn([sys.executable, "-c", "pass"], [], b"/nonexistent-dir-vufuse")
    capfd.readouterr()


def _inheritable_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                fds.add(int(name))
        except OSError:
            pass  # the directory fd listdir used
    return fds


def test_no_fd_leaks_into_tracee(tracer):
    inherited = _inheritable_fds()
    result = run_script(
        tracer,
        "fds = {}\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try: fds[int(fd)] = os.readlink('/proc/self/fd/' + fd)\n"
        "    except OSError: pass\n"
        "for fd, target in sorted(fds.items()):\n"
        "    if fd != RESULT_FD: report(f'{fd}={target}')",
    )
    leaked = {}
    for item in result.lines:
        fd, target = item.split("=", 1)
        if int(fd) not in inherited:
            leaked[int(fd)] = target
    # Only the fd os.listdir held open may be new.
    assert len(leaked) <= 1 and not any(
        "seccomp" in target or "eventfd" in target or "pidfd" in target
        for target in leaked.values()
    ), leaked


def test_signal_dispositions_are_restored(tracer):
    """Python ignores SIGPIPE and SIGXFSZ for itself; the command must get the defaults,
    and an empty signal mask (the keeper's blocked signals must not leak)."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    command = f"grep -E '^Sig(Ign|Blk)' /proc/self/status > /dev/fd/{write_end}"
    tracer.spawn([b"/bin/sh", b"-c", command.encode()], [b"PATH=/usr/bin:/bin"])
    os.close(write_end)
    output = b""
    while chunk := os.read(read_end, 4096):
        output += chunk
    os.close(read_end)
    fields = dict(line.split(":\t") for line in output.decode().splitlines())
    ignored = int(fields["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))
    assert int(fields["SigBlk"], 16) == 0


def test_kill_all_ends_daemonized_grandchild(tracer):
    script = textwrap.dedent(
        """
        import time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                report(os.getpid())
                os.close(RESULT_FD)
                time.sleep(60)
            os._exit(0)
        os.wait()
        """
    )
    result = run_script(tracer, script, kill=False)
    daemon = int(result.lines[0])
    assert _alive(daemon)
    with open(f"/proc/{daemon}/stat") as stat:
        assert int(stat.read().rsplit(")", 1)[1].split()[1]) == tracer.keeper_pid()
    tracer.kill_all()
    assert _wait_dead([daemon]) == []
    assert not _alive(tracer.keeper_pid())


OWNER = """
import os, sys, time
sys.path.insert(0, {root!r})
from hypervisor import _tracer
from tests.tracer.conftest import TEST_SPEC
tracer = _tracer.Tracer(TEST_SPEC, max_nr=450)
read_end, write_end = os.pipe()
os.set_inheritable(write_end, True)
child = '''
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write({{fd}}, b"%d\\\\n" % os.getpid())
        time.sleep(60)
    os._exit(0)
os.write({{fd}}, b"%d\\\\n" % os.getpid())
time.sleep(60)
'''.format(fd=write_end)
tracer.spawn([sys.executable, "-S", "-c", child], [], None)
os.close(write_end)
pids = b""
while pids.count(b"\\n") < 2:
    pids += os.read(read_end, 100)
print(tracer.keeper_pid(), *pids.decode().split(), flush=True)
time.sleep(60)
"""


def test_sigkill_of_owner_ends_the_session():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER.format(root=root)], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 3, pids
        assert all(_alive(pid) for pid in pids)
    finally:
        owner.kill()
        owner.wait()
    assert _wait_dead(pids) == [], "session outlived its owner"


def test_dropping_the_tracer_kills_the_session():
    tracer = _tracer.Tracer(TEST_SPEC, max_nr=450)
    pid = tracer.spawn([sys.executable, "-S", "-c", "import time; time.sleep(60)"], [])
    keeper = tracer.keeper_pid()
    del tracer
    assert _wait_dead([pid, keeper]) == []


JOB_CONTROL_DRIVER = """
import select, sys
sys.path.insert(0, {root!r})
from hypervisor import _tracer
from tests.tracer.conftest import TEST_SPEC
tracer = _tracer.Tracer(TEST_SPEC, max_nr=450)
tracer.spawn([b"bash", b"--norc", b"--noprofile", b"-i"],
             [b"PATH=/usr/bin:/bin", b"PS1=$ ", b"TERM=dumb"])
while tracer.wait_status() is None:
    select.select([tracer.status_fd(), tracer.fileno()], [], [], 1)
    for notification in tracer.take():
        tracer.respond(notification.id, continue_=True)
print("STATUS", tracer.wait_status(), flush=True)
tracer.kill_all()
"""


def test_interactive_bash_job_control():
    """Stdin/stdout/tty are the command's, process groups are untouched: bash -i can stop
    a job with Ctrl-Z, resume and kill it, and its exit status comes back."""
    import pty
    import select

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    pid, master = pty.fork()
    if pid == 0:
        driver = JOB_CONTROL_DRIVER.format(root=root)
        os.execv(sys.executable, [sys.executable, "-c", driver])
    output = b""

    def exchange(text: str, expect: bytes, timeout: float = 5.0) -> None:
        nonlocal output
        os.write(master, text.encode())
        deadline = time.monotonic() + timeout
        while expect not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
        assert expect in output, output

    try:
        exchange("", b"$ ")
        exchange("sleep 30\n", b"sleep 30")
        time.sleep(0.2)
        exchange("\x1a", b"Stopped")
        exchange("bg\n", b"sleep 30 &")
        exchange("kill %1; wait %1; echo rc=$?\n", b"rc=143")
        exchange("echo done-$((6*7))\n", b"done-42")
        exchange("exit 3\n", b"STATUS 768")
    finally:
        os.close(master)
        os.waitpid(pid, 0)


def test_keeper_holds_only_its_own_fds(tracer):
    """No stdio, no pipe of the command: a reader of the command's output sees EOF when the
    command ends, not when the keeper does."""
    result = run_script(tracer, "pass", kill=False)
    assert result.exit_code == 0
    keeper = tracer.keeper_pid()
    targets = {
        int(fd): os.readlink(f"/proc/{keeper}/fd/{fd}") for fd in os.listdir(f"/proc/{keeper}/fd")
    }
    assert len(targets) == 4, targets
    kinds = sorted(target.split(":")[0] for target in targets.values())
    assert kinds == ["anon_inode", "anon_inode", "pipe", "pipe"], targets


def test_spawn_twice_is_refused(tracer):
    run_script(tracer, "pass", kill=False)
    with pytest.raises(RuntimeError):
        tracer.spawn([sys.executable, "-c", "pass"], [])


def _cmdline(pid: int) -> str:
    """/proc/PID/cmdline as pgrep -f matches it: NULs read as spaces."""
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as comm:
        return comm.read().strip()


def test_keeper_does_not_look_like_vufuse(tracer):
    run_script(tracer, "pass", kill=False)
    keeper = tracer.keeper_pid()
    assert _comm(keeper) == "session-keeper"
    with open(f"/proc/{keeper}/cmdline", "rb") as cmdline:
        assert cmdline.read() == b"session-keeper\0"


# The owner calls itself vufuse, by name and by command line, as `vufuse run` does.
NAMED_OWNER = (
    "import ctypes\nctypes.CDLL(None).prctl(15, b'vufuse', 0, 0, 0)  # PR_SET_NAME\n" + OWNER
)


def test_pkill_of_vufuse_by_name_and_command_line_ends_the_session():
    """`pkill -9 vufuse` and `pkill -9 -f 'vufuse run'` (emulated on this test's own
    processes only: a real pkill would hit every vufuse on the machine) spare the keeper,
    which then sweeps the session."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    token = f"token-{os.getpid()}-{time.monotonic_ns()}"
    owner = subprocess.Popen(
        [sys.executable, "-c", NAMED_OWNER.format(root=root), "vufuse", "run", "--", token],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 3, pids
        session = [owner.pid, *pids]
        assert _comm(owner.pid) == "vufuse"
        by_name = [pid for pid in session if "vufuse" in _comm(pid)]
        by_command_line = [
            int(entry)
            for entry in os.listdir("/proc")
            if entry.isdigit() and _alive(int(entry)) and _matches(int(entry), token)
        ]
        assert by_name == [owner.pid]
        assert by_command_line == [owner.pid]
        for pid in {*by_name, *by_command_line}:
            os.kill(pid, signal.SIGKILL)
    finally:
        owner.kill()
        owner.wait()
    assert _wait_dead(pids) == [], "session outlived vufuse"


def _matches(pid: int, token: str) -> bool:
    try:
        return f"vufuse run -- {token}" in _cmdline(pid)
    except OSError:
        return False


def test_command_dies_with_the_keeper(tracer):
    """PR_SET_PDEATHSIG: a keeper killed on its own takes the command with it."""
    pid = tracer.spawn([sys.executable, "-S", "-c", "import time; time.sleep(60)"], [])
    keeper = tracer.keeper_pid()
    os.kill(keeper, signal.SIGKILL)
    assert _wait_dead([pid]) == []
