"""Running one program on one backend and turning what its session left behind into rows.

The order per (program, backend): build the workspace (fixture tree, reference copy, images),
hand it to the backend's user, run the reference workloads natively, run the mount session,
then read the step files and judge each workload against the reference.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import backends
from .fixtures import Sshd, chown_tree, make_tree, run_checked
from .model import Context, Program, Reference, Row, Status, Workspace
from .normalise import (
    compare_outputs,
    describe_status,
    first_meaningful_line,
    parse_test_syscalls,
    substitute_paths,
)
from .programs import missing_requirement
from .script import PATH as SESSION_PATH
from .script import Limits, mount_script, reference_script
from .workloads import TEST_SYSCALLS, Workload, applicable

MOUNT = "mount"
UNMOUNT = "unmount"


@dataclass(frozen=True)
class Settings:
    """What a whole run shares: where to work, which tree, the limits, the sshd if any."""

    work_root: Path
    repo: Path
    externals: Path
    tiny_tree: bool
    limits: Limits
    sshd: Sshd | None = None
    run_test_syscalls: bool = True
    deadline: float | None = None  # time.monotonic() after which no session may still run


def columns(program: Program, workloads: Sequence[Workload], settings: Settings) -> list[str]:
    """The row names a program gets: mount, its applicable workloads, the suite, unmount."""
    names = [MOUNT] + [w.name for w in workloads if applicable(program, w)]
    if program.passthrough and settings.run_test_syscalls:
        names.append(TEST_SYSCALLS)
    return names + [UNMOUNT]


def run_program(
    program: Program, backend: backends.Backend, workloads: Sequence[Workload], settings: Settings
) -> list[Row]:
    """Mount *program* on *backend*, run the workloads, and return one row per column."""
    chosen = [w for w in workloads if applicable(program, w)]
    names = columns(program, workloads, settings)

    def all_rows(status: Status, reason: str) -> list[Row]:
        return [Row(program.name, name, backend.name, status, reason) for name in names]

    missing = missing_requirement(program, settings.repo, settings.externals)
    if missing:
        return all_rows(Status.SKIPPED, missing)
    if program.needs_sshd and settings.sshd is None:
        return all_rows(Status.SKIPPED, "no sshd for sshfs (see the run's log)")

    workspace = Workspace(settings.work_root / backend.name / re.sub(r"[^\w.-]", "_", program.name))
    context = Context(
        workspace,
        backend.user,
        backend.uid,
        backend.gid,
        settings.repo,
        settings.externals,
        settings.sshd.port if settings.sshd else 0,
    )
    try:
        build_workspace(program, context, settings)
    except (OSError, RuntimeError, ValueError) as error:
        return all_rows(Status.ERROR, f"preparing the workspace failed: {error}")

    # One PATH for every backend and user: root's own (a pyenv, say) must not pick the tools.
    env = {"PATH": SESSION_PATH, "LC_ALL": "C"}
    limits = settings.limits
    budget: float = limits.mount + limits.unmount + limits.daemon_exit + 60
    budget += (2 * len(chosen) + 2) * limits.step + (limits.suite if TEST_SYSCALLS in names else 0)
    if settings.deadline is not None:
        budget = min(budget, max(60.0, settings.deadline - time.monotonic()))
    if program.reference is not Reference.SNAPSHOT:
        script = reference_script(context, program, chosen, env, limits)
        (workspace.base / "reference.sh").write_text(script)
        backends.run_script(backend.reference_argv(script), env, budget, workspace.base)
    script = mount_script(context, program, chosen, env, TEST_SYSCALLS in names, limits)
    (workspace.base / "session.sh").write_text(script)
    outcome = backends.run_script(backend.session_argv(script), env, budget, workspace.base)
    (workspace.out / "session.stdout").write_text(outcome.stdout)
    (workspace.out / "session.stderr").write_text(outcome.stderr)
    return judge(program, backend.name, context, chosen, names, outcome)


def build_workspace(program: Program, context: Context, settings: Settings) -> None:
    """Create the workspace afresh: tree, reference, storage; owned by the backend's user."""
    workspace = context.workspace
    if workspace.base.exists():
        backends.detach_mounts_under(workspace.base)
        shutil.rmtree(workspace.base)
    for directory in (
        workspace.mnt,
        workspace.store,
        workspace.scratch,
        workspace.out,
        workspace.home,
    ):
        directory.mkdir(parents=True)
    make_tree(workspace.src, tiny=settings.tiny_tree)
    if program.reference is Reference.TREE:
        # cp -a, not shutil.copytree: the reference must keep the tree's hard link
        run_checked(["cp", "-a", str(workspace.src), str(workspace.ref)])
    else:
        workspace.ref.mkdir()
        os.chmod(workspace.ref, 0o755)
        for name, (data, mode) in program.declared_files.items():
            (workspace.ref / name).write_bytes(data)
            os.chmod(workspace.ref / name, mode)
    if program.prepare is not None:
        program.prepare(context)
    if program.needs_sshd and settings.sshd is not None:
        key = workspace.store / "id_ed25519"
        shutil.copy(settings.sshd.client_key, key)
        os.chmod(key, 0o600)
        settings.sshd.client_config(workspace.store / "ssh_config", key)
    chown_tree(workspace.base, context.uid, context.gid)
    if program.needs_sshd and settings.sshd is not None:
        import pwd

        ssh_user = pwd.getpwnam(settings.sshd.user)
        chown_tree(workspace.src, ssh_user.pw_uid, ssh_user.pw_gid)
    for parent in (settings.work_root, settings.work_root / workspace.base.parent.name):
        os.chmod(parent, 0o755)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _status(path: Path) -> int | None:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _seconds(path: Path) -> float:
    stamps = _read(path).split()
    try:
        return float(stamps[1]) - float(stamps[0]) if len(stamps) == 2 else 0.0
    except ValueError:
        return 0.0


