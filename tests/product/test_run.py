"""`vufuse run` options (--debug[=FILE], --stats) and `vufuse shell`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from producthelp import HELLO_TEXT, environment, in_session, mount_hello, vufuse

pytestmark = pytest.mark.e2e


def test_run_keeps_status_and_output() -> None:
    result = vufuse("run", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (result.status, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_run_is_quiet_by_default(mnt: Path) -> None:
    result = in_session(f'{mount_hello(mnt)}; cat "{mnt}/hello"; "$VUFUSE" umount "{mnt}"')
    assert result.status == 0 and result.stderr == ""
    assert result.stdout.strip() == HELLO_TEXT


def test_bare_debug_does_not_swallow_the_command() -> None:
    result = vufuse("run", "--debug", "cat", "/proc/self/mounts")
    assert result.status == 0
    assert "/proc/self/mounts" in result.stderr  # the logged open, not a FILE name


def test_debug_to_file(mnt: Path, tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    result = in_session(f'{mount_hello(mnt)}; cat "{mnt}/hello"; "$VUFUSE" umount "{mnt}"',
                        f"--debug={log}")  # fmt: skip
    assert result.status == 0, result.stderr
    assert result.stderr == ""
    text = log.read_text()
    # FUSE requests and replies with decoded arguments (libfuse -d), error names
    assert "unique: " in text and "LOOKUP nodeid 1 b'hello' -> ok" in text and "-> ok" in text
    assert "READ nodeid " in text
    assert "openat(" in text and "mount(" in text and "umount2(" in text  # syscalls


def test_stats_at_exit(mnt: Path) -> None:
    result = in_session(f'{mount_hello(mnt)}; cat "{mnt}/hello" >/dev/null', "--stats")
    assert result.status == 0, result.stderr
    assert "syscalls trapped:" in result.stderr and "fast path (C):" in result.stderr
    assert str(mnt) in result.stderr and "READ" in result.stderr


def test_shell_sh() -> None:
    script = 'echo "ps1=$PS1"; echo "tag=$VUFUSE_PS1"; "$VUFUSE" status | head -1; exit 3\n'
    result = vufuse("shell", stdin=script, env=environment(SHELL="/bin/sh", PS1="$ "))
    assert result.status == 3, result.stderr
    assert "ps1=(vufuse) $ " in result.stdout
    assert "tag=(vufuse) " in result.stdout and "session     " in result.stdout


@pytest.mark.skipif(not os.access("/bin/bash", os.X_OK), reason="no bash")
def test_shell_bash_prompt(tmp_path: Path) -> None:
    """bash reads its ~/.bashrc as usual and then gets the prefix (no rc file touched)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text('PS1="mine> "\nexport FROM_RC=yes\n')
    script = 'echo "ps1=$PS1 rc=$FROM_RC"; exit 0\n'
    result = vufuse("shell", stdin=script, env=environment(SHELL="/bin/bash", HOME=str(home)))
    assert result.status == 0, result.stderr
    assert "ps1=(vufuse) mine>  rc=yes" in result.stdout
    assert (home / ".bashrc").read_text() == 'PS1="mine> "\nexport FROM_RC=yes\n'


def test_nothing_left_behind(mnt: Path) -> None:
    result = in_session(f'{mount_hello(mnt)}; echo "$VUFUSE_SESSION"')
    assert result.status == 0, result.stderr
    runtime_dir = result.stdout.strip()
    assert runtime_dir and not os.path.exists(runtime_dir)


def test_sessions_do_not_nest() -> None:
    """One seccomp listener per process tree: a `vufuse run` inside a session says so."""
    result = in_session('"$VUFUSE" run -- true || echo "nested rc=$?"')
    assert result.status == 0, result.stderr
    assert "nested rc=1" in result.stdout
    assert "sessions do not nest" in result.stderr and "Traceback" not in result.stderr
