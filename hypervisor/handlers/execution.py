"""execve/execveat: the O_CLOEXEC virtual fds are flushed when an exec is going to succeed;
exec of a file on a mount is not emulated yet (ENOEXEC)."""

from __future__ import annotations

import errno
import os
import stat as stat_module

from ..abi import AT_EMPTY_PATH, AT_FDCWD
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from .common import LetKernel, error, resolve
from .fdtable import flush_cloexec_at_exec


def _real_target(call: Call) -> str | None:
    """The file a real exec names, as vufuse can reach it (None: can't tell)."""
    try:
        if call.name == "execveat":
            dirfd, path, flags = call.int_arg(0), call.read_path(1), call.int_arg(4)
            if not path and flags & AT_EMPTY_PATH:
                return f"/proc/{call.tid}/fd/{dirfd}"
            if not path.startswith(b"/"):
                where = "cwd" if dirfd == AT_FDCWD else f"fd/{dirfd}"
                return f"/proc/{call.tid}/{where}/" + os.fsdecode(path)
        else:
            path = call.read_path(0)
            if not path.startswith(b"/"):
                return f"/proc/{call.tid}/cwd/" + os.fsdecode(path)
        return os.fsdecode(path)
    except OSError:
        return None


def _will_run(target: str | None) -> bool:
    """A regular file with an execute bit that we (the same user) may execute."""
    if target is None:
        return False
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return stat_module.S_ISREG(mode) and os.access(target, os.X_OK)


async def handle_execve(call: Call) -> Reply:
    """execve(path, argv, envp), execveat(dirfd, path, argv, envp, flags)."""
    empty = call.name == "execveat" and call.int_arg(4) & AT_EMPTY_PATH
    if len(call.session.mounts) and not empty:
        path_arg, dirfd_arg = (1, 0) if call.name == "execveat" else (0, None)
        try:
            result = await resolve(call, path_arg, dirfd_arg)
        except LetKernel:
            pass
        else:
            if result.location.is_virtual:
                raise error(errno.ENOEXEC)  # exec from a mount: not yet
            raise error(errno.EXDEV)  # a real file reached through a mount
    if _will_run(_real_target(call)):
        await flush_cloexec_at_exec(call)
    return CONTINUE


def register(dispatcher: Dispatcher) -> None:
    """Route execve and execveat."""
    dispatcher.register("execve execveat", handle_execve)
