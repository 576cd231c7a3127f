"""What devfuse tells the hypervisor's answer cache (docs/decisions.md D20): how long an answer
holds (`Attributes.valid_until`, from the entry and attribute timeouts), and every change that
must make the cache forget (`FuseProvider.watch_changes`) -- and no alarm for mere refreshes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio
from fusehelp import FakeClock, mounted

from hypervisor.provider import SetattrChanges
from vufuse import protocol as p

OP = p.Opcode


class Watch:
    """Counts the provider's change reports."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_valid_until_is_the_shorter_of_entry_and_attribute_timeouts() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, entry_timeout=50, attr_timeout=100) as (fs, _daemon):
        before = time.monotonic()
        attrs = await fs.lookup(1, b"hello.txt")
        after = time.monotonic()
        assert before + 50 <= attrs.valid_until <= after + 50
        fresh = await fs.getattr(attrs.node)
        assert before + 100 <= fresh.valid_until <= time.monotonic() + 100
        clock.advance(200)  # both expired: answers say "never" until asked again
        assert (await fs.lookup(1, b"hello.txt")).valid_until > time.monotonic() + 40


async def test_zero_timeouts_promise_nothing() -> None:
    async with mounted(entry_timeout=0, attr_timeout=0) as (fs, _daemon):
        assert (await fs.lookup(1, b"hello.txt")).valid_until == 0.0


async def test_refreshes_with_the_same_answer_do_not_report() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, entry_timeout=10, attr_timeout=10) as (fs, daemon):
        watch = Watch()
        assert fs.watch_changes(watch) is True
        directory = await fs.lookup(1, b"dir")
        await fs.lookup(directory.node, b"a")
        clock.advance(20)
        lookups = daemon.count(OP.LOOKUP)
        await fs.lookup(directory.node, b"a")  # revalidated: same nodeid, same attributes
        await fs.getattr(directory.node)
        assert daemon.count(OP.LOOKUP) == lookups + 1
        assert watch.count == 0


async def test_changed_attributes_report() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, entry_timeout=10, attr_timeout=10) as (fs, daemon):
        watch = Watch()
        fs.watch_changes(watch)
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.node("hello.txt").mode = 0o100600  # changed behind our back (chmod on the source)
        clock.advance(20)
        await fs.getattr(attrs.node)
        assert watch.count == 1


async def test_daemon_notifications_report() -> None:
    async with mounted(entry_timeout=100, attr_timeout=100) as (fs, daemon):
        watch = Watch()
        fs.watch_changes(watch)
        directory = await fs.lookup(1, b"dir")
        attrs = await fs.lookup(directory.node, b"a")
        await daemon.notify(p.InvalInodeNotification(p.NotifyInvalInodeOut(ino=attrs.node)))
        await _until(lambda: watch.count >= 1)
        await daemon.notify(
            p.InvalEntryNotification(p.NotifyInvalEntryOut(parent=directory.node, namelen=1), b"a")
        )
        await _until(lambda: watch.count >= 2)
        await fs.lookup(directory.node, b"b")
        seen = watch.count
        await daemon.notify(
            p.DeleteNotification(
                p.NotifyDeleteOut(parent=directory.node, child=attrs.node, namelen=1), b"b"
            )
        )
        await _until(lambda: watch.count > seen)


async def test_writes_through_the_mount_report() -> None:
    async with mounted(entry_timeout=100, attr_timeout=100) as (fs, _daemon):
        watch = Watch()
        fs.watch_changes(watch)
        directory = await fs.lookup(1, b"dir")
        attrs = await fs.lookup(directory.node, b"a")
        await fs.setattr(attrs.node, SetattrChanges(mode=0o600))
        assert watch.count >= 1
        seen = watch.count
        await fs.rename(directory.node, b"a", directory.node, b"renamed")
        assert watch.count > seen
        seen = watch.count
        await fs.lookup(directory.node, b"b")
        await fs.unlink(directory.node, b"b")
        assert watch.count > seen
        handle = await fs.open(attrs.node, 2)  # O_RDWR
        seen = watch.count
        await handle.write(0, b"longer than before")
        assert watch.count > seen


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) until the receive loop has applied a notification."""
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.005)
