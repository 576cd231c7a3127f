"""The write path (issue 5): unmodified daemons that write, driven by ordinary programs.

The same workload runs on the mount and on a real directory inside one session; what it
printed and the trees it left (``diff -r``) must be the same.  Shell redirection into a mount
is covered by test_redirection.py; here python3 creates and appends.
"""

from __future__ import annotations

import subprocess

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

WORKLOAD = r"""
work() (
    cd "$1" || exit 1
    python3 - <<'PY'
import os
fd = os.open("f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b"one\n")
os.close(fd)
fd = os.open("f", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"two\n")
print("append at", os.lseek(fd, 0, os.SEEK_CUR))
os.close(fd)
fd = os.open("t", os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o666)
os.pwrite(fd, b"x", 100000)
os.ftruncate(fd, 50)
print("size", os.fstat(fd).st_size)
os.close(fd)
PY
    mv f g && chmod 640 g && mkdir -p d/e/f && cp g d/e/f/copy && ln -s g sym && ln g hard
    tar xf "$2" && cp -a x x2 && mv x2/y x2/z && rm -r d && rmdir x2/empty
    touch -h -d 2001-02-03T04:05:06 g
    stat -c '%A %s %h %n' g hard sym t | sort -k4
    stat -c '%Y' g
    cat g hard
    find . | sort
)
mkdir -p ref src mnt
{start} 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
work "$PWD/ref" "$PWD/a.tar" > ref.out 2>&1; echo "ref rc=$?"
work "$PWD/mnt" "$PWD/a.tar" > mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
diff -r --no-dereference ref mnt && echo "same tree"
cat mnt.out
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""

DAEMONS = {
    "passthrough_ll": '"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt"',
    "memfs.py": '"$PY" "$EXAMPLES/memfs.py" "$PWD/mnt"',
}


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_write_workload(sessions: Sessions, daemon: str) -> None:
    if daemon == "passthrough_ll":
        libfuse_example(daemon)
    source = sessions.root / "tarsrc" / "x"
    (source / "y").mkdir(parents=True)
    (source / "empty").mkdir()
    (source / "y" / "data").write_bytes(b"payload\n" * 5000)
    (source / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "run.sh").chmod(0o755)
    (source / "ln").symlink_to("run.sh")
    subprocess.run(["tar", "cf", str(sessions.root / "a.tar"), "-C", str(source.parent), "x"],
                   check=True)
    run = sessions.run(WORKLOAD.format(start=DAEMONS[daemon]))
    assert run.status == 0, run.output
    for line in ("ref rc=0", "mnt rc=0", "same output", "same tree", "append at 8",
                 "size 50", "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output
