"""Generating the POSIX shell script one session runs: mount, wait, workloads, unmount.

One script text serves both backends unchanged: the kernel backend runs ``sh -c SCRIPT``
directly, the vufuse backend runs ``vufuse run -- sh -c SCRIPT`` as the ordinary test user. So a
difference between backends is vufuse's, never the harness's. Each step is bounded by
``timeout -k``, writes ``NAME.out``, ``NAME.err``, ``NAME.rc`` and ``NAME.time`` into the out
directory, and the script always ends by unmounting and stopping the daemon it started.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .model import Access, Context, Program, Reference
from .workloads import TEST_SYSCALLS, Workload

PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class Limits:
    """Time limits, in seconds, of the steps of a session."""

    mount: int = 30
    step: int = 120
    suite: int = 60  # test_syscalls takes < 1 s on the kernel, a few s on vufuse
    unmount: int = 30
    daemon_exit: int = 10


def _prologue(out: str, env: Mapping[str, str]) -> list[str]:
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in sorted(env.items()))
    return [
        "set -u",
        "umask 022",
        f"export {exports}",
        f"OUT={shlex.quote(out)}",
        'mkdir -p "$OUT"',
        # run NAME LIMIT CMD...: one bounded step, its streams and status in $OUT
        "run() {",
        "    name=$1; limit=$2; shift 2",
        '    date +%s.%N >"$OUT/$name.time"',
        '    timeout -k 5 "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null',
        "    status=$?",
        '    echo $status >"$OUT/$name.rc"',
        '    date +%s.%N >>"$OUT/$name.time"',
        "}",
        # step: a run that is skipped once a step timed out. A filesystem that stopped
        # answering would make every later step wait out its whole limit (and leave processes
        # in D state until the daemon dies), so later steps only record what they waited on.
        "HUNG=",
        "step() {",
        '    if [ -n "$HUNG" ]; then echo "$HUNG" >"$OUT/$1.skipped"; return; fi',
        '    run "$@"',
        "    case $status in 124|137) HUNG=$name ;; esac",
        "}",
    ]


def session_env(context: Context, program: Program, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment every step sees: fixed locale, time zone, HOME, git identity."""
    from .workloads import GIT_ENV

    env = {
        "LC_ALL": "C",
        "TZ": "UTC",
        "PATH": PATH,
        "HOME": str(context.workspace.home),
        **GIT_ENV,
        **program.env,
        **extra,
    }
    return env


def workload_steps(
    workloads: Sequence[Workload], root: str, scratch: str, access: Access, prefix: str, limit: int
) -> list[str]:
    """Lines running each workload body on *root*; outputs go to ``PREFIX.NAME.*``."""
    lines = []
    for workload in workloads:
        scratch_dir = f"{scratch}/{prefix}.{workload.name}"
        lines.append(f"mkdir -p {shlex.quote(scratch_dir)}")
        lines.append(
            f"step {prefix}.{workload.name} {min(limit, workload.timeout)} sh -c "
            f"{shlex.quote(workload.body)} sh {shlex.quote(root)} {shlex.quote(scratch_dir)} "
            f"{access}"
        )
    return lines


def reference_script(
    context: Context,
    program: Program,
    workloads: Sequence[Workload],
    env: Mapping[str, str],
    limits: Limits = Limits(),
) -> str:
    """The script that runs the workloads on the plain reference directory (no FUSE at all)."""
    workspace = context.workspace
    lines = _prologue(str(workspace.out), session_env(context, program, env))
    lines += workload_steps(
        workloads, str(workspace.ref), str(workspace.scratch), program.access, "ref", limits.step
    )
    return "\n".join(lines) + "\n"


