"""poll, ppoll, select, pselect6 and epoll on files of a mount (issue 6, decisions.md D26).

A daemon that implements poll is asked (FUSE POLL with a poll handle) and the caller sleeps
until the daemon's NOTIFY_POLL makes the file ready; a daemon without poll (ENOSYS) has files
that are always ready, as the kernel's DEFAULT_POLLMASK.  The daemons: tests/e2e/pollfs.py on
our pyfuse3 API, and libfuse's own `poll` example with its `poll_client` (select over 16
files), which prints the same kind of lines on kernel FUSE.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2ehelp import Run, Sessions, libfuse_example

pytestmark = pytest.mark.e2e

MODES = ("poll", "ppoll", "select", "pselect", "epoll")
HERE = Path(__file__).resolve().parent

SCRIPT = r"""
mkdir -p mnt
export POLLFS_LOG=$PWD/daemon.log
: > "$POLLFS_LOG"
"$PY" @HERE@/pollfs.py "$PWD/mnt" @OPTIONS@ 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
for mode in @MODES@; do
    : > "$POLLFS_LOG"
    echo "== $mode"
    "$PY" @HERE@/poll_probe.py $mode @PROBE@ || echo "probe failed"
    grep -c "schedule=1" "$POLLFS_LOG" | sed 's/^/scheduled polls: /'
done
fusermount3 -u "$PWD/mnt"; wait $daemon; echo "daemon rc=$?"
"""


#: What each wait returns once the file is readable (the fd is 512 under vufuse).
WOKE = {
    "poll": "woke [(512, 1)]", "ppoll": "woke (1, 1)", "select": "woke True",
    "pselect": "woke (1, True)", "epoll": "woke [(512, 1)]",
}


def _script(options: str, probe: str) -> str:
    return (SCRIPT.replace("@HERE@", str(HERE)).replace("@OPTIONS@", options)
            .replace("@PROBE@", probe).replace("@MODES@", " ".join(MODES)))


def _sections(output: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("== "):
            current = sections.setdefault(line[3:], [])
        else:
            current.append(line)
    return sections


def _each_mode_printed(run: Run, *expected: str) -> None:
    """Every syscall's section holds the `expected` lines (and its WOKE line), no failure."""
    assert run.status == 0, run.output
    sections = _sections(run.output)
    for mode in MODES:
        lines = sections.get(mode, [])
        for line in (*expected, WOKE[mode]):
            assert line in lines, (mode, run.output)
        assert "probe failed" not in lines, (mode, run.output)


def test_poll_sleeps_until_the_daemon_notifies(sessions: Sessions) -> None:
    """Each syscall sleeps after the daemon got a poll handle, and wakes at its notify."""
    run = sessions.run(_script("", ""), timeout=240)
    _each_mode_printed(run, "fd in the virtual range True", "before False",
                       "still waiting after the scheduled poll True", "read b'hello'")
    assert "daemon rc=0" in run.lines(), run.output


def test_poll_without_daemon_poll_is_always_ready(sessions: Sessions) -> None:
    """A daemon without poll: every wait returns at once, readable (DEFAULT_POLLMASK)."""
    run = sessions.run(_script("--no-poll", "nopoll"), timeout=240)
    _each_mode_printed(run, "before True", "read b''", "scheduled polls: 0")


LIBFUSE_POLL = r"""
mkdir -p pm
"$LIBFUSE/poll" -f "$PWD/pm" > daemon.out 2>&1 &
daemon=$!
wait_mounted "$PWD/pm" || { cat daemon.out; exit 1; }
(cd pm && "$LIBFUSE/poll_client"; echo "client rc=$?")
fusermount3 -u "$PWD/pm"; wait $daemon; echo "daemon rc=$?"
grep -c '^NOTIFY' daemon.out | sed 's/^/notifications: /'
"""


def test_libfuse_poll_example(sessions: Sessions) -> None:
    """poll_client selects over the 16 files of libfuse's poll example: each of its 16 rounds
    wakes with a file the producer filled and reads its bytes (never an empty read, which an
    always-ready file would give), as on kernel FUSE."""
    libfuse_example("poll")
    libfuse_example("poll_client")
    run = sessions.run(LIBFUSE_POLL, timeout=120)
    assert run.status == 0, run.output
    rounds = [line for line in run.lines() if re.fullmatch(r"(?:(?:_:   |[0-9A-F]:\d\d ))+", line)]
    assert len(rounds) == 16, run.output
    for line in rounds:
        ready = re.findall(r"([0-9A-F]):(\d\d)", line)
        assert ready, run.output  # select returned with nothing ready
        assert all(int(count) >= 1 for _, count in ready), run.output
    assert "client rc=0" in run.lines() and "daemon rc=0" in run.lines(), run.output
    notified = next(line for line in run.lines() if line.startswith("notifications: "))
    assert int(notified.split()[-1]) >= 1, run.output


SIGNALS = r"""
mkdir -p mnt
export POLLFS_LOG=$PWD/daemon.log
"$PY" @HERE@/pollfs.py "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
for mode in poll-signal ppoll-mask; do
    "$PY" @HERE@/poll_probe.py $mode || echo "probe failed"
done
fusermount3 -u "$PWD/mnt"; wait $daemon; echo "daemon rc=$?"
"""


def test_a_signal_ends_the_wait(sessions: Sessions) -> None:
    """A caught signal ends a poll that waits on the daemon (EINTR: the handler runs), and
    ppoll waits with its own mask: a signal the thread blocks but ppoll lets in ends it too
    (as on kernel FUSE)."""
    run = sessions.run(SIGNALS.replace("@HERE@", str(HERE)), timeout=120)
    assert run.status == 0, run.output
    for line in ("poll interrupted by the handler", "ppoll -1 errno 4", "daemon rc=0"):
        assert line in run.lines(), run.output


@pytest.mark.kernel
def test_the_same_on_kernel_fuse(tmp_path: Path) -> None:
    """The reference (root pass): the same probe against the same daemon on kernel FUSE
    prints the lines the vufuse tests above expect (but for the fd numbers)."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.skip("needs root, /dev/fuse and fusermount3")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = tmp_path / "daemon.log"
    env = dict(os.environ, POLLFS_LOG=str(log), PYTHONPATH=str(HERE.parents[1]))
    daemon = subprocess.Popen([sys.executable, str(HERE / "pollfs.py"), str(mnt)], env=env)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            assert daemon.poll() is None and time.monotonic() < deadline, "no mount"
            time.sleep(0.05)
        for mode in (*MODES, "poll-signal", "ppoll-mask"):
            log.write_text("")
            probe = subprocess.run([sys.executable, str(HERE / "poll_probe.py"), mode],
                                   cwd=tmp_path, env=env, capture_output=True, text=True,
                                   timeout=120)
            lines = probe.stdout.splitlines()
            assert probe.returncode == 0, probe.stdout + probe.stderr
            if mode == "poll-signal":
                assert "poll interrupted by the handler" in lines, probe.stdout
                continue
            if mode == "ppoll-mask":
                assert "ppoll -1 errno 4" in lines, probe.stdout
                continue
            lines = [re.sub(r"\[\(\d+, 1\)\]", "[(FD, 1)]", line) for line in lines]
            woke = re.sub(r"\[\(\d+, 1\)\]", "[(FD, 1)]", WOKE[mode])
            for expected in ("fd in the virtual range False", "before False",
                             "still waiting after the scheduled poll True", woke,
                             "read b'hello'"):
                assert expected in lines, (mode, probe.stdout)
            assert log.read_text().count("schedule=1") >= 1, log.read_text()
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
        daemon.wait(20)
