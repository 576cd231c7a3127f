"""The C core's answer cache, from the Python side: what may be handed to it, and when it
is forgotten (docs/decisions.md D20).

After Python has answered a stat of a virtual object, the answer is pushed to the C core
keyed by the path the caller gave -- only when that path is already canonical (it *is* the
object's path: no symlink, ".", ".." or doubled slash on the way), the provider promised
how long the answer holds (`Attributes.valid_until`) and reports its invalidations
(`Provider.watch_changes`).  The listener thread then answers the same stat itself while
the deadline lasts.  Everything is dropped at once when a provider reports a change, when
the mount table changes and after any syscall that may change a virtual object; a push
computed before the last drop is refused by the generation check.

Answers are shared by all tracees; the C core serves them only while every tracee keeps the
identity the session started with (it watches the set*id family).  The same fact lets
:meth:`AnswerCache.session_identity` spare the per-call read of /proc/TID/status.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from . import syscalls
from .abi import pack_stat, pack_statx
from .mounts import MountTable
from .paths import Resolution, VirtualLocation
from .process import Credentials
from .provider import Attributes

_ALWAYS_MUTATING = frozenset(
    syscalls.nr(name)
    for name in (
        "creat openat2 mkdir mkdirat mknod mknodat symlink symlinkat link linkat unlink"
        " unlinkat rmdir rename renameat renameat2 truncate chmod fchmodat fchmodat2 chown"
        " lchown fchownat utime utimes futimesat utimensat setxattr lsetxattr removexattr"
        " lremovexattr write pwrite64 writev pwritev pwritev2 ftruncate fchmod fchown fsync"
        " fdatasync syncfs fallocate fsetxattr fremovexattr copy_file_range sendfile splice"
        " ioctl mmap setxattrat removexattrat file_setattr"
    ).split()
)
"""Syscalls after which, if they touched a virtual object, every answer is forgotten (the
providers report their own invalidations too: this is the provider-agnostic safety net)."""
_OPEN_FLAGS_ARG = {syscalls.nr("open"): 1, syscalls.nr("openat"): 2}
_CREATING = os.O_CREAT | os.O_TRUNC


class AnswerCache:
    """The session's view of `Tracer.cache_answer` and friends (absent in test tracers)."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.enabled = hasattr(tracer, "cache_answer")
        self._watching: dict[int, bool] = {}  # id(provider) -> reports its changes
        self._identity: tuple[Any, Credentials] | None = None
        #: True while answers must not be reused: files written natively behind the
        #: provider's back (low-fd and mmap stand-ins, D7/D19) change without a trapped call.
        self.suspended: Callable[[], bool] = lambda: False
        if self.enabled:
            tracer.set_syscall_roles(syscalls.build_roles())

    # --- generations and drops -------------------------------------------------------------
    def generation(self) -> int:
        """Read before computing an answer; pass to :meth:`offer`."""
        return int(self.tracer.answer_generation()) if self.enabled else 0

    def drop(self) -> None:
        """Forget every answer (a provider's state changed)."""
        if self.enabled:
            self.tracer.drop_answers()

    def mounts_changed(self, mounts: MountTable) -> None:
        """A mount or unmount: forget everything; watch the providers of new mounts."""
        self.drop()
        for mount in mounts:
            key = id(mount.provider)
            if key not in self._watching:
                self._watching[key] = bool(mount.provider.watch_changes(self.drop))

    def after_call(self, nr: int, args: tuple[int, ...]) -> None:
        """A syscall that touched a virtual object has been handled: forget everything if it
        may have changed one (before its caller learns it is done)."""
        if nr in _ALWAYS_MUTATING:
            self.drop()
            return
        flags_arg = _OPEN_FLAGS_ARG.get(nr)
        if flags_arg is not None and args[flags_arg] & _CREATING:
            self.drop()

    # --- answers -----------------------------------------------------------------------------
    def offer(self, key: bytes | None, resolution: Resolution, attrs: Attributes,
              generation: int) -> None:
        """Hand a stat answer to the C core when it may be reused (see the module doc)."""
        location = resolution.location
        if not self.enabled or key is None or not isinstance(location, VirtualLocation):
            return
        if self.suspended():
            return
        if location.path != key or not self._watching.get(id(location.mount.provider)):
            return
        valid_until = min(resolution.valid_until, attrs.valid_until)
        deadline_ns = int(valid_until * 1e9)
        if deadline_ns <= time.monotonic_ns():
            return
        mount = location.mount
        self.tracer.cache_answer(
            key,
            pack_stat(attrs, mount.dev),
            pack_statx(attrs, mount.dev, mount.mount_id, not location.parts),
            attrs.is_symlink,
            deadline_ns,
            generation,
        )

    # --- identities ----------------------------------------------------------------------------
    def session_identity(self) -> Credentials | None:
        """Every tracee's ids while none may have changed them (umask not included)."""
        if not self.enabled:
            return None
        ids = self.tracer.session_ids()
        if ids is None:
            return None
        cached = self._identity
        if cached is None or cached[0] != ids:
            uid, gid, groups = ids
            cached = (ids, Credentials(uid, gid, uid, gid, uid, gid, tuple(groups)))
            self._identity = cached
        return cached[1]
