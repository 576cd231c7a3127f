"""The registry of workloads: what runs under each backend and how its number is read.

A workload is set up once per benchmark run (compile a program, build a tarball: inputs that
live in the scratch directory and are the same for every backend), populated once per backend
session (files on the filesystem under test, which for a future FUSE backend is the mount), reset
before every timed run (outside the timing), and measured either by the program itself
(``ns_per_call=`` on stdout: loop timings that must exclude process start-up) or by the
harness's wall clock around the whole command (what a user waits for, start-up included).

Adding a workload: subclass ``Workload``, add it to ``all_workloads``. Nothing else changes.
"""

from __future__ import annotations

import abc
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

C_SOURCES = Path(__file__).resolve().parent / "c"


@dataclass(frozen=True)
class Metric:
    """What a sample means. Lower is better for every metric here."""

    name: str
    unit: str
    label: str
    reported_by_program: bool
    """True: the program prints ``ns_per_call=<float>``; False: the harness times the command."""


NS_PER_CALL = Metric("ns_per_call", "ns", "ns per call", reported_by_program=True)
COLD_NS_PER_FILE = Metric("cold_ns_per_file", "ns", "ns per file", reported_by_program=True)
WARM_NS_PER_FILE = Metric("warm_ns_per_file", "ns", "ns per file", reported_by_program=True)
COMMAND_SECONDS = Metric("seconds", "s", "command wall time", reported_by_program=True)
"""Timed by ``timed_run`` inside the backend's session: its start-up and the mount excluded."""
WALL_SECONDS = Metric("wall_seconds", "s", "wall time", reported_by_program=False)


class WorkloadError(RuntimeError):
    """A workload could not be set up or its output could not be read."""


@dataclass(frozen=True)
class SetupContext:
    """Where a workload keeps the inputs it shares across backends."""

    scratch: Path
    """A real directory (never under a virtual mount), private to this benchmark run."""
    compiler: str


@dataclass(frozen=True)
class RunContext:
    """One backend session's view, passed to ``reset`` and ``command``."""

    backend: str
    work_dir: Path
    """On the filesystem under test; populated by ``populate``."""
    mount: tuple[str, ...] = ()
    """FUSE backends: ``MOUNT_POINT DAEMON ARG...`` for ``timed_run``; () for none."""
    real_dir: Path | None = None
    """The real directory behind ``work_dir`` (a FUSE mount's source); ``work_dir`` if None."""

    @property
    def real(self) -> Path:
        """Where to look at what a run left behind without going through the backend."""
        return self.real_dir or self.work_dir


class Workload(abc.ABC):
    """One row of the results table."""

    name: str
    title: str
    metric: Metric
    repetitions: int
    """Timed runs per backend and placement in a full run; ``--quick`` runs each once."""
    backends: frozenset[str] | None = None
    """Names of the only backends that run this workload; None means every backend."""
    ok_statuses: frozenset[int] = frozenset({0})
    """Exit statuses of the command that mean success."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick

    @property
    def parameters(self) -> dict[str, object]:
        """Sizes and commands that the numbers depend on, recorded in the JSON."""
        return {}

    def setup(self, context: SetupContext) -> None:  # noqa: B027 (optional hook)
        """Prepare the shared inputs (once per benchmark run, untimed)."""

    def populate(self, work_dir: Path) -> None:  # noqa: B027 (optional hook)
        """Create this workload's files on the filesystem under test (once per session)."""

    def reset(self, run: RunContext) -> None:  # noqa: B027 (optional hook)
        """Bring the work directory back to the state a run expects (before each run, untimed)."""

    @abc.abstractmethod
    def command(self, run: RunContext) -> list[str]:
        """The command line to run under the backend."""

    def measure(self, stdout: str, wall_seconds: float) -> float:
        """The sample: the program's own ``ns_per_call`` or the harness's wall time."""
        if not self.metric.reported_by_program:
            return wall_seconds
        for line in stdout.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == self.metric.name:
                return float(value)
        raise WorkloadError(f"no {self.metric.name}= line in output: {stdout[-200:]!r}")

    def details(self, stdout: str) -> dict[str, float]:
        """Other figures a run printed (mount time, tracer counters), kept beside the sample."""
        return {}

    def verify(self, run: RunContext, stdout: str) -> None:  # noqa: B027 (optional hook)
        """Check on the real files that the run did its work; raise ``WorkloadError`` if not."""


