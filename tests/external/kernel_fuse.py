"""Helpers for tests that mount on the real kernel FUSE: skip conditions, mount and unmount.

They need root, /dev/fuse and fusermount3 (apt package fuse3); elsewhere they skip, so the
unprivileged main suite stays green and the root pass (``pytest -m kernel``) runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ALIAS_DIR = REPO_ROOT / "vufuse" / "pyfuse3" / "_alias"


def require_kernel_fuse() -> None:
    """Skip the calling test unless we are root with /dev/fuse and fusermount3."""
    if os.geteuid() != 0:
        pytest.skip("needs root for the real kernel FUSE")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    if shutil.which("fusermount3") is None:
        pytest.skip("fusermount3 missing (apt-get install fuse3)")


def is_mounted(path: Path | str) -> bool:
    """Whether *path* is a mount point according to /proc/self/mountinfo."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mountinfo:
        return any(line.split()[4] == target for line in mountinfo)


def start_daemon(
    argv: Sequence[str], mountpoint: Path, env: dict[str, str] | None = None, **popen: object
) -> subprocess.Popen[bytes]:
    """Start a filesystem process and wait until its mount is live (fail after 20 s)."""
    process = subprocess.Popen(
        [sys.executable, *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        **popen,  # type: ignore[call-overload]
    )
    deadline = time.monotonic() + 20
    while not is_mounted(mountpoint):
        if process.poll() is not None:
            pytest.fail(f"{argv} exited with {process.returncode} before mounting")
        if time.monotonic() > deadline:
            stop_daemon(process, mountpoint)
            pytest.fail(f"{argv} did not mount {mountpoint}")
        time.sleep(0.05)
    os.stat(mountpoint)  # waits for INIT to be answered
    return process


def stop_daemon(process: subprocess.Popen[bytes], mountpoint: Path) -> int | None:
    """Unmount like a user would (fusermount3 -u) and return the daemon's exit status."""
    if is_mounted(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False)
    try:
        return process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
    finally:
        if is_mounted(mountpoint):
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def libfuse_mapped(pid: int) -> bool:
    """Whether any libfuse shared object is mapped into process *pid*."""
    with open(f"/proc/{pid}/maps") as maps:
        return any("libfuse" in line for line in maps)
