"""Every way an fd table drops a reference to a virtual file: FLUSH with the lock owner.

The kernel calls `f_op->flush` from filp_close(): at close(2), when dup2/dup3 replaces an
open fd, for each fd close_range(2) closes, for each O_CLOEXEC fd at a successful exec, and
for every fd of a process whose fd table goes away (exit, death by signal).  Each FLUSH
carries the lock owner (the fd table: here the process), so the provider releases that
process's POSIX locks; the hypervisor drops those it keeps itself (`writes.LOCKS`).

close, dup2/dup3 and close_range are trapped already; exit_group and execve/execveat are seen
by Python while any virtual fd is open (ACTION_TRAP_VIRTUAL).  A process that dies by a signal
makes no syscall: a process that got a virtual fd in a trapped call (open, dup) is watched
with a pidfd, and what it still held is flushed when it dies without an exit_group; a child
that held copies inherited over fork is found dead when its parent waits (wait4/waitid are
seen while a virtual fd lives), and flushes them then.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import select
from collections import Counter

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


_TICK = 1 / os.sysconf("SC_CLK_TCK")
_UNHELD_LIMIT = 4096


def _children_of_process(tgid: int) -> set[int]:
    """The children of every thread of process `tgid` (/proc/PID/task/TID/children)."""
    found: set[int] = set()
    try:
        threads = os.listdir(f"/proc/{tgid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{tgid}/task/{tid}/children") as listing:
                found.update(int(pid) for pid in listing.read().split())
        except (OSError, ValueError):
            continue
    return found


def _parent_and_birth(pid: int) -> tuple[int, float] | None:
    """Process `pid`'s parent and when it was born (CLOCK_BOOTTIME seconds, to a clock
    tick), from /proc (a dead process not reaped yet too)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return int(fields[1]), int(fields[19]) * _TICK
    except (OSError, IndexError, ValueError):
        return None


def _parent_and_start(pid: int, caller: Caller | None) -> tuple[int, float, Caller] | None:
    """(parent, birth time, caller) of a dead process not reaped yet."""
    found = _parent_and_birth(pid)
    return None if found is None else (*found, caller or Caller(pid=pid))


def _start_time(pid: int) -> float | None:
    """When process `pid` was born (CLOCK_BOOTTIME seconds, to a clock tick)."""
    found = _parent_and_birth(pid)
    return None if found is None else found[1]


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


