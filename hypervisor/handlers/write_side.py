"""Path syscalls that change a virtual file system (issue 5): the namespace calls (mkdir,
mknod, symlink, link, unlink, rmdir, rename), the attribute calls (truncate, chmod, chown,
the utime family, xattrs), each passed to the provider with the kernel's argument checks.

Two names on different file systems (two mounts, a mount and the real tree) give EXDEV, as
the kernel's mnt check does.  Also the few read-side path calls that a provider can't serve
yet (exec, inotify, handles).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import struct
import time

from ..abi import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..paths import ROOT, Location, VirtualLocation, WalkError
from ..provider import UTIME_NOW, UTIME_OMIT, SetattrChanges, Timestamp
from .common import LetKernel, dirfd_location, error, kernel_unless_virtual, resolve, virtual_fd

AT_REMOVEDIR = 0x200
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
XATTR_CREATE, XATTR_REPLACE = 1, 2
XATTR_SIZE_MAX = 65536
_TIMESPEC = struct.Struct("<qq")
_UTIMBUF = struct.Struct("<qq")

UNSUPPORTED = {
    "uselib": errno.ENOEXEC,
    "chroot": errno.EPERM,
    "inotify_add_watch": errno.EOPNOTSUPP,
    "fanotify_mark": errno.EOPNOTSUPP,
    "name_to_handle_at": errno.EOPNOTSUPP,
    "file_getattr": errno.EOPNOTSUPP,
}
STILL_READ_ONLY = "setxattrat removexattrat file_setattr acct swapon swapoff quotactl pivot_root"
"""Modifying calls not wired to providers yet: EROFS on a virtual object."""


def _join(directory: bytes, name: bytes) -> bytes:
    return (directory if directory != b"/" else b"") + b"/" + name


# --- finding the directory and the last name --------------------------------------------------
class Parent:
    """Where a new or removed name lives: its directory's location and the last component."""

    def __init__(self, location: Location, name: bytes, slash: bool, kernel_ok: bool) -> None:
        self.location = location
        self.name = name
        self.slash = slash  # the path ended in "/"
        self.kernel_ok = kernel_ok

    @property
    def virtual(self) -> VirtualLocation | None:
        """The directory, when it is virtual."""
        return self.location if isinstance(self.location, VirtualLocation) else None

    @property
    def dotted(self) -> bool:
        """The last component is "." or ".." (or the path is "/")."""
        return self.name in (b".", b"..", b"")

    def is_mountpoint(self, call: Call) -> bool:
        """The name is where something is mounted (EBUSY to remove or rename)."""
        return call.session.mounts.at(_join(self.location.path, self.name)) is not None


async def parent_of(
    call: Call, path_arg: int, dirfd_arg: int | None, path: bytes | None = None
) -> Parent:
    """The directory of path argument `path_arg` (relative to dirfd `dirfd_arg`) and its last
    component, without looking the last component up.  `path` is the path itself when it is
    not a string argument (a sockaddr_un's)."""
    if path is None:
        try:
            path = call.read_path(path_arg)
        except OSError:
            raise LetKernel from None
    dirfd = call.int_arg(dirfd_arg) if dirfd_arg is not None else AT_FDCWD
    stripped = path.rstrip(b"/")
    if not path:
        base = await dirfd_location(call, dirfd)
        if not base.is_virtual:
            raise LetKernel
        raise error(errno.ENOENT)
    if not stripped:
        raise LetKernel  # "/" itself: never virtual
    head, sep, name = stripped.rpartition(b"/")
    directory = (head or b"/") if sep else b"."
    base = ROOT if directory.startswith(b"/") else await dirfd_location(call, dirfd)
    checks = any(m.options.get("default_permissions") is not None for m in call.session.mounts)
    try:
        result = await call.session.resolver.resolve(
            directory, base, caller=call.credentials if checks else None,
            self_ids=(call.tgid, call.tid), requester=call.caller,
        )
    except WalkError as failure:
        if not failure.virtual:
            raise LetKernel from None
        call.touched_virtual = True
        raise error(failure.errno or errno.EIO) from None
    if result.location.is_virtual or not result.kernel_can_do_it:
        call.touched_virtual = True
    parent = Parent(result.location, name, len(stripped) != len(path), result.kernel_can_do_it)
    if parent.virtual is None and parent.kernel_ok and not parent.is_mountpoint(call):
        raise LetKernel
    return parent


