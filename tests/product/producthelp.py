"""Helpers for the product tests: the `vufuse` console script run as a user would.

Every session runs under a hard timeout; mountpoints live in pytest's tmp_path, which the
session tears down with everything in it (runtime dir, daemons).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
VUFUSE = str(VENV_BIN / "vufuse")
PYTHON = sys.executable
HELLO = str(ROOT / "examples" / "fs" / "hello.py")
NOINIT = str(Path(__file__).with_name("noinit_daemon.py"))
HELLO_LL = "/var/tmp/vufuse-externals/libfuse/hello_ll"
TIMEOUT = 120
HELLO_TEXT = "Hello from vufuse's pure-Python pyfuse3!"


@dataclass
class Result:
    """A finished `vufuse` invocation."""

    status: int
    stdout: str
    stderr: str


def environment(**extra: str) -> dict[str, str]:
    """The caller's environment without any session, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "VUFUSE_SESSION"}
    env.update(VUFUSE=VUFUSE, PY=PYTHON, HELLO=HELLO, NOINIT=NOINIT, HELLO_LL=HELLO_LL)
    env.update(extra)
    return env


def vufuse(*arguments: str, stdin: str = "", env: dict[str, str] | None = None,
           cwd: str | None = None) -> Result:  # fmt: skip
    """Run `vufuse ARGUMENTS` to completion (bounded)."""
    done = subprocess.run(
        [VUFUSE, *arguments], input=stdin, capture_output=True, text=True,
        env=env if env is not None else environment(), timeout=TIMEOUT, cwd=cwd,
    )  # fmt: skip
    return Result(done.returncode, done.stdout, done.stderr)


def in_session(script: str, *options: str, cwd: str | None = None, **extra: str) -> Result:
    """`vufuse run OPTIONS -- sh -euc SCRIPT` with $VUFUSE, $PY, $HELLO, $NOINIT, $HELLO_LL."""
    return vufuse("run", *options, "--", "sh", "-euc", script, env=environment(**extra), cwd=cwd)


def mount_hello(mountpoint: str | Path) -> str:
    """Shell text: `vufuse mount` of examples/fs/hello.py at `mountpoint`."""
    return f'"$VUFUSE" mount "$PY" -m vufuse.pyfuse3.run "$HELLO" "{mountpoint}"'


def leftover_processes(marker: str) -> list[str]:
    """Command lines of processes still running that mention `marker` (should be none)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            found.append(command)
    return found
