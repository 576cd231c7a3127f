"""Every way an fd table drops a reference to a virtual file: FLUSH with the lock owner.

The kernel calls `f_op->flush` from filp_close(): at close(2), when dup2/dup3 replaces an
open fd, for each fd close_range(2) closes, for each O_CLOEXEC fd at a successful exec, and
for every fd of a process whose fd table goes away (exit, death by signal).  Each FLUSH
carries the lock owner (the fd table: here the process), so the provider releases that
process's POSIX locks; the hypervisor drops those it keeps itself (`writes.LOCKS`).

close, dup2/dup3 and close_range are trapped already; exit_group and execve/execveat are seen
by Python while any virtual fd is open (ACTION_TRAP_VIRTUAL).  A process that dies by a signal
makes no syscall: a process that got a virtual fd in a trapped call (open, dup), or a child
forked while its parent held one (found among the parent's children once born), is watched
with a pidfd, and what it still held is flushed when it dies without an exit_group.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import select

import trio

from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..provider import Caller
from ..syscalls import FD_BASE
from ..vfd import OpenFileDescription, VirtualFdTable, socket_inode
from .common import kernel_unless_virtual

log = logging.getLogger("vufuse.hypervisor")

O_CLOEXEC_FDINFO = 0o2000000
CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4


def virtual_fds(call: Call, cloexec_only: bool = False) -> list[tuple[int, OpenFileDescription]]:
    """The caller's virtual fds (number, description), optionally only those with
    FD_CLOEXEC."""
    return _virtual_fds_of(call.session.vfds, call.tid, cloexec_only)


def _virtual_fds_of(
    vfds: VirtualFdTable | None, tid: int, cloexec_only: bool = False
) -> list[tuple[int, OpenFileDescription]]:
    found: list[tuple[int, OpenFileDescription]] = []
    if vfds is None:
        return found
    try:
        names = os.listdir(f"/proc/{tid}/fd")
    except OSError:
        return []
    for name in names:
        number = int(name)
        if number < FD_BASE:
            continue
        try:
            inode = socket_inode(os.readlink(f"/proc/{tid}/fd/{name}"))
        except OSError:
            continue
        description = vfds.get(inode) if inode is not None else None
        if description is None:
            continue
        if cloexec_only and not _cloexec(tid, number):
            continue
        found.append((number, description))
    return sorted(found, key=lambda item: item[0])


def _children(tid: int) -> set[int]:
    """The children of thread `tid` (/proc/PID/task/TID/children)."""
    try:
        with open(f"/proc/{tid}/task/{tid}/children") as listing:
            return {int(pid) for pid in listing.read().split()}
    except (OSError, ValueError):
        return set()


def _cloexec(tid: int, fd: int) -> bool:
    try:
        with open(f"/proc/{tid}/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("flags:"):
                    return bool(int(line.split()[1], 8) & O_CLOEXEC_FDINFO)
    except OSError:
        pass
    return False


async def flush(call: Call, description: OpenFileDescription) -> int:
    """One reference of the caller's fd table to `description` goes: FLUSH, locks go.
    Returns the daemon's error on the FLUSH (0 if none): close(2) reports it."""
    from .writes import LOCKS, lock_key

    LOCKS.drop_owner(lock_key(description), call.tgid)
    call.session.fd_drops.dropped(call.tgid, description)
    await call.session.fd_drops.settle_deaths()
    if description.handle is None or description.released:
        return 0
    try:
        await description.handle.flush(call.tgid, caller=call.caller)
    except OSError as failure:
        log.debug("flush failed: %s", failure)
        return failure.errno or errno.EIO
    return 0


# --- the handlers ----------------------------------------------------------------------------
@kernel_unless_virtual
async def handle_dup2_over(call: Call) -> Reply:
    """dup2/dup3 whose `new` is a virtual fd (and `old` is not): `new` is closed first."""
    old, new = call.int_arg(0), call.int_arg(1)
    if old == new or new < FD_BASE:
        return CONTINUE
    try:
        os.readlink(f"/proc/{call.tid}/fd/{old}")
    except OSError:
        return CONTINUE  # EBADF: nothing is closed
    try:
        description = call.session.vfds.lookup_fd(call.tid, new)
    except OSError:
        return CONTINUE
    if description is not None:
        call.touched_virtual = True
        await flush(call, description)
    return CONTINUE


