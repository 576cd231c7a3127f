"""Our pyfuse3 API's examples/fs/hello.py served inside a session, both mount roads."""

from __future__ import annotations

import os

import pytest
from e2ehelp import Sessions

pytestmark = pytest.mark.e2e

HELLO = "Hello from vufuse's pure-Python pyfuse3!"

WORKLOAD = """\
mkdir mnt
{launcher} "$EXAMPLES/hello.py" "$PWD/mnt" &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
echo "== ls"; ls -l mnt
echo "== cat"; cat mnt/hello
echo "== stat"; stat -c '%n %s %a %F %u' mnt/hello
echo "== find"; find mnt | sort
echo "== statfs"; stat -f -c %t mnt
echo "== end"
fusermount3 -u "$PWD/mnt"; echo "fusermount rc=$?"
wait $daemon; echo "daemon rc=$?"
wait_unmounted "$PWD/mnt" && echo "unmounted"
"""


def _check(output: str) -> None:
    assert "== ls" in output, output
    ls = output.split("== ls\n")[1].split("== cat")[0].splitlines()
    assert ls[0] == "total 0"
    assert ls[1].startswith("-r--r--r-- 1 ") and ls[1].endswith(" 41 Nov 14  2023 hello")
    assert output.split("== cat\n")[1].split("== stat")[0].strip() == HELLO
    assert output.split("== stat\n")[1].split("== find")[0].strip() == (
        f"mnt/hello 41 444 regular file {os.getuid()}"
    )
    assert output.split("== find\n")[1].split("== statfs")[0].split() == ["mnt", "mnt/hello"]
    assert output.split("== statfs\n")[1].split("== end")[0].strip() == "65735546"
    assert "fusermount rc=0" in output
    assert "daemon rc=0" in output
    assert "unmounted" in output.splitlines()


def test_hello_direct_mount(sessions: Sessions) -> None:
    """pyfuse3 opens /dev/fuse and calls mount(2) itself (libfuse's first road)."""
    run = sessions.run(WORKLOAD.format(launcher='"$PY"'))
    assert run.status == 0, run.output
    _check(run.output)


def test_hello_through_fusermount3(sessions: Sessions) -> None:
    """pyfuse3 runs fusermount3 (setuid ignored: it runs as the user), which opens
    /dev/fuse, mounts "." after chdir and passes the fd back over SCM_RIGHTS."""
    launcher = sessions.via_fusermount()
    run = sessions.run(WORKLOAD.format(launcher=f'"$PY" {launcher}'))
    assert run.status == 0, run.output
    _check(run.output)


@pytest.mark.skipif(os.getuid() == 0, reason="fusermount3 allows allow_other to root")
def test_fusermount3_refuses_allow_other(sessions: Sessions) -> None:
    """fusermount3 runs as the user (no setuid under no_new_privs) and applies its own
    policy: allow_other needs user_allow_other in /etc/fuse.conf."""
    with open("/etc/fuse.conf") as conf:
        if any(line.strip() == "user_allow_other" for line in conf):
            pytest.skip("user_allow_other is set in /etc/fuse.conf")
    launcher = sessions.via_fusermount()
    run = sessions.run(f"""\
mkdir mnt
timeout 20 "$PY" {launcher} "$EXAMPLES/hello.py" "$PWD/mnt" -o allow_other 2>&1 | grep fusermount3:
""")
    assert "option allow_other only allowed if 'user_allow_other' is set" in run.output
    assert run.status == 0, run.output
