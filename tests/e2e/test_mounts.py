"""The mount table as programs see it, two mounts at once, busy and lazy unmounts, errors."""

from __future__ import annotations

import os

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

HELLO_LL = '"$LIBFUSE/hello_ll" -f "$PWD/{mnt}" 2>{mnt}.err &'


def test_mountinfo_findmnt_df(sessions: Sessions) -> None:
    """/proc/self/mountinfo, /proc/mounts, /etc/mtab, /proc/PID/mountinfo, findmnt,
    mountpoint, os.path.ismount and stat -f all see the mount, in the kernel's format."""
    libfuse_example("hello_ll")
    run = sessions.run(f"""\
mkdir mnt
{HELLO_LL.format(mnt="mnt")}
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
ls mnt >/dev/null
echo "== dev"; stat -c '%Hd:%Ld' mnt
echo "== mountinfo"; grep " $PWD/mnt " /proc/self/mountinfo
echo "== daemon mountinfo"; grep -c " $PWD/mnt " /proc/$daemon/mountinfo
echo "== thread-self"; grep -c " $PWD/mnt " /proc/thread-self/mountinfo
echo "== mounts"; grep " $PWD/mnt " /proc/mounts
echo "== mtab"; grep " $PWD/mnt " /etc/mtab
echo "== findmnt"; findmnt -n -o TARGET,SOURCE,FSTYPE,OPTIONS "$PWD/mnt"
echo "== mountpoint"; mountpoint "$PWD/mnt"
echo "== ismount"; "$PY" -c 'import os, sys; print(os.path.ismount(sys.argv[1]))' "$PWD/mnt"
echo "== statfs"; stat -f -c '%t' mnt
echo "== end"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
grep -c " $PWD/mnt " /proc/self/mountinfo || true
""")
    output = run.output
    assert run.status == 0, output
    root = str(sessions.root)
    uid, gid = os.getuid(), os.getgid()
    dev = output.split("== dev\n")[1].split("\n")[0]
    info = output.split("== mountinfo\n")[1].split("\n")[0].split(" ")
    assert info[2] == dev and info[3] == "/" and info[4] == f"{root}/mnt"
    assert info[5] == "rw,nosuid,nodev,relatime" and info[6] == "-"
    assert info[7:] == ["fuse.hello_ll", "hello_ll", f"rw,user_id={uid},group_id={gid}"]
    assert int(info[0]) != int(info[1])
    assert output.split("== daemon mountinfo\n")[1].startswith("1\n")
    assert output.split("== thread-self\n")[1].startswith("1\n")
    options = f"rw,nosuid,nodev,relatime,user_id={uid},group_id={gid}"
    line = f"hello_ll {root}/mnt fuse.hello_ll {options} 0 0"
    assert output.split("== mounts\n")[1].split("\n")[0] == line
    assert output.split("== mtab\n")[1].split("\n")[0] == line
    assert output.split("== findmnt\n")[1].split("\n")[0].split() == [
        f"{root}/mnt", "hello_ll", "fuse.hello_ll",
        f"rw,nosuid,nodev,relatime,user_id={uid},group_id={gid}"]
    assert output.split("== mountpoint\n")[1].startswith(f"{root}/mnt is a mountpoint")
    assert output.split("== ismount\n")[1].startswith("True\n")
    assert output.split("== statfs\n")[1].startswith("65735546\n")
    assert "unmount rc=0" in output and "daemon rc=0" in output
    assert output.rstrip().endswith("0")  # gone from mountinfo


def test_statfs_numbers_from_daemon(sessions: Sessions) -> None:
    """statfs on a passthrough mount: FUSE's magic, the daemon's STATFS numbers; df works."""
    libfuse_example("passthrough_ll")
    (sessions.root / "source").mkdir()
    run = sessions.run("""\
mkdir mnt
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/source" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
echo "== mnt"; stat -f -c '%t %S %b %l' mnt
echo "== source"; stat -f -c '%S %b %l' source
echo "== df"; df -P mnt | tail -1
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
""")
    output = run.output
    assert run.status == 0, output
    magic, *numbers = output.split("== mnt\n")[1].split("\n")[0].split()
    assert magic == "65735546"
    assert numbers == output.split("== source\n")[1].split("\n")[0].split()
    df = output.split("== df\n")[1].split("\n")[0].split()
    assert df[0] == "passthrough_ll" and df[-1] == f"{sessions.root}/mnt"
    assert "daemon rc=0" in output


