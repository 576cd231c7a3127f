"""Command line: choose backends, programs and the quick subset; run; write results and docs.

``python3 compat-tests/run.py [--backend kernel|vufuse|all] [--programs P ...] [--quick]``

A full run writes ``compat-tests/results/latest.json`` and regenerates
``docs/compatibility.md``; ``--quick`` writes ``results/quick.json`` and leaves the document
alone (a smoke test must not overwrite the full matrix), unless ``--results``/``--doc`` say
otherwise.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import backends, report, runner, suites
from .fixtures import Sshd
from .model import Row, Status
from .programs import BY_NAME, PROGRAMS
from .script import Limits
from .workloads import ALL, QUICK, TEST_SYSCALLS
from .workloads import BY_NAME as WORKLOADS

COMPAT_DIR = Path(__file__).resolve().parents[1]
REPO = COMPAT_DIR.parent
# Root's runs hand each workspace to the backend's user; an ordinary user gets a root of their own.
DEFAULT_WORK = Path(
    "/var/tmp/vufuse-compat" if os.geteuid() == 0 else f"/var/tmp/vufuse-compat-{os.geteuid()}"
)
DEFAULT_EXTERNALS = Path(os.environ.get("VUFUSE_EXTERNALS", "/var/tmp/vufuse-externals"))
TEST_USER = os.environ.get("VUFUSE_TEST_USER", "vufuse-test")


def build_parser() -> argparse.ArgumentParser:
    """The harness's options."""
    parser = argparse.ArgumentParser(prog="compat", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("kernel", "vufuse", "all"), default="all")
    parser.add_argument("--programs", nargs="+", metavar="P", help="only these programs")
    parser.add_argument("--workloads", nargs="+", metavar="W", help="only these workloads")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="hello_ll, squashfuse, passthrough_ll on a tiny tree; ls/find/cat and test_syscalls",
    )
    parser.add_argument(
        "--no-test-syscalls", action="store_true", help="skip libfuse's test_syscalls"
    )
    parser.add_argument("--results", type=Path, help="results JSON (default results/latest.json)")
    parser.add_argument(
        "--doc", type=Path, help="markdown to regenerate (default docs/compatibility.md)"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write the markdown")
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help="scratch root (default %(default)s)"
    )
    parser.add_argument("--externals", type=Path, default=DEFAULT_EXTERNALS)
    parser.add_argument("--step-timeout", type=int, default=60, help="seconds per workload step")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=40,
        help="whole-run limit; programs not started by then are recorded as skipped",
    )
    parser.add_argument(
        "--suite-timeout",
        type=int,
        default=600,
        help="seconds a whole external suite (pyfuse3's) may take on one backend",
    )
    parser.add_argument(
        "--list", action="store_true", help="list programs, suites and workloads, then exit"
    )
    parser.add_argument("--keep", action="store_true", help="keep workspaces for debugging")
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def select_programs(options: argparse.Namespace) -> list[str]:
    """Program names in catalogue order, filtered by --programs / --quick."""
    everything = [p.name for p in PROGRAMS] + [s.name for s in suites.SUITES]
    if options.programs:
        unknown = [name for name in options.programs if name not in everything]
        if unknown:
            raise SystemExit(f"compat: unknown program(s) {unknown}; --list shows them")
        return [name for name in everything if name in options.programs]
    if options.quick:
        return [p.name for p in PROGRAMS if p.quick]
    return everything


