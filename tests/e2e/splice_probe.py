"""sendfile, splice and copy_file_range between files of two mounts and a real directory.

Run as ``python3 splice_probe.py MOUNT1 MOUNT2 REALDIR`` where MOUNT1/a holds b"hello-world\\n"
and MOUNT1, MOUNT2 are two FUSE mounts.  Prints one line per call, ``name result``, where
result is the byte count or the errno name, then the length and contents of the files
written (NULs as dots).  The same output is expected on the kernel's FUSE
(tests/e2e/test_splice.py).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable


def main() -> None:
    """Each call of the matrix, then what landed in the files."""
    mount1, mount2, real = sys.argv[1:4]

    def attempt(name: str, function: Callable[[], int]) -> None:
        try:
            print(name, function())
        except OSError as failure:
            print(name, errno.errorcode[failure.errno or 0])

    def path(directory: str, name: str) -> str:
        return os.path.join(directory, name)

    create = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    source = os.open(path(mount1, "a"), os.O_RDONLY)
    other = os.open(path(mount2, "b"), create, 0o644)
    real_out = os.open(path(real, "r"), create, 0o644)
    real_in = os.open(path(real, "in"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(real_in, b"from-real\n")
    same = os.open(path(mount1, "c"), create, 0o644)
    appending = os.open(path(mount2, "d"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    read_only = os.open(path(mount2, "b"), os.O_RDONLY)
    directory = os.open(mount1, os.O_RDONLY | os.O_DIRECTORY)
    pipe_out, pipe_in = os.pipe()

    attempt("cfr mount->other-mount", lambda: os.copy_file_range(source, other, 100, 0, 0))
    attempt("cfr mount->same-mount", lambda: os.copy_file_range(source, same, 100, 0, 0))
    attempt("cfr mount->real", lambda: os.copy_file_range(source, real_out, 100, 0, 0))
    attempt("cfr real->mount", lambda: os.copy_file_range(real_in, other, 100, 0, 0))
    attempt("sendfile mount->mount", lambda: os.sendfile(other, source, 0, 100))
    attempt("sendfile real->mount", lambda: os.sendfile(other, real_in, 0, 100))
    attempt("sendfile mount->real", lambda: os.sendfile(real_out, source, 6, 100))
    attempt("sendfile mount->real pos", lambda: os.sendfile(real_out, source, None, 5))
    attempt("sendfile mount->real pos2", lambda: os.sendfile(real_out, source, None, 100))
    attempt("sendfile real->append", lambda: os.sendfile(appending, real_in, 0, 100))
    attempt("sendfile real->read-only", lambda: os.sendfile(read_only, real_in, 0, 100))
    attempt("sendfile dir->real", lambda: os.sendfile(real_out, directory, 0, 100))
    attempt("sendfile mount->read-only", lambda: os.sendfile(read_only, source, 0, 100))
    attempt("splice mount->pipe", lambda: os.splice(source, pipe_in, 5, offset_src=0))
    attempt("splice pipe->mount", lambda: os.splice(pipe_out, other, 5, offset_dst=40))
    os.write(pipe_in, b"zz")
    attempt("splice pipe->append", lambda: os.splice(pipe_out, appending, 2))
    attempt("splice mount->real", lambda: os.splice(source, real_out, 5))
    attempt("splice pipe->read-only", lambda: os.splice(pipe_out, read_only, 2))
    attempt("splice dir->pipe", lambda: os.splice(directory, pipe_in, 2))
    os.write(pipe_in, b"yy")
    attempt("splice pipe->mount pos", lambda: os.splice(pipe_out, other, 4))
    attempt("splice mount->itself", lambda: os.splice(source, source, 1))
    for name in (path(mount2, "b"), path(mount1, "c"), path(mount2, "d"), path(real, "r")):
        with open(name, "rb") as file:
            data = file.read()
            print(os.path.basename(name), len(data), data.replace(b"\0", b"."))


if __name__ == "__main__":
    main()
