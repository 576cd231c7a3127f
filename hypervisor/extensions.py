"""Extension points: how a layer above the hypervisor (vufuse's FUSE glue) plugs into a session.

The hypervisor knows nothing of what plugs in here.  Three kinds of hook:

- **special files**: a real path (canonical, as the path walk ends) whose open the extension
  answers with a kernel object of its own, injected at the caller's lowest free fd number
  (a device such as /dev/fuse, or a generated file such as /proc/PID/mountinfo);
- **mount types**: a handler for mount(2) of the file-system types it accepts;
- **an ioctl request** on fds that are not virtual (a device of the extension's, read
  natively): the session must have been made with ``Session(trapped_ioctl=REQUEST)`` so
  that the filter queues it whatever the fd;
- the session's nursery (``Session.nursery``) and mount table, for what the handlers start.

Special files are matched by the final component first (the C fast path only queues paths
whose last component is a registered *special name*, or that lie under a mountpoint), then by
a predicate on the canonical path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dispatch import Call

SpecialOpener = Callable[["Call", bytes, int], Awaitable[int]]
"""``opener(call, canonical_path, open_flags)`` → an fd of vufuse's own; the hypervisor
injects a copy at the caller's lowest free number and closes this one.  OSError → errno."""


@dataclass(frozen=True)
class MountRequest:
    """A mount(2) call, its strings read and its target resolved."""

    source: bytes | None
    target: bytes  # canonical absolute path of the mountpoint
    target_is_dir: bool
    fstype: bytes
    flags: int  # MS_* (the magic number already stripped)
    data: bytes | None


IoctlHandler = Callable[["Call"], Awaitable[int | None]]
"""``handler(call)`` → the ioctl's result, or None to let the kernel answer; OSError → errno."""

MountHandler = Callable[["Call", MountRequest], Awaitable[int]]
"""``handler(call, request)`` → 0 (the mount is in the table) or OSError(errno)."""


@dataclass(frozen=True)
class _SpecialFile:
    names: frozenset[bytes]
    matches: Callable[[bytes], bool]
    opener: SpecialOpener


class Extensions:
    """The hooks registered in one session."""

    def __init__(self, push_names: Callable[[list[bytes]], None]) -> None:
        self._special: list[_SpecialFile] = []
        self._mount_types: list[tuple[Callable[[bytes], bool], MountHandler]] = []
        self._push_names = push_names
        self._ioctls: dict[int, IoctlHandler] = {}

    def add_special_file(
        self, names: Iterable[bytes], matches: Callable[[bytes], bool], opener: SpecialOpener
    ) -> None:
        """Answer opens of canonical paths whose last component is in `names` and for which
        `matches(path)` holds, with `opener`."""
        self._special.append(_SpecialFile(frozenset(names), matches, opener))
        self._push_names(sorted({name for entry in self._special for name in entry.names}))

    def add_device(self, path: bytes, opener: SpecialOpener) -> None:
        """A device node at canonical `path` (e.g. b"/dev/fuse") whose open `opener` answers."""
        self.add_special_file([path.rsplit(b"/", 1)[-1]], lambda candidate: candidate == path,
                              opener)

    @property
    def has_special_files(self) -> bool:
        """True once any special file is registered (opens then resolve real paths too)."""
        return bool(self._special)

    def special_file(self, path: bytes) -> SpecialOpener | None:
        """The opener of canonical `path`, if an extension answers it."""
        name = path.rsplit(b"/", 1)[-1]
        for entry in self._special:
            if name in entry.names and entry.matches(path):
                return entry.opener
        return None

    def add_mount_type(self, accepts: Callable[[bytes], bool], handler: MountHandler) -> None:
        """mount(2) of a file-system type for which `accepts(fstype)` holds goes to `handler`."""
        self._mount_types.append((accepts, handler))

    def add_ioctl(self, request: int, handler: IoctlHandler) -> None:
        """ioctl(fd, `request`, ...) on a non-virtual fd goes to `handler`."""
        self._ioctls[request & 0xFFFFFFFF] = handler

    def ioctl_handler(self, request: int) -> IoctlHandler | None:
        """The handler of ioctl `request` on a non-virtual fd, if an extension takes it."""
        return self._ioctls.get(request & 0xFFFFFFFF)

    def mount_handler(self, fstype: bytes) -> MountHandler | None:
        """The handler of mount(2) for `fstype`, if an extension takes it."""
        for accepts, handler in self._mount_types:
            if accepts(fstype):
                return handler
        return None
