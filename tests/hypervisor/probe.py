"""Runs inside a session (or natively) and prints, as JSON, what Python sees under a root.

Used by test_e2e.py: the same probe on the virtual tree and on the identical real tree must
print the same thing.  Only standard library, so that any python3 can run it.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import sys

NAMES = ["", "hello.txt", "dir", "dir/", "dir/a", "dir/a/", "dir/empty", "dir/sub", "dir/sub/deep",
         "link", "link/", "dirlink", "dirlink/sub/deep", "dangling", "loop", "missing",
         "hello.txt/x", "secret", "up", "dir/../hello.txt", "x" * 300]


def attempt(function, *args):  # noqa: ANN001, ANN201 - a tiny script
    try:
        return function(*args)
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))


def stat_view(result):  # noqa: ANN001, ANN201
    if isinstance(result, str):
        return result
    return [result.st_mode, result.st_size if not (result.st_mode & 0o040000) else -1,
            result.st_nlink, result.st_uid, result.st_gid, result.st_mtime_ns]


def read_all(path):  # noqa: ANN001, ANN201
    with open(path, "rb") as f:
        data = f.read()
        f.seek(3)
        tail = f.read(4)
        end = f.seek(0, os.SEEK_END)
    return [len(data), hashlib.sha256(data).hexdigest()[:16], tail.hex(), end]


def pread_view(path):  # noqa: ANN001, ANN201
    fd = os.open(path, os.O_RDONLY)
    try:
        first = os.pread(fd, 5, 2)
        vec = os.preadv(fd, [bytearray(3), bytearray(4)], 1)
        flags = ctypes_fcntl(fd)
        return [first.hex(), vec, flags, os.lseek(fd, 0, os.SEEK_CUR),
                attempt(os.lseek, fd, -1, os.SEEK_SET)]
    finally:
        os.close(fd)


def ctypes_fcntl(fd):  # noqa: ANN001, ANN201
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL)


def seekdir_view(path):  # noqa: ANN001, ANN201
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.c_void_p
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.closedir.argtypes = [ctypes.c_void_p]
    handle = libc.opendir(os.fsencode(path))
    if not handle:
        return "opendir failed"

    def name() -> str | None:
        entry = libc.readdir(handle)
        if not entry:
            return None
        return ctypes.string_at(entry + 19).decode()

    first = [name(), name()]
    position = libc.telldir(handle)
    rest = []
    while (n := name()) is not None:
        rest.append(n)
    libc.seekdir(handle, position)
    again = []
    while (n := name()) is not None:
        again.append(n)
    libc.closedir(handle)
    return [sorted(first + rest), rest == again]


def main(root: str) -> None:
    os.chdir(root)
    result: dict[str, object] = {}
    for name in NAMES:
        path = os.path.join(root, name) if name else root
        result[f"stat {name}"] = stat_view(attempt(os.stat, path))
        result[f"lstat {name}"] = stat_view(attempt(os.lstat, path))
        result[f"read {name}"] = attempt(read_all, path)
        result[f"listdir {name}"] = attempt(lambda p: sorted(os.listdir(p)), path)
        result[f"readlink {name}"] = attempt(os.readlink, path)
        result[f"access {name}"] = [os.access(path, m) for m in (os.F_OK, os.R_OK, os.X_OK)]
        result[f"rel-stat {name}"] = stat_view(attempt(os.stat, name or "."))
    result["pread"] = pread_view(os.path.join(root, "dir/a"))
    result["seekdir"] = seekdir_view(os.path.join(root, "dir"))
    result["scandir"] = sorted((e.name, e.is_dir(follow_symlinks=False), e.is_symlink())
                               for e in os.scandir(root))
    os.chdir(os.path.join(root, "dir"))
    result["cwd"] = os.path.relpath(os.getcwd(), root)
    result["cwd listdir"] = sorted(os.listdir("."))
    result["cwd stat"] = stat_view(attempt(os.stat, "sub/deep"))
    os.chdir("sub")
    result["cwd2"] = os.path.relpath(os.getcwd(), root)
    result["cwd2 read"] = attempt(read_all, "deep")
    result["cwd2 up"] = stat_view(attempt(os.stat, "../../hello.txt"))
    result["cwd2 out"] = attempt(read_all, "../../../real/hello.txt")
    result["cwd2 far"] = stat_view(attempt(os.stat, "../" * 40 + "etc"))
    result["cwd2 far listdir"] = attempt(lambda p: sorted(os.listdir(p))[:5], "../" * 30)
    os.chdir("../..")
    result["cwd3"] = os.path.relpath(os.getcwd(), root)
    os.chdir("..")
    result["cwd4"] = sorted(os.listdir("."))
    fd = os.open(os.path.join(root, "dir"), os.O_RDONLY | os.O_DIRECTORY)
    result["openat"] = stat_view(attempt(lambda p: os.stat(p, dir_fd=fd), "sub/deep"))
    result["fstat dir"] = stat_view(os.fstat(fd))
    os.fchdir(fd)
    result["fchdir"] = os.path.relpath(os.getcwd(), root)
    os.close(fd)
    json.dump(result, sys.stdout, indent=0, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