def _virtual_parent(call: Call, parent: Parent, on_mountpoint: int) -> VirtualLocation:
    """The virtual directory of a one-name call, or the kernel's answer for a real one."""
    if parent.is_mountpoint(call):
        raise error(on_mountpoint)
    if parent.virtual is None:
        raise error(errno.EXDEV)  # a real directory reached through a mount
    if len(parent.name) > 255:
        raise error(errno.ENAMETOOLONG)
    return parent.virtual


async def _refuse_slash(call: Call, parent: Parent) -> None:
    """A new non-directory name ending in "/": EEXIST if it exists, else ENOENT."""
    if parent.slash and parent.virtual is not None:
        try:
            await _lookup(call, parent.virtual, parent.name)
        except OSError as failure:
            if failure.errno == errno.ENOENT:
                raise error(errno.ENOENT) from None
            raise
        raise error(errno.EEXIST)


async def _lookup(call: Call, directory: VirtualLocation, name: bytes) -> VirtualLocation:
    attrs = await directory.mount.provider.lookup(directory.ino, name, caller=call.caller)
    return VirtualLocation(
        directory.mount, directory.parts + (name,), directory.inodes + (attrs.node,), attrs
    )


# --- making names --------------------------------------------------------------------------
@kernel_unless_virtual
async def handle_mkdir(call: Call) -> Reply:
    """mkdir(path, mode), mkdirat(dirfd, path, mode)."""
    at = call.name == "mkdirat"
    parent = await parent_of(call, 1 if at else 0, 0 if at else None)
    if parent.dotted:
        raise error(errno.EEXIST)
    directory = _virtual_parent(call, parent, errno.EEXIST)
    mode = call.int_arg(2 if at else 1) & 0o7777
    await directory.mount.provider.mkdir(
        directory.ino, parent.name, mode, call.credentials.umask, caller=call.caller
    )
    return 0


@kernel_unless_virtual
async def handle_mknod(call: Call) -> Reply:
    """mknod(path, mode, dev), mknodat(dirfd, path, mode, dev)."""
    at = call.name == "mknodat"
    parent = await parent_of(call, 1 if at else 0, 0 if at else None)
    mode = call.int_arg(2 if at else 1) & 0xFFFFFFFF
    rdev = call.arg(3 if at else 2) & 0xFFFFFFFF
    kind = stat_module.S_IFMT(mode)
    if kind == stat_module.S_IFDIR:
        raise error(errno.EPERM)
    if kind not in (0, stat_module.S_IFREG, stat_module.S_IFCHR, stat_module.S_IFBLK,
                    stat_module.S_IFIFO, stat_module.S_IFSOCK):
        raise error(errno.EINVAL)
    if parent.dotted:
        raise error(errno.EEXIST)
    directory = _virtual_parent(call, parent, errno.EEXIST)
    await _refuse_slash(call, parent)
    await directory.mount.provider.mknod(
        directory.ino, parent.name, (kind or stat_module.S_IFREG) | (mode & 0o7777),
        rdev if kind in (stat_module.S_IFCHR, stat_module.S_IFBLK) else 0,
        call.credentials.umask, caller=call.caller,
    )
    return 0


