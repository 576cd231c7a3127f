"""The reference: the same scripted daemon and the same hostile calls on the real kernel's
FUSE (root pass, `pytest -m kernel`), giving the outcomes the vufuse tests expect.

The four header lies are left out here: the kernel leaves their callers waiting for ever.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliabilityhelp import EXPECTED_REPLIES, HERE, KERNEL_CALLS, REPO

pytestmark = pytest.mark.kernel

HANG_ON_THE_KERNEL = {"stat:lie-short", "stat:lie-long", "stat:err-range", "stat:err-positive"}


def _require_kernel_fuse() -> None:
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.skip("needs root, /dev/fuse and fusermount3")


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as mountinfo:
        return any(line.split()[4] == str(path) for line in mountinfo)


def _serve(argv: list[str], mountpoint: Path) -> subprocess.Popen[bytes]:
    daemon = subprocess.Popen([sys.executable, *argv], stdin=subprocess.DEVNULL,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
    deadline = time.monotonic() + 20
    while not _mounted(mountpoint):
        assert daemon.poll() is None and time.monotonic() < deadline, "daemon did not mount"
        time.sleep(0.05)
    return daemon


def _stop(daemon: subprocess.Popen[bytes], mountpoint: Path) -> None:
    subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False)
    try:
        daemon.wait(20)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def test_scripted_daemon_on_the_kernel(tmp_path: Path) -> None:
    _require_kernel_fuse()
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    daemon = _serve([str(HERE / "hostile_daemon.py"), str(mountpoint), str(tmp_path / "log")],
                    mountpoint)  # fmt: skip
    try:
        probes = [probe for probe in EXPECTED_REPLIES if probe not in HANG_ON_THE_KERNEL]
        done = subprocess.run([sys.executable, str(HERE / "probe.py"), str(mountpoint), *probes],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        _stop(daemon, mountpoint)
    assert done.stdout.splitlines() == [f"{p} {EXPECTED_REPLIES[p]}" for p in probes]


def test_hostile_calls_on_the_kernel(tmp_path: Path) -> None:
    _require_kernel_fuse()
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    daemon = _serve([str(REPO / "examples" / "fs" / "memfs.py"), str(mountpoint)], mountpoint)
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / "hostile_tracee.py"), str(mountpoint), "calls"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        _stop(daemon, mountpoint)
    lines = [line.replace("ENOTSUP", "EOPNOTSUPP") for line in done.stdout.splitlines()]
    assert lines == KERNEL_CALLS.splitlines(), done.stderr
