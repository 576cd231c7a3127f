"""Hostile or buggy programs on a mount never crash or hang the hypervisor, and get the
kernel's answers.

`calls` was run unchanged on the real kernel (memfs mounted by kernel FUSE, as root): the
outcomes below are the kernel's, line for line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliabilityhelp import KERNEL_CALLS, run_session

pytestmark = pytest.mark.e2e



def _on_memfs(mode: str, tmp_path: Path) -> list[str]:
    run = run_session(f"""
        mkdir m; "$VUFUSE" mount "$PY" "$MEMFS" "$PWD/m"
        "$PY" "$HERE/hostile_tracee.py" "$PWD/m" {mode}; echo "status $?"
        "$VUFUSE" umount "$PWD/m"; echo "umount rc=$?"
    """, tmp_path)
    assert run.status == 0, run.output
    lines = run.output.splitlines()
    assert lines[-2:] == ["status 0", "umount rc=0"], run.output
    return lines[:-2]


def test_bad_pointers_huge_lengths_bad_flags_long_paths(tmp_path: Path) -> None:
    lines = _on_memfs("calls", tmp_path)
    # errno.errorcode names EOPNOTSUPP "ENOTSUP" (the same value)
    assert [line.replace("ENOTSUP", "EOPNOTSUPP") for line in lines] == KERNEL_CALLS.splitlines()


def test_ten_thousand_open_files(tmp_path: Path) -> None:
    assert _on_memfs("fds", tmp_path) == [
        "opened 10000", "read-sampled 100", "after-close 0123456789"
    ]


def test_threads_racing_close_against_read(tmp_path: Path) -> None:
    """pread on a number another thread closes and reopens: the data, or EBADF; never the
    socket behind a virtual fd (ESPIPE) or a hang."""
    counts = dict(line.split(" ", 1) for line in _on_memfs("race", tmp_path))
    assert counts["wrong"] == "0", counts
    assert int(counts["reads"]) > 0 and int(counts["closes"]) > 0
    assert "oddity" not in counts


def test_fork_bomb_bounded_by_rlimit_nproc(tmp_path: Path) -> None:
    assert _on_memfs("forkbomb", tmp_path) == [
        "forked many", "refused EAGAIN", "after-bomb 0123456789"
    ]
