"""libfuse's own hello_ll and passthrough_ll (built from Debian's fuse3 source), unmodified.

Both mount by themselves (open /dev/fuse, mount(2)); libfuse's multi-threaded loop reads the
device natively.  Unmounted by fusermount3 -u, util-linux umount, and a raw umount2(2); the
daemon must exit 0 each time, which needs its blocked reads to fail with ENODEV (a read of 0
is "short read on fuse device", exit 1).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

UMOUNT2 = '"$PY" -c "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); ' \
    'rc = libc.umount2(os.fsencode(sys.argv[1]), 0); ' \
    'print(\\"umount2 rc=%d errno=%d\\" % (rc, ctypes.get_errno()))"'

UNMOUNTERS = {
    "fusermount3": 'fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"',
    "fusermount": 'fusermount -u "$PWD/mnt"; echo "unmount rc=$?"',
    "umount": 'umount "$PWD/mnt"; echo "unmount rc=$?"',
    "umount2": UMOUNT2 + ' "$PWD/mnt"; echo "unmount rc=$?"',
}


@pytest.mark.parametrize("unmounter", sorted(UNMOUNTERS))
def test_hello_ll(sessions: Sessions, unmounter: str) -> None:
    """ls -l, cat, stat, find on hello_ll's one file; unmount; the daemon exits 0."""
    libfuse_example("hello_ll")
    run = sessions.run(f"""\
mkdir mnt
"$LIBFUSE/hello_ll" -f "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
echo "== ls"; ls -l mnt
echo "== cat"; cat mnt/hello
echo "== stat"; stat -c '%n %s %a %F %i' mnt/hello
echo "== find"; find mnt | sort
echo "== end"
{UNMOUNTERS[unmounter]}
wait $daemon; echo "daemon rc=$?"
wait_unmounted "$PWD/mnt" && echo "unmounted"
""")
    output = run.output
    assert run.status == 0, output
    ls = output.split("== ls\n")[1].split("== cat")[0].splitlines()
    assert ls[0] == "total 0" and ls[1].startswith("-r--r--r-- 1 root root 13 ")
    assert ls[1].endswith(" hello")
    assert output.split("== cat\n")[1].split("== stat")[0] == "Hello World!\n"
    assert output.split("== stat\n")[1].split("== find")[0].strip() == (
        "mnt/hello 13 444 regular file 2"
    )
    assert output.split("== find\n")[1].split("== end")[0].split() == ["mnt", "mnt/hello"]
    assert "unmount rc=0" in output
    assert "daemon rc=0" in output
    assert "unmounted" in output.splitlines()


def _source_tree(root: Path) -> Path:
    """A small tree with the shapes cp -a must carry: subdirs, a symlink, modes, an empty
    file, a file larger than one READ."""
    source = root / "source"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "empty").write_bytes(b"")
    (source / "sub" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    (source / "sub" / "deeper" / "x").write_text("x" * 5000)
    (source / "link").symlink_to("a.txt")
    (source / "exec.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "exec.sh").chmod(0o755)
    return source


@pytest.mark.parametrize("unmounter", sorted(UNMOUNTERS))
def test_passthrough_ll_copy(sessions: Sessions, unmounter: str) -> None:
    """cp -a of the whole mount, then diff -r against the source; unmount; exit 0."""
    libfuse_example("passthrough_ll")
    source = _source_tree(sessions.root)
    run = sessions.run(f"""\
mkdir mnt copy
"$LIBFUSE/passthrough_ll" -f -o source={source} "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
echo "== ls"; ls mnt | sort
echo "== stat"; stat -c '%s %a %F' mnt/sub/big.bin mnt/link; stat -L -c '%s' mnt/link
echo "== readlink"; readlink mnt/link
echo "== inodes"; stat -c %i mnt/sub/big.bin {source}/sub/big.bin | uniq | wc -l
echo "== find"; (cd mnt && find . | sort)
cp -a mnt/. copy/ && echo "cp ok"
diff -r {source} copy && echo "diff same"
{UNMOUNTERS[unmounter]}
wait $daemon; echo "daemon rc=$?"
wait_unmounted "$PWD/mnt" && echo "unmounted"
""")
    output = run.output
    assert run.status == 0, output
    assert output.split("== ls\n")[1].split("== stat")[0].split() == [
        "a.txt", "empty", "exec.sh", "link", "sub"]
    assert output.split("== stat\n")[1].split("== readlink")[0].split("\n")[:3] == [
        f"{3 * 1024 * 1024 + 123} 644 regular file", "5 777 symbolic link", "6"]
    assert output.split("== readlink\n")[1].startswith("a.txt\n")
    assert output.split("== inodes\n")[1].startswith("1\n")  # st_ino is attr.ino
    found = output.split("== find\n")[1].split("cp ok")[0].split()
    assert found == [".", "./a.txt", "./empty", "./exec.sh", "./link", "./sub", "./sub/big.bin",
                     "./sub/deeper", "./sub/deeper/x"]
    for expected in ("cp ok", "diff same", "unmount rc=0", "daemon rc=0", "unmounted"):
        assert expected in output.splitlines(), output
    assert os.stat(sessions.root / "copy" / "exec.sh").st_mode & 0o777 == 0o755


def test_daemon_killed(sessions: Sessions) -> None:
    """A daemon that dies leaves its mount: accesses fail ENOTCONN (the kernel's "Transport
    endpoint is not connected"), and it still unmounts."""
    libfuse_example("hello_ll")
    run = sessions.run("""\
mkdir mnt
"$LIBFUSE/hello_ll" -f "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || exit 1
cat mnt/hello
kill -9 $daemon; wait $daemon 2>/dev/null
cat mnt/hello 2>&1 | sed 's/^.*: //'
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
""")
    lines = [line for line in run.output.splitlines() if "Killed" not in line]
    assert run.status == 0, run.output
    assert lines[:3] == ["Hello World!", "Transport endpoint is not connected", "unmount rc=0"]
