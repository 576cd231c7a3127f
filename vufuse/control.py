"""The session's control socket: how `vufuse mount|mounts|status|abort|stats` reach the hypervisor.

An AF_UNIX stream socket ``$VUFUSE_SESSION/control``, mode 0600 in the session's 0700 runtime
dir, and the peer's uid (SO_PEERCRED) must be the session's: another user is refused even if
the file modes would let it connect.  The protocol is line-delimited JSON: one request object
``{"op": NAME, ...}`` per line, one reply object per line, ``{"ok": true, ...}`` or
``{"ok": false, "error": MESSAGE}``.  A malformed message gets an error reply; the
connection stays usable.

The server side also keeps what ``vufuse mounts`` and ``vufuse stats`` show that the mount
table does not: the mounting process and command, and per-opcode request counts and latencies
(:class:`RequestStats`, fed by the connection's ``observer`` hook).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from hypervisor.dispatch import Call
from hypervisor.extensions import MountRequest
from hypervisor.mounts import Mount
from hypervisor.session import Session

from .devfuse import FuseProvider
from .protocol import Opcode, request_opcode
from .session_fuse import Device, FuseMounting

log = logging.getLogger("vufuse.control")

SOCKET_NAME = "control"
TOKEN_VARIABLE = "VUFUSE_MOUNT_TOKEN"
"""Set by `vufuse mount` in the daemon's environment: the mount(2) it makes is recognised by it
(through forks, wrappers and daemonizing) in /proc/PID/environ."""
MAX_LINE = 64 * 1024
LATENCY_SAMPLES = 4096
"""Latencies kept per opcode (the most recent ones) for the percentiles."""
_PEERCRED = struct.Struct("3i")


def socket_path(runtime_dir: str | bytes) -> str:
    """The control socket of the session whose runtime dir is `runtime_dir`."""
    return os.path.join(os.fsdecode(runtime_dir), SOCKET_NAME)


# ---------------------------------------------------------------------- request statistics


@dataclass
class OpcodeStats:
    """Counts and recent latencies (seconds) of one opcode on one mount."""

    count: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, seconds: float, failed: bool) -> None:
        self.count += 1
        self.errors += failed
        self.latencies.append(seconds)
        if len(self.latencies) > LATENCY_SAMPLES:
            del self.latencies[: len(self.latencies) - LATENCY_SAMPLES]

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def percentile(fraction: float) -> float:
            if not ordered:
                return 0.0
            return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1e6

        return {
            "count": self.count,
            "errors": self.errors,
            "p50_us": round(percentile(0.50), 1),
            "p90_us": round(percentile(0.90), 1),
            "p99_us": round(percentile(0.99), 1),
            "max_us": round(ordered[-1] * 1e6, 1) if ordered else 0.0,
        }


class RequestStats:
    """Per-opcode counts of one FUSE connection (requests answered or failed)."""

    def __init__(self) -> None:
        self.by_opcode: dict[str, OpcodeStats] = {}
        self.background: dict[str, int] = {}

    def record(self, opcode: str, seconds: float, failed: bool) -> None:
        self.by_opcode.setdefault(opcode, OpcodeStats()).add(seconds, failed)

    def total(self) -> int:
        return sum(s.count for s in self.by_opcode.values()) + sum(self.background.values())

    def summary(self) -> dict[str, Any]:
        return {
            "requests": {name: s.summary() for name, s in sorted(self.by_opcode.items())},
            "background": dict(sorted(self.background.items())),
        }


_OPCODE_NAMES: dict[type, str] = {}
"""Request class → its opcode's name: the observer runs for every request sent."""


def _opcode_name(request: Any) -> str:
    name = _OPCODE_NAMES.get(type(request))
    if name is not None:
        return name
    try:
        name = Opcode(request_opcode(request)).name
    except (ValueError, KeyError, AttributeError, TypeError):
        return "UNKNOWN"
    _OPCODE_NAMES[type(request)] = name
    return name


def _describe_arguments(request: Any) -> str:
    text = ", ".join(repr(field) for field in request[1:])
    return text if len(text) <= 240 else text[:237] + "..."


def instrument(provider: FuseProvider, stats: RequestStats) -> None:
    """Count every request of `provider`'s connection (its ``observer`` hook)."""

    def observe(request: Any, seconds: float | None, error: int) -> None:
        name = _opcode_name(request)
        if seconds is None:
            stats.background[name] = stats.background.get(name, 0) + 1
            return
        stats.record(name, seconds, error != 0)
        if log.isEnabledFor(logging.DEBUG):
            outcome = "-" + errno.errorcode.get(error, str(error)) if error else "ok"
            log.debug("   %s nodeid %d %s -> %s", name, request[0].nodeid,
                      _describe_arguments(request), outcome)  # fmt: skip

    provider.connection.observer = observe


# ---------------------------------------------------------------------- the mounts we know


