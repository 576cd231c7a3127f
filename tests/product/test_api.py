"""The Python API: `with vufuse.Session() as s:` → run, mount, unmount, mounts, stats."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from producthelp import HELLO_LL, HELLO_TEXT, ROOT, leftover_processes

import vufuse

sys.path.insert(0, str(ROOT / "examples" / "fs"))
from hello import HelloFs  # noqa: E402
from passthroughfs import PassthroughFs  # noqa: E402

pytestmark = pytest.mark.e2e
REAL_PYFUSE3 = Path(os.environ.get("VUFUSE_REAL_PYFUSE3", "/var/tmp/vufuse-externals/real-pyfuse3"))


def _gone(pid: int, seconds: float = 30.0) -> bool:
    """Whether process `pid` has ended (bounded wait; zombies count as ended)."""
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


def test_run_is_subprocess_run_inside_the_session(tmp_path: Path) -> None:
    assert "VUFUSE_SESSION" not in os.environ  # the caller stays outside
    with vufuse.Session(env={**os.environ, "GREETING": "hi"}) as session:
        done = session.run(["sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 3'])
        assert (done.returncode, done.stdout, done.stderr) == (3, "hi\n", "oops\n")
        assert isinstance(done, subprocess.CompletedProcess)
        assert session.run(["cat"], input="typed\n").stdout == "typed\n"
        assert session.run(["pwd"], cwd=tmp_path).stdout.strip() == str(tmp_path)
        env = {"PATH": "/usr/bin:/bin", "ONLY": "this"}
        printed = session.run(["env"], env=env).stdout.splitlines()
        assert "ONLY=this" in printed and f"VUFUSE_SESSION={session.runtime_dir}" in printed
        assert session.run(["head", "-c", "3", "/dev/zero"], text=False).stdout == b"\0\0\0"
        assert session.run("echo $((6 * 7))", shell=True).stdout == "42\n"
        with pytest.raises(subprocess.CalledProcessError):
            session.run(["false"], check=True)
        with pytest.raises(FileNotFoundError):
            session.run(["/nonexistent/program"])
        with pytest.raises(subprocess.TimeoutExpired):
            session.run(["sleep", "60"], timeout=0.5)
        assert session.run(["true"]).returncode == 0  # still usable after all that
    assert session.returncode == 0
    assert not os.path.exists(str(session.runtime_dir))
    with pytest.raises(vufuse.SessionError):
        session.run(["true"])


def test_mount_an_operations_class(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with vufuse.Session() as session:
        mount = session.mount(HelloFs, mnt)
        assert mount.mountpoint == mnt and mount.info["state"] == "live"
        assert session.run(["cat", mnt / "hello"]).stdout == HELLO_TEXT + "\n"
        assert os.listdir(mnt) == []  # outside the session there is no mount
        assert [m.mountpoint for m in session.mounts()] == [mnt]
        requests = session.stats()["mounts"][0]["requests"]
        assert requests["LOOKUP"]["count"] >= 1 and requests["READ"]["count"] >= 1
        assert " - fuse HelloFs rw," in session.run(["cat", "/proc/self/mountinfo"]).stdout
        session.unmount(mount)
        assert session.mounts() == []
        assert _gone(mount.pid), "the daemon should exit once unmounted"
        assert session.run(["ls", mnt]).stdout == ""


def test_mount_a_class_with_arguments_and_options(tmp_path: Path) -> None:
    source, mnt = tmp_path / "source", tmp_path / "mnt"
    source.mkdir()
    mnt.mkdir()
    (source / "file").write_text("from the source\n")
    debug = tmp_path / "debug.log"
    with vufuse.Session(debug=debug) as session:
        session.mount(PassthroughFs, mnt, init_args=(str(source),), options=["fsname=mirror"])
        assert session.run(["cat", mnt / "file"]).stdout == "from the source\n"
        session.run(["tee", mnt / "made"], input="new\n", check=True)
        assert (source / "made").read_text() == "new\n"
        assert "mirror" in session.run(["df", mnt]).stdout
    log = debug.read_text()  # Session(debug=FILE) is `vufuse run --debug=FILE`
    assert "opcode: LOOKUP" in log and "opcode: WRITE" in log
    assert f'openat(AT_FDCWD, "{mnt}/file", O_RDONLY) = ANSWERED' in log  # strace-style


@pytest.mark.skipif(not os.access(HELLO_LL, os.X_OK), reason="libfuse's hello_ll not built")
def test_mount_a_fuse_program(tmp_path: Path) -> None:
    """libfuse's hello_ll: mounts, daemonizes; unmount, busy or lazy."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with vufuse.Session() as session:
        mount = session.mount(HELLO_LL, mnt)
        assert session.run(["cat", mnt / "hello"]).stdout == "Hello World!\n"
        session.run(f"cd {mnt} && exec sleep 600 >/dev/null 2>&1 &", shell=True, check=True)
        with pytest.raises(vufuse.SessionError, match="busy"):
            session.unmount(mount)
        session.unmount(mount, lazy=True)
        assert session.mounts() == []
    assert leftover_processes(str(mnt)) == []