@kernel_unless_virtual
async def handle_symlink(call: Call) -> Reply:
    """symlink(target, path), symlinkat(target, dirfd, path)."""
    at = call.name == "symlinkat"
    try:
        target = call.read_path(0)
    except OSError:
        raise LetKernel from None
    parent = await parent_of(call, 2 if at else 1, 1 if at else None)
    if not target:
        raise error(errno.ENOENT)
    if parent.dotted:
        raise error(errno.EEXIST)
    directory = _virtual_parent(call, parent, errno.EEXIST)
    await _refuse_slash(call, parent)
    await directory.mount.provider.symlink(directory.ino, parent.name, target, caller=call.caller)
    return 0


def _names_readable(call: Call, *indexes: int) -> None:
    """Both names of a two-path call are fetched first, as getname() does: a bad pointer or
    an over-long path is EFAULT/ENAMETOOLONG, never taken for "the other file system"."""
    for index in indexes:
        try:
            call.read_path(index)
        except OSError as failure:
            raise error(failure.errno or errno.EFAULT) from None


@kernel_unless_virtual
async def handle_link(call: Call) -> Reply:
    """link(old, new), linkat(olddirfd, old, newdirfd, new, flags)."""
    at = call.name == "linkat"
    flags = call.int_arg(4) if at else 0
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise error(errno.EINVAL)
    _names_readable(call, *((1, 3) if at else (0, 1)))
    old = await resolve(
        call, 1 if at else 0, 0 if at else None, follow=bool(flags & AT_SYMLINK_FOLLOW),
        at_flags=flags, real_too=True,
    )
    try:
        parent = await parent_of(call, 3 if at else 1, 2 if at else None)
    except LetKernel:
        if not old.location.is_virtual and old.kernel_can_do_it:
            raise
        raise error(errno.EXDEV) from None
    source = old.location
    if not isinstance(source, VirtualLocation):
        if parent.virtual is None and old.kernel_can_do_it and parent.kernel_ok:
            raise LetKernel
        raise error(errno.EXDEV)
    if parent.dotted:
        raise error(errno.EEXIST)
    directory = _virtual_parent(call, parent, errno.EEXIST)
    await _refuse_slash(call, parent)
    if directory.mount is not source.mount:
        raise error(errno.EXDEV)
    if source.attrs.is_dir:
        raise error(errno.EPERM)
    await directory.mount.provider.link(
        source.ino, directory.ino, parent.name, caller=call.caller
    )
    return 0


# --- removing and renaming -----------------------------------------------------------------
async def _remove(call: Call, parent: Parent, directory_wanted: bool) -> Reply:
    if directory_wanted:
        if parent.name == b"." or not parent.name:
            raise error(errno.EINVAL if parent.name else errno.EBUSY)
        if parent.name == b"..":
            raise error(errno.ENOTEMPTY)
    elif parent.dotted:
        raise error(errno.EISDIR)
    directory = _virtual_parent(call, parent, errno.EBUSY if directory_wanted else errno.EISDIR)
    provider = directory.mount.provider
    if directory_wanted:
        await provider.rmdir(directory.ino, parent.name, caller=call.caller)
        call.session.stand_ins.removed(directory.mount.mount_id, (*directory.parts, parent.name))
        return 0
    if parent.slash:
        child = await _lookup(call, directory, parent.name)
        raise error(errno.EISDIR if child.attrs.is_dir else errno.ENOTDIR)
    await provider.unlink(directory.ino, parent.name, caller=call.caller)
    return 0


@kernel_unless_virtual
async def handle_unlink(call: Call) -> Reply:
    """unlink(path), rmdir(path), unlinkat(dirfd, path, flags) with AT_REMOVEDIR."""
    if call.name == "unlinkat":
        flags = call.int_arg(2)
        if flags & ~AT_REMOVEDIR:
            raise error(errno.EINVAL)
        return await _remove(call, await parent_of(call, 1, 0), bool(flags & AT_REMOVEDIR))
    return await _remove(call, await parent_of(call, 0, None), call.name == "rmdir")


