"""`make demo`: one session, the demo filesystem mounted inside it, real commands on it.

Needs no FUSE package and no privilege: the demo filesystem (examples/fs/demofs.py) runs on
our pure-Python pyfuse3 API, opens the session's emulated /dev/fuse and calls mount(2), which
the session serves. The script below is what a person would type in `vufuse run -- bash`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_FS = PROJECT_ROOT / "examples" / "fs" / "demofs.py"

# Each line is shown with a "$ " prompt before it runs.
TOUR = [
    "ls -l $MNT",
    "cat $MNT/README.txt",
    "find $MNT | sort",
    "readlink $MNT/latest",
    "stat $MNT/hello.txt",
    "cat $MNT/live/clock.txt",
    "df -h $MNT",
    "findmnt $MNT",
    "grep -r -l frog $MNT",
]


def session_script(python: str, mountpoint: str) -> str:
    """The shell script the session runs: mount, the tour, unmount."""
    mount = f"vufuse mount {shlex.quote(python)} {shlex.quote(str(DEMO_FS))} $MNT"
    lines = [
        "set -e",
        f"MNT={shlex.quote(mountpoint)}",
        "echo \"== inside a vufuse session ($VUFUSE_SESSION), $(id -un), no kernel FUSE\"",
        # `vufuse mount` returns once the daemon has mounted and answered INIT.
        f"echo; echo {shlex.quote('$ ' + mount)}",
        mount,
    ]
    for command in [*TOUR, "vufuse mounts", "vufuse umount $MNT"]:
        lines.append(f"echo; echo {shlex.quote('$ ' + command)}")
        lines.append(command)
    lines.append("ls -A \"$MNT\" | wc -l | sed 's/^/entries left in the mountpoint: /'")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the demo; returns the session's exit status."""
    with tempfile.TemporaryDirectory(prefix="vufuse-demo-") as workdir:
        mountpoint = os.path.join(workdir, "mnt")
        os.mkdir(mountpoint)
        script = session_script(sys.executable, mountpoint)
        command = [sys.executable, "-m", "vufuse.cli", "run", "--", "sh", "-c", script]
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
