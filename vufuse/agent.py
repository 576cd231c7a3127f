"""The in-session agent of :class:`vufuse.Session`: runs commands inside a session for a
process outside it.

:class:`vufuse.Session` starts ``vufuse run -- PYTHON -m vufuse.agent`` and talks to this agent
over the agent's stdin and stdout, one JSON object per line each way (docs/decisions.md D7).
Being a process of the session, everything the agent starts is traced and sees the session's
mounts.  The agent first says hello (``{"ok": true, "session": RUNTIME_DIR, "pid": PID}``), then
answers each request until ``{"op": "exit"}`` or the end of its stdin:

- ``{"op": "run", "argv": [...], "input": B64|null, "cwd": DIR|null, "env": {...}|null,
  "timeout": SECONDS|null}`` → ``{"ok": true, "returncode": N, "stdout": B64, "stderr": B64}``,
  with ``"timeout": true`` added when the command was killed for running too long, or
  ``{"ok": false, "errno": E, "error": TEXT}`` when it could not be started.

Its own fds 0 and 1 point at /dev/null once it has taken the protocol pipes, so nothing it
starts can write into the protocol.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any, BinaryIO


def _encode(data: bytes | None) -> str:
    return base64.b64encode(data or b"").decode()


def run(request: dict[str, Any]) -> dict[str, Any]:
    """One command to completion, its output captured."""
    argv = [str(word) for word in request["argv"]]
    data = request.get("input")
    env = request.get("env")
    if env is not None:
        env = {str(k): str(v) for k, v in env.items()}
        env.setdefault("VUFUSE_SESSION", os.environ["VUFUSE_SESSION"])
    try:
        done = subprocess.run(
            argv, input=base64.b64decode(data) if data is not None else None,
            stdin=subprocess.DEVNULL if data is None else None, capture_output=True,
            cwd=request.get("cwd"), env=env, timeout=request.get("timeout"),
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        return {"returncode": -9, "timeout": True, "stdout": _encode(expired.output),
                "stderr": _encode(expired.stderr)}  # fmt: skip
    except OSError as error:
        return {"ok": False, "errno": error.errno, "error": str(error)}
    return {"returncode": done.returncode, "stdout": _encode(done.stdout),
            "stderr": _encode(done.stderr)}  # fmt: skip


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until told to exit or the other side hangs up."""

    def send(reply: dict[str, Any]) -> None:
        reply.setdefault("ok", True)
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()

    send({"session": os.environ.get("VUFUSE_SESSION"), "pid": os.getpid()})
    for line in requests:
        try:
            request = json.loads(line)
            op = request["op"]
        except (ValueError, TypeError, KeyError):
            send({"ok": False, "error": "malformed request"})
            continue
        if op == "exit":
            send({})
            return
        if op == "run":
            try:
                send(run(request))
            except (KeyError, TypeError, ValueError) as error:
                send({"ok": False, "error": f"bad request: {error}"})
            continue
        send({"ok": False, "error": f"unknown op {op!r}"})


def main() -> None:
    """Take stdin/stdout for the protocol, put /dev/null in their place, serve."""
    requests = os.fdopen(os.dup(0), "rb")  # os.dup: not inherited by what we start
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    if not os.environ.get("VUFUSE_SESSION"):
        sys.exit("vufuse.agent: not inside a vufuse session")
    serve(requests, replies)


if __name__ == "__main__":
    main()