@kernel_unless_virtual
async def handle_rename(call: Call) -> Reply:
    """rename(old, new), renameat(od, old, nd, new), renameat2(..., flags)."""
    at = call.name != "rename"
    flags = call.int_arg(4) if call.name == "renameat2" else 0
    _names_readable(call, *((1, 3) if at else (0, 1)))
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        raise error(errno.EINVAL)
    if flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
        raise error(errno.EINVAL)
    arguments = ((1, 0), (3, 2)) if at else ((0, None), (1, None))
    sides: list[Parent | None] = []
    for path_arg, dirfd_arg in arguments:
        try:
            sides.append(await parent_of(call, path_arg, dirfd_arg))
        except LetKernel:
            sides.append(None)
    old, new = sides
    if old is None and new is None:
        return CONTINUE
    if old is None or new is None or old.virtual is None or new.virtual is None:
        for side in (old, new):
            if side is not None and side.is_mountpoint(call):
                raise error(errno.EBUSY)
        raise error(errno.EXDEV)
    if old.dotted or new.dotted:
        raise error(errno.EBUSY)
    source_dir = _virtual_parent(call, old, errno.EBUSY)
    target_dir = _virtual_parent(call, new, errno.EBUSY)
    if source_dir.mount is not target_dir.mount:
        raise error(errno.EXDEV)
    if old.slash or new.slash:
        moving = await _lookup(call, source_dir, old.name)
        if not moving.attrs.is_dir:
            raise error(errno.ENOTDIR)
    await source_dir.mount.provider.rename(
        source_dir.ino, old.name, target_dir.ino, new.name, flags, caller=call.caller
    )
    if not flags:  # a plain rename: a cwd in the moved directory follows it (D2)
        call.session.stand_ins.renamed(source_dir, target_dir, new.name, old.name)
    return 0


# --- attributes ----------------------------------------------------------------------------
async def _target(
    call: Call, path_arg: int, dirfd_arg: int | None, follow: bool, at_flags: int = 0
) -> VirtualLocation:
    """The virtual object a path names (EXDEV-ish for a real one reached through a mount)."""
    if dirfd_arg is not None and at_flags & AT_EMPTY_PATH and _empty_path(call, path_arg):
        # The dirfd's own file: a virtual fd, a low-fd stand-in (D29), else the kernel's
        return virtual_fd(call, dirfd_arg).location
    result = await resolve(call, path_arg, dirfd_arg, follow=follow, at_flags=at_flags)
    if not isinstance(result.location, VirtualLocation):
        raise error(errno.EXDEV)
    return result.location


def _empty_path(call: Call, path_arg: int) -> bool:
    if call.arg(path_arg) == 0:
        return True
    try:
        return call.read_path(path_arg) == b""
    except OSError:
        return False  # resolve() lets the kernel say EFAULT


async def _setattr(call: Call, location: VirtualLocation, changes: SetattrChanges) -> Reply:
    await location.mount.provider.setattr(
        location.ino, changes, lock_owner=call.tgid, caller=call.caller
    )
    return 0


def _id(value: int) -> int | None:
    value &= 0xFFFFFFFF
    return None if value == 0xFFFFFFFF else value


@kernel_unless_virtual
async def handle_truncate(call: Call) -> Reply:
    """truncate(path, length)."""
    location = await _target(call, 0, None, True)
    length = call.long_arg(1)
    if length < 0:
        raise error(errno.EINVAL)
    if location.attrs.is_dir:
        raise error(errno.EISDIR)
    if not stat_module.S_ISREG(location.attrs.mode):
        raise error(errno.EINVAL)
    return await _setattr(call, location, SetattrChanges(size=length))


@kernel_unless_virtual
async def handle_chmod(call: Call) -> Reply:
    """chmod(path, mode), fchmodat(dirfd, path, mode), fchmodat2(dirfd, path, mode, flags)."""
    if call.name == "chmod":
        location = await _target(call, 0, None, True)
        mode = call.int_arg(1)
    else:
        flags = call.int_arg(3) if call.name == "fchmodat2" else 0
        if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
            raise error(errno.EINVAL)
        location = await _target(call, 1, 0, not flags & AT_SYMLINK_NOFOLLOW, flags)
        mode = call.int_arg(2)
        if location.attrs.is_symlink:
            raise error(errno.EOPNOTSUPP)
    reply = await _setattr(call, location, SetattrChanges(mode=mode & 0o7777))
    if call.stand_in is not None and call.stand_in.memfd >= 0:
        try:
            os.fchmod(call.stand_in.memfd, mode & 0o7777)  # fstat of the low fd shows it
        except OSError:
            pass
    return reply