def mount_failure_reason(out: Path, outcome: backends.Outcome) -> str:
    """The error a user would have seen when the mount did not come up.

    The daemon's own stderr says it best ("fuse: device not found…"); then our note of how it
    ended; then whatever vufuse itself printed when the session never got that far.
    """
    daemon = first_meaningful_line(_read(out / "daemon.err"))
    note = first_meaningful_line(_read(out / "mount.err"))
    session = first_meaningful_line(outcome.stderr) or first_meaningful_line(outcome.stdout)
    if outcome.status is None:
        session = session or "the session was killed at its time limit"
    parts = [part for part in (daemon, note) if part]
    if not parts:
        status = "" if outcome.status is None else f" (exit {outcome.status})"
        parts = [session or f"the session ended before mounting{status}"]
    # Workspace paths differ per backend and run; a reason should read the same everywhere.
    return substitute_paths("; ".join(parts), {str(out.parent / "mnt"): "<MNT>"})


def judge(
    program: Program,
    backend: str,
    context: Context,
    workloads: Sequence[Workload],
    names: Sequence[str],
    outcome: backends.Outcome,
) -> list[Row]:
    """Rows from the step files a session left in the workspace's out directory."""
    workspace = context.workspace
    out = workspace.out
    mounted = _read(out / "mount.status").strip() == "yes"
    if not mounted:
        reason = mount_failure_reason(out, outcome)
        if backend == "vufuse":
            status, text = Status.UNSUPPORTED, f"not yet supported: {reason}"
        else:
            status, text = Status.FAIL, f"mount failed: {reason}"
        return [
            Row(program.name, name, backend, status, text if name == MOUNT else "not mounted")
            for name in names
        ]
    rows = [Row(program.name, MOUNT, backend, Status.PASS)]
    blocker = ""
    if program.seed and _status(out / "seed.rc") != 0:
        blocker = "seeding the mount (cp -a of the tree into it) failed: " + (
            first_meaningful_line(_read(out / "seed.err"))
            or describe_status(_status(out / "seed.rc") or -1)
        )
    if program.reference is Reference.SNAPSHOT and _status(out / "snapshot.rc") != 0:
        blocker = "snapshot (cp -a of the mount) failed: " + first_meaningful_line(
            _read(out / "snapshot.err")
        )
    root = str(workspace.mnt) + program.root_in_mount(context)
    blocker = substitute_paths(blocker, {str(workspace.mnt): "<MNT>", root: "<ROOT>"})
    for workload in workloads:
        if blocker:
            rows.append(Row(program.name, workload.name, backend, Status.FAIL, blocker))
            continue
        rows.append(judge_workload(program, backend, workspace, workload, root))
    if TEST_SYSCALLS in names:
        rows.append(judge_test_syscalls(program, backend, out))
    rows.append(judge_unmount(program, backend, out))
    return rows


