"""What most handlers share: finding the base of a path, resolving it, finding virtual fds."""

from __future__ import annotations

import dataclasses
import errno
import functools
import os

from .. import syscalls
from ..abi import AT_EMPTY_PATH, AT_FDCWD
from ..dispatch import CONTINUE, Call, Handler, Reply
from ..paths import (
    ROOT,
    Confinement,
    Location,
    RealLocation,
    Resolution,
    VirtualLocation,
    WalkError,
)
from ..vfd import OpenFileDescription


class LetKernel(Exception):
    """Raised by helpers when the object is not virtual: the handler answers CONTINUE."""


def kernel_unless_virtual(handler: Handler) -> Handler:
    """Turn LetKernel into CONTINUE, so that handlers read as straight-line code."""

    @functools.wraps(handler)
    async def wrapper(call: Call) -> Reply:
        try:
            return await handler(call)
        except LetKernel:
            return CONTINUE

    return wrapper


def error(code: int) -> OSError:
    """An OSError carrying the kernel's errno."""
    return OSError(code, os.strerror(code))


class MissingName(OSError):
    """ENOENT for the last name of a path, with the virtual directory the walk reached
    (:attr:`WalkError.missing`): an open(O_CREAT) creates there without walking again."""

    def __init__(self, directory: VirtualLocation, name: bytes) -> None:
        super().__init__(errno.ENOENT, os.strerror(errno.ENOENT))
        self.directory = directory
        self.name = name


_NULL_PATH_OK = frozenset({"statx", "newfstatat"})
"""Syscalls that take a NULL path with AT_EMPTY_PATH (Linux 6.11)."""


async def cwd_location(call: Call) -> Location:
    """The caller's cwd: a virtual directory when its real cwd is a stand-in."""
    try:
        real = os.fsencode(os.readlink(f"/proc/{call.tid}/cwd"))
    except OSError:
        raise LetKernel from None
    if real.endswith(b" (deleted)"):
        raise LetKernel
    virtual = call.session.stand_ins.location_of(real)
    if virtual is not None:
        call.touched_virtual = True
        return virtual
    return RealLocation(real)


async def dirfd_location(call: Call, dirfd: int) -> Location:
    """The directory a *at syscall's dirfd names (or the cwd for AT_FDCWD)."""
    if dirfd == AT_FDCWD:
        return await cwd_location(call)
    description = call.session.vfds.lookup_fd(call.tid, dirfd)  # EBADF
    if description is not None:
        call.touched_virtual = True
        return description.location
    try:
        target = os.fsencode(os.readlink(f"/proc/{call.tid}/fd/{dirfd}"))
    except OSError:
        raise error(errno.EBADF) from None
    if not target.startswith(b"/") or target.endswith(b" (deleted)"):
        raise LetKernel  # a pipe, a socket...: the kernel says ENOTDIR itself
    virtual = call.session.stand_ins.location_of(target)
    if virtual is not None:
        call.touched_virtual = True
        return virtual
    return RealLocation(target)


async def resolve(
    call: Call,
    path_arg: int,
    dirfd_arg: int | None = None,
    *,
    follow: bool = True,
    at_flags: int = 0,
    real_too: bool = False,
    path: bytes | None = None,
    max_links: int | None = None,
    confine: Confinement | None = None,
) -> Resolution:
    """Resolve path argument `path_arg` (relative to dirfd argument `dirfd_arg`).

    Raises :class:`LetKernel` when the kernel can do it alone, OSError for an answer.
    An empty path with AT_EMPTY_PATH in `at_flags` names the dirfd itself (so does a NULL
    path since 6.11).  `real_too` returns real results the kernel could reach alone as well.
    `path` is the path itself when it is not a string argument (a sockaddr_un's).
    `max_links`: symlinks the walk may follow (0 for openat2's RESOLVE_NO_SYMLINKS);
    `confine`: openat2's RESOLVE_BENEATH / IN_ROOT / NO_XDEV (paths.Confinement).
    """
    if path is not None:
        pass
    elif at_flags & AT_EMPTY_PATH and call.arg(path_arg) == 0 and call.name in _NULL_PATH_OK:
        path = b""
    else:
        try:
            path = call.read_path(path_arg)
        except OSError:
            raise LetKernel from None  # EFAULT, ENAMETOOLONG: the kernel says it the same way
    dirfd = call.int_arg(dirfd_arg) if dirfd_arg is not None else AT_FDCWD
    if confine is not None and confine.scoped and path.startswith(b"/"):
        if confine.beneath:
            raise error(errno.EXDEV)  # as the kernel, whatever the path names
        path = path.lstrip(b"/") or b"."  # RESOLVE_IN_ROOT: "/" is the dirfd
    if path.startswith(b"/"):
        base: Location = ROOT
        if confine is None:
            call.lexical_key = path
    else:
        base = await dirfd_location(call, dirfd)
        if not path and at_flags & AT_EMPTY_PATH:
            if not base.is_virtual and not real_too:
                raise LetKernel
            if isinstance(base, VirtualLocation):
                # The fd's location carries the attributes of its open: no walk answered now,
                # so nothing here may stand for a fresh getattr (metadata._fresh).
                base = dataclasses.replace(
                    base, attrs=dataclasses.replace(base.attrs, valid_until=0.0)
                )
            return Resolution(base, base.is_virtual)
        if isinstance(base, RealLocation) and path and confine is None:
            call.lexical_key = (base.path if base.path != b"/" else b"") + b"/" + path
    checks = any(m.options.get("default_permissions") is not None for m in call.session.mounts)
    for attempt in range(3):  # at most two walks again (a mapped file may change all along)
        last = attempt == 2
        try:
            result = await call.session.resolver.resolve(
                path, base, follow=follow, caller=call.identity if checks else None,
                self_ids=lambda: (call.tgid, call.tid), requester=call.caller,
                **({} if max_links is None else {"max_links": max_links}), confine=confine,
            )
        except WalkError as failure:
            if not failure.virtual:
                raise LetKernel from None
            call.touched_virtual = True
            if not last and await call.session.low_fds.settle():
                continue  # a redirection was written back meanwhile: walk again
            if failure.missing is not None:
                raise MissingName(*failure.missing) from None
            raise error(failure.errno or errno.EIO) from None
        if result.kernel_can_do_it and not real_too:
            raise LetKernel
        call.touched_virtual = True
        if not last and isinstance(result.location, VirtualLocation) and (
            await call.session.low_fds.settle(result.location.mount)
        ):
            continue  # what the walk saw may predate the write-back (sizes): walk again
        return result
    raise AssertionError("unreachable")


def virtual_fd(call: Call, fd_arg: int) -> OpenFileDescription:
    """The virtual description behind fd argument `fd_arg`, or LetKernel."""
    fd = call.int_arg(fd_arg)
    description = call.session.vfds.lookup_fd(call.tid, fd)
    if description is None:
        # A memfd standing in for a virtual file (at a low fd, or a mapped one): a call on
        # the file itself acts on the file, as on the kernel (decisions D29).
        rule = syscalls.rule_for(call.nr)
        if rule is None or rule.action != syscalls.ACTION_TRAP_LOWFD:
            raise LetKernel
        stand_in = call.session.low_fds.lookup_fd(call.tid, fd)
        if stand_in is None:
            raise LetKernel
        call.stand_in = stand_in
        description = stand_in.description
    call.touched_virtual = True
    return description
