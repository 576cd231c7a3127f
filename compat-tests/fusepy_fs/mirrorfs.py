#!/usr/bin/env python3
"""A mirror filesystem on the fusepy-style API, for fusepy (libfuse2) and mfusepy (libfuse3).

Usage: mirrorfs.py --api fusepy|mfusepy SOURCE MOUNTPOINT

Written for compat-tests so that the two ctypes bindings most Python FUSE programs use are
exercised through libfuse's high-level API with real workloads. It maps each path operation
onto the same operation below SOURCE, by file descriptor where the API hands us one, so
POSIX semantics (permissions, O_APPEND, holes, renames over open files) come from the backing
filesystem rather than from code of ours. Runs in the foreground until unmounted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import Any


def build_operations(fuse: Any, source: str) -> Any:
    """The Operations subclass for *fuse* (the imported fusepy or mfusepy module)."""

    def real(path: str) -> str:
        return os.path.join(source, path.lstrip("/"))

    def oserror(function: Any) -> Any:
        """Turn OSError into the FuseOSError the bindings translate into -errno."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except OSError as error:
                raise fuse.FuseOSError(error.errno or errno.EIO) from None

        wrapper.__name__ = function.__name__
        return wrapper

    class Mirror(fuse.Operations):
        """Every operation forwarded to SOURCE; file handles are real fds."""

        # Both bindings then pass and take times as integer nanoseconds (no float rounding).
        use_ns = True

        @oserror
        def access(self, path: str, amode: int) -> int:
            if not os.access(real(path), amode, follow_symlinks=False):
                raise fuse.FuseOSError(errno.EACCES)
            return 0

        @oserror
        def getattr(self, path: str, fh: int | None = None) -> dict[str, int | float]:
            st = os.fstat(fh) if fh is not None else os.lstat(real(path))
            keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks", "st_rdev")
            attrs: dict[str, int | float] = {key: getattr(st, key) for key in keys}
            for key in ("st_atime", "st_mtime", "st_ctime"):
                attrs[key] = getattr(st, key + "_ns")
            return attrs

        @oserror
        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *os.listdir(real(path))]

        @oserror
        def readlink(self, path: str) -> str:
            return os.readlink(real(path))

        @oserror
        def mknod(self, path: str, mode: int, dev: int) -> int:
            os.mknod(real(path), mode, dev)
            return 0

        @oserror
        def mkdir(self, path: str, mode: int) -> int:
            os.mkdir(real(path), mode)
            return 0

        @oserror
        def rmdir(self, path: str) -> int:
            os.rmdir(real(path))
            return 0

        @oserror
        def unlink(self, path: str) -> int:
            os.unlink(real(path))
            return 0

        @oserror
        def symlink(self, target: str, source_path: str) -> int:
            # fusepy's argument order: (link path, what it points to)
            os.symlink(source_path, real(target))
            return 0

        @oserror
        def link(self, target: str, source_path: str) -> int:
            os.link(real(source_path), real(target))
            return 0

        @oserror
        def rename(self, old: str, new: str, flags: int = 0) -> int:
            os.rename(real(old), real(new))
            return 0

        @oserror
        def chmod(self, path: str, mode: int, fh: int | None = None) -> int:
            # The kernel resolves symlinks before a chmod reaches us, so *path* is never one.
            os.chmod(real(path), mode)
            return 0

        @oserror
        def chown(self, path: str, uid: int, gid: int, fh: int | None = None) -> int:
            os.lchown(real(path), uid, gid)
            return 0

        @oserror
        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(real(path), length)
            return 0

        @oserror
        def utimens(self, path: str, times: Any = None, fh: int | None = None) -> int:
            if times is None:
                os.utime(real(path), follow_symlinks=False)
            elif all(isinstance(value, int) for value in times):
                os.utime(real(path), ns=tuple(times), follow_symlinks=False)
            else:
                os.utime(real(path), times=tuple(times), follow_symlinks=False)
            return 0

        @oserror
        def open(self, path: str, flags: int) -> int:
            return os.open(real(path), flags)

        @oserror
        def create(self, path: str, mode: int, fi: Any = None) -> int:
            # Without raw_fi the caller's flags are not passed; the kernel checks the access
            # mode of the caller's fd itself, so a read-write handle serves every caller.
            return os.open(real(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

        @oserror
        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return os.pread(fh, size, offset)

        @oserror
        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            return os.pwrite(fh, data, offset)

        @oserror
        def flush(self, path: str, fh: int) -> int:
            return 0

        @oserror
        def release(self, path: str, fh: int) -> int:
            os.close(fh)
            return 0

        @oserror
        def fsync(self, path: str, datasync: int, fh: int) -> int:
            if datasync:
                os.fdatasync(fh)
            else:
                os.fsync(fh)
            return 0

        @oserror
        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(real(path))
            keys = (
                "f_bavail",
                "f_bfree",
                "f_blocks",
                "f_bsize",
                "f_favail",
                "f_ffree",
                "f_files",
                "f_flag",
                "f_frsize",
                "f_namemax",
            )
            return {key: getattr(st, key) for key in keys}

    return Mirror


def main(argv: list[str]) -> int:
    """Mount SOURCE at MOUNTPOINT with the chosen binding; return when unmounted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=("fusepy", "mfusepy"), required=True)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    options = parser.parse_args(argv)
    fuse = importlib.import_module("fuse" if options.api == "fusepy" else "mfusepy")
    operations = build_operations(fuse, os.path.realpath(options.source))()
    fuse.FUSE(
        operations,
        options.mountpoint,
        foreground=True,
        nothreads=False,
        debug=options.debug,
        fsname=f"mirrorfs-{options.api}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
