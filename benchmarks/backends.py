"""The registry of backends: the ways a workload's command can be run.

A backend wraps a command line (``vufuse run -- CMD``, ``proot CMD``) and gives the workload a
*work directory* on the filesystem under test. For most backends that is a real directory. The
two FUSE backends (``kernel-fuse``: libfuse's ``passthrough_ll`` mounted through the kernel's
/dev/fuse; ``vufuse-fuse``: the same daemon mounted inside a ``vufuse run`` session) hand out a
mount point whose files come from a real *source* directory (``populate_dir``), and the argv
that mounts it (``mount``): a vufuse mount exists only inside one session, so the daemon is
started, and the mount undone, inside every timed command (``benchmarks/c/timed_run.c``), the
same way on both sides, and each run starts on a fresh mount (a cold cache).

A backend that cannot run here is probed, reported as unavailable with the reason, and kept in the
results: a missing column must never look like a column that was never asked for.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.process import run_in_own_group

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Availability:
    """The outcome of probing a backend before any workload runs."""

    available: bool
    reason: str | None = None
    """Why the backend is unavailable (None when available)."""
    version: str | None = None
    """What was measured (tool version or repository revision), for the record."""


@dataclass(frozen=True)
class BackendSession:
    """A backend ready to run commands: what to prepend, and where the workload's files go."""

    work_dir: Path
    """A directory on the filesystem under test, empty when the session starts."""
    prefix: tuple[str, ...] = ()
    populate_dir: Path | None = None
    """Where the workload's files are created, when not ``work_dir`` (a FUSE mount's source)."""
    mount: tuple[str, ...] = ()
    """``MOUNT_POINT DAEMON ARG...``: what ``timed_run`` mounts around each command; () none."""

    @property
    def real_dir(self) -> Path:
        """A real directory of this session: where files are created and commands start."""
        return self.populate_dir or self.work_dir

    def wrap(self, argv: list[str]) -> list[str]:
        """Return ``argv`` run under this backend."""
        return [*self.prefix, *argv]


def _tail(text: str, lines: int = 1) -> str:
    """The last lines of a tool's output: a traceback's last line says why; the rest is noise."""
    return " / ".join(text.strip().splitlines()[-lines:])


