"""Issue 6's must-show workloads on a passthrough mount, as an ordinary user, no kernel FUSE:
a python venv with a local wheel installed by pip and its console script run from the mount;
`git clone` onto the mount, commit, log, gc (packfiles are mmapped) and fsck; sqlite3 in WAL
mode (its -shm is MAP_SHARED) with two processes writing at once.

passthrough_ll keeps an O_PATH fd per inode it knows, as on the kernel, so the scripts raise
the soft RLIMIT_NOFILE to the hard limit first (a venv is ~1500 files).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

START = r"""
ulimit -n "$(ulimit -Hn)"
mkdir -p src mnt
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
"""
STOP = r"""
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""
WORKLOAD_TIMEOUT = 600.0


def _wheel(path: Path) -> None:
    """A minimal pure-Python wheel with one console script."""
    files = {
        "hellopkg/__init__.py": "def main():\n    print('hello from the console script')\n",
        "hellopkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: hellopkg\nVersion: 1.0\n",
        "hellopkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: vufuse-tests\n"
                                        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        "hellopkg-1.0.dist-info/entry_points.txt": "[console_scripts]\nhello-cli = hellopkg:main\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            data = text.encode()
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append("hellopkg-1.0.dist-info/RECORD,,")
        archive.writestr("hellopkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")


VENV = START + r"""
python3 -m venv mnt/venv; echo "venv rc=$?"
mnt/venv/bin/pip install --no-index -q "$PWD/hellopkg-1.0-py3-none-any.whl"; echo "pip rc=$?"
mnt/venv/bin/hello-cli; echo "cli rc=$?"
mnt/venv/bin/python -c 'import sys, hellopkg
print("prefix", sys.prefix); print("from", hellopkg.__file__)'
cmp mnt/venv/bin/hello-cli src/venv/bin/hello-cli && echo "the daemon has it"
""" + STOP


def test_venv_pip_and_console_script(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    _wheel(sessions.root / "hellopkg-1.0-py3-none-any.whl")
    run = sessions.run(VENV, timeout=WORKLOAD_TIMEOUT)
    mnt = sessions.root / "mnt"
    assert run.status == 0, run.output
    for line in ("venv rc=0", "pip rc=0", "hello from the console script", "cli rc=0",
                 f"prefix {mnt}/venv", "the daemon has it", "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output
    assert any(line.startswith(f"from {mnt}/venv/lib/") for line in run.lines()), run.output


GIT = START + r"""
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git clone -q origin mnt/clone; echo "clone rc=$?"
cd mnt/clone || exit 1
echo new > new && git add new && git commit -qm new; echo "commit rc=$?"
echo "log $(git log --oneline | wc -l)"
git gc -q; echo "gc rc=$?"
git fsck --full 2>&1; echo "fsck rc=$?"
echo "after gc log $(git log --oneline | wc -l)"
git count-objects -v | grep -E '^(count|in-pack):'
git cat-file -p HEAD:f1
cd ../..
""" + STOP


def test_git_clone_commit_gc_fsck(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    origin = sessions.root / "origin"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(sessions.root)}
    subprocess.run(["git", "init", "-q", str(origin)], check=True, env=env)
    for index in range(1, 21):
        (origin / f"f{index}").write_text(f"content {index}\n" * index)
        subprocess.run(["git", "-C", str(origin), "add", f"f{index}"], check=True, env=env)
        subprocess.run(["git", "-C", str(origin), "commit", "-qm", f"c{index}"], check=True,
                       env=env)
    run = sessions.run(GIT, timeout=WORKLOAD_TIMEOUT)
    assert run.status == 0, run.output
    for line in ("clone rc=0", "commit rc=0", "log 21", "gc rc=0", "fsck rc=0",
                 "after gc log 21", "count: 0", "content 1", "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output


SQLITE = START + r"""
DB="$PWD/mnt/db"
sqlite3 "$DB" 'PRAGMA journal_mode=WAL; CREATE TABLE t(writer, i);'
writer() {
    python3 - "$DB" "$1" <<'PY'
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=120)
for i in range(150):
    with connection:
        connection.execute("insert into t values (?, ?)", (sys.argv[2], i))
print("writer", sys.argv[2], "done")
PY
}
writer a & first=$!
writer b & second=$!
wait $first $second
sqlite3 "$DB" 'PRAGMA integrity_check; PRAGMA journal_mode;
    SELECT writer, count(*), sum(i) FROM t GROUP BY writer;'
""" + STOP


def test_sqlite_wal_two_writers(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    run = sessions.run(SQLITE, timeout=WORKLOAD_TIMEOUT)
    assert run.status == 0, run.output
    for line in ("wal", "writer a done", "writer b done", "ok", "a|150|11175", "b|150|11175",
                 "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output
