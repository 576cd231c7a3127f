"""ACTION_TRAP_LOWFD (decisions D29): fd calls on a low-fd stand-in reach Python.

The filter notifies every such call; the C core queues one only while the stand-in inode set
is non-empty and the fd argument below fd_base is a regular file with an inode in it.  Every
other call (no stand-ins, another file, a pipe) runs natively without Python.
"""

from __future__ import annotations

import os
import textwrap

from hypervisor import _tracer

from .conftest import TEST_SPEC, continue_all, run_script, tracer_fixture

NR_FSYNC, NR_FCHMOD, NR_UTIMENSAT = 74, 91, 280
SPEC = [
    *TEST_SPEC,
    (NR_FSYNC, _tracer.ACTION_TRAP_LOWFD, 0b1, -1, -1, -1, -1),
    (NR_FCHMOD, _tracer.ACTION_TRAP_LOWFD, 0b1, -1, -1, -1, -1),
    (NR_UTIMENSAT, _tracer.ACTION_TRAP_LOWFD, 0b1, 1, 0, -1, -1),
]

SCRIPT = """
import os
stand_in = os.open(STAND_IN, os.O_RDWR)
other = os.open(OTHER, os.O_RDWR)
read_end, write_end = os.pipe()
report("fds", stand_in, other)
for fd in (stand_in, other):
    os.fchmod(fd, 0o600)
    os.fsync(fd)
    os.utime(fd, None)
os.fchmod(read_end, 0o600)
os.utime(STAND_IN, None)
report("modes", oct(os.stat(STAND_IN).st_mode & 0o777), oct(os.stat(OTHER).st_mode & 0o777))
"""


tracer = tracer_fixture(SPEC)


def _files(tmp_path):
    stand_in, other = tmp_path / "stand-in", tmp_path / "other"
    stand_in.write_text("a")
    other.write_text("b")
    script = f"STAND_IN = {str(stand_in)!r}\nOTHER = {str(other)!r}\n"
    return stand_in, script + textwrap.dedent(SCRIPT)


def test_only_calls_on_a_registered_inode_are_queued(tracer, tmp_path):
    stand_in, script = _files(tmp_path)
    tracer.add_stand_in_inode(os.stat(stand_in).st_ino)
    queued = []

    def handler(tracer, notification):
        if notification.nr in (NR_FSYNC, NR_FCHMOD, NR_UTIMENSAT):
            assert notification.reason == _tracer.REASON_FD
            queued.append((notification.nr, notification.fd))
        continue_all(tracer, notification)

    result = run_script(tracer, script, handler, cwd=str(tmp_path))
    assert result.exit_code == 0, result.lines
    fd = int(result.lines[0].split()[1])
    assert fd < 512
    assert result.lines[1] == "modes 0o600 0o600"  # continued: the kernel did them all
    # The path form of utimensat and the other file's calls never reach Python.
    assert queued == [(NR_FCHMOD, fd), (NR_FSYNC, fd), (NR_UTIMENSAT, fd)]


def test_no_stand_in_means_nothing_queued(tracer, tmp_path):
    stand_in, script = _files(tmp_path)
    tracer.add_stand_in_inode(os.stat(stand_in).st_ino)
    tracer.remove_stand_in_inode(os.stat(stand_in).st_ino)
    result = run_script(tracer, script, cwd=str(tmp_path))
    assert result.exit_code == 0, result.lines
    assert result.stats["queued"] == 0
    assert result.stats["notifications"] >= 8  # notified, answered CONTINUE by the C core