def select_workloads(options: argparse.Namespace) -> list:
    """Workloads in their fixed order (write workloads run after the reading ones)."""
    if options.workloads:
        unknown = [name for name in options.workloads if name not in WORKLOADS]
        if unknown:
            raise SystemExit(f"compat: unknown workload(s) {unknown}; --list shows them")
        return [w for w in ALL if w.name in options.workloads]
    return list(QUICK if options.quick else ALL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix; print one line per (backend, program); write JSON and markdown."""
    options = build_parser().parse_args(argv)
    # SIGTERM (a CI time limit) must unwind like Ctrl-C, so every finally-block unmounts and
    # kills what it started.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if options.list:
        for program in PROGRAMS:
            print(f"{program.name:22} {program.access:3} {program.description}")
        for suite in suites.SUITES:
            print(f"{suite.name:22} --- {suite.description}")
        for workload in ALL:
            print(f"  workload {workload.name:8} {workload.description}")
        return 0
    programs = select_programs(options)
    workloads = select_workloads(options)
    names = ["kernel", "vufuse"] if options.backend == "all" else [options.backend]
    me = pwd.getpwuid(os.geteuid()).pw_name
    chosen_backends = [
        backends.Backend("kernel", me, REPO),
        backends.Backend("vufuse", TEST_USER if os.geteuid() == 0 else me, REPO),
    ]
    chosen_backends = [b for b in chosen_backends if b.name in names]
    results = options.results or COMPAT_DIR / "results" / (
        "quick.json" if options.quick else "latest.json"
    )
    doc = options.doc or (None if options.quick else REPO / "docs" / "compatibility.md")
    limits = Limits(step=options.step_timeout)
    options.work.mkdir(parents=True, exist_ok=True)
    os.chmod(options.work, 0o755)

    options.deadline = time.monotonic() + options.max_minutes * 60
    all_rows: list[Row] = []
    runs: dict[str, dict[str, object]] = {}
    for backend in chosen_backends:
        started = time.monotonic()
        rows = run_backend(backend, programs, workloads, options, limits)
        seconds = round(time.monotonic() - started, 1)
        runs[backend.name] = {
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "user": backend.user,
            "seconds": seconds,
            "quick": options.quick,
            "programs": programs,
            "counts": report.counts(rows),
        }
        print(f"== {backend.name}: {seconds} s, {report.counts(rows)}", flush=True)
        all_rows += rows
    if not options.keep:
        shutil.rmtree(options.work / "kernel", ignore_errors=True)
        shutil.rmtree(options.work / "vufuse", ignore_errors=True)
    document = report.merge(report.load(results), all_rows, runs)
    report.save(results, document)
    print(f"results: {results}")
    if doc is not None and not options.no_doc:
        columns = ["mount", *(w.name for w in ALL), TEST_SYSCALLS, suites.SUITE_COLUMN, "unmount"]
        descriptions = {p.name: p.description for p in PROGRAMS}
        descriptions.update({suite.name: suite.description for suite in suites.SUITES})
        doc.write_text(report.render_markdown(document, columns, list(descriptions), descriptions))
        print(f"document: {doc}")
    return 1 if any(row.status is Status.ERROR for row in all_rows) else 0


def _columns(name: str, workloads: Sequence, settings: runner.Settings) -> list[str]:
    """The row names of a program, or the one column of a suite."""
    if name in suites.BY_NAME:
        return [suites.SUITE_COLUMN]
    return runner.columns(BY_NAME[name], workloads, settings)


def run_backend(
    backend: backends.Backend,
    programs: Sequence[str],
    workloads: Sequence,
    options: argparse.Namespace,
    limits: Limits,
) -> list[Row]:
    """Every chosen program on one backend; starts and always stops the sshd sshfs needs."""
    unavailable = backend.unavailable()
    settings = runner.Settings(
        work_root=options.work,
        repo=REPO,
        externals=options.externals,
        tiny_tree=options.quick,
        limits=limits,
        run_test_syscalls=not options.no_test_syscalls,
    )
    if unavailable:
        skipped = [
            Row(name, column, backend.name, Status.SKIPPED, unavailable)
            for name in programs
            for column in _columns(name, workloads, settings)
        ]
        print(f"== {backend.name}: skipped: {unavailable}", flush=True)
        return skipped
    sshd = None
    sshd_error = ""
    if any(name in BY_NAME and BY_NAME[name].needs_sshd for name in programs):
        ssh_user = TEST_USER if os.geteuid() == 0 else backend.user
        sshd = Sshd(options.work / f"sshd-{backend.name}", ssh_user)
        try:
            entry = pwd.getpwnam(ssh_user)
            sshd.start(entry.pw_uid, entry.pw_gid)
        except (KeyError, OSError, RuntimeError, subprocess.SubprocessError) as error:
            sshd_error = str(error)
            sshd = None
    settings = runner.Settings(
        work_root=options.work,
        repo=REPO,
        externals=options.externals,
        tiny_tree=options.quick,
        limits=limits,
        sshd=sshd,
        run_test_syscalls=not options.no_test_syscalls,
        deadline=options.deadline,
    )
    rows: list[Row] = []
    try:
        for name in programs:
            started = time.monotonic()
            if started > options.deadline:
                limit = f"--max-minutes {options.max_minutes:g}"
                reason = f"not started: the run's limit ({limit}) was reached"
                rows += [
                    Row(name, column, backend.name, Status.SKIPPED, reason)
                    for column in _columns(name, workloads, settings)
                ]
                continue
            try:
                if name in suites.BY_NAME:
                    limit = min(options.suite_timeout, max(60.0, options.deadline - started))
                    suite = suites.BY_NAME[name]
                    program_rows = [
                        suites.run_suite(
                            suite, backend, REPO, options.externals, options.work, limit
                        )
                    ]
                else:
                    program_rows = runner.run_program(BY_NAME[name], backend, workloads, settings)
            except Exception as error:  # noqa: BLE001 (one program's harness bug must not end the matrix)
                reason = f"harness crashed: {type(error).__name__}: {error}"
                program_rows = [
                    Row(name, column, backend.name, Status.ERROR, reason)
                    for column in _columns(name, workloads, settings)
                ]
            if sshd_error and name in BY_NAME and BY_NAME[name].needs_sshd:
                program_rows = [
                    Row(r.program, r.workload, r.backend, Status.ERROR, f"sshd: {sshd_error}")
                    for r in program_rows
                ]
            rows += program_rows
            tally = report.counts(program_rows)
            worst = next((r for r in program_rows if r.status is not Status.PASS), None)
            note = f"  first problem: {worst.workload}: {worst.reason[:150]}" if worst else ""
            print(
                f"{backend.name:6} {name:22} {time.monotonic() - started:6.1f} s  {tally}{note}",
                flush=True,
            )
    finally:
        if sshd is not None:
            sshd.stop()
            if not options.keep:
                shutil.rmtree(sshd.directory, ignore_errors=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
