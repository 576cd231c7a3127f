"""One row per suite run: pyfuse3's pytest run (compat/suites.py), a hung test_syscalls."""

from __future__ import annotations

from pathlib import Path

from compat.model import Access, Program, Status
from compat.report import _cell
from compat.runner import judge_test_syscalls
from compat.suites import SUITES, judge, parse_summary

PASSING = """test/test_api.py::test_listdir PASSED [  5%]
test/test_fs.py::test_open_read PASSED [ 50%]
============================== 19 passed in 12.34s ==============================
"""
FAILING = """test/test_fs.py::test_notify_poll FAILED [ 40%]
=========================== short test summary info ============================
FAILED test/test_fs.py::test_notify_poll - AssertionError: assert False
=================== 1 failed, 18 passed, 2 skipped in 20.1s ====================
"""


def test_summary_counts() -> None:
    assert parse_summary(PASSING) == {"passed": 19}
    assert parse_summary(FAILING) == {"failed": 1, "passed": 18, "skipped": 2}
    assert parse_summary("no summary at all") == {}


def test_a_clean_run_passes_with_its_count() -> None:
    status, reason, details = judge(PASSING, "", 0, 600)
    assert status is Status.PASS and reason == ""
    assert details["executed"] == 19 and details["failed"] == []


def test_a_failure_names_the_test_and_its_message() -> None:
    status, reason, details = judge(FAILING, "", 1, 600)
    assert status is Status.FAIL
    assert "test_notify_poll - AssertionError" in reason
    assert details["executed"] == 19


def test_skips_are_never_a_pass() -> None:
    skipped = "=== 17 passed, 2 skipped in 3.0s ===\n"
    status, reason, _ = judge(skipped, "", 0, 600)
    assert status is Status.FAIL and "skipped" in reason


def test_a_killed_run_names_the_test_it_hung_in() -> None:
    hung = "test/test_api.py::test_listdir PASSED [  5%]\ntest/test_fs.py::test_rename"
    status, reason, _ = judge(hung, "", None, 600)
    assert status is Status.FAIL
    assert reason == "timed out after 600 s (killed) in test/test_fs.py::test_rename"


def test_nothing_run_is_a_failure_with_the_cause() -> None:
    status, reason, _ = judge("", "ERROR: pyfuse3 is not vufuse's: /x/pyfuse3.so\n", 4, 600)
    assert status is Status.FAIL and "pyfuse3 is not vufuse's" in reason


def test_every_external_suite_has_a_row_on_both_apis() -> None:
    assert {suite.name for suite in SUITES} == {"pyfuse3-suite:real", "pyfuse3-suite:ours"}


def test_a_hung_test_syscalls_names_the_subtest_it_hung_after(tmp_path: Path) -> None:
    (tmp_path / "test_syscalls.out").write_text(
        "".join(f"{number} [test {number}] OK\n" for number in range(1, 11))
    )
    (tmp_path / "test_syscalls.rc").write_text("124\n")
    program = Program("p", "d", Access.RW, lambda context: [])
    row = judge_test_syscalls(program, "vufuse", tmp_path)
    assert row.status is Status.FAIL
    assert "10/10 subtests OK, then hung after subtest 10" in row.reason
    assert _cell(row) == "❌ 10/10 + hang"


def test_a_run_killed_from_outside_names_the_signal_and_the_test() -> None:
    started = "=== test session starts ===\ntest/test_fs.py::test_open_read PASSED [ 50%]\n"
    status, reason, _ = judge(started, "", 143, 600)
    assert status is Status.FAIL
    assert reason == "killed by signal 15, no summary, in test/test_fs.py::test_open_read"
