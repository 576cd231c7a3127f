"""The request timeout (FUSE 7.43, fuse_check_timeout): a request the daemon leaves
unanswered past the timeout aborts the connection; checked every 15 s, never under 15 s.

Time is trio's MockClock (autojump): no test waits for real seconds.
"""

from __future__ import annotations

import errno
import logging

import pytest
import trio
import trio.testing
from fusehelp import mounted

from vufuse import protocol as p
from vufuse.devfuse.connection import TIMEOUT_CHECK_INTERVAL, effective_request_timeout

O = p.Opcode  # noqa: E741


def _asks(seconds: int):  # type: ignore[no-untyped-def]
    """An init_reply_hook: the daemon asks for a request timeout of ``seconds``."""
    return lambda reply: reply._replace(request_timeout=seconds)


@pytest.mark.parametrize(
    ("daemon", "default", "maximum", "expected"),
    [
        (0, 0, 0, 0),  # nobody asked: no timeout, as the kernel's default
        (5, 0, 0, 15),  # never under the check interval
        (30, 0, 0, 30),
        (0, 20, 0, 20),  # default_request_timeout when the daemon sets none
        (40, 20, 0, 40),  # the daemon's own value wins over the default
        (40, 0, 30, 30),  # max_request_timeout caps it
        (0, 0, 25, 25),  # ... and applies on its own
        (0, 20, 25, 20),
        (100, 20, 25, 25),
    ],
)
def test_effective_timeout(daemon: int, default: int, maximum: int, expected: int) -> None:
    assert effective_request_timeout(daemon, default, maximum) == expected


async def _held_lookup(fs: object, results: list[object]) -> None:
    try:
        results.append(await fs.lookup(1, b"hello.txt"))  # type: ignore[attr-defined]
    except OSError as exc:
        results.append(exc.errno)


async def test_unanswered_request_aborts_the_connection(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with mounted(setup=lambda d: setattr(d, "init_reply_hook", _asks(20))) as (fs, daemon):
        assert fs.connection.request_timeout == 20
        daemon.holds[O.LOOKUP] = trio.Event()  # never set: a hung daemon
        daemon.interrupt_answer = None
        results: list[object] = []
        started = trio.current_time()
        with caplog.at_level(logging.WARNING):
            await _held_lookup(fs, results)
        waited = trio.current_time() - started
        # Aborted at the first check after 20 s: in flight ECONNABORTED, later ENOTCONN.
        assert results == [errno.ECONNABORTED]
        assert 20 <= waited <= 20 + TIMEOUT_CHECK_INTERVAL
        assert not fs.connection.connected
        with pytest.raises(OSError) as later:
            await fs.getattr(1)
        assert later.value.errno == errno.ENOTCONN
        warnings = [r for r in caplog.records if "unanswered" in r.getMessage()]
        assert len(warnings) == 1


async def test_mount_default_applies_and_every_waiter_is_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with mounted(request_timeouts=(30, 0)) as (fs, daemon):
        assert fs.connection.request_timeout == 30
        daemon.holds[O.LOOKUP] = trio.Event()
        daemon.interrupt_answer = None
        results: list[object] = []
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(_held_lookup, fs, results)
        assert results == [errno.ECONNABORTED] * 5


async def test_slow_but_answering_daemon_is_not_aborted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with mounted(setup=lambda d: setattr(d, "init_reply_hook", _asks(20))) as (fs, daemon):
        daemon.delays[O.LOOKUP] = 10.0
        daemon.delays[O.GETATTR] = 10.0
        for _ in range(6):  # a minute of mock time, every request within the timeout
            await fs.lookup(1, b"hello.txt")
            await fs.getattr(1)
        assert fs.connection.connected


async def test_no_timeout_waits_for_ever(autojump_clock: trio.testing.MockClock) -> None:
    async with mounted() as (fs, daemon):
        assert fs.connection.request_timeout == 0
        hold = trio.Event()
        daemon.holds[O.LOOKUP] = hold
        daemon.interrupt_answer = None
        results: list[object] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_held_lookup, fs, results)
            await trio.sleep(3600)
            assert results == [] and fs.connection.connected
            hold.set()
        assert len(results) == 1 and not isinstance(results[0], int)


async def test_timeout_is_offered_and_capped(autojump_clock: trio.testing.MockClock) -> None:
    async with mounted(
        request_timeouts=(0, 25), setup=lambda d: setattr(d, "init_reply_hook", _asks(600))
    ) as (fs, daemon):
        assert daemon.init_request is not None
        assert p.offered_flags(daemon.init_request) & p.InitFlag.REQUEST_TIMEOUT
        assert fs.connection.request_timeout == 25


async def test_init_never_answered_fails_waiters_with_enotconn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Beyond the kernel (no timeout before INIT): with a mount default, a daemon that never
    answers INIT fails the callers waiting for it with ENOTCONN after that long."""
    async with mounted(ignore_init=True, wait_init=False, request_timeouts=(20, 0)) as (fs, _):
        started = trio.current_time()
        with pytest.raises(OSError) as waited:
            await fs.lookup(1, b"hello.txt")
        assert waited.value.errno == errno.ENOTCONN
        assert 20 <= trio.current_time() - started <= 21
        assert not await fs.wait_initialized(1)


async def test_init_never_answered_without_timeout_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with mounted(ignore_init=True, wait_init=False) as (fs, _):
        with trio.move_on_after(3600):
            await fs.lookup(1, b"hello.txt")
            raise AssertionError("answered without INIT")
        assert fs.connection.connected