def compile_program(context: SetupContext, source_name: str) -> Path:
    """Compile one of ``benchmarks/c/*.c`` into the scratch directory; return the binary."""
    source = C_SOURCES / source_name
    binary = context.scratch / "bin" / source.stem
    binary.parent.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [context.compiler, "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise WorkloadError(f"compiling {source.name} failed: {completed.stderr.strip()}")
    return binary


def _required_binary(name: str) -> str:
    """The absolute path of a tool, so a PATH shim (pyenv) never gets timed instead of it."""
    found = shutil.which(name, path=os.defpath + ":/usr/local/bin:/usr/bin:/bin")
    if found is None:
        raise WorkloadError(f"{name} not found")
    return found


class GetppidLoop(Workload):
    """A syscall vufuse's filter lets through: measures what the BPF filter alone costs."""

    name = "getppid"
    title = "getppid loop, not trapped"
    metric = NS_PER_CALL
    repetitions = 5

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        # proot stops on every getppid (about 20 µs each here), so the count stays modest.
        self.iterations = 2_000 if quick else 100_000
        self.binary: Path | None = None

    @property
    def parameters(self) -> dict[str, object]:
        return {"iterations": self.iterations}

    def setup(self, context: SetupContext) -> None:
        self.binary = compile_program(context, "getppid_loop.c")

    def command(self, run: RunContext) -> list[str]:
        assert self.binary is not None, "setup() not run"
        return [str(self.binary), str(self.iterations)]


class StatLoop(Workload):
    """stat(2) on real files: trapped, answered CONTINUE by the C fast path."""

    name = "stat"
    title = "stat loop on real files, trapped (C fast path)"
    metric = NS_PER_CALL
    repetitions = 5
    directory_name = "stat-files"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.iterations = 200 if quick else 20_000
        self.file_count = 8 if quick else 64
        self.binary: Path | None = None

    @property
    def parameters(self) -> dict[str, object]:
        return {"iterations": self.iterations, "files": self.file_count}

    def setup(self, context: SetupContext) -> None:
        self.binary = compile_program(context, "stat_loop.c")

    def _paths(self, work_dir: Path) -> list[Path]:
        directory = work_dir / self.directory_name
        return [directory / f"file-{index:03d}" for index in range(self.file_count)]

    def populate(self, work_dir: Path) -> None:
        for path in self._paths(work_dir):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")

    def command(self, run: RunContext) -> list[str]:
        assert self.binary is not None, "setup() not run"
        return [str(self.binary), str(self.iterations), *map(str, self._paths(run.work_dir))]


class TarExtract(Workload):
    """``tar xf`` of a copy of /usr/include into a real directory: many small path syscalls."""

    name = "tar-xf"
    title = "`tar xf` of /usr/include into a real directory"
    metric = WALL_SECONDS
    repetitions = 5
    source = Path("/usr/include")

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.tarball: Path | None = None
        self.tar = ""
        self.entries = 0
        self.tarball_bytes = 0

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "source": "generated 16-file tree" if self.quick else str(self.source),
            "tarball_bytes": self.tarball_bytes,
            "entries": self.entries,
            "tar": self.tar,
        }

    def setup(self, context: SetupContext) -> None:
        self.tar = _required_binary("tar")
        self.tarball = context.scratch / "tree.tar"
        if self.quick:
            tree = context.scratch / "quick-tree" / "include"
            for index in range(16):
                (tree / f"dir{index % 4}").mkdir(parents=True, exist_ok=True)
                (tree / f"dir{index % 4}" / f"header{index}.h").write_text("int x;\n" * 64)
            root, top = tree.parent, tree.name
        else:
            if not self.source.is_dir():
                raise WorkloadError(f"{self.source} is not a directory")
            root, top = self.source.parent, self.source.name
        completed = subprocess.run(
            [self.tar, "cf", str(self.tarball), "-C", str(root), top],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise WorkloadError(f"building the tarball failed: {completed.stderr.strip()}")
        with tarfile.open(self.tarball) as archive:
            self.entries = sum(1 for _ in archive)
        self.tarball_bytes = self.tarball.stat().st_size

    def _destination(self, work_dir: Path) -> Path:
        return work_dir / "tar-destination"

    def reset(self, run: RunContext) -> None:
        destination = self._destination(run.work_dir)
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True)
        # Dirty pages of the previous run must not be written back during this one.
        os.sync()

    def command(self, run: RunContext) -> list[str]:
        assert self.tarball is not None, "setup() not run"
        return [self.tar, "xf", str(self.tarball), "-C", str(self._destination(run.work_dir))]


