"""Tests of the compatibility harness (compat-tests/).

Most of them need no FUSE: the normalisation and comparison logic, the generated session
script, the judging of step files, the report. The ``kernel`` test runs the ``--quick`` subset
on the real kernel FUSE as root and asserts every row passed; the ``e2e`` test runs one program
on the vufuse backend and asserts each row is recorded (today as "not yet supported: …").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from compat import report
from compat.backends import Outcome
from compat.fixtures import make_tree
from compat.model import Access, Context, Program, Reference, Row, Status, Workspace
from compat.normalise import (
    compare_outputs,
    drop_lines,
    first_meaningful_line,
    normalise_ls,
    normalise_sorted,
    parse_test_syscalls,
    substitute_paths,
)
from compat.programs import BY_NAME, PROGRAMS
from compat.runner import MOUNT, UNMOUNT, Settings, columns, judge
from compat.script import Limits, mount_script, reference_script
from compat.workloads import ALL, QUICK, TEST_SYSCALLS, applicable
from compat.workloads import BY_NAME as WORKLOADS

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "compat-tests" / "run.py"
EXTERNALS = Path(os.environ.get("VUFUSE_EXTERNALS", "/var/tmp/vufuse-externals"))

LS_EXT4 = """.:
total 12
drwxr-xr-x 2 root root 4096 T dir
-rw-r--r-- 1 root root   26 T README.txt
lrwxrwxrwx 1 root root   10 T link -> README.txt
crw-rw-rw- 1 root root 1, 3 T null

./dir:
total 0
"""
LS_FUSE = """.:
total 3
drwxr-xr-x 3 alice users 0 T dir
-rw-r--r-- 1 alice users 26 T README.txt
lrwxrwxrwx 1 alice users 10 T link -> README.txt
crw-rw-rw- 1 alice users 1,   3 T null

