"""INIT negotiation and what the agreed version means for struct sizes.

Both sides send the version they speak; when the majors match, both use the
smaller minor.  The kernel records the daemon's minor and every compatibility
test it makes is ``minor < N`` with N at most its own minor, so that *is*
``min(kernel, daemon)``; libfuse likewise keeps the kernel's minor.  We make
the minimum explicit in :class:`Negotiated`, which every codec takes, so one
object carries "how to talk to this peer".

Kernel side: :func:`kernel_init_request`, then :func:`kernel_accept_init` on
the daemon's reply.  Daemon side: :func:`daemon_answer_init` on the kernel's
INIT.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import NamedTuple

from .constants import (
    COMPAT_22_INIT_OUT_SIZE,
    COMPAT_ATTR_OUT_SIZE,
    COMPAT_ENTRY_OUT_SIZE,
    COMPAT_INIT_OUT_SIZE,
    COMPAT_MKNOD_IN_SIZE,
    COMPAT_SETXATTR_IN_SIZE,
    COMPAT_STATFS_SIZE,
    COMPAT_WRITE_IN_SIZE,
    KERNEL_MINOR_VERSION,
    KERNEL_VERSION,
    InitFlag,
    init_flags_known_at,
)
from .errors import ProtocolError
from .structs import (
    ATTR_OUT,
    CREATE_IN,
    ENTRY_OUT,
    INIT_IN,
    INIT_OUT,
    MKNOD_IN,
    SETXATTR_IN,
    STATFS_OUT,
    WRITE_IN,
    InitIn,
    InitOut,
)

# Kernel defaults used when the daemon leaves a limit at 0 (fs/fuse/fuse_i.h).
DEFAULT_MAX_PAGES_PER_REQ = 32
DEFAULT_MAX_PAGES_LIMIT = 256
DEFAULT_MAX_BACKGROUND = 12
DEFAULT_CONGESTION_THRESHOLD = DEFAULT_MAX_BACKGROUND * 3 // 4
#: Oldest minor whose INIT carries flags (7.6); before it no feature can be agreed.
FIRST_MINOR_WITH_INIT_FLAGS = 6
#: Oldest minor whose INIT has flags2 (7.36).
FIRST_MINOR_WITH_INIT_EXT = 36

_LOW_32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The outcome of INIT: what both sides may assume for the rest of the session.

    ``minor`` is the agreed (smaller) minor and ``flags`` the agreed
    :class:`InitFlag` word (flags | flags2 << 32).  The ``*_size`` attributes are
    the wire sizes of the structs that shrink in older minors, computed once so
    the codecs only read an attribute on the hot path.
    """

    minor: int = KERNEL_MINOR_VERSION
    flags: int = 0
    max_readahead: int = 0
    max_write: int = 4096
    max_pages: int = DEFAULT_MAX_PAGES_PER_REQ
    max_background: int = DEFAULT_MAX_BACKGROUND
    congestion_threshold: int = DEFAULT_CONGESTION_THRESHOLD
    time_gran: int = 1
    map_alignment: int = 0
    max_stack_depth: int = 0
    request_timeout: int = 0
    major: int = KERNEL_VERSION
    entry_out_size: int = field(init=False, repr=False, compare=False)
    attr_out_size: int = field(init=False, repr=False, compare=False)
    statfs_out_size: int = field(init=False, repr=False, compare=False)
    init_out_size: int = field(init=False, repr=False, compare=False)
    write_in_size: int = field(init=False, repr=False, compare=False)
    mknod_in_size: int = field(init=False, repr=False, compare=False)
    create_in_size: int = field(init=False, repr=False, compare=False)
    setxattr_in_size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        minor = self.minor
        sizes = {
            "entry_out_size": COMPAT_ENTRY_OUT_SIZE if minor < 9 else ENTRY_OUT.size,
            "attr_out_size": COMPAT_ATTR_OUT_SIZE if minor < 9 else ATTR_OUT.size,
            "statfs_out_size": COMPAT_STATFS_SIZE if minor < 4 else STATFS_OUT.size,
            "init_out_size": init_out_size(minor),
            "write_in_size": COMPAT_WRITE_IN_SIZE if minor < 9 else WRITE_IN.size,
            "mknod_in_size": COMPAT_MKNOD_IN_SIZE if minor < 12 else MKNOD_IN.size,
            # Before 7.12 CREATE sent fuse_open_in, then {flags, mode}.
            "create_in_size": 8 if minor < 12 else CREATE_IN.size,
            "setxattr_in_size": SETXATTR_IN.size
            if self.flags & InitFlag.SETXATTR_EXT
            else COMPAT_SETXATTR_IN_SIZE,
        }
        for name, value in sizes.items():
            object.__setattr__(self, name, value)

    def has(self, flag: InitFlag) -> bool:
        """Whether ``flag`` was agreed."""
        return bool(self.flags & flag)