def _system_python() -> str:
    """The distribution's python3: a pyenv shim on PATH would time a shell script too."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


class PythonStartup(Workload):
    """A Python start-up with a few imports: hundreds of opens and stats of real files."""

    name = "python-startup"
    title = "python3 start-up with imports"
    metric = WALL_SECONDS
    repetitions = 5
    code = "import json, decimal, asyncio, email.parser"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.python = _system_python()

    @property
    def parameters(self) -> dict[str, object]:
        return {"command": [self.python, "-c", self.code]}

    def command(self, run: RunContext) -> list[str]:
        return [self.python, "-c", self.code]


class SessionStart(Workload):
    """``true``: the fixed cost of starting a backend, to read the wall-time rows against."""

    name = "session-start"
    title = "session start-up: `true`"
    metric = WALL_SECONDS
    repetitions = 5

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.true = ""

    @property
    def parameters(self) -> dict[str, object]:
        return {"command": [self.true or "true"]}

    def setup(self, context: SetupContext) -> None:
        self.true = _required_binary("true")

    def command(self, run: RunContext) -> list[str]:
        return [self.true]


class FuseWorkload(Workload):
    """A read-side workload for the FUSE columns: native on the source tree, kernel-fuse, and
    vufuse-fuse on a ``passthrough_ll`` mount of it.

    The command runs under ``timed_run`` on every backend: on the FUSE backends that helper
    mounts the daemon first and unmounts it after, inside the same session, so every run starts
    on a fresh mount (cold caches) and the figure is the command's own time, measured inside
    the session, with the session's start-up and the mount excluded (recorded as details).
    """

    backends = frozenset({"native", "kernel-fuse", "vufuse-fuse"})
    repetitions = 3

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.timed_run: Path | None = None

    def setup(self, context: SetupContext) -> None:
        self.timed_run = compile_program(context, "timed_run.c")

    def timed(self, run: RunContext, argv: list[str]) -> list[str]:
        """``argv`` under ``timed_run``, mounting the backend's daemon around it if it has one."""
        assert self.timed_run is not None, "setup() not run"
        return [str(self.timed_run), *(run.mount or ("-",)), "--", *argv]

    def details(self, stdout: str) -> dict[str, float]:
        """Every ``key=number`` line: the mount and unmount times and vufuse's counters."""
        found: dict[str, float] = {}
        for line in stdout.splitlines():
            key, equals, value = line.partition("=")
            if equals and key.replace("_", "").isalnum():
                try:
                    found[key] = float(value)
                except ValueError:
                    continue
        return found


class FuseStatCold(FuseWorkload):
    """stat(2) of 10,000 files (100 directories of 100), first pass after the mount."""

    name = "fuse-stat-cold"
    title = "stat of 10,000 files, cold (first pass after mount)"
    metric = COLD_NS_PER_FILE
    tree_name = "stat-tree"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.directories, self.files = (4, 5) if quick else (100, 100)
        if quick:
            self.title = self.title.replace("10,000", "20")
        self.stat_tree: Path | None = None

    @property
    def parameters(self) -> dict[str, object]:
        return {"directories": self.directories, "files_per_directory": self.files}

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.stat_tree = compile_program(context, "stat_tree.c")

    def populate(self, work_dir: Path) -> None:
        for directory in range(self.directories):
            parent = work_dir / self.tree_name / f"d{directory:03d}"
            parent.mkdir(parents=True, exist_ok=True)
            for file in range(self.files):
                (parent / f"f{file:04d}").touch()

    def command(self, run: RunContext) -> list[str]:
        assert self.stat_tree is not None, "setup() not run"
        tree = run.work_dir / self.tree_name
        return self.timed(
            run, [str(self.stat_tree), str(tree), str(self.directories), str(self.files)]
        )


class FuseStatWarm(FuseStatCold):
    """The same stat of 10,000 files, second pass in the same mount (caches warm)."""

    name = "fuse-stat-warm"
    title = "stat of 10,000 files, warm (second pass, same mount)"
    metric = WARM_NS_PER_FILE


