"""The device machinery: malformed replies, daemon death, abort, INTERRUPT, reassembly,
notifications."""

from __future__ import annotations

import errno
import logging
import socket
import struct
import threading

import pytest
import trio
import trio.testing
from fakedaemon import FakeDaemon, socketpair
from fusehelp import FakeClock, mounted, until

from vufuse import protocol as p
from vufuse.devfuse import Connection

O = p.Opcode  # noqa: E741
F = p.InitFlag


async def _errno_of(coroutine: object) -> int:
    try:
        await coroutine  # type: ignore[misc]
    except OSError as exc:
        return exc.errno or 0
    return 0


async def test_malformed_reply_is_eio_for_that_caller_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with mounted(attr_timeout=0) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        # attr_out cut short, with a header len that agrees: only the payload size is wrong
        daemon.corrupt[O.GETATTR] = lambda message: (
            (len(message) - 8).to_bytes(4, "little") + message[4:-8]
        )
        with caplog.at_level(logging.WARNING):
            assert await _errno_of(fs.getattr(attrs.ino)) == errno.EIO
            assert await _errno_of(fs.getattr(attrs.ino)) == errno.EIO
        assert len([r for r in caplog.records if "malformed" in r.getMessage()]) == 1
        # The connection survives: other requests work.
        assert (await fs.lookup(1, b"dir")).is_dir
        assert fs.connection.connected


async def test_header_len_lies_beyond_the_message() -> None:
    async with mounted(attr_timeout=0) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        # An error outside -511..0 is malformed too.
        daemon.corrupt[O.GETATTR] = lambda message: (
            (16).to_bytes(4, "little") + (-600).to_bytes(4, "little", signed=True) + message[8:16]
        )
        assert await _errno_of(fs.getattr(attrs.ino)) == errno.EIO
        assert (await fs.lookup(1, b"dir")).is_dir


async def test_reply_to_unknown_unique_is_ignored() -> None:
    async with mounted() as (fs, daemon):
        await daemon._send(p.encode_error(1000, errno.EIO))
        await daemon._send(b"short")
        assert (await fs.lookup(1, b"dir")).is_dir


async def test_daemon_death_fails_pending_and_later() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        handle = await fs.open(attrs.ino, 0)
        daemon.holds[O.READ] = trio.Event()
        daemon.interrupt_answer = None
        errors: list[int] = []

        async def read() -> None:
            errors.append(await _errno_of(handle.read(0, 10)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            nursery.start_soon(read)
            await trio.sleep(0.02)
            assert fs.connection.pending_count == 2
            daemon.die()
        # In flight: ECONNABORTED (end_requests); later: ENOTCONN (fuse_get_req).
        assert errors == [errno.ECONNABORTED, errno.ECONNABORTED]
        assert await _errno_of(fs.lookup(1, b"dir")) == errno.ENOTCONN
        assert await _errno_of(fs.getattr(1)) == errno.ENOTCONN
        await handle.release()  # must not raise on a dead connection


async def test_daemon_dies_on_a_request() -> None:
    async with mounted() as (fs, daemon):
        daemon.die_on.add(O.LOOKUP)
        assert await _errno_of(fs.lookup(1, b"hello.txt")) == errno.ECONNABORTED


async def test_abort() -> None:
    async with mounted(want=F.ASYNC_READ | F.MAX_PAGES) as (fs, daemon):
        daemon.holds[O.LOOKUP] = trio.Event()
        daemon.interrupt_answer = None
        errors: list[int] = []

        async def lookup() -> None:
            errors.append(await _errno_of(fs.lookup(1, b"hello.txt")))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lookup)
            await trio.sleep(0.02)
            fs.abort()
        assert errors == [errno.ECONNABORTED]
        assert await _errno_of(fs.getattr(1)) == errno.ENOTCONN


async def test_cancellation_sends_interrupt_and_takes_the_answer() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        handle = await fs.open(attrs.ino, 0)
        daemon.holds[O.READ] = trio.Event()
        outcome: list[object] = []

        async def read() -> None:
            with trio.CancelScope() as scope:
                cancel_scopes.append(scope)
                try:
                    outcome.append(await handle.read(0, 10))
                except OSError as exc:
                    outcome.append(exc.errno)

        cancel_scopes: list[trio.CancelScope] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.sleep(0.02)
            cancel_scopes[0].cancel()
        read_unique = daemon.of(O.READ)[0].header.unique
        assert daemon.interrupts == [read_unique]
        interrupt = daemon.of(O.INTERRUPT)[0]
        assert interrupt.header.unique == read_unique | 1
        assert outcome == [errno.EINTR]  # the daemon's answer, as the kernel returns it
        assert fs.connection.pending_count == 0


async def test_interrupted_lookup_that_completes_is_still_counted() -> None:
    async with mounted() as (fs, daemon):
        release = trio.Event()
        daemon.holds[O.LOOKUP] = release
        daemon.interrupt_answer = None  # the daemon ignores the interrupt and answers later
        result: list[object] = []

        async def lookup() -> None:
            with trio.CancelScope() as scope:
                scopes.append(scope)
                result.append(await fs.lookup(1, b"hello.txt"))

        scopes: list[trio.CancelScope] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lookup)
            await trio.sleep(0.02)
            scopes[0].cancel()
            await trio.sleep(0.02)
            assert daemon.interrupts  # sent, and the caller still waits
            release.set()
        nodeid = daemon.node("hello.txt").nodeid
        assert daemon.nlookup[nodeid] == 1
        inode = fs.sb.inodes.find(nodeid)
        assert inode is not None and inode.nlookup == 1


