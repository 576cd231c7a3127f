"""A minimal FUSE daemon that reports what its /dev/fuse shows after the unmount.

``python3 device_probe.py MOUNTPOINT``: opens /dev/fuse, mounts it with mount(2) (as root on
the kernel; anyone inside `vufuse run`), prints ``mounted`` as soon as mount(2) returns, starts a
``stat`` of the mount and waits until it blocks (``stat waits``: accesses wait for INIT), then
answers INIT, GETATTR of the root and STATFS (ENOSYS to the rest) from one thread; once a read
of the device fails it prints ``read ERRNO``, ``poll REVENTS`` (poll with no events asked, as
libfuse's fuse_kern_unmount does) and what the stat said, then exits 0.  The kernel answers
``read ENODEV`` and ``poll POLLERR`` (fuse_dev_poll), and the stat ``directory``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import subprocess
import sys
import time

IN_HEADER = struct.Struct("<IIQQIIIHH")
OUT_HEADER = struct.Struct("<IiQ")
INIT, GETATTR, STATFS, DESTROY = 26, 3, 17, 38
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr (88 bytes)


def reply(fd: int, unique: int, error: int = 0, payload: bytes = b"") -> None:
    """One reply, header and payload in one write (one message)."""
    os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) + payload)


def answer(fd: int, opcode: int, unique: int, body: bytes) -> None:
    """INIT at minor 31, the root's attributes, an empty statfs; ENOSYS otherwise."""
    if opcode == INIT:
        major, minor = struct.unpack_from("<II", body)
        init_out = struct.pack("<IIIIHHIIHHII", 7, min(minor, 31), 0, 0, 16, 12, 65536, 1,
                               32, 0, 0, 0).ljust(64, b"\0")  # fmt: skip
        reply(fd, unique, payload=init_out)
    elif opcode == GETATTR:
        attr = ATTR.pack(1, 0, 0, 0, 0, 0, 0, 0, 0, 0o40755, 2, os.getuid(), os.getgid(),
                         0, 4096, 0)  # fmt: skip
        reply(fd, unique, payload=struct.pack("<QII", 1, 0, 0) + attr)
    elif opcode == STATFS:
        reply(fd, unique, payload=bytes(80))
    elif opcode != DESTROY:
        reply(fd, unique, errno.ENOSYS)


def waits_in_stat(pid: int) -> bool:
    """Whether process `pid` gets to block in its stat of the mount (statx, newfstatat)
    rather than finishing first; bounded (30 s)."""
    for _ in range(3000):
        try:
            with open(f"/proc/{pid}/syscall") as status:
                number = status.read().split(" ", 1)[0]
        except OSError:
            return False
        if number in ("332", "262", "4", "6"):  # statx, newfstatat, stat, lstat
            return True
        time.sleep(0.01)
    return False


def main() -> None:
    """Mount, serve until a read fails, report."""
    mountpoint = sys.argv[1]
    fd = os.open("/dev/fuse", os.O_RDWR)
    data = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"probe", os.fsencode(mountpoint), b"fuse.probe", 0, data.encode()) != 0:
        print("mount", errno.errorcode[ctypes.get_errno()], flush=True)
        sys.exit(1)
    print("mounted", flush=True)  # mount(2) returned; INIT is not answered yet
    # An access made now waits for INIT's answer (fc->initialized), then succeeds.
    stat = subprocess.Popen(["stat", "-c", "%F", mountpoint], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    print("stat", "waits" if waits_in_stat(stat.pid) else "did not wait", flush=True)
    while True:
        try:
            message = os.read(fd, 1 << 20)
        except OSError as failure:
            print("read", errno.errorcode[failure.errno or 0])
            break
        if len(message) < IN_HEADER.size:
            print("read short", len(message))
            break
        _, opcode, unique, *_ = IN_HEADER.unpack_from(message)
        answer(fd, opcode, unique, message[IN_HEADER.size :])
    poller = select.poll()
    poller.register(fd, 0)
    revents = dict(poller.poll(0)).get(fd, 0)
    names = [name for name in ("POLLIN", "POLLOUT", "POLLERR", "POLLHUP")
             if revents & getattr(select, name)]  # fmt: skip
    print("poll", "|".join(names) or "0", flush=True)
    print("stat said", stat.communicate(timeout=30)[0].decode().strip(), flush=True)


if __name__ == "__main__":
    main()
