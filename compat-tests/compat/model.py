"""The harness's vocabulary: programs, workloads, rows and their statuses.

Kept free of I/O so the catalogue, the script generator and the report can share it and the
unit tests can build any of them by hand.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class Status(enum.StrEnum):
    """The outcome of one (program, workload, backend) row.

    ``UNSUPPORTED`` is its own status, never folded into pass or fail: it says the backend could
    not mount the program at all (today's state of the vufuse backend), with the error it printed.
    """

    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "not yet supported"
    SKIPPED = "skipped"
    ERROR = "harness error"


class Access(enum.StrEnum):
    """Whether a program's mount may be written; write workloads only run on ``RW`` mounts."""

    RO = "ro"
    RW = "rw"


class Reference(enum.StrEnum):
    """Where the reference directory comes from.

    ``TREE``: a copy of the fixture tree the program serves (mirrors, images, archives).
    ``DECLARED``: files the program is known to serve (libfuse's hello), written by the harness.
    ``SNAPSHOT``: ``cp -a`` of the mount taken first in the same session, for filesystems whose
    content only the program knows (our demofs); it checks self-consistency, not correctness.
    """

    TREE = "tree"
    DECLARED = "declared"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True)
class Workspace:
    """The directories one (program, backend) session works in, all under ``base``."""

    base: Path

    @property
    def src(self) -> Path:
        """The fixture tree (or a program's backing directory)."""
        return self.base / "src"

    @property
    def ref(self) -> Path:
        """The plain directory the reference workloads run on."""
        return self.base / "ref"

    @property
    def mnt(self) -> Path:
        """The mount point."""
        return self.base / "mnt"

    @property
    def store(self) -> Path:
        """Images, archives, upper/work dirs, keys: whatever the program's storage needs."""
        return self.base / "store"

    @property
    def scratch(self) -> Path:
        """Where workloads put copies and extracted archives (always a plain directory)."""
        return self.base / "scratch"

    @property
    def out(self) -> Path:
        """Per-step stdout/stderr/exit status files, written by the session scripts."""
        return self.base / "out"

    @property
    def home(self) -> Path:
        """HOME for the session, so no caller's dotfiles (git, ssh) leak into results."""
        return self.base / "home"


@dataclass(frozen=True)
class Context:
    """What a program's command line may refer to when it is built for one session."""

    workspace: Workspace
    user: str
    uid: int
    gid: int
    repo: Path
    externals: Path
    sshd_port: int = 0


@dataclass(frozen=True)
class Program:
    """One FUSE program and how to mount it.

    ``mount_argv`` builds the foreground command (the harness backgrounds it itself, so a daemon
    never escapes by forking). ``root_in_mount`` is the path inside the mount that shows the
    fixture tree ("" for the mount root; the source path for daemons that mirror ``/``).
    ``prepare`` builds images, archives and backing dirs in the workspace before the session.
    """

    name: str
    description: str
    access: Access
    mount_argv: Callable[[Context], list[str]]
    requires: tuple[str, ...] = ()
    reference: Reference = Reference.TREE
    declared_files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    prepare: Callable[[Context], None] | None = None
    root_in_mount: Callable[[Context], str] = lambda context: ""
    seed: bool = False
    passthrough: bool = False
    needs_sshd: bool = False
    only_workloads: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    quick: bool = False


@dataclass(frozen=True)
class Row:
    """One cell of the matrix: what happened to a workload of a program on a backend."""

    program: str
    workload: str
    backend: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    details: dict[str, object] = field(default_factory=dict)

    def key(self) -> tuple[str, str, str]:
        """Identity of the row across runs (used to merge partial runs into latest.json)."""
        return (self.program, self.workload, self.backend)

    def to_json(self) -> dict[str, object]:
        """The row as stored in results JSON."""
        return {
            "program": self.program,
            "workload": self.workload,
            "backend": self.backend,
            "status": str(self.status),
            "reason": self.reason,
            "seconds": round(self.seconds, 2),
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Row:
        """Inverse of :meth:`to_json`."""
        details = data.get("details") or {}
        return cls(
            program=str(data["program"]),
            workload=str(data["workload"]),
            backend=str(data["backend"]),
            status=Status(str(data["status"])),
            reason=str(data.get("reason", "")),
            seconds=float(data.get("seconds", 0.0)),  # type: ignore[arg-type]
            details=dict(details) if isinstance(details, dict) else {},
        )
