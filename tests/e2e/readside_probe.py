"""Every read-side syscall variant of issue 4 on one tree, printed in a comparable form.

``python3 readside_probe.py ROOT``: ROOT holds ``file`` (b"0123456789abcdef" * 300, with
the xattr user.probe = b"value"), ``link`` -> file, ``dir/`` with ``a``..``e``.  Each line
is ``name: result`` (values, or an errno name); paths are printed relative to ROOT.  Run on
a passthrough mount of the tree and on the tree itself, the outputs must be equal
(tests/e2e/test_readside.py): what a real file system answers, FUSE answers too, except
where noted in that test.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
import sys
from collections.abc import Callable

libc = ctypes.CDLL(None, use_errno=True)
SYS_OPENAT2, SYS_STATX, SYS_FACCESSAT2 = 437, 332, 439
AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, AT_EACCESS = 0x1000, 0x100, 0x200
RESOLVE_NO_XDEV, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x01, 0x04, 0x08, 0x10
O_PATH, O_NOATIME = 0o10000000, 0o1000000


def show(name: str, function: Callable[[], object]) -> None:
    """Print `name: result` or `name: ERRNO`."""
    try:
        result = function()
    except OSError as failure:
        result = errno.errorcode.get(failure.errno or 0, str(failure))
    print(f"{name}: {result}")


def check(result: int) -> int:
    """A libc/syscall result: the value, or OSError(errno)."""
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def described(st: os.stat_result) -> str:
    """The fields a passthrough keeps (not st_dev: each mount has its own)."""
    return (f"mode={oct(st.st_mode)} size={st.st_size} nlink={st.st_nlink} ino={st.st_ino} "
            f"uid={st.st_uid} gid={st.st_gid} mtime={st.st_mtime_ns}")


def statx(dirfd: int, path: bytes, flags: int) -> str:
    """statx(2) with STATX_BASIC_STATS: type+mode, size, ino, nlink, mtime."""
    buffer = ctypes.create_string_buffer(256)
    check(libc.syscall(SYS_STATX, dirfd, path, flags, 0x7FF, buffer))
    mask, _, _, nlink, uid, gid, mode = struct.unpack_from("<IIQIIIH", buffer.raw)
    ino, size = struct.unpack_from("<QQ", buffer.raw, 32)
    (mtime,) = struct.unpack_from("<q", buffer.raw, 0x70)
    return f"mode={oct(mode)} size={size} nlink={nlink} ino={ino} uid={uid} mtime={mtime}"


def openat2(dirfd: int, path: bytes, flags: int, resolve: int) -> int:
    """openat2(2) with struct open_how {flags, mode, resolve}."""
    how = struct.pack("<QQQ", flags, 0, resolve)
    return check(libc.syscall(SYS_OPENAT2, dirfd, path, how, len(how)))


def main() -> None:  # noqa: PLR0915 - one flat list of probes reads best
    """The probes, in order."""
    root = sys.argv[1]
    os.chdir(root)
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    size = os.stat("file").st_size
    # open family
    show("open", lambda: os.close(os.open("file", os.O_RDONLY)))
    show("openat", lambda: os.close(os.open("file", os.O_RDONLY, dir_fd=here)))
    show("openat2", lambda: os.close(openat2(here, b"file", os.O_RDONLY, 0)))
    show("openat2-no-symlinks", lambda: openat2(here, b"link", os.O_RDONLY,
                                                RESOLVE_NO_SYMLINKS))
    inner = os.open("dir", os.O_RDONLY | os.O_DIRECTORY)
    show("openat2-beneath", lambda: os.close(openat2(here, b"dir/../link", os.O_RDONLY,
                                                     RESOLVE_BENEATH)))
    show("openat2-beneath-dotdot", lambda: openat2(inner, b"../file", os.O_RDONLY,
                                                   RESOLVE_BENEATH))
    show("openat2-beneath-absolute", lambda: openat2(here, b"/file", os.O_RDONLY,
                                                     RESOLVE_BENEATH))
    show("openat2-in-root", lambda: os.read(openat2(inner, b"/../../a", os.O_RDONLY,
                                                    RESOLVE_IN_ROOT), 9))
    show("openat2-no-xdev", lambda: os.read(openat2(here, b"dir/b", os.O_RDONLY,
                                                    RESOLVE_NO_XDEV), 9))
    # Differs between a mount and the tree by design: ".." of a mount's root crosses a mount.
    show("openat2-no-xdev-up", lambda: os.close(openat2(here, b"..", os.O_RDONLY,
                                                        RESOLVE_NO_XDEV)))
    show("creat", lambda: os.close(check(libc.creat(b"dir/created", 0o644))))
    show("O_DIRECTORY-on-file", lambda: os.open("file", os.O_RDONLY | os.O_DIRECTORY))
    show("O_NOFOLLOW-on-link", lambda: os.open("link", os.O_RDONLY | os.O_NOFOLLOW))
    show("O_NOATIME-own", lambda: os.close(os.open("file", os.O_RDONLY | O_NOATIME)))
    show("O_PATH-O_NOFOLLOW", lambda: os.close(os.open("link", O_PATH | os.O_NOFOLLOW)))
    show("missing", lambda: os.open("nothing", os.O_RDONLY))
    show("file-as-dir", lambda: os.open("file/x", os.O_RDONLY))
    # read family
    fd = os.open("file", os.O_RDONLY)
    show("read", lambda: os.read(fd, 10))
    show("pread64", lambda: os.pread(fd, 6, 100))
    buffers = [bytearray(3), bytearray(5)]
    show("readv", lambda: (os.readv(fd, buffers), bytes(buffers[0]), bytes(buffers[1])))
    show("preadv", lambda: (os.preadv(fd, buffers, 4000), bytes(buffers[0]), bytes(buffers[1])))
    show("preadv2", lambda: (os.preadv(fd, buffers, 20, 0), bytes(buffers[0])))
    show("preadv2-at-eof", lambda: os.preadv(fd, buffers, size, 0))
    show("read-rest", lambda: len(os.read(fd, 1 << 20)))
    show("lseek-end", lambda: os.lseek(fd, -5, os.SEEK_END))
    show("lseek-cur", lambda: os.lseek(fd, 2, os.SEEK_CUR))
    show("lseek-negative", lambda: os.lseek(fd, -1, os.SEEK_SET))
    show("lseek-past-eof", lambda: (os.lseek(fd, size + 10, os.SEEK_SET), os.read(fd, 4)))
    # fcntl and dup family
    show("F_GETFL", lambda: oct(fcntl.fcntl(fd, fcntl.F_GETFL)))
    show("F_SETFL", lambda: (fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK),
                             oct(fcntl.fcntl(fd, fcntl.F_GETFL))))
    show("F_SETFD", lambda: (fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC),
                             fcntl.fcntl(fd, fcntl.F_GETFD)))
    copy = os.dup(fd)
    show("dup-shares-offset", lambda: (os.lseek(fd, 7, os.SEEK_SET), os.read(copy, 3)))
    show("dup2", lambda: (os.dup2(fd, 800) == 800, os.read(800, 2)))
    show("dup3-cloexec", lambda: (os.dup2(fd, 801, inheritable=False),
                                  fcntl.fcntl(801, fcntl.F_GETFD)))
    show("F_DUPFD", lambda: fcntl.fcntl(fd, fcntl.F_DUPFD, 900) >= 900)
    show("F_DUPFD_CLOEXEC", lambda: fcntl.fcntl(
        fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 910), fcntl.F_GETFD))
    # stat family
    show("stat", lambda: described(os.stat("file")))
    show("stat-link", lambda: described(os.stat("link")))
    show("lstat", lambda: described(os.lstat("link")))
    show("fstat", lambda: described(os.fstat(fd)))
    show("newfstatat", lambda: described(os.stat("file", dir_fd=here)))
    show("newfstatat-nofollow", lambda: described(os.stat("link", dir_fd=here,
                                                          follow_symlinks=False)))
    show("statx", lambda: statx(here, b"link", 0))
    show("statx-nofollow", lambda: statx(here, b"link", AT_SYMLINK_NOFOLLOW))
    show("statx-empty-path", lambda: statx(fd, b"", AT_EMPTY_PATH))
    show("statx-empty-no-flag", lambda: statx(fd, b"", 0))
    show("stat-dir", lambda: stat.filemode(os.stat("dir").st_mode))
    # readlink, access
    show("readlink", lambda: os.readlink("link"))
    show("readlinkat", lambda: os.readlink("link", dir_fd=here))
    show("readlink-file", lambda: os.readlink("file"))
    show("access", lambda: os.access("file", os.R_OK | os.W_OK))
    show("access-x", lambda: os.access("file", os.X_OK))
    show("faccessat", lambda: os.access("file", os.R_OK, dir_fd=here))
    show("faccessat2-eaccess", lambda: check(libc.syscall(SYS_FACCESSAT2, here, b"file",
                                                          os.R_OK, AT_EACCESS)))
    show("faccessat2-nofollow", lambda: check(libc.syscall(SYS_FACCESSAT2, here, b"link",
                                                           os.R_OK, AT_SYMLINK_NOFOLLOW)))
    # xattrs
    show("getxattr", lambda: os.getxattr("file", "user.probe"))
    show("lgetxattr-link", lambda: os.getxattr("link", "user.probe", follow_symlinks=False))
    show("fgetxattr", lambda: os.getxattr(fd, "user.probe"))
    show("getxattr-missing", lambda: os.getxattr("file", "user.none"))
    show("listxattr", lambda: sorted(os.listxattr("file")))
    show("llistxattr", lambda: sorted(os.listxattr("link", follow_symlinks=False)))
    show("flistxattr", lambda: sorted(os.listxattr(fd)))
    # directories: getdents64 with telldir/seekdir, lseek on a directory, chdir family
    show("listdir", lambda: sorted(os.listdir("dir")))
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.c_void_p
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = libc.closedir.argtypes = [ctypes.c_void_p]
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]

    def names(stream: int, count: int) -> list[str]:
        found = []
        for _ in range(count):
            entry = libc.readdir(stream)
            if not entry:
                break
            found.append(ctypes.string_at(entry + 19).decode())
        return found

    def seekdir() -> str:
        stream = libc.opendir(b"dir")
        first = names(stream, 3)
        mark = libc.telldir(stream)
        rest = names(stream, 100)
        libc.seekdir(stream, mark)
        again = names(stream, 100)
        libc.closedir(stream)
        return f"{len(first)} {rest == again} {sorted(first + rest)}"

    show("seekdir", seekdir)
    dirfd = os.open("dir", os.O_RDONLY | os.O_DIRECTORY)
    show("lseek-dir", lambda: (os.lseek(dirfd, 0, os.SEEK_SET), os.lseek(dirfd, 0, os.SEEK_CUR)))
    show("read-dir", lambda: os.read(dirfd, 4))
    show("chdir", lambda: (os.chdir("dir"), os.getcwd().replace(root, "ROOT"),
                           sorted(os.listdir("."))))
    show("relative-up", lambda: described(os.stat("../file")))
    show("fchdir", lambda: (os.fchdir(here), os.getcwd().replace(root, "ROOT")))
    show("fchdir-dirfd", lambda: (os.fchdir(dirfd), os.getcwd().replace(root, "ROOT"),
                                  os.path.exists("a")))
    os.chdir(root)
    show("O_PATH", lambda: os.read(os.open("file", O_PATH), 1))
    show("O_PATH-fstat", lambda: described(os.fstat(os.open("file", O_PATH))))


if __name__ == "__main__":
    main()
