"""sendfile, splice and copy_file_range between a mount, another mount and a real directory
(issue 4): the same byte counts, errnos and file contents as on the kernel's FUSE.

`splice_probe.py` runs the matrix on two libfuse passthrough_ll mounts; its output on Linux
6.18's FUSE is :data:`KERNEL_OUTPUT` (the ``kernel`` test below checks that it still is).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example, on_kernel_fuse

PROBE = Path(__file__).with_name("splice_probe.py")

KERNEL_OUTPUT = """\
cfr mount->other-mount 12
cfr mount->same-mount 12
cfr mount->real EXDEV
cfr real->mount EXDEV
sendfile mount->mount 12
sendfile real->mount 10
sendfile mount->real 6
sendfile mount->real pos 5
sendfile mount->real pos2 7
sendfile real->append EINVAL
sendfile real->read-only EBADF
sendfile dir->real EINVAL
sendfile mount->read-only EBADF
splice mount->pipe 5
splice pipe->mount 5
splice pipe->append EINVAL
splice mount->real EINVAL
splice pipe->read-only EBADF
splice dir->pipe EINVAL
splice pipe->mount pos 4
splice mount->itself EBADF
b 45 b'hello-world\\nfrom-real\\nzzyy..............hello'
c 12 b'hello-world\\n'
d 0 b''
r 18 b'world\\nhello-world\\n'
"""

SCRIPT = """\
mkdir -p src1 src2 m1 m2 real && printf 'hello-world\\n' > src1/a
"$LIBFUSE/passthrough_ll" -o source="$PWD/src1" "$PWD/m1" || exit 1
"$LIBFUSE/passthrough_ll" -o source="$PWD/src2" "$PWD/m2" || exit 1
{python} {probe} m1 m2 real > probe.out 2>&1; echo "probe rc=$?"
fusermount3 -u "$PWD/m1"; fusermount3 -u "$PWD/m2"
"""


@pytest.mark.e2e
def test_splice_family_in_a_session(sessions: Sessions) -> None:
    """The matrix inside `vufuse run`, as whoever runs the suite."""
    libfuse_example("passthrough_ll")
    run = sessions.run(SCRIPT.format(python=sys.executable, probe=PROBE))
    assert run.status == 0 and "probe rc=0" in run.output, run.output
    assert (sessions.root / "probe.out").read_text() == KERNEL_OUTPUT


@pytest.mark.kernel
def test_splice_family_on_kernel_fuse(tmp_path: Path) -> None:
    """The reference: the same matrix on the real kernel FUSE (root)."""
    libfuse_example("passthrough_ll")
    done = on_kernel_fuse(SCRIPT.format(python=sys.executable, probe=PROBE), tmp_path)
    assert "probe rc=0" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "probe.out").read_text() == KERNEL_OUTPUT
