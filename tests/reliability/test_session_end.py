"""Session end: killing vufuse ends every process of the session, daemons first get their
unmount (SIGTERM, SIGHUP, or the command exiting), and nothing is left in /proc, in the
runtime dir, or as a mount.  After SIGKILL (no teardown possible) the keeper still kills
everything and the next session removes the stale runtime dir.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from reliabilityhelp import alive, finish, run_session, start_session

pytestmark = pytest.mark.e2e

SESSION = """
    mount_hostile "$PWD/m"
    mkdir m2; "$VUFUSE" mount "$PY" "$MEMFS" "$PWD/m2"
    echo data > m2/file
    sleep 1000 & echo $! >> pids
    setsid sh -c 'sleep 1001 & echo $! >> pids; wait' &
    cd m2 && (sleep 1002 & echo $! >> ../pids) && cd ..
    pgrep -f "hostile_daemon.py $PWD/m" >> pids
    pgrep -f "memfs.py $PWD/m2" >> pids
    echo $$ >> pids
    echo "$VUFUSE_SESSION" > runtime
    while [ "$(wc -l < pids)" -lt 6 ]; do sleep 0.05; done
    touch ready
    wait
"""


def _start_and_kill(tmp_path: Path, signum: int) -> tuple[list[int], Path]:
    process = start_session(SESSION, tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():
        assert process.poll() is None and time.monotonic() < deadline, finish(process).output
        time.sleep(0.05)
    pids = [int(line) for line in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 6 and all(alive(pid) for pid in pids)
    process.send_signal(signum)
    run = finish(process, timeout=60)
    assert run.status == (128 + signum if signum != signal.SIGKILL else -signal.SIGKILL), run
    return pids, Path((tmp_path / "runtime").read_text().strip())


def _all_gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_killing_vufuse_unmounts_then_ends_everything(tmp_path: Path, signum: int) -> None:
    pids, runtime = _start_and_kill(tmp_path, signum)
    assert _all_gone(pids), [pid for pid in pids if alive(pid)]
    assert not runtime.exists()
    log = (tmp_path / "m.log").read_text().splitlines()
    assert log[-1] == "read ENODEV", log[-5:]  # the daemon saw its unmount
    assert os.listdir(tmp_path / "m") == [] and os.listdir(tmp_path / "m2") == []


def test_command_exit_unmounts_daemons_first(tmp_path: Path) -> None:
    run = run_session('mount_hostile "$PWD/m"; echo "$VUFUSE_SESSION" > runtime', tmp_path)
    assert run.status == 0, run.output
    assert (tmp_path / "m.log").read_text().splitlines()[-1] == "read ENODEV"
    assert not Path((tmp_path / "runtime").read_text().strip()).exists()


def test_sigkill_of_vufuse_still_ends_everything(tmp_path: Path) -> None:
    pids, runtime = _start_and_kill(tmp_path, signal.SIGKILL)
    assert _all_gone(pids), [pid for pid in pids if alive(pid)]
    assert os.listdir(tmp_path / "m") == [] and os.listdir(tmp_path / "m2") == []
    (tmp_path / "next").mkdir()
    assert run_session("true", tmp_path / "next").status == 0
    assert not runtime.exists()  # the next session removed the stale runtime dir
