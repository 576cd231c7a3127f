"""INIT negotiation (Linux fs/fuse/inode.c: fuse_send_init, process_init_reply).

INIT is asynchronous, as in the kernel: the mount exists before the daemon answers, and every
other request waits in :class:`~vufuse.devfuse.connection.Connection` until it does.  We offer
protocol 7.45 with only the flags whose semantics this emulator implements; libfuse turns on
whatever is offered, so offering a flag we do not honour would change what daemons do.
"""

from __future__ import annotations

import logging

from vufuse import protocol as p

from .connection import PAGE_SIZE, Connection

log = logging.getLogger(__name__)

F = p.InitFlag

#: What we offer, and why each one (docs/devfuse.md has the full table):
OFFERED_FLAGS: int = (
    F.ASYNC_READ  # we may have several READs of one file in flight
    | F.BIG_WRITES  # harmless on a read path; every kernel since 2.6.26 offers it
    | F.AUTO_INVAL_DATA  # page cache dropped when mtime/size change (file.py)
    | F.DO_READDIRPLUS  # readdir.py counts lookups of READDIRPLUS entries
    | F.READDIRPLUS_AUTO  # plus only at offset 0 or after a lookup in the dir
    | F.PARALLEL_DIROPS  # we never serialise lookups or readdirs in one directory
    | F.MAX_PAGES  # READ size from the daemon's max_pages (capped, see below)
    | F.NO_OPEN_SUPPORT  # OPEN answered ENOSYS: open succeeds with fh 0, no RELEASE
    | F.NO_OPENDIR_SUPPORT  # the same for OPENDIR
    | F.DONT_MASK  # namei.py leaves the umask to the daemon (it gets it in CREATE/MKNOD/MKDIR)
    | F.HANDLE_KILLPRIV_V2  # write.py/setattr.py send KILL_SUIDGID instead of a SETATTR
    | F.POSIX_LOCKS  # locks.py; without it the hypervisor's own lock table (handlers/writes.py)
    | F.FLOCK_LOCKS  # the same for flock(2)
    | F.ATOMIC_O_TRUNC  # OPEN carries O_TRUNC, no SETATTR after it (file.py, provider_write.py)
    | F.REQUEST_TIMEOUT  # connection.py aborts on a request older than the daemon's timeout
    | F.WRITEBACK_CACHE  # writeback.py: dirty pages, local size and times (D24)
)
"""Never PASSTHROUGH, DAX, SUBMOUNTS, OVER_IO_URING,
EXPORT_SUPPORT, POSIX_ACL, HANDLE_KILLPRIV (v1): not emulated yet.  ABORT_ERROR only changes
what the daemon's read of the device returns after an abort (ECONNABORTED instead of ENODEV):
that is the hypervisor's device emulation, so it is not offered from here."""

MAX_READAHEAD = 128 * 1024
"""The kernel offers its bdi readahead window, VM_READAHEAD_PAGES (128 KiB)."""

MAX_PAGES_LIMIT = 64
"""Cap on max_pages: a READ reply of 64 pages (256 KiB + header) fits the daemon's socket send
buffer even at a stock distribution's unprivileged ceiling (~416 KiB, DESIGN §5); the kernel's
own limit is 256."""


def init_request(flags: int = OFFERED_FLAGS) -> p.InitRequest:
    """The INIT request as the kernel sends it (no credentials: uid/gid/pid 0)."""
    offer = p.kernel_init_request(flags=flags, max_readahead=MAX_READAHEAD)
    return p.InitRequest(p.InHeader(nodeid=0), offer)


async def negotiate(
    connection: Connection,
    *,
    flags: int = OFFERED_FLAGS,
    max_pages_limit: int = MAX_PAGES_LIMIT,
) -> p.Negotiated | None:
    """Send INIT, apply the reply, release the queued requests; None when INIT failed.

    A failure (an error reply, another major, a malformed reply, the daemon gone) leaves the
    connection refusing every request, as the kernel's ``conn_error`` does.
    """
    request = init_request(flags)
    try:
        body = await connection.call(request, before_init=True)
        negotiated = p.kernel_accept_init(body, request.arg, max_pages_limit)
    except OSError as exc:
        log.debug("FUSE INIT failed: %s", exc)
        if connection.connected:
            connection.fail_init()
        return None
    except p.ProtocolError as exc:
        log.warning("FUSE INIT refused: %s", exc)
        connection.fail_init()
        return None
    connection.set_initialized(negotiated)
    return negotiated


def read_chunk_size(negotiated: p.Negotiated, max_read: int) -> int:
    """Largest READ we send: ``min(max_read, max_pages pages)``, like fuse_direct_io."""
    return max(PAGE_SIZE, min(max_read, negotiated.max_pages * PAGE_SIZE))