async def handle_close_range(call: Call) -> Reply:
    """close_range(first, last, flags): FLUSH each virtual fd it closes."""
    first, last, flags = call.arg(0) & 0xFFFFFFFF, call.arg(1) & 0xFFFFFFFF, call.int_arg(2)
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        return CONTINUE  # EINVAL from the kernel
    if flags & CLOSE_RANGE_CLOEXEC or last < FD_BASE or not len(call.session.vfds):
        return CONTINUE  # nothing closed now (FD_CLOEXEC: flushed at exec)
    for number, description in virtual_fds(call):
        if first <= number <= last:
            call.touched_virtual = True
            await flush(call, description)
    return CONTINUE


async def handle_exit_group(call: Call) -> Reply:
    """exit_group: the process's fd table goes (shared only by its threads): FLUSH each."""
    call.session.fd_drops.exited(call.tgid)
    if len(call.session.vfds):
        for _number, description in virtual_fds(call):
            await flush(call, description)
    return CONTINUE


async def flush_cloexec_at_exec(call: Call) -> None:
    """execve/execveat that will succeed: the O_CLOEXEC virtual fds go."""
    if not len(call.session.vfds):
        return
    for _number, description in virtual_fds(call, cloexec_only=True):
        await flush(call, description)


@dataclasses.dataclass(eq=False)
class _Birth:
    """A fork let run while its caller held virtual fds; its child not found yet."""

    parent_tid: int
    parent_tgid: int
    before: set[int]
    caller: Caller
    inherited: list[OpenFileDescription]
    found: bool = False


class DeathWatch:
    """Which processes hold which virtual descriptions through fds they got in a trapped
    call (open, dup) or inherited over a fork, so that one that dies without exit_group (a
    signal) still gets its FLUSHes."""

    def __init__(self) -> None:
        self._held: dict[int, dict[OpenFileDescription, int]] = {}
        self._exited: set[int] = set()
        self._callers: dict[int, Caller] = {}
        self._pidfds: dict[int, int] = {}
        self._adopting = 0
        self._births: list[_Birth] = []
        self._early_drops: dict[int, dict[OpenFileDescription, int]] = {}
        self.nursery: trio.Nursery | None = None
        self.vfds: VirtualFdTable | None = None

    def exited(self, tgid: int) -> None:
        """exit_group was seen (its FLUSHes sent)."""
        self._exited.add(tgid)

    def held(self, tgid: int, caller: Caller, description: OpenFileDescription) -> None:
        """Process `tgid` got one more fd of `description` (in a call by `caller`); its death
        is watched from now on."""
        held = self._held.get(tgid)
        if held is None:
            if self.nursery is None:
                return
            try:
                pidfd = os.pidfd_open(tgid)
            except OSError:
                return
            held = self._held[tgid] = {}
            self._callers[tgid] = caller
            self._pidfds[tgid] = pidfd
            self.nursery.start_soon(self._watch, tgid, pidfd)
        held[description] = held.get(description, 0) + 1

    def dropped(self, tgid: int, description: OpenFileDescription) -> None:
        """One of `tgid`'s fds of `description` went (its FLUSH was sent)."""
        held = self._held.get(tgid)
        if held is not None and held.get(description, 0) > 0:
            held[description] -= 1
        elif held is None and self._adopting:
            # Maybe a child not found yet whose close is under way: its fd table may still
            # list the fd when the child is adopted.
            early = self._early_drops.setdefault(tgid, {})
            early[description] = early.get(description, 0) + 1

    async def adopt_child(self, record: _Birth) -> None:
        """A fork (clone, vfork) by `parent_tid` was let run while it held virtual fds: find
        the child among the thread's children and watch what its own fd table holds, so that
        its death by a signal flushes them too (with the child as lock owner).  The parent's
        wait finds it too (:meth:`before_wait`), so that a child killed and reaped before
        this task looked is not missed."""
        try:
            delay = 0.0005
            for _ in range(40):  # ~2 s: a clone that failed has no child to find
                if self._find(record):
                    break
                await trio.sleep(delay)
                delay = min(delay * 2, 0.1)
        finally:
            self._births.remove(record)
            self._adopting -= 1
            if not self._adopting:
                self._early_drops.clear()

    def expect_birth(self, parent_tid: int, parent_tgid: int, before: set[int],
                     caller: Caller, inherited: list[OpenFileDescription]) -> _Birth:
        """Note the fork before it runs (a wait may come before the finder task starts)."""
        record = _Birth(parent_tid, parent_tgid, before, caller, inherited)
        self._births.append(record)
        self._adopting += 1
        return record

    def before_wait(self, tgid: int) -> None:
        """Process `tgid` is about to wait for (and reap) a child: adopt its newborns now."""
        for record in list(self._births):
            if record.parent_tgid == tgid:
                self._find(record)

    def _find(self, record: _Birth) -> bool:
        if record.found:
            return True
        born = _children(record.parent_tid) - record.before
        for child in born:
            self._adopt(child, dataclasses.replace(record.caller, pid=child), record.inherited)
        record.found = bool(born)
        return record.found

    def _adopt(self, child: int, caller: Caller,
               inherited: list[OpenFileDescription]) -> None:
        """Watch `child`: what its fd table lists now or, when it lists none (it is dying:
        its files are closed already), what it inherited, less what it flushed itself."""
        counts: dict[OpenFileDescription, int] = {}
        listed = _virtual_fds_of(self.vfds, child)
        for description in [d for _, d in listed] if listed else inherited:
            counts[description] = counts.get(description, 0) + 1
        early = self._early_drops.pop(child, {})
        for description, count in counts.items():
            count -= early.get(description, 0)
            known = self._held.get(child, {}).get(description, 0)
            for _ in range(count - known):  # what it got itself is counted already
                self.held(child, caller, description)

    async def last_close(self, description: OpenFileDescription) -> None:
        """Every copy of `description` is gone: whoever still held one died without
        exit_group (a signal) — its FLUSHes, before the RELEASE."""
        for tgid, held in list(self._held.items()):
            count = held.pop(description, 0)
            if tgid in self._exited:
                continue
            for _ in range(count):
                await _flush_quietly(description, tgid, self._callers.get(tgid))

    async def settle_deaths(self) -> None:
        """Send now the FLUSHes owed by holders that are already dead but whose watcher has
        not run yet: the kernel closed their files before anyone could see the death (a
        parent's close after its waitpid), so their FLUSHes come first."""
        if not self._pidfds:
            return
        events = select.poll()
        by_fd = {pidfd: tgid for tgid, pidfd in self._pidfds.items()}
        for pidfd in by_fd:
            events.register(pidfd, select.POLLIN)
        for pidfd, _ in events.poll(0):
            await self._died(by_fd[pidfd])

    async def _died(self, tgid: int) -> None:
        held = self._held.pop(tgid, {})
        exited = tgid in self._exited
        self._exited.discard(tgid)
        caller = self._callers.pop(tgid, None)
        if exited:
            return
        with trio.CancelScope(shield=True):
            for description, count in held.items():
                for _ in range(count):
                    await _flush_quietly(description, tgid, caller)

    async def _watch(self, tgid: int, pidfd: int) -> None:
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            # Also when the session ends (cancelled): its processes die with it.
            os.close(pidfd)
            self._pidfds.pop(tgid, None)
            with trio.CancelScope(shield=True):
                await self._died(tgid)


