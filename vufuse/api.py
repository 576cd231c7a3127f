"""The Python API: a vufuse session driven from a program outside it.

```python
import vufuse

with vufuse.Session() as session:
    session.mount("squashfuse", "image.sqfs", "/tmp/mnt")    # any FUSE program
    print(session.run(["ls", "/tmp/mnt"]).stdout)
    session.unmount("/tmp/mnt")
```

The calling process is not traced; the session is a ``vufuse run`` child running a small agent
(:mod:`vufuse.agent`) that runs each command inside the session, where the mounts exist
(docs/api.md, docs/decisions.md D7).  Mounts and the agent's control requests go through the
same commands a person types (`vufuse mount`, `vufuse umount`) and the session's control socket.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

StrPath = str | os.PathLike[str]
START_TIMEOUT = 120.0
"""How long a session may take to start (a loaded 2-CPU CI machine)."""
STOP_TIMEOUT = 60.0
_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])


def _with_project_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this vufuse first on PYTHONPATH: `python -m vufuse.*` in the session finds
    the same vufuse as the caller even when it is not installed."""
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != _PROJECT_ROOT]
    env["PYTHONPATH"] = os.pathsep.join([_PROJECT_ROOT, *rest])
    return env


class SessionError(Exception):
    """The session could not start, died, or refused a request."""