def mount_script(
    context: Context,
    program: Program,
    workloads: Sequence[Workload],
    env: Mapping[str, str],
    run_test_syscalls: bool,
    limits: Limits = Limits(),
) -> str:
    """The script that mounts *program*, runs the workloads on it, and always unmounts.

    Status files it writes besides the steps': ``mount.status`` (yes/no), ``mount.err`` (why
    not), ``daemon.pid``, ``daemon.fate`` (``exit N`` or ``killed``).
    """
    workspace = context.workspace
    mnt = str(workspace.mnt)
    root = mnt + program.root_in_mount(context)
    daemon = " ".join(shlex.quote(arg) for arg in program.mount_argv(context))
    ticks = limits.mount * 10
    lines = _prologue(str(workspace.out), session_env(context, program, env))
    lines += [
        f"MNT={shlex.quote(mnt)}",
        f"ROOT={shlex.quote(root)}",
        'mkdir -p "$MNT"',
        f'{daemon} >"$OUT/daemon.out" 2>"$OUT/daemon.err" </dev/null &',
        "DAEMON=$!",
        'echo $DAEMON >"$OUT/daemon.pid"',
        "mounted=no; ticks=0",
        f"while [ $ticks -lt {ticks} ]; do",
        '    if mountpoint -q "$MNT" 2>/dev/null; then mounted=yes; break; fi',
        "    kill -0 $DAEMON 2>/dev/null || break",
        "    sleep 0.1; ticks=$((ticks + 1))",
        "done",
        "if [ $mounted = no ]; then",
        "    if kill -0 $DAEMON 2>/dev/null; then",
        f'        echo "not mounted after {limits.mount} s" >>"$OUT/mount.err"',
        "    else",
        "        wait $DAEMON",
        '        echo "the daemon exited with status $? before mounting" >>"$OUT/mount.err"',
        "    fi",
        "else",
        # The first access waits for INIT; a daemon that never answers it must not hang us.
        f'    timeout -k 2 {limits.mount} stat "$ROOT" >/dev/null 2>>"$OUT/mount.err" \\',
        "        || mounted=no",
        "fi",
        'echo $mounted >"$OUT/mount.status"',
        "if [ $mounted = yes ]; then",
    ]
    body: list[str] = []
    if program.seed:
        body.append(f'step seed {limits.step} cp -a {shlex.quote(str(workspace.src))}/. "$ROOT"/')
    if program.reference is Reference.SNAPSHOT:
        body.append(
            f'step snapshot {limits.step} cp -a "$ROOT"/. {shlex.quote(str(workspace.ref))}/'
        )
        body += workload_steps(
            workloads,
            str(workspace.ref),
            str(workspace.scratch),
            program.access,
            "ref",
            limits.step,
        )
    body += workload_steps(
        workloads, root, str(workspace.scratch), program.access, "mnt", limits.step
    )
    if run_test_syscalls:
        body.append(
            f"step {TEST_SYSCALLS} {limits.suite} "
            f"{shlex.quote(str(context.externals / 'libfuse' / 'test_syscalls'))} "
            f'"$ROOT" :{shlex.quote(str(workspace.src))}'
        )
    body.append(f'run unmount {limits.unmount} fusermount3 -u "$MNT"')
    body.append(
        'if [ "$(cat "$OUT/unmount.rc")" != 0 ]; then '
        f'timeout -k 2 {limits.unmount} umount "$MNT" >>"$OUT/unmount.err" 2>&1; fi'
    )
    lines += ["    " + line for line in body]
    lines += [
        "fi",
        # After unmount the daemon should exit by itself (status 0 for libfuse); if not, stop it.
        "ticks=0",
        f"while kill -0 $DAEMON 2>/dev/null && [ $ticks -lt {limits.daemon_exit * 10} ]; do",
        "    sleep 0.1; ticks=$((ticks + 1))",
        "done",
        "if kill -0 $DAEMON 2>/dev/null; then",
        "    kill -TERM $DAEMON; sleep 1; kill -KILL $DAEMON 2>/dev/null",
        '    echo killed >"$OUT/daemon.fate"',
        "else",
        '    wait $DAEMON; echo "exit $?" >"$OUT/daemon.fate"',
        "fi",
        # A daemon that failed to unmount leaves a dead mount; lazily detach it.
        'if mountpoint -q "$MNT" 2>/dev/null; then',
        '    fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null',
        '    echo "still mounted after the daemon ended: detached lazily" >>"$OUT/unmount.err"',
        "fi",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"
