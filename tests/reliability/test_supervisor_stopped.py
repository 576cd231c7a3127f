"""The supervisor stopped and continued many times (what Ctrl-Z, a debugger or profiler
attaching, or the cgroup freezer do to it) while programs work on a mount: every syscall still
gets its right answer.  Before D25 an open interrupted this way returned fd 0 (the kernel's
ADDFD+SEND leaves an empty reply behind when interrupted) and an interrupted answer could be
lost, leaving its caller waiting for ever.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from reliabilityhelp import finish, start_session

pytestmark = pytest.mark.e2e

FILES = 1500

WORKLOAD = """\
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
open(sys.argv[3], "w").close()  # outside the mount: the test watches it
for i in range(count):
    path = f"{root}/f{i}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    assert fd > 2, f"open gave fd {fd}"
    assert os.write(fd, path.encode()) == len(path)
    os.close(fd)
    assert os.stat(path).st_size == len(path)
    with open(path) as file:
        assert file.read() == path
print("workload ok", count)
"""

SESSION = f"""
    mkdir m; "$VUFUSE" mount "$PY" "$MEMFS" "$PWD/m"
    mkdir m/d
    "$PY" workload.py "$PWD/m/d" {FILES} "$PWD/started"
    ls m/d | wc -l
"""


def test_stopping_the_supervisor_loses_no_answer(tmp_path: Path) -> None:
    (tmp_path / "workload.py").write_text(WORKLOAD)
    process = start_session(SESSION, tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert process.poll() is None and time.monotonic() < deadline, finish(process).output
        time.sleep(0.02)
    stops = 0
    while process.poll() is None and stops < 20_000:
        try:
            os.kill(process.pid, signal.SIGSTOP)
            time.sleep(0.0005)
        finally:
            os.kill(process.pid, signal.SIGCONT)  # never leave it stopped
        stops += 1
        time.sleep(0.001)
    run = finish(process)
    assert run.status == 0, run.output
    assert f"workload ok {FILES}" in run.output and f"\n{FILES}\n" in run.output, run.output
    assert stops > 200, f"only {stops} stops: the workload ended before the test could act"
