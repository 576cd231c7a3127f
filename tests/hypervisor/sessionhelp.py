"""Helpers for the end-to-end tests: run a command in a Session, or natively."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from memprovider import MemProvider

from hypervisor.mounts import MountTable

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def tracer_available() -> bool:
    """True when the C core is built (the e2e tests need it)."""
    try:
        from hypervisor import _tracer  # type: ignore[attr-defined]
    except ImportError:
        return False
    return hasattr(_tracer, "Tracer")


needs_tracer = pytest.mark.skipif(not tracer_available(), reason="C core not built")


@dataclass
class Outcome:
    """What a command run in a session did."""

    status: int
    stdout: str
    stderr: str


async def run_session(
    argv: Sequence[str | bytes],
    mounts: MountTable | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run `argv` in a Session in this process; stdout/stderr captured through files."""
    from hypervisor.session import Session

    session = Session(mounts)
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            environment = None
            if env is not None:
                environment = [f"{k}={v}".encode() for k, v in env.items()]
            status = await session.run(
                [os.fsencode(a) for a in argv], environment,
                os.fsencode(cwd) if cwd else None,
            )
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return Outcome(status, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"))


def native(argv: Sequence[str], cwd: str | None = None) -> Outcome:
    """Run `argv` without vufuse, for comparison."""
    import subprocess

    done = subprocess.run(list(argv), capture_output=True, cwd=cwd, stdin=subprocess.DEVNULL)
    return Outcome(done.returncode, done.stdout.decode(errors="replace"),
                   done.stderr.decode(errors="replace"))


@dataclass
class World:
    """A real tree and the same tree in memory, mounted in a session's mount table."""

    root: Path
    real: Path
    mnt: Path
    provider: MemProvider
    mounts: MountTable


def sync_times(real: Path, provider: MemProvider) -> None:
    """Give the real tree the provider's timestamps (atime, mtime)."""
    node = next(iter(provider.nodes.values()))
    atime, mtime = node.attrs.atime_ns, node.attrs.mtime_ns
    for dirpath, dirnames, filenames in os.walk(real, topdown=False):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(atime, mtime), follow_symlinks=False)
    os.utime(real, ns=(atime, mtime))
