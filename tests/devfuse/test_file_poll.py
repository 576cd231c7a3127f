"""POLL as fs/fuse/file.c's fuse_file_poll sends it, NOTIFY_POLL as dev.c wakes (D26)."""

from __future__ import annotations

import errno
import os
import select

import trio
from fusehelp import mounted

from hypervisor.provider import DEFAULT_POLLMASK
from vufuse import protocol as p

O = p.Opcode  # noqa: E741


async def test_poll_carries_fh_kh_events_and_schedule_notify() -> None:
    async with mounted() as (fs, daemon):
        ino = (await fs.lookup(1, b"hello.txt")).ino
        first = await fs.open(ino, os.O_RDONLY)
        second = await fs.open(ino, os.O_RDONLY)
        daemon.poll_revents = select.POLLOUT
        assert await first.poll(select.POLLIN | select.POLLERR) == select.POLLOUT
        woken: list[str] = []
        daemon.poll_revents = 0
        assert await second.poll(select.POLLPRI, lambda: woken.append("second")) == 0
        asked = daemon.of(O.POLL)
        assert [(one.arg.fh, one.arg.flags, one.arg.events) for one in asked] == [
            (first.file.fh, 0, select.POLLIN | select.POLLERR),
            (second.file.fh, p.PollFlag.SCHEDULE_NOTIFY, select.POLLPRI),
        ]
        # Each open file has its own poll handle, numbered per connection.
        assert asked[0].arg.kh != asked[1].arg.kh
        assert asked[0].header.nodeid == first.file.inode.nodeid
        await daemon.notify(p.PollNotification(p.NotifyPollWakeupOut(kh=asked[0].arg.kh)))
        await daemon.notify(p.PollNotification(p.NotifyPollWakeupOut(kh=999)))  # unknown
        await trio.sleep(0.05)
        assert woken == []  # the first file never asked to be notified
        await daemon.notify(p.PollNotification(p.NotifyPollWakeupOut(kh=asked[1].arg.kh)))
        with trio.fail_after(5):
            while not woken:
                await trio.sleep(0.01)
        assert woken == ["second"]
        await second.release()
        await daemon.notify(p.PollNotification(p.NotifyPollWakeupOut(kh=asked[1].arg.kh)))
        await trio.sleep(0.05)
        assert woken == ["second"]  # a released file is no longer registered


async def test_enosys_means_always_ready_and_is_remembered() -> None:
    async with mounted() as (fs, daemon):
        ino = (await fs.lookup(1, b"hello.txt")).ino
        handle = await fs.open(ino, os.O_RDONLY)
        daemon.enosys.add(O.POLL)
        assert await handle.poll(select.POLLIN, lambda: None) == DEFAULT_POLLMASK
        assert await handle.poll(select.POLLIN) == DEFAULT_POLLMASK
        assert daemon.count(O.POLL) == 1


async def test_other_errors_are_pollerr_and_directories_are_not_asked() -> None:
    async with mounted() as (fs, daemon):
        handle = await fs.open((await fs.lookup(1, b"hello.txt")).ino, os.O_RDONLY)
        daemon.errors[O.POLL] = errno.EIO
        assert await handle.poll(select.POLLIN) == select.POLLERR
        directory = await fs.open(1, os.O_RDONLY | os.O_DIRECTORY)
        before = daemon.count(O.POLL)
        assert await directory.poll(select.POLLIN) == DEFAULT_POLLMASK
        assert daemon.count(O.POLL) == before
