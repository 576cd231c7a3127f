"""The write side end to end (issue 5): programs that change the tree in a session, against
the same programs on a real directory; both trees are then dumped and compared.

Shell redirection into a mount is a known hole (fds below FD_BASE): the programs here open
their own fds (python3, coreutils, tar; dd is not here: it moves its output fd to 1 -- the hole).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from sessionhelp import PYTHON, World, native, needs_tracer, run_session

pytestmark = [needs_tracer, pytest.mark.e2e]

DUMP = r"""
import json, os, stat, sys
root = sys.argv[1]
out = {}
for here, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        path = os.path.join(here, name)
        st = os.lstat(path)
        entry = [stat.filemode(st.st_mode), st.st_nlink if not stat.S_ISDIR(st.st_mode) else 0]
        if stat.S_ISREG(st.st_mode):
            entry += [st.st_size, open(path, "rb").read().hex() if st.st_mode & 0o444 else ""]
        elif stat.S_ISLNK(st.st_mode):
            entry.append(os.readlink(path))
        out[os.path.relpath(path, root)] = entry
print(json.dumps(out, sort_keys=True))
"""

OPERATIONS = r"""
import ctypes, errno, fcntl, os, stat, sys, time
root = sys.argv[1]
os.umask(0o022)
libc = ctypes.CDLL(None, use_errno=True)
def at(*parts):
    return os.path.join(root, *parts)
def show(label, f, *a):
    try:
        result = f(*a)
    except OSError as e:
        result = errno.errorcode[e.errno]
    print(label, result)
def mode(path):
    return oct(os.lstat(path).st_mode)

