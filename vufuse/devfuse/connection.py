"""Our end of a /dev/fuse socketpair: the request/reply machinery (Linux fs/fuse/dev.c).

One :class:`Connection` per mount.  Requests go out as one SOCK_SEQPACKET message each, with
unique ids assigned like the kernel's (``reqctr += 2``, so the first -- INIT -- is 2; an
INTERRUPT uses ``unique | 1``).  :meth:`Connection.receive_loop` reads the daemon's messages,
matches replies to the pending-request table and hands notifications (unique 0) to a callback.

Failure model, as in the kernel:

- a malformed reply fails only the request it answers, with EIO (logged once);
  the connection survives;
- the daemon hanging up (EOF, ECONNRESET) or :meth:`Connection.abort` fails every request in
  flight with ECONNABORTED and every later one with ENOTCONN (end_requests, fuse_get_req);
- a failed INIT (error reply, wrong major) fails every waiting and later request with
  ECONNREFUSED (the kernel's ``conn_error``);
- a waiter whose trio task is cancelled sends INTERRUPT once and keeps waiting for the
  daemon's answer (the kernel's ``request_wait_answer``): the answer, even a success, is what
  the caller gets, so a LOOKUP that completes despite the interrupt is still counted;
- with a request timeout (the kernel's 7.43 ``request_timeout``, see
  :func:`effective_request_timeout`), a request unanswered for that long aborts the whole
  connection, checked every :data:`TIMEOUT_CHECK_INTERVAL` seconds (fuse_check_timeout).

Replies split over several messages (libfuse's splice from a pipe into our socket) are
reassembled by the header's ``len``.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from vufuse import protocol as p

log = logging.getLogger(__name__)

_OUT_HEADER = struct.Struct("<IiQ")
_HEADER_SIZE = _OUT_HEADER.size
PAGE_SIZE = 4096
#: Largest message we accept: a READ of 256 pages (the kernel's max_pages limit) plus header.
DEFAULT_RECEIVE_LIMIT = 256 * PAGE_SIZE + PAGE_SIZE

NotificationHandler = Callable[[Any], None]
RequestObserver = Callable[[p.Request, "float | None", int], None]
"""Told of each request sent: the request, seconds until its answer (None for one nobody
waits for: FORGET, RELEASE...) and the errno it ended with (0 for success)."""

#: How long the rest of a split reply may take to arrive before the part we have is taken
#: for a reply whose header's len lies (libfuse's splice sends the parts back to back).
PARTIAL_REPLY_TIMEOUT = 1.0

#: A call answered during its own send (:meth:`Connection._take_ready_replies`) needs no
#: checkpoint; every this many in a row, one is made all the same so that a task issuing
#: request after request still lets the others run.
_INLINE_YIELD_EVERY = 16

#: Seconds between two checks for requests past the request timeout, and the smallest timeout
#: (the kernel's FUSE_TIMEOUT_TIMER_FREQ: a timeout is coarse, and never under 15 s).
TIMEOUT_CHECK_INTERVAL = 15


def effective_request_timeout(daemon: int, default: int = 0, maximum: int = 0) -> int:
    """The request timeout in seconds (0: none), as fuse_init_server_timeout computes it.

    ``daemon`` is what the daemon asked for in its INIT reply (FUSE_REQUEST_TIMEOUT),
    ``default`` and ``maximum`` the kernel's ``default_request_timeout`` and
    ``max_request_timeout`` sysctls: the daemon's value, else the default, capped by the
    maximum (which also applies when neither is set), and at least the check interval.
    """
    timeout = daemon or default
    if maximum:
        timeout = min(timeout, maximum) if timeout else maximum
    return max(TIMEOUT_CHECK_INTERVAL, timeout) if timeout else 0


@dataclass(eq=False)
class _Pending:
    """One request sent and not yet answered (the kernel's processing list entry)."""

    request: p.Request
    done: trio.Event = field(default_factory=trio.Event)
    reply: p.Reply[Any] | None = None
    error: int = 0
    background: bool = False
    interrupted: bool = False
    #: trio.current_time() when it was queued, for the request timeout.
    sent_at: float = 0.0


class Connection:
    """The kernel side of one FUSE connection, over a trio SOCK_SEQPACKET socket.

    Run :meth:`receive_loop` in a nursery for the life of the mount; INIT is sent by
    :func:`vufuse.devfuse.init.negotiate`, and every other request waits for it to complete.
    """

    def __init__(
        self,
        sock: trio.socket.SocketType,
        *,
        receive_limit: int = DEFAULT_RECEIVE_LIMIT,
        init_timeout: float | None = None,
        default_request_timeout: int = 0,
        max_request_timeout: int = 0,
    ) -> None:
        self.sock = sock
        self.negotiated: p.Negotiated = p.LATEST
        self.init_timeout = init_timeout
        #: The kernel's default_request_timeout/max_request_timeout sysctls, for this mount.
        self.default_request_timeout = default_request_timeout
        self.max_request_timeout = max_request_timeout
        #: Seconds after which an unanswered request aborts the connection (0: never); set
        #: from the INIT reply.
        self.request_timeout = 0
        self.on_notification: NotificationHandler | None = None
        #: Statistics and tracing outside devfuse (`vufuse mounts`, `vufuse stats`).
        self.observer: RequestObserver | None = None
        #: Awaited by the receive loop after each notification (to send the FORGETs that an
        #: invalidation may have made due).
        self.after_notification: Callable[[], Awaitable[None]] | None = None
        self._notified = False
        # Capabilities the daemon turned down with ENOSYS, remembered like fuse_conn's no_*.
        self.no_interrupt = False
        self.no_access = False
        self.no_flush = False
        self.no_getxattr = False
        self.no_listxattr = False
        self.no_open = False
        self.no_opendir = False
        # ... and on the write side (namei.py, setattr.py, write.py, locks.py, xattr_write.py).
        self.no_create = False
        self.no_rename2 = False
        self.no_fsync = False
        self.no_fsyncdir = False
        self.no_fallocate = False
        self.no_copy_file_range = False
        self.no_lseek = False
        self.no_setxattr = False
        self.no_removexattr = False
        self.no_tmpfile = False
        # poll (poll.py): ENOSYS remembered, the kh counter, the files asked to notify.
        self.no_poll = False
        self.poll_handles = 0
        self.polled: dict[int, Any] = {}
        self._unique = 0
        self._pending: dict[int, _Pending] = {}
        self._send_lock = trio.Lock()
        # The stdlib socket under trio's (non-blocking): a message that fits is sent, and a
        # reply already waiting is read, without a trip through trio's scheduler.
        self._raw: socket.socket | None = getattr(sock, "_sock", None)
        self._initialized = trio.Event()
        self._init_error = 0
        self._abort_error = 0
        self._buffer = bytearray(receive_limit)
        self._partial: bytearray | None = None
        self._partial_length = 0
        self._partial_generation = 0
        self._partial_watched = 0
        self._warned: set[str] = set()
        self._interrupts_to_resend: list[tuple[int, _Pending]] = []
        self._receive_scope = trio.CancelScope()
        #: True while :meth:`receive_loop` reads (its side-task nursery is open): only then
        #: may a sender take waiting replies itself (:meth:`_take_ready_replies`).
        self._receiving = False
        #: Calls answered in a row without a checkpoint (see :data:`_INLINE_YIELD_EVERY`).
        self._inline_answers = 0
        #: Messages the receive loop read in a row without waiting.
        self._unyielded = 0
        self._side_tasks: trio.Nursery

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """False once aborted or the daemon hung up (the kernel's ``fc->connected``)."""
        return not self._abort_error

    @property
    def initialized(self) -> bool:
        """True once INIT has been answered (successfully or not)."""
        return self._initialized.is_set()

    @property
    def pending_count(self) -> int:
        """How many requests await a reply (for tests and debugging)."""
        return len(self._pending)

    def next_unique(self) -> int:
        """A fresh request id: the kernel steps by 2 and keeps odd ids for INTERRUPT."""
        self._unique += p.UNIQUE_STEP
        return self._unique

    @property
    def usable(self) -> bool:
        """INIT succeeded and the connection is alive."""
        return self.initialized and not self._init_error and not self._abort_error

    async def wait_initialized(self, timeout: float | None = None) -> bool:
        """Wait for INIT's answer; True when it succeeded (False: failed, aborted, timed out)."""
        with trio.move_on_after(float("inf") if timeout is None else timeout):
            await self._initialized.wait()
        return self.usable

    def set_initialized(self, negotiated: p.Negotiated) -> None:
        """INIT succeeded: release the queued requests under the agreed terms."""
        self.negotiated = negotiated
        self.request_timeout = effective_request_timeout(
            negotiated.request_timeout, self.default_request_timeout, self.max_request_timeout
        )
        self._initialized.set()

    def fail_init(self) -> None:
        """INIT failed: every waiting and later request fails ECONNREFUSED."""
        self._init_error = errno.ECONNREFUSED
        self._initialized.set()

    def abort(self) -> None:
        """Fail every pending and later request (umount, daemon death, fusectl ``abort``).

        As fuse_abort_conn/end_requests: requests in flight end with ECONNABORTED, later
        ones (and those still waiting for INIT) with ENOTCONN.  The socket stays open: how
        the daemon learns of the unmount (ENODEV on its read) is the hypervisor's business;
        :meth:`aclose` closes our end.
        """
        if self._abort_error:
            return
        self._abort_error = errno.ENOTCONN
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            entry.error = errno.ECONNABORTED
            entry.done.set()
        self._initialized.set()
        self._receive_scope.cancel()

    async def aclose(self) -> None:
        """Abort and close our end of the socketpair."""
        self.abort()
        self.sock.close()
        await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ sending

    async def _wait_usable(self, before_init: bool) -> None:
        if not before_init and not self._initialized.is_set():
            if self.init_timeout is None:
                await self._initialized.wait()
            else:
                with trio.move_on_after(self.init_timeout):
                    await self._initialized.wait()
                if not self._initialized.is_set():
                    raise OSError(errno.ETIMEDOUT, "FUSE daemon has not answered INIT")
        if self._abort_error:
            raise OSError(self._abort_error, "FUSE connection is gone")
        if self._init_error and not before_init:
            raise OSError(self._init_error, "FUSE INIT failed")

    def _stamp(self, request: p.Request) -> tuple[int, p.Request]:
        self._unique = unique = self._unique + p.UNIQUE_STEP
        header = request[0]
        header = p.InHeader(header[0], header[1], unique, *header[3:])
        return unique, type(request)(header, *request[1:])

    async def _send_message(self, message: bytes) -> None:
        raw = self._raw
        if raw is not None and not self._send_lock.locked():  # nothing queued before it
            try:
                raw.send(message)
                return
            except BlockingIOError:
                pass  # the daemon is behind: wait for room below
            except (BrokenPipeError, ConnectionResetError):
                self.abort()
                raise OSError(self._abort_error, "FUSE daemon hung up") from None
        async with self._send_lock:
            try:
                await self.sock.send(message)
            except (BrokenPipeError, ConnectionResetError):
                self.abort()
                raise OSError(self._abort_error, "FUSE daemon hung up") from None

    def _encode(self, request: p.Request) -> bytes:
        try:
            return p.encode_request(request, self.negotiated)
        except p.ProtocolError as exc:
            # An opcode this daemon's minor lacks: the kernel would not send it.
            raise OSError(errno.ENOSYS, str(exc)) from None

    async def call(
        self, request: p.Request, *, before_init: bool = False, interruptible: bool = True
    ) -> Any:
        """Send ``request`` and return its reply's body; error replies raise ``OSError(errno)``.

        The header's ``unique`` is assigned here.  ``before_init`` is for INIT itself;
        ``interruptible=False`` is the kernel's ``args->force`` (FLUSH): no INTERRUPT is sent.
        Cancellation sends INTERRUPT and still waits for the answer, which is returned (or
        raised) as usual: the enclosing cancel scope raises Cancelled at its next checkpoint.
        """
        if self._abort_error or self._init_error or not self._initialized.is_set():
            await self._wait_usable(before_init)
        unique, request = self._stamp(request)
        message = self._encode(request)
        entry = _Pending(request, sent_at=trio.current_time())
        self._pending[unique] = entry
        if log.isEnabledFor(logging.DEBUG):
            header = request[0]
            log.debug(
                "unique: %d, opcode: %s (%d), nodeid: %d, insize: %d, pid: %d",
                unique, _opcode_name(p.request_opcode(request)), p.request_opcode(request),
                header.nodeid,
                len(message), header.pid,
            )  # fmt: skip
        try:
            await self._send_message(message)
        except BaseException:
            self._pending.pop(unique, None)
            raise
        if self._receiving:
            self._take_ready_replies(entry)
        try:
            if entry.done.is_set():
                self._inline_answers += 1
                if self._inline_answers >= _INLINE_YIELD_EVERY:
                    self._inline_answers = 0
                    await trio.lowlevel.checkpoint()
            else:
                await entry.done.wait()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                if interruptible:
                    await self._interrupt(unique, entry)
                await entry.done.wait()
        if self.observer is not None:
            error = entry.error or (-entry.reply.header.error if entry.reply else errno.EIO)
            self.observer(request, trio.current_time() - entry.sent_at, error)
        return self._outcome(entry)

    def _outcome(self, entry: _Pending) -> Any:
        if log.isEnabledFor(logging.DEBUG):
            unique = entry.request[0].unique
            if entry.error:
                log.debug("   unique: %d, failed: %s", unique, errno.errorcode[entry.error])
            elif entry.reply is not None:
                log.debug("   unique: %d, error: %d", unique, entry.reply.header.error)
        if entry.error:
            raise OSError(entry.error, f"FUSE {type(entry.request).__name__}")
        assert entry.reply is not None
        error = -entry.reply.header.error
        if error:
            raise OSError(error, f"FUSE {type(entry.request).__name__}")
        return entry.reply.body

    async def send_background(self, request: p.Request) -> None:
        """Send a request whose reply nobody waits for (RELEASE, as the kernel does).

        FORGET and BATCH_FORGET take no reply and are not entered in the pending table.
        """
        if self._abort_error or self._init_error:
            return
        if not self._initialized.is_set():
            await self._initialized.wait()
            if self._abort_error or self._init_error:
                return
        unique, request = self._stamp(request)
        message = self._encode(request)
        if p.request_opcode(request) not in p.NO_REPLY_OPCODES:
            self._pending[unique] = _Pending(
                request, background=True, sent_at=trio.current_time()
            )
        try:
            await self._send_message(message)
        except OSError:
            self._pending.pop(unique, None)
            return
        if self.observer is not None:
            self.observer(request, None, 0)

    async def send_notify_reply(self, request: p.NotifyReplyRequest) -> None:
        """NOTIFY_REPLY answering a RETRIEVE: sent under the daemon's ``notify_unique`` (kept
        as given, not stamped) and never answered (fuse_simple_notify_reply)."""
        if not self.usable:
            return
        try:
            await self._send_message(self._encode(request))
        except OSError:
            pass

    async def _interrupt(self, unique: int, entry: _Pending) -> None:
        """Queue an INTERRUPT for a sent request (the kernel's queue_interrupt)."""
        if self.no_interrupt or entry.done.is_set() or self._abort_error:
            return
        entry.interrupted = True
        interrupt = p.InterruptRequest(
            p.InHeader(unique=unique | p.INTERRUPT_UNIQUE_BIT), p.InterruptIn(unique=unique)
        )
        try:
            await self._send_message(p.encode_request(interrupt, self.negotiated))
        except OSError:
            pass

    async def _watch_request_timeout(self) -> None:
        """Abort the connection when a request outlives the request timeout.

        Like fuse_check_timeout: every :data:`TIMEOUT_CHECK_INTERVAL` seconds, any request
        (background ones too) sent more than ``request_timeout`` seconds ago aborts the
        connection -- the daemon is taken for hung; every waiter is released.  INIT itself
        is held to the mount's default (the kernel has none before INIT): a daemon that never
        answers it then fails its waiting callers with ENOTCONN instead of holding them.
        """
        for_init = effective_request_timeout(
            0, self.default_request_timeout, self.max_request_timeout
        )
        if for_init:
            with trio.move_on_after(for_init):
                await self._initialized.wait()
            if not self._initialized.is_set():
                log.warning("FUSE daemon did not answer INIT within %d s: connection aborted",
                            for_init)  # fmt: skip
                self.abort()
                return
        await self._initialized.wait()
        timeout = self.request_timeout
        if not timeout or not self.usable:
            return
        while not self._abort_error:
            await trio.sleep(TIMEOUT_CHECK_INTERVAL)
            now = trio.current_time()
            if any(now - entry.sent_at > timeout for entry in self._pending.values()):
                log.warning(
                    "FUSE daemon left a request unanswered for over %d s: connection aborted",
                    timeout,
                )
                self.abort()

    # ------------------------------------------------------------------ receiving

    async def receive_loop(self) -> None:
        """Read the daemon's messages until it hangs up or the connection is aborted."""
        buffer = self._buffer
        view = memoryview(buffer)
        try:
            # Sends the loop causes (INTERRUPT again, FORGETs after a notification) run beside
            # it: sending from the loop itself could deadlock against a daemon that is
            # blocked writing to us.
            async with trio.open_nursery() as self._side_tasks:
                self._side_tasks.start_soon(self._watch_request_timeout)
                with self._receive_scope:
                    self._receiving = self._raw is not None
                    try:
                        await self._receive_messages(buffer, view)
                    finally:
                        self._receiving = False
                self._side_tasks.cancel_scope.cancel()
        finally:
            self.abort()

    async def _expire_partial(self, generation: int) -> None:
        """A split reply whose rest never comes: its header's len lied; EIO to its request."""
        await trio.sleep(PARTIAL_REPLY_TIMEOUT)
        if self._partial is not None and self._partial_generation == generation:
            message = bytes(self._partial)
            self._partial = None
            self._malformed(message, "reply shorter than its header's len")

    async def _receive_messages(self, buffer: bytearray, view: memoryview) -> None:
        """The loop proper: every message, until EOF or an unrecoverable error."""
        while not self._abort_error:
            try:
                size = await self._receive(buffer)
            except trio.ClosedResourceError:
                return
            except ConnectionResetError:
                break  # the daemon died with requests unread
            except OSError as exc:
                self._warn_once("recv", "FUSE device read failed: %s", exc)
                break
            if size == 0:
                break  # SOCK_SEQPACKET end of file: the daemon closed its end
            self._take_message(size, view)

    def _take_message(self, size: int, view: memoryview) -> None:
        """One message of ``size`` bytes just read into ``view``: dispatch it, then start
        what it makes due (expiry of a split reply, FORGETs after a notification,
        INTERRUPTs again).  Called with no checkpoint since the read: the buffer is shared
        by the receive loop and :meth:`_take_ready_replies`."""
        if size > len(view):
            self._malformed(bytes(view[:_HEADER_SIZE]), f"{size}-byte message too big")
            return
        self._on_message(bytes(view[:size]))
        if self._partial is not None and self._partial_generation != self._partial_watched:
            self._partial_watched = self._partial_generation
            self._side_tasks.start_soon(self._expire_partial, self._partial_generation)
        if self._notified and self.after_notification is not None:
            self._notified = False
            self._side_tasks.start_soon(self.after_notification)
        while self._interrupts_to_resend:
            unique, entry = self._interrupts_to_resend.pop()
            self._side_tasks.start_soon(self._interrupt, unique, entry)

    def _take_ready_replies(self, entry: _Pending) -> None:
        """Read, in the sender's task, the messages already waiting, until ``entry`` is
        answered or none is left (never a wait).

        A daemon woken on our CPU usually runs its whole request during our send: its reply
        then needs no park, epoll round and receive-task pass.  Messages are still taken
        one at a time in socket order, each dispatched before any checkpoint, so the receive
        loop (which reads with no checkpoint between its read and its dispatch either, see
        :meth:`_receive`) never sees a buffer overwritten under it.  An error or end of file
        is left to the receive loop, which meets it again on its next read."""
        raw = self._raw
        assert raw is not None
        view = memoryview(self._buffer)
        for _ in range(16):
            if self._abort_error:
                return
            try:
                size = raw.recv_into(self._buffer, 0, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            except OSError:  # nothing waiting (EAGAIN), closed, or the loop's business
                return
            if size == 0:
                return
            self._take_message(size, view)
            if entry.done.is_set():
                return

    async def _receive(self, buffer: bytearray) -> int:
        """One message into ``buffer`` (its full size: MSG_TRUNC).  A message already waiting
        is taken at once; after 16 in a row without a wait, the other tasks run first.

        Never a checkpoint between the read and the return (trio's ``recv_into`` has one
        after a read that succeeds at once): senders read waiting replies into the same
        buffer (:meth:`_take_ready_replies`), and one that ran there would overwrite this
        message before it is dispatched -- a lost reply, a caller waiting for ever."""
        raw = self._raw
        if raw is None:
            return await self.sock.recv_into(buffer, 0, socket.MSG_TRUNC)
        if self._unyielded >= 16:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()
        while True:
            if raw.fileno() < 0:
                raise trio.ClosedResourceError
            try:
                size = raw.recv_into(buffer, 0, socket.MSG_TRUNC)
            except BlockingIOError:
                self._unyielded = 0
                await trio.lowlevel.wait_readable(raw)
                continue
            self._unyielded += 1
            return size

    def _on_message(self, data: bytes) -> None:
        """Reassemble split replies by the header's len, then dispatch each whole one."""
        if self._partial is not None:
            if self._starts_another_reply(data):
                # The part we hold lied about its length: a whole reply to another request
                # came instead of the rest.  Fail the liar, then take the newcomer.
                message = bytes(self._partial)
                self._partial = None
                self._malformed(message, "reply shorter than its header's len")
            else:
                self._partial += data
                if len(self._partial) < self._partial_length:
                    return
                message = bytes(self._partial)
                self._partial = None
                if len(message) != self._partial_length:
                    self._malformed(message, "split reply overran its length")
                    return
                self._dispatch(message)
                return
        if len(data) >= _HEADER_SIZE:
            length = _OUT_HEADER.unpack_from(data)[0]
            if len(data) < length <= len(self._buffer):
                self._partial = bytearray(data)
                self._partial_length = length
                self._partial_generation += 1
                return
        self._dispatch(data)

    def _starts_another_reply(self, data: bytes) -> bool:
        """Whether ``data``, arriving while a split reply is incomplete, is rather a whole
        reply of its own: its header's len is its size and it names another pending request
        (a continuation of file data matching both by chance is not a practical worry)."""
        if len(data) < _HEADER_SIZE or self._partial is None:
            return False
        length, _, unique = _OUT_HEADER.unpack_from(data)
        held = _OUT_HEADER.unpack_from(self._partial)[2]
        return length == len(data) and unique != held and unique in self._pending

    def _dispatch(self, message: bytes) -> None:
        try:
            header = p.decode_out_header(message)
        except p.ProtocolError as exc:
            self._malformed(message, str(exc))
            return
        if header.unique == 0:
            self._notify(message)
            return
        if header.unique & p.INTERRUPT_UNIQUE_BIT:
            self._interrupt_reply(header)
            return
        entry = self._pending.pop(header.unique, None)
        if entry is None:
            self._warn_once("unknown-unique", "FUSE reply to unknown request %d", header.unique)
            return
        try:
            entry.reply = p.decode_reply(message, entry.request, self.negotiated)
        except p.ProtocolError as exc:
            self._warn_once(
                "malformed", "malformed FUSE reply to %s: %s", type(entry.request).__name__, exc
            )
            entry.error = errno.EIO
        entry.done.set()

    def _malformed(self, message: bytes, why: str) -> None:
        """A reply we cannot parse: EIO to the request it names, if any; log once."""
        self._warn_once("malformed", "malformed FUSE message: %s", why)
        if len(message) < _HEADER_SIZE:
            return
        unique = _OUT_HEADER.unpack_from(message)[2]
        entry = self._pending.pop(unique, None)
        if entry is not None:
            entry.error = errno.EIO
            entry.done.set()

    def _interrupt_reply(self, header: p.OutHeader) -> None:
        """ENOSYS: the daemon has no interrupts; EAGAIN: it wants the INTERRUPT again."""
        unique = header.unique & ~p.INTERRUPT_UNIQUE_BIT
        if header.error == -errno.ENOSYS:
            self.no_interrupt = True
        elif header.error == -errno.EAGAIN:
            entry = self._pending.get(unique)
            if entry is not None:
                self._interrupts_to_resend.append((unique, entry))

    def _notify(self, message: bytes) -> None:
        try:
            notification = p.decode_notification(message, self.negotiated)
        except p.ProtocolError as exc:
            self._warn_once("notify", "malformed FUSE notification: %s", exc)
            return
        if self.on_notification is not None:
            self.on_notification(notification)
            self._notified = True

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
        else:
            log.debug(message, *args)


def _opcode_name(opcode: int) -> str:
    try:
        return p.Opcode(opcode).name
    except ValueError:
        return "UNKNOWN"
