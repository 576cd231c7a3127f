"""Our example filesystems (examples/fs/) mounted and used with real tools: unprivileged in a
vufuse session through the pytest plugin's ``vufuse_mount`` fixture, and on the real kernel.

Each mount gets the same workload as a real directory on disk (tests/examples/fs_workload.py), and
the two must come out identical: contents, modes, links, owners, timestamps, xattrs, and the
errors the operations met. The daemons must exit when unmounted and never load libfuse.
Commands that touch a vufuse mount run inside the session (``Mounted.run``); the test process
itself is not traced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fs_workload import build_source, exercise, run, snapshot, to_json
from kernel_fuse import (
    REPO_ROOT,
    is_mounted,
    libfuse_mapped,
    require_kernel_fuse,
    start_daemon,
    stop_daemon,
)

EXAMPLES = REPO_ROOT / "examples" / "fs"
WORKLOAD = Path(__file__).with_name("fs_workload.py")
sys.path.insert(0, str(EXAMPLES))
from demofs import DemoFs  # noqa: E402
from hello import HelloFs  # noqa: E402
from memfs import MemFs  # noqa: E402
from passthroughfs import PassthroughFs  # noqa: E402

CLASSES: dict[str, tuple[type, list[str]]] = {
    "hello": (HelloFs, ["fsname=hello"]),
    "memfs": (MemFs, ["fsname=memfs"]),
    "passthroughfs": (PassthroughFs, ["fsname=passthroughfs"]),
    "demofs": (DemoFs, ["fsname=vufuse-demo", "ro"]),
}
"""Each example's class and the options its main() mounts with."""


class Mounted:
    """A mounted example filesystem, and a way to run commands where its mount is seen."""

    def __init__(self, mountpoint: Path, pid: int,
                 runner: Callable[..., subprocess.CompletedProcess[Any]]) -> None:  # fmt: skip
        self.mountpoint = mountpoint
        self.pid = pid
        self._runner = runner

    def result(self, *argv: str | Path, text: bool = True) -> subprocess.CompletedProcess[Any]:
        """Run a command (bounded) where the mount is visible."""
        return self._runner([str(a) for a in argv], text=text, timeout=300)

    def run(self, *argv: str | Path) -> str:
        """Run a command, fail on a non-zero exit, return its stdout."""
        done = self.result(*argv)
        assert done.returncode == 0, f"{argv}: {done.stderr}"
        return str(done.stdout)

    def read_bytes(self, relative: str) -> bytes:
        done = self.result("cat", self.mountpoint / relative, text=False)
        assert done.returncode == 0, done.stderr
        return bytes(done.stdout)

    def python(self, code: str) -> str:
        """Run Python code (with `mnt` bound to the mountpoint) where the mount is visible."""
        return self.run(sys.executable, "-c", f"from pathlib import Path\n"
                        f"mnt = Path({str(self.mountpoint)!r})\n{code}")  # fmt: skip

    def workload(self, *args: str | Path) -> Any:
        """fs_workload.py's exercise or snapshot, run where the mount is visible."""
        return json.loads(self.run(sys.executable, WORKLOAD, *args))


def _normalised(value: object) -> Any:
    """What `value` looks like after a trip through JSON (tuples become lists)."""
    return json.loads(to_json(value))


def _gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as file:
                if file.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(params=["vufuse", pytest.param("kernel", marks=pytest.mark.kernel)])
