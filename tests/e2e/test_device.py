"""The daemon's side of /dev/fuse (issue 4): what it sees at unmount, and cloned devices.

After an unmount the kernel fails the daemon's reads of the device with ENODEV and its poll
reports POLLERR (fuse_dev_poll); libfuse's fuse_kern_unmount trusts that POLLERR and then
neither calls umount2 nor runs ``fusermount3 -u -z`` itself.  `device_probe.py` prints both
observations; the ``kernel`` test checks them on the real FUSE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example

PROBE = Path(__file__).with_name("device_probe.py")
UNMOUNT = {
    "fusermount3": 'fusermount3 -u "$PWD/mnt"',
    "umount2": f"{sys.executable} -c 'import ctypes,sys; "
               "sys.exit(ctypes.CDLL(None).umount2(sys.argv[1].encode(), 0))' \"$PWD/mnt\"",
}
PROBE_SCRIPT = """\
mkdir -p mnt
{python} {probe} "$PWD/mnt" > probe.out 2>&1 &
probe=$!
wait_mounted "$PWD/mnt" || {{ cat probe.out; exit 1; }}
stat -c %F mnt
{unmount}; echo "unmount rc=$?"
wait $probe; echo "probe rc=$?"
cat probe.out
"""


@pytest.mark.e2e
@pytest.mark.parametrize("route", sorted(UNMOUNT))
def test_device_after_unmount(sessions: Sessions, route: str) -> None:
    """mount(2) returns before INIT is answered and a stat made then waits for it; after
    the unmount read ENODEV, then poll POLLERR, and the daemon exits 0."""
    run = sessions.run(PROBE_SCRIPT.format(python=sys.executable, probe=PROBE,
                                           unmount=UNMOUNT[route]))
    assert run.status == 0, run.output
    assert run.lines()[:6] == ["directory", "unmount rc=0", "probe rc=0", "mounted",
                               "stat waits", "read ENODEV"], run.output
    # The kernel's is POLLERR alone; a hung-up socket adds POLLHUP (docs/decisions.md D3).
    assert run.lines()[6:] == ["poll POLLERR|POLLHUP", "stat said directory"], run.output


@pytest.mark.kernel
def test_device_after_unmount_on_kernel_fuse(tmp_path: Path) -> None:
    """The reference: the same probe on the real kernel FUSE (root)."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and the real /dev/fuse")
    script = "set -u\nwait_mounted() { for _ in $(seq 200); do grep -q \" $1 \" " \
             "/proc/self/mounts && return 0; sleep 0.05; done; return 1; }\n"
    script += PROBE_SCRIPT.format(python=sys.executable, probe=PROBE,
                                  unmount=UNMOUNT["fusermount3"])
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stdout.splitlines() == [
        "directory", "unmount rc=0", "probe rc=0", "mounted", "stat waits", "read ENODEV",
        "poll POLLERR", "stat said directory"], done.stdout + done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("daemon", ["hello_ll", "passthrough_ll"])
def test_libfuse_sees_the_unmount(sessions: Sessions, daemon: str) -> None:
    """After `fusermount3 -u`, libfuse's own unmount finds POLLERR on the device and stops
    there: the only umount2 of the session is fusermount3's (without POLLERR the daemon
    calls umount2(MNT_DETACH) and runs `fusermount3 -u -q -z`, which could unmount a mount
    made meanwhile on the same directory)."""
    libfuse_example(daemon)
    run = sessions.run(f"""\
mkdir mnt
"$LIBFUSE/{daemon}" -f "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
ls mnt > /dev/null
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
""", options=(f"--debug={sessions.root / 'debug.log'}",))
    assert run.lines() == ["unmount rc=0", "daemon rc=0"], run.output
    log = (sessions.root / "debug.log").read_text(errors="replace")
    unmounts = [line for line in log.splitlines() if "umount2(" in line]
    assert len(unmounts) == 1 and unmounts[0].endswith(", 0) = 0"), unmounts


CLONE_PROBE = Path(__file__).with_name("clone_probe.py")
CLONE_OUTPUT = """\
clone of an unmounted device EPERM
clone of a pipe EINVAL
clone onto a pipe ENOTTY
clone of the mounted device 0
clone onto a clone EINVAL
clone of a clone 0
INIT read from the clone 26
GETATTR read from the clone's clone 3
stat says directory
umount2 0
read after unmount ENODEV
"""
"""clone_probe.py's output on Linux 6.18's FUSE (the ``kernel`` test checks it still is)."""


@pytest.mark.e2e
def test_clone_ioctl(sessions: Sessions) -> None:
    """FUSE_DEV_IOC_CLONE: clones read the connection's requests and answer them; the
    kernel's errors for a device not mounted, a non-device, a device already attached."""
    run = sessions.run(f"mkdir mnt; cd {CLONE_PROBE.parent}; "
                       f"{sys.executable} {CLONE_PROBE} \"$OLDPWD/mnt\"")
    assert run.status == 0, run.output
    assert run.output == CLONE_OUTPUT


@pytest.mark.kernel
def test_clone_ioctl_on_kernel_fuse(tmp_path: Path) -> None:
    """The reference, on the real kernel FUSE (root)."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and the real /dev/fuse")
    (tmp_path / "mnt").mkdir()
    done = subprocess.run([sys.executable, str(CLONE_PROBE), str(tmp_path / "mnt")],
                          cwd=CLONE_PROBE.parent, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.stdout == CLONE_OUTPUT, done.stdout + done.stderr


@pytest.mark.e2e
def test_libfuse_clone_fd(sessions: Sessions) -> None:
    """passthrough_ll -o clone_fd (libfuse's multi-threaded loop, one cloned device per
    worker): twelve concurrent readers get the right contents, the workers hold clones of
    the one device, and the daemon exits 0 after `fusermount3 -u`."""
    libfuse_example("passthrough_ll")
    run = sessions.run("""\
mkdir src mnt; for i in $(seq 20); do echo "file $i" > src/f$i; done
"$LIBFUSE/passthrough_ll" -f -o clone_fd,source="$PWD/src" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
for j in $(seq 12); do (for i in $(seq 20); do cat mnt/f$i; done | md5sum > sum.$j) & done
wait $(jobs -p | grep -v "^$daemon$")
for i in $(seq 20); do cat src/f$i; done | md5sum > sum.src
cat sum.* | sort | uniq -c | awk '{print $1}'
echo "devices: $(for f in /proc/$daemon/fd/*; do readlink $f; done | grep -c socket)"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
grep -c "failed to clone" daemon.err
""")
    lines = run.lines()
    assert lines[0] == "13", run.output  # the 12 readers' sums and the source's, all equal
    assert lines[1].startswith("devices: ") and int(lines[1].split()[1]) >= 2, run.output
    assert lines[2:] == ["unmount rc=0", "daemon rc=0", "0"], run.output