@dataclass(eq=False)
class MountRecord:
    """What `vufuse mounts` shows of one FUSE mount beyond the mount table."""

    mount: Mount
    device: Device | None
    provider: FuseProvider
    pid: int
    command: list[str]
    token: str | None
    stats: RequestStats = field(default_factory=RequestStats)
    aborted: bool = False
    protocol: str | None = None
    """7.MINOR once INIT has succeeded."""

    async def watch_init(self) -> None:
        """Note the protocol version once the daemon has answered INIT."""
        if await self.provider.wait_initialized() and self.provider.connection.usable:
            self.protocol = f"7.{self.provider.connection.negotiated.minor}"

    def state(self) -> str:
        connection = self.provider.connection
        if self.aborted:
            return "aborted"
        if not connection.initialized:
            return "waiting for INIT"
        if connection.usable:
            return "live"
        return "failed" if connection.connected else "disconnected"

    def describe(self) -> dict[str, Any]:
        connection = self.provider.connection
        mount = self.mount
        options = mount.mount_options()
        if mount.super_options:
            options += " (file system: " + mount.super_options + ")"
        return {
            "mountpoint": os.fsdecode(mount.mountpoint),
            "fstype": os.fsdecode(mount.fstype),
            "source": os.fsdecode(mount.source),
            "pid": self.pid,
            "command": self.command,
            "state": self.state(),
            "protocol": self.protocol,
            "options": options,
            "requests": self.stats.total(),
            "pending": connection.pending_count,
            "detached": mount.detached,
        }  # fmt: skip