./dir:
total 0
"""


# --- normalisation -------------------------------------------------------------------------


def test_ls_normalisation_drops_what_belongs_to_the_filesystem() -> None:
    """Block totals, link counts, directory sizes and owners differ; the content does not."""
    assert normalise_ls(LS_EXT4) == normalise_ls(LS_FUSE)
    normalised = normalise_ls(LS_EXT4)
    assert "total" not in normalised
    assert "-rw-r--r-- 26 README.txt" in normalised
    assert "lrwxrwxrwx 10 link -> README.txt" in normalised
    assert "crw-rw-rw- 1,3 null" in normalised
    assert "drwxr-xr-x - dir" in normalised


def test_ls_normalisation_keeps_modes_sizes_and_targets() -> None:
    """A changed permission, size or symlink target must survive normalisation."""
    for before, after in (
        ("-rw-r--r-- 1 root root 26 T README.txt", "-rw-rw-r-- 1 root root 26 T README.txt"),
        ("-rw-r--r-- 1 root root 26 T README.txt", "-rw-r--r-- 1 root root 27 T README.txt"),
        ("lrwxrwxrwx 1 root root 10 T l -> a", "lrwxrwxrwx 1 root root 10 T l -> b"),
    ):
        assert normalise_ls(before) != normalise_ls(after)


def test_ls_owner_is_compared_only_when_asked() -> None:
    line_root = "-rw-r--r-- 1 root root 1 T f"
    line_user = "-rw-r--r-- 1 alice alice 1 T f"
    assert normalise_ls(line_root) == normalise_ls(line_user)
    assert normalise_ls(line_root, keep_owner=True) != normalise_ls(line_user, keep_owner=True)


def test_ls_acl_marker_and_names_with_spaces() -> None:
    assert (
        normalise_ls("-rw-r--r--+ 1 u g 5 T a name  with spaces")
        == "-rw-r--r-- 5 a name  with spaces\n"
    )


def test_sorted_and_dropped_lines() -> None:
    assert normalise_sorted("b\na\nc\n") == "a\nb\nc\n"
    assert normalise_sorted("") == ""
    assert drop_lines("keep\n./live/x\nkeep too\n", [r"/live/"]) == "keep\nkeep too\n"


def test_paths_are_substituted_longest_first() -> None:
    text = "/w/mnt/src/a and /w/mnt/b and /w/ref/c"
    paths = {"/w/mnt": "<MNT>", "/w/mnt/src": "<ROOT>", "/w/ref": "<ROOT>"}
    assert substitute_paths(text, paths) == "<ROOT>/a and <MNT>/b and <ROOT>/c"


# --- comparison and reasons ----------------------------------------------------------------


def test_equal_outputs_pass() -> None:
    assert compare_outputs("x\n", "x\n", 0, 0).equal


def test_status_difference_names_the_error() -> None:
    verdict = compare_outputs("", "ok\n", 1, 0, "cp: cannot create symbolic link 'l': ENOSYS\n")
    assert not verdict.equal
    assert verdict.reason == (
        "exit 1 (reference: exit 0): cp: cannot create symbolic link 'l': ENOSYS"
    )


def test_timeouts_are_called_timeouts() -> None:
    assert compare_outputs("", "", 124, 0).reason.startswith("timed out")
    assert compare_outputs("", "", 137, 0).reason.startswith("killed after timing out")


def test_output_difference_shows_the_first_changed_lines() -> None:
    verdict = compare_outputs("a\nB\nc\nD\nE\nF\n", "a\nb\nc\nd\ne\nf\n", 0, 0)
    assert not verdict.equal
    assert verdict.reason.startswith("output differs: -b; +B; -d")
    assert "more lines" in verdict.reason


def test_first_meaningful_line_skips_noise_and_log_stamps() -> None:
    text = (
        "\nIgnoring invalid max threads value 4294967295 > max (100000).\n"
        "2026/11/28 11:04:10 mount helper error: fusermount: failed\n"
    )
    assert first_meaningful_line(text) == "mount helper error: fusermount: failed"
    assert first_meaningful_line("") == ""


def test_first_meaningful_line_joins_cause_and_python_exception() -> None:
    text = (
        "fuse: failed to open /dev/fuse: Permission denied\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "RuntimeError: 1\n"
    )
    assert first_meaningful_line(text) == (
        "fuse: failed to open /dev/fuse: Permission denied (RuntimeError: 1)"
    )
    bare = 'Traceback (most recent call last):\n  File "x", line 1\nOSError: [Errno 5] EIO\n'
    assert first_meaningful_line(bare) == "OSError: [Errno 5] EIO"


def test_test_syscalls_output_is_counted() -> None:
    output = (
        " 1 [create] OK\n"
        " 2 [create+unlink] fcheck_data() - read: Bad file descriptor\n"
        " 2 [create+unlink] more detail about the same failure\n"
        " 3 [symlink] OK\n"
        "1 tests failed\n"
    )
    suite = parse_test_syscalls(output)
    assert suite.executed == 3
    assert suite.passed == 2
    assert suite.failed == ("2 [create+unlink] fcheck_data() - read: Bad file descriptor",)


# --- catalogue, workloads, scripts ---------------------------------------------------------


def test_catalogue_covers_the_required_programs() -> None:
    names = {program.name for program in PROGRAMS}
    for required in (
        "squashfuse",
        "fuse2fs",
        "fuse-zip",
        "archivemount",
        "bindfs",
        "unionfs-fuse",
        "fuse-overlayfs",
        "sshfs",
        "gocryptfs",
        "rclone",
        "hello",
        "hello_ll",
        "passthrough",
        "passthrough_ll",
        "passthrough_fh",
        "passthrough_hp",
        "fusepy-mirror",
        "mfusepy-mirror",
        "pyfuse3-api:passthroughfs",
        "real-pyfuse3:hello",
        "real-pyfuse3:passthroughfs",
        "our-pyfuse3:hello",
        "our-pyfuse3:passthroughfs",
    ):
        assert required in names
    assert {p.name for p in PROGRAMS if p.quick} == {"hello_ll", "squashfuse", "passthrough_ll"}
    assert [w.name for w in QUICK] == ["ls", "find", "cat"]


def test_write_workloads_only_on_writable_mounts() -> None:
    squashfuse, bindfs, hello = BY_NAME["squashfuse"], BY_NAME["bindfs"], BY_NAME["hello"]
    assert not applicable(squashfuse, WORKLOADS["git"])
    assert not applicable(squashfuse, WORKLOADS["sqlite"])
    assert applicable(bindfs, WORKLOADS["sqlite"])
    assert not applicable(hello, WORKLOADS["python"])  # a declared tree has no package
    assert applicable(hello, WORKLOADS["cat"])


def _context(tmp_path: Path) -> Context:
    return Context(Workspace(tmp_path / "ws"), "someone", 1000, 1000, REPO, EXTERNALS)


def test_mount_script_bounds_every_step_and_always_unmounts(tmp_path: Path) -> None:
    program = BY_NAME["passthrough_ll"]
    script = mount_script(_context(tmp_path), program, list(ALL), {}, True, Limits(step=7))
    assert script.count("step mnt.") == len(ALL)
    assert 'timeout -k 5 "$limit"' in script
    assert f"step {TEST_SYSCALLS} " in script
    assert 'run unmount 30 fusermount3 -u "$MNT"' in script
    assert "kill -KILL $DAEMON" in script
    assert "umount -l" in script
    # the script is plain POSIX sh: dash must accept it
    checked = subprocess.run(["sh", "-n", "-c", script], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_reference_script_never_mounts(tmp_path: Path) -> None:
    script = reference_script(_context(tmp_path), BY_NAME["bindfs"], list(QUICK), {})
    assert "fusermount" not in script and "$MNT" not in script
    assert script.count("step ref.") == len(QUICK)


def test_tree_is_deterministic(tmp_path: Path) -> None:
    make_tree(tmp_path / "a", tiny=True)
    make_tree(tmp_path / "b", tiny=True)
    for path in sorted((tmp_path / "a").rglob("*")):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        if path.is_file() and not path.is_symlink():
            assert path.read_bytes() == twin.read_bytes()
    assert os.readlink(tmp_path / "a" / "link-to-readme") == "README.txt"


# --- judging step files --------------------------------------------------------------------


def _fake_out(workspace: Workspace, files: dict[str, str]) -> None:
    workspace.out.mkdir(parents=True)
    for name, text in files.items():
        (workspace.out / name).write_text(text)


def test_a_mount_that_never_came_up_is_not_yet_supported_on_vufuse(tmp_path: Path) -> None:
    """Every column gets a row, none passes, and the mount row carries the daemon's error."""
    context = _context(tmp_path)
    program = BY_NAME["passthrough_ll"]
    _fake_out(
        context.workspace,
        {
            "mount.status": "no\n",
            "daemon.err": "fuse: failed to open /dev/fuse: Permission denied\n",
            "mount.err": "the daemon exited with status 1 before mounting\n",
        },
    )
    settings = Settings(tmp_path, REPO, EXTERNALS, True, Limits())
    names = columns(program, QUICK, settings)
    rows = judge(program, "vufuse", context, list(QUICK), names, Outcome(0, "", "", 0.1))
    assert (
        [row.workload for row in rows]
        == names
        == [MOUNT, "ls", "find", "cat", TEST_SYSCALLS, UNMOUNT]
    )
    assert all(row.status is Status.UNSUPPORTED for row in rows)
    assert rows[0].reason == (
        "not yet supported: fuse: failed to open /dev/fuse: Permission denied; "
        "the daemon exited with status 1 before mounting"
    )
    kernel_rows = judge(program, "kernel", context, list(QUICK), names, Outcome(0, "", "", 0.1))
    assert all(row.status is Status.FAIL for row in kernel_rows)


