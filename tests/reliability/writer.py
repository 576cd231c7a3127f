"""Data-safety probes against the scripted daemon; each step prints one line, and appends a
MARK line to the daemon's request log after its syscall returned (the log is O_APPEND)."""

from __future__ import annotations

import errno
import os
import sys


def mark(log: str, text: str) -> None:
    with open(log, "a") as file:
        file.write(f"MARK {text}\n")


def outcome(call: object) -> str:
    try:
        call()  # type: ignore[operator]
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def main() -> None:
    mountpoint, log = sys.argv[1], sys.argv[2]
    payload = bytes(range(256)) * 4000  # 1,024,000 bytes: several WRITEs

    fd = os.open(f"{mountpoint}/wfile", os.O_WRONLY)
    written = 0
    while written < len(payload):
        written += os.write(fd, payload[written : written + 7000])
    print("fsync", outcome(lambda: os.fsync(fd)), flush=True)
    mark(log, "fsync returned")
    print("close", outcome(lambda: os.close(fd)), flush=True)
    mark(log, "close returned")
    with open(f"{mountpoint}/wfile", "rb") as file:
        back = file.read()
    print("read back", "equal" if back == payload else f"DIFFERENT {len(back)}", flush=True)

    fd = os.open(f"{mountpoint}/flushfail", os.O_WRONLY)
    os.write(fd, b"x" * 100)
    print("flushfail close", outcome(lambda: os.close(fd)), flush=True)

    fd = os.open(f"{mountpoint}/fsyncfail", os.O_WRONLY)
    os.write(fd, b"y" * 100)
    print("fsyncfail fsync", outcome(lambda: os.fsync(fd)), flush=True)
    print("fsyncfail fdatasync", outcome(lambda: os.fdatasync(fd)), flush=True)
    print("fsyncfail close", outcome(lambda: os.close(fd)), flush=True)

    # Written, never closed: the process exits; the data was sent before write returned.
    pid = os.fork()
    if pid == 0:
        fd = os.open(f"{mountpoint}/wfile", os.O_WRONLY)
        os.pwrite(fd, b"EXIT-WITHOUT-CLOSE", 0)
        os._exit(0)
    os.waitpid(pid, 0)
    mark(log, "child exited")
    with open(f"{mountpoint}/wfile", "rb") as file:
        head = file.read(18)
    print("after exit", head.decode(errors="replace"), flush=True)


if __name__ == "__main__":
    main()
