"""The writeback cache with a real daemon that asks for it (D24): fuse-overlayfs (writeback
on by default) over a lower layer holding a hard link.

fuse-overlayfs gives the two names of the lower hard link one node but copies up only the
name written through, so what the writes leave in the upper layer depends on exactly when the
kernel sends them and the times (at close, and at once after UNLINK: fuse_update_ctime).  The
expected lines were measured on Linux 6.18; the ``kernel`` twin runs the same script on the
real FUSE (as root) and must print the same."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from e2ehelp import Sessions

SCRIPT = r"""
B=$PWD; mkdir -p lower upper work mnt
printf 'readme line one\nline two\n\n' > lower/README.txt; ln lower/README.txt lower/hard-readme
fuse-overlayfs -f -o lowerdir=$B/lower,upperdir=$B/upper,workdir=$B/work $B/mnt 2>$B/ov.err &
daemon=$!
for _ in $(seq 200); do grep -q " $B/mnt " /proc/self/mounts && break; sleep 0.05; done
cd mnt || exit 1
python3 -c 'open("README.txt", "a").write("appended\n")'
stat -c '%s %h %n' README.txt hard-readme
rm -f hard-readme
cp README.txt again
stat -c '%s %n' README.txt again
tail -n 1 again
cd "$B"; fusermount3 -u "$B/mnt"; echo "unmount rc=$?"; wait $daemon; echo "daemon rc=$?"
stat -c '%s %n' upper/README.txt upper/again
"""

#: What Linux 6.18 prints (the appended line reaches neither the copy nor the upper layer).
EXPECTED = [
    "35 2 README.txt", "35 2 hard-readme", "35 README.txt", "26 again", "",
    "unmount rc=0", "daemon rc=0", "26 upper/README.txt", "26 upper/again",
]  # fmt: skip


def _need() -> None:
    if shutil.which("fuse-overlayfs", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        pytest.skip("fuse-overlayfs is not installed (compat-tests/setup.sh installs it)")


@pytest.mark.e2e
def test_fuse_overlayfs_lower_hard_link_as_on_the_kernel(sessions: Sessions) -> None:
    _need()
    run = sessions.run(SCRIPT)
    assert run.lines() == EXPECTED, run.output


@pytest.mark.kernel
def test_fuse_overlayfs_lower_hard_link_on_kernel_fuse(tmp_path: Path) -> None:
    """The reference for the test above, on the real FUSE."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and the real /dev/fuse")
    _need()
    done = subprocess.run(["bash", "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.stdout.splitlines() == EXPECTED, done.stdout + done.stderr