def test_a_session_that_died_early_reports_vufuse_own_error(tmp_path: Path) -> None:
    context = _context(tmp_path)
    _fake_out(context.workspace, {})
    program = BY_NAME["hello_ll"]
    outcome = Outcome(1, "", "vufuse: cannot install the seccomp filter\n", 0.1)
    rows = judge(program, "vufuse", context, list(QUICK), [MOUNT, "ls", UNMOUNT], outcome)
    assert rows[0].reason == "not yet supported: vufuse: cannot install the seccomp filter"


def test_workloads_are_judged_against_the_reference(tmp_path: Path) -> None:
    context = _context(tmp_path)
    workspace = context.workspace
    mnt = str(workspace.mnt)
    program = Program("demo", "", Access.RW, lambda c: [], reference=Reference.TREE)
    _fake_out(
        workspace,
        {
            "mount.status": "yes\n",
            "ref.ls.out": LS_EXT4.replace("README", "R"),
            "ref.ls.rc": "0\n",
            "mnt.ls.out": LS_FUSE.replace("README", "R"),
            "mnt.ls.rc": "0\n",
            "ref.cat.out": f"abc  {workspace.ref}/x\n",
            "ref.cat.rc": "0\n",
            "mnt.cat.out": f"abd  {mnt}/x\n",
            "mnt.cat.rc": "0\n",
            "ref.find.out": "",
            "ref.find.rc": "0\n",
            "mnt.find.out": "",
            "mnt.find.rc": "124\n",
            "unmount.rc": "0\n",
            "daemon.fate": "exit 0\n",
        },
    )
    names = [MOUNT, "ls", "find", "cat", UNMOUNT]
    rows = {
        row.workload: row
        for row in judge(program, "kernel", context, list(QUICK), names, Outcome(0, "", "", 1.0))
    }
    assert rows["ls"].status is Status.PASS
    assert rows["find"].status is Status.FAIL and rows["find"].reason.startswith("timed out")
    assert rows["cat"].status is Status.FAIL
    assert rows["cat"].reason == "output differs: -abc  <ROOT>/x; +abd  <ROOT>/x"
    assert rows[UNMOUNT].status is Status.PASS