def test_two_mounts_at_once(sessions: Sessions) -> None:
    """pyfuse3's hello and libfuse's hello_ll side by side, each with its own st_dev."""
    libfuse_example("hello_ll")
    run = sessions.run(f"""\
mkdir one two
"$PY" "$EXAMPLES/hello.py" "$PWD/one" &
first=$!
{HELLO_LL.format(mnt="two")}
second=$!
wait_mounted "$PWD/one" && wait_mounted "$PWD/two" || exit 1
cat one/hello two/hello
echo "== devs"; stat -c '%d' one two . | sort -u | wc -l
echo "== lines"; grep -c -e " $PWD/one " -e " $PWD/two " /proc/self/mountinfo
fusermount3 -u "$PWD/one"; echo "one rc=$?"
cat two/hello
umount "$PWD/two"; echo "two rc=$?"
wait $first; echo "first daemon rc=$?"
wait $second; echo "second daemon rc=$?"
""")
    output = run.output
    assert run.status == 0, output
    assert output.count("Hello World!") == 2
    assert "Hello from vufuse's pure-Python pyfuse3!" in output
    assert output.split("== devs\n")[1].startswith("3\n")
    assert output.split("== lines\n")[1].startswith("2\n")
    for expected in ("one rc=0", "two rc=0", "first daemon rc=0", "second daemon rc=0"):
        assert expected in output.splitlines(), output


UMOUNT2 = """'import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.umount2(os.fsencode(sys.argv[1]), int(sys.argv[2]))
print("umount2 rc=%d errno=%s" % (rc, os.strerror(ctypes.get_errno()) if rc else 0))'"""


def test_busy_then_lazy_unmount(sessions: Sessions) -> None:
    """A cwd inside the mount: umount2 says EBUSY; umount -l detaches at once, the mount
    keeps serving the process inside, and the daemon ends when that process leaves."""
    libfuse_example("hello_ll")
    run = sessions.run(f"""\
mkdir mnt
top=$PWD
{HELLO_LL.format(mnt="mnt")}
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
(cd mnt && touch "$top/ready" && while [ ! -e "$top/go" ]; do sleep 0.05; done
 cat hello; echo "inside done") &
inner=$!
while [ ! -e ready ]; do sleep 0.05; done
"$PY" -c {UMOUNT2} "$PWD/mnt" 0
umount -l "$PWD/mnt"; echo "lazy rc=$?"
grep -q " $PWD/mnt " /proc/self/mounts || echo "gone from the table"
touch go
wait $inner
wait $daemon; echo "daemon rc=$?"
""")
    output = run.output
    assert run.status == 0, output
    lines = output.splitlines()
    assert "umount2 rc=-1 errno=Device or resource busy" in lines
    for expected in ("lazy rc=0", "gone from the table", "Hello World!", "inside done",
                     "daemon rc=0"):
        assert expected in lines, output


MOUNT_ERRORS = """\
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mnt = os.fsencode(sys.argv[1])
def mount(fstype, data):
    rc = libc.mount(b"test", mnt, fstype, ctypes.c_ulong(6), data)
    return errno.errorcode[ctypes.get_errno()] if rc else "ok"
fd = os.open("/dev/fuse", os.O_RDWR)
print("device fd", fd)
ids = "user_id=%d,group_id=%d" % (os.getuid(), os.getgid())
print("unknown option", mount(b"fuse", b"fd=%d,rootmode=40000,%s,bogus" % (fd, ids.encode())))
print("no rootmode", mount(b"fuse", b"fd=%d,%s" % (fd, ids.encode())))
r, w = os.pipe()
print("not a device", mount(b"fuse", b"fd=%d,rootmode=40000,%s" % (r, ids.encode())))
if os.getuid() != 0:
    print("tmpfs", mount(b"tmpfs", b""))
print("fsopen", "ok" if libc.syscall(430, b"fuse", 0) >= 0 else errno.errorcode[ctypes.get_errno()])
print("mount", mount(b"fuse.test", b"fd=%d,rootmode=40000,%s,max_read=8192" % (fd, ids.encode())))
print("again", mount(b"fuse", b"fd=%d,rootmode=40000,%s" % (fd, ids.encode())))
with open("/proc/self/mountinfo") as info:
    print("line", [l.split(" - ")[1].strip() for l in info if sys.argv[1] + " " in l])
print("umount2", libc.umount2(mnt, 0))
"""


def test_mount_errors_and_no_daemon(sessions: Sessions) -> None:
    """mount(2) data errors are EINVAL as the kernel's; other types EPERM (unprivileged);
    fsopen ENOSYS; a mount whose daemon never answers INIT still unmounts."""
    (sessions.root / "errors.py").write_text(MOUNT_ERRORS)
    run = sessions.run("""\
mkdir mnt
"$PY" errors.py "$PWD/mnt"; echo "rc=$?"
""")
    output = run.output
    assert run.status == 0, output
    lines = output.splitlines()
    assert "device fd 3" in lines
    assert "unknown option EINVAL" in lines and "no rootmode EINVAL" in lines
    assert "not a device EINVAL" in lines
    if os.getuid() != 0:
        assert "tmpfs EPERM" in lines
    assert "fsopen ENOSYS" in lines
    assert "mount ok" in lines and "again EINVAL" in lines
    uid, gid = os.getuid(), os.getgid()
    assert f"line ['fuse.test test rw,user_id={uid},group_id={gid},max_read=8192']" in lines
    assert "umount2 0" in lines and "rc=0" in lines