def init_out_size(minor: int) -> int:
    """Size of fuse_init_out a daemon of ``minor`` sends (8, 24 or 64 bytes)."""
    if minor < 5:
        return COMPAT_INIT_OUT_SIZE
    if minor < 23:
        return COMPAT_22_INIT_OUT_SIZE
    return INIT_OUT.size


def init_in_size(minor: int) -> int:
    """Size of fuse_init_in a kernel of ``minor`` sends (8, 16 or 64 bytes)."""
    if minor < FIRST_MINOR_WITH_INIT_FLAGS:
        return 8
    if minor < FIRST_MINOR_WITH_INIT_EXT:
        return 16
    return INIT_IN.size


#: What to assume before INIT completes, and in tests: everything at 7.45.
LATEST = Negotiated()


def split_flags(flags: int) -> tuple[int, int]:
    """The 64-bit flag word as the wire's (flags, flags2)."""
    return flags & _LOW_32, (flags >> 32) & _LOW_32


def offered_flags(init: InitIn) -> int:
    """The 64-bit flag word a kernel's INIT offers (flags2 only with INIT_EXT)."""
    if init.minor < FIRST_MINOR_WITH_INIT_FLAGS:
        return 0
    flags = init.flags
    if flags & InitFlag.INIT_EXT:
        flags |= init.flags2 << 32
    return flags


def reply_flags(reply: InitOut) -> int:
    """The 64-bit flag word of a daemon's INIT reply (flags2 only with INIT_EXT)."""
    flags = reply.flags
    if flags & InitFlag.INIT_EXT:
        flags |= reply.flags2 << 32
    return flags


# --------------------------------------------------------------------------- kernel side


def kernel_init_request(
    flags: int, max_readahead: int, minor: int = KERNEL_MINOR_VERSION
) -> InitIn:
    """The INIT argument a kernel speaking ``minor`` sends, offering ``flags``.

    Offer only features you implement: libfuse turns on whatever is offered.
    From 7.36 the kernel always sets INIT_EXT so the daemon reads flags2.
    """
    if minor >= FIRST_MINOR_WITH_INIT_EXT:
        flags |= InitFlag.INIT_EXT
    elif flags >> 32:
        raise ProtocolError("init_in.flags2", f"minor {minor} has no flags2")
    low, high = split_flags(flags)
    return InitIn(
        major=KERNEL_VERSION, minor=minor, max_readahead=max_readahead, flags=low, flags2=high
    )


def kernel_accept_init(
    reply: InitOut, offered: InitIn, max_pages_limit: int = DEFAULT_MAX_PAGES_LIMIT
) -> Negotiated:
    """Apply a daemon's INIT reply as the kernel does; returns the session terms.

    Raises :class:`ProtocolError` (field ``init_out.major``) when the daemon
    speaks another major: the kernel then marks the connection failed and every
    later request fails with ECONNREFUSED -- do the same (an error reply to
    INIT, e.g. EPROTO from a daemon refusing our major, ends the same way).
    Only flags that were offered are agreed.
    """
    if reply.major != KERNEL_VERSION:
        raise ProtocolError(
            "init_out.major", f"daemon speaks {reply.major}, kernel {KERNEL_VERSION}"
        )
    minor = min(reply.minor, offered.minor)
    if minor >= FIRST_MINOR_WITH_INIT_FLAGS:
        flags = reply_flags(reply) & offered_flags(offered)
        max_readahead = min(reply.max_readahead, offered.max_readahead)
    else:
        flags = 0
        max_readahead = offered.max_readahead
    max_background = DEFAULT_MAX_BACKGROUND
    congestion_threshold = DEFAULT_CONGESTION_THRESHOLD
    if minor >= 13:
        max_background = reply.max_background or max_background
        congestion_threshold = reply.congestion_threshold or congestion_threshold
    max_pages = DEFAULT_MAX_PAGES_PER_REQ
    if flags & InitFlag.MAX_PAGES:
        max_pages = min(max_pages_limit, max(reply.max_pages, 1))
    time_gran = 1
    if minor >= 23 and 0 < reply.time_gran <= 1_000_000_000:
        time_gran = reply.time_gran
    return Negotiated(
        minor=minor,
        flags=flags,
        max_readahead=max_readahead,
        max_write=4096 if minor < 5 else max(4096, reply.max_write),
        max_pages=max_pages,
        max_background=max_background,
        congestion_threshold=congestion_threshold,
        time_gran=time_gran,
        map_alignment=reply.map_alignment if flags & InitFlag.MAP_ALIGNMENT else 0,
        max_stack_depth=reply.max_stack_depth if flags & InitFlag.PASSTHROUGH else 0,
        request_timeout=reply.request_timeout if flags & InitFlag.REQUEST_TIMEOUT else 0,
    )


