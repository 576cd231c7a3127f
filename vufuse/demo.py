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
    lines = [
        "set -e",
        f"MNT={shlex.quote(mountpoint)}",
        f"{shlex.quote(python)} -m vufuse.pyfuse3.run {shlex.quote(str(DEMO_FS))} \"$MNT\" &",
        "daemon=$!",
        # Accesses wait for the daemon's INIT, as on the kernel; this loop only covers the
        # moment before the daemon has called mount(2).
        "i=0; until [ -e \"$MNT/README.txt\" ]; do",
        "  i=$((i+1)); [ $i -lt 100 ] || { echo 'demo: the mount did not appear' >&2; exit 1; }",
        "  sleep 0.1",
        "done",
        "echo \"== inside a vufuse session ($VUFUSE_SESSION), $(id -un), no kernel FUSE\"",
    ]
    for command in TOUR:
        lines.append(f"echo; echo {shlex.quote('$ ' + command)}")
        lines.append(command)
    lines += [
        "echo; echo '$ kill -INT $daemon   # the daemon unmounts and exits'",
        "kill -INT $daemon; wait $daemon",
        "ls -A \"$MNT\" | wc -l | sed 's/^/entries left in the mountpoint: /'",
    ]
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
