"""`vufuse mount|umount|mounts|status|stats|abort` end to end with real daemons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from producthelp import HELLO_LL, HELLO_TEXT, in_session, leftover_processes, mount_hello

pytestmark = pytest.mark.e2e


def test_hello_mount_list_stats_umount(mnt: Path) -> None:
    result = in_session(f"""
        {mount_hello(mnt)}; echo "mount rc=$?"
        cat "{mnt}/hello"
        ls "{mnt}" >/dev/null
        echo "== mounts"; "$VUFUSE" mounts
        echo "== status"; "$VUFUSE" status
        echo "== stats"; "$VUFUSE" stats
        echo "== json"; "$VUFUSE" mounts --json
        echo "== umount"; "$VUFUSE" umount "{mnt}"; echo "umount rc=$?"
        "$VUFUSE" mounts
        test -z "$(ls "{mnt}")" && echo "empty again"
    """)
    out = result.stdout
    assert result.status == 0, result.stderr
    assert "mount rc=0" in out and HELLO_TEXT in out
    mounts = out.split("== mounts\n")[1].split("== status")[0]
    assert mounts.startswith(f"{mnt}  type fuse  live")
    assert "vufuse.pyfuse3.run" in mounts and "pid " in mounts
    assert "protocol  7." in mounts
    assert "user_id=" in mounts and "nosuid" in mounts
    status = out.split("== status\n")[1].split("== stats")[0]
    assert "mounts      1" in status
    stats = out.split("== stats\n")[1].split("== json")[0]
    assert "fast path (C):" in stats and "slow path (Python):" in stats
    assert "LOOKUP" in stats and "GETATTR" in stats and "READ" in stats
    assert '"requests":' in out.split("== json\n")[1]
    assert "umount rc=0" in out and "no FUSE mounts" in out and "empty again" in out
    assert leftover_processes(str(mnt)) == []


@pytest.mark.skipif(not os.access(HELLO_LL, os.X_OK), reason="libfuse's hello_ll not built")
def test_libfuse_hello_ll(mnt: Path) -> None:
    """libfuse mounts, then daemonizes: `vufuse mount` still sees the mount come live."""
    result = in_session(f"""
        "$VUFUSE" mount "$HELLO_LL" "{mnt}"; echo "mount rc=$?"
        cat "{mnt}/hello"
        "$VUFUSE" mounts
        "$VUFUSE" umount "{mnt}"; echo "umount rc=$?"
    """)
    assert result.status == 0, result.stderr
    assert "mount rc=0" in result.stdout and "Hello World!" in result.stdout
    assert "hello_ll" in result.stdout
    assert "umount rc=0" in result.stdout
    assert leftover_processes(str(mnt)) == []


def test_lazy_umount_of_busy_mount(mnt: Path) -> None:
    result = in_session(f"""
        {mount_hello(mnt)}
        cd "{mnt}"
        "$VUFUSE" umount "{mnt}" || echo "busy umount refused"
        "$VUFUSE" umount -z "{mnt}"; echo "lazy rc=$?"
        cd /
        "$VUFUSE" mounts
    """)
    assert result.status == 0, result.stderr
    assert "busy umount refused" in result.stdout
    assert "Device or resource busy" in result.stderr
    assert "lazy rc=0" in result.stdout and "no FUSE mounts" in result.stdout


def test_daemon_that_fails_to_mount(tmp_path: Path) -> None:
    """Its own error output is shown, and the status is non-zero."""
    result = in_session(f"""
        {mount_hello(tmp_path / "missing")} && echo "unexpected success" || echo "rc=$?"
        "$VUFUSE" mounts
    """)
    assert result.status == 0, result.stderr
    assert "unexpected" not in result.stdout and "rc=1" in result.stdout
    assert "No such file or directory" in result.stderr  # the daemon's own words
    assert "exited with status 1 without mounting" in result.stderr


def test_program_that_does_not_exist(mnt: Path) -> None:
    result = in_session(f"""
        "$VUFUSE" mount /nonexistent/fsprog "{mnt}" || echo "rc=$?"
    """)
    assert "rc=1" in result.stdout, result.stderr
    assert result.stderr.count("\n") == 1 and "/nonexistent/fsprog" in result.stderr


def test_daemon_that_never_answers_init(mnt: Path) -> None:
    """A bounded failure: the daemon is stopped and its mount detached."""
    result = in_session(f"""
        "$VUFUSE" mount --timeout 1 "$PY" "$NOINIT" "{mnt}" || echo "rc=$?"
        "$VUFUSE" mounts
    """)
    assert "rc=1" in result.stdout, result.stderr
    assert "noinit: mounted, not answering" in result.stderr
    assert "did not answer INIT within 1 s" in result.stderr
    assert "no FUSE mounts" in result.stdout
    assert leftover_processes(str(mnt)) == []


def test_abort_pending_and_later_requests(mnt: Path) -> None:
    """Requests waiting on a daemon fail with ENOTCONN after `vufuse abort`, later ones too."""
    result = in_session(f"""
        "$PY" "$NOINIT" "{mnt}" 2>/dev/null &
        daemon=$!
        i=0; until "$VUFUSE" mounts | grep -q "waiting for INIT"; do
            i=$((i+1)); [ $i -lt 400 ] || exit 9; sleep 0.05; done
        (stat "{mnt}/x" 2>&1 || echo "pending stat done") > "{mnt}.pending" &
        staller=$!
        sleep 0.2
        "$VUFUSE" abort "{mnt}"; echo "abort rc=$?"
        wait $staller
        cat "{mnt}.pending"
        stat "{mnt}/x" 2>&1 || true
        "$VUFUSE" mounts
        "$VUFUSE" umount "{mnt}"; echo "umount rc=$?"
        kill $daemon
    """)
    assert result.status == 0, result.stderr
    out = result.stdout
    assert "abort rc=0" in out
    assert out.count("Transport endpoint is not connected") == 2, out
    assert "pending stat done" in out and "aborted" in out and "umount rc=0" in out


def test_abort_tells_the_daemon(mnt: Path) -> None:
    """pyfuse3's hello reads ENODEV from its device, ends its main loop and unmounts."""
    result = in_session(f"""
        {mount_hello(mnt)}
        "$VUFUSE" abort "{mnt}"; echo "abort rc=$?"
        i=0; until "$VUFUSE" mounts | grep -q "no FUSE mounts"; do
            i=$((i+1)); [ $i -lt 400 ] || exit 9; sleep 0.05; done
        echo "daemon gone"
        "$VUFUSE" abort "{mnt}" || echo "second abort rc=$?"
    """)
    assert result.status == 0, result.stderr
    assert "abort rc=0" in result.stdout and "daemon gone" in result.stdout
    assert "second abort rc=1" in result.stdout
    assert leftover_processes(str(mnt)) == []
    assert "not a FUSE mount of this session" in result.stderr


def test_daemon_that_exits_0_without_mounting(mnt: Path) -> None:
    """`--version`-style success with no mount: a prompt failure, not the whole --timeout."""
    result = in_session(f"""
        "$VUFUSE" mount --timeout 600 sh -c 'echo "just printing"' "{mnt}" || echo "rc=$?"
        "$VUFUSE" mount --timeout 600 sh -c '(sleep 1; exec "$0" "$@") &' "$PY" -m \\
            vufuse.pyfuse3.run "$HELLO" "{mnt}"; echo "late rc=$?"
        cat "{mnt}/hello"
    """)
    assert result.status == 0, result.stderr
    assert "rc=1" in result.stdout
    assert "just printing" in result.stderr
    assert "exited with status 0 without mounting" in result.stderr
    # A wrapper that exits 0 and leaves the real daemon behind is still waited for.
    assert "late rc=0" in result.stdout and HELLO_TEXT in result.stdout
