"""chdir, fchdir and getcwd: the virtual cwd through stand-in directories (see cwd.py)."""

from __future__ import annotations

import errno
import logging
import os

import trio

from .. import permission
from ..cwd import run_chdir_in
from ..dispatch import ANSWERED, CONTINUE, Call, Dispatcher, Reply
from ..paths import Location, VirtualLocation
from .common import LetKernel, error, kernel_unless_virtual, resolve, virtual_fd

log = logging.getLogger("vufuse.hypervisor")


async def move_cwd(call: Call, location: Location) -> Reply:
    """Make the caller's real cwd the stand-in of `location` (or `location` if real)."""
    if isinstance(location, VirtualLocation):
        if not location.attrs.is_dir:
            raise error(errno.ENOTDIR)
        if location.mount.options.get("default_permissions") is not None:
            permission.check(location.attrs, call.identity, permission.MAY_EXEC)
        target = call.session.stand_ins.stand_in_for(location)
    else:
        target = location.path
    session = call.session
    answered = False

    def answer() -> None:
        nonlocal answered
        answered = True
        session.tracer.respond(call.notification.id, value=0)

    try:
        await trio.to_thread.run_sync(
            run_chdir_in, call.tid, target, answer, session.tracer.write_mem
        )
    except OSError as failure:
        if answered:
            log.debug("chdir injection failed after the answer", exc_info=True)
            return ANSWERED
        log.warning("vufuse: can't move the cwd of %d: %s", call.tid, failure)
        raise error(failure.errno or errno.EIO) from None
    return ANSWERED


@kernel_unless_virtual
async def handle_chdir(call: Call) -> Reply:
    """chdir(path) into (or out of, relative to a virtual cwd) a mount."""
    try:
        path = call.read_path(0)
    except OSError:
        return CONTINUE
    if call.session.stand_ins.location_of(path) is not None:
        # A chdir straight into a stand-in: ours, injected by move_cwd (or the caller's own,
        # with the same effect).  Matching the string, not the thread, avoids a race with
        # the tracee's next chdir arriving before move_cwd's task has resumed.
        return CONTINUE
    result = await resolve(call, 0)
    return await move_cwd(call, result.location)


@kernel_unless_virtual
async def handle_fchdir(call: Call) -> Reply:
    """fchdir(fd) on a virtual directory fd."""
    description = virtual_fd(call, 0)
    return await move_cwd(call, description.location)


async def handle_getcwd(call: Call) -> Reply:
    """getcwd(buf, size): the virtual path when the real cwd is a stand-in."""
    try:
        real = os.fsencode(os.readlink(f"/proc/{call.tid}/cwd"))
    except OSError:
        return CONTINUE
    location = call.session.stand_ins.location_of(real)
    if location is None:
        return CONTINUE
    call.touched_virtual = True
    if call.session.stand_ins.is_removed(real):
        raise error(errno.ENOENT)  # the kernel's getcwd of an unlinked directory
    path = location.path + b"\0"
    if location.mount.detached:  # lazily unmounted: the kernel's d_path can't reach it
        path = b"(unreachable)" + location.shown_path + b"\0"
    if call.arg(1) < len(path):
        raise error(errno.ERANGE)
    call.write_memory(call.arg(0), path)
    return len(path)


def register(dispatcher: Dispatcher) -> None:
    """Route the cwd syscalls."""
    dispatcher.register("chdir", handle_chdir)
    dispatcher.register("fchdir", handle_fchdir)
    dispatcher.register("getcwd", handle_getcwd)


__all__ = ["LetKernel", "register"]
