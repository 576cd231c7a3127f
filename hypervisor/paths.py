"""Path resolution across the real file system and the virtual mounts.

A path walk in the kernel's manner (fs/namei.c: one component at a time, symlinks spliced in,
at most 40 of them), except that a component whose canonical path is a mountpoint of the
:class:`~hypervisor.mounts.MountTable` continues inside the provider, and ".." at a mount's
root leaves the mount.  The real part is walked with lstat/readlink from the vufuse process,
which sees the same file system as its tracees.

The result says whether the walk went through virtual territory (a virtual base, a symlink
inside a mount): a real result reached that way can't be left to the kernel (CONTINUE), since
the kernel would resolve the caller's string from the caller's real cwd.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import permission
from .mounts import Mount, MountTable
from .process import Credentials
from .provider import ROOT_INODE, Attributes, Caller

PATH_MAX = 4096
"""Bytes of a path including its NUL (linux/limits.h)."""
NAME_MAX = 255
"""Bytes of one component."""
MAXSYMLINKS = 40
"""Symlinks one walk may follow before ELOOP."""


@dataclass(frozen=True)
class Confinement:
    """openat2's scoping flags for one walk, as fs/namei.c applies them: `beneath`
    (RESOLVE_BENEATH: EXDEV for an absolute path or link, or a ".." above the start),
    `in_root` (RESOLVE_IN_ROOT: the start is "/" for absolute links and ".." stops there),
    `no_xdev` (RESOLVE_NO_XDEV: EXDEV when the walk crosses into or out of a mount).  Both
    scopes also refuse magic links (EXDEV)."""

    beneath: bool = False
    in_root: bool = False
    no_xdev: bool = False

    @property
    def scoped(self) -> bool:
        """RESOLVE_BENEATH or RESOLVE_IN_ROOT."""
        return self.beneath or self.in_root


def _domain(location: Location) -> object:
    """What RESOLVE_NO_XDEV compares: the mount of a virtual location, None for real ones (a
    walk that stays real is the kernel's, which checks real mounts itself)."""
    return location.mount if isinstance(location, VirtualLocation) else None


def _same_domain(here: Location, there: Location, virtual: bool = True) -> None:
    """RESOLVE_NO_XDEV: a step from `here` to `there` must not cross a mount (EXDEV)."""
    if _domain(here) is not _domain(there):
        raise WalkError(errno.EXDEV, virtual or here.is_virtual or there.is_virtual)


@dataclass(frozen=True)
class RealLocation:
    """A canonical absolute path in the real file system."""

    path: bytes

    @property
    def is_virtual(self) -> bool:
        """False: the kernel knows this object."""
        return False


@dataclass(frozen=True)
class VirtualLocation:
    """An object inside a mount: the inodes from the mount root down, and its attributes."""

    mount: Mount
    parts: tuple[bytes, ...]
    inodes: tuple[int, ...]
    attrs: Attributes

    @property
    def is_virtual(self) -> bool:
        """True: only the provider knows this object."""
        return True

    @property
    def ino(self) -> int:
        """The provider's handle of the object (Attributes.node; st_ino is attrs.ino)."""
        return self.inodes[-1]

    @property
    def path(self) -> bytes:
        """The absolute path the session sees (what getcwd reports)."""
        if not self.parts:
            return self.mount.mountpoint
        return self.mount.mountpoint.rstrip(b"/") + b"/" + b"/".join(self.parts)

    @property
    def shown_path(self) -> bytes:
        """What the kernel's d_path shows (/proc/PID/cwd, fd links): from a mount detached
        by a lazy unmount, the path below its root, as the kernel can't reach it."""
        if self.mount.detached:
            return b"/" + b"/".join(self.parts)
        return self.path


Location = RealLocation | VirtualLocation

ROOT = RealLocation(b"/")


@dataclass(frozen=True)
class Resolution:
    """Where a path leads, and whether the walk passed through virtual territory."""

    location: Location
    via_virtual: bool
    valid_until: float = 0.0
    """Until when (time.monotonic()) every provider answer the walk used stays valid: the
    least `Attributes.valid_until` met; 0 when the walk followed a symlink, "..", or began
    in virtual territory (such answers are never reused)."""

    @property
    def kernel_can_do_it(self) -> bool:
        """True when the kernel, given the caller's own string, reaches the same object."""
        return not self.location.is_virtual and not self.via_virtual


class WalkError(OSError):
    """A failed walk; `virtual` tells whether it failed in virtual territory.

    A walk that failed without touching a mount is the kernel's business: the handler lets the
    syscall run (CONTINUE) so that the caller gets the kernel's own answer (an O_CREAT on a
    missing real file must create it, not fail).
    """

    def __init__(
        self, code: int, virtual: bool, missing: tuple[VirtualLocation, bytes] | None = None
    ) -> None:
        super().__init__(code, os.strerror(code))
        self.virtual = virtual
        self.missing = missing
        """ENOENT for the path's own last name, in this virtual directory, reached without a
        symlink and with no "/" after the name: the directory and the name, as a walk of the
        path's directory part would find them (an O_CREAT needs no second walk)."""


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


Translator = Callable[[bytes], Awaitable["Location | None"]]
SelfIds = tuple[int, int] | Callable[[], tuple[int, int]]
"""The caller's (tgid, tid), or a function giving them (the tgid costs a /proc look-up)."""
"""Maps a real path or a magic-link target to the virtual object it stands for, if any."""


def _join(directory: bytes, name: bytes) -> bytes:
    return (directory if directory != b"/" else b"") + b"/" + name


async def mount_root(mount: Mount, requester: Caller | None = None) -> VirtualLocation:
    """The root directory of `mount`."""
    attrs = await mount.provider.getattr(ROOT_INODE, caller=requester)
    return VirtualLocation(mount, (), (ROOT_INODE,), attrs)


class PathResolver:
    """Resolves caller paths against the real file system and the mount table."""

    def __init__(self, mounts: MountTable, translate: Translator | None = None) -> None:
        self.mounts = mounts
        self.translate = translate

    async def location_of(self, canonical: bytes, requester: Caller | None = None) -> Location:
        """The location of an already canonical absolute path (e.g. a real cwd)."""
        found = self.mounts.resolve(canonical)
        if found is None:
            return RealLocation(canonical)
        mount, parts = found
        root = await mount_root(mount, requester)
        return (await self.resolve(b"/".join(parts) or b".", root, requester=requester)).location

    async def resolve(
        self,
        path: bytes,
        base: Location = ROOT,
        *,
        follow: bool = True,
        caller: Credentials | None = None,
        self_ids: SelfIds | None = None,
        requester: Caller | None = None,
        max_links: int = MAXSYMLINKS,
        confine: Confinement | None = None,
    ) -> Resolution:
        """Resolve `path` relative to `base` (the cwd or a dirfd's location).

        `follow=False` leaves a final symlink unresolved (lstat, readlink, O_NOFOLLOW), unless
        the path ends in "/".  `caller` enables search-permission checks in mounts with
        default_permissions; `self_ids` = (tgid, tid), or a function giving them when first
        needed, makes /proc/self and /proc/thread-self mean the caller; `requester` is passed
        to the provider with every request; `max_links` symlinks may be followed before
        ELOOP (0: openat2's RESOLVE_NO_SYMLINKS); `confine`: openat2's other scoping flags
        (an absolute `path` must have been dealt with by the caller under a scope).
        Raises :class:`WalkError` with the kernel's errno.
        """
        if len(path) + 1 > PATH_MAX:
            raise WalkError(errno.ENAMETOOLONG, base.is_virtual)
        if not path:
            raise WalkError(errno.ENOENT, base.is_virtual)
        via_virtual = base.is_virtual and not path.startswith(b"/")
        current: Location = ROOT if path.startswith(b"/") else base
        valid_until = 0.0 if current.is_virtual else float("inf")
        try:
            if path.startswith(b"/") and confine is None:
                mount = self.mounts.covering(path)
                if mount is not None and self._still_mounted_on(mount):
                    # The real part of the walk would only lead to the mountpoint: go there.
                    current = await mount_root(mount, requester)
                    path, via_virtual = path[len(mount.mountpoint):], True
                    valid_until = current.attrs.valid_until
            return await self._walk(
                path, current, via_virtual, follow, caller, self_ids, requester, valid_until,
                max_links, confine,
            )
        except WalkError:
            raise
        except OSError as error:
            raise WalkError(error.errno or errno.EIO, True) from error

    async def _walk(
        self,
        path: bytes,
        current: Location,
        via_virtual: bool,
        follow: bool,
        caller: Credentials | None,
        self_ids: SelfIds | None,
        requester: Caller | None,
        valid_until: float,
        max_links: int = MAXSYMLINKS,
        confine: Confinement | None = None,
    ) -> Resolution:
        pending = [part for part in path.split(b"/") if part][::-1]  # a stack, next on top
        must_be_dir = path.endswith(b"/")
        links = 0
        start, depth = current, 0  # depth below `start`, for a scoped walk's ".."
        while pending:
            name = pending.pop()
            last = not pending
            try:
                if name == b".":
                    self._need_directory(current)
                    continue
                if len(name) > _name_max(current):
                    raise _error(errno.ENAMETOOLONG)
                if caller is not None and isinstance(current, VirtualLocation):
                    if current.mount.options.get("default_permissions") is not None:
                        if current.attrs.is_dir:
                            permission.check(current.attrs, caller, permission.MAY_EXEC)
                if name == b"..":
                    valid_until = 0.0
                    if confine is not None and confine.scoped and depth == 0:
                        if confine.beneath:
                            raise _error(errno.EXDEV)
                        continue  # RESOLVE_IN_ROOT: ".." of the root is the root
                    parent = await self._parent(current, requester)
                    if confine is not None and confine.no_xdev:
                        _same_domain(current, parent)
                    current, depth = parent, max(depth - 1, 0)
                    via_virtual = via_virtual or current.is_virtual
                    continue
                child, target = await self._step(
                    current, name, follow or must_be_dir or not last, self_ids, requester
                )
            except WalkError:
                raise
            except OSError as error:
                missing = None
                if (
                    last and not links and not must_be_dir and error.errno == errno.ENOENT
                    and isinstance(current, VirtualLocation)
                ):
                    missing = (current, name)
                raise WalkError(
                    error.errno or errno.EIO, via_virtual or current.is_virtual, missing
                ) from error
            if target is None and not child.is_virtual and self.translate is not None:
                translated = await self.translate(child.path)
                if translated is not None:
                    child = translated
                    valid_until = 0.0
            if target is None:
                if isinstance(child, VirtualLocation):
                    valid_until = min(valid_until, child.attrs.valid_until)
                if confine is not None and confine.no_xdev:
                    _same_domain(current, child, via_virtual or child.is_virtual)
                current, depth = child, depth + 1
                via_virtual = via_virtual or current.is_virtual
                continue
            links += 1
            valid_until = 0.0
            if current.is_virtual:
                via_virtual = True
            if links > max_links:
                raise WalkError(errno.ELOOP, via_virtual)
            if not target:
                raise WalkError(errno.ENOENT, via_virtual)
            if self.translate is not None and not target.startswith(b"/"):
                # A magic link's target ("socket:[INO]" of a virtual fd) names no path.
                magic = await self.translate(target)
                if magic is not None:
                    if confine is not None and (confine.scoped or confine.no_xdev):
                        raise WalkError(errno.EXDEV, True)  # fs/namei.c nd_jump_link
                    via_virtual = True
                    current = magic
                    if last and must_be_dir:
                        self._need_directory(current)
                    continue
            if target.startswith(b"/"):
                if confine is not None and confine.beneath:
                    raise WalkError(errno.EXDEV, via_virtual)
                jumped = start if confine is not None and confine.in_root else ROOT
                if confine is not None and confine.no_xdev:
                    _same_domain(current, jumped, via_virtual)
                current, depth = jumped, 0
            if last and target.endswith(b"/"):
                must_be_dir = True
            pending.extend(part for part in target.split(b"/")[::-1] if part)
        if must_be_dir:
            try:
                self._need_directory(current)
            except OSError as error:
                raise WalkError(error.errno or errno.EIO, via_virtual) from error
        if not current.is_virtual or valid_until == float("inf"):
            valid_until = 0.0
        return Resolution(current, via_virtual, valid_until)

    @staticmethod
    def _still_mounted_on(mount: Mount) -> bool:
        """Whether the mountpoint's path still leads to the directory mounted on (one stat
        instead of a walk of every real component above it)."""
        if mount.identity is None:
            return False
        try:
            found = os.stat(mount.mountpoint)
        except OSError:
            return False
        return (found.st_dev, found.st_ino) == mount.identity

    def _need_directory(self, location: Location) -> None:
        if isinstance(location, VirtualLocation):
            if not location.attrs.is_dir:
                raise _error(errno.ENOTDIR)
        elif not stat_module.S_ISDIR(os.stat(location.path).st_mode):
            raise _error(errno.ENOTDIR)

    async def _parent(self, location: Location, requester: Caller | None) -> Location:
        """".." of `location`: up one level; from a mount root, up from the mountpoint."""
        self._need_directory(location)
        if isinstance(location, VirtualLocation):
            if not location.parts and location.mount.detached:
                return location  # the root of a detached mount has no parent: ".." stays
            if location.parts:
                inodes = location.inodes[:-1]
                attrs = await location.mount.provider.getattr(
                    inodes[-1], caller=requester
                )
                return VirtualLocation(location.mount, location.parts[:-1], inodes, attrs)
            location = RealLocation(location.mount.mountpoint)
        parent = os.path.dirname(location.path) or b"/"
        # The parent of a mountpoint may itself be virtual (a mount inside a mount).
        if self.mounts.resolve(parent):
            return await self.location_of(parent, requester)
        return RealLocation(parent)

    async def _step(
        self,
        current: Location,
        name: bytes,
        follow: bool,
        self_ids: SelfIds | None,
        requester: Caller | None,
    ) -> tuple[Location, bytes | None]:
        """Look `name` up in directory `current`: (child, None) or (current, symlink target)."""
        if self_ids is not None and current.path == b"/proc" and not current.is_virtual:
            if callable(self_ids):
                self_ids = self_ids()
            if name == b"self":
                return (current, str(self_ids[0]).encode()) if follow else (
                    RealLocation(b"/proc/self"), None)
            if name == b"thread-self":
                target = f"{self_ids[0]}/task/{self_ids[1]}".encode()
                return (current, target) if follow else (RealLocation(b"/proc/thread-self"), None)
        child_path = _join(current.path, name)
        mount = self.mounts.at(child_path)
        if mount is not None:
            self._need_directory(current)
            try:
                return await mount_root(mount, requester), None
            except OSError as error:
                # The mount answers for its root (ENOTCONN once aborted), never the directory
                # underneath it.
                raise WalkError(error.errno or errno.EIO, True) from error
        if isinstance(current, VirtualLocation):
            if not current.attrs.is_dir:
                raise _error(errno.ENOTDIR)
            provider = current.mount.provider
            attrs = await provider.lookup(current.ino, name, caller=requester)
            if attrs.is_symlink and follow:
                return current, await provider.readlink(attrs.node, caller=requester)
            child = VirtualLocation(
                current.mount, current.parts + (name,), current.inodes + (attrs.node,), attrs
            )
            return child, None
        mode = os.lstat(child_path).st_mode
        if stat_module.S_ISLNK(mode) and follow:
            return current, os.readlink(child_path)
        return RealLocation(child_path), None


def _name_max(location: object) -> int:
    """The longest name allowed in `location`: its file system's (FUSE allows 1024)."""
    if isinstance(location, VirtualLocation):
        return location.mount.provider.name_max
    return NAME_MAX
