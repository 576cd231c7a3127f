"""Shared fixtures: a FuseProvider mounted on a FakeDaemon over a socketpair."""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from fakedaemon import FakeDaemon, Symlink, socketpair

from vufuse.devfuse import FuseProvider, MountOptions, start_fuse

TREE: dict[str, Any] = {
    "hello.txt": b"Hello, world!\n",
    "big.bin": bytes(range(256)) * 1200,  # 307200 bytes: 75 pages
    "dir": {"a": b"alpha", "b": b"bravo", "sub": {"deep": b"deep"}},
    "link": Symlink(b"hello.txt"),
    "empty": {},
}

OPTIONS = MountOptions(
    fd=3, rootmode=stat_module.S_IFDIR | 0o755, user_id=os.getuid(), group_id=os.getgid()
)


class FakeClock:
    """A monotonic clock the tests move by hand (entry and attribute timeouts)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


@asynccontextmanager
async def mounted(
    tree: dict[str, Any] | None = None,
    *,
    options: MountOptions = OPTIONS,
    setup: Callable[[FakeDaemon], None] | None = None,
    wait_init: bool = True,
    clock: FakeClock | None = None,
    dentry_limit: int = 32768,
    request_timeouts: tuple[int, int] = (0, 0),
    **daemon_options: Any,
) -> AsyncIterator[tuple[FuseProvider, FakeDaemon]]:
    """Start a FakeDaemon and a FuseProvider on a fresh socketpair; INIT already done.

    ``request_timeouts``: the mount's default and maximum request timeouts (the sysctls).
    """
    ours, theirs = socketpair()
    daemon = FakeDaemon(theirs, TREE if tree is None else tree, **daemon_options)
    if setup is not None:
        setup(daemon)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        provider = await start_fuse(
            nursery, ours, options, clock=clock or FakeClock(), dentry_limit=dentry_limit,
            default_request_timeout=request_timeouts[0], max_request_timeout=request_timeouts[1],
        )  # fmt: skip
        if wait_init:
            with trio.fail_after(5):
                await provider.wait_initialized()
        try:
            yield provider, daemon
        finally:
            nursery.cancel_scope.cancel()
            ours.close()
            if not daemon.dead:
                theirs.close()
