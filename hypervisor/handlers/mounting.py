"""mount, umount2 (always seen by Python), statmount, listmount, close_range.

mount(2) of a file-system type an extension accepts (vufuse: fuse, fuse.*, fuseblk) goes to
that extension with the target resolved; any other mount is the kernel's (EPERM for an
unprivileged caller, a real mount for root).  umount2 of a virtual mount is ours: the
kernel's checks in its order (flags, permission, busy), then the session's unmount.
"""

from __future__ import annotations

import errno
import os
import stat

from ..abi import AT_FDCWD
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..extensions import MountRequest
from ..mounts import Mount
from ..paths import VirtualLocation, WalkError
from .common import LetKernel, dirfd_location, error, kernel_unless_virtual

MS_MGC_MSK, MS_MGC_VAL = 0xFFFF0000, 0xC0ED0000
MS_REMOUNT, MS_BIND, MS_MOVE = 32, 4096, 8192
MS_PROPAGATION = (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20)  # unbindable private slave shared
MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 1, 2, 4, 8
_PAGE = 4096


async def let_kernel(call: Call) -> Reply:
    """CONTINUE: the syscall concerns no virtual object."""
    return CONTINUE


def _optional_string(call: Call, index: int, limit: int = 4097) -> bytes | None:
    if call.arg(index) == 0:
        return None
    return call.session.tracer.read_string(call.tid, call.arg(index), limit)


async def _walk(call: Call, path: bytes, follow: bool = True) -> tuple[bytes, bool]:
    """Canonical path of `path` and whether it is a directory (the walk's errno)."""
    base = await dirfd_location(call, AT_FDCWD)
    try:
        result = await call.session.resolver.resolve(
            path, base, follow=follow, self_ids=(call.tgid, call.tid), requester=call.caller
        )
    except WalkError as failure:
        raise error(failure.errno or errno.ENOENT) from None
    location = result.location
    if isinstance(location, VirtualLocation):
        return location.path, location.attrs.is_dir
    return location.path, stat.S_ISDIR(os.stat(location.path).st_mode)


async def _target(call: Call, path: bytes, follow: bool = True) -> tuple[bytes, bool]:
    """Like :func:`_walk`, but a last component that is a mountpoint is recognised from the
    mount table, without asking its provider anything: as the kernel, which crosses into a
    FUSE root without a request, a dead or hung daemon must not block (u)mounts there."""
    stripped = path.rstrip(b"/")
    head, slash, last = stripped.rpartition(b"/")
    if stripped and last not in (b".", b".."):
        parent, _ = await _walk(call, head or (b"/" if slash else b"."))
        candidate = parent.rstrip(b"/") + b"/" + last
        if call.session.mounts.at(candidate) is not None:
            return candidate, True
    return await _walk(call, path, follow)


@kernel_unless_virtual
async def handle_mount(call: Call) -> Reply:
    """mount(source, target, fstype, flags, data)."""
    flags = call.arg(3) & 0xFFFFFFFFFFFFFFFF
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    if flags & (MS_REMOUNT | MS_BIND | MS_MOVE | MS_PROPAGATION):
        raise LetKernel  # changes to existing mounts: only real ones are supported
    try:
        fstype = _optional_string(call, 2, 256)
    except OSError:
        raise LetKernel from None
    if fstype is None:
        raise LetKernel
    handler = call.session.extensions.mount_handler(fstype)
    if handler is None:
        raise LetKernel
    call.touched_virtual = True
    try:
        source = _optional_string(call, 0)
        target = call.read_path(1)
    except OSError as failure:
        raise error(failure.errno or errno.EFAULT) from None
    data = None
    if call.arg(4):
        # The kernel copies up to a page of data; the options are a string within it.
        data = call.session.tracer.read_mem(call.tid, call.arg(4), _PAGE).split(b"\0", 1)[0]
    canonical, is_dir = await _target(call, target)
    request = MountRequest(source, canonical, is_dir, fstype, flags, data)
    return await handler(call, request)


async def _find_mount(call: Call, path: bytes, follow: bool) -> Mount | None:
    """The virtual mount `path` names, if any."""
    if not len(call.session.mounts):
        return None
    try:
        canonical, _ = await _target(call, path, follow)
    except OSError:
        return None
    return call.session.mounts.at(canonical)


@kernel_unless_virtual
async def handle_umount2(call: Call) -> Reply:
    """umount2(target, flags) (umount(2) is umount2 with flags 0 in glibc)."""
    flags = call.int_arg(1) if call.name == "umount2" else 0
    try:
        path = call.read_path(0)
    except OSError:
        raise LetKernel from None
    mount = await _find_mount(call, path, follow=not flags & UMOUNT_NOFOLLOW)
    if mount is None:
        raise LetKernel
    call.touched_virtual = True
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW):
        raise error(errno.EINVAL)
    if flags & MNT_EXPIRE and flags & (MNT_FORCE | MNT_DETACH):
        raise error(errno.EINVAL)
    credentials = call.credentials
    if credentials.euid != 0 and credentials.euid != mount.owner_uid:
        raise error(errno.EPERM)
    if flags & MNT_EXPIRE:
        raise error(errno.EAGAIN)  # the kernel's first MNT_EXPIRE only marks the mount
    lazy = bool(flags & MNT_DETACH)
    # A writer that exited leaves its low-fd stand-in to be written back and released (D7):
    # on the kernel its file is closed by now, so the mount must not look busy for it.
    await call.session.low_fds.settle(mount)
    await call.session.vfds.release_hung_up()
    if not lazy and call.session.mount_is_busy(mount):
        raise error(errno.EBUSY)
    await call.session.unmount(mount, lazy)
    return 0


def register(dispatcher: Dispatcher) -> None:
    """Route mount and umount2 to their handlers; the rest of the always-trapped set to the
    kernel."""
    dispatcher.register("mount", handle_mount)
    dispatcher.register("umount2", handle_umount2)
    dispatcher.register("statmount listmount", let_kernel)
