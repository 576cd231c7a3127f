"""External test suites run as a whole on a backend: pyfuse3's own suite, real and ours.

A suite is not a mount: its tests mount and unmount their own filesystems (pyfuse3's examples,
its test filesystems) through fusermount3. So a suite gets one row per backend, in the column
``pyfuse3 suite``, decided by pytest's own verdict: a pass needs exit status 0, at least one
test passed, and nothing failed, errored or was skipped (pyfuse3's suite skips whole modules
when it thinks FUSE is unavailable, so a skip is never a pass). The run is bounded by the
session limit like every session; a hang is killed and the row names the test it hung in.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import backends
from .fixtures import chown_tree
from .model import Row, Status
from .normalise import first_meaningful_line
from .script import PATH as SESSION_PATH

SUITE_COLUMN = "pyfuse3 suite"
PYFUSE3_VERSION = "3.5.0"


@dataclass(frozen=True)
class Suite:
    """One external suite: how to find its interpreter and what to add to its command line."""

    name: str
    description: str
    python: Callable[[Path, Path], Path]
    """(repo, externals) -> the Python that runs pytest."""
    extra_args: tuple[str, ...] = ()
    env: Callable[[Path], dict[str, str]] = lambda repo: {}


def _real_python(repo: Path, externals: Path) -> Path:
    return externals / "real-pyfuse3" / "venv" / "bin" / "python"


def _our_python(repo: Path, externals: Path) -> Path:
    return repo / ".venv" / "bin" / "python"


def _our_env(repo: Path) -> dict[str, str]:
    # The alias makes ``import pyfuse3`` give vufuse.pyfuse3; the guard plugin (tests/external)
    # fails the run if it did not, so this row can never silently test the real module.
    paths = [repo / "vufuse" / "pyfuse3" / "_alias", repo / "tests" / "external", repo]
    return {"PYTHONPATH": ":".join(str(path) for path in paths)}


SUITES: tuple[Suite, ...] = (
    Suite(
        name="pyfuse3-suite:real",
        description=f"pyfuse3 {PYFUSE3_VERSION}'s own test suite (its sdist's test/ directory)"
        " on the real pyfuse3 (Cython over libfuse3)",
        python=_real_python,
    ),
    Suite(
        name="pyfuse3-suite:ours",
        description=f"pyfuse3 {PYFUSE3_VERSION}'s own test suite on our pyfuse3"
        " (vufuse.pyfuse3 imported as pyfuse3; a guard plugin checks which module ran)",
        python=_our_python,
        extra_args=("-p", "vufuse_guard"),
        env=_our_env,
    ),
)
BY_NAME = {suite.name: suite for suite in SUITES}

_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")


def parse_summary(stdout: str) -> dict[str, int]:
    """pytest's last ``=== 17 passed, 2 failed in 3.1s ===`` line as counts."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("=") and (" in " in line or "no tests ran" in line):
            counts: dict[str, int] = {}
            for number, word in _SUMMARY.findall(line):
                key = "errors" if word.startswith("error") else word
                counts[key] = counts.get(key, 0) + int(number)
            return counts
    return {}


def _last_test(stdout: str) -> str:
    """The test pytest -v printed last: where a killed run was."""
    started = [line.split(" ")[0] for line in stdout.splitlines() if "::" in line]
    return started[-1] if started else "before the first test"


def judge(stdout: str, stderr: str, status: int | None, limit: float) -> tuple[Status, str, dict]:
    """The row's status, its reason and details from one pytest run."""
    counts = parse_summary(stdout)
    executed = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("errors", 0)
    failures = [
        line.removeprefix("FAILED ").removeprefix("ERROR ")
        for line in stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    ]
    details: dict[str, object] = {"counts": counts, "executed": executed, "failed": failures}
    if status is None:
        reason = f"timed out after {limit:.0f} s (killed) in {_last_test(stdout)}"
        return Status.FAIL, reason, details
    if status == 0 and executed and not (counts.get("skipped") or failures):
        return Status.PASS, "", details
    summary = ", ".join(f"{n} {word}" for word, n in counts.items()) or "no summary"
    if failures:
        shown = "; ".join(failures[:3])
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        return Status.FAIL, f"{summary}: {shown}{more}", details
    if counts.get("skipped"):
        return Status.FAIL, f"{summary}: a skipped test is not a pass", details
    if status > 128:
        # Killed from outside (not by our limit): where it was says more than pytest's banner.
        reason = f"killed by signal {status - 128}, {summary}, in {_last_test(stdout)}"
        return Status.FAIL, reason, details
    cause = first_meaningful_line(stderr) or first_meaningful_line(stdout[-2000:])
    return Status.FAIL, f"exit {status}, {summary}: {cause}", details


def run_suite(
    suite: Suite, backend: backends.Backend, repo: Path, externals: Path, work_root: Path,
    limit: float,
) -> Row:  # fmt: skip
    """Unpack the sdist into a fresh workspace, run its suite on *backend*, judge it."""
    python = suite.python(repo, externals)
    sdist = externals / "real-pyfuse3" / "sdist" / f"pyfuse3-{PYFUSE3_VERSION}.tar.gz"
    for need in (python, sdist):
        if not need.exists():
            reason = f"{need} missing (run compat-tests/setup.sh)"
            return Row(suite.name, SUITE_COLUMN, backend.name, Status.SKIPPED, reason)
    workspace = work_root / backend.name / re.sub(r"[^\w.-]", "_", suite.name)
    try:
        source = _unpack(sdist, workspace, backend, work_root)
    except (OSError, tarfile.TarError) as error:
        reason = f"preparing the workspace failed: {error}"
        return Row(suite.name, SUITE_COLUMN, backend.name, Status.ERROR, reason)
    command = [
        str(python), "-m", "pytest", "--installed", "-p", "no:cacheprovider", *suite.extra_args,
        # pytest.ini's -x would stop at the first failure; the matrix wants them all.
        "-o", "addopts=", "-v", "--tb=line", "-rfE", "--basetemp", str(workspace / "tmp"),
        "test",
    ]  # fmt: skip
    env = {
        "PATH": SESSION_PATH,
        "LC_ALL": "C.UTF-8",
        "HOME": str(workspace / "home"),
        **suite.env(repo),
    }
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    script = f"cd {shlex.quote(str(source))} && export {exports} && exec {shlex.join(command)}"
    outcome = backends.run_script(backend.session_argv(script), env, limit, workspace)
    (workspace / "pytest.out").write_text(outcome.stdout)
    (workspace / "pytest.err").write_text(outcome.stderr)
    status, reason, details = judge(outcome.stdout, outcome.stderr, outcome.status, limit)
    return Row(suite.name, SUITE_COLUMN, backend.name, status, reason, outcome.seconds, details)


def _unpack(sdist: Path, workspace: Path, backend: backends.Backend, work_root: Path) -> Path:
    """A fresh workspace owned by the backend's user, with the sdist's files and directories."""
    if workspace.exists():
        backends.detach_mounts_under(workspace)
        shutil.rmtree(workspace)
    (workspace / "home").mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        members = [
            member
            for member in archive.getmembers()
            if (member.isfile() or member.isdir())
            and not member.name.startswith("/")
            and ".." not in Path(member.name).parts
            and "/.pytest_cache" not in member.name
        ]
        archive.extractall(workspace, members=members)  # noqa: S202 (members checked above)
    chown_tree(workspace, backend.uid, backend.gid)
    for parent in (work_root, workspace.parent):
        parent.chmod(0o755)
    return workspace / f"pyfuse3-{PYFUSE3_VERSION}"