async def _flush_quietly(description: OpenFileDescription, tgid: int,
                         caller: Caller | None) -> None:
    from .writes import LOCKS, lock_key

    LOCKS.drop_owner(lock_key(description), tgid)
    if description.handle is None:
        return
    try:
        await description.handle.flush(tgid, caller=caller)
    except OSError as failure:
        if failure.errno != errno.ENOTCONN:
            log.debug("flush at death failed: %s", failure)


async def handle_fork(call: Call) -> Reply:
    """fork, vfork, clone, clone3 of a process with its own fd table (the C core lets threads
    and CLONE_FILES run) while the caller holds virtual fds: its child is found once born."""
    watch = call.session.fd_drops
    if watch.nursery is None or not len(call.session.vfds):
        return CONTINUE
    inherited = [description for _, description in virtual_fds(call)]
    if inherited:
        record = watch.expect_birth(call.tid, call.tgid, _children(call.tid), call.caller,
                                    inherited)
        watch.nursery.start_soon(watch.adopt_child, record)
    return CONTINUE


async def handle_wait(call: Call) -> Reply:
    """wait4/waitid while a fork's child is not found yet: find it before it is reaped."""
    call.session.fd_drops.before_wait(call.tgid)
    return CONTINUE


def register(dispatcher: Dispatcher) -> None:
    """Route the reference drops that are not close(2) (close is writes.handle_close)."""
    dispatcher.register("fork vfork clone clone3", handle_fork)
    dispatcher.register("wait4 waitid", handle_wait)
    dispatcher.register("close_range", handle_close_range)
    dispatcher.register("exit_group", handle_exit_group)
