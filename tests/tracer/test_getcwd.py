"""getcwd (ACTION_TRAP_CWD): queued only when the caller's cwd lies under a watched prefix."""

from __future__ import annotations

import os
import textwrap

import pytest

from hypervisor import _tracer

from .conftest import TEST_SPEC, continue_all, run_script, tracer_fixture

NR_GETCWD = 79
SPEC = [*TEST_SPEC, (NR_GETCWD, _tracer.ACTION_TRAP_CWD, 0, -1, -1, -1, -1)]

SCRIPT = """
import os
for step, directory in enumerate(DIRECTORIES):
    os.chdir(directory)
    if directory.endswith("gone"):
        os.rmdir(directory)
    try:
        report(step, os.getcwd())
    except OSError as error:
        report(step, error.errno)
"""


tracer = tracer_fixture(SPEC)


@pytest.fixture
def tree(tmp_path):
    """tmp/{mnt/ (empty mountpoint), stand-ins/{0,gone}/ (a stand-in root), other/}"""
    for name in ("mnt", "stand-ins/0", "stand-ins/gone", "other"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "stand-ins")
    return tmp_path


def run_getcwds(tracer, tree, directories):
    queued = []

    def handler(tracer, notification):
        if notification.nr == NR_GETCWD:
            assert notification.reason == _tracer.REASON_CWD
            queued.append(os.readlink(f"/proc/{notification.pid}/cwd"))
        continue_all(tracer, notification)

    script = f"DIRECTORIES = {[str(tree / d) for d in directories]!r}\n" + SCRIPT
    result = run_script(tracer, textwrap.dedent(script), handler, cwd=str(tree))
    assert result.exit_code == 0, result.lines
    return result, queued


def test_only_cwds_under_a_prefix_are_queued(tracer, tree):
    tracer.set_prefixes([str(tree / "mnt"), str(tree / "link")])  # a symlinked prefix too
    result, queued = run_getcwds(
        tracer, tree, [".", "other", "stand-ins/0", "mnt", "stand-ins", "stand-ins/gone"]
    )
    assert queued == [
        str(tree / "stand-ins/0"),
        str(tree / "mnt"),
        str(tree / "stand-ins"),
        str(tree / "stand-ins/gone") + " (deleted)",
    ]
    assert result.lines[:2] == [f"0 {tree}", f"1 {tree / 'other'}"]
    assert result.stats["queued_cwd"] == 4
    assert result.stats["queued"] == result.stats["queued_cwd"]


def test_no_prefix_means_no_getcwd_in_python(tracer, tree):
    result, queued = run_getcwds(tracer, tree, ["stand-ins/0", "mnt"])
    assert queued == []
    assert result.stats["queued_cwd"] == 0
    assert result.lines == [f"0 {tree / 'stand-ins/0'}", f"1 {tree / 'mnt'}"]


def test_prefix_that_is_a_prefix_of_the_name_only(tracer, tree):
    """/x/mnt watched does not make /x/mnt2 watched."""
    (tree / "mnt2").mkdir()
    tracer.set_prefixes([str(tree / "mnt")])
    _, queued = run_getcwds(tracer, tree, ["mnt2"])
    assert queued == []


def test_watching_root_queues_every_getcwd(tracer, tree):
    tracer.set_prefixes(["/"])
    _, queued = run_getcwds(tracer, tree, ["other"])
    assert queued[-1] == str(tree / "other")  # and the interpreter's own, at start-up
