"""A FUSE "daemon" that mounts and then never answers INIT (for `vufuse mount --timeout`)."""

from __future__ import annotations

import ctypes
import os
import sys
import time


def main() -> None:
    mountpoint = sys.argv[1]
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    data = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    if libc.mount(b"noinit", os.fsencode(mountpoint), b"fuse.noinit", 0, data.encode()) != 0:
        print(f"noinit: mount: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        sys.exit(1)
    print("noinit: mounted, not answering", file=sys.stderr, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