def _read_proc(tid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{tid}/{name}", "rb") as file:
            return file.read()
    except OSError:
        return b""


def _token_of(tid: int) -> str | None:
    for entry in _read_proc(tid, "environ").split(b"\0"):
        if entry.startswith(TOKEN_VARIABLE.encode() + b"="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return None


class ControlledMounting(FuseMounting):
    """:class:`FuseMounting` that also remembers who mounted what, and counts requests."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.records: list[MountRecord] = []
        self.history: list[MountRecord] = []
        """Every mount of the session, unmounted ones too (`vufuse run --stats`)."""

    async def _mount(self, call: Call, request: MountRequest) -> int:
        result = await super()._mount(call, request)
        mount = self.session.mounts.at(request.target)
        if mount is None or not isinstance(mount.provider, FuseProvider):
            return result
        provider = mount.provider
        device = next((d for d in self.devices.values() if d.provider is provider), None)
        pid = call.tgid
        command = [a.decode(errors="replace") for a in _read_proc(pid, "cmdline").split(b"\0")]
        record = MountRecord(mount, device, provider, pid, [a for a in command if a],
                             _token_of(call.tid))  # fmt: skip
        instrument(provider, record.stats)
        self.records.append(record)
        self.history.append(record)
        if self.session.nursery is not None:
            self.session.nursery.start_soon(record.watch_init)
        return result

    def live_records(self) -> list[MountRecord]:
        """Records of mounts still in the table (forgets the unmounted ones)."""
        mounted = {id(m) for m in self.session.mounts}
        self.records = [r for r in self.records if id(r.mount) in mounted]
        return self.records

    def find(self, mountpoint: str) -> MountRecord | None:
        """The record of the topmost mount at `mountpoint` (canonical or as given)."""
        wanted = os.fsencode(mountpoint).rstrip(b"/") or b"/"
        for record in reversed(self.live_records()):
            if record.mount.mountpoint == wanted:
                return record
        return None

    def abort(self, record: MountRecord) -> None:
        """fusectl's ``abort``: requests fail with ENOTCONN; the daemon's device reads fail
        ENODEV and it is hung up on, as after an unmount (the mount itself stays)."""
        record.aborted = True
        record.provider.abort()
        nursery = self.session.nursery
        if record.device is not None and nursery is not None:
            nursery.start_soon(self._shut_down, record.device)


# ---------------------------------------------------------------------- the server


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected AF_UNIX socket."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    return int(_PEERCRED.unpack(data)[1])


class ControlServer:
    """Answers the control protocol for one session."""

    def __init__(
        self,
        session: Session,
        mounting: ControlledMounting,
        *,
        tracer_stats: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.session = session
        self.mounting = mounting
        self.started = time.time()
        self.tracer_stats = tracer_stats
        self.path = socket_path(session.runtime_dir)
        self.listener: socket.socket | None = None

    def bind(self) -> None:
        """Create the socket (before the command starts, so that it is there for it)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        listener.listen(16)
        self.listener = listener

    async def serve(self) -> None:
        """Accept connections until cancelled."""
        assert self.listener is not None
        listener = trio.socket.from_stdlib_socket(self.listener)
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    connection, _ = await listener.accept()
                    nursery.start_soon(self._serve_connection, connection)
        finally:
            listener.close()

    async def _serve_connection(self, connection: trio.socket.SocketType) -> None:
        with connection:
            try:
                uid = peer_uid(connection)  # type: ignore[arg-type]
            except OSError:
                return
            if uid != os.getuid():
                await _send(connection, {"ok": False, "error": "permission denied: not the "
                                         "session's user"})  # fmt: skip
                return
            buffer = b""
            while True:
                try:
                    data = await connection.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not await _send(connection, await self.answer(line)):
                        return
                if len(buffer) > MAX_LINE:
                    await _send(connection, {"ok": False, "error": "message too long"})
                    return

    async def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line (never raises)."""
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "malformed message: not JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            return {"ok": False, "error": 'malformed message: expected {"op": NAME, ...}'}
        handler = getattr(self, "op_" + request["op"].replace("-", "_"), None)
        if handler is None:
            return {"ok": False, "error": f"unknown op {request['op']!r}"}
        try:
            reply: dict[str, Any] = await handler(request)
        except (KeyError, TypeError, ValueError) as error:
            return {"ok": False, "error": f"bad request: {error}"}
        except Exception as error:  # a bug here must not take the session down
            log.debug("control op %s failed", request["op"], exc_info=True)
            return {"ok": False, "error": f"internal error: {error}"}
        reply.setdefault("ok", True)
        return reply

    # --- operations ---------------------------------------------------------------------------

    async def op_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "runtime_dir": os.fsdecode(self.session.runtime_dir),
            "uptime": round(time.time() - self.started, 3),
            "mounts": len(self.session.mounts),
            "open_virtual_files": sum(1 for _ in self.session.vfds),
        }

    async def op_mounts(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"mounts": [r.describe() for r in self.mounting.live_records()]}

    async def op_mount_state(self, request: dict[str, Any]) -> dict[str, Any]:
        """The state of the mount made by the daemon started with this token, if any."""
        token = request["token"]
        if not isinstance(token, str):
            raise TypeError("token must be a string")
        for record in reversed(self.mounting.live_records()):
            if record.token == token:
                return {"state": record.state(), "mount": record.describe()}
        return {"state": "none"}

    async def op_abort(self, request: dict[str, Any]) -> dict[str, Any]:
        mountpoint = request["mountpoint"]
        if not isinstance(mountpoint, str):
            raise TypeError("mountpoint must be a string")
        record = self.mounting.find(mountpoint)
        if record is None:
            return {"ok": False, "error": f"{mountpoint}: not a FUSE mount of this session",
                    "errno": errno.EINVAL}  # fmt: skip
        self.mounting.abort(record)
        return {}

    async def op_detach(self, request: dict[str, Any]) -> dict[str, Any]:
        """Lazy unmount by the session itself (`vufuse mount` cleaning up after a timeout)."""
        record = self.mounting.find(request["mountpoint"])
        if record is None:
            return {"ok": False, "error": "not mounted"}
        self.mounting.abort(record)
        await self.session.unmount(record.mount, lazy=True)
        return {}

    async def op_stats(self, request: dict[str, Any]) -> dict[str, Any]:
        syscalls: dict[str, int] = {}
        if self.tracer_stats is not None:
            try:
                syscalls = dict(self.tracer_stats())
            except Exception:  # a tracer without stats (tests)
                syscalls = {}
        mounts = []
        for record in self.mounting.live_records():
            entry = record.stats.summary()
            entry["mountpoint"] = os.fsdecode(record.mount.mountpoint)
            mounts.append(entry)
        return {"syscalls": syscalls, "mounts": mounts}


async def _send(connection: trio.socket.SocketType, reply: dict[str, Any]) -> bool:
    data = (json.dumps(reply) + "\n").encode()
    try:
        while data:
            sent = await connection.send(data)
            data = data[sent:]
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------- the client


class ControlError(Exception):
    """The session could not be reached, or it answered with an error."""


class NotInSession(ControlError):
    """No VUFUSE_SESSION, or its control socket is gone."""


def session_dir() -> str:
    """The runtime dir of the session we are in; NotInSession outside one."""
    runtime_dir = os.environ.get("VUFUSE_SESSION")
    if not runtime_dir:
        raise NotInSession("not inside a vufuse session (run it under `vufuse run` or "
                           "`vufuse shell`)")  # fmt: skip
    return runtime_dir


class Client:
    """One connection to the session's control socket."""

    def __init__(self, timeout: float = 10.0, runtime_dir: str | None = None) -> None:
        path = socket_path(runtime_dir or session_dir())
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as error:
            self.sock.close()
            raise NotInSession(f"cannot reach the session at {path}: "
                               f"{os.strerror(error.errno or errno.EIO)}") from None  # fmt: skip
        self.file = self.sock.makefile("rb")

    def request(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request; returns the reply (ControlError if it says ``ok: false``)."""
        try:
            self.sock.sendall((json.dumps({"op": op, **arguments}) + "\n").encode())
            line = self.file.readline(MAX_LINE)
        except OSError as error:
            raise ControlError(f"control socket: {error}") from None
        if not line:
            raise ControlError("the session closed the control connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error", "request failed")))
        return dict(reply)

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
