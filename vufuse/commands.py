"""The commands run inside a session: mount, umount, mounts, status, abort, stats.

They are ordinary processes of the session (traced like any other): `umount` is umount2(2),
which the hypervisor answers; the others talk to it over the control socket
(:mod:`vufuse.control`).  Outside a session each says so in one line and exits 2.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any, TextIO

from .control import TOKEN_VARIABLE, Client, ControlError, NotInSession, session_dir

USAGE_ERROR = 2
FAILED = 1
POLL_INTERVAL = 0.05
MNT_DETACH = 2
KILL_GRACE = 2.0
"""How long a daemon given up on has after SIGTERM before SIGKILL."""


def _fail(message: str, status: int = FAILED) -> int:
    sys.stderr.write(f"vufuse: {message}\n")
    return status


def dispatch(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    """Run the in-session command `options.command`; its exit status."""
    command = options.command
    try:
        session_dir()
        if command == "mount":
            argv = list(options.argv)
            if argv and argv[0] == "--":
                argv = argv[1:]
            if not argv:
                return _fail("mount: missing FSPROG", USAGE_ERROR)
            if not options.timeout > 0:
                return _fail("mount: --timeout must be positive", USAGE_ERROR)
            return mount(argv, options.timeout, show=options.json)
        if command == "umount":
            with Client() as client:
                client.request("ping")  # a session, and a live one
            return umount(options.mountpoint, options.lazy)
        with Client() as client:
            if command == "abort":
                path = os.path.abspath(options.mountpoint)
                try:
                    client.request("abort", mountpoint=path)
                except ControlError:
                    client.request("abort", mountpoint=os.path.realpath(path))
                return 0
            reply = client.request(command)
    except NotInSession as error:
        return _fail(f"{command}: {error}", USAGE_ERROR)
    except ControlError as error:
        return _fail(f"{command}: {error}")
    if options.json:
        print(json.dumps(reply, indent=2))
    elif command == "mounts":
        print_mounts(reply["mounts"], sys.stdout)
    elif command == "status":
        print_status(reply, sys.stdout)
    else:
        print_stats(reply, sys.stdout)
    return 0


# ---------------------------------------------------------------------- mount / umount


def mount(argv: list[str], timeout: float, show: bool = False) -> int:
    """Start the daemon, wait (at most `timeout` s) until its mount answered INIT; `show`
    prints the live mount's description (JSON) on stdout."""
    with Client() as client:
        client.request("ping")
        token = secrets.token_hex(8)
        logs = os.path.join(session_dir(), "logs")
        os.makedirs(logs, mode=0o700, exist_ok=True)
        log_path = os.path.join(logs, f"mount-{token}.log")
        env = dict(os.environ)
        env[TOKEN_VARIABLE] = token
        with open(log_path, "wb") as log:
            try:
                daemon = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,
                )  # fmt: skip
            except OSError as error:
                return _fail(f"mount: {argv[0]}: {error.strerror}")
        try:
            status = _wait_until_live(client, daemon, token, log_path, argv[0], timeout)
            if status == 0 and show:
                print(json.dumps(_mount_state(client, token)["mount"]))
            return status
        except KeyboardInterrupt:
            _give_up(client, daemon, _mount_state(client, token))
            return 130


def _mount_state(client: Client, token: str) -> dict[str, Any]:
    return client.request("mount-state", token=token)


def _give_up(client: Client, daemon: subprocess.Popen[bytes], state: dict[str, Any]) -> None:
    """Detach the daemon's mount, if it made one, and stop it."""
    if state["state"] != "none":
        client.request("detach", mountpoint=state["mount"]["mountpoint"])
    _stop(daemon)


