"""Helpers for the reliability tests: bash scripts run in `vufuse run` as a user would.

Scripts get $PY (this Python), $VUFUSE (the console script), $HOSTILE (the scripted daemon),
$MEMFS and $HELLO (pyfuse3 examples), $HERE (this directory) and shell functions:
``mount_hostile DIR`` (background daemon logging to DIR.log, waits until mounted),
``wait_for TEXT FILE`` (bounded), ``errno_of CMD...`` (prints the errno name of a failing
Python os call).  Every run is bounded; the session kills whatever a script leaves behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VUFUSE = str(Path(sys.executable).parent / "vufuse")
RUN_TIMEOUT = 120.0

PRELUDE = """\
set -u
wait_for() {  # TEXT FILE: until FILE contains TEXT (about 20 s at most)
    for _ in $(seq 400); do grep -q -- "$1" "$2" 2>/dev/null && return 0; sleep 0.05; done
    echo "TIMEOUT waiting for '$1' in $2"; return 1
}
wait_count() {  # TEXT FILE N: until FILE has N lines containing TEXT (about 20 s at most)
    for _ in $(seq 400); do
        [ "$(grep -c -- "$1" "$2" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.05
    done
    echo "TIMEOUT waiting for $3 x '$1' in $2"; return 1
}
mount_hostile() {  # DIR: the scripted daemon at DIR, its request log in DIR.log
    mkdir -p "$1"; : > "$1.log"
    "$PY" "$HOSTILE" "$1" "$1.log" &
    wait_for mounted "$1.log"
}
"""


@dataclass
class Run:
    """What a session printed (stdout and stderr together) and how it ended."""

    status: int
    output: str


def environment(**extra: str) -> dict[str, str]:
    """The environment of a session started by the tests."""
    env = {k: v for k, v in os.environ.items() if k != "VUFUSE_SESSION"}
    env.update(
        PY=sys.executable, VUFUSE=VUFUSE, HERE=str(HERE), HOSTILE=str(HERE / "hostile_daemon.py"),
        MEMFS=str(REPO / "examples" / "fs" / "memfs.py"),
        HELLO=str(REPO / "examples" / "fs" / "hello.py"),
        PATH="/usr/sbin:/usr/bin:/sbin:/bin", PYTHONPATH=str(REPO),
    )  # fmt: skip
    env.update(extra)
    return env


def start_session(script: str, cwd: Path, *options: str, **extra: str) -> subprocess.Popen[bytes]:
    """Start `vufuse run OPTIONS -- bash SCRIPT` in its own process group."""
    path = cwd / "script.sh"
    path.write_text(PRELUDE + script)
    return subprocess.Popen(
        [VUFUSE, "run", *options, "--", "bash", str(path)], cwd=cwd, env=environment(**extra),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[bytes], timeout: float = RUN_TIMEOUT) -> Run:
    """Wait for a session (bounded: on expiry its whole process group is killed)."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"session timed out after {timeout} s:\n{output.decode()}") from None
    return Run(process.returncode, output.decode(errors="replace"))


def run_session(script: str, cwd: Path, *options: str, timeout: float = RUN_TIMEOUT,
                **extra: str) -> Run:  # fmt: skip
    """Run a bash script in a session to its end."""
    return finish(start_session(script, cwd, *options, **extra), timeout)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


#: What the scripted daemon's names give (probe.py), as on the kernel -- except the four
#: header lies, where the kernel leaves the caller waiting (docs/decisions.md D14).
EXPECTED_REPLIES = {
    "stat:good": "ok -rw-r--r--",
    "stat:bad-unique": "ok -rw-r--r--",  # the stray reply is dropped, the right one taken
    "stat:short": "EIO",
    "stat:oversized": "EIO",
    "stat:lie-short": "EIO",  # kernel: waits for ever
    "stat:lie-long": "EIO",  # kernel: waits for ever
    "stat:err-range": "EIO",  # kernel: waits for ever
    "stat:err-positive": "EIO",  # kernel: waits for ever
    "stat:bad-mode": "EIO",
    "stat:huge-size": "EIO",
    "stat:zero-nodeid": "ENOENT",  # a negative entry, not an error
    "stat:flip": "EIO",  # GETATTR says another type: the inode is bad
    "list:slashdir": "EIO",
    "list:nuldir": "ok a",  # the kernel hands the name over; getdents readers stop at the NUL
    "read:good": "ok good data",
}

#: The kernel's outcomes of `hostile_tracee.py MNT calls` on a memfs mount.
KERNEL_CALLS = """\
openat-bad-path EFAULT
stat-bad-buffer EFAULT
statx-bad-buffer EFAULT
fstat-bad-buffer EFAULT
read-bad-buffer EFAULT
pread-bad-buffer EFAULT
write-bad-buffer EFAULT
getdents-bad-buffer EFAULT
readlink-bad-buffer EFAULT
rename-bad-path EFAULT
link-bad-path EFAULT
getdents-after-fault ok
read-huge ok 10
readlink-huge ok 4
getxattr-huge ok 1
setxattr-huge E2BIG
lseek-far ok 4611686018427387904
read-past-end ok 0
renameat2-flags EINVAL
lseek-whence EINVAL
open-tmpfile-rdonly EINVAL
fcntl-cmd EINVAL
faccessat2-flags EINVAL
statx-flags EINVAL
utimensat-nsec EINVAL
fallocate-mode EOPNOTSUPP
flock-op EINVAL
setxattr-flags EINVAL
path-4095 ok
path-4096 ENAMETOOLONG
name-256 ENOENT
name-255 ENOENT
still-reads 0123456789
"""
