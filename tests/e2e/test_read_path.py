"""The read path's "must show" list (issue 4): unmodified daemons serving a real tree.

Each workload runs the same commands on the mount and on the source tree, inside one
session, and compares them: ``ls -lR`` (names, modes, sizes of non-directories, link
targets), ``md5sum`` of every regular file, and ``tar cf - . | tar tvf -`` (names, modes,
sizes, link targets).  Times, owners, link counts and directory sizes are left out: they
are what a FUSE daemon may legitimately report differently (an archive's owner, a
directory's size).  Afterwards the mountpoint shows its original directory again and the
daemon exited 0.
"""

from __future__ import annotations

import shutil

import pytest
from e2ehelp import REAL_PYFUSE3, Sessions, libfuse_example, real_pyfuse3
from trees import BIG_SIZE, SNAPSHOT, check_compared, make_tree

pytestmark = pytest.mark.e2e


def _need(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (compat-tests/setup.sh installs it)")


def _run_mounted(sessions: Sessions, start: str, source: str, inside: str = "") -> None:
    """Start a daemon (`start`, backgrounded) on mnt, compare mnt`inside` with `source`."""
    run = sessions.run(SNAPSHOT + f"""\
mkdir -p mnt && touch mnt/original
{start} 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
compare "{source}" "mnt{inside}"
finish
""")
    check_compared(run.output, run.status)


def test_squashfuse(sessions: Sessions) -> None:
    """squashfuse on an image mksquashfs made from the tree."""
    _need("squashfuse", "mksquashfs")
    tree = make_tree(sessions.root)
    _run_mounted(sessions, f"""\
mksquashfs {tree} image.sqfs -quiet -noappend >/dev/null || exit 1
squashfuse -f image.sqfs "$PWD/mnt\"""", str(tree))


def test_fuse_zip_read_only(sessions: Sessions) -> None:
    """fuse-zip -r on a zip of the tree (nonempty: libfuse 2 refuses a mountpoint with files
    in it, and ours holds the marker of the original directory).  No hard link: zip stores
    none (two files, as the kernel shows too).  The archive has no entry for its root,
    whose mode fuse-zip makes up (0775, as on the kernel): the tree's root is made 0775."""
    _need("fuse-zip", "zip")
    tree = make_tree(sessions.root, hard_link=False)
    tree.chmod(0o775)
    _run_mounted(sessions, f"""\
(cd {tree} && zip -q -r -y "$OLDPWD/archive.zip" .) || exit 1
fuse-zip -r -f -o nonempty archive.zip "$PWD/mnt\"""", str(tree))


def test_archivemount_read_only(sessions: Sessions) -> None:
    """archivemount on a tar of the tree, mounted ro (its own `readonly` option would also
    clear every write bit in the modes it shows, on the real kernel FUSE too).  No hard
    link: archivemount with hard links in the archive hangs on the real kernel FUSE too
    (docs/compatibility.md).  Its symlinks have st_size 0 (a tar member's size), on the
    kernel too: not compared."""
    _need("archivemount", "tar")
    tree = make_tree(sessions.root, hard_link=False)
    _run_mounted(sessions, f"""\
LINK_SIZES=0
tar -C {tree} -cf archive.tar . || exit 1
archivemount -f -o ro,nonempty archive.tar "$PWD/mnt\"""", str(tree))


def test_libfuse_passthrough(sessions: Sessions) -> None:
    """libfuse's high-level passthrough (it mirrors /): the tree seen through the mount."""
    binary = libfuse_example("passthrough")
    tree = make_tree(sessions.root)
    _run_mounted(sessions, f'{binary} -f "$PWD/mnt"', str(tree), inside=str(tree))


def test_our_passthroughfs(sessions: Sessions) -> None:
    """Our pyfuse3 API's examples/fs/passthroughfs.py on the tree."""
    tree = make_tree(sessions.root)
    _run_mounted(sessions, f'"$PY" "$EXAMPLES/passthroughfs.py" {tree} "$PWD/mnt"', str(tree))


#: How each daemon of the workload tests is started on mnt, and where tree/ shows in it.
WORKLOAD_DAEMONS = {
    "squashfuse": ('mksquashfs tree image.sqfs -quiet -noappend >/dev/null || exit 1\n'
                   'squashfuse -f image.sqfs "$PWD/mnt"', ""),
    "passthrough_ll": ('"$LIBFUSE/passthrough_ll" -f -o source="$PWD/tree" "$PWD/mnt"', ""),
    "passthrough": ('"$LIBFUSE/passthrough" -f "$PWD/mnt"', "$PWD/tree"),  # mirrors /
    "passthroughfs.py": ('"$PY" "$EXAMPLES/passthroughfs.py" "$PWD/tree" "$PWD/mnt"', ""),
    "real-pyfuse3-passthroughfs.py": (
        '"$REAL/venv/bin/python" "$REAL/examples/passthroughfs.py" "$PWD/tree" "$PWD/mnt"', ""),
}


@pytest.mark.parametrize("daemon", sorted(WORKLOAD_DAEMONS))
def test_workloads_inside_mount(sessions: Sessions, daemon: str) -> None:
    """cd into the mount and use relative paths; import a package that lives only on the
    mount; grep -r across it; cp -a of it, then diff -r against the tree."""
    real = REAL_PYFUSE3
    if daemon == "squashfuse":
        _need("squashfuse", "mksquashfs")
    elif daemon.startswith("passthrough") and not daemon.endswith(".py"):
        libfuse_example(daemon)
    elif daemon.startswith("real-pyfuse3"):
        real = real_pyfuse3()[0].parents[2]
    start, inside = WORKLOAD_DAEMONS[daemon]
    make_tree(sessions.root)
    run = sessions.run(SNAPSHOT + f"""\
REAL={real}
mkdir -p mnt copy && touch mnt/original
{start} 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
root=$PWD top="$PWD/mnt{inside}"
cd "$top" || exit 1
echo "== pwd"; pwd
echo "== relative"
cat README.txt sub/deeper/deepest/leaf ./link-to-dir/deepest/leaf
(cd sub/deeper && cat deepest/../deepest/leaf && ls | tr '\\n' ' ' && echo)
stat -c '%s %a' sub/big.bin private/secret
test -x run.sh && ./run.sh
echo "== import"
python3 -c 'import os, mpkg; print(mpkg.VALUE, os.path.abspath(mpkg.__file__))'
echo "== grep"; grep -r needle . | sort
cd "$root" || exit 1
echo "== copy"
cp -a "$top/." copy/ && echo "cp ok"
diff -r --no-dereference tree copy && echo "diff same"
finish
""")
    output, root = run.output, sessions.root
    assert run.status == 0, output
    top = f"{root}/mnt" + (f"{root}/tree" if inside else "")
    assert output.split("== pwd\n")[1].split("\n")[0] == top, output
    relative = output.split("== relative\n")[1].split("== import")[0].splitlines()
    assert relative == ["read me", "the needle is here", "leaf", "leaf", "leaf",
                        "deepest notes.txt ", f"{BIG_SIZE} 644", "7 600", "ran"], output
    assert output.split("== import\n")[1].split("\n")[0] == (
        f"imported from the mount {top}/mpkg/__init__.py"
    ), output
    grep = output.split("== grep\n")[1].split("== copy")[0].splitlines()
    assert grep == ["./README.txt:the needle is here", "./hard-readme:the needle is here",
                    "./sub/deeper/notes.txt:needle again"], output
    lines = output.splitlines()
    for expected in ("cp ok", "diff same", "unmount rc=0", "daemon rc=0", "unmounted"):
        assert expected in lines, output
    assert lines[-1].split() == [".", "..", "original"], output


def test_daemon_started_inside_mount(sessions: Sessions) -> None:
    """Daemon B started with its cwd inside mount A (squashfuse reading its image from A by
    a relative path; passthrough_ll from a subdirectory of A) mounts elsewhere and serves;
    B, then A, unmount and exit 0."""
    _need("squashfuse", "mksquashfs")
    libfuse_example("passthrough_ll")
    tree = make_tree(sessions.root)
    inner = sessions.root / "inner"
    (inner / "dir").mkdir(parents=True)
    (inner / "dir" / "file").write_text("inner file\n")
    (tree / "images").mkdir()
    run = sessions.run("""\
mksquashfs inner tree/images/inner.sqfs -quiet -noappend >/dev/null || exit 1
mkdir -p a b c && touch a/original b/original c/original
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/tree" "$PWD/a" 2>a.err &
daemon_a=$!
wait_mounted "$PWD/a" || { cat a.err; exit 1; }
root=$PWD
(cd a/images && exec squashfuse -f inner.sqfs "$root/b" 2>"$root/b.err") &
daemon_b=$!
(cd a/sub/deeper && exec "$LIBFUSE/passthrough_ll" -f -o source=deepest "$root/c" 2>"$root/c.err") &
daemon_c=$!
wait_mounted "$PWD/b" || { cat b.err; exit 1; }
wait_mounted "$PWD/c" || { cat c.err; exit 1; }
echo "== b"; cat b/dir/file
echo "== c"; cat c/leaf
echo "== cwd"; readlink /proc/$daemon_b/cwd /proc/$daemon_c/cwd
echo "== end"
fusermount3 -u "$PWD/b"; echo "unmount b rc=$?"
wait $daemon_b; echo "daemon b rc=$?"
fusermount3 -u "$PWD/c"; echo "unmount c rc=$?"
wait $daemon_c; echo "daemon c rc=$?"
fusermount3 -u "$PWD/a"; echo "unmount a rc=$?"
wait $daemon_a; echo "daemon a rc=$?"
for m in a b c; do wait_unmounted "$PWD/$m" && ls -A $m; done
""")
    output = run.output
    assert run.status == 0, output
    assert output.split("== b\n")[1].split("== c")[0] == "inner file\n", output
    assert output.split("== c\n")[1].split("== cwd")[0] == "leaf\n", output
    # libfuse's fuse_daemonize() chdirs to / even in the foreground, on the kernel too: both
    # left their cwd inside A once mounted.
    assert output.split("== cwd\n")[1].split("== end")[0].split() == ["/", "/"], output
    lines = output.splitlines()
    for name in "bca":
        assert f"unmount {name} rc=0" in lines and f"daemon {name} rc=0" in lines, output
    assert lines[-3:] == ["original"] * 3, output
