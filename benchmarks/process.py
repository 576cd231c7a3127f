"""Running a measured command so that nothing it started outlives it.

proot's tracees, or a vufuse session that hangs, must not keep running into the next
measurement (on 2 vCPUs one busy leftover halves every number after it), so each command gets a
process group of its own and a timeout kills that whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def run_in_own_group(
    argv: list[str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a process group of its own; on timeout kill that group, then raise.

    Killing only the direct child (what ``subprocess.run`` does) would leave proot's tracees
    or a stuck vufuse session running into the next measurement.
    """
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            # wait(), not communicate(): a process that left the group may still hold the pipes.
            process.wait()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
