"""Run inside a session: talk to the control socket raw (malformed messages, another uid).

Usage: control_client.py malformed | as-uid UID
"""

from __future__ import annotations

import json
import os
import socket
import sys

MESSAGES = [
    b"this is not json\n",
    b"[1, 2]\n",
    b'{"op": 3}\n',
    b'{"no": "op"}\n',
    b'{"op": "no-such-op"}\n',
    b'{"op": "abort"}\n',
    b'{"op": "abort", "mountpoint": 7}\n',
    b'{"op": "mount-state", "token": null}\n',
    b"\xff\xfe\n",
    b"\n",
    b'{"op": "ping"}\n',
]


def connect() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(os.path.join(os.environ["VUFUSE_SESSION"], "control"))
    return sock


def malformed() -> None:
    sock = connect()
    replies = sock.makefile("rb")
    for message in MESSAGES:
        sock.sendall(message)
        print(json.dumps(json.loads(replies.readline())))
    sock.close()
    sock = connect()  # the session still answers new connections
    sock.sendall(b'{"op": "status"}\n')
    print("status ok:", json.loads(sock.makefile("rb").readline())["ok"])


def as_uid(uid: int) -> None:
    """Make the socket reachable by `uid`, connect as it from a child, restore the modes."""
    runtime = os.environ["VUFUSE_SESSION"]
    path = os.path.join(runtime, "control")
    os.chmod(runtime, 0o755)
    os.chmod(path, 0o666)
    try:
        child = os.fork()
        if child == 0:
            try:
                os.setgid(uid)
                os.setuid(uid)
                sock = connect()
                try:
                    sock.sendall(b'{"op": "status"}\n')
                except BrokenPipeError:
                    pass  # refused at once: the server's answer is already queued for us
                line = sock.makefile("rb").readline()
                print("other uid got:", line.decode().strip(), flush=True)
                os._exit(0)
            except BaseException as error:  # noqa: BLE001 - report anything, never return
                print("child failed:", error, flush=True)
                os._exit(1)
        _, status = os.waitpid(child, 0)
        print("child status:", os.waitstatus_to_exitcode(status))
    finally:
        os.chmod(path, 0o600)
        os.chmod(runtime, 0o700)


if __name__ == "__main__":
    if sys.argv[1] == "malformed":
        malformed()
    else:
        as_uid(int(sys.argv[2]))
