"""The two backends: who runs a session script, and how everything it started is cleaned up.

``kernel`` runs the script as root on the real kernel FUSE: the reference behaviour.
``vufuse`` runs the very same script inside ``vufuse run`` as the ordinary test user, for whom
/dev/fuse is not openable, exactly as a user would: ``runuser -u USER -- vufuse run -- sh -c``.

Cleanup never relies on the script alone: every process a session starts carries a marker in
its environment (``VUFUSE_COMPAT_RUN=<id>``), so after the session the harness kills precisely
those by pid (never by name) and lazily detaches any mount left under the workspace.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER = "VUFUSE_COMPAT_RUN"


@dataclass(frozen=True)
class Outcome:
    """How a script run ended: its exit status (None: we had to kill it) and its streams."""

    status: int | None
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class Backend:
    """Where and as whom session scripts run."""

    name: str
    user: str
    repo: Path

    @property
    def uid(self) -> int:
        """The uid the sessions run as."""
        return pwd.getpwnam(self.user).pw_uid

    @property
    def gid(self) -> int:
        """The primary gid the sessions run as."""
        return pwd.getpwnam(self.user).pw_gid

    @property
    def vufuse(self) -> Path:
        """The vufuse launcher of the checkout's dev venv."""
        return self.repo / ".venv" / "bin" / "vufuse"

    def unavailable(self) -> str | None:
        """Why this backend cannot run here at all, or None."""
        if self.name == "kernel":
            if os.geteuid() != 0:
                return "the kernel backend needs root (the reference runs as root with /dev/fuse)"
            if not os.path.exists("/dev/fuse"):
                return "no /dev/fuse on this machine"
            return None
        if not self.vufuse.exists():
            return f"{self.vufuse} missing (make venv)"
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            return f"no user {self.user} (tools/test-user.sh creates it)"
        return None

    def _as_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0 and self.user != "root":
            return ["runuser", "-u", self.user, "--", *argv]
        return argv

    def reference_argv(self, script: str) -> list[str]:
        """Run the reference workloads: natively, as the backend's user, never under vufuse."""
        return self._as_user(["sh", "-c", script])

    def session_argv(self, script: str) -> list[str]:
        """Run a mount session on this backend."""
        if self.name == "vufuse":
            return self._as_user([str(self.vufuse), "run", "--", "sh", "-c", script])
        return self._as_user(["sh", "-c", script])


def run_script(argv: list[str], env: Mapping[str, str], timeout: float, workspace: Path) -> Outcome:
    """Run *argv* in its own process group with a fresh marker; always clean up after it.

    On timeout the whole group is killed; then marked stragglers (a daemon that setsid'ed away)
    are killed and mounts left under *workspace* are detached.
    """
    marker = uuid.uuid4().hex
    full_env = {**env, MARKER: marker}
    started = time.monotonic()
    # Files, not pipes: a straggler holding a pipe open would keep us reading until it dies.
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            argv,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        status: int | None
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            _kill_group(process.pid)
            kill_marked(marker)
            if process.poll() is None:
                process.kill()
            process.wait()
            detach_mounts_under(workspace)
        stdout.seek(0)
        stderr.seek(0)
        return Outcome(
            status,
            stdout.read().decode(errors="replace"),
            stderr.read().decode(errors="replace"),
            time.monotonic() - started,
        )


def _kill_group(pgid: int) -> None:
    """TERM then KILL a process group we created (start_new_session), if anything is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.3)


def marked_pids(marker: str) -> list[int]:
    """Pids whose environment holds our marker (readable for root; for a user, their own)."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle in environ.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def kill_marked(marker: str) -> list[int]:
    """Kill every process that carries *marker*; returns the pids found."""
    pids = marked_pids(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        if not alive:
            break
        time.sleep(0.5)
        pids = [pid for pid in alive if os.path.exists(f"/proc/{pid}")]
    return pids


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below *path*, deepest first (per /proc/self/mountinfo)."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def detach_mounts_under(path: Path) -> list[str]:
    """Lazily unmount whatever is still mounted below *path* (kernel backend leftovers)."""
    left = mounts_under(path)
    for point in left:
        subprocess.run(
            ["fusermount3", "-u", "-z", point], capture_output=True, timeout=30, check=False
        )
        if point in mounts_under(path):
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)
    return left
