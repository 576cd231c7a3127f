"""A real tree to serve and the shell helpers that compare a mount with it (issue 4's
read path: tests/e2e/test_read_path.py, test_real_pyfuse3.py)."""

from __future__ import annotations

import os
from pathlib import Path

BIG_SIZE = 3 * 1024 * 1024 + 4321

#: `snapshot DIR`: the normalised listings of DIR.  tar's --hard-dereference: squashfuse gives
#: each name of a hard link its own st_ino (the real kernel FUSE shows the same), so tar can't
#: pair them there; with it both sides archive a hard link as the file it is.
#: `compare SOURCE MOUNT` prints SAME or the diff, then the number of lines compared;
#: `finish` unmounts mnt, waits for $daemon and lists mnt again.
SNAPSHOT = r"""
snapshot() (
    cd "$1" || exit 1
    echo "== ls -lR"
    ls -lRn --time-style=+T . | awk -v link_sizes="${LINK_SIZES:-1}" '
        $1 == "total" { next }
        NF >= 7 { mode = $1; size = (mode ~ /^d/ || (mode ~ /^l/ && !link_sizes)) ? "-" : $5
                  $1 = $2 = $3 = $4 = $5 = $6 = ""; sub(/^ +/, ""); print mode, size, $0; next }
        { print }'
    echo "== md5sum"
    find . -type f -exec md5sum {} + | sort -k 2
    echo "== tar"
    tar --sort=name --hard-dereference -cf - . | tar tvf - | awk '
        { mode = $1; size = (mode ~ /^[dl]/) ? "-" : $3
          $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print mode, size, $0 }'
)
compare() {
    snapshot "$1" >source.snap 2>&1
    snapshot "$2" >mount.snap 2>&1
    if diff source.snap mount.snap; then echo "SAME"; else echo "DIFFERENT"; fi
    grep -c . mount.snap
}
finish() {
    fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
    wait $daemon; echo "daemon rc=$?"
    wait_unmounted "$PWD/mnt" && echo "unmounted"
    ls -a mnt | tr '\n' ' '; echo
}
"""


def make_tree(root: Path, hard_link: bool = True) -> Path:
    """A real tree: nested directories, a file and a directory symlink, a dangling one, a
    hard link (unless `hard_link` is false), modes 600/640/755 and a 700 directory, an
    empty file, a file of a few MB, a Python package, text to grep."""
    tree = root / "tree"
    (tree / "sub" / "deeper" / "deepest").mkdir(parents=True)
    (tree / "private").mkdir()
    (tree / "emptydir").mkdir()
    (tree / "mpkg").mkdir()
    (tree / "README.txt").write_text("read me\nthe needle is here\n")
    (tree / "empty").write_bytes(b"")
    (tree / "sub" / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (tree / "sub" / "deeper" / "notes.txt").write_text("line\n" * 2000 + "needle again\n")
    (tree / "sub" / "deeper" / "deepest" / "leaf").write_text("leaf\n")
    (tree / "private" / "secret").write_text("secret\n")
    (tree / "private" / "secret").chmod(0o600)
    (tree / "private").chmod(0o700)
    (tree / "group.txt").write_text("group\n")
    (tree / "group.txt").chmod(0o640)
    (tree / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "mpkg" / "__init__.py").write_text("from .inner import VALUE\n")
    (tree / "mpkg" / "inner.py").write_text("VALUE = 'imported from the mount'\n")
    (tree / "link-to-readme").symlink_to("README.txt")
    (tree / "link-to-dir").symlink_to("sub/deeper")
    (tree / "dangling").symlink_to("does-not-exist")
    if hard_link:
        os.link(tree / "README.txt", tree / "hard-readme")
    return tree


def check_compared(output: str, status: int) -> None:
    """The session exited 0, `compare` said SAME on non-empty listings, then `finish`
    unmounted, the daemon exited 0 and the original directory showed again."""
    assert status == 0, output
    lines = output.splitlines()
    assert "SAME" in lines, output
    count = int(lines[lines.index("SAME") + 1])
    assert count > 30, output  # the listings were not empty
    for expected in ("unmount rc=0", "daemon rc=0", "unmounted"):
        assert expected in lines, output
    assert lines[-1].split() == [".", "..", "original"], output