@kernel_unless_virtual
async def handle_chown(call: Call) -> Reply:
    """chown, lchown (path, uid, gid); fchownat(dirfd, path, uid, gid, flags)."""
    if call.name == "fchownat":
        flags = call.int_arg(4)
        if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
            raise error(errno.EINVAL)
        location = await _target(call, 1, 0, not flags & AT_SYMLINK_NOFOLLOW, flags)
        uid, gid = _id(call.arg(2)), _id(call.arg(3))
    else:
        location = await _target(call, 0, None, call.name == "chown")
        uid, gid = _id(call.arg(1)), _id(call.arg(2))
    return await _setattr(call, location, SetattrChanges(uid=uid, gid=gid))


def _times(call: Call, address: int, kind: str) -> tuple[Timestamp, Timestamp]:
    """(atime, mtime) from a utimbuf, timeval[2] or timespec[2]; NULL means now."""
    now: Timestamp = (0, UTIME_NOW)
    if address == 0:
        return now, now
    if kind == "utimbuf":
        actime, modtime = _UTIMBUF.unpack(call.read_memory(address, _UTIMBUF.size))
        return (actime, 0), (modtime, 0)
    raw = call.read_memory(address, 2 * _TIMESPEC.size)
    pairs = [_TIMESPEC.unpack_from(raw, i * _TIMESPEC.size) for i in range(2)]
    result: list[Timestamp] = []
    for seconds, fraction in pairs:
        if kind == "timeval":
            if not 0 <= fraction < 1_000_000:
                raise error(errno.EINVAL)
            result.append((seconds, fraction * 1000))
        else:
            if fraction not in (UTIME_NOW, UTIME_OMIT) and not 0 <= fraction < 1_000_000_000:
                raise error(errno.EINVAL)
            result.append((0 if fraction in (UTIME_NOW, UTIME_OMIT) else seconds, fraction))
    return result[0], result[1]


@kernel_unless_virtual
async def handle_utime(call: Call) -> Reply:
    """utime(path, utimbuf*), utimes(path, timeval[2]), futimesat(dirfd, path, timeval[2]),
    utimensat(dirfd, path, timespec[2], flags)."""
    name = call.name
    if name == "utimensat":
        flags = call.int_arg(3)
        if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
            raise error(errno.EINVAL)
        atime, mtime = _times(call, call.arg(2), "timespec")
        if call.arg(1) == 0:
            description = virtual_fd(call, 0)  # utimensat(fd, NULL, ...): the fd's file
            location = description.location
        else:
            location = await _target(call, 1, 0, not flags & AT_SYMLINK_NOFOLLOW, flags)
        if atime[1] == UTIME_OMIT and mtime[1] == UTIME_OMIT:
            return 0
    elif name == "futimesat":
        atime, mtime = _times(call, call.arg(2), "timeval")
        if call.arg(1) == 0:  # futimesat(fd, NULL, ...): the fd's file, as utimensat
            location = virtual_fd(call, 0).location
        else:
            location = await _target(call, 1, 0, True)
    else:
        atime, mtime = _times(call, call.arg(1), "utimbuf" if name == "utime" else "timeval")
        location = await _target(call, 0, None, True)
    stand_in = call.stand_in
    # Stand-ins' pending writes go first: a WRITE after the SETATTR would move mtime (D29).
    await call.session.low_fds.settle(location.mount)
    reply = await _setattr(call, location, SetattrChanges(atime=atime, mtime=mtime))
    if stand_in is not None and stand_in.memfd >= 0:
        _mirror_times(stand_in.memfd, atime, mtime)
    return reply