class Backend(abc.ABC):
    """One column of the results table."""

    name: str
    description: str
    applies_to: frozenset[str] | None = None
    """Names of the workloads this backend is meant for; None means every workload."""

    @abc.abstractmethod
    def probe(self, timeout: float) -> Availability:
        """Check, quickly, that this backend can run a trivial command here."""

    def command_prefix(self) -> tuple[str, ...]:
        """What is prepended to every command; empty for native."""
        return ()

    @contextlib.contextmanager
    def session(self, work_dir: Path) -> Iterator[BackendSession]:
        """Make the backend ready for a series of runs; FUSE backends mount here."""
        work_dir.mkdir(parents=True, exist_ok=True)
        yield BackendSession(work_dir=work_dir, prefix=self.command_prefix())

    def applies(self, workload_name: str) -> bool:
        """Whether this backend is meant to run the named workload."""
        return self.applies_to is None or workload_name in self.applies_to

    def _probe_command(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a probe command, turning a hang or a missing binary into a failed result."""
        try:
            return run_in_own_group(argv, Path.cwd(), timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, -1, "", f"timed out after {timeout:.0f} s")
        except OSError as error:
            return subprocess.CompletedProcess(argv, -1, "", str(error))


class NativeBackend(Backend):
    """The command as is: the denominator of every ratio."""

    name = "native"
    description = "the command run directly"

    def probe(self, timeout: float) -> Availability:
        """Native always runs; its version is the kernel's."""
        kernel = Path("/proc/sys/kernel/osrelease").read_text().strip()
        return Availability(available=True, version=kernel)


class ProotBackend(Backend):
    """``proot CMD``: the ptrace-based peer vufuse must beat (Debian package ``proot``)."""

    name = "proot"
    description = "`proot CMD` (ptrace; Debian package proot)"

    def probe(self, timeout: float) -> Availability:
        """proot is usable when ``proot true`` succeeds."""
        if shutil.which("proot") is None:
            return Availability(False, "proot not installed (Debian: apt-get install proot)")
        completed = self._probe_command(["proot", "true"], timeout)
        if completed.returncode != 0:
            return Availability(False, f"`proot true` failed: {_tail(completed.stderr)}")
        version = self._probe_command(["proot", "--version"], timeout).stdout
        words = [word for word in version.split() if word[:1].isdigit() and "." in word]
        # Whether proot accelerated itself with a seccomp filter or stops on every syscall
        # (Debian's 5.1.0 does the latter here) explains its numbers; record which.
        status = self._probe_command(["proot", "cat", "/proc/self/status"], timeout).stdout
        filtered = any(
            line.startswith("Seccomp:") and line.split(":", 1)[1].strip() == "2"
            for line in status.splitlines()
        )
        mode = "ptrace + seccomp filter" if filtered else "ptrace on every syscall"
        return Availability(True, version=f"{words[0] if words else 'unknown'}, {mode}")

    def command_prefix(self) -> tuple[str, ...]:
        """proot with the host's root: no bindings, so only the tracing cost is measured."""
        return ("proot",)


def _repository_revision() -> str:
    """The vufuse revision measured: a short commit id, "+dirty" when the tree has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPOSITORY_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPOSITORY_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:  # no commit yet, or a checkout owned by someone else
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


class VufuseBackend(Backend):
    """``vufuse run -- CMD`` with no virtual mount: the C fast path answers every trap."""

    name = "vufuse"
    description = "`vufuse run -- CMD`, no virtual mount"

    def __init__(self, executable: Path | None = None) -> None:
        self.executable = executable
        """The ``vufuse`` console script; the project's venv's or PATH's when None."""

    def resolved_executable(self) -> Path | None:
        """The vufuse command to run: the explicit one, the running venv's, the project's, PATH's.

        The console script beside ``sys.executable`` comes first: it belongs to the environment
        the benchmark itself runs in, which is what ``make bench`` set up.
        """
        if self.executable is not None:
            return self.executable
        for script in (
            Path(sys.executable).parent / "vufuse",
            REPOSITORY_ROOT / ".venv" / "bin" / "vufuse",
        ):
            if script.exists():
                return script
        found = shutil.which("vufuse")
        return Path(found) if found else None

    def probe(self, timeout: float) -> Availability:
        """Usable when ``vufuse run`` runs a command and that command really is filtered.

        A command that ran without a seccomp filter would make vufuse look free; the probe reads
        the tracee's own ``Seccomp:`` line (2 = filter mode) to rule that out.
        """
        executable = self.resolved_executable()
        if executable is None:
            return Availability(False, "no vufuse executable (pip install -e . into .venv)")
        completed = self._probe_command(
            [str(executable), "run", "--", "cat", "/proc/self/status"], timeout
        )
        if completed.returncode != 0:
            detail = _tail(completed.stderr) or f"exit status {completed.returncode}"
            return Availability(False, f"`vufuse run -- cat /proc/self/status` failed: {detail}")
        seccomp_modes = [
            line.split(":", 1)[1].strip()
            for line in completed.stdout.splitlines()
            if line.startswith("Seccomp:")
        ]
        if seccomp_modes != ["2"]:
            reason = f"the command under `vufuse run` is not seccomp-filtered: {seccomp_modes}"
            return Availability(False, reason)
        return Availability(True, version=_repository_revision())

    def command_prefix(self) -> tuple[str, ...]:
        """``vufuse run --`` in front of the command."""
        executable = self.resolved_executable()
        return (str(executable or "vufuse"), "run", "--")


class VufuseWithMountBackend(VufuseBackend):
    """``vufuse run`` while a virtual mount is present elsewhere: the watched-prefix fast path.

    With a mount in the table the C core must resolve each path argument against the watched
    prefixes before it can answer CONTINUE; this backend measures that cost on paths outside
    the mount. HOOK for the hypervisor engineer: once ``vufuse run`` can keep a mount present,
    return the arguments that do so from ``mount_arguments`` (they go between ``run`` and
    ``--``), or override ``session`` to start a daemon; the backend then becomes available.
    """

    name = "vufuse-mounted"
    description = "`vufuse run` with a virtual mount present (paths outside it)"
    applies_to = frozenset({"stat"})

    def mount_arguments(self, work_dir: Path) -> list[str] | None:
        """The ``vufuse run`` options keeping a virtual mount at ``work_dir``; None: no way yet."""
        return None

    def probe(self, timeout: float) -> Availability:
        """Unavailable until ``mount_arguments`` returns something, then probed like vufuse."""
        if self.mount_arguments(Path("/nonexistent")) is None:
            return Availability(False, "vufuse offers no way to keep a virtual mount present yet")
        return super().probe(timeout)

    @contextlib.contextmanager
    def session(self, work_dir: Path) -> Iterator[BackendSession]:
        """A session whose commands run with a mount present at ``work_dir/mount``."""
        mount_point = work_dir / "mount"
        mount_point.mkdir(parents=True, exist_ok=True)
        arguments = self.mount_arguments(mount_point) or []
        executable = str(self.resolved_executable() or "vufuse")
        yield BackendSession(work_dir=work_dir, prefix=(executable, "run", *arguments, "--"))


PASSTHROUGH_LL = Path(
    os.environ.get(
        "VUFUSE_BENCH_PASSTHROUGH_LL", "/var/tmp/vufuse-externals/libfuse/passthrough_ll"
    )
)
"""libfuse's passthrough_ll example, built by tools/fetch-libfuse-examples.sh."""
DAEMON_TIMEOUT = 60
"""passthrough_ll's entry/attribute timeout (``-o timeout=``), the same on both FUSE sides: long
enough that nothing expires within one run, so the warm stat pass measures the caches and not
how long the cold pass took (with the default 1 s, a cold pass slower than 1 s finds every
entry expired).  Data caching (``cache=auto``) is unchanged: the option sets only timeouts."""
FUSE_WORKLOADS = frozenset(
    {
        "fuse-stat-cold",
        "fuse-stat-warm",
        "fuse-grep",
        "fuse-read",
        "fuse-read-c",
        "fuse-write-c",
        "fuse-write",
        "fuse-creates",
        "fuse-tar-xf",
        "git-status",
        "make-j2",
    }
)


def _mounted(mount_point: Path) -> bool:
    """Whether something is mounted at ``mount_point`` in this mount namespace."""
    target = str(mount_point)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == target:
                return True
    return False


class FuseBackend(Backend):
    """A FUSE daemon (``passthrough_ll -o source=SRC -o timeout=60 MNT``) serving the
    workload's files."""

    applies_to = FUSE_WORKLOADS

    def __init__(self, daemon: Path = PASSTHROUGH_LL) -> None:
        self.daemon = daemon

    def _daemon_problem(self) -> str | None:
        if not os.access(self.daemon, os.X_OK):
            return f"{self.daemon} not built (run tools/fetch-libfuse-examples.sh)"
        if shutil.which("fusermount3") is None:
            return "fusermount3 not installed (Debian: fuse3)"
        return None

    def _mount_probe(self, prefix: list[str], timeout: float) -> str | None:
        """Mount and unmount the daemon once under ``prefix``; why that failed, or None."""
        with contextlib.ExitStack() as stack:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fuse-probe-")))
            source, mount_point = directory / "source", directory / "mount"
            source.mkdir()
            mount_point.mkdir()
            (source / "probe").write_text("probe\n")
            script = (
                f"{shlex.quote(str(self.daemon))} -o source={shlex.quote(str(source))}"
                f" {shlex.quote(str(mount_point))} && cat {shlex.quote(str(mount_point / 'probe'))}"
                f"; status=$?; fusermount3 -u {shlex.quote(str(mount_point))}; exit $status"
            )
            completed = self._probe_command([*prefix, "/bin/sh", "-c", script], timeout)
            if _mounted(mount_point):
                self._probe_command(["fusermount3", "-u", "-z", str(mount_point)], timeout)
            if completed.returncode != 0 or "probe" not in completed.stdout.split():
                detail = _tail(completed.stderr) or f"exit status {completed.returncode}"
                return f"mounting {self.daemon.name} failed: {detail}"
        return None

    @contextlib.contextmanager
    def session(self, work_dir: Path) -> Iterator[BackendSession]:
        """A source directory and a mount point; ``timed_run`` mounts around each command."""
        source, mount_point = work_dir / "source", work_dir / "mount"
        source.mkdir(parents=True, exist_ok=True)
        mount_point.mkdir(parents=True, exist_ok=True)
        mount = (str(mount_point), str(self.daemon), "-o", f"source={source}",
                 "-o", f"timeout={DAEMON_TIMEOUT}", str(mount_point))
        try:
            yield BackendSession(
                work_dir=mount_point,
                prefix=self.command_prefix(),
                populate_dir=source,
                mount=mount,
            )
        finally:
            # A run killed by its timeout may leave a kernel mount (and its daemon) behind.
            if _mounted(mount_point):
                subprocess.run(
                    ["fusermount3", "-u", "-z", str(mount_point)], check=False, timeout=30
                )


class KernelFuseBackend(FuseBackend):
    """``passthrough_ll`` on the real kernel FUSE: what vufuse-fuse is compared with."""

    name = "kernel-fuse"
    description = (
        f"libfuse `passthrough_ll -o source=SRC -o timeout={DAEMON_TIMEOUT} MNT` on the kernel's"
        " /dev/fuse (root)"
    )

    def probe(self, timeout: float) -> Availability:
        """Needs root (and /dev/fuse) here; then one real mount and unmount."""
        if os.geteuid() != 0:
            return Availability(False, "needs root (mounts on the kernel's /dev/fuse)")
        if not os.path.exists("/dev/fuse"):
            return Availability(False, "no /dev/fuse (kernel FUSE module not loaded)")
        problem = self._daemon_problem() or self._mount_probe([], timeout)
        if problem:
            return Availability(False, problem)
        version = Path("/sys/module/fuse/version")
        return Availability(
            True,
            version=f"passthrough_ll, kernel FUSE {version.read_text().strip()}"
            if version.exists()
            else "passthrough_ll",
        )


class VufuseFuseBackend(VufuseBackend, FuseBackend):
    """The same daemon mounted inside ``vufuse run``; the C core's counters are collected."""

    name = "vufuse-fuse"
    description = (
        "the same `passthrough_ll` mounted inside `vufuse run` (daemon and workload in one"
        " session, via benchmarks/vufuse_run.py, which also prints `Tracer.stats()`)"
    )
    applies_to = FUSE_WORKLOADS

    def __init__(self, executable: Path | None = None, daemon: Path = PASSTHROUGH_LL) -> None:
        VufuseBackend.__init__(self, executable)
        FuseBackend.__init__(self, daemon)

    def _interpreter(self) -> str:
        """The Python of the ``vufuse`` console script (its ``#!`` line), else this one."""
        executable = self.resolved_executable()
        if executable is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                first = executable.read_text().splitlines()[0]
                if first.startswith("#!") and os.access(first[2:].strip(), os.X_OK):
                    return first[2:].strip()
        return sys.executable

    def probe(self, timeout: float) -> Availability:
        """vufuse must work, and mount the daemon inside a session."""
        availability = super().probe(timeout)
        if not availability.available:
            return availability
        problem = self._daemon_problem() or self._mount_probe(list(self.command_prefix()), timeout)
        if problem:
            if os.geteuid() != 0:
                problem = f"needs root here ({problem})"
            return Availability(False, problem)
        return Availability(True, version=f"passthrough_ll, vufuse {availability.version}")

    def command_prefix(self) -> tuple[str, ...]:
        """``vufuse run --``, spelled as the script that also prints the tracer's counters."""
        return (self._interpreter(), str(Path(__file__).with_name("vufuse_run.py")), "--")

    @contextlib.contextmanager
    def session(self, work_dir: Path) -> Iterator[BackendSession]:
        """As every FUSE backend: the mount is made inside each command's session."""
        with FuseBackend.session(self, work_dir) as session:
            yield session


def all_backends(vufuse_executable: Path | None = None) -> dict[str, Backend]:
    """Every registered backend by name, in column order (native first: the denominator)."""
    backends: list[Backend] = [
        NativeBackend(),
        VufuseBackend(executable=vufuse_executable),
        VufuseWithMountBackend(executable=vufuse_executable),
        ProotBackend(),
        KernelFuseBackend(),
        VufuseFuseBackend(executable=vufuse_executable),
    ]
    return {backend.name: backend for backend in backends}