def test_a_daemon_that_does_not_exit_fails_unmount(tmp_path: Path) -> None:
    context = _context(tmp_path)
    program = BY_NAME["hello"]
    _fake_out(
        context.workspace, {"mount.status": "yes\n", "unmount.rc": "0\n", "daemon.fate": "killed\n"}
    )
    rows = judge(program, "kernel", context, [], [MOUNT, UNMOUNT], Outcome(0, "", "", 1.0))
    assert rows[-1].status is Status.FAIL
    assert "killed" in rows[-1].reason


# --- report --------------------------------------------------------------------------------


def test_merge_replaces_only_what_was_run() -> None:
    old = report.merge(
        {},
        [
            Row("a", "ls", "kernel", Status.PASS),
            Row("b", "ls", "kernel", Status.FAIL, "x"),
            Row("a", "ls", "vufuse", Status.UNSUPPORTED, "not yet supported: e"),
        ],
        {"kernel": {"seconds": 1}},
    )
    new = report.merge(
        old, [Row("a", "ls", "kernel", Status.FAIL, "y")], {"kernel": {"seconds": 2}}
    )
    rows = {(r["program"], r["backend"]): r for r in new["rows"]}
    assert rows[("a", "kernel")]["status"] == "fail"
    assert rows[("b", "kernel")]["reason"] == "x"
    assert rows[("a", "vufuse")]["status"] == "not yet supported"
    assert new["runs"]["kernel"]["seconds"] == 2
    assert Row.from_json(rows[("a", "kernel")]) == Row("a", "ls", "kernel", Status.FAIL, "y")


def test_markdown_has_a_table_per_backend_and_a_reason_per_failure() -> None:
    document = report.merge(
        {},
        [
            Row("p", "mount", "kernel", Status.PASS),
            Row("p", "ls", "kernel", Status.FAIL, "output differs: -a; +b"),
            Row(
                "p",
                TEST_SYSCALLS,
                "kernel",
                Status.PASS,
                "58/58",
                details={"executed": 58, "failed": []},
            ),
            Row("p", "mount", "vufuse", Status.UNSUPPORTED, "not yet supported: fuse: EACCES"),
            Row("p", "ls", "vufuse", Status.UNSUPPORTED, "not mounted"),
        ],
        {},
    )
    text = report.render_markdown(
        document, ["mount", "ls", TEST_SYSCALLS], ["p"], {"p": "a program"}
    )
    assert "## Backend `kernel`" in text and "## Backend `vufuse`" in text
    assert "| `p` | ✅ | ❌ | ✅ 58/58 |" in text
    assert "- `p` / ls: output differs: -a; +b" in text
    assert "- `p` (all 2 rows): not yet supported: fuse: EACCES" in text


def test_vufuse_reasons_say_when_the_kernel_fails_too() -> None:
    document = report.merge(
        {},
        [
            Row("p", "ls", "kernel", Status.FAIL, "program quirk"),
            Row("p", "cat", "kernel", Status.PASS),
            Row("p", "ls", "vufuse", Status.FAIL, "program quirk"),
            Row("p", "cat", "vufuse", Status.FAIL, "vufuse bug"),
        ],
        {},
    )
    text = report.render_markdown(document, ["ls", "cat"], ["p"], {})
    assert "- `p` / ls: program quirk *(fails on kernel too)*" in text
    assert "- `p` / cat: vufuse bug\n" in text
    assert "**0 of the 1 rows that pass on the kernel pass here.**" in text


# --- real runs -----------------------------------------------------------------------------


