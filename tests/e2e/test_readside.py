"""Every read-side syscall variant of issue 4 on a mount answers as on the real tree.

`readside_probe.py` runs on libfuse's passthrough_ll (``-o xattr``) over a real tree and on
the tree itself, in one session; every line must be equal -- the values (st_ino included:
passthrough_ll passes the real one), the errnos, the directory offsets (its d_off are the
real ones) -- but one, which the ``kernel`` test finds on the real FUSE too: ``access-x``,
access(X_OK) of a file without x bits, is allowed, because FUSE without default_permissions
asks the daemon (FUSE_ACCESS), passthrough_ll answers ENOSYS, and the kernel then allows
everything (fuse_access); and ``openat2-no-xdev-up``, ".." of the mount's root with
RESOLVE_NO_XDEV, which leaves the mount (EXDEV) where on the tree it does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example, on_kernel_fuse

PROBE = Path(__file__).with_name("readside_probe.py")
SCRIPT = """\
mkdir -p src/dir mnt
{python} -c "open('src/file', 'wb').write(b'0123456789abcdef' * 300)"
ln -s file src/link; for x in a b c d e; do echo $x > src/dir/$x; done
{python} -c "import os; os.setxattr('src/file', 'user.probe', b'value')" || exit 1
"$LIBFUSE/passthrough_ll" -o xattr,source="$PWD/src" "$PWD/mnt" || exit 1
wait_mounted "$PWD/mnt" 2>/dev/null || true
{python} {probe} "$PWD/mnt" > mnt.out 2>&1; echo "mnt rc=$?"
rm -f src/dir/created
{python} {probe} "$PWD/src" > src.out 2>&1; echo "src rc=$?"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
"""


def _differences(root: Path) -> set[str]:
    mounted = (root / "mnt.out").read_text().splitlines()
    real = (root / "src.out").read_text().splitlines()
    assert len(mounted) == len(real) > 60, (mounted, real)
    return {a.split(":")[0] for a, b in zip(mounted, real, strict=True) if a != b}


@pytest.mark.e2e
def test_read_side_syscalls_as_on_the_tree(sessions: Sessions) -> None:
    """The mount and the tree give the same answers, line for line."""
    libfuse_example("passthrough_ll")
    run = sessions.run(SCRIPT.format(python=sys.executable, probe=PROBE))
    assert run.lines() == ["mnt rc=0", "src rc=0", "unmount rc=0"], run.output
    assert _differences(sessions.root) == {"access-x", "openat2-no-xdev-up"}, (
        (sessions.root / "mnt.out").read_text())


@pytest.mark.kernel
def test_read_side_syscalls_on_kernel_fuse(tmp_path: Path) -> None:
    """The reference: on the real FUSE (as root), only ``access-x`` and the crossing of
    ``openat2-no-xdev-up`` differ."""
    libfuse_example("passthrough_ll")
    done = on_kernel_fuse(SCRIPT.format(python=sys.executable, probe=PROBE), tmp_path)
    assert done.stdout.splitlines() == ["mnt rc=0", "src rc=0", "unmount rc=0"], done.stderr
    assert _differences(tmp_path) == {"access-x", "openat2-no-xdev-up"}
