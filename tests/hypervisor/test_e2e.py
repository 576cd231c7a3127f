"""End-to-end: real programs in a traced session, against the same tree on a real directory.

The virtual tree (MemProvider at tmp/mnt) and the real tree (tmp/real) are built identical,
with the same times, so every observation must be equal once the root is renamed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sessionhelp import PYTHON, REPO, World, native, needs_tracer, run_session

pytestmark = [needs_tracer, pytest.mark.e2e]

PROBE = str(Path(__file__).with_name("probe.py"))
VUFUSE = [PYTHON, "-m", "vufuse.cli"]


def vufuse_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


async def test_python_client_sees_kernel_truth(world: World) -> None:
    expected = native([PYTHON, PROBE, str(world.real)])
    assert expected.status == 0, expected.stderr
    got = await run_session([PYTHON, PROBE, str(world.mnt)], world.mounts)
    assert got.status == 0, got.stderr
    assert json.loads(got.stdout) == json.loads(expected.stdout)


async def test_outside_the_mount_is_untouched(world: World) -> None:
    expected = native([PYTHON, PROBE, str(world.real)])
    got = await run_session([PYTHON, PROBE, str(world.real)], world.mounts)
    assert got.status == 0, got.stderr
    assert json.loads(got.stdout) == json.loads(expected.stdout)


COREUTILS_SCRIPT = r"""
cd "$1" || exit 9
R="$1"
cat hello.txt dir/a | md5sum
ls -la --time-style=full-iso . dir dir/sub | sed "s|$R|ROOT|g"
stat -c '%n %s %F %a %h %U %G %Y' hello.txt dir dir/a dir/sub/deep link dirlink dangling secret
stat -L -c '%n %s %F' link dirlink
readlink link dirlink up dangling; echo "readlink $?"
readlink -f link dirlink/sub/deep | sed "s|$R|ROOT|g"
realpath link dirlink/sub up | sed "s|$R|ROOT|g; s|$(dirname "$R")|PARENT|g"
cat missing; echo "cat missing $?"
cat dir; echo "cat dir $?"
cat loop; echo "cat loop $?"
cat hello.txt/x; echo "cat notdir $?"
cat secret > /dev/null; echo "cat secret $?"
head -c 5 dir/a; echo
tail -c 3 hello.txt
wc -c dir/a dir/empty hello.txt
find . -print | sort
find . -type f -newer dir/sub | sort
test -d dirlink && echo dirlink-is-dir
test -L link && echo link-is-link
test -r secret && echo secret-readable
sh -c 'cd dir/sub && pwd && ls && cd .. && pwd && cat sub/deep' | sed "s|$R|ROOT|g"
(cd dir/sub && cat ../../../real/hello.txt && ls ../../../../../../../../../.. | head -3)
(cd dirlink && pwd -P && pwd -L) | sed "s|$R|ROOT|g"
du -a dir | sort -k2
ls -d */ | sort
wc -c < dir/a
read line < hello.txt; echo "read: $line"
while read l; do echo "[$l]"; done < dir/sub/deep
exec 3< hello.txt; head -c 4 <&3; echo; cat <&3; exec 3<&-
cat < dir; echo "redirect dir $?"
"""


async def test_coreutils_see_kernel_truth(world: World) -> None:
    argv = ["sh", "-c", COREUTILS_SCRIPT, "sh"]
    expected = native([*argv, str(world.real)])
    got = await run_session([*argv, str(world.mnt)], world.mounts)
    assert (got.status, got.stderr.replace(str(world.mnt), "ROOT")) == (
        expected.status, expected.stderr.replace(str(world.real), "ROOT"))
    assert got.stdout.replace(str(world.mnt), "ROOT") == expected.stdout.replace(
        str(world.real), "ROOT")


VIRTUAL_ONLY = r"""
import errno, fcntl, os, sys
root = sys.argv[1]
def errname(f, *a):
    try:
        f(*a)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
