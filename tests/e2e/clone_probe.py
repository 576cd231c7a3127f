"""FUSE_DEV_IOC_CLONE as a daemon uses it, and its errors (tests/e2e/test_device.py).

``python3 clone_probe.py MOUNTPOINT``: prints one line per step -- the ioctl's result (0 or
the errno name), then serves the mount from clones only: INIT is read from the first clone,
a GETATTR (a ``stat`` run meanwhile) from a clone of that clone, then after umount2 a read of
a clone fails.  The kernel's output is the test's reference.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import subprocess
import sys

from device_probe import IN_HEADER, answer

FUSE_DEV_IOC_CLONE = 0x8004E500


def clone(fd: int, master: int) -> str:
    """ioctl(fd, FUSE_DEV_IOC_CLONE, &master): "0" or the errno name."""
    try:
        fcntl.ioctl(fd, FUSE_DEV_IOC_CLONE, struct.pack("<I", master))
    except OSError as failure:
        return errno.errorcode[failure.errno or 0]
    return "0"


def serve_one(fd: int) -> str:
    """Read one request from `fd` and answer it; its opcode, or the errno of the read."""
    try:
        message = os.read(fd, 1 << 20)
    except OSError as failure:
        return errno.errorcode[failure.errno or 0]
    _, opcode, unique, *_ = IN_HEADER.unpack_from(message)
    answer(fd, opcode, unique, message[IN_HEADER.size :])
    return str(opcode)


def main() -> None:
    """The steps, each printed."""
    mountpoint = sys.argv[1]
    master = os.open("/dev/fuse", os.O_RDWR)
    fresh = os.open("/dev/fuse", os.O_RDWR)
    pipe_out, _ = os.pipe()
    print("clone of an unmounted device", clone(fresh, master))
    print("clone of a pipe", clone(fresh, pipe_out))
    print("clone onto a pipe", clone(pipe_out, master))
    data = f"fd={master},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"probe", os.fsencode(mountpoint), b"fuse.probe", 0, data.encode()) != 0:
        print("mount", errno.errorcode[ctypes.get_errno()])
        sys.exit(1)
    print("clone of the mounted device", clone(fresh, master))
    print("clone onto a clone", clone(fresh, master))
    second = os.open("/dev/fuse", os.O_RDWR)
    print("clone of a clone", clone(second, fresh))
    print("INIT read from the clone", serve_one(fresh))
    stat = subprocess.Popen(["stat", "-c", "%F", mountpoint], stdout=subprocess.PIPE)
    print("GETATTR read from the clone's clone", serve_one(second))
    print("stat says", stat.communicate()[0].decode().strip())
    print("umount2", libc.umount2(os.fsencode(mountpoint), 0))
    print("read after unmount", serve_one(second))


if __name__ == "__main__":
    main()
