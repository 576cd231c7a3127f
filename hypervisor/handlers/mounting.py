"""mount, umount2, statmount, listmount, close_range: always seen by Python.

Nothing to virtualize yet: vufuse/devfuse will hook mount(2) of fuse file systems here.  Until
then the kernel answers (EPERM for an unprivileged caller).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..dispatch import CONTINUE, Call, Dispatcher, Reply

MountHook = Callable[[Call], Awaitable[Reply]]


async def let_kernel(call: Call) -> Reply:
    """CONTINUE: the syscall concerns no virtual object yet."""
    return CONTINUE


def register(dispatcher: Dispatcher) -> None:
    """Route the always-trapped syscalls to their (for now trivial) handlers."""
    dispatcher.register("mount umount2 statmount listmount close_range", let_kernel)