class FuseGrep(FuseWorkload):
    """``grep -r`` for a string found nowhere, over a copy of /usr/include: every byte read."""

    name = "fuse-grep"
    title = "`grep -r` over a copy of /usr/include"
    metric = COMMAND_SECONDS
    source = Path("/usr/include")
    pattern = "vufuse-benchmark-no-such-string"
    ok_statuses = frozenset({0, 1})
    """grep exits 1 when nothing matched, the expected outcome (timed_run passes it on)."""

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.tree: Path | None = None
        self.grep = ""
        self.files = 0
        self.bytes = 0

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "source": "generated 16-file tree" if self.quick else str(self.source),
            "files": self.files,
            "bytes": self.bytes,
            "command": [self.grep or "grep", "-r", self.pattern, "TREE"],
        }

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.grep = _required_binary("grep")
        self.tree = context.scratch / "grep-tree"
        if self.quick:
            for index in range(16):
                (self.tree / f"dir{index % 4}").mkdir(parents=True, exist_ok=True)
                (self.tree / f"dir{index % 4}" / f"header{index}.h").write_text("int x;\n" * 64)
        else:
            if not self.source.is_dir():
                raise WorkloadError(f"{self.source} is not a directory")
            shutil.copytree(self.source, self.tree, symlinks=True)
        files = [path for path in self.tree.rglob("*") if path.is_file() and not path.is_symlink()]
        self.files = len(files)
        self.bytes = sum(path.stat().st_size for path in files)

    def populate(self, work_dir: Path) -> None:
        assert self.tree is not None, "setup() not run"
        # Hard links: every backend's source shares the one copy (same filesystem, no cost).
        shutil.copytree(self.tree, work_dir / "tree", symlinks=True, copy_function=os.link)

    def command(self, run: RunContext) -> list[str]:
        return self.timed(run, [self.grep, "-r", self.pattern, str(run.work_dir / "tree")])


class FuseRead(FuseWorkload):
    """A 1 GiB sequential read: ``dd bs=1M`` of one file to /dev/null.

    GNU dd moves ``if=`` onto fd 0 with dup2; under vufuse that snapshots the whole file into a
    memfd at the dup2, so ``fuse-read-c`` (``read_file``: read(2) on the opened fd) is measured
    too, for the ordinary read path.
    """

    name = "fuse-read"
    title = "1 GiB sequential read (`dd bs=1M`)"
    metric = COMMAND_SECONDS

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.mebibytes = 4 if quick else 1024
        if quick:
            self.title = self.title.replace("1 GiB", "4 MiB")
        self.file: Path | None = None
        self.dd = ""

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "bytes": self.mebibytes << 20,
            "command": [self.dd or "dd", "if=FILE", "of=/dev/null", "bs=1M"],
        }

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.dd = _required_binary("dd")
        self.file = context.scratch / "read-file"
        chunk = os.urandom(1 << 20)
        with self.file.open("wb") as output:
            for _ in range(self.mebibytes):
                output.write(chunk)

    def populate(self, work_dir: Path) -> None:
        assert self.file is not None, "setup() not run"
        os.link(self.file, work_dir / "read-file")

    def command(self, run: RunContext) -> list[str]:
        file = run.work_dir / "read-file"
        return self.timed(run, [self.dd, f"if={file}", "of=/dev/null", "bs=1M", "status=none"])


class FuseReadC(FuseRead):
    """The same 1 GiB sequential read by a C reader: read(2) of 1 MiB on the opened fd."""

    name = "fuse-read-c"
    title = "1 GiB sequential read (C reader, read(2) of 1 MiB)"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.reader: Path | None = None

    @property
    def parameters(self) -> dict[str, object]:
        return {"bytes": self.mebibytes << 20, "command": ["read_file", "FILE"]}

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.reader = compile_program(context, "read_file.c")

    def command(self, run: RunContext) -> list[str]:
        assert self.reader is not None, "setup() not run"
        return self.timed(run, [str(self.reader), str(run.work_dir / "read-file")])


WRITE_BACKENDS = frozenset({"native", "kernel-fuse", "vufuse-fuse"})
REAL_WORK_BACKENDS = frozenset({"native", "vufuse", "proot", "kernel-fuse", "vufuse-fuse"})
"""git and make: meaningful on a real directory too, under vufuse (no mount) and proot."""