def test_mount_failures_carry_the_daemons_words(tmp_path: Path) -> None:
    with vufuse.Session() as session:
        with pytest.raises(vufuse.MountError) as failed:
            session.mount(HelloFs, tmp_path / "missing")
        assert "No such file or directory" in failed.value.output
        assert failed.value.returncode != 0
        with pytest.raises(vufuse.MountError, match="exited with status 0 without mounting"):
            session.mount("true", tmp_path)
        with pytest.raises(TypeError):
            session.mount(HelloFs, tmp_path, tmp_path)
        assert session.mounts() == []


def test_mount_a_real_pyfuse3_class(tmp_path: Path) -> None:
    """The real pyfuse3 (Cython, libfuse3) in its own venv: its sdist's hello.py TestFs."""
    python = REAL_PYFUSE3 / "venv" / "bin" / "python"
    example = REAL_PYFUSE3 / "examples" / "hello.py"
    if not (python.exists() and example.exists()):
        pytest.skip(f"{REAL_PYFUSE3} missing: run tests/e2e/setup_real_pyfuse3.sh as root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with vufuse.Session() as session:
        mount = session.mount(vufuse.OperationsClass(example, "TestFs", python=python), mnt)
        assert session.run(["cat", mnt / "message"]).stdout == "hello world\n"
        assert session.run(["ls", mnt]).stdout == "message\n"
        session.unmount(mount)
        assert _gone(mount.pid)


def test_session_end_takes_everything_with_it(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    session = vufuse.Session().start()
    mount = session.mount(HelloFs, mnt)
    runtime_dir = session.runtime_dir
    assert session.close() == 0
    assert _gone(mount.pid) and not os.path.exists(str(runtime_dir))
    assert session.close() == 0  # closing twice is harmless


PLUGIN_USER_TEST = '''
import errno, os, stat, sys
sys.path.insert(0, {examples!r})
from _common import pyfuse3

class OneFile(pyfuse3.Operations):
    """Defined in the test module itself: the fixture's daemon finds it by module name."""

    async def getattr(self, inode, ctx=None):
        entry = pyfuse3.EntryAttributes()
        entry.st_ino = inode
        entry.st_mode = (stat.S_IFDIR | 0o755) if inode == 1 else (stat.S_IFREG | 0o444)
        entry.st_size = 0 if inode == 1 else 3
        return entry

    async def lookup(self, parent, name, ctx=None):
        if name != b"abc":
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(2)

    async def open(self, inode, flags, ctx):
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh, off, size):
        return b"abc"[off:off + size]


def test_one_file(vufuse_mount):
    fs = vufuse_mount(OneFile)
    assert fs.run(["cat", fs.mountpoint / "abc"]).stdout == "abc"
    assert fs.run(["stat", "-c", "%s", fs.mountpoint / "nothing"]).returncode == 1


def test_a_program(vufuse_mount):
    fs = vufuse_mount(sys.executable, {hello!r})
    assert "Hello" in fs.run(["cat", fs.mountpoint / "hello"]).stdout
    fs.unmount()
    assert fs.run(["ls", fs.mountpoint]).stdout == ""
'''


def test_pytest_plugin_for_a_filesystem_author(tmp_path: Path) -> None:
    """A separate pytest run, as a FUSE filesystem's own suite: the entry point's fixtures."""
    (tmp_path / "test_author.py").write_text(PLUGIN_USER_TEST.format(
        examples=str(ROOT / "examples" / "fs"), hello=str(ROOT / "examples" / "fs" / "hello.py")))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "test_author.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
