"""Shell redirection into and out of files on a mount (issue 6, DESIGN §4's low-fd hole).

Every form runs on a real directory and on the mount in one session; what the commands
printed and the trees they left must be the same byte for byte.  Writes through fds below
FD_BASE go to a memfd that the hypervisor writes back (docs/decisions.md D7), so the script
also reads files while their writer is still open, and rewrites, truncates and appends to
files bigger than one write-back chunk.
"""

from __future__ import annotations

import pytest
from e2ehelp import ON_REF_AND_MOUNT, RW_DAEMONS, Sessions, libfuse_example

pytestmark = pytest.mark.e2e

WORKLOAD = r"""
work() (
    cd "$1" || exit 1
    echo hello > f
    echo more >> f
    printf 'abc\n' > g 2>&1
    ls /nonexistent > e 2>&1
    { echo out; echo err >&2; echo out2; } > both 2>&1
    cat > h <<EOT
here doc $((1+2))
EOT
    cat >> h <<'EOT'
second $((no expansion))
EOT
    exec 3<> rw; echo xyz >&3; exec 3>&-
    exec 3<> f; read -r line <&3; echo "read:$line"; echo ZZ >&3; exec 3>&-
    wc -c < f
    sort -r < f > sorted
    exec 4>> log
    echo a >&4; echo "log now: $(cat log)"
    echo b >&4; echo "log size: $(wc -c < log)"; stat -c 'stat size %s' log
    exec 4>&-
    dd if=/dev/zero of=d bs=1k count=3 2>/dev/null
    printf 'AB' | dd of=d bs=1 seek=10 conv=notrunc 2>/dev/null
    dd if=/dev/null of=d bs=1 seek=7 2>/dev/null
    seq 1 150000 > big
    exec 5<> big; printf 'XXXX' >&5; exec 5>&-
    echo tail >> big
    python3 -c 'import sys; sys.stdout.write("p" * 200000)' > py
    touch t; touch f
    for i in 1 2 3; do echo $i >> loop; done
    (echo sub; echo shell) | tr a-z A-Z > piped
    (exec > whole; echo one; echo two; ls /nope 2>&1)
    cat f g e both h rw loop sorted piped whole; od -c d
    md5sum big py; wc -c big py
)
@ON_BOTH@
diff -r ref mnt && echo "same tree"
cat mnt.out
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""
WORKLOAD = WORKLOAD.replace("@ON_BOTH@\n", ON_REF_AND_MOUNT)

DAEMONS = RW_DAEMONS


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_redirection_forms(sessions: Sessions, daemon: str) -> None:
    if daemon == "passthrough_ll":
        libfuse_example(daemon)
    run = sessions.run(WORKLOAD.replace("@START@", DAEMONS[daemon]))
    assert run.status == 0, run.output
    for line in ("ref rc=0", "mnt rc=0", "same output", "same tree", "read:hello",
                 "log now: a", "log size: 4", "stat size 4", "unmount rc=0", "daemon rc=0"):
        assert line in run.lines(), run.output


LEFT_BEHIND = r"""
mkdir -p src mnt
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
{command}
"""


def test_redirection_written_back_when_the_session_ends(sessions: Sessions) -> None:
    """The last command's redirection reaches the daemon before the session kills it."""
    libfuse_example("passthrough_ll")
    run = sessions.run(LEFT_BEHIND.format(command='seq 1 3000 > "$PWD/mnt/last"'))
    assert run.status == 0, run.output
    expected = "".join(f"{i}\n" for i in range(1, 3001))
    assert (sessions.root / "src" / "last").read_text() == expected
