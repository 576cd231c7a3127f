"""Calls on the file itself through a low-fd stand-in (docs/decisions.md D29).

GNU touch reopens its file onto fd 0 and runs futimens(0, ...); a shell's `exec 0<> f`
does the same for any program.  Below FD_BASE a virtual file is a memfd stand-in (D7), and
those calls must still act on the file, as on the kernel: its times, mode, size and data
reach the daemon (the passthrough daemon's backing directory shows them).  Every form runs
on a real directory and on the mount in one session, and the outputs must be the same; the
root pass runs the same workload on kernel FUSE.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2ehelp import LIBFUSE, ON_REF_AND_MOUNT, PRELUDE, REPO, RW_DAEMONS, Sessions, libfuse_example

pytestmark = pytest.mark.e2e

WORKLOAD = r"""
work() (
    cd "$1" || exit 1
    echo data > f; echo r > refr
    touch -d '2001-01-01 00:00:00' f; stat -c 'dated %Y %X' f
    touch -d '2003-03-03 03:03:03.5' refr; touch -r refr f; stat -c 'from ref %y %x' f
    touch -m -d '2004-04-04' f; stat -c 'mtime only %Y' f
    touch -a -d '2005-05-05' f; stat -c 'atime only %X' f
    before=$(date +%s); touch f; after=$(date +%s)
    m=$(stat -c %Y f); a=$(stat -c %X f)
    if [ "$m" -ge "$before" ] && [ "$m" -le "$after" ] && [ "$a" -ge "$before" ] &&
       [ "$a" -le "$after" ]; then echo "touched now"; else echo "not now: $m $a"; fi
    # make sees what touch did
    printf 'out: in\n\tcp in out\n' > Makefile
    echo one > in; make -s; cat out
    make -q; echo "up to date: $?"
    touch -d '2000-01-01' out; make -q; echo "stale after touch -d out: $?"
    echo two > in; touch -d '1999-01-01' in; make -q; echo "fresh after old in: $?"
    touch in; make -q; echo "stale after touch in: $?"
    make -s; cat out; make -q; echo "rebuilt: $?"
    # a program's own calls on fd 0 opened by the shell
    printf 'hello world\n' > g
    exec 0<> g
    "$PY" -c '
import os
os.fchmod(0, 0o640)
def attempt(step):
    try:
        return repr(step())
    except OSError as failure:
        return errno.errorcode[failure.errno]
import errno
with open("xa", "w") as out:  # the real directory may differ: compared with kernel FUSE
    out.write(" ".join((
        attempt(lambda: os.setxattr(0, "user.k", b"v")),
        attempt(lambda: os.getxattr("g", "user.k")),
        attempt(lambda: "user.k" in os.listxattr(0)),
        attempt(lambda: os.getxattr(0, "user.k")),
        attempt(lambda: os.removexattr(0, "user.k")),
        attempt(lambda: os.getxattr("g", "user.k")))))
os.fchown(0, os.getuid(), os.getgid())
os.write(0, b"HE")
os.ftruncate(0, 5)
os.fsync(0)
os.fdatasync(0)
os.utime(0, ns=(1_000_000_000_123_456_789, 1_100_000_000_987_654_321))
st = os.fstat(0)
print("fstat", oct(st.st_mode & 0o7777), st.st_size, st.st_atime_ns, st.st_mtime_ns)
os.lseek(0, 0, os.SEEK_SET)
print("reads", os.read(0, 100))
print("statfs of the file", os.fstatvfs(0).f_blocks == os.statvfs(".").f_blocks)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
AT_EMPTY_PATH = 0x1000
assert libc.syscall(452, 0, b"", 0o604, AT_EMPTY_PATH) == 0, ctypes.get_errno()  # fchmodat2
assert libc.fchownat(0, b"", os.getuid(), os.getgid(), AT_EMPTY_PATH) == 0, ctypes.get_errno()
times = (ctypes.c_long * 4)(1_200_000_000, 5, 1_300_000_000, 7)
assert libc.utimensat(0, b"", times, AT_EMPTY_PATH) == 0, ctypes.get_errno()
print("empty path", oct(os.stat("g").st_mode & 0o777), os.stat("g").st_mtime_ns,
      oct(os.fstat(0).st_mode & 0o777))
os.fchmod(0, 0o640)
os.posix_fallocate(0, 0, 9)
os.ftruncate(0, 7)
print("after fallocate", os.fstat(0).st_size)
'
    exec 0</dev/null
    stat -c 'g %a %s' g; od -c g
    # futimens through a write-only description with pending writes: the times win
    exec 3> h; echo new >&3
    "$PY" -c 'import os; os.utime(3, (86400, 172800))'
    exec 3>&-
    stat -c 'h %s %X %Y' h; cat h
)
@ON_BOTH@
cat mnt.out
echo "xattrs: $(cat mnt/xa)"
stat -c '%n %a %s %X %Y' mnt/f mnt/g mnt/h mnt/in mnt/out | sed 's/^mnt/X/' > mnt.stat
if [ -d src ] && [ -e src/f ]; then
    (stat -c '%n %a %s %X %Y' src/f src/g src/h src/in src/out | sed 's/^src/X/' > src.stat)
    diff mnt.stat src.stat && echo "backing agrees"
