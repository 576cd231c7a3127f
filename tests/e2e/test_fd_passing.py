"""Virtual fds handed to another process: SCM_RIGHTS (sendmsg, sendmmsg) and pidfd_getfd
(decisions D23).

The probe runs on a real directory and on the mount in one session; what each side read and
wrote must be the same (on kernel FUSE, run as root, it prints these lines too).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).with_name("fdpass_probe.py")

WORKLOAD = r"""
mkdir -p ref src mnt
@START@ 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
"$PY" "@PROBE@" "$PWD/ref" > ref.out 2>&1; echo "ref rc=$?"
"$PY" "@PROBE@" "$PWD/mnt" > mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
cat mnt.out
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""

DAEMONS = {
    "passthrough_ll": '"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt"',
    "memfs.py": '"$PY" "$EXAMPLES/memfs.py" "$PWD/mnt"',
}


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_fd_passing(sessions: Sessions, daemon: str) -> None:
    if daemon == "passthrough_ll":
        libfuse_example(daemon)
    run = sessions.run(WORKLOAD.replace("@START@", DAEMONS[daemon]).replace("@PROBE@", str(PROBE)))
    assert run.status == 0, run.output
    for line in ("ref rc=0", "mnt rc=0", "same output",
                 "child reads: b'beta\\n' size 11",
                 "b holds: b'parent\\nchild wrote\\n'",
                 "two fds: 2 b'piped' b'alpha'",
                 "big message: 600000 fd reads b'alpha'", "big send returned 600000",
                 "pidfd_getfd reads: b'alpha\\nbeta\\n' cloexec True",
                 "sendmmsg sent (2, [3, 6])", "sendmmsg first: b'alpha' then b'second'",
                 "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output