p = os.path.join(root, "hello.txt")
print("create-missing-dir", errname(os.open, os.path.join(root, "no/new"), os.O_CREAT))
print("excl", errname(os.open, p, os.O_CREAT | os.O_EXCL))
print("mkdir", errname(os.mkdir, os.path.join(root, "dir")))
print("rmdir-file", errname(os.rmdir, p))
print("rename-out", errname(os.rename, p, "/tmp/x-vufuse-never"))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("access-w", "ok" if libc.access(p.encode(), 2) == 0 else errno.errorcode[ctypes.get_errno()])
fd = os.open(p, os.O_RDONLY)
print("fd-range", fd >= 512)
print("fd-link", os.readlink(f"/proc/self/fd/{fd}") == p, os.stat(f"/dev/fd/{fd}").st_size)
print("write", errname(os.write, fd, b"x"))
print("getfl", oct(fcntl.fcntl(fd, fcntl.F_GETFL)))
fd2 = os.dup(fd)
print("dup-range", fd2 >= 512 and fd2 != fd)
print("shared-offset", os.read(fd, 5), os.read(fd2, 5))
fd3 = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 600)
print("dupfd", fd3 >= 600, fcntl.fcntl(fd3, fcntl.F_GETFD))
os.dup2(fd, 700)
print("dup2", os.read(700, 100))
print("lseek", os.lseek(700, 0, os.SEEK_SET), os.read(fd3, 3))
print("fstat", os.fstat(fd3).st_size)
print("mmap", __import__("mmap").mmap(fd, 0, prot=1)[:5])
for f in (fd, fd2, fd3, 700):
    os.close(f)