class FuseWriteC(FuseWorkload):
    """A 1 GiB sequential write by a C writer: write(2) of 1 MiB on the fd open(2) returned.

    Every run is checked afterwards on the real file (size, and three blocks' contents): a
    write benchmark whose bytes never landed would be a lie.
    """

    name = "fuse-write-c"
    title = "1 GiB sequential write (C writer, write(2) of 1 MiB)"
    metric = COMMAND_SECONDS
    file_name = "write-file"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.mebibytes = 4 if quick else 1024
        if quick:
            self.title = self.title.replace("1 GiB", "4 MiB")
        self.writer: Path | None = None

    @property
    def parameters(self) -> dict[str, object]:
        return {"bytes": self.mebibytes << 20, "command": ["write_file", "FILE", self.mebibytes]}

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.writer = compile_program(context, "write_file.c")

    def reset(self, run: RunContext) -> None:
        (run.real / self.file_name).unlink(missing_ok=True)

    def command(self, run: RunContext) -> list[str]:
        assert self.writer is not None, "setup() not run"
        file = run.work_dir / self.file_name
        return self.timed(run, [str(self.writer), str(file), str(self.mebibytes)])

    def verify(self, run: RunContext, stdout: str) -> None:
        path = run.real / self.file_name
        expected = self.mebibytes << 20
        size = path.stat().st_size if path.exists() else -1
        if size != expected:
            raise WorkloadError(f"the written file has {size} bytes, expected {expected}")
        with path.open("rb") as file:
            for block in sorted({0, self.mebibytes // 2, self.mebibytes - 1}):
                file.seek(block << 20)
                data = file.read(1 << 20)
                header = f"block {block}\n".encode()
                fill = (block * 7 + 1) & 0xFF
                if not data.startswith(header) or data[32:] != bytes([fill]) * ((1 << 20) - 32):
                    raise WorkloadError(f"block {block} of the written file has wrong contents")
        path.unlink()


class FuseWriteDd(FuseWriteC):
    """The same 1 GiB write with ``dd if=/dev/zero of=FILE bs=1M``: dd moves FILE onto fd 1
    with dup2, a different path under vufuse; checked the same way (size, blocks allocated)."""

    name = "fuse-write"
    title = "1 GiB sequential write (`dd of= bs=1M`)"

    @property
    def parameters(self) -> dict[str, object]:
        count = f"count={self.mebibytes}"
        return {
            "bytes": self.mebibytes << 20,
            "command": [self.dd or "dd", "if=/dev/zero", "of=FILE", "bs=1M", count],
        }

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.dd = ""

    def setup(self, context: SetupContext) -> None:
        FuseWorkload.setup(self, context)
        self.dd = _required_binary("dd")

    def command(self, run: RunContext) -> list[str]:
        file = run.work_dir / self.file_name
        return self.timed(
            run,
            [self.dd, "if=/dev/zero", f"of={file}", "bs=1M", f"count={self.mebibytes}",
             "status=none"],
        )  # fmt: skip

    def verify(self, run: RunContext, stdout: str) -> None:
        path = run.real / self.file_name
        expected = self.mebibytes << 20
        status = path.stat() if path.exists() else None
        if status is None or status.st_size != expected:
            size = status.st_size if status else "no"
            raise WorkloadError(f"dd's output file has {size} bytes, expected {expected}")
        if status.st_blocks * 512 < expected:
            raise WorkloadError(
                f"dd's output file is sparse ({status.st_blocks * 512} of {expected} bytes"
                " allocated): the zeros were never written"
            )
        with path.open("rb") as file:
            if file.read(1 << 20).strip(b"\0"):
                raise WorkloadError("dd's output file does not hold the zeros written")
        path.unlink()


class FuseCreates(FuseWorkload):
    """10,000 small files created (100 directories of 100): create, write a line, close."""

    name = "fuse-creates"
    title = "10,000 small-file creates (C program)"
    metric = COMMAND_SECONDS
    tree_name = "created"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.directories, self.files = (4, 5) if quick else (100, 100)
        if quick:
            self.title = self.title.replace("10,000", "20")
        self.creator: Path | None = None

    @property
    def parameters(self) -> dict[str, object]:
        return {"directories": self.directories, "files_per_directory": self.files}

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.creator = compile_program(context, "create_files.c")

    def reset(self, run: RunContext) -> None:
        shutil.rmtree(run.real / self.tree_name, ignore_errors=True)

    def command(self, run: RunContext) -> list[str]:
        assert self.creator is not None, "setup() not run"
        root = str(run.work_dir / self.tree_name)
        return self.timed(run, [str(self.creator), root, str(self.directories), str(self.files)])

    def verify(self, run: RunContext, stdout: str) -> None:
        root = run.real / self.tree_name
        found = sum(1 for path in root.glob("d*/f*") if path.is_file())
        expected = self.directories * self.files
        if found != expected:
            raise WorkloadError(f"{found} files created, expected {expected}")
        last = f"d{self.directories - 1:03d}/f{self.files - 1:04d}"
        if not (root / last).read_text().endswith(f"/{last}\n"):
            raise WorkloadError(f"{last} does not hold what was written to it")


class FuseTarExtract(FuseWorkload):
    """``tar xf`` of /usr/include INTO the mount: mkdir, create, write, utimens, symlink."""

    name = "fuse-tar-xf"
    title = "`tar xf` of /usr/include into the mount"
    metric = COMMAND_SECONDS
    destination = "tar-destination"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.archive = TarExtract(quick)
        self.files = 0
        self.bytes = 0

    @property
    def parameters(self) -> dict[str, object]:
        return {**self.archive.parameters, "files": self.files, "bytes": self.bytes}

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.archive.setup(context)
        assert self.archive.tarball is not None
        with tarfile.open(self.archive.tarball) as archive:
            members = [member for member in archive if member.isfile()]
        self.files = len(members)
        self.bytes = sum(member.size for member in members)

    def reset(self, run: RunContext) -> None:
        destination = run.real / self.destination
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True)

    def command(self, run: RunContext) -> list[str]:
        assert self.archive.tarball is not None, "setup() not run"
        destination = str(run.work_dir / self.destination)
        return self.timed(
            run, [self.archive.tar, "xf", str(self.archive.tarball), "-C", destination]
        )

    def verify(self, run: RunContext, stdout: str) -> None:
        files = [
            path
            for path in (run.real / self.destination).rglob("*")
            if path.is_file() and not path.is_symlink()
        ]
        size = sum(path.stat().st_size for path in files)
        if (len(files), size) != (self.files, self.bytes):
            raise WorkloadError(
                f"extracted {len(files)} files of {size} bytes, expected {self.files} files"
                f" of {self.bytes} bytes"
            )


class GitStatus(FuseWorkload):
    """``git status`` in a clean work tree of /usr/include's files (a commit of every file).

    Stats every tracked file and reads every directory (untracked files); on the FUSE backends
    the whole repository, ``.git`` included, is on the mount. The index is refreshed once,
    untimed, when the tree is populated, so every timed run finds it clean and writes nothing.
    """

    name = "git-status"
    title = "`git status` in a clean tree of /usr/include"
    metric = COMMAND_SECONDS
    backends = REAL_WORK_BACKENDS
    source = Path("/usr/include")

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.repository: Path | None = None
        self.git = ""
        self.files = 0

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "source": "generated 16-file tree" if self.quick else str(self.source),
            "tracked_files": self.files,
            "command": [self.git or "git", "status", "--porcelain"],
        }

    def _git(self, directory: Path, *arguments: str) -> str:
        completed = subprocess.run(
            [self.git, "-C", str(directory), *arguments],
            capture_output=True,
            text=True,
            check=False,
            env=_git_environment(),
        )
        if completed.returncode != 0:
            raise WorkloadError(f"git {arguments[0]} failed: {completed.stderr.strip()[-300:]}")
        return completed.stdout

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.git = _required_binary("git")
        self.repository = context.scratch / "git-repository"
        if self.quick:
            for index in range(16):
                (self.repository / f"dir{index % 4}").mkdir(parents=True, exist_ok=True)
                (self.repository / f"dir{index % 4}" / f"f{index}.h").write_text("int x;\n")
        else:
            if not self.source.is_dir():
                raise WorkloadError(f"{self.source} is not a directory")
            shutil.copytree(self.source, self.repository, symlinks=True)
        self._git(self.repository, "init", "-q")
        self._git(self.repository, "add", "-A")
        self._git(self.repository, "commit", "-q", "-m", "benchmark tree")
        self.files = len(self._git(self.repository, "ls-files", "-z").split("\0")) - 1

    def populate(self, work_dir: Path) -> None:
        assert self.repository is not None, "setup() not run"
        tree = work_dir / "repository"
        shutil.copytree(self.repository, tree, symlinks=True)
        self._git(tree, "update-index", "--refresh", "-q")

    def command(self, run: RunContext) -> list[str]:
        return self.timed(
            run, [self.git, "-C", str(run.work_dir / "repository"), "status", "--porcelain"]
        )

    def verify(self, run: RunContext, stdout: str) -> None:
        changes = [line for line in stdout.splitlines() if line and "=" not in line]
        if changes:
            raise WorkloadError(f"git status saw changes in a clean tree: {changes[:3]}")