class MountError(SessionError):
    """`vufuse mount` failed: the daemon's own error output is in :attr:`output`."""

    def __init__(self, message: str, returncode: int, output: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output


@dataclass(frozen=True)
class OperationsClass:
    """A pyfuse3 Operations class by reference, for one that this interpreter cannot import:
    ``OperationsClass("/path/hello.py", "TestFs", python="/venv-with-pyfuse3/bin/python")``.
    `source` is a file or an importable module name; `python` runs the daemon."""

    source: StrPath
    name: str
    python: StrPath | None = None


@dataclass(frozen=True)
class Mount:
    """A live mount of the session (what `vufuse mounts` shows of it)."""

    mountpoint: Path
    pid: int
    """The process that called mount(2)."""
    fstype: str
    info: dict[str, Any] = field(repr=False, compare=False)


class Session:
    """A vufuse session: ``vufuse run`` with an agent inside that runs commands for us.

    `debug`: True logs FUSE requests and virtualized syscalls to stderr (a str: to that file);
    `env`: the environment of the session's commands (default: ours); `cwd`: its directory.
    """

    def __init__(
        self,
        *,
        debug: bool | StrPath = False,
        stats: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: StrPath | None = None,
        stderr: IO[Any] | int | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.env.pop("VUFUSE_SESSION", None)
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.debug = debug
        self.stats_at_end = stats
        self.stderr = stderr
        self.runtime_dir: str | None = None
        self.returncode: int | None = None
        """The session's exit status, once closed (0: the agent ended normally)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ life

    def start(self) -> Session:
        """Start `vufuse run` and wait for its agent to say hello."""
        if self._process is not None:
            raise SessionError("session already started")
        command = [sys.executable, "-m", "vufuse.cli", "run"]
        if self.debug is True:
            command.append("--debug")
        elif self.debug:
            command.append(f"--debug={os.fspath(self.debug)}")
        if self.stats_at_end:
            command.append("--stats")
        command += ["--", sys.executable, "-m", "vufuse.agent"]
        env = _with_project_path(dict(self.env))
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=env, cwd=self.cwd,
        )  # fmt: skip
        hello = self._receive(START_TIMEOUT)
        self.runtime_dir = str(hello["session"])
        return self

    def close(self) -> int:
        """End the session: every process in it is killed and every mount goes.
        Returns its exit status."""
        process = self._process
        if process is None or self.returncode is not None:
            return self.returncode or 0
        try:
            if process.poll() is None:
                self._request({"op": "exit"}, STOP_TIMEOUT)
        except SessionError:
            pass
        try:
            assert process.stdin is not None
            process.stdin.close()
        except OSError:
            pass
        try:
            self.returncode = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            self.returncode = process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return self.returncode

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands

    def run(
        self,
        args: Sequence[StrPath] | str,
        *,
        input: str | bytes | None = None,
        cwd: StrPath | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = False,
        text: bool = True,
        shell: bool = False,
    ) -> subprocess.CompletedProcess[Any]:
        """Run a command inside the session, like :func:`subprocess.run` with captured output.

        `args` is an argv, or with ``shell=True`` a string for ``/bin/sh -c``.  Output is
        decoded (UTF-8, undecodable bytes replaced) unless ``text=False``.  Raises
        :class:`subprocess.TimeoutExpired` after `timeout` seconds (the command is killed),
        :class:`subprocess.CalledProcessError` with ``check=True``, OSError (e.g.
        FileNotFoundError) when it cannot be started.
        """
        if shell:
            if not isinstance(args, str):
                raise TypeError("shell=True wants a string")
            argv = ["/bin/sh", "-c", args]
        elif isinstance(args, str | bytes | os.PathLike):
            argv = [os.fspath(args)]
        else:
            argv = [os.fspath(a) for a in args]
        data = input.encode() if isinstance(input, str) else input
        request: dict[str, Any] = {
            "op": "run", "argv": argv,
            "input": base64.b64encode(data).decode() if data is not None else None,
            "cwd": os.fspath(cwd) if cwd is not None else None,
            "env": dict(env) if env is not None else None, "timeout": timeout,
        }  # fmt: skip
        reply = self._request(request, None)
        stdout = base64.b64decode(reply["stdout"]) if "stdout" in reply else b""
        stderr = base64.b64decode(reply["stderr"]) if "stderr" in reply else b""
        out: str | bytes = stdout.decode(errors="replace") if text else stdout
        err: str | bytes = stderr.decode(errors="replace") if text else stderr
        if reply.get("timeout"):
            raise subprocess.TimeoutExpired(argv, timeout or 0, output=out, stderr=err)
        result = subprocess.CompletedProcess(argv, reply["returncode"], out, err)
        if check:
            result.check_returncode()
        return result

    def mount(
        self,
        filesystem: StrPath | type | OperationsClass,
        *args: StrPath,
        options: Sequence[str] = (),
        init_args: Sequence[Any] = (),
        init_kwargs: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Mount:
        """Mount a filesystem in the session and wait until it is live; returns the mount.

        `filesystem` is a FUSE program run with `args` (``mount("squashfuse", img, mnt)``), or
        a pyfuse3 Operations class -- ours or the real pyfuse3's -- with the mountpoint as the
        one argument (``mount(MyFs, mnt, init_args=(...))``): it is instantiated in a daemon
        process of the session (:mod:`vufuse.opsdaemon`), with the pyfuse3 mount `options`
        added to ``pyfuse3.default_options``.  Raises :class:`MountError` with the daemon's
        output when it fails to mount or to answer INIT within `timeout` seconds.
        """
        run_env = _with_project_path(dict(self.env if env is None else env))
        if isinstance(filesystem, type | OperationsClass):
            if len(args) != 1:
                raise TypeError("mounting an Operations class takes one argument: MOUNTPOINT")
            argv = self._operations_argv(filesystem, os.fspath(args[0]), options,
                                         init_args, init_kwargs, run_env)  # fmt: skip
        else:
            if options or init_args or init_kwargs:
                raise TypeError("options and init_args are for Operations classes; give a "
                                "FUSE program its options in args")  # fmt: skip
            argv = [os.fspath(filesystem), *(os.fspath(a) for a in args)]
        command = [sys.executable, "-m", "vufuse.cli", "mount", "--json", "--timeout",
                   str(timeout), "--", *argv]  # fmt: skip
        done = self.run(command, env=run_env, timeout=timeout + 60)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise MountError(lines[-1] if lines else f"vufuse mount: status {done.returncode}",
                             done.returncode, done.stderr)  # fmt: skip
        info = json.loads(done.stdout)
        return Mount(Path(info["mountpoint"]), info["pid"], info["fstype"], info)

    def _operations_argv(
        self,
        filesystem: type | OperationsClass,
        mountpoint: str,
        options: Sequence[str],
        init_args: Sequence[Any],
        init_kwargs: Mapping[str, Any] | None,
        env: dict[str, str],
    ) -> list[str]:
        """`python -m vufuse.opsdaemon ...` for a class, with a PYTHONPATH that finds it."""
        if isinstance(filesystem, OperationsClass):
            python = os.fspath(filesystem.python or sys.executable)
            source = os.fspath(filesystem.source)
            if source.endswith(".py") or os.sep in source:
                reference, file = f"__main__:{filesystem.name}", os.path.abspath(source)
            else:
                reference, file = f"{source}:{filesystem.name}", None
            paths = [_PROJECT_ROOT]
        else:
            python = sys.executable
            reference = f"{filesystem.__module__}:{filesystem.__qualname__}"
            file = inspect.getsourcefile(filesystem)
            paths = [_PROJECT_ROOT, *[p or os.getcwd() for p in sys.path]]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(
            paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]))  # fmt: skip
        argv = [python, "-m", "vufuse.opsdaemon", "--class", reference]
        if file is not None:
            argv += ["--file", file]
        if options:
            argv += ["-o", ",".join(options)]
        if init_args or init_kwargs:
            assert self.runtime_dir is not None
            fd, path = tempfile.mkstemp(prefix="init-", suffix=".pickle", dir=self.runtime_dir)
            with os.fdopen(fd, "wb") as out:
                pickle.dump((tuple(init_args), dict(init_kwargs or {})), out)
            argv += ["--init-args", path]
        return [*argv, mountpoint]

    def unmount(self, mount: Mount | StrPath, *, lazy: bool = False) -> None:
        """Unmount (`vufuse umount`; lazy: MNT_DETACH).  The daemon sees it as from the
        kernel and exits.  SessionError with the reason (e.g. busy) on failure."""
        path = mount.mountpoint if isinstance(mount, Mount) else mount
        command = [sys.executable, "-m", "vufuse.cli", "umount", *(["-z"] if lazy else []),
                   os.fspath(path)]  # fmt: skip
        done = self.run(command, env=_with_project_path(dict(self.env)))
        if done.returncode != 0:
            raise SessionError(done.stderr.strip() or f"umount: status {done.returncode}")

    def mounts(self) -> list[Mount]:
        """The session's FUSE mounts, through its control socket."""
        entries = self._control("mounts")["mounts"]
        return [Mount(Path(e["mountpoint"]), e["pid"], e["fstype"], e) for e in entries]

    def stats(self) -> dict[str, Any]:
        """What `vufuse stats --json` shows: syscall counts, per-mount per-opcode requests."""
        return self._control("stats")

    # ------------------------------------------------------------------ plumbing

    def _control(self, op: str) -> dict[str, Any]:
        if self.runtime_dir is None or self.returncode is not None:
            raise SessionError("session not running")
        from .control import Client  # the hypervisor's modules: only when asked

        with Client(runtime_dir=self.runtime_dir) as client:
            return client.request(op)

    def _request(self, request: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        process = self._process
        if process is None or self.returncode is not None:
            raise SessionError("session not running")
        with self._lock:
            assert process.stdin is not None
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
            except OSError:
                raise SessionError(self._death_message()) from None
            reply = self._receive(timeout)
        if not reply.get("ok"):
            if reply.get("errno"):
                raise OSError(reply["errno"], reply.get("error", ""))
            raise SessionError(str(reply.get("error", "request failed")))
        return reply

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        """One reply line from the agent (SessionError if the session ends or stays mute)."""
        process = self._process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise SessionError(f"the session did not answer within {timeout:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise SessionError(self._death_message())
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            raise SessionError(f"unexpected output from the session: {line[:200]!r}") from None
        return dict(reply)

    def _death_message(self) -> str:
        process = self._process
        assert process is not None
        try:
            status = process.wait(5)
        except subprocess.TimeoutExpired:
            return "the session's agent went away"
        self.returncode = status
        return f"the session ended (status {status})"
