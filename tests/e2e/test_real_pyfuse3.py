"""The real pyfuse3 3.5.0 (PyPI, Cython over Debian's libfuse3) and its own examples,
unmodified, inside a session: hello.py and passthroughfs.py from its sdist.

tests/e2e/setup_real_pyfuse3.sh (run as root by the test set-up) makes the venv; without it
these tests skip.
"""

from __future__ import annotations

import pytest
from e2ehelp import Sessions, real_pyfuse3
from trees import SNAPSHOT, check_compared, make_tree

pytestmark = pytest.mark.e2e

def test_hello(sessions: Sessions) -> None:
    """ls -l, cat, stat, find on hello.py's one file; fusermount3 -u; exit 0."""
    python, examples = real_pyfuse3()
    run = sessions.run(f"""\
mkdir mnt && touch mnt/original
{python} {examples}/hello.py "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
echo "== ls"; ls -l mnt
echo "== cat"; cat mnt/message
echo "== stat"; stat -c '%n %s %a %F' mnt/message
echo "== find"; find mnt | sort
echo "== end"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
wait_unmounted "$PWD/mnt" && ls mnt
cat daemon.err
""")
    output = run.output
    assert run.status == 0, output
    ls = output.split("== ls\n")[1].split("== cat")[0].splitlines()
    assert ls[0] == "total 0" and ls[1].startswith("-rw-r--r-- 1 "), output
    assert ls[1].endswith(" 12 Aug  1  2015 message"), output
    assert output.split("== cat\n")[1].split("== stat")[0] == "hello world\n", output
    assert output.split("== stat\n")[1].split("== find")[0].strip() == (
        "mnt/message 12 644 regular file"
    ), output
    assert output.split("== find\n")[1].split("== end")[0].split() == ["mnt", "mnt/message"]
    # As root, libfuse's own unmount after the loop then says "fuse: failed to unmount":
    # the kernel's device polls POLLERR once unmounted, which tells it to skip that; ours
    # can't (a socket), so its stderr is not compared.
    assert output.split("== end\n")[1].splitlines()[:3] == [
        "unmount rc=0", "daemon rc=0", "original"], output


def test_passthroughfs(sessions: Sessions) -> None:
    """passthroughfs.py on a real tree: ls -lR, md5sum, tar listings equal the tree's; cd in
    and read by relative paths; exit 0."""
    python, examples = real_pyfuse3()
    tree = make_tree(sessions.root)
    run = sessions.run(SNAPSHOT + f"""\
mkdir -p mnt && touch mnt/original
{python} {examples}/passthroughfs.py {tree} "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
compare {tree} mnt
(cd mnt/sub && cat deeper/deepest/leaf ../README.txt | wc -l)
finish
""")
    check_compared(run.output, run.status)
    assert "3" in run.output.splitlines(), run.output


def test_tmpfs_sqlite_wal(sessions: Sessions) -> None:
    """sqlite in WAL mode on pyfuse3's tmpfs.py example: its -shm file grows by one-byte
    writes at each page end, which tmpfs.py stores short (it doesn't fill the hole); the
    kernel still maps the pages up to its own i_size and reads zeros past what the daemon
    returned — so must we, or sqlite dies of SIGBUS."""
    python, examples = real_pyfuse3()
    run = sessions.run(f"""\
mkdir mnt
{python} {examples}/tmpfs.py "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
(cd mnt && sqlite3 wal.db "pragma journal_mode=wal;
  create table t(k integer primary key, v text);
  with recursive c(x) as (select 1 union all select x+1 from c where x<2000)
    insert into t select x, printf('row %d', x) from c;
  select count(*), sum(k) from t;
  pragma integrity_check;"); echo "sqlite rc=$?"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
""")
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    assert lines[:5] == ["wal", "2000|2001000", "ok", "sqlite rc=0", "unmount rc=0"], run.output
