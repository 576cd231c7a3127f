"""The C core's answer cache (docs/decisions.md D20) seen from a session: repeated stats of an
unmodified daemon's files are answered without Python, and every change made through the mount,
every expiry and every identity change shows at once.
"""

from __future__ import annotations

import re

import pytest
from e2ehelp import Run, Sessions, libfuse_example

pytestmark = pytest.mark.e2e

MOUNT = """\
mkdir -p src mnt
printf hello > src/f; printf x > src/g; printf y > src/h
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" -o timeout={timeout} "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
s() {{ stat -c '%n %A %s' "$@" 2>&1; }}
"""
UNMOUNT = """\
fusermount3 -u "$PWD/mnt"; wait $daemon; echo "daemon rc=$?"
"""


def _answered(run: Run) -> int:
    found = re.search(r"answered=(\d+)", run.output)
    assert found, run.output
    return int(found.group(1))


def test_changes_through_the_mount_show_at_once(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    script = MOUNT.format(timeout=3600) + """\
s mnt/f; s mnt/f; s "$PWD/mnt/f"; s "$PWD/mnt/f"
chmod 600 mnt/f; s mnt/f; s "$PWD/mnt/f"
mv mnt/g mnt/g2; s mnt/g "$PWD/mnt/g2"
s mnt/h; rm mnt/h; s mnt/h
python3 -c 'import os; fd = os.open("mnt/f", os.O_WRONLY | os.O_APPEND); os.write(fd, b"++")'
s mnt/f "$PWD/mnt/f"
(cd mnt && s f ./f)
""" + UNMOUNT + """\
s mnt/f
"""
    run = sessions.run(script, options=("--stats",))
    output = run.output.partition("syscalls trapped")[0]  # --stats comes last
    lines = [line for line in output.splitlines() if line.startswith(("mnt", "stat:", "f ",
                                                                         "./f", "daemon", "/"))]
    root = str(sessions.root)
    assert lines == [
        "mnt/f -rw-r--r-- 5", "mnt/f -rw-r--r-- 5",
        f"{root}/mnt/f -rw-r--r-- 5", f"{root}/mnt/f -rw-r--r-- 5",
        "mnt/f -rw------- 5", f"{root}/mnt/f -rw------- 5",
        "stat: cannot statx 'mnt/g': No such file or directory", f"{root}/mnt/g2 -rw-r--r-- 1",
        "mnt/h -rw-r--r-- 1", "stat: cannot statx 'mnt/h': No such file or directory",
        "mnt/f -rw------- 7", f"{root}/mnt/f -rw------- 7",
        "f -rw------- 7", "./f -rw------- 7",
        "daemon rc=0",
        "stat: cannot statx 'mnt/f': No such file or directory",
    ], run.output
    # The repeated stats were the C core's: at least the 2nd-4th stat of f, and one after chmod.
    assert _answered(run) >= 4, run.output


def test_expired_answers_are_asked_again(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    # A change behind the daemon's back (on its source) shows once the 1 s timeout has run
    # out, as on the kernel; the sleep only has to be longer than the timeout.
    script = MOUNT.format(timeout=1) + """\
s mnt/f; s mnt/f
chmod 640 src/f
sleep 2.5
s mnt/f
""" + UNMOUNT
    run = sessions.run(script)
    lines = [line for line in run.lines() if line.startswith(("mnt", "daemon"))]
    assert lines == ["mnt/f -rw-r--r-- 5", "mnt/f -rw-r--r-- 5", "mnt/f -rw-r----- 5",
                     "daemon rc=0"], run.output


def test_identity_changes_turn_the_cache_off(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    # setgroups (refused to an ordinary user, allowed to root) may change who the tracees
    # are: answers shared by all of them are no longer given.
    script = MOUNT.format(timeout=3600) + """\
python3 -c '
import os
try:
    os.setgroups([4242])
except OSError as error:
    print("setgroups errno", error.errno)
'
s mnt/f; s mnt/f; s mnt/f
""" + UNMOUNT
    run = sessions.run(script, options=("--stats",))
    assert run.output.count("mnt/f -rw-r--r-- 5") == 3, run.output
    assert _answered(run) == 0, run.output