def _git_environment() -> dict[str, str]:
    """No user or system configuration: the same git behaviour for every backend and user."""
    return {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
    }


class MakeBuild(FuseWorkload):
    """``make -j2`` of a generated C program (24 translation units and a link).

    Every compiler process reads the system headers (outside the mount) and writes its object
    file into the build tree (on the mount for the FUSE backends); the built program is run
    afterwards to check it really was built.
    """

    name = "make-j2"
    title = "`make -j2` of a 24-file C program"
    metric = COMMAND_SECONDS
    backends = REAL_WORK_BACKENDS
    units = 24

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        if quick:
            self.units = 3
            self.title = self.title.replace("24", "3")
        self.project: Path | None = None
        self.make = ""
        self.compiler = ""

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "translation_units": self.units,
            "command": [self.make or "make", "-j2", "-s"],
            "compiler": f"{self.compiler} -O1",
        }

    def setup(self, context: SetupContext) -> None:
        super().setup(context)
        self.make = _required_binary("make")
        self.compiler = _required_binary(context.compiler)
        self.project = context.scratch / "make-project"
        self.project.mkdir(parents=True, exist_ok=True)
        for unit in range(self.units):
            functions = "\n".join(
                f"static long f{unit}_{index}(long x) {{ char b[64]; snprintf(b, sizeof b,"
                f' "%ld", x * {index + 1}); return (long)strlen(b) + x % {index + 3}; }}'
                for index in range(40)
            )
            calls = " + ".join(f"f{unit}_{index}(x)" for index in range(40))
            (self.project / f"unit{unit}.c").write_text(
                "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                f"{functions}\nlong unit{unit}(long x) {{ return {calls}; }}\n"
            )
        declarations = "".join(f"long unit{unit}(long);\n" for unit in range(self.units))
        total = " + ".join(f"unit{unit}(7)" for unit in range(self.units))
        (self.project / "main.c").write_text(
            f'#include <stdio.h>\n{declarations}int main(void) {{ printf("%ld\\n", {total});'
            " return 0; }\n"
        )
        objects = " ".join(f"unit{unit}.o" for unit in range(self.units))
        (self.project / "Makefile").write_text(
            f"CC = {self.compiler}\nCFLAGS = -O1\nprogram: main.o {objects}\n"
            "\t$(CC) -o $@ $^\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n"
        )

    def populate(self, work_dir: Path) -> None:
        assert self.project is not None, "setup() not run"
        shutil.copytree(self.project, work_dir / "project")

    def reset(self, run: RunContext) -> None:
        for built in (run.real / "project").glob("*.o"):
            built.unlink()
        (run.real / "project" / "program").unlink(missing_ok=True)

    def command(self, run: RunContext) -> list[str]:
        return self.timed(run, [self.make, "-C", str(run.work_dir / "project"), "-j2", "-s"])

    def verify(self, run: RunContext, stdout: str) -> None:
        program = run.real / "project" / "program"
        completed = subprocess.run([str(program)], capture_output=True, text=True, check=False)
        if completed.returncode != 0 or not completed.stdout.strip().isdigit():
            raise WorkloadError(f"the built program does not run: {completed.stderr.strip()}")


def all_workloads(quick: bool) -> dict[str, Workload]:
    """Every registered workload by name, in table order."""
    workloads: list[Workload] = [
        GetppidLoop(quick),
        StatLoop(quick),
        TarExtract(quick),
        PythonStartup(quick),
        SessionStart(quick),
        FuseStatCold(quick),
        FuseStatWarm(quick),
        FuseGrep(quick),
        FuseRead(quick),
        FuseReadC(quick),
        FuseWriteC(quick),
        FuseWriteDd(quick),
        FuseCreates(quick),
        FuseTarExtract(quick),
        GitStatus(quick),
        MakeBuild(quick),
    ]
    return {workload.name: workload for workload in workloads}
