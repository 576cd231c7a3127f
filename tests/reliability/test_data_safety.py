"""Data safety: fsync reaches the daemon before it returns, writes are never dropped on close
(WRITE, then FLUSH, then RELEASE), and the daemon's FLUSH/FSYNC errors reach close/fsync.

What reached the daemon, in which order, is the scripted daemon's request log, into which the
writer appends a MARK line after each syscall returned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliabilityhelp import run_session

pytestmark = pytest.mark.e2e


def test_fsync_flush_release_order_and_errors(tmp_path: Path) -> None:
    run = run_session("""
        mount_hostile "$PWD/m"
        "$PY" "$HERE/writer.py" "$PWD/m" "$PWD/m.log"
        "$VUFUSE" umount "$PWD/m"; echo "umount rc=$?"
        wait_for "read ENODEV" m.log
    """, tmp_path)
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    assert lines[:9] == [
        "fsync ok", "close ok", "read back equal",
        "flushfail close ENOSPC",  # the daemon's FLUSH error is close()'s
        "fsyncfail fsync EDQUOT", "fsyncfail fdatasync EDQUOT", "fsyncfail close ok",
        "after exit EXIT-WITHOUT-CLOSE", "umount rc=0",
    ], run.output  # fmt: skip
    log = (tmp_path / "m.log").read_text().splitlines()
    wfile = [line for line in log if line.endswith(" 6") or line.startswith("MARK")]
    fsync_returned = wfile.index("MARK fsync returned")
    close_returned = wfile.index("MARK close returned")
    writes = [i for i, line in enumerate(wfile[:fsync_returned]) if line == "WRITE 6"]
    assert len(writes) >= 8  # 1,024,000 bytes in WRITEs of at most 128 KiB
    fsync = wfile.index("FSYNC 6")
    assert writes[-1] < fsync < fsync_returned  # every WRITE, then FSYNC, then fsync returns
    flush = wfile.index("FLUSH 6")
    assert fsync_returned < flush < close_returned  # close waits for its FLUSH
    assert "RELEASE 6" in wfile[flush:]  # RELEASE after the FLUSH (it may follow close)
    # A failed FLUSH still closes the fd: its RELEASE comes before the next file is opened.
    assert log.index("FLUSH 7") < log.index("RELEASE 7") < log.index("OPEN 8")
    child = wfile.index("MARK child exited")
    # A process exiting without close: its WRITE, then the FLUSH of exit (filp_close), then
    # RELEASE -- all before its parent saw it exit.
    last_open = max(i for i, line in enumerate(wfile[:child]) if line == "OPEN 6")
    exiting = wfile[last_open:child]
    assert exiting == ["OPEN 6", "WRITE 6", "FLUSH 6", "RELEASE 6"], wfile[close_returned:]
