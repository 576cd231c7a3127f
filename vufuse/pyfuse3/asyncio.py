"""Run pyfuse3 filesystems on asyncio instead of trio: call `enable()` before `main()`.

The main loop only needs a handful of trio names. `enable()` sets ``pyfuse3.trio`` to this
module, which provides them on top of asyncio: Lock, open_nursery, ClosedResourceError,
lowlevel.wait_readable / notify_closing / current_trio_token / current_task, and from_thread.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from types import ModuleType, TracebackType
from typing import Any

from vufuse import pyfuse3 as _package

Lock = asyncio.Lock


def enable() -> None:
    """Switch the main loop to asyncio."""
    shim: ModuleType = sys.modules[__name__]
    shim.lowlevel = shim  # type: ignore[attr-defined]
    shim.from_thread = shim  # type: ignore[attr-defined]
    _package.trio = shim


def disable() -> None:
    """Switch the main loop back to trio."""
    import trio

    _package.trio = trio


def current_trio_token() -> str:
    """Stand-in for trio's token: there is no trio run here."""
    return "asyncio"


class ClosedResourceError(Exception):
    """Raised in a task waiting on an fd that `notify_closing` announced is going away."""


_read_waiters: dict[int, set[asyncio.Future[None]]] = {}


async def wait_readable(fd: int) -> None:
    """Wait until *fd* is readable, or raise ClosedResourceError if it is being closed."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    waiters = _read_waiters.setdefault(fd, set())
    waiters.add(future)
    loop.add_reader(fd, _set_ready, future)
    try:
        await future
    finally:
        loop.remove_reader(fd)
        waiters.discard(future)
        if not waiters:
            _read_waiters.pop(fd, None)


def _set_ready(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def notify_closing(fd: int) -> None:
    """Fail every wait_readable(*fd*) with ClosedResourceError."""
    for future in list(_read_waiters.get(fd, ())):
        if not future.done():
            future.set_exception(ClosedResourceError())


def current_task() -> asyncio.Task[Any] | None:
    """The running asyncio task."""
    return asyncio.current_task()


class _Nursery:
    """Enough of a trio nursery for the main loop: start tasks, wait for all on exit."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> _Nursery:
        return self

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None
    ) -> None:
        self.tasks.add(asyncio.create_task(func(*args), name=name))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        while self.tasks:
            done, _ = await asyncio.wait(tuple(self.tasks))
            self.tasks.difference_update(done)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]


def open_nursery() -> _Nursery:
    """A nursery whose exit waits for every task started in it."""
    return _Nursery()
