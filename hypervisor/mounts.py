"""The session's mount table: which provider answers under which path.

Mountpoints are canonical absolute paths (no symlinks, no "." or ".."), so a lookup is a
longest-prefix match on path components.  Each mount gets its own st_dev, as each FUSE
superblock gets its own anonymous device on the kernel (df, findmnt and `find -xdev` rely on
it), and its own mount id for statx's stx_mnt_id.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from .provider import Provider

_FIRST_MINOR = 1000
"""Anonymous-device minors the host already uses are small; start above them."""


# Per-mount flags of mount(2) (MS_*) that show in mountinfo and statfs's f_flags.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME = 256, 1024, 2048
MS_STRICTATIME = 1 << 24
DEFAULT_MOUNT_FLAGS = MS_NOSUID | MS_NODEV
"""What an unprivileged FUSE mount gets (fusermount3 always adds nosuid,nodev)."""


@dataclass(eq=False)
class Mount:
    """One virtual mount.

    `super_options` is the super-options field of its mountinfo line (the file system's
    show_options, e.g. ``rw,user_id=1000,group_id=1000``); `mount_flags` its MS_* per-mount
    flags; `owner_uid` who may unmount it besides root (FUSE's user_id); `on_unmount` is
    awaited once it has left the table (and, for a lazy unmount, once it is no longer busy).
    """

    mountpoint: bytes
    provider: Provider
    dev: int
    mount_id: int
    fstype: bytes = b"fuse"
    source: bytes = b"vufuse"
    options: dict[str, str] = field(default_factory=dict)
    mount_flags: int = DEFAULT_MOUNT_FLAGS
    super_options: str = "rw"
    owner_uid: int = 0
    on_unmount: Callable[[Mount], Awaitable[None]] | None = None
    detached: bool = False
    identity: tuple[int, int] | None = None
    """(st_dev, st_ino) of the directory mounted on, when it could be stat'ed: a walk may
    jump straight to the mount while its path still leads there (PathResolver)."""

    def mount_options(self) -> str:
        """The per-mount options field of mountinfo (show_mnt_opts): ``rw,nosuid,nodev,…``."""
        flags = self.mount_flags
        words = ["ro" if flags & MS_RDONLY else "rw"]
        for bit, word in ((MS_NOSUID, "nosuid"), (MS_NODEV, "nodev"), (MS_NOEXEC, "noexec")):
            if flags & bit:
                words.append(word)
        if flags & MS_NOATIME:
            words.append("noatime")
        if flags & MS_NODIRATIME:
            words.append("nodiratime")
        if not flags & (MS_NOATIME | MS_STRICTATIME):
            words.append("relatime")
        if flags & MS_NOSYMFOLLOW:
            words.append("nosymfollow")
        return ",".join(words)

    def statfs_flags(self) -> int:
        """statfs's f_flags bits of the per-mount flags (ST_* equal MS_* for these)."""
        flags = self.mount_flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW
                                    | MS_NOATIME | MS_NODIRATIME)
        if not flags & MS_NOATIME and not self.mount_flags & MS_STRICTATIME:
            flags |= 4096  # ST_RELATIME
        return flags


def _used_anonymous_minors() -> set[int]:
    """Minors of major 0 in use on the host, read from /proc/self/mountinfo."""
    used: set[int] = set()
    try:
        with open("/proc/self/mountinfo", "rb") as mountinfo:
            for line in mountinfo:
                major, _, minor = line.split()[2].partition(b":")
                if major == b"0":
                    used.add(int(minor))
    except OSError:
        pass
    return used


def _components(path: bytes) -> tuple[bytes, ...]:
    return tuple(part for part in path.split(b"/") if part)


class MountTable:
    """Mountpoint → provider; notifies a listener (the C core's prefix list) of every change."""

    def __init__(self) -> None:
        self._mounts: dict[tuple[bytes, ...], Mount] = {}
        self._next_minor = max(_used_anonymous_minors() | {_FIRST_MINOR - 1}) + 1
        self._next_mount_id = 0x7FFF0000
        self._listeners: list[Callable[[list[bytes]], None]] = []

    def add(self, mountpoint: bytes, provider: Provider, **fields: object) -> Mount:
        """Mount `provider` at canonical absolute `mountpoint` (stacking over an older mount)."""
        if not mountpoint.startswith(b"/"):
            raise ValueError("mountpoint must be absolute")
        key = _components(mountpoint)
        mount = Mount(
            mountpoint=b"/" + b"/".join(key),
            provider=provider,
            dev=os.makedev(0, self._next_minor),
            mount_id=self._next_mount_id,
            **fields,  # type: ignore[arg-type]
        )
        self._next_minor += 1
        self._next_mount_id += 1
        try:
            found = os.stat(mount.mountpoint)
            mount.identity = (found.st_dev, found.st_ino)
        except OSError:
            pass
        self._mounts[key] = mount
        self._changed()
        return mount

    def remove(self, mount: Mount) -> None:
        """Unmount `mount`."""
        key = _components(mount.mountpoint)
        if self._mounts.get(key) is mount:
            del self._mounts[key]
            self._changed()

    def at(self, path: bytes) -> Mount | None:
        """The mount whose mountpoint is exactly canonical `path`, if any."""
        return self._mounts.get(_components(path))

    def resolve(self, path: bytes) -> tuple[Mount, tuple[bytes, ...]] | None:
        """Longest-prefix match: (mount, components below its root) for a canonical path."""
        parts = _components(path)
        for length in range(len(parts), -1, -1):
            mount = self._mounts.get(parts[:length])
            if mount is not None:
                return mount, parts[length:]
        return None

    def covering(self, path: bytes) -> Mount | None:
        """The mount with the longest mountpoint that `path` spells out literally (equal to
        it, or it followed by "/"), "/" excepted; None when there is none."""
        found: Mount | None = None
        for mount in self._mounts.values():
            point = mount.mountpoint
            if path.startswith(point) and (len(path) == len(point) or path[len(point)] == 47):
                if point != b"/" and (found is None or len(point) > len(found.mountpoint)):
                    found = mount
        return found

    def __iter__(self) -> Iterator[Mount]:
        return iter(list(self._mounts.values()))

    def __len__(self) -> int:
        return len(self._mounts)

    def prefixes(self) -> list[bytes]:
        """The watched prefixes for the C fast path: every mountpoint."""
        return sorted(mount.mountpoint for mount in self._mounts.values())

    def on_change(self, listener: Callable[[list[bytes]], None]) -> None:
        """Call `listener(prefixes)` now and after every mount or unmount."""
        self._listeners.append(listener)
        listener(self.prefixes())

    def _changed(self) -> None:
        prefixes = self.prefixes()
        for listener in self._listeners:
            listener(prefixes)