def _mirror_times(memfd: int, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """The same times on a stand-in's memfd, so that fstat of the low fd agrees."""
    def nanoseconds(value: tuple[int, int], current: int) -> int:
        if value[1] == UTIME_NOW:
            return time.time_ns()
        return current if value[1] == UTIME_OMIT else value[0] * 1_000_000_000 + value[1]

    try:
        info = os.fstat(memfd)
        os.utime(memfd, ns=(nanoseconds(atime, info.st_atime_ns),
                            nanoseconds(mtime, info.st_mtime_ns)))
    except OSError:
        pass


# --- extended attributes -------------------------------------------------------------------
def read_xattr_value(call: Call, address: int, size: int) -> bytes:
    """The value argument of setxattr (E2BIG beyond XATTR_SIZE_MAX)."""
    if size > XATTR_SIZE_MAX:
        raise error(errno.E2BIG)
    return call.read_memory(address, size) if size else b""


async def set_xattr(
    call: Call, location: VirtualLocation, name: bytes, value: bytes, flags: int
) -> Reply:
    """setxattr on a virtual object, flags checked."""
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise error(errno.EINVAL)
    await location.mount.provider.setxattr(location.ino, name, value, flags, caller=call.caller)
    return 0


@kernel_unless_virtual
async def handle_setxattr(call: Call) -> Reply:
    """setxattr, lsetxattr (path, name, value, size, flags)."""
    from .metadata import _xattr_name

    location = await _target(call, 0, None, call.name == "setxattr")
    name = _xattr_name(call, call.arg(1))
    value = read_xattr_value(call, call.arg(2), call.arg(3))
    return await set_xattr(call, location, name, value, call.int_arg(4))


@kernel_unless_virtual
async def handle_removexattr(call: Call) -> Reply:
    """removexattr, lremovexattr (path, name)."""
    from .metadata import _xattr_name

    location = await _target(call, 0, None, call.name == "removexattr")
    name = _xattr_name(call, call.arg(1))
    await location.mount.provider.removexattr(location.ino, name, caller=call.caller)
    return 0


# --- not yet -------------------------------------------------------------------------------
@kernel_unless_virtual
async def handle_unsupported(call: Call) -> Reply:
    """exec and friends from a mount; the modifying calls not wired yet (EROFS)."""
    from ..syscalls import rule_for

    name = call.name
    rule = rule_for(call.nr)
    assert rule is not None
    if name == "execveat" and call.int_arg(4) & AT_EMPTY_PATH:
        raise LetKernel
    path_arg, dirfd_arg = rule.paths[0]
    result = await resolve(call, path_arg, dirfd_arg if dirfd_arg >= 0 else None)
    if not result.location.is_virtual:
        raise error(errno.EXDEV)
    raise error(UNSUPPORTED.get(name, errno.EROFS))


def register(dispatcher: Dispatcher) -> None:
    """Route the modifying path syscalls."""
    dispatcher.register("mkdir mkdirat", handle_mkdir)
    dispatcher.register("mknod mknodat", handle_mknod)
    dispatcher.register("symlink symlinkat", handle_symlink)
    dispatcher.register("link linkat", handle_link)
    dispatcher.register("unlink unlinkat rmdir", handle_unlink)
    dispatcher.register("rename renameat renameat2", handle_rename)
    dispatcher.register("truncate", handle_truncate)
    dispatcher.register("chmod fchmodat fchmodat2", handle_chmod)
    dispatcher.register("chown lchown fchownat", handle_chown)
    dispatcher.register("utime utimes futimesat utimensat", handle_utime)
    dispatcher.register("setxattr lsetxattr", handle_setxattr)
    dispatcher.register("removexattr lremovexattr", handle_removexattr)
    dispatcher.register(" ".join(UNSUPPORTED) + " " + STILL_READ_ONLY, handle_unsupported)
