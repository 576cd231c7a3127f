"""The control socket: mode 0600, SO_PEERCRED, malformed messages."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import trio
from producthelp import in_session

import vufuse.control as control

CLIENT = str(Path(__file__).with_name("control_client.py"))


@pytest.mark.e2e
def test_socket_is_private() -> None:
    result = in_session('stat -c "%a %u" "$VUFUSE_SESSION" "$VUFUSE_SESSION/control"')
    assert result.status == 0, result.stderr
    uid = os.getuid()
    assert result.stdout.split("\n")[:2] == [f"700 {uid}", f"600 {uid}"]


@pytest.mark.e2e
def test_malformed_messages_get_error_replies() -> None:
    result = in_session(f'"$PY" "{CLIENT}" malformed; "$VUFUSE" status >/dev/null; echo alive')
    assert result.status == 0, result.stderr
    lines = result.stdout.splitlines()
    replies = [json.loads(line) for line in lines[: len(lines) - 2]]
    assert [r["ok"] for r in replies] == [False] * 10 + [True]
    assert all(r["error"] for r in replies[:10])
    assert lines[-2:] == ["status ok: True", "alive"]


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another uid (root pass)")
def test_another_uid_is_refused() -> None:
    """A session run by root (the root pass of `make test` runs it); another uid is refused
    even with the modes opened for it."""
    result = in_session(f'"$PY" "{CLIENT}" as-uid 65534')
    assert result.status == 0, result.stderr
    assert "child status: 0" in result.stdout, result.stdout
    line = result.stdout.split("other uid got: ")[1].splitlines()[0]
    reply = json.loads(line)
    assert reply["ok"] is False and "permission denied" in reply["error"]


class _FakeSession:
    runtime_dir = b"/nonexistent"
    mounts: list[object] = []
    vfds: list[object] = []


class _FakeMounting:
    def live_records(self) -> list[object]:
        return []


def _exchange(monkeypatch: pytest.MonkeyPatch, uid: int, message: bytes) -> bytes:
    """Serve one connection of a socketpair whose peer claims `uid`."""
    monkeypatch.setattr(control, "peer_uid", lambda sock: uid)
    server = control.ControlServer(_FakeSession(), _FakeMounting())  # type: ignore[arg-type]
    ours, theirs = socket.socketpair()
    theirs.sendall(message)
    theirs.shutdown(socket.SHUT_WR)

    async def serve() -> None:
        await server._serve_connection(trio.socket.from_stdlib_socket(ours))

    trio.run(serve)
    data = theirs.recv(65536)
    theirs.close()
    return data


def test_refusal_logic_with_fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = json.loads(_exchange(monkeypatch, os.getuid() + 1, b'{"op": "status"}\n'))
    assert reply == {"ok": False, "error": "permission denied: not the session's user"}


def test_own_uid_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _exchange(monkeypatch, os.getuid(), b'{"op": "ping"}\nnot json\n{"op": "mounts"}\n')
    replies = [json.loads(line) for line in data.splitlines()]
    assert replies[0] == {"ok": True}
    assert replies[1]["ok"] is False
    assert replies[2] == {"ok": True, "mounts": []}


def test_overlong_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _exchange(monkeypatch, os.getuid(), b"x" * (control.MAX_LINE + 10))
    assert json.loads(data)["error"] == "message too long"
