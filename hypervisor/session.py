"""A traced session: spawn the command through the C core, serve its notifications, tear down.

One trio task drains `Tracer.take()` whenever the core's eventfd is readable and starts one
handler task per notification, so a slow provider never blocks other tracees.  Another waits
for the command's exit status.  When the command has exited, every process left in the session
is killed (the keeper does it), every virtual file is released and the runtime directory is
removed: nothing survives the session.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import trio

from . import mountinfo, syscalls
from .cwd import StandInDirectories
from .dispatch import ANSWERED, CONTINUE, Call, Dispatcher
from .extensions import Extensions
from .handlers.fdtable import DeathWatch
from .handlers.mapping import SnapshotCache
from .lowfd import LowFdStandIns
from .mounts import Mount, MountTable
from .paths import Location, PathResolver, VirtualLocation
from .process import ProcessTable
from .signals import SignalWatch
from .vfd import VirtualFdTable, socket_inode

log = logging.getLogger("vufuse.hypervisor")

TracerFactory = Callable[..., Any]


def default_tracer_factory(spec: list[tuple[int, ...]], fd_base: int, max_nr: int) -> Any:
    """The C core (imported late so that pure-Python parts work without it)."""
    from . import _tracer

    for name in ("ACTION_TRAP", "ACTION_TRAP_FD", "ACTION_ENOSYS", "ACTION_PYTHON",
                 "ACTION_DUMPABLE", "ACTION_TRAP_CWD", "ACTION_TRAP_VIRTUAL"):
        if getattr(_tracer, name) != getattr(syscalls, name):
            raise RuntimeError(f"hypervisor._tracer disagrees on {name}")
    return _tracer.Tracer(spec, fd_base=fd_base, max_nr=max_nr)


def _ignore(names: list[bytes]) -> None:
    """For test tracers without special-name support."""


def exit_code(wait_status: int) -> int:
    """The shell's view of a wait status: the exit code, or 128 + the killing signal."""
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return 255


def runtime_base() -> str:
    """Where sessions keep their runtime directory ($XDG_RUNTIME_DIR if usable, else tmp)."""
    candidate = os.environ.get("XDG_RUNTIME_DIR")
    if candidate and os.access(candidate, os.W_OK | os.X_OK):
        return candidate
    return tempfile.gettempdir()