def mount_example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Mount an example filesystem (with extra arguments), unprivileged in a vufuse session
    (the ``vufuse_mount`` fixture, given the example's Operations class) or on the kernel
    (the example's script, as root); unmounted and checked at teardown."""
    if request.param == "vufuse":
        vufuse_mount = request.getfixturevalue("vufuse_mount")
        mounted_fs: list[Any] = []

        def mount_in_session(name: str, *args: str | Path) -> Mounted:
            cls, options = CLASSES[name]
            fs = vufuse_mount(cls, init_args=[str(a) for a in args], options=options)
            assert not libfuse_mapped(fs.mount.pid)
            mounted_fs.append(fs)
            return Mounted(fs.mountpoint, fs.mount.pid, fs.run)

        yield mount_in_session
        for fs in mounted_fs:
            fs.unmount()
            assert _gone(fs.mount.pid), "the daemon should exit once unmounted"
        return

    require_kernel_fuse()
    daemons: list[tuple[subprocess.Popen[bytes], Path]] = []

    def mount_on_kernel(name: str, *args: str | Path) -> Mounted:
        mountpoint = tmp_path / f"mnt-{name}"
        mountpoint.mkdir()
        process = start_daemon([str(EXAMPLES / f"{name}.py"), *map(str, args), str(mountpoint)],
                               mountpoint)  # fmt: skip
        assert not libfuse_mapped(process.pid)
        daemons.append((process, mountpoint))
        return Mounted(mountpoint, process.pid,
                       lambda argv, **kw: subprocess.run(argv, capture_output=True, **kw))

    yield mount_on_kernel
    for process, mountpoint in daemons:
        status = stop_daemon(process, mountpoint)
        assert status == 0
        assert not is_mounted(mountpoint)


@pytest.fixture
def source_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The varied source tree and a tarball of it."""
    source = tmp_path / "source"
    build_source(source)
    tarball = tmp_path / "source.tar"
    run("tar", "-C", source, "-cf", tarball, ".")
    return source, tarball


def test_hello(mount_example) -> None:
    fs = mount_example("hello")
    mnt = fs.mountpoint
    assert fs.run("ls", mnt).split() == ["hello"]
    assert fs.read_bytes("hello").startswith(b"Hello from vufuse")
    assert "hello" in fs.run("ls", "-l", mnt)
    assert fs.python("""
for how, path in (("r+", mnt / "hello"), ("r", mnt / "nothing")):
    try:
        open(path, how)
    except OSError as error:
        print(error.__class__.__name__)
""").split() == ["PermissionError", "FileNotFoundError"]
    assert fs.run("stat", "-c", "%s %a", mnt / "hello").split() == ["41", "444"]


def test_memfs_behaves_like_a_real_directory(mount_example, source_tree, tmp_path) -> None:
    source, tarball = source_tree
    reference = tmp_path / "reference"
    reference.mkdir()
    expected = _normalised(exercise(reference, source, tarball))
    fs = mount_example("memfs")
    mnt = fs.mountpoint
    observed = fs.workload("exercise", mnt, source, tarball)
    assert observed == expected
    assert fs.workload("snapshot", mnt) == _normalised(snapshot(reference))
    assert fs.run("find", mnt, "-name", "deep.txt").strip().endswith("moved-sub/deep.txt")
    bsize, bfree, blocks = fs.run("stat", "-f", "-c", "%S %f %b", mnt).split()
    assert int(bsize) == 4096 and int(bfree) < int(blocks)


def test_passthroughfs_mirrors_its_source(mount_example, source_tree, tmp_path) -> None:
    source, tarball = source_tree
    reference = tmp_path / "reference"
    reference.mkdir()
    expected = _normalised(exercise(reference, source, tarball))
    backing = tmp_path / "backing"
    backing.mkdir()
    fs = mount_example("passthroughfs", backing)
    mnt = fs.mountpoint
    observed = fs.workload("exercise", mnt, source, tarball)
    assert observed == expected
    assert fs.workload("snapshot", mnt) == _normalised(snapshot(reference))
    assert snapshot(backing) == snapshot(reference)


def test_demofs_is_browsable(mount_example, tmp_path) -> None:
    fs = mount_example("demofs")
    mnt = fs.mountpoint
    listing = fs.run("sh", "-c", f"cd {mnt} && find .").split()
    assert {"./README.txt", "./docs/how-it-works.txt", "./poems/haiku/autumn.txt",
            "./latest", "./live/clock.txt"} <= set(listing)  # fmt: skip
    assert fs.run("readlink", mnt / "latest").strip() == "docs/how-it-works.txt"
    assert fs.read_bytes("latest") == fs.read_bytes("docs/how-it-works.txt")
    copy = tmp_path / "copy"
    fs.run("cp", "-a", mnt, copy)
    for static in ("README.txt", "hello.txt", "docs/pyfuse3.txt", "poems/limerick.txt"):
        assert (copy / static).read_bytes() == fs.read_bytes(static)
    first = fs.read_bytes("live/stats.txt")
    second = fs.read_bytes("live/stats.txt")
    assert first != second  # generated on every read
    assert fs.read_bytes("live/clock.txt").endswith(b"UTC\n")
    assert fs.python("""
import errno
try:
    (mnt / "new-file").write_text("x")
except OSError as error:
    print(errno.errorcode[error.errno])
""").strip() == "EROFS"
    assert "vufuse-demo" in fs.run("df", mnt)


@pytest.mark.kernel
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


@pytest.mark.kernel
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
