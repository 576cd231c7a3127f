"""A cwd inside a mount (issue 6): a removed directory as cwd (getcwd ENOENT, "(deleted)");
rmdir of a mountpoint and a plain unmount are EBUSY; after
a lazy unmount the cwd keeps working, getcwd fails with ENOENT ("(unreachable)" from the
syscall), /proc/self/cwd reads the path below the detached root and `..` from that root
stays there; the cwd is inherited over fork and exec, not shared with a vfork child, and
shared with a CLONE_FS child.  Every expected line is what the same script prints as root on
kernel FUSE (passthrough_ll).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

CWD_SHARE = Path(__file__).with_name("cwd_share.c")

LAZY = r"""
B=$PWD
mkdir -p src/sub mnt && echo data > src/sub/f
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
d=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
rmdir mnt 2>&1 | sed 's/^.*: //'; echo "rmdir rc=${PIPESTATUS[0]}"
mkfifo "$B/go" "$B/done" "$B/ready"
(
  cd mnt/sub || exit 1
  echo "in: $(/bin/pwd | sed "s#$B#B#") $(readlink /proc/self/cwd | sed "s#$B#B#")"
  echo x > "$B/ready"
  read x < "$B/go"
  echo "after: $(/bin/pwd 2>&1) | $(readlink /proc/self/cwd)"
  /usr/bin/python3 -c 'import os; print("getcwd:", os.getcwd())' 2>&1 | grep -o 'getcwd.*\|Errno.*'
  echo "cat: $(cat f 2>&1)"
  echo "ls: $(ls)"
  cd .. 2>/dev/null; echo "up: $(readlink /proc/self/cwd) $(ls)"
  cd .. 2>/dev/null; echo "up2: $(readlink /proc/self/cwd) $(ls)"
  echo x > "$B/done"
) &
sub=$!
read r < "$B/ready"
fusermount3 -u mnt 2>&1 | sed 's/^.*: //'; echo "umount busy rc=${PIPESTATUS[0]}"
fusermount3 -u -z mnt; echo "lazy rc=$?"
echo "still listed: $(grep -c " $B/mnt " /proc/self/mounts)"
echo x > "$B/go"
read y < "$B/done"
wait $sub
wait $d; echo "daemon rc=$?"
"""

REMOVED = r"""
B=$PWD
mkdir -p src/sub mnt
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
d=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
(
  cd mnt/sub && rmdir ../sub && echo "rmdir ok"
  echo "cwd link: $(readlink /proc/self/cwd | sed "s#$B#B#")"
  /usr/bin/python3 -c 'import os; print(os.getcwd())' 2>&1 | tail -1
  touch x 2>&1 | sed 's/^.*: //'
  echo "ls: $(ls -a)"
  cd ..; echo "up: $(readlink /proc/self/cwd | sed "s#$B#B#")"
  mkdir sub && cd sub && echo "new sub: $(readlink /proc/self/cwd | sed "s#$B#B#")"
)
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $d; echo "daemon rc=$?"
"""

SHARE = r"""
mkdir -p src/sub mnt && echo data > src/sub/f
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
d=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
./cwd_share "$PWD/mnt"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $d; echo "daemon rc=$?"
"""


def test_lazy_unmount_under_a_cwd(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    run = sessions.run(LAZY, timeout=120)
    assert run.status == 0, run.output
    quotes = str.maketrans("‘’", "''")  # coreutils' quotes follow the locale
    assert [line.translate(quotes) for line in run.lines()] == [
        "Device or resource busy", "rmdir rc=1",
        "in: B/mnt/sub B/mnt/sub",
        "Device or resource busy", "umount busy rc=1",
        "lazy rc=0", "still listed: 0",
        "after: /bin/pwd: couldn't find directory entry in '../..' with matching i-node | /sub",
        "Errno 2] No such file or directory",
        "cat: data", "ls: f",
        "up: / sub", "up2: / sub",
        "daemon rc=0",
    ], run.output


def test_cwd_in_a_removed_directory(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    run = sessions.run(REMOVED, timeout=120)
    assert run.status == 0, run.output
    assert run.lines() == [
        "rmdir ok", "cwd link: B/mnt/sub (deleted)",
        "FileNotFoundError: [Errno 2] No such file or directory",
        "No such file or directory", "ls: ", "up: B/mnt", "new sub: B/mnt/sub",
        "unmount rc=0", "daemon rc=0",
    ], run.output


def test_cwd_over_fork_vfork_clone_fs_and_exec(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    compiler = shutil.which("gcc")
    if compiler is None:
        pytest.skip("gcc is needed")
    subprocess.run([compiler, "-Wall", "-o", str(sessions.root / "cwd_share"), str(CWD_SHARE)],
                   check=True)
    run = sessions.run(SHARE, timeout=120)
    assert run.status == 0, run.output
    assert [line for line in run.lines() if not line.startswith("Ignoring invalid")] == [
        "parent: cwd B/sub f=data",
        "fork child: cwd B/sub f=data",
        "after vfork child's chdir: cwd B/sub f=data",
        "after CLONE_FS child's chdir ..: cwd B f=-",
        "data",
        "exec'd cat rc=0",
        "unmount rc=0", "daemon rc=0",
    ], run.output


FILES = r"""
mkdir -p src mnt && echo abcdefgh > src/f
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
d=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
./files_share "$PWD/mnt"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $d; echo "daemon rc=$?"
cat src/f
"""


def test_clone_files_shares_virtual_fds(sessions: Sessions) -> None:
    """An fd table shared with CLONE_FILES: a virtual fd opened by one process is the
    other's; a close by one is seen by both (lines as on kernel FUSE)."""
    libfuse_example("passthrough_ll")
    compiler = shutil.which("gcc")
    if compiler is None:
        pytest.skip("gcc is needed")
    source = Path(__file__).with_name("files_share.c")
    subprocess.run([compiler, "-Wall", "-o", str(sessions.root / "files_share"), str(source)],
                   check=True)
    run = sessions.run(FILES, timeout=120)
    assert run.status == 0, run.output
    assert run.lines() == [
        "parent reads the child's fd: 4 abcd", "parent writes: 2",
        "child reads the parent's fd: 4 abcd", "after close: -1 Bad file descriptor",
        "unmount rc=0", "daemon rc=0", "abcdXYgh",
    ], run.output


RENAMED = r"""
B=$PWD
mkdir -p src/sub/deeper src/other mnt && echo d > src/sub/deeper/f
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
d=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
(
  cd mnt/sub/deeper && mv "$B/mnt/sub" "$B/mnt/other/moved" || exit 1
  /usr/bin/python3 -c 'import os; print("getcwd:", os.getcwd())' | sed "s#$B#B#"
  echo "link: $(readlink /proc/self/cwd | sed "s#$B#B#") f=$(cat f)"
  cd ..; echo "up: $(/bin/pwd | sed "s#$B#B#") $(ls)"
)
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $d; echo "daemon rc=$?"
"""


def test_cwd_follows_a_renamed_directory(sessions: Sessions) -> None:
    """A directory renamed while a cwd is below it: getcwd and /proc/self/cwd show the new
    path, as on kernel FUSE."""
    libfuse_example("passthrough_ll")
    run = sessions.run(RENAMED, timeout=120)
    assert run.status == 0, run.output
    assert run.lines() == [
        "getcwd: B/mnt/other/moved/deeper", "link: B/mnt/other/moved/deeper f=d",
        "up: B/mnt/other/moved deeper", "unmount rc=0", "daemon rc=0",
    ], run.output
