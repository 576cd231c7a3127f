"""Run os calls on paths and print `LABEL ok RESULT` or `LABEL ERRNONAME`, one line each.

Usage: python3 probe.py MOUNTPOINT OPERATION:NAME...  (operations: stat, list, read)
"""

from __future__ import annotations

import errno
import os
import stat
import sys


def main() -> None:
    mountpoint = sys.argv[1]
    for spec in sys.argv[2:]:
        operation, name = spec.split(":", 1)
        path = os.path.join(mountpoint, name)
        try:
            if operation == "stat":
                result = stat.filemode(os.stat(path).st_mode)
            elif operation == "list":
                result = ",".join(sorted(os.listdir(path)))
            else:
                with open(path, "rb") as file:
                    result = file.read().decode(errors="replace").strip()
            print(f"{spec} ok {result}", flush=True)
        except OSError as exc:
            print(f"{spec} {errno.errorcode.get(exc.errno or 0, exc.errno)}", flush=True)


if __name__ == "__main__":
    main()
