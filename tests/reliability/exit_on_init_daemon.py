"""A FUSE "daemon" that mounts, reads INIT and exits 3 without answering it.

Usage: python3 exit_on_init_daemon.py MOUNTPOINT
"""

from __future__ import annotations

import ctypes
import os
import sys


def main() -> None:
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    data = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    if libc.mount(b"exitinit", os.fsencode(sys.argv[1]), b"fuse.exitinit", 0, data.encode()):
        sys.exit(f"exitinit: mount: {os.strerror(ctypes.get_errno())}")
    os.read(fd, 1 << 20)  # INIT
    print("exitinit: read INIT, exiting", file=sys.stderr, flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
