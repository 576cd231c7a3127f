"""`vufuse --help`, usage errors (one line, exit 2), and the in-session commands outside one."""

from __future__ import annotations

import pytest
from producthelp import environment, vufuse

COMMANDS = ["run", "shell", "mount", "umount", "mounts", "status", "abort", "stats"]
IN_SESSION = [["mount", "true"], ["umount", "/x"], ["mounts"], ["status"], ["abort", "/x"],
              ["stats"]]  # fmt: skip


def test_help() -> None:
    result = vufuse("--help")
    assert result.status == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command: str) -> None:
    result = vufuse(command, "--help")
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("usage: vufuse " + command)


@pytest.mark.parametrize("arguments", [
    [], ["bogus"], ["run"], ["run", "--"], ["mount"], ["umount"], ["abort"],
    ["umount", "-q", "/x"], ["mount", "--timeout", "soon", "x"], ["mounts", "extra"],
])  # fmt: skip
def test_bad_usage_is_one_line_and_exit_2(arguments: list[str]) -> None:
    result = vufuse(*arguments)
    assert result.status == 2
    assert result.stderr.startswith("vufuse: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("arguments", IN_SESSION)
def test_outside_a_session(arguments: list[str]) -> None:
    result = vufuse(*arguments)
    assert result.status == 2
    assert result.stderr.count("\n") == 1
    assert "not inside a vufuse session" in result.stderr


@pytest.mark.parametrize("arguments", IN_SESSION)
def test_session_gone(arguments: list[str], tmp_path: object) -> None:
    """A stale VUFUSE_SESSION (its session has ended): one line, exit 2."""
    env = environment(VUFUSE_SESSION=f"{tmp_path}/vufuse-gone")
    result = vufuse(*arguments, env=env)
    assert result.status == 2
    assert result.stderr.count("\n") == 1
    assert "cannot reach the session" in result.stderr


def test_mount_timeout_must_be_positive() -> None:
    result = vufuse("mount", "--timeout", "0", "true")
    assert result.status == 2