class DeathWatch:
    """Which processes hold which virtual descriptions through fds they got in a trapped
    call (open, dup) or inherited over a fork, so that one that dies without exit_group (a
    signal) still gets its FLUSHes."""

    def __init__(self) -> None:
        self._held: dict[int, dict[OpenFileDescription, int]] = {}
        self._exited: set[int] = set()
        self._callers: dict[int, Caller] = {}
        self._pidfds: dict[int, int] = {}
        self._unheld_drops: dict[int, Counter[OpenFileDescription]] = {}
        #: Children watched since their parent's wait: (parent, birth time, caller).
        self._inheritors: dict[int, tuple[int, float, Caller]] = {}
        self._settled: set[int] = set()
        #: Dead processes already flushed, by pid: their birth time (pids are reused).
        self._buried: dict[int, float] = {}
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
            if tgid not in self._pidfds and not self._start_watching(tgid):
                return  # (already watched: its parent waited)
            held = self._held[tgid] = {}
            self._callers[tgid] = caller
        held[description] = held.get(description, 0) + 1

    def dropped(self, tgid: int, description: OpenFileDescription) -> None:
        """One of `tgid`'s fds of `description` went (its FLUSH was sent)."""
        held = self._held.get(tgid)
        if held is not None and held.get(description, 0) > 0:
            held[description] -= 1
            return
        # An fd it did not get in a trapped call: inherited over fork.  Kept until its parent
        # reaps it (reaped()), which must not count it again.
        if len(self._unheld_drops) >= _UNHELD_LIMIT:
            self._unheld_drops.clear()
        self._unheld_drops.setdefault(tgid, Counter())[description] += 1

    async def before_wait(self, waiter: int, caller: Caller) -> None:
        """Process `waiter` is about to wait for its children: watch each with a pidfd, as
        one that dies without exit_group (a signal) owes the FLUSHes of the fds it
        inherited over fork, which no trapped call showed us (fork is not trapped: a signal
        during a notification would fail it with EINTR).  A child already dead flushes now,
        before the wait reaps it; one still alive when its death is seen, or before the
        next FLUSH (settle_deaths)."""
        for child in _children_of_process(waiter):
            if child in self._inheritors or self.nursery is None:
                continue
            born = _start_time(child)
            if born is None or self._buried.get(child) == born:
                continue  # its death was seen already; not reaped yet
            self._inheritors[child] = (waiter, born, dataclasses.replace(caller, pid=child))
            if child not in self._pidfds:  # else watched already as a holder
                self._start_watching(child)
        await self.settle_deaths()

    def _start_watching(self, pid: int) -> bool:
        """Watch process `pid` with a pidfd for its death; False if it is gone already."""
        assert self.nursery is not None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        self._pidfds[pid] = pidfd
        self.nursery.start_soon(self._watch, pid, pidfd)
        return True

    async def _flush_inherited(self, child: int, parent: int, born: float, caller: Caller,
                               flushed: Counter[OpenFileDescription]) -> None:
        """What `child` inherited: what its parent holds now, less what the parent opened
        after the child's birth (to a clock tick), less what the child flushed itself."""
        holding = [d for _, d in _virtual_fds_of(self.vfds, parent)]
        owed = Counter(d for d in holding if d.created < born + _TICK) - flushed
        for description, count in owed.items():
            for _ in range(count):
                await _flush_quietly(description, child, caller)

    async def last_close(self, description: OpenFileDescription) -> None:
        """Every copy of `description` is gone: whoever still held one died without
        exit_group (a signal) — its FLUSHes, before the RELEASE."""
        await self.settle_deaths()
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
            tgid = by_fd[pidfd]
            if self._pidfds.get(tgid) == pidfd:
                del self._pidfds[tgid]
                self._settled.add(pidfd)  # its watcher only closes it
                await self._died(tgid)

    async def _died(self, tgid: int) -> None:
        """Process `tgid` is dead (once per pidfd): what it held, and, unless it left by
        exit_group, what it inherited over fork."""
        held = self._held.pop(tgid, {})
        exited = tgid in self._exited
        self._exited.discard(tgid)
        caller = self._callers.pop(tgid, None)
        inherited = self._inheritors.pop(tgid, None) or _parent_and_start(tgid, caller)
        flushed = self._unheld_drops.pop(tgid, Counter())
        if inherited is not None:
            if len(self._buried) >= _UNHELD_LIMIT:
                self._buried.clear()
            self._buried[tgid] = inherited[1]
        if exited:
            return
        with trio.CancelScope(shield=True):
            for description, count in held.items():
                for _ in range(count):
                    await _flush_quietly(description, tgid, caller)
            if inherited is not None:
                await self._flush_inherited(tgid, *inherited, flushed)

    async def _watch(self, tgid: int, pidfd: int) -> None:
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            # Also when the session ends (cancelled): its processes die with it.
            settled = pidfd in self._settled
            self._settled.discard(pidfd)
            if self._pidfds.get(tgid) == pidfd:
                del self._pidfds[tgid]
            os.close(pidfd)
            if not settled:
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


async def handle_wait(call: Call) -> Reply:
    """wait4/waitid by a process holding virtual fds: its children are watched, so that one
    dead by a signal flushes what it inherited (DeathWatch.before_wait)."""
    if len(call.session.vfds) and virtual_fds(call):
        await call.session.fd_drops.before_wait(call.tgid, call.caller)
    return CONTINUE


def register(dispatcher: Dispatcher) -> None:
    """Route the reference drops that are not close(2) (close is writes.handle_close)."""
    dispatcher.register("wait4 waitid", handle_wait)
    dispatcher.register("close_range", handle_close_range)
    dispatcher.register("exit_group", handle_exit_group)