async def test_interrupt_enosys_is_remembered() -> None:
    async with mounted() as (fs, daemon):
        daemon.holds[O.GETATTR] = release = trio.Event()
        daemon.interrupt_answer = None

        async def getattr_cancelled() -> None:
            with trio.move_on_after(0.02):
                await fs.getattr(1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(getattr_cancelled)
            await trio.sleep(0.04)
            unique = daemon.of(O.INTERRUPT)[0].header.unique
            await daemon._send(p.encode_error(unique, errno.ENOSYS))
            await trio.sleep(0.01)
            release.set()
        assert fs.connection.no_interrupt


async def test_interrupt_eagain_is_resent() -> None:
    async with mounted() as (fs, daemon):
        daemon.holds[O.GETATTR] = release = trio.Event()
        daemon.interrupt_answer = None

        async def getattr_cancelled() -> None:
            with trio.move_on_after(0.02):
                await fs.getattr(1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(getattr_cancelled)
            try:
                await until(lambda: daemon.count(O.INTERRUPT) >= 1)
                unique = daemon.of(O.INTERRUPT)[0].header.unique
                await daemon._send(p.encode_error(unique, errno.EAGAIN))
                await until(lambda: daemon.count(O.INTERRUPT) >= 2)
                await trio.sleep(0.05)  # and no third one
                assert daemon.count(O.INTERRUPT) == 2
            finally:
                release.set()  # the caller waits for the answer: never leave it hanging


async def test_slow_daemon_does_not_block_other_requests() -> None:
    async with mounted() as (fs, daemon):
        daemon.delays[O.GETATTR] = 0.2
        done: list[str] = []

        async def slow() -> None:
            await fs.getattr(1)
            done.append("getattr")

        async def fast() -> None:
            await fs.lookup(1, b"hello.txt")
            done.append("lookup")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.sleep(0.01)
            nursery.start_soon(fast)
        assert done == ["lookup", "getattr"]


async def test_split_reply_overrunning_its_length_is_eio() -> None:
    async with mounted() as (fs, daemon):
        unique = fs.connection._unique + 2  # the next request's id
        header = struct.pack("<IiQ", 40, 0, unique)
        fs.connection._on_message(header + b"x" * 8)  # 24 of 40 bytes
        fs.connection._on_message(b"y" * 30)  # 54 bytes: overran
        assert (await fs.lookup(1, b"dir")).is_dir


async def test_notifications_invalidate_caches() -> None:
    clock = FakeClock()
    async with mounted(clock=clock, attr_timeout=100, entry_timeout=100) as (fs, daemon):
        directory = await fs.lookup(1, b"dir")
        attrs = await fs.lookup(directory.ino, b"a")
        handle = await fs.open(attrs.ino, 0)
        await handle.read(0, 5)
        negotiated = daemon.negotiated
        inval_inode = p.InvalInodeNotification(p.NotifyInvalInodeOut(ino=attrs.ino, off=0, len=0))
        await daemon._send(p.encode_notification(inval_inode, negotiated))
        inval_entry = p.InvalEntryNotification(
            p.NotifyInvalEntryOut(parent=directory.ino, namelen=1), b"a"
        )
        await daemon._send(p.encode_notification(inval_entry, negotiated))
        await trio.sleep(0.02)
        getattrs = daemon.count(O.GETATTR)
        await fs.getattr(attrs.ino)
        assert daemon.count(O.GETATTR) == getattrs + 1  # attributes went stale
        reads = daemon.count(O.READ)
        await handle.read(0, 5)
        assert daemon.count(O.READ) == reads + 1  # pages dropped
        lookups = daemon.count(O.LOOKUP)
        await fs.lookup(directory.ino, b"a")
        assert daemon.count(O.LOOKUP) == lookups + 1  # dentry dropped


async def test_requests_use_even_uniques_in_order() -> None:
    async with mounted() as (fs, daemon):
        await fs.lookup(1, b"hello.txt")
        await fs.lookup(1, b"dir")
        uniques = [request.header.unique for request in daemon.requests]
        assert uniques == [2, 4, 6]


def test_fake_daemon_is_importable() -> None:
    assert FakeDaemon


async def test_abort_ends_the_receive_loop() -> None:
    ours, theirs = socketpair()
    connection = Connection(ours)
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.receive_loop)
            await trio.sleep(0.01)
            connection.abort()  # no message arrives, yet the loop must end
    assert not connection.connected
    ours.close()
    theirs.close()


async def test_cancelled_before_init_sends_nothing() -> None:
    async with mounted(wait_init=False, ignore_init=True) as (fs, daemon):
        with trio.move_on_after(0.05):
            await fs.getattr(1)
        assert daemon.count(O.GETATTR) == 0
        assert daemon.count(O.INTERRUPT) == 0
        assert fs.connection.pending_count == 1  # only INIT


async def test_inval_entry_of_an_unused_entry_forgets_it() -> None:
    async with mounted() as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        note = p.InvalEntryNotification(p.NotifyInvalEntryOut(parent=1, namelen=9), b"hello.txt")
        await daemon._send(p.encode_notification(note, daemon.negotiated))
        await trio.sleep(0.05)
        assert daemon.forgets == [(attrs.ino, 1)]
        assert fs.sb.inodes.find(attrs.ino) is None


async def test_observer_sees_each_answered_request_with_its_errno() -> None:
    """The hook `vufuse mounts`/`stats` count through: one call per request, after its answer."""
    seen: list[tuple[int, int]] = []
    async with mounted() as (fs, daemon):
        fs.connection.observer = lambda request, seconds, error: seen.append(
            (p.request_opcode(request), error)
        )
        await fs.lookup(1, b"hello.txt")
        assert await _errno_of(fs.lookup(1, b"no-such-name")) == errno.ENOENT
    assert seen == [(O.LOOKUP, 0), (O.LOOKUP, errno.ENOENT)]


async def test_header_len_claiming_more_than_ever_comes_is_eio(
    autojump_clock: object,
) -> None:
    """A reply whose len promises bytes that never come fails after a grace period (a split
    reply's parts come back to back); the connection carries on."""
    async with mounted(attr_timeout=0) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.corrupt[O.GETATTR] = lambda message: (
            (len(message) + 100).to_bytes(4, "little") + message[4:]
        )
        assert await _errno_of(fs.getattr(attrs.ino)) == errno.EIO
        del daemon.corrupt[O.GETATTR]
        assert (await fs.getattr(attrs.ino)).ino == attrs.ino
        assert fs.connection.connected


async def test_whole_reply_after_a_lying_part_is_taken() -> None:
    """A lying part followed by another request's whole reply: the liar gets EIO, the other
    its answer (not swallowed as the liar's continuation)."""
    async with mounted(attr_timeout=0) as (fs, daemon):
        attrs = await fs.lookup(1, b"hello.txt")
        daemon.corrupt[O.GETATTR] = lambda message: (
            (len(message) + 100).to_bytes(4, "little") + message[4:]
        )
        daemon.delays[O.LOOKUP] = 0.05
        results: dict[str, object] = {}

        async def getattr_() -> None:
            results["getattr"] = await _errno_of(fs.getattr(attrs.ino))

        async def lookup() -> None:
            results["lookup"] = (await fs.lookup(1, b"dir")).is_dir

        async with trio.open_nursery() as nursery:
            nursery.start_soon(getattr_)
            nursery.start_soon(lookup)
        assert results == {"getattr": errno.EIO, "lookup": True}


class _DaemonDuringSend:
    """The raw socket of a Connection whose daemon answers during the send itself, as a
    daemon woken on our CPU does: the reply is waiting when ``send`` returns."""

    def __init__(self, raw: socket.socket, daemon_end: socket.socket) -> None:
        self.raw = raw
        self.daemon_end = daemon_end

    def send(self, message: bytes) -> int:
        sent = self.raw.send(message)
        request = self.daemon_end.recv(65536)
        unique = struct.unpack_from("<IIQ", request)[2]
        self.daemon_end.send(p.encode_error(unique, errno.ENOENT))
        return sent

    def recv_into(self, buffer: bytearray, size: int, flags: int = 0) -> int:
        return self.raw.recv_into(buffer, size, flags)

    def fileno(self) -> int:
        return self.raw.fileno()


async def test_a_reply_waiting_after_the_send_is_taken_by_the_sender() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection = Connection(trio.socket.from_stdlib_socket(ours))
    connection.set_initialized(p.LATEST)
    connection._raw = _DaemonDuringSend(ours, theirs)  # type: ignore[assignment]
    loop_reads = 0
    receive = connection._receive

    async def counted(buffer: bytearray) -> int:
        nonlocal loop_reads
        size = await receive(buffer)
        loop_reads += 1
        return size

    connection._receive = counted  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.receive_loop)
        await trio.testing.wait_all_tasks_blocked()
        request = p.LookupRequest(p.InHeader(nodeid=1), b"missing")
        assert await _errno_of(connection.call(request)) == errno.ENOENT
        assert await _errno_of(connection.call(request)) == errno.ENOENT
        assert loop_reads == 0  # both replies were read by the caller, not the receive task
        assert connection.pending_count == 0
        theirs.close()  # the receive loop still sees the hang-up
        with trio.fail_after(10):
            while connection.connected:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    ours.close()


