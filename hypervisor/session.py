"""A traced session: spawn the command through the C core, serve its notifications, tear down.

One trio task drains `Tracer.take()` whenever the core's eventfd is readable and starts one
handler task per notification, so a slow provider never blocks other tracees; a handler task
that has answered goes on with the first notification queued meanwhile (D28).  Another waits
for the command's exit status.  When the command has exited, every process left in the session
is killed (the keeper does it), every virtual file is released and the runtime directory is
removed: nothing survives the session.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

import trio

from . import mountinfo, strace, syscalls
from .answers import AnswerCache
from .cwd import StandInDirectories
from .dispatch import ANSWERED, CONTINUE, Call, Dispatcher
from .extensions import Extensions
from .fifos import FifoDirectory
from .handlers.fdtable import DeathWatch
from .handlers.mapping import SnapshotCache
from .lowfd import LowFdStandIns
from .mounts import Mount, MountTable
from .paths import Location, PathResolver, VirtualLocation
from .process import ProcessTable
from .signals import SignalWatch
from .unixsock import UnixBindings
from .vfd import VirtualFdTable, socket_inode

log = logging.getLogger("vufuse.hypervisor")

TracerFactory = Callable[..., Any]


def default_tracer_factory(spec: list[tuple[int, ...]], fd_base: int, max_nr: int) -> Any:
    """The C core (imported late so that pure-Python parts work without it)."""
    from . import _tracer

    for name in ("ACTION_TRAP", "ACTION_TRAP_FD", "ACTION_ENOSYS", "ACTION_PYTHON",
                 "ACTION_DUMPABLE", "ACTION_TRAP_CWD", "ACTION_TRAP_VIRTUAL",
                 "ACTION_TRAP_SOCKADDR", "ACTION_TRAP_LOWFD"):
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
        trapped_ioctl: int | None = None,
    ) -> None:
        self.mounts = mounts if mounts is not None else MountTable()
        if runtime_dir is None:
            base = runtime_base()
            remove_stale_runtime_dirs(base)
            runtime_dir = tempfile.mkdtemp(prefix=f"vufuse-{os.getpid()}-", dir=base)
        self.runtime_dir = os.fsencode(os.path.realpath(runtime_dir))
        #: True once the session ends: unmount hooks then finish their work before returning.
        self.ending = False
        self.stand_ins = StandInDirectories(self.runtime_dir + b"/cwd")
        self.unix_bindings = UnixBindings(self.runtime_dir + b"/sock")
        self.resolver = PathResolver(self.mounts, self._translate)
        self.processes = ProcessTable()
        self.dispatcher = Dispatcher()
        self.tracer: Any = tracer_factory(
            syscalls.build_spec(trapped_ioctl=trapped_ioctl), syscalls.FD_BASE, syscalls.MAX_NR
        )
        self.vfds = VirtualFdTable(self.tracer.add_virtual_inode, self.tracer.remove_virtual_inode)
        self.low_fds = LowFdStandIns()
        self.fd_drops = DeathWatch()
        self.signal_watch = SignalWatch()
        self.signal_watch.give_up = self._answer_interrupted
        self.fifos = FifoDirectory(self.runtime_dir + b"/fifo")
        self.snapshots = SnapshotCache()
        self.vfds.before_release = self.fd_drops.last_close
        self.fd_drops.vfds = self.vfds
        self.answers = AnswerCache(self.tracer)
        """Stat answers the C core gives itself (docs/decisions.md D20)."""
        self.answers.suspended = lambda: len(self.low_fds) > 0 or self.low_fds.finishing
        self.low_fds.on_create = self.answers.drop
        self.low_fds.on_inode = self._stand_in_inode
        self.mounts.on_change(self._push_prefixes)
        self.extensions = Extensions(getattr(self.tracer, "set_special_names", _ignore))
        self.nursery: trio.Nursery | None = None
        """The session's nursery while it runs: extensions start their tasks in it."""
        self._serving: trio.Nursery | None = None
        """The nursery handlers start in, while `_serve` runs."""
        self.extensions.add_special_file(mountinfo.NAMES, mountinfo.matches, self._open_mount_list)
        # readlink of /proc/PID/exe must reach Python: an image run from a mount is a memfd
        # (handlers/execution.py) that reads as its virtual path.  Never an open's answer.
        self.extensions.add_special_file([b"exe"], lambda _path: False, self._open_mount_list)
        self.exec_images: dict[bytes, bytes] = {}
        """`/memfd:vufuse-exec:N (deleted)` → the virtual path of the image it holds."""
        from .handlers import register_all

        register_all(self.dispatcher)

    # --- the C core's view ------------------------------------------------------------------
    def _stand_in_inode(self, ino: int, live: bool) -> None:
        """A low-fd stand-in's memfd inode, for the C core's ACTION_TRAP_LOWFD test (D29)."""
        method = getattr(self.tracer, "add_stand_in_inode" if live else "remove_stand_in_inode",
                         None)
        if method is not None:
            method(ino)

    def _push_prefixes(self, prefixes: list[bytes]) -> None:
        # The stand-in root: the C core queues every relative path with a ".." whose base
        # (a cwd stand-in) lies under it, wherever it lands (docs/tracer-core.md).
        self.tracer.set_prefixes([*prefixes, self.stand_ins.root])
        self.answers.mounts_changed(self.mounts)

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
        if not isinstance(location, VirtualLocation):
            return real
        return location.shown_path + (b" (deleted)" if self.stand_ins.is_removed(real) else b"")

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
                _raise_open_file_limit()  # after the spawn: the session keeps the user's
                previous = _ignore_terminal_signals()
                try:
                    nursery.start_soon(self._serve, nursery)
                    nursery.start_soon(self.signal_watch.run)
                    given = {id(mount) for mount in self.mounts}  # the embedder's: kept
                    status = await self._wait_for_command_or_signal()
                    with trio.move_on_after(FINAL_WRITE_BACK_TIMEOUT):
                        await self.low_fds.finish_all()  # while the daemons still run
                    await self._unmount_everything(keep=given)
                finally:
                    _restore_signals(previous)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._teardown()
        return exit_code(status)

    async def _wait_for_command_or_signal(self) -> int:
        """The command's wait status, or -- when vufuse gets SIGTERM or SIGHUP first -- the
        status of a command killed by that signal (the session then ends as usual)."""
        outcome: list[int] = []
        async with trio.open_nursery() as waiters:

            async def command() -> None:
                outcome.append(await self._wait_for_command())
                waiters.cancel_scope.cancel()

            async def signals() -> None:
                if threading.current_thread() is not threading.main_thread():
                    return  # signals reach only the main thread: the embedder's business
                with trio.open_signal_receiver(*_ENDING_SIGNALS) as received:
                    async for signum in received:
                        log.debug("vufuse got signal %d: ending the session", signum)
                        outcome.append(signum)  # a wait status "killed by signum"
                        waiters.cancel_scope.cancel()
                        return

            waiters.start_soon(command)
            waiters.start_soon(signals)
        return outcome[0]

    async def _unmount_everything(self, keep: set[int]) -> None:
        """Session end: every mount made in the session is unmounted while the session still
        serves its processes, so that daemons learn of it as of any unmount (their device
        reads fail ENODEV) and exit on their own; bounded by UNMOUNT_GRACE, after which the
        teardown kills all.  Mounts given to the session (ids in `keep`) stay."""
        self.ending = True
        with trio.move_on_after(UNMOUNT_GRACE):
            for mount in list(self.mounts):
                if id(mount) not in keep:
                    await self.unmount(mount, lazy=False)

    async def _wait_for_command(self) -> int:
        while True:
            await trio.lowlevel.wait_readable(self.tracer.status_fd())
            status = self.tracer.wait_status()
            if status is not None:
                return int(status)

    async def _serve(self, nursery: trio.Nursery) -> None:
        fd = self.tracer.fileno()
        self._serving = nursery
        try:
            while True:
                await trio.lowlevel.wait_readable(fd)
                for notification in self.tracer.take():
                    nursery.start_soon(self._handle_in_turn, notification)
        finally:
            self._serving = None

    async def _handle_in_turn(self, notification: Any) -> None:
        """Handle `notification`, then the first one queued meanwhile, in this same task.

        The tracee an answer lets run has usually trapped again by the time the answer
        returns (on one CPU it preempts us and runs until its next queued call): its call is
        handled here, with no task spawn and no trip through epoll and `_serve`.  Any others
        queued get tasks of their own, as `_serve` gives them.  A handler may finish without
        a checkpoint (a reply read during its send, an answer from a cache), so every
        :data:`CHAIN_YIELD_EVERY` calls in a row the other tasks run first: a tracee in a
        tight loop of calls must not starve the rest (a receive loop, a tracee it waits for).
        """
        chained = 0
        while True:
            await self.handle(notification)
            serving = self._serving
            if serving is None:
                return
            taken = self.tracer.take()
            if not taken:
                return
            for other in taken[1:]:
                serving.start_soon(self._handle_in_turn, other)
            notification = taken[0]
            chained += 1
            if chained % CHAIN_YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()

    async def handle(self, notification: Any) -> None:
        """Handle one notification and answer it (exactly once)."""
        call = Call(notification, self)
        # Read the arguments while the caller still waits: a handler that answers itself
        # (ADDFD) lets it run on, and exit, before the line is written.
        arguments = self._describe_args(notification) if log.isEnabledFor(logging.DEBUG) else ""
        reply: object = OSError(errno.EINTR, "interrupted")
        scope = trio.CancelScope()
        self.signal_watch.enter(notification.id, notification.pid, scope)
        try:
            with scope:  # cancelled when the caller gets a signal it would take (signals.py)
                reply = await self.dispatcher.handle(call)
        finally:
            self.signal_watch.leave(notification.id)
        if call.touched_virtual:
            self.answers.after_call(notification.nr, notification.args)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("[%d] %s(%s) = %s", notification.pid, call.name, arguments,
                      _describe(reply))
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

    def _answer_interrupted(self, notification_id: int) -> None:
        """EINTR now for a call whose provider has not answered its interrupt (signals.py)."""
        try:
            self.tracer.respond(notification_id, error=errno.EINTR)
        except OSError as failure:
            if failure.errno != errno.ENOENT:
                log.debug("answering an interrupted call failed", exc_info=True)

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
    """strace-like arguments (hypervisor/strace.py)."""
    rule = syscalls.rule_for(notification.nr)
    return strace.describe_arguments(
        syscalls.NAMES.get(notification.nr, ""), notification.args,
        {p for p, _ in rule.paths} if rule else set(),
        lambda address: tracer.read_string(notification.pid, address, 4097),
    )  # fmt: skip


def _describe(reply: object) -> str:
    return strace.describe_result(reply)


CHAIN_YIELD_EVERY = 8
"""Calls a handler task takes in a row (`Session._handle_in_turn`) before it lets the other
tasks run."""
FINAL_WRITE_BACK_TIMEOUT = 30.0
"""Seconds the session waits, once its command is gone, for redirections to be written back."""
_TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT)
_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
UNMOUNT_GRACE = 5.0
"""Seconds the daemons get, at session end, to see their unmount and exit."""


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


def _raise_open_file_limit() -> None:
    """Our soft RLIMIT_NOFILE up to the hard one: we hold one socket per open virtual file
    of the whole session, so tracees that raise their own limit (10,000 files open) must not
    find us at 1024 (EMFILE for them, where the kernel has none)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            log.debug("could not raise RLIMIT_NOFILE to %d", hard)
