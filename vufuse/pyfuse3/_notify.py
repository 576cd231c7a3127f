"""Messages the filesystem sends the kernel unasked: cache invalidation, page stores, poll wake-ups.

They go out on the same device fd as replies (with unique 0). Writing one can block in the
kernel — invalidating an entry waits for the parent directory's lock — which is why pyfuse3
also offers `invalidate_entry_async`: a single daemon thread that works through a queue.
"""

from __future__ import annotations

import logging
import queue
import threading

from . import _wire

log = logging.getLogger("pyfuse3")

_device_fd: int | None = None
_async_queue: queue.Queue[tuple[int, bytes, int, bool] | None] | None = None


def attach(fd: int) -> None:
    """Send notifications on *fd* from now on (called by init())."""
    global _device_fd
    _device_fd = fd


def detach() -> None:
    """No mounted session any more (called by close())."""
    global _device_fd
    _device_fd = None


def _send(message: bytes) -> None:
    if _device_fd is None:
        raise RuntimeError("pyfuse3 is not initialized")
    _wire.write_message(_device_fd, message)


def invalidate_inode(inode: int, attr_only: bool = False) -> None:
    """Make the kernel drop its cached attributes of *inode*, and its data unless *attr_only*.

    May block while the kernel writes back dirty pages under a writeback cache.
    """
    _send(_wire.encode_inval_inode(inode, attr_only))


def invalidate_entry(inode_p: int, name: bytes, deleted: int = 0) -> None:
    """Make the kernel forget entry *name* in directory *inode_p*.

    With *deleted* (the entry's inode), inotify watchers also hear that it was deleted. Blocks
    while a request on that directory is in flight: do not call it from such a handler.
    """
    if deleted:
        _send(_wire.encode_delete(inode_p, deleted, name))
    else:
        _send(_wire.encode_inval_entry(inode_p, name))


def invalidate_entry_async(
    inode_p: int, name: bytes, deleted: int = 0, ignore_enoent: bool = False
) -> None:
    """Queue `invalidate_entry` for a background thread; failures are logged, not raised."""
    global _async_queue
    if _async_queue is None:
        log.debug("Starting notify worker.")
        _async_queue = queue.Queue()
        threading.Thread(target=_run_async_invalidations, args=(_async_queue,), daemon=True).start()
    _async_queue.put((inode_p, name, deleted, ignore_enoent))


def _run_async_invalidations(requests: queue.Queue[tuple[int, bytes, int, bool] | None]) -> None:
    while (request := requests.get()) is not None:
        inode_p, name, deleted, ignore_enoent = request
        try:
            invalidate_entry(inode_p, name, deleted)
        except FileNotFoundError:
            if not ignore_enoent:
                log.exception(
                    "Failed to submit invalidate_entry request for parent inode %d, name %s",
                    inode_p, name,
                )  # fmt: skip
        except Exception:
            log.exception(
                "Failed to submit invalidate_entry request for parent inode %d, name %s",
                inode_p, name,
            )  # fmt: skip
    log.debug("terminating notify thread")


def stop_async_invalidations() -> None:
    """Let the background thread finish what is queued and exit (when main() returns)."""
    global _async_queue
    if _async_queue is not None:
        _async_queue.put(None)
        _async_queue = None


def notify_store(inode: int, offset: int, data: bytes) -> None:
    """Put *data* into the kernel's page cache of *inode* at *offset* (growing the file)."""
    _send(_wire.encode_store(inode, offset, bytes(data)))


class PollHandle:
    """A kernel poll waiter for one `poll` request; `notify` wakes it once.

    Created only by the dispatcher: the kernel names the waiter with a number (its "kh").
    """

    __slots__ = ("_kernel_handle",)

    _kernel_handle: int

    def __init__(self) -> None:
        raise TypeError("PollHandle cannot be instantiated directly")

    @classmethod
    def _from_kernel(cls, kernel_handle: int) -> PollHandle:
        handle = object.__new__(cls)
        handle._kernel_handle = kernel_handle
        return handle

    def notify(self) -> None:
        """Wake whoever polls the file so it asks `poll` again."""
        _send(_wire.encode_poll_wakeup(self._kernel_handle))

    def __getstate__(self) -> None:
        raise TypeError("PollHandle instances can't be pickled")
