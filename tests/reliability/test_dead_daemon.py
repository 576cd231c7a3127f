"""A daemon that dies or hangs: callers end with an error or a signal, never stay stuck, and
the mount can still be removed.

Errnos as the kernel's (checked with the same scripted daemon on the real kernel): requests in
flight when the daemon dies or the connection is aborted end with ECONNABORTED ("Software
caused connection abort", fuse_dev_end_requests), every later one with ENOTCONN ("Transport
endpoint is not connected").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliabilityhelp import run_session

pytestmark = pytest.mark.e2e

GONE = ("ECONNABORTED", "ENOTCONN")

#: Three callers wait on requests the daemon read and never answers.
HANGERS = """
    for i in 1 2 3; do ("$PY" "$HERE/probe.py" "$PWD/m" stat:hang$i > hang$i.out) & done
    wait_count "LOOKUP 1" m.log 3
"""


def _waiters(output: str) -> list[str]:
    return [line.split()[1] for line in output.splitlines() if line.startswith("stat:hang")]


def test_killed_daemon_with_requests_in_flight(tmp_path: Path) -> None:
    run = run_session(f"""
        mount_hostile "$PWD/m"
        {HANGERS}
        daemon=$(pgrep -f "hostile_daemon.py $PWD/m")
        kill -9 $daemon
        wait
        cat hang1.out hang2.out hang3.out
        "$PY" "$HERE/probe.py" "$PWD/m" stat:good read:good stat:.
        "$PY" "$HERE/probe.py" "$PWD" list:.
        sleep 0.2
        "$PY" "$HERE/probe.py" "$PWD/m" stat:good
        fusermount3 -u "$PWD/m"; echo "fusermount3 rc=$?"
        grep -c " $PWD/m " /proc/self/mounts
        "$PY" "$HERE/probe.py" "$PWD/m" list:.
        mount_hostile "$PWD/m" && "$PY" "$HERE/probe.py" "$PWD/m" read:good
        kill -9 $(pgrep -f "hostile_daemon.py $PWD/m"); wait
        "$PY" "$HERE/probe.py" "$PWD/m" stat:good
        "$VUFUSE" umount "$PWD/m"; echo "vufuse umount rc=$?"
        "$VUFUSE" mounts
    """, tmp_path)
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    waiters = _waiters(run.output)
    assert len(waiters) == 3 and all(error in GONE for error in waiters), run.output
    assert "ECONNABORTED" in waiters  # at least one was in flight (the daemon read it)
    for probe in ("stat:good", "read:good", "stat:."):
        assert f"{probe} ENOTCONN" in lines, run.output
    assert lines.count("stat:good ENOTCONN") == 3  # later too, and after the second death
    assert any(line.startswith("list:. ok ") and ",m," in f",{line[9:]}," for line in lines)
    assert "fusermount3 rc=0" in lines and "0" in lines and "list:. ok " in lines
    assert "read:good ok good data" in lines and "vufuse umount rc=0" in lines
    assert lines[-1] == "no FUSE mounts"


def test_hung_daemon_callers_end_by_signal_and_abort(tmp_path: Path) -> None:
    """SIGTERM, SIGINT (Ctrl-C) and SIGKILL end a caller stuck on a hung daemon when their
    action is the default one (the kernel would keep it once its request was read); `vufuse
    abort` releases the rest.  A caught signal is the INTERRUPT road (docs/reliability.md)."""
    run = run_session(f"""
        mount_hostile "$PWD/m"
        n=0
        for sig in TERM INT KILL; do
            # SIG_DFL: a background job of a script starts with SIGINT ignored.
            "$PY" -c "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); \\
                      os.stat('$PWD/m/hang-$sig')" & pid=$!
            n=$((n+1)); wait_count "LOOKUP 1" m.log $n
            kill -$sig $pid; wait $pid; echo "$sig status $?"
        done
        : > m.log
        {HANGERS}
        "$VUFUSE" abort "$PWD/m"; echo "abort rc=$?"
        wait
        cat hang1.out hang2.out hang3.out
        "$PY" "$HERE/probe.py" "$PWD/m" stat:good
        "$VUFUSE" umount "$PWD/m"; echo "umount rc=$?"
    """, tmp_path)
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    assert "TERM status 143" in lines and "INT status 130" in lines and "KILL status 137" in lines
    waiters = _waiters(run.output)
    assert waiters == ["ECONNABORTED"] * 3, run.output
    assert "abort rc=0" in lines and "stat:good ENOTCONN" in lines and "umount rc=0" in lines


def test_caught_signal_ends_a_call_the_hung_daemon_never_answers(tmp_path: Path) -> None:
    """A caller that catches SIGINT (Python's KeyboardInterrupt) stuck on a hung daemon that
    ignores INTERRUPT: the kernel would keep it for ever; we answer EINTR once the interrupt
    went unanswered for signals.GIVE_UP seconds, so Ctrl-C works (docs/decisions.md D21)."""
    run = run_session("""
        mount_hostile "$PWD/m"
        "$PY" -c "import os, signal
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job ignores it
try:
    os.stat('$PWD/m/hang-caught')
except KeyboardInterrupt:
    print('KeyboardInterrupt')" > caught.out & pid=$!
        wait_count "LOOKUP 1" m.log 1
        kill -INT $pid; wait $pid; echo "caught status $?"
        cat caught.out
        wait_count "INTERRUPT" m.log 1; echo "interrupt sent"
        "$PY" "$HERE/probe.py" "$PWD/m" stat:good
        "$VUFUSE" umount "$PWD/m"; echo "umount rc=$?"
    """, tmp_path)
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    assert "caught status 0" in lines and "KeyboardInterrupt" in lines, run.output
    assert "interrupt sent" in lines, run.output
    assert "stat:good ok -rw-r--r--" in lines and "umount rc=0" in lines, run.output


def test_request_timeout_aborts_a_hung_mount(tmp_path: Path) -> None:
    """VUFUSE_REQUEST_TIMEOUT=1 in the daemons' environment: the kernel's semantics make it
    15 s (the least), checked every 15 s; then the connection is aborted.  Meanwhile a
    second daemon never answers INIT: its caller gets ENOTCONN once 15 s have passed."""
    run = run_session("""
        export VUFUSE_REQUEST_TIMEOUT=1
        mkdir noinit; "$PY" "$HERE/../product/noinit_daemon.py" "$PWD/noinit" 2>/dev/null &
        mount_hostile "$PWD/m"
        "$PY" "$HERE/probe.py" "$PWD/noinit" stat:x > noinit.out & waiter=$!
        "$PY" "$HERE/probe.py" "$PWD/m" stat:good stat:hang1 stat:good
        wait $waiter
        cat noinit.out
    """, tmp_path, timeout=90)
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    assert lines[-4:] == ["stat:good ok -rw-r--r--", "stat:hang1 ECONNABORTED",
                          "stat:good ENOTCONN", "stat:x ENOTCONN"], run.output  # fmt: skip


def test_daemon_exiting_during_init(tmp_path: Path) -> None:
    """`vufuse mount` reports it at once (not after its 30 s timeout); the mount it made stays,
    failing ENOTCONN, until fusermount3 -u removes it, as on the kernel."""
    run = run_session("""
        mkdir m
        "$VUFUSE" mount "$PY" "$HERE/exit_on_init_daemon.py" "$PWD/m"; echo "mount rc=$?"
        "$PY" "$HERE/probe.py" "$PWD/m" stat:x stat:.
        "$VUFUSE" mounts | head -1
        fusermount3 -u "$PWD/m"; echo "fusermount3 rc=$?"
        "$VUFUSE" mounts
    """, tmp_path, timeout=25)  # well under `vufuse mount`'s own 30 s
    lines = run.output.splitlines()
    assert run.status == 0, run.output
    # Whichever `vufuse mount` sees first: the connection dropping (1) or the exit status (3).
    assert "exitinit: read INIT, exiting" in lines, run.output
    assert "mount rc=1" in lines or "mount rc=3" in lines, run.output
    assert "stat:x ENOTCONN" in lines and "stat:. ENOTCONN" in lines
    assert any(line.endswith("disconnected") for line in lines)
    assert "fusermount3 rc=0" in lines and "no FUSE mounts" in lines