# --------------------------------------------------------------------------- daemon side


class InitAnswer(NamedTuple):
    """What a daemon does with the kernel's INIT.

    - ``error`` non-zero: reply with that errno (a kernel major below ours).
    - ``reinit_expected``: the kernel speaks a newer major; send ``reply``
      (our major) and wait for another INIT.
    - otherwise send ``reply``; ``negotiated`` holds the session terms and is
      also what to encode the reply with (its size depends on the minor).
    """

    error: int
    reply: InitOut | None
    negotiated: Negotiated
    reinit_expected: bool = False


def daemon_answer_init(
    request: InitIn,
    want: int,
    *,
    max_readahead: int = 0xFFFFFFFF,
    max_write: int = 128 * 1024,
    max_background: int = 0,
    congestion_threshold: int = 0,
    time_gran: int = 1,
    max_pages: int = 0,
    map_alignment: int = 0,
    max_stack_depth: int = 0,
    request_timeout: int = 0,
    minor: int = KERNEL_MINOR_VERSION,
) -> InitAnswer:
    """Answer the kernel's INIT as a daemon that speaks 7.``minor`` and wants ``want``.

    Granted flags are ``want & offered``, limited to the flags 7.``minor``
    knows (so a simulated old daemon behaves like one), plus INIT_EXT when
    offered so the kernel reads flags2; max_readahead is the smaller of both.  The reply
    carries our own minor, as libfuse does; both sides then use the smaller.
    """
    ours = Negotiated(minor=minor)
    if request.major < KERNEL_VERSION:
        return InitAnswer(errno.EPROTO, None, ours)
    if request.major > KERNEL_VERSION:
        return InitAnswer(0, InitOut(major=KERNEL_VERSION, minor=minor), ours, True)
    agreed_minor = min(request.minor, minor)
    # A daemon of an older minor knows (and so grants) only the flags of its minor.
    offered = offered_flags(request) & init_flags_known_at(minor)
    granted = want & offered
    if offered & InitFlag.INIT_EXT:
        granted |= InitFlag.INIT_EXT
    if not granted & InitFlag.MAX_PAGES:
        max_pages = 0
    readahead = min(max_readahead, request.max_readahead)
    low, high = split_flags(granted)
    reply = InitOut(
        major=KERNEL_VERSION,
        minor=minor,
        max_readahead=readahead,
        flags=low,
        max_background=max_background,
        congestion_threshold=congestion_threshold,
        max_write=max_write,
        time_gran=time_gran,
        max_pages=max_pages,
        map_alignment=map_alignment if granted & InitFlag.MAP_ALIGNMENT else 0,
        flags2=high,
        max_stack_depth=max_stack_depth if granted & InitFlag.PASSTHROUGH else 0,
        request_timeout=request_timeout if granted & InitFlag.REQUEST_TIMEOUT else 0,
    )
    negotiated = Negotiated(
        minor=agreed_minor,
        flags=granted if agreed_minor >= FIRST_MINOR_WITH_INIT_FLAGS else 0,
        max_readahead=readahead,
        max_write=4096 if agreed_minor < 5 else max(4096, max_write),
        max_pages=max_pages or DEFAULT_MAX_PAGES_PER_REQ,
        max_background=max_background or DEFAULT_MAX_BACKGROUND,
        congestion_threshold=congestion_threshold or DEFAULT_CONGESTION_THRESHOLD,
        time_gran=time_gran if agreed_minor >= 23 and time_gran else 1,
        map_alignment=reply.map_alignment,
        max_stack_depth=reply.max_stack_depth,
        request_timeout=reply.request_timeout,
    )
    return InitAnswer(0, reply, negotiated)
