"""Malformed replies from a real daemon process in a session: EIO to the caller, as the kernel
gives, while the same mount, a second mount and the session keep working.

The expected errnos were taken from the same scripted daemon on the real kernel (as root):
equal for every case but the header lies, where the kernel refuses the daemon's write
(EINVAL) and leaves the caller waiting for ever; we answer EIO (docs/decisions.md D14).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliabilityhelp import EXPECTED_REPLIES as EXPECTED
from reliabilityhelp import run_session

pytestmark = pytest.mark.e2e



def test_malformed_replies_are_eio_and_everything_else_carries_on(tmp_path: Path) -> None:
    probes = " ".join(EXPECTED)
    run = run_session(f"""
        mount_hostile "$PWD/bad"
        mkdir good; "$VUFUSE" mount "$PY" -m vufuse.pyfuse3.run "$HELLO" "$PWD/good"
        "$PY" "$HERE/probe.py" "$PWD/bad" {probes}
        "$PY" "$HERE/probe.py" "$PWD/bad" stat:flip read:good
        "$PY" "$HERE/probe.py" "$PWD/good" read:hello
        "$VUFUSE" mounts | grep -c live
        "$VUFUSE" umount "$PWD/bad"; echo "umount bad rc=$?"
        "$VUFUSE" umount "$PWD/good"; echo "umount good rc=$?"
        wait_for "read ENODEV" bad.log && echo "daemon told"
    """, tmp_path)
    assert run.status == 0, run.output
    lines = run.output.splitlines()
    for probe, outcome in EXPECTED.items():
        assert f"{probe} {outcome}" in lines, (probe, run.output)
    # Again, after all that: the bad inode stays bad, the good file still reads.
    assert lines.count("stat:flip EIO") == 2 and lines.count("read:good ok good data") == 2
    assert "read:hello ok Hello from vufuse's pure-Python pyfuse3!" in lines
    assert "2" in lines  # both mounts live
    assert "umount bad rc=0" in lines and "umount good rc=0" in lines and "daemon told" in lines