def judge_workload(
    program: Program, backend: str, workspace: Workspace, workload: Workload, root: str
) -> Row:
    """Compare one workload's mount run with its reference run."""
    out = workspace.out
    mnt_status = _status(out / f"mnt.{workload.name}.rc")
    ref_status = _status(out / f"ref.{workload.name}.rc")
    seconds = _seconds(out / f"mnt.{workload.name}.time")
    hung = _read(out / f"mnt.{workload.name}.skipped").strip()
    if hung:
        return Row(program.name, workload.name, backend, Status.FAIL, _after_hang(hung))
    if mnt_status is None:
        return Row(
            program.name,
            workload.name,
            backend,
            Status.FAIL,
            "did not run: the session ended early",
        )
    if ref_status is None or ref_status != 0:
        error = first_meaningful_line(_read(out / f"ref.{workload.name}.err"))
        return Row(
            program.name,
            workload.name,
            backend,
            Status.ERROR,
            f"the reference run itself failed ({ref_status}): {error}",
        )
    # Later keys win: ROOT may equal MNT (or SRC for mirrors of /), and then it is ROOT.
    placeholders = {
        str(workspace.mnt): "<MNT>",
        str(workspace.src): "<SRC>",
        root: "<ROOT>",
        str(workspace.ref): "<ROOT>",
        str(workspace.scratch / f"mnt.{workload.name}"): "<SCRATCH>",
        str(workspace.scratch / f"ref.{workload.name}"): "<SCRATCH>",
    }

    def normalised(side: str) -> str:
        return workload.normalise(
            substitute_paths(_read(out / f"{side}.{workload.name}.out"), placeholders)
        )

    verdict = compare_outputs(
        normalised("mnt"),
        normalised("ref"),
        mnt_status,
        ref_status,
        substitute_paths(_read(out / f"mnt.{workload.name}.err"), placeholders),
    )
    status = Status.PASS if verdict.equal else Status.FAIL
    reason = verdict.reason
    if not verdict.equal and mnt_status == ref_status:
        # Same status, different output: what the commands complained about explains it.
        error = first_meaningful_line(_read(out / f"mnt.{workload.name}.err"))
        reason += f"; stderr: {substitute_paths(error, placeholders)}" if error else ""
    return Row(program.name, workload.name, backend, status, reason, seconds)


def _after_hang(step: str) -> str:
    name = step.removeprefix("mnt.")
    return f"not run: the mount stopped answering in an earlier step ({name} timed out)"


def judge_test_syscalls(program: Program, backend: str, out: Path) -> Row:
    """libfuse's test_syscalls checks itself: pass when every subtest it ran said OK."""
    status = _status(out / f"{TEST_SYSCALLS}.rc")
    suite = parse_test_syscalls(
        _read(out / f"{TEST_SYSCALLS}.out") + _read(out / f"{TEST_SYSCALLS}.err")
    )
    seconds = _seconds(out / f"{TEST_SYSCALLS}.time")
    hung = _read(out / f"{TEST_SYSCALLS}.skipped").strip()
    if hung:
        return Row(program.name, TEST_SYSCALLS, backend, Status.FAIL, _after_hang(hung))
    details: dict[str, object] = {"executed": suite.executed, "failed": list(suite.failed)}
    summary = f"{suite.passed}/{suite.executed} subtests OK"
    if status is None:
        return Row(
            program.name, TEST_SYSCALLS, backend, Status.FAIL, "did not run", seconds, details
        )
    if status == 0 and not suite.failed and suite.executed > 0:
        return Row(program.name, TEST_SYSCALLS, backend, Status.PASS, summary, seconds, details)
    failed = "; ".join(suite.failed[:3]) + (
        f" (+{len(suite.failed) - 3} more)" if len(suite.failed) > 3 else ""
    )
    outcome = describe_status(status)
    if status in (124, 137):
        # test_syscalls prints a subtest's verdict when it ends: the hang is in the next one.
        details["hung_after"] = suite.last
        outcome = f"then hung after subtest {suite.last} ({outcome} at the limit, killed)"
    reason = f"{summary}, {outcome}" + (f"; failed: {failed}" if failed else "")
    return Row(program.name, TEST_SYSCALLS, backend, Status.FAIL, reason, seconds, details)


def judge_unmount(program: Program, backend: str, out: Path) -> Row:
    """Unmount passes when ``fusermount3 -u`` worked and the daemon then exited 0 on its own."""
    status = _status(out / "unmount.rc")
    fate = _read(out / "daemon.fate").strip()
    seconds = _seconds(out / "unmount.time")
    if status != 0:
        error = first_meaningful_line(_read(out / "unmount.err"))
        error = substitute_paths(error, {str(out.parent / "mnt"): "<MNT>"})
        reason = (
            f"fusermount3 -u: {describe_status(status) if status is not None else 'did not run'}"
        )
        return Row(
            program.name, UNMOUNT, backend, Status.FAIL, f"{reason}: {error}".rstrip(": "), seconds
        )
    if fate != "exit 0":
        tail = first_meaningful_line(_read(out / "daemon.err"))
        what = (
            "daemon did not exit within its limit after unmount; killed"
            if fate == "killed"
            else f"daemon {fate or 'fate unknown'} after unmount"
        )
        return Row(
            program.name,
            UNMOUNT,
            backend,
            Status.FAIL,
            f"{what}{': ' + tail if tail else ''}",
            seconds,
        )
    return Row(program.name, UNMOUNT, backend, Status.PASS, "", seconds)
