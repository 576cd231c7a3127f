"""A caller blocked in a slow FUSE request gets a signal (issue 6, DESIGN §9).

slowfs.c (built here against libfuse3) blocks every READ until INTERRUPT: "slow" then fails
with EINTR, "stubborn" answers its data anyway.  The kernel sends INTERRUPT when the caller
gets a signal it catches (or a fatal one) and returns the daemon's answer, never restarting
the call.  The assertions wait on the daemon's log, never on time: the signal is sent once the
daemon has logged that the READ is waiting.  Run as root on the kernel, the same script prints
the same lines (checked by hand: see docs/decisions.md D21).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from e2ehelp import Sessions

pytestmark = pytest.mark.e2e

SLOWFS = Path(__file__).with_name("slowfs.c")

READER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGUSR1, lambda *a: None)
fd = os.open(sys.argv[1], os.O_RDONLY)
buffer = ctypes.create_string_buffer(100)
n = libc.read(fd, buffer, 100)
err = ctypes.get_errno()
result = ("EINTR" if err == 4 else err) if n < 0 else buffer.raw[:n]
print("read", os.path.basename(sys.argv[1]), n, result, flush=True)
"""

SCRIPT = r"""
export SLOWFS_LOG="$PWD/slow.log"
mkdir -p mnt
./slowfs -f "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
waitlog() {  # until line $1 is in the log $2 times
    until [ "$(grep -cx "$1" slow.log 2>/dev/null)" = "$2" ]; do sleep 0.02; done
}
for name in slow stubborn; do
    python3 reader.py "mnt/$name" & reader=$!
    waitlog "read-started $name" 1
    kill -USR1 $reader; wait $reader; echo "reader rc=$?"
done
python3 reader.py mnt/slow & reader=$!
waitlog "read-started slow" 2
kill -KILL $reader; wait $reader 2>/dev/null; echo "killed reader rc=$?"
waitlog "interrupted slow" 2
cat slow.log
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""


def test_signal_interrupts_a_slow_request(sessions: Sessions) -> None:
    compiler, pkg_config = shutil.which("gcc"), shutil.which("pkg-config")
    flags = subprocess.run([pkg_config or "pkg-config", "--cflags", "--libs", "fuse3"],
                           capture_output=True, text=True) if pkg_config else None
    if compiler is None or flags is None or flags.returncode != 0:
        pytest.skip("gcc and libfuse3-dev are needed (tools/fetch-libfuse-examples.sh)")
    subprocess.run([compiler, "-Wall", "-o", str(sessions.root / "slowfs"), str(SLOWFS),
                    *flags.stdout.split()], check=True)
    (sessions.root / "reader.py").write_text(READER)
    run = sessions.run(SCRIPT, timeout=120)
    assert run.status == 0, run.output
    assert run.lines() == [
        "read slow -1 EINTR", "reader rc=0",
        "read stubborn 5 b'late\\n'", "reader rc=0",
        "killed reader rc=137",
        "read-started slow", "interrupted slow",
        "read-started stubborn", "interrupted stubborn",
        "read-started slow", "interrupted slow",
        "unmount rc=0", "daemon rc=0",
    ], run.output