def remove_stale_runtime_dirs(base: str) -> None:
    """Remove runtime dirs of sessions whose vufuse died without teardown (SIGKILL)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != "vufuse" or not parts[1].isdigit():
            continue
        path = os.path.join(base, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


class Session:
    """The hypervisor of one `vufuse run`: mount table, fd table, cwd stand-ins, handlers."""

    def __init__(
        self,
        mounts: MountTable | None = None,
        *,
        tracer_factory: TracerFactory = default_tracer_factory,
        runtime_dir: str | None = None,
    ) -> None:
        self.mounts = mounts if mounts is not None else MountTable()
        if runtime_dir is None:
            base = runtime_base()
            remove_stale_runtime_dirs(base)
            runtime_dir = tempfile.mkdtemp(prefix=f"vufuse-{os.getpid()}-", dir=base)
        self.runtime_dir = os.fsencode(os.path.realpath(runtime_dir))
        self.stand_ins = StandInDirectories(self.runtime_dir + b"/cwd")
        self.resolver = PathResolver(self.mounts, self._translate)
        self.processes = ProcessTable()
        self.dispatcher = Dispatcher()
        self.tracer: Any = tracer_factory(syscalls.build_spec(), syscalls.FD_BASE, syscalls.MAX_NR)
        self.vfds = VirtualFdTable(self.tracer.add_virtual_inode, self.tracer.remove_virtual_inode)
        self.low_fds = LowFdStandIns()
        self.fd_drops = DeathWatch()
        self.signal_watch = SignalWatch()
        self.snapshots = SnapshotCache()
        self.vfds.before_release = self.fd_drops.last_close
        self.mounts.on_change(self._push_prefixes)
        self.extensions = Extensions(getattr(self.tracer, "set_special_names", _ignore))
        self.nursery: trio.Nursery | None = None
        """The session's nursery while it runs: extensions start their tasks in it."""
        self.extensions.add_special_file(mountinfo.NAMES, mountinfo.matches, self._open_mount_list)
        # readlink of /proc/PID/exe must reach Python: an image run from a mount is a memfd
        # (handlers/execution.py) that reads as its virtual path.  Never an open's answer.
        self.extensions.add_special_file([b"exe"], lambda _path: False, self._open_mount_list)
        self.exec_images: dict[bytes, bytes] = {}
        """`/memfd:vufuse-exec:N (deleted)` → the virtual path of the image it holds."""
        from .handlers import register_all

        register_all(self.dispatcher)

    # --- the C core's view ------------------------------------------------------------------
    def _push_prefixes(self, prefixes: list[bytes]) -> None:
        # The stand-in root, and a name that does not exist beneath it: with a prefix that
        # has no real directory, the C fast path judges relative paths by their base's name
        # (lexically), so "../../x" from a stand-in cwd is queued even when it resolves
        # outside.  Workaround until the C core queues every relative path whose base is
        # watched (docs/hypervisor.md, "Asked of the C core").
        self.tracer.set_prefixes([*prefixes, self.stand_ins.root, self.stand_ins.root + b"/.base"])

    async def _translate(self, name: bytes) -> Location | None:
        """Stand-in directories and `socket:[INO]` links of virtual fds → virtual objects."""
        if name.startswith(b"/"):
            return self.stand_ins.location_of(name) if self.stand_ins.is_inside(name) else None
        inode = socket_inode(name)
        if inode is not None:
            description = self.vfds.get(inode)
            if description is not None:
                return description.location
        return None

    async def _open_mount_list(self, call: Call, path: bytes, flags: int) -> int:
        """/proc/PID/mounts|mountinfo: the kernel's lines plus the virtual mounts'."""
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise OSError(errno.EACCES, "read-only")
        return mountinfo.snapshot_fd(mountinfo.render(path, self.mounts))

    # --- mounts and unmounts ------------------------------------------------------------------
    def mount_is_busy(self, mount: Mount) -> bool:
        """EBUSY material: an open file or a cwd inside `mount`, or a mount below it."""
        if any(description.location.mount is mount for description in self.vfds):
            return True
        prefix = mount.mountpoint.rstrip(b"/") + b"/"
        if any(other is not mount and other.mountpoint.startswith(prefix) for other in self.mounts):
            return True
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                cwd = os.fsencode(os.readlink(f"/proc/{name}/cwd"))
            except OSError:
                continue
            location = self.stand_ins.location_of(cwd)
            if location is not None and location.mount is mount:
                return True
        return False

    async def unmount(self, mount: Mount, lazy: bool) -> None:
        """Take `mount` out of the table; its `on_unmount` runs now, or, for a lazy unmount
        of a busy mount, once the last open file and cwd in it are gone."""
        self.mounts.remove(mount)
        mount.detached = True
        if lazy and self.mount_is_busy(mount) and self.nursery is not None:
            self.nursery.start_soon(self._finish_lazy_unmount, mount)
            return
        await self._run_on_unmount(mount)

    async def _finish_lazy_unmount(self, mount: Mount) -> None:
        while self.mount_is_busy(mount):
            await trio.sleep(0.05)
        await self._run_on_unmount(mount)

    async def _run_on_unmount(self, mount: Mount) -> None:
        if mount.on_unmount is None:
            return
        try:
            await mount.on_unmount(mount)
        except Exception:  # the unmount itself has happened: never fail it for this
            log.exception("vufuse: unmount hook of %s failed", mount.mountpoint.decode(
                errors="replace"))

    def display_path(self, real: bytes) -> bytes:
        """What a link the kernel reports should read inside the session: the virtual path
        for a cwd stand-in, a virtual fd's socket or an image run from a mount (/proc/PID/cwd,
        /proc/PID/fd/N, /proc/PID/exe)."""
        image = self.exec_images.get(real)
        if image is not None:
            return image
        location = self.stand_ins.location_of(real)
        if location is None:
            inode = socket_inode(real)
            description = self.vfds.get(inode) if inode is not None else None
            location = description.location if description is not None else None
        return location.path if isinstance(location, VirtualLocation) else real

    # --- running ------------------------------------------------------------------------------
    async def run(
        self, argv: Sequence[bytes], env: Sequence[bytes] | None = None, cwd: bytes | None = None
    ) -> int:
        """Run `argv` under the session until it exits; returns 0–255 or 128+signal."""
        if env is None:
            env = [b"%s=%s" % item for item in os.environb.items()]
        env = [e for e in env if not e.startswith(b"VUFUSE_SESSION=")]
        env.append(b"VUFUSE_SESSION=" + self.runtime_dir)
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.vfds.attach(nursery)
                self.low_fds.attach(nursery)
                self.fd_drops.nursery = nursery
                self.tracer.spawn(list(argv), env, cwd)
                previous = _ignore_terminal_signals()
                try:
                    nursery.start_soon(self._serve, nursery)
                    nursery.start_soon(self.signal_watch.run)
                    status = await self._wait_for_command()
                    with trio.move_on_after(FINAL_WRITE_BACK_TIMEOUT):
                        await self.low_fds.finish_all()  # while the daemons still run
                finally:
                    _restore_signals(previous)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._teardown()
        return exit_code(status)

    async def _wait_for_command(self) -> int:
        while True:
            await trio.lowlevel.wait_readable(self.tracer.status_fd())
            status = self.tracer.wait_status()
            if status is not None:
                return int(status)

    async def _serve(self, nursery: trio.Nursery) -> None:
        fd = self.tracer.fileno()
        while True:
            await trio.lowlevel.wait_readable(fd)
            for notification in self.tracer.take():
                nursery.start_soon(self.handle, notification)

    async def handle(self, notification: Any) -> None:
        """Handle one notification and answer it (exactly once)."""
        call = Call(notification, self)
        reply: object = OSError(errno.EINTR, "interrupted")
        scope = trio.CancelScope()
        self.signal_watch.enter(notification.id, notification.pid, scope)
        try:
            with scope:  # cancelled when the caller gets a signal it would take (signals.py)
                reply = await self.dispatcher.handle(call)
        finally:
            self.signal_watch.leave(notification.id)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("[%d] %s(%s) = %s", notification.pid, call.name,
                      self._describe_args(notification), _describe(reply))
        try:
            if reply is CONTINUE:
                self.tracer.respond(notification.id, continue_=True)
            elif reply is ANSWERED:
                pass
            elif isinstance(reply, OSError):
                self.tracer.respond(notification.id, error=reply.errno or errno.EIO)
            else:
                assert isinstance(reply, int)
                self.tracer.respond(notification.id, value=reply)
        except OSError as error:
            if error.errno != errno.ENOENT:  # ENOENT: the caller is gone or was interrupted
                log.debug("respond failed", exc_info=True)

    def _describe_args(self, notification: Any) -> str:
        return _describe_args(self.tracer, notification)

    async def _teardown(self) -> None:
        try:
            await trio.to_thread.run_sync(self.tracer.kill_all)
        except Exception:
            log.debug("kill_all failed", exc_info=True)
        try:
            self.tracer.close()
        except Exception:
            log.debug("close failed", exc_info=True)
        self.low_fds.close()
        self.snapshots.close()
        await self.vfds.release_all()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _describe_args(tracer: Any, notification: Any) -> str:
    """strace-like arguments: paths as strings, fds and flags as ints, pointers in hex."""
    rule = syscalls.rule_for(notification.nr)
    paths = {p for p, _ in rule.paths} if rule else set()
    fds = set(rule.fd_args) if rule else set()
    shown = []
    for index, value in enumerate(notification.args):
        if index in paths:
            try:
                shown.append(repr(tracer.read_string(notification.pid, value, 4097)))
            except OSError:
                shown.append(hex(value))
        elif index in fds:
            shown.append(str(value - (1 << 32) if value & 0x80000000 else value & 0xFFFFFFFF))
        else:
            shown.append(hex(value))
    return ", ".join(shown)


def _describe(reply: object) -> str:
    if isinstance(reply, OSError):
        return f"-{errno.errorcode.get(reply.errno or 0, reply.errno)}"
    return str(reply)


FINAL_WRITE_BACK_TIMEOUT = 30.0
"""Seconds the session waits, once its command is gone, for redirections to be written back."""
_TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


def _ignore_terminal_signals() -> dict[int, Any]:
    """While the command runs, the tty's Ctrl-C and Ctrl-\\ are for the tracees only."""
    previous: dict[int, Any] = {}
    for signum in _TERMINAL_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # not the main thread (tests): nothing to protect
            pass
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
