"""Run inside a session by test_unix_sockets.py: unix sockets bound on the mount DIR (argv[1]).

Prints one line per step: what worked, or the errno name of what failed.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any

STREAM, DGRAM = socket.SOCK_STREAM, socket.SOCK_DGRAM


def attempt(label: str, step: Callable[[], Any]) -> None:
    """Run `step`; print ok or the errno's name."""
    try:
        step()
    except OSError as failure:
        print(label, errno.errorcode[failure.errno or 0])
    else:
        print(label, "ok")


def unix(kind: int = STREAM) -> socket.socket:
    """A new unix socket."""
    return socket.socket(socket.AF_UNIX, kind)


def main(directory: str) -> None:
    """The steps, in the order EXPECTED lists them."""
    os.umask(0o022)
    path = os.path.join(directory, "s")
    server = unix()
    attempt("bind", lambda: server.bind(path))
    st = os.lstat(path)
    print("type sock", stat.S_ISSOCK(st.st_mode), "mode", oct(st.st_mode & 0o777),
          "nlink", st.st_nlink)  # fmt: skip
    server.listen(4)
    child = os.fork()
    if child == 0:
        client = unix()
        client.connect(path)
        client.sendall(b"hello from child")
        client.close()
        os._exit(0)
    connection, _ = server.accept()
    print("got", connection.recv(100))
    connection.close()
    os.waitpid(child, 0)
    attempt("bind existing", lambda: unix().bind(path))
    attempt("rebind bound", lambda: server.bind(os.path.join(directory, "s2")))
    print("s2 exists", os.path.exists(os.path.join(directory, "s2")))
    attempt("dgram connect to stream", lambda: unix(DGRAM).connect(path))
    os.mknod(os.path.join(directory, "n"), stat.S_IFSOCK | 0o644)
    attempt("connect mknod sock", lambda: unix().connect(os.path.join(directory, "n")))
    os.close(os.open(os.path.join(directory, "f"), os.O_CREAT | os.O_WRONLY, 0o644))
    attempt("connect regular", lambda: unix().connect(os.path.join(directory, "f")))
    attempt("connect missing", lambda: unix().connect(os.path.join(directory, "missing")))
    attempt("bind missing dir", lambda: unix().bind(os.path.join(directory, "nodir/x")))
    server.close()
    attempt("connect after close", lambda: unix().connect(path))
    for name in ("s", "n", "f"):
        os.unlink(os.path.join(directory, name))
    receiver = unix(DGRAM)
    receiver.bind(os.path.join(directory, "dg"))
    sender = unix(DGRAM)
    attempt("dgram connect", lambda: sender.connect(os.path.join(directory, "dg")))
    sender.send(b"dgram!")
    print("dgram got", receiver.recv(10))
    os.chdir(directory)
    listener = unix()
    attempt("relative bind", lambda: listener.bind("rel"))
    listener.listen(1)
    attempt("relative connect", lambda: unix().connect("rel"))
    print(sorted(os.listdir(".")))


if __name__ == "__main__":
    main(sys.argv[1])