def _echo_daemon(sock: socket.socket) -> None:
    """A daemon thread answering every request at once (ENOENT) until the socket closes."""
    while True:
        try:
            request = sock.recv(65536)
        except OSError:
            return
        if not request:
            return
        unique = struct.unpack_from("<IIQ", request)[2]
        try:
            sock.send(p.encode_error(unique, errno.ENOENT))
        except OSError:
            return


async def test_many_callers_and_the_receive_loop_lose_no_reply() -> None:
    """Callers reading replies during their send and the receive loop share one buffer: a
    reply read by either must be dispatched before the other reads (a lost reply leaves its
    caller waiting for ever: the 16-process memfs stress hung that way)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection = Connection(trio.socket.from_stdlib_socket(ours))
    connection.set_initialized(p.LATEST)
    daemon = threading.Thread(target=_echo_daemon, args=(theirs,), daemon=True)
    daemon.start()
    answered = 0

    async def caller() -> None:
        nonlocal answered
        request = p.LookupRequest(p.InHeader(nodeid=1), b"missing")
        for _ in range(200):
            assert await _errno_of(connection.call(request)) == errno.ENOENT
            answered += 1

    async def watchdog() -> None:
        await trio.sleep(60)
        connection.abort()  # releases a caller whose reply was lost: its assertion fails

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.receive_loop)
        nursery.start_soon(watchdog)
        async with trio.open_nursery() as callers:
            for _ in range(16):
                callers.start_soon(caller)
        assert answered == 16 * 200
        assert connection.pending_count == 0
        nursery.cancel_scope.cancel()
    ours.close()
    daemon.join(10)
    theirs.close()