def _wait_until_live(
    client: Client,
    daemon: subprocess.Popen[bytes],
    token: str,
    log_path: str,
    program: str,
    timeout: float,
) -> int:
    """Poll the session for the mount made under `token`: 0 once live, else the failure."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {"state": "none"}
    while time.monotonic() < deadline:
        state = _mount_state(client, token)
        if state["state"] == "live":
            return 0
        if state["state"] in ("failed", "disconnected", "aborted"):
            _show_log(log_path)
            return _fail(f"mount: {program} failed to initialise its mount "
                         f"({state['state']})")  # fmt: skip
        status = daemon.poll()
        if status is not None and state["state"] == "none" and _gave_up_mounting(
            client, token, status
        ):
            _show_log(log_path)
            return _fail(f"mount: {program} exited with status {status} without "
                         "mounting", status if 0 < status < 128 else FAILED)  # fmt: skip
        time.sleep(POLL_INTERVAL)
    _show_log(log_path)
    _give_up(client, daemon, state)
    what = "answer INIT" if state["state"] != "none" else "mount"
    return _fail(f"mount: {program} did not {what} within {timeout:g} s")


def _gave_up_mounting(client: Client, token: str, status: int) -> bool:
    """False while the exited daemon may still mount: it exited 0 and a process it left
    behind (a daemonized child, a wrapper's daemon) still carries the token, or the mount
    appeared since the last look.  A failure status, or nothing left, is final."""
    if status != 0:
        return True
    if _token_holders(token):
        return False
    return _mount_state(client, token)["state"] == "none"


def _token_holders(token: str) -> bool:
    """Whether a live process of ours has `token` in its environment."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as file:
                if needle in file.read().split(b"\0"):
                    return True
        except OSError:  # gone, or not ours
            continue
    return False


def _show_log(path: str) -> None:
    try:
        with open(path, "rb") as log:
            data = log.read()
    except OSError:
        return
    sys.stderr.buffer.write(data)
    sys.stderr.flush()


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon's process group, SIGKILL it if it lingers."""
    for signum, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(daemon.pid, signum)
        except ProcessLookupError:
            pass
        try:
            daemon.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def umount(mountpoint: str, lazy: bool) -> int:
    """umount2(MNT[, MNT_DETACH]) from this process: the hypervisor answers it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.umount2(os.fsencode(mountpoint), MNT_DETACH if lazy else 0) != 0:
        error = ctypes.get_errno()
        return _fail(f"umount: {mountpoint}: {os.strerror(error)}")
    return 0


# ---------------------------------------------------------------------- output


def print_mounts(mounts: list[dict[str, Any]], out: TextIO) -> None:
    """One block per mount: where, who serves it, protocol, options, request counts."""
    if not mounts:
        out.write("no FUSE mounts\n")
    for entry in mounts:
        out.write(f"{entry['mountpoint']}  type {entry['fstype']}  {entry['state']}\n"
                  f"  daemon    pid {entry['pid']}: {' '.join(entry['command'])}\n"
                  f"  protocol  {entry['protocol'] or '-'}\n"
                  f"  options   {entry['options']}\n"
                  f"  requests  {entry['requests']} ({entry['pending']} pending)\n")  # fmt: skip


def print_status(reply: dict[str, Any], out: TextIO) -> None:
    """The session in a few lines."""
    out.write(f"session     {reply['runtime_dir']}\n"
              f"hypervisor  pid {reply['pid']}, uid {reply['uid']}, up {reply['uptime']:.1f} s\n"
              f"mounts      {reply['mounts']}\n"
              f"open files  {reply['open_virtual_files']} (virtual)\n")  # fmt: skip


def print_stats(reply: dict[str, Any], out: TextIO) -> None:
    """Trapped syscalls (fast path / slow path), then each mount's requests per opcode."""
    syscalls = reply.get("syscalls", {})
    if syscalls:
        fast = syscalls.get("fast_continue", 0)
        slow = syscalls.get("queued", 0)
        out.write(f"syscalls trapped: {syscalls.get('notifications', 0)}  "
                  f"fast path (C): {fast}  slow path (Python): {slow}\n")  # fmt: skip
        details = ", ".join(f"{k}={v}" for k, v in sorted(syscalls.items()))
        out.write(f"  {details}\n")
    for entry in reply.get("mounts", []):
        out.write(f"{entry['mountpoint']}\n")
        out.write(f"  {'OPCODE':<16}{'COUNT':>8}{'ERRORS':>8}{'p50 us':>10}{'p90 us':>10}"
                  f"{'p99 us':>10}{'max us':>10}\n")  # fmt: skip
        for name, s in entry["requests"].items():
            out.write(
                f"  {name:<16}{s['count']:>8}{s['errors']:>8}{s['p50_us']:>10.1f}"
                f"{s['p90_us']:>10.1f}{s['p99_us']:>10.1f}{s['max_us']:>10.1f}\n"
            )
        for name, count in entry.get("background", {}).items():
            out.write(f"  {name:<16}{count:>8}  (no reply awaited)\n")