fd = os.open(at("new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
show("write", os.write, fd, b"abcdef")
show("pos", os.lseek, fd, 0, os.SEEK_CUR)
show("pwrite", os.pwrite, fd, b"XY", 2)
show("pos-after-pwrite", os.lseek, fd, 0, os.SEEK_CUR)
show("writev", os.writev, fd, [b"12", b"345"])
show("seek-end", os.lseek, fd, 0, os.SEEK_END)
show("read-on-wronly", os.read, fd, 1)
show("ftruncate", os.ftruncate, fd, 4)
show("fstat-size", lambda: os.fstat(fd).st_size)
show("fsync", os.fsync, fd)
show("fdatasync", os.fdatasync, fd)
show("fallocate", os.posix_fallocate, fd, 0, 10)
show("fchmod", os.fchmod, fd, 0o600)
os.close(fd)
print("new-mode", mode(at("new")), os.stat(at("new")).st_size)
show("excl-again", os.open, at("new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
fd = os.open(at("new"), os.O_WRONLY | os.O_APPEND)
show("append", os.write, fd, b"tail")
show("append-pos", os.lseek, fd, 0, os.SEEK_CUR)
show("append-pwrite", os.pwrite, fd, b"P", 0)
os.close(fd)
print("after-append", open(at("new"), "rb").read())
fd = os.open(at("new"), os.O_RDWR | os.O_TRUNC)
show("trunc-size", lambda: os.fstat(fd).st_size)
os.write(fd, b"hello")
os.lseek(fd, 0, os.SEEK_SET)
show("read-back", os.read, fd, 100)
os.close(fd)
c_flags = os.O_CREAT | os.O_WRONLY
show("create-in-sub", lambda: os.close(os.open(at("dir", "sub", "c"), c_flags, 0o751)))
print("c-mode", mode(at("dir", "sub", "c")))
src = os.open(at("hello.txt"), os.O_RDONLY)
dst = os.open(at("cfr"), os.O_CREAT | os.O_WRONLY, 0o644)
show("copy_file_range", os.copy_file_range, src, dst, 5)
show("cfr-at", os.copy_file_range, src, dst, 100, 7, 20)
show("cfr-positions", lambda: (os.lseek(src, 0, 1), os.lseek(dst, 0, 1)))
show("cfr-bad-flags", lambda: libc.copy_file_range(src, None, dst, None, 1, 1))
os.close(src)
os.close(dst)
print("cfr", open(at("cfr"), "rb").read())
show("create-trailing-slash", os.open, at("x/"), os.O_CREAT | os.O_WRONLY)
show("create-dir", os.open, at("dir"), os.O_CREAT | os.O_WRONLY)
show("open-dir-w", os.open, at("dir"), os.O_WRONLY)

show("mkdir", os.mkdir, at("d1"), 0o777)
print("d1-mode", mode(at("d1")), os.stat(at("d1")).st_nlink, os.stat(root).st_nlink)
show("mkdir-exists", os.mkdir, at("d1"))
show("mkdir-dot", os.mkdir, at("d1", "."))
show("mkdir-missing", os.mkdir, at("nope", "x"))
show("mkdir-under-file", os.mkdir, at("hello.txt", "x"))
open(at("d1", "f"), "w").write("in d1")
show("rmdir-nonempty", os.rmdir, at("d1"))
show("rmdir-file", os.rmdir, at("d1", "f"))
show("rmdir-dot", os.rmdir, at("d1", "."))
show("unlink-dir", os.unlink, at("d1"))
show("unlink-missing", os.unlink, at("d1", "g"))
show("unlink-slash", os.unlink, at("d1", "f/"))
show("mknod-fifo", os.mkfifo, at("fifo"), 0o644)
print("fifo-mode", mode(at("fifo")))

show("rename", os.rename, at("d1", "f"), at("f2"))
show("rename-over", os.rename, at("f2"), at("dir", "empty"))
show("rename-missing", os.rename, at("f2"), at("f3"))
show("rename-into-self", os.rename, at("dir"), at("dir", "sub", "x"))
show("rename-dir-over-file", os.rename, at("d1"), at("hello.txt"))
show("rename-file-over-dir", os.rename, at("dir", "empty"), at("d1"))
show("rename-dir", os.rename, at("d1"), at("d2"))
renameat2 = libc.renameat2
def rename2(a, b, flags):
    if renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        raise OSError(ctypes.get_errno(), "")
    return 0
show("noreplace", rename2, at("new"), at("hello.txt"), 1)
show("exchange", rename2, at("new"), at("hello.txt"), 2)
show("exchange-missing", rename2, at("new"), at("zzz"), 2)
show("bad-flags", rename2, at("new"), at("zzz"), 3)

show("link", os.link, at("hello.txt"), at("hard"))
same = os.stat(at("hello.txt")).st_ino == os.stat(at("hard")).st_ino
print("nlink", os.stat(at("hard")).st_nlink, same)
show("link-dir", os.link, at("dir"), at("hard-dir"))
show("link-exists", os.link, at("hello.txt"), at("new"))
show("symlink", os.symlink, "hello.txt", at("sym"))
show("symlink-exists", os.symlink, "x", at("sym"))
show("symlink-slash-new", os.symlink, "x", at("nosuch/"))
show("symlink-slash-old", os.symlink, "x", at("sym/"))
show("mknod-slash", os.mkfifo, at("fifo2/"))
show("mkdir-slash", os.mkdir, at("made/"))
show("readlink", os.readlink, at("sym"))
show("unlink-hard", os.unlink, at("hard"))
print("nlink-after", os.stat(at("hello.txt")).st_nlink)

show("chmod", os.chmod, at("new"), 0o4751)
print("chmod-mode", mode(at("new")))
show("chmod-via-link", os.chmod, at("sym"), 0o640)
print("via-link-mode", mode(at("hello.txt")))
show("chown-self", os.chown, at("new"), -1, os.getgid())
show("lchown-self", os.lchown, at("sym"), os.getuid(), -1)
show("truncate", os.truncate, at("new"), 2)
show("truncate-dir", os.truncate, at("dir"), 0)
show("truncate-neg", os.truncate, at("new"), -1)
print("new-size", os.stat(at("new")).st_size)
show("utime", os.utime, at("new"), (1000000000, 1200000000))
st = os.stat(at("new"))
print("times", st.st_atime_ns, st.st_mtime_ns)
show("utime-ns", lambda: os.utime(at("new"), ns=(5, 1600000000123456789)))
st = os.stat(at("new"))
print("times-ns", st.st_atime_ns, st.st_mtime_ns)
before = time.time()
show("utime-now", os.utime, at("new"))
print("now-ok", abs(os.stat(at("new")).st_mtime - before) < 5)
show("utime-nofollow", lambda: os.utime(at("sym"), (7, 8), follow_symlinks=False))
print("link-mtime", os.lstat(at("sym")).st_mtime_ns)
fd = os.open(at("new"), os.O_RDONLY)
show("futimens", os.utime, fd, (9, 10))
print("futimens-mtime", os.stat(at("new")).st_mtime_ns)
show("ftruncate-rdonly", os.ftruncate, fd, 0)
show("write-rdonly", os.write, fd, b"x")
os.close(fd)

# locks: a child process meets the parent's locks
fd = os.open(at("hello.txt"), os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 0)
fcntl.flock(fd, fcntl.LOCK_SH)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    fd2 = os.open(at("hello.txt"), os.O_RDWR)
    out = []
    for label, f in (
        ("lockf-conflict", lambda: fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 0)),
        ("lockf-free", lambda: fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 5)),
        ("flock-sh", lambda: fcntl.flock(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)),
        ("flock-ex", lambda: fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)),
    ):
        try:
            f()
            out.append(f"{label} ok")
        except OSError as e:
            out.append(f"{label} {errno.errorcode[e.errno]}")
    import struct
    got = fcntl.fcntl(fd2, fcntl.F_GETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
    kind, _, start, length, lpid = struct.unpack("hhqqi4x", got)
    out.append(f"getlk {kind == fcntl.F_WRLCK} {start} {length} {lpid == os.getppid()}")
    os.write(w, "\n".join(out).encode())
    os._exit(0)
os.waitpid(pid, 0)
os.close(w)
print(os.read(r, 4096).decode())
os.close(fd)

show("rm-tree", lambda: __import__("shutil").rmtree(at("d2")))
show("listing", lambda: sorted(os.listdir(root)))
"""

TOOLS = r"""
set -e
cd "$1"
mkdir -p made/deeper/deepest
cp hello.txt made/copy
cp -a dir made/dir-copy
cp -a "$2" made/from-real
truncate -s 70K made/zeros
mv made/copy made/moved
ln -s moved made/sym
ln made/moved made/hard
chmod 600 made/moved
chmod -R go-rwx made/dir-copy
touch -h -d 2001-02-03T04:05:06 made/moved  # plain touch futimens on fd 0: the hole
touch made/new-empty
tar xf "$3" -C made
rm made/dir-copy/a
rm -r made/deeper
mkdir made/gone && rmdir made/gone
diff -r dir made/dir-copy || true
stat -c '%A %s %n' made/* | sort -k3
stat -c '%Y %n' made/moved
"""


async def _compare(world: World, argv: list[str], extra: list[str]) -> None:
    expected = native([*argv, str(world.real), *extra])
    got = await run_session([*argv, str(world.mnt), *extra], world.mounts)
    assert got.stderr.replace(str(world.mnt), "ROOT") == expected.stderr.replace(
        str(world.real), "ROOT"
    )
    assert (got.status, got.stdout.replace(str(world.mnt), "ROOT")) == (
        expected.status, expected.stdout.replace(str(world.real), "ROOT")
    )
    real_tree = native([PYTHON, "-c", DUMP, str(world.real)])
    virtual_tree = await run_session([PYTHON, "-c", DUMP, str(world.mnt)], world.mounts)
    assert virtual_tree.status == 0, virtual_tree.stderr
    assert json.loads(virtual_tree.stdout) == json.loads(real_tree.stdout)


async def test_python_writes_like_the_kernel(world: World) -> None:
    await _compare(world, [PYTHON, "-c", OPERATIONS], [])


async def test_tools_write_like_the_kernel(world: World, tmp_path: Path) -> None:
    if not shutil.which("tar"):
        pytest.skip("no tar")
    source = tmp_path / "source"
    (source / "x" / "y").mkdir(parents=True)
    (source / "x" / "y" / "file").write_bytes(b"payload\n" * 1000)
    (source / "x" / "exe").write_text("#!/bin/sh\n")
    (source / "x" / "exe").chmod(0o755)
    (source / "x" / "link").symlink_to("exe")
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(source / "x", arcname="x")
    await _compare(world, ["sh", "-c", TOOLS, "sh"], [str(source), str(archive)])


VIRTUAL_ONLY = r"""
import errno, os, sys
root, outside = sys.argv[1], sys.argv[2]
def show(label, f, *a):
    try:
        result = f(*a)
    except OSError as e:
        result = errno.errorcode[e.errno]
    print(label, result)
fd = os.open(root + "/w", os.O_CREAT | os.O_WRONLY, 0o640)
os.write(fd, b"data")
show("fsetxattr", os.setxattr, fd, "user.a", b"1")
show("fremovexattr", os.removexattr, fd, "user.a")
os.close(fd)
show("setxattr", os.setxattr, root + "/w", "user.b", b"2")
show("create-again", os.setxattr, root + "/w", "user.b", b"3", os.XATTR_CREATE)
show("replace-missing", os.setxattr, root + "/w", "user.c", b"3", os.XATTR_REPLACE)
show("getxattr", os.getxattr, root + "/w", "user.b")
show("removexattr-missing", os.removexattr, root + "/w", "user.c")
show("rename-out", os.rename, root + "/w", outside + "/w")
show("rename-in", os.rename, outside + "/real", root + "/real")
show("link-out", os.link, root + "/w", outside + "/w")
show("link-in", os.link, outside + "/real", root + "/real")
show("symlink-out", os.symlink, root + "/w", outside + "/sym")
"""


async def test_virtual_only_answers(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real").write_text("r")
    got = await run_session(
        [PYTHON, "-c", VIRTUAL_ONLY, str(world.mnt), str(outside)], world.mounts
    )
    assert got.status == 0, got.stderr
    assert dict(line.split(" ", 1) for line in got.stdout.splitlines()) == {
        "fsetxattr": "None", "fremovexattr": "None", "setxattr": "None",
        "create-again": "EEXIST", "replace-missing": "ENODATA", "getxattr": "b'2'",
        "removexattr-missing": "ENODATA", "rename-out": "EXDEV", "rename-in": "EXDEV",
        "link-out": "EXDEV", "link-in": "EXDEV", "symlink-out": "None",
    }
    node = world.provider.nodes[world.provider.nodes[1].children[b"w"]]
    assert node.data == b"data" and node.attrs.mode & 0o7777 == 0o640
    assert node.attrs.uid == os.getuid() and node.xattrs == {b"user.b": b"2"}
    assert os.readlink(outside / "sym") == str(world.mnt / "w")
