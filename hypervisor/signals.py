"""A caller that gets a signal while its syscall waits on a provider (DESIGN §9).

With WAIT_KILLABLE_RECV a tracee whose notification we have received waits for our answer
through any signal but SIGKILL.  The kernel would interrupt a FUSE request: send INTERRUPT and
return whatever the daemon answers (never restarting the call).  So every call that has been
in Python for more than `POLL` seconds is checked, every `POLL` seconds, for a signal its
thread would take now — pending (SigPnd, ShdPnd), not blocked (SigBlk), with a handler
(SigCgt); a default-fatal signal kills it, and a killed caller counts too — and its
handler's cancel scope is then cancelled.  Providers turn the cancellation into their
interrupt (devfuse: INTERRUPT, then the daemon's answer is returned); a call cancelled before
it had an answer gets EINTR.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

POLL = 0.02
"""Seconds a call runs before its thread's signals are looked at, and between two looks."""
GIVE_UP = 2.0
"""Seconds an interrupted call may still wait for its provider's answer before its caller is
answered EINTR anyway.  The kernel waits for ever (a hung daemon keeps a caller that caught
SIGINT stuck); we let the caller go, and the handler finishes in the background — its late
answer is dropped, what it acquired (a lookup, an open file) is kept or released by the
provider's own bookkeeping (decisions D21)."""


def interrupting_signals(tid: int, blocked: int | None = None) -> int:
    """Mask of signals thread `tid` has pending, unblocked and caught; -1 if it is gone or
    dying (SIGKILL: the kernel interrupts the request of a fatal signal too).  `blocked`:
    the mask the call itself sets while it waits (ppoll, pselect6), instead of SigBlk."""
    fields: dict[bytes, int] = {}
    try:
        with open(f"/proc/{tid}/status", "rb") as status:
            for line in status:
                key, _, value = line.partition(b":")
                if key == b"State" and value.strip()[:1] in (b"Z", b"X"):
                    return -1
                if key in (b"SigPnd", b"ShdPnd", b"SigBlk", b"SigCgt"):
                    fields[key] = int(value.strip(), 16)
    except FileNotFoundError:
        return -1
    except (OSError, ValueError):
        return 0
    pending = fields.get(b"SigPnd", 0) | fields.get(b"ShdPnd", 0)
    if blocked is None:
        blocked = fields.get(b"SigBlk", 0)
    return pending & ~blocked & fields.get(b"SigCgt", 0)


class SignalWatch:
    """Calls in flight (notification id → thread, cancel scope, start time)."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[int, trio.CancelScope, float]] = {}
        self._cancelled_at: dict[int, float] = {}
        self._blocked: dict[int, int] = {}
        #: Answers notification `id` with EINTR (the session's tracer); set by the session.
        self.give_up: Callable[[int], None] = lambda notification_id: None

    def enter(self, notification_id: int, tid: int, scope: trio.CancelScope) -> None:
        """A call starts being handled."""
        self._calls[notification_id] = (tid, scope, trio.current_time())

    def leave(self, notification_id: int) -> None:
        """A call is answered."""
        self._calls.pop(notification_id, None)
        self._cancelled_at.pop(notification_id, None)
        self._blocked.pop(notification_id, None)

    def block_while(self, notification_id: int, mask: int) -> None:
        """Call `notification_id` waits with signal mask `mask` (ppoll's, pselect6's)."""
        self._blocked[notification_id] = mask

    async def run(self) -> None:
        """Look at the threads of long calls every POLL seconds (the session's task)."""
        while True:
            await trio.sleep(POLL)
            if not self._calls:
                continue
            now = trio.current_time()
            for notification_id, (tid, scope, started) in list(self._calls.items()):
                if not scope.cancel_called:
                    if started <= now - POLL and interrupting_signals(
                        tid, self._blocked.get(notification_id)
                    ):
                        scope.cancel()
                        self._cancelled_at[notification_id] = now
                    continue
                cancelled = self._cancelled_at.get(notification_id)
                if cancelled is not None and now - cancelled >= GIVE_UP:
                    del self._cancelled_at[notification_id]  # once
                    if interrupting_signals(tid) != -1:  # a dead caller needs no answer
                        self.give_up(notification_id)