def _run_harness(tmp_path: Path, *arguments: str) -> dict[str, object]:
    results = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--results",
            str(results),
            "--no-doc",
            "--work",
            str(tmp_path / "work"),
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(results.read_text())


def _require_quick_programs() -> None:
    for binary in ("squashfuse", "mksquashfs"):
        if shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            pytest.skip(f"{binary} missing: run compat-tests/setup.sh as root")
    for example in ("hello_ll", "passthrough_ll", "test_syscalls"):
        if not (EXTERNALS / "libfuse" / example).exists():
            pytest.skip("libfuse examples not built: run compat-tests/setup.sh as root")


@pytest.mark.kernel
def test_quick_subset_passes_on_the_kernel(tmp_path: Path) -> None:
    """The --quick subset on the real kernel FUSE: every row passes, test_syscalls runs 58."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and /dev/fuse (the kernel reference)")
    _require_quick_programs()
    document = _run_harness(tmp_path, "--backend", "kernel")
    rows = [Row.from_json(row) for row in document["rows"]]  # type: ignore[union-attr]
    assert {row.program for row in rows} == {"hello_ll", "squashfuse", "passthrough_ll"}
    failures = [
        f"{r.program}/{r.workload}: {r.status} {r.reason}"
        for r in rows
        if r.status is not Status.PASS
    ]
    assert not failures, failures
    suites = [row for row in rows if row.workload == TEST_SYSCALLS]
    assert len(suites) == 1
    assert suites[0].details["executed"] == 58  # as root; 66 as an ordinary user
    with open("/proc/self/mountinfo") as mountinfo:
        assert str(tmp_path) not in mountinfo.read()


@pytest.mark.e2e
def test_vufuse_backend_records_every_row(tmp_path: Path) -> None:
    """On vufuse each row is recorded: a pass, a fail, or "not yet supported: <error>"."""
    if not (REPO / ".venv" / "bin" / "vufuse").exists():
        pytest.skip("no vufuse launcher in .venv (make venv)")
    if os.geteuid() == 0:
        pytest.skip("runs as the ordinary user, in the main suite")
    if not (EXTERNALS / "libfuse" / "hello_ll").exists():
        pytest.skip("libfuse examples not built: run compat-tests/setup.sh as root")
    document = _run_harness(tmp_path, "--backend", "vufuse", "--programs", "hello_ll")
    rows = [Row.from_json(row) for row in document["rows"]]  # type: ignore[union-attr]
    assert [row.workload for row in rows] == [MOUNT, "ls", "find", "cat", UNMOUNT]
    for row in rows:
        assert row.status in (Status.PASS, Status.FAIL, Status.UNSUPPORTED), row
        if row.status is not Status.PASS:
            assert row.reason
    if rows[0].status is Status.UNSUPPORTED:
        assert rows[0].reason.startswith("not yet supported: ")


# --- time limits and cleanup (real processes, no FUSE) -------------------------------------


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie its new parent has not reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_a_daemon_that_never_mounts_is_given_up_on_and_killed(tmp_path: Path) -> None:
    from compat import backends

    context = _context(tmp_path)
    context.workspace.mnt.mkdir(parents=True)
    program = Program("sleeper", "", Access.RO, lambda c: ["sleep", "600"])
    script = mount_script(context, program, list(QUICK), {}, False, Limits(mount=1, daemon_exit=1))
    outcome = backends.run_script(["sh", "-c", script], {"PATH": "/usr/bin:/bin"}, 60, tmp_path)
    out = context.workspace.out
    assert outcome.status == 0
    assert (out / "mount.status").read_text() == "no\n"
    assert "not mounted after 1 s" in (out / "mount.err").read_text()
    assert (out / "daemon.fate").read_text() == "killed\n"
    pid = int((out / "daemon.pid").read_text())
    assert _gone(pid)
    rows = judge(program, "vufuse", context, list(QUICK), [MOUNT, "ls", UNMOUNT], outcome)
    assert rows[0].reason == "not yet supported: not mounted after 1 s"


def test_a_session_over_its_time_limit_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    from compat import backends

    pidfile = tmp_path / "pid"
    script = f"setsid sleep 600 & echo $! > {pidfile}; sleep 600"
    outcome = backends.run_script(["sh", "-c", script], {"PATH": "/usr/bin:/bin"}, 1, tmp_path)
    assert outcome.status is None
    escaped = int(pidfile.read_text())  # left our process group: found by its marker
    assert _gone(escaped)
