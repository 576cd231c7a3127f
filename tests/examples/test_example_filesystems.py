"""Our example filesystems (examples/fs/) mounted on the real kernel and used with real tools.

Each mount gets the same workload as a real directory on disk (tests/examples/fs_workload.py), and
the two must come out identical: contents, modes, links, owners, timestamps, xattrs, and the
errors the operations met. The daemons must exit 0 when unmounted and never load libfuse.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fs_workload import build_source, exercise, run, snapshot
from kernel_fuse import (
    REPO_ROOT,
    is_mounted,
    libfuse_mapped,
    require_kernel_fuse,
    start_daemon,
    stop_daemon,
)

pytestmark = pytest.mark.kernel
EXAMPLES = REPO_ROOT / "examples" / "fs"


class Mounted:
    """A running example filesystem and its mountpoint."""

    def __init__(self, process: subprocess.Popen[bytes], mountpoint: Path) -> None:
        self.process = process
        self.mountpoint = mountpoint


@pytest.fixture
def mount_example(tmp_path: Path) -> Iterator[object]:
    """Mount examples/fs/NAME.py (with extra arguments); unmounted and checked at teardown."""
    require_kernel_fuse()
    mounted: list[Mounted] = []

    def mount(name: str, *args: str | Path) -> Mounted:
        mountpoint = tmp_path / f"mnt-{name}"
        mountpoint.mkdir()
        process = start_daemon([str(EXAMPLES / f"{name}.py"), *map(str, args), str(mountpoint)],
                               mountpoint)  # fmt: skip
        assert not libfuse_mapped(process.pid)
        mounted.append(Mounted(process, mountpoint))
        return mounted[-1]

    yield mount
    for entry in mounted:
        status = stop_daemon(entry.process, entry.mountpoint)
        assert status == 0
        assert not is_mounted(entry.mountpoint)


@pytest.fixture
def source_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The varied source tree and a tarball of it."""
    source = tmp_path / "source"
    build_source(source)
    tarball = tmp_path / "source.tar"
    run("tar", "-C", source, "-cf", tarball, ".")
    return source, tarball


def test_hello(mount_example) -> None:
    mnt = mount_example("hello").mountpoint
    assert os.listdir(mnt) == ["hello"]
    assert (mnt / "hello").read_text().startswith("Hello from vufuse")
    assert "hello" in run("ls", "-l", mnt)
    with pytest.raises(PermissionError):
        open(mnt / "hello", "r+")
    with pytest.raises(FileNotFoundError):
        os.stat(mnt / "nothing")
    assert run("stat", "-c", "%s %a", mnt / "hello").split() == ["41", "444"]


def test_memfs_behaves_like_a_real_directory(mount_example, source_tree, tmp_path) -> None:
    source, tarball = source_tree
    reference = tmp_path / "reference"
    reference.mkdir()
    expected = exercise(reference, source, tarball)
    mnt = mount_example("memfs").mountpoint
    observed = exercise(mnt, source, tarball)
    assert observed == expected
    assert snapshot(mnt) == snapshot(reference)
    assert run("find", mnt, "-name", "deep.txt").strip().endswith("moved-sub/deep.txt")
    stats = os.statvfs(mnt)
    assert stats.f_bsize == 4096 and stats.f_bfree < stats.f_blocks


def test_passthroughfs_mirrors_its_source(mount_example, source_tree, tmp_path) -> None:
    source, tarball = source_tree
    reference = tmp_path / "reference"
    reference.mkdir()
    expected = exercise(reference, source, tarball)
    backing = tmp_path / "backing"
    backing.mkdir()
    mnt = mount_example("passthroughfs", backing).mountpoint
    observed = exercise(mnt, source, tarball)
    assert observed == expected
    assert snapshot(mnt) == snapshot(reference)
    assert snapshot(backing) == snapshot(reference)


def test_demofs_is_browsable(mount_example, tmp_path) -> None:
    mnt = mount_example("demofs").mountpoint
    listing = run("find", ".", cwd=mnt).split()
    assert {"./README.txt", "./docs/how-it-works.txt", "./poems/haiku/autumn.txt",
            "./latest", "./live/clock.txt"} <= set(listing)  # fmt: skip
    assert os.readlink(mnt / "latest") == "docs/how-it-works.txt"
    assert (mnt / "latest").read_text() == (mnt / "docs" / "how-it-works.txt").read_text()
    copy = tmp_path / "copy"
    run("cp", "-a", mnt, copy)
    for static in ("README.txt", "hello.txt", "docs/pyfuse3.txt", "poems/limerick.txt"):
        assert (copy / static).read_bytes() == (mnt / static).read_bytes()
    first = (mnt / "live" / "stats.txt").read_text()
    second = (mnt / "live" / "stats.txt").read_text()
    assert first != second  # generated on every read
    assert (mnt / "live" / "clock.txt").read_text().endswith("UTC\n")
    with pytest.raises(OSError) as info:
        (mnt / "new-file").write_text("x")
    assert info.value.errno == errno.EROFS
    assert "vufuse-demo" in run("df", mnt)


def test_interrupted_daemon_unmounts_itself(tmp_path) -> None:
    """Ctrl-C in the daemon: close() unmounts (umount2 as root) and the process exits."""
    require_kernel_fuse()
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    process = start_daemon([str(EXAMPLES / "memfs.py"), str(mountpoint)], mountpoint)
    (mountpoint / "file").write_text("x")
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    assert not is_mounted(mountpoint)


def test_unprivileged_mount_goes_through_fusermount3() -> None:
    """As an ordinary user: fusermount3 mounts, passes the fd back, and unmounts on close()."""
    require_kernel_fuse()
    # pytest's tmp_path is private to root; nobody needs a path it can reach.
    with tempfile.TemporaryDirectory(prefix="vufuse-nobody-") as parent:
        os.chmod(parent, 0o755)
        mountpoint = Path(parent) / "mnt"
        mountpoint.mkdir()
        os.chown(mountpoint, 65534, 65534)
        # fusermount3 opens /dev/fuse with the user's rights; distributions make it 0666,
        # this machine 0600. Open it up for the test, as udev would, and put it back after.
        device_mode = os.stat("/dev/fuse").st_mode & 0o777
        os.chmod("/dev/fuse", 0o666)
        try:
            _serve_memfs_as_nobody(mountpoint)
        finally:
            os.chmod("/dev/fuse", device_mode)


AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def _serve_memfs_as_nobody(mountpoint: Path) -> None:
    process = subprocess.Popen(
        [*AS_NOBODY, str(REPO_ROOT / ".venv" / "bin" / "python"), str(EXAMPLES / "memfs.py"),
         str(mountpoint)],
        cwd="/", stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not is_mounted(mountpoint):
        assert process.poll() is None, "daemon exited before mounting"
        assert time.monotonic() < deadline, "no mount"
        time.sleep(0.05)
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            line = next(line for line in mountinfo if f" {mountpoint} " in line)
        assert "user_id=65534" in line and "fuse" in line
        # Without allow_other only the mounting user may enter, so use the mount as nobody.
        file = mountpoint / "file"
        script = f"echo hello > {file} && cat {file} && stat -c %u {file}"
        assert run(*AS_NOBODY, "sh", "-c", script).split() == ["hello", "65534"]
        with pytest.raises(PermissionError):
            os.listdir(mountpoint)
        assert not libfuse_mapped(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert not is_mounted(mountpoint)  # unmounted by the daemon via fusermount3 -u
    finally:
        if process.poll() is None:
            process.kill()
        stop_daemon(process, mountpoint)
