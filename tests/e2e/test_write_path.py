"""The write path (issue 5): unmodified daemons that write, driven by ordinary programs.

The same workload runs on the mount and on a real directory inside one session; what it
printed and the trees it left (``diff -r``) must be the same.  Shell redirection into a mount
is covered by test_redirection.py; here python3 creates and appends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from e2ehelp import RW_DAEMONS, Sessions, libfuse_example

pytestmark = pytest.mark.e2e

WORKLOAD = r"""
work() (
    cd "$1" || exit 1
    python3 - <<'PY'
import os
fd = os.open("f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b"one\n")
os.close(fd)
fd = os.open("f", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"two\n")
print("append at", os.lseek(fd, 0, os.SEEK_CUR))
os.close(fd)
fd = os.open("t", os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o666)
os.pwrite(fd, b"x", 100000)
os.ftruncate(fd, 50)
print("size", os.fstat(fd).st_size)
os.close(fd)
PY
    mv f g && chmod 640 g && mkdir -p d/e/f && cp g d/e/f/copy && ln -s g sym && ln g hard
    tar xf "$2" && cp -a x x2 && mv x2/y x2/z && rm -r d && rmdir x2/empty
    touch -h -d 2001-02-03T04:05:06 g
    stat -c '%A %s %h %n' g hard sym t | sort -k4
    stat -c '%Y' g
    cat g hard
    find . | sort
)
mkdir -p ref src mnt
{start} 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
work "$PWD/ref" "$PWD/a.tar" > ref.out 2>&1; echo "ref rc=$?"
work "$PWD/mnt" "$PWD/a.tar" > mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
diff -r --no-dereference ref mnt && echo "same tree"
cat mnt.out
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""

DAEMONS = {
    **RW_DAEMONS,
    "passthrough_ll-writeback": ('"$LIBFUSE/passthrough_ll" -f -o writeback -o source="$PWD/src" '
                                 '"$PWD/mnt"'),
}


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_write_workload(sessions: Sessions, daemon: str) -> None:
    if daemon.startswith("passthrough_ll"):
        libfuse_example("passthrough_ll")
    source = sessions.root / "tarsrc" / "x"
    (source / "y").mkdir(parents=True)
    (source / "empty").mkdir()
    (source / "y" / "data").write_bytes(b"payload\n" * 5000)
    (source / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "run.sh").chmod(0o755)
    (source / "ln").symlink_to("run.sh")
    subprocess.run(["tar", "cf", str(sessions.root / "a.tar"), "-C", str(source.parent), "x"],
                   check=True)
    run = sessions.run(WORKLOAD.format(start=DAEMONS[daemon]))
    assert run.status == 0, run.output
    for line in ("ref rc=0", "mnt rc=0", "same output", "same tree", "append at 8",
                 "size 50", "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output


# --- libfuse's own syscall test ----------------------------------------------------------------
SYSCALLS = r"""
mkdir -p {src} {mnt}
{start} 2>{root}/daemon.err &
daemon=$!
wait_mounted {mnt} || {{ cat {root}/daemon.err; exit 1; }}
"$LIBFUSE/test_syscalls" {work} :{src}; echo "test_syscalls rc=$?"
fusermount3 -u {mnt}; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""

SYSCALL_DAEMONS = {
    "passthrough_ll": '"$LIBFUSE/passthrough_ll" -f -o source={src} {mnt}',
    "passthrough_ll-writeback": '"$LIBFUSE/passthrough_ll" -f -o writeback -o source={src} {mnt}',
    # passthrough_hp takes the writeback cache by default
    "passthrough_hp": '"$LIBFUSE/passthrough_hp" --foreground {src} {mnt}',
    # High-level libfuse mirrors "/": the test runs in the source's image under the mount.
    "passthrough": '"$LIBFUSE/passthrough" -f {mnt}',
    "passthroughfs.py": '"$PY" "$EXAMPLES/passthroughfs.py" {src} {mnt}',
}

NON_ROOT_SUBTESTS = 66
"""libfuse 3.14's test_syscalls runs 66 subtests for a non-root user, 58 for root."""

_SUBTEST = re.compile(r"^\s*(\d+) \[(.*)\] (.*)$")


def _kernel_failures(daemon: str) -> dict[int, list[str]]:
    """Subtests that fail on kernel FUSE too (measured on Linux 6.18, the daemon as an
    ordinary user on a mount made for it, and as root).  passthrough_ll -o writeback and
    passthrough_hp (writeback by default) open O_WRONLY files O_RDWR themselves (the
    writeback cache may read a page to complete a partial write), so an O_WRONLY open of a
    mode 0200 file is EACCES for a non-root daemon (docs/decisions.md D24); passthrough_hp
    also fails open(+, ..., 0000) with ENOENT, as root too."""
    if not os.geteuid() and daemon.endswith("-writeback"):
        return {}
    denied = {53: ["do_test_open_acc() - open: Permission denied"]}
    if daemon.endswith("-writeback"):
        return denied
    if daemon == "passthrough_hp":  # the same, and its own ENOENT for open(+, ..., 0000)
        missing = ["do_test_open() - open: No such file or directory"]
        return {27: missing, 28: missing, 29: missing, **(denied if os.geteuid() else {})}
    return {}


@pytest.mark.parametrize("daemon", sorted(SYSCALL_DAEMONS))
def test_libfuse_test_syscalls(sessions: Sessions, daemon: str) -> None:
    """libfuse 3.14's test/test_syscalls.c on three daemons: every subtest OK, exit 0.

    Short paths: the socket subtest binds at WORK/testsock, which must fit sun_path (108),
    and under high-level passthrough WORK is the mount followed by the source's path.
    """
    libfuse_example("test_syscalls")
    if daemon != "passthroughfs.py":
        libfuse_example(daemon.removesuffix("-writeback"))
    root = Path(tempfile.mkdtemp(prefix="vt.", dir="/tmp"))
    try:
        src, mnt = root / "s", root / "m"
        work = mnt / str(src).lstrip("/") if daemon == "passthrough" else mnt
        start = SYSCALL_DAEMONS[daemon].format(src=src, mnt=mnt)
        run = sessions.run(SYSCALLS.format(root=root, src=src, mnt=mnt, work=work, start=start),
                           timeout=180)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    subtests = {}
    for line in run.lines():
        match = _SUBTEST.match(line)
        if match:
            subtests.setdefault(int(match[1]), []).append(match[3].strip())
    failed = {n: verdicts for n, verdicts in subtests.items() if verdicts != ["OK"]}
    assert failed == _kernel_failures(daemon), run.output
    expected = NON_ROOT_SUBTESTS if os.geteuid() else NON_ROOT_SUBTESTS - 8
    assert sorted(subtests) == list(range(1, expected + 1)), run.output
    rc = "test_syscalls rc=1" if failed else "test_syscalls rc=0"
    for line in (rc, "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output


# --- the writeback cache at the end of a session ---------------------------------------------
HELD_OPEN = r"""
mkdir -p src mnt
"$LIBFUSE/passthrough_ll" -f -o writeback -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
python3 -c '
import os, sys, time
fd = os.open("mnt/held", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"written, never closed\n")
open("ready", "w").close()
time.sleep(1000)
' &
for _ in $(seq 400); do [ -e ready ] && break; sleep 0.05; done
stat -c 'in the source: %s bytes' src/held
"""


def test_session_end_writes_back_what_an_open_file_left_dirty(sessions: Sessions) -> None:
    """A process still holding a written file when the session ends: its dirty pages reach
    the daemon before the mount goes (the kernel would write them when the process dies)."""
    libfuse_example("passthrough_ll")
    run = sessions.run(HELD_OPEN)
    assert run.status == 0, run.output
    # Written back lazily while the session ran (the writeback cache holds them) ...
    assert "in the source: 0 bytes" in run.lines(), run.output
    # ... and at the session's end.
    assert (sessions.root / "src" / "held").read_bytes() == b"written, never closed\n"
