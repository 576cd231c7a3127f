"""The shared workloads: real commands a user runs on a mount, and how to compare their output.

Each workload is a POSIX shell body run as ``sh -c BODY sh ROOT SCRATCH ACCESS`` twice: once
with ROOT inside the mount and once with ROOT a plain directory holding the same files (the
reference). Bodies only use relative paths below ROOT, and whatever absolute path still shows up
(SCRATCH in ``diff`` output, module paths) is replaced by a placeholder before comparing.
Write workloads put everything they create in their own ``w-NAME`` directory, and run after the
read-only ones, so reading workloads see the same tree on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Access, Program, Reference
from .normalise import normalise_ls, normalise_sorted


@dataclass(frozen=True)
class Workload:
    """A named shell body, the normaliser for its stdout, and the conditions it needs."""

    name: str
    description: str
    body: str
    normalise: Callable[[str], str] = lambda text: text
    needs_write: bool = False
    needs_tree: bool = False
    timeout: int = 120


# Environment every script exports, so outputs depend on the files and nothing else.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "compat",
    "GIT_AUTHOR_EMAIL": "compat@example.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "compat",
    "GIT_COMMITTER_EMAIL": "compat@example.invalid",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    # Mounts are owned by whoever the daemon says; git's ownership check is not under test.
    # Variables in GIT_CONFIG_* count as command-line scope, where safe.directory is honoured.
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
}

LS = Workload(
    "ls",
    "ls -lR (times, link counts, block totals, directory sizes and owners normalised away)",
    'cd "$1" && ls -lR --time-style=+T .',
    normalise_ls,
)

FIND = Workload(
    "find",
    "find with type, permission bits, link counts of files and symlink targets (sorted)",
    "cd \"$1\" && find . \\( -type l -printf 'l %m %p -> %l\\n' \\)"
    " -o \\( -type f -printf 'f %m %n %p\\n' \\) -o -printf '%y %m %p\\n'",
    normalise_sorted,
)

CAT = Workload(
    "cat",
    "read every regular file (sha256sum of each)",
    'cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum',
)

PYTHON = Workload(
    "python",
    "import a package and a copy of the stdlib json package from the mount"
    " (rw: also writes and reuses __pycache__)",
    """cd "$1" || exit 1
probe='import sys; sys.path.insert(0, "."); import compatpkg.mod as m, real.json as j
print(j.dumps(m.DATA, sort_keys=True)); print(m.__file__); print(j.decoder.__file__)'
python3 -B -c "$probe" || exit 1
if [ "$3" = rw ]; then
    python3 -c "$probe" >/dev/null && python3 -c "$probe" || exit 1
    ls compatpkg/__pycache__ | sed 's/cpython-[0-9]*/cpython/'
fi""",
    needs_tree=True,
)

CP = Workload(
    "cp",
    "cp -a out of the mount, diff -r --no-dereference against it (rw: copy back in and diff again)",
    """cd "$1" || exit 1
cp -a . "$2/copy" && diff -r --no-dereference . "$2/copy" && echo copied-out || exit 1
if [ "$3" = rw ]; then
    cp -a "$2/copy" w-cp && diff -r --no-dereference "$2/copy" w-cp && echo copied-in || exit 1
    rm -rf w-cp/compatpkg && ls w-cp | head -3 && echo removed-part
fi""",
)

TAR = Workload(
    "tar",
    "tar c from the mount, t, x elsewhere and diff -r --no-dereference (rw: also x into the mount)",
    """cd "$1" || exit 1
tar -cf "$2/t.tar" --exclude=./w-cp . && tar -tf "$2/t.tar" | sort || exit 1
mkdir "$2/x" && tar -xf "$2/t.tar" -C "$2/x" || exit 1
diff -r --no-dereference --exclude=w-cp . "$2/x" && echo round-trip || exit 1
if [ "$3" = rw ]; then
    mkdir w-tar && tar -xf "$2/t.tar" -C w-tar || exit 1
    diff -r --no-dereference "$2/x" w-tar && echo extracted-in || exit 1
fi""",
)

GIT = Workload(
    "git",
    "git init/add/commit/commit -a/gc/log/fsck in a new repository on the mount",
    """cd "$1" || exit 1
git init -q -b main w-git && cd w-git || exit 1
cp ../README.txt . && mkdir pkg && cp ../compatpkg/*.py pkg/ || exit 1
git add -A && git commit -q -m first || exit 1
echo more >> README.txt && git commit -q -a -m second || exit 1
git gc -q && git log --format='%H %s' && git status --porcelain && git fsck --no-progress \\
  && git cat-file -p HEAD:README.txt | tail -1""",
    needs_write=True,
    needs_tree=True,
)

SQLITE = Workload(
    "sqlite",
    "sqlite3: create, insert 2000 rows, update, integrity_check; rollback journal and WAL",
    """cd "$1" && mkdir w-sqlite && cd w-sqlite || exit 1
for mode in delete wal; do
    sqlite3 "$mode.db" "pragma journal_mode=$mode;
      create table t(k integer primary key, v text);
      with recursive c(x) as (select 1 union all select x+1 from c where x<2000)
        insert into t select x, printf('row %d', x) from c;
      update t set v = v || '!' where k % 7 = 0;
      select count(*), sum(k), max(v), sum(v like '%!') from t;
      pragma integrity_check;" || exit 1
done
ls""",
    needs_write=True,
)

ALL = (LS, FIND, CAT, PYTHON, CP, TAR, GIT, SQLITE)
QUICK = (LS, FIND, CAT)
BY_NAME = {workload.name: workload for workload in ALL}

# The external suite is not compared with a reference: it checks itself.
TEST_SYSCALLS = "test_syscalls"


def applicable(program: Program, workload: Workload) -> bool:
    """Whether *workload* makes sense for *program* (write workloads need a writable mount;
    the python/git workloads need the fixture tree, which declared/snapshot trees don't have)."""
    if program.only_workloads and workload.name not in program.only_workloads:
        return False
    if workload.needs_write and program.access is not Access.RW:
        return False
    if workload.needs_tree and program.reference is not Reference.TREE:
        return False
    return True