print("closed", errname(os.fstat, fd))
d = os.open(os.path.join(root, "dir"), os.O_RDONLY | os.O_DIRECTORY)
print("read-dir", errname(os.read, d, 10))
print("statvfs-namemax", os.statvfs(root).f_namemax)
os.close(d)
import ctypes
buf = ctypes.create_string_buffer(120)
ctypes.CDLL(None).statfs(root.encode(), buf)
print("f_type", hex(int.from_bytes(buf.raw[:8], "little")))
print("xattr", errname(os.getxattr, p, "user.none"), os.listxattr(p))
"""


async def test_virtual_specific_answers(world: World) -> None:
    world.provider.nodes[2].xattrs[b"user.k"] = b"v"
    got = await run_session([PYTHON, "-c", VIRTUAL_ONLY, str(world.mnt)], world.mounts)
    assert got.status == 0, got.stderr
    lines = dict(line.split(" ", 1) for line in got.stdout.splitlines())
    assert lines == {
        "create-missing-dir": "ENOENT", "excl": "EEXIST", "mkdir": "EEXIST",
        "rmdir-file": "ENOTDIR", "rename-out": "EXDEV", "access-w": "ok",
        "fd-range": "True", "fd-link": "True 13", "write": "EBADF", "getfl": "0o100000",
        "dup-range": "True",
        "shared-offset": "b'hello' b', wor'", "dupfd": "True 1", "dup2": "b'ld\\n'",
        "lseek": "0 b'hel'", "fstat": "13", "mmap": "b'hello'", "closed": "EBADF",
        "read-dir": "EISDIR", "statvfs-namemax": "255", "f_type": "0x65735546",
        "xattr": "ENODATA ['user.k']",
    }
    # Every open file description got its RELEASE once the last copy was closed, every
    # close(2) a FLUSH with the process as lock owner (mmap.mmap closes a dup of its own),
    # every request its caller.
    assert len(world.provider.released) == len(world.provider.opened) == 2
    assert len(world.provider.flushes) == 6 and len(set(world.provider.flushes)) == 1
    caller = world.provider.callers[0]
    assert caller is not None and caller.uid == os.getuid() and caller.pid > 0


THREADS = r"""
import hashlib, os, sys, threading
root, out = sys.argv[1], sys.argv[2]
results = {}
def work(i):
    data = b""
    for _ in range(20):
        with open(os.path.join(root, "dir/a"), "rb") as f:
            data = f.read()
        with open(os.path.join(out, f"t{i}"), "wb") as f:
            f.write(data[: 100 * (i + 1)])
        with open(os.path.join(out, f"t{i}"), "rb") as f:
            results[i] = hashlib.md5(f.read() + data).hexdigest()
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(sorted(results.items()))
"""


async def test_eight_threads_doing_file_io(world: World, tmp_path: Path) -> None:
    (tmp_path / "o1").mkdir()
    (tmp_path / "o2").mkdir()
    expected = native([PYTHON, "-c", THREADS, str(world.real), str(tmp_path / "o1")])
    got = await run_session([PYTHON, "-c", THREADS, str(world.mnt), str(tmp_path / "o2")],
                            world.mounts)
    assert (got.status, got.stdout) == (expected.status, expected.stdout), got.stderr
    real_only = await run_session([PYTHON, "-c", THREADS, str(world.real), str(tmp_path / "o2")],
                                  world.mounts)
    assert real_only.stdout == expected.stdout


FORKS = r"""
n=0
for i in $(seq 1 150); do
  x=$(echo "$i" | tr 0-9 a-j | cat)
  n=$((n + ${#x}))
  ( : ) &
done
wait
echo "$n"; ls "$1" | wc -l; cat "$1/hello.txt"
"""


async def test_fork_heavy_script(world: World) -> None:
    expected = native(["sh", "-c", FORKS, "sh", str(world.real)])
    got = await run_session(["sh", "-c", FORKS, "sh", str(world.mnt)], world.mounts)
    assert (got.status, got.stdout) == (expected.status, expected.stdout), got.stderr


TOOLS = r"""
set -e
cd "$1"
printf 'all: out.txt\nout.txt: in.txt\n\tcp in.txt out.txt\n\techo built\n' > Makefile
echo data > in.txt
make -s
make -s
git init -q repo
cd repo
git config user.email t@e.st && git config user.name tester
echo hello > f && git add f && git commit -qm first
echo more >> f && git commit -qam second
git log --format=%s
git status --short
git rev-list --count HEAD
python3 -c 'import os; print(sum(range(10)), sorted(os.listdir(".")))'
"""


async def test_tools_on_real_files(world: World, tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    (tmp_path / "v").mkdir()
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    expected = subprocess.run(["sh", "-c", TOOLS, "sh", str(tmp_path / "n")], env=env,
                              capture_output=True, text=True)
    got = await run_session(["sh", "-c", TOOLS, "sh", str(tmp_path / "v")], world.mounts,
                            env=env)
    assert (got.status, got.stdout) == (expected.returncode, expected.stdout), got.stderr


def test_exit_status_and_signals() -> None:
    env = vufuse_env()
    assert subprocess.run([*VUFUSE, "run", "--", "sh", "-c", "exit 7"], env=env).returncode == 7
    killed = subprocess.run([*VUFUSE, "run", "--", "sh", "-c", "kill -TERM $$"], env=env)
    assert killed.returncode == 143
    assert subprocess.run([*VUFUSE, "run", "true"], env=env).returncode == 0
    inside = subprocess.run([*VUFUSE, "run", "--", "sh", "-c", 'echo "$VUFUSE_SESSION"'],
                            env=env, capture_output=True, text=True)
    assert inside.returncode == 0 and inside.stdout.strip() and not inside.stderr
    missing = subprocess.run([*VUFUSE, "run", "--", "/nonexistent/cmd"], env=env,
                             capture_output=True, text=True)
    assert missing.returncode == 127


def test_usage_errors() -> None:
    for argv in (["run"], ["run", "--"], [], ["bogus"]):
        done = subprocess.run([*VUFUSE, *argv], env=vufuse_env(), capture_output=True,
                              text=True)
        assert done.returncode == 2, argv
        assert done.stderr.startswith("vufuse: ") and done.stderr.count("\n") == 1, done.stderr


def test_stdin_passes_through() -> None:
    done = subprocess.run([*VUFUSE, "run", "--", "tr", "a-z", "A-Z"], input="hello\n",
                          env=vufuse_env(), capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "HELLO\n")


def _session_processes(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def test_nothing_survives_kill_9(tmp_path: Path) -> None:
    marker = f"VUFUSE_TEST_MARK={os.getpid()}_{time.monotonic_ns()}"
    env = vufuse_env()
    env["VUFUSE_TEST_MARK"] = marker.split("=", 1)[1]
    vufuse = subprocess.Popen(
        [*VUFUSE, "run", "--", "sh", "-c", "sleep 1000 & (sleep 1000 &) ; sleep 1000"], env=env
    )
    deadline = time.monotonic() + 10
    while len(_session_processes(marker)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_session_processes(marker)) >= 4
    vufuse.send_signal(signal.SIGKILL)
    vufuse.wait()
    deadline = time.monotonic() + 10
    while _session_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session_processes(marker) == []
    # Its runtime dir outlives it, until the next session sweeps it away.
    from hypervisor.session import remove_stale_runtime_dirs, runtime_base

    stale = os.path.join(runtime_base(), f"vufuse-{vufuse.pid}-")
    assert any(os.path.join(runtime_base(), n).startswith(stale)
               for n in os.listdir(runtime_base()))
    remove_stale_runtime_dirs(runtime_base())
    assert not any(os.path.join(runtime_base(), n).startswith(stale)
                   for n in os.listdir(runtime_base()))


def test_command_exit_kills_leftovers() -> None:
    marker = f"{os.getpid()}_{time.monotonic_ns()}"
    env = vufuse_env()
    env["VUFUSE_TEST_MARK"] = marker
    done = subprocess.run([*VUFUSE, "run", "--", "sh", "-c", "sleep 1000 & exit 3"], env=env,
                          timeout=30)
    assert done.returncode == 3
    time.sleep(0.2)
    assert _session_processes(f"VUFUSE_TEST_MARK={marker}") == []


def _foreground_is(terminal: int, cmdline: bytes) -> bool:
    """Whether the foreground process group of `terminal` is led by a `cmdline` process."""
    try:
        with open(f"/proc/{os.tcgetpgrp(terminal)}/cmdline", "rb") as leader:
            return leader.read() == cmdline
    except OSError:
        return False


def test_interactive_bash_job_control(tmp_path: Path) -> None:
    import pty
    import select

    env = vufuse_env()
    env["PS1"] = "PROMPT$ "
    env["TERM"] = "dumb"
    pid, master = pty.fork()
    if pid == 0:
        # A suite started in the background (`make test &`) ignores SIGINT, and bash hands
        # what it inherited on to its jobs: sleep would ignore the Ctrl-C below.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(PYTHON, [*VUFUSE, "run", "--", "bash", "--norc", "--noprofile", "-i"], env)
    transcript = b""

    def wait_for(token: bytes, timeout: float = 15) -> None:
        nonlocal transcript
        deadline = time.monotonic() + timeout
        while token not in transcript and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    transcript += os.read(master, 4096)
                except OSError:
                    break
        assert token in transcript, transcript

    wait_for(b"PROMPT$ ")
    os.write(master, b"sleep 100 &\n")
    wait_for(b"[1]")
    os.write(master, b"jobs; echo JOBS-DONE\n")
    wait_for(b"JOBS-DONE\r\n")
    os.write(master, b"sleep 100\n")
    # Ctrl-C once sleep is the terminal's foreground job (before that it would reach bash,
    # which ignores it, and sleep would run its 100 s): on a loaded machine that takes a while.
    deadline = time.monotonic() + 30
    while not _foreground_is(master, b"sleep\x00100\x00") and time.monotonic() < deadline:
        time.sleep(0.05)
    os.write(master, b"\x03")  # Ctrl-C reaches the foreground sleep, not vufuse
    os.write(master, b"echo after-ctrl-c $?\n")
    wait_for(b"after-ctrl-c 130")
    os.write(master, b"kill %1; exit 5\n")
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert os.WEXITSTATUS(status) == 5, transcript
    assert b"Running" in transcript


def test_dumpable_prctl_is_neutralised() -> None:
    code = (
        "import ctypes; libc = ctypes.CDLL(None);"
        " print(libc.prctl(4, 0, 0, 0, 0), libc.prctl(3, 0, 0, 0, 0))"
    )
    done = subprocess.run([*VUFUSE, "run", "--", PYTHON, "-c", code], env=vufuse_env(),
                          capture_output=True, text=True)
    assert done.stdout.split() == ["0", "1"], done.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


async def test_holds_for_o_path_and_cwd(world: World) -> None:
    """An O_PATH fd holds its object until its release; a cwd stand-in holds its directory
    for the session (the provider must not forget them: FUSE's FORGET)."""
    script = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1] + '/dir/a', os.O_PATH)\n"
        "os.close(fd)\n"
        "os.chdir(sys.argv[1] + '/dir/sub')\n"
        "print(open('deep').read(), end='')\n"
    )
    got = await run_session([PYTHON, "-c", script, str(world.mnt)], world.mounts)
    assert (got.status, got.stdout) == (0, "deep\n"), got.stderr
    provider = world.provider
    a = provider.nodes[provider.nodes[1].children[b"dir"]].children[b"a"]
    sub = provider.nodes[provider.nodes[1].children[b"dir"]].children[b"sub"]
    assert provider.holds.get(a) == 0  # held by the O_PATH fd, let go at its release
    assert provider.holds.get(sub) == 1  # the stand-in of a cwd