fi
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""
WORKLOAD = WORKLOAD.replace("@ON_BOTH@\n", ON_REF_AND_MOUNT)

EXPECTED = (
    "ref rc=0", "mnt rc=0", "same output", "touched now", "dated 978307200 978307200",
    "mtime only 1081036800", "atime only 1115251200", "up to date: 0",
    "stale after touch -d out: 1", "fresh after old in: 0", "stale after touch in: 1",
    "rebuilt: 0", "fstat 0o640 5 1000000000123456789 1100000000987654321",
    "reads b'HEllo'", "statfs of the file True",
    "empty path 0o604 1300000000000000007 0o604", "after fallocate 7", "h 4 86400 172800",
    "unmount rc=0", "daemon rc=0",
)

#: fsetxattr, getxattr by path, flistxattr, fgetxattr, fremovexattr, getxattr by path again:
#: as kernel FUSE answers them (passthrough_ll keeps no xattrs without -o xattr).
XATTRS = {
    "memfs.py": "None b'v' True b'v' None ENODATA",
    "passthrough_ll": " ".join(["ENOTSUP"] * 6),
}


@pytest.mark.parametrize("daemon", sorted(RW_DAEMONS))
def test_calls_on_a_stand_in_act_on_the_file(sessions: Sessions, daemon: str) -> None:
    if daemon == "passthrough_ll":
        libfuse_example(daemon)
    run = sessions.run(WORKLOAD.replace("@START@", RW_DAEMONS[daemon]), timeout=120)
    assert run.status == 0, run.output
    for line in (*EXPECTED, f"xattrs: {XATTRS[daemon]}"):
        assert line in run.lines(), run.output
    if daemon == "passthrough_ll":
        assert "backing agrees" in run.lines(), run.output


@pytest.mark.kernel
@pytest.mark.parametrize("daemon", sorted(RW_DAEMONS))
def test_the_same_on_kernel_fuse(tmp_path: Path, daemon: str) -> None:
    """The reference (root pass): the workload on kernel FUSE prints the same lines."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.skip("needs root, /dev/fuse and fusermount3")
    if daemon == "passthrough_ll":
        libfuse_example(daemon)
    script = tmp_path / "script.sh"
    prelude = PRELUDE.format(python=sys.executable, libfuse=LIBFUSE,
                             examples=REPO / "examples" / "fs")
    script.write_text(prelude + WORKLOAD.replace("@START@", RW_DAEMONS[daemon]))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, start_new_session=True, env=env)
    lines = run.stdout.splitlines()
    try:
        for line in (*EXPECTED, f"xattrs: {XATTRS[daemon]}",
                     *(("backing agrees",) if daemon == "passthrough_ll" else ())):
            assert line in lines, run.stdout + run.stderr
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(tmp_path / "mnt")], check=False,
                       capture_output=True)
