"""bind(2)/connect(2) of unix sockets at paths on a mount (docs/decisions.md D12).

The probe binds, listens, connects from a child, exchanges bytes, and tries the error cases;
what it prints must be what it prints on the kernel's FUSE (captured as root on /dev/fuse
with passthrough_ll, Linux 6.18: `EXPECTED`), whatever the daemon.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).with_name("unix_socket_probe.py")

SCRIPT = r"""
mkdir -p src mnt
{start} 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
"$PY" {probe} "$PWD/mnt"; echo "probe rc=$?"
ls -l src 2>/dev/null | awk '/^s/ {{ print "source has socket", $NF }}'
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""

DAEMONS = {
    "passthrough_ll": '"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt"',
    "memfs.py": '"$PY" "$EXAMPLES/memfs.py" "$PWD/mnt"',
}

EXPECTED = """\
bind ok
type sock True mode 0o755 nlink 1
got b'hello from child'
bind existing EADDRINUSE
rebind bound EINVAL
s2 exists False
dgram connect to stream EPROTOTYPE
connect mknod sock ECONNREFUSED
connect regular ECONNREFUSED
connect missing ENOENT
bind missing dir ENOENT
connect after close ECONNREFUSED
dgram connect ok
dgram got b'dgram!'
relative bind ok
relative connect ok
['dg', 'rel']
probe rc=0
""".splitlines()


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_unix_socket_bound_on_a_mount(sessions: Sessions, daemon: str) -> None:
    if daemon == "passthrough_ll":
        libfuse_example(daemon)
    run = sessions.run(SCRIPT.format(start=DAEMONS[daemon], probe=PROBE))
    lines = [line.rstrip() for line in run.lines()]
    assert lines[: len(EXPECTED)] == EXPECTED, run.output
    if daemon == "passthrough_ll":  # the daemon made the socket inodes, as on the kernel
        assert "source has socket dg" in lines and "source has socket rel" in lines, run.output
    for line in ("unmount rc=0", "daemon rc=0"):
        assert line in lines, run.output
