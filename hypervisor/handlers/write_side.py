"""Path syscalls that would change a virtual file system: EROFS for now, with the kernel's
other errnos (EEXIST, ENOENT, ENOTDIR, EXDEV) where it gives them first.

Also the few read-side path calls that a provider can't serve yet (exec, inotify, handles).
"""

from __future__ import annotations

import errno

from ..abi import AT_EMPTY_PATH
from ..dispatch import CONTINUE, Call, Dispatcher, Handler, Reply
from ..paths import VirtualLocation
from ..syscalls import rule_for
from .common import LetKernel, error, kernel_unless_virtual, resolve

CREATE = "mkdir mknod symlink mkdirat mknodat symlinkat"
"""Make a new name: EEXIST if it exists, EROFS if its directory is virtual."""
MODIFY = (
    "truncate rmdir unlink chmod chown lchown utime utimes setxattr lsetxattr removexattr"
    " lremovexattr fchownat futimesat unlinkat fchmodat fchmodat2 utimensat setxattrat"
    " removexattrat file_setattr acct swapon swapoff quotactl"
)
"""Change an existing object: EROFS."""
TWO_PATHS = "rename link renameat renameat2 linkat pivot_root"
"""Two names: EXDEV across file systems, else EROFS."""
UNSUPPORTED = {
    "execve": errno.ENOEXEC,  # exec from a mount needs a memfd swap: not yet
    "execveat": errno.ENOEXEC,
    "uselib": errno.ENOEXEC,
    "chroot": errno.EPERM,
    "inotify_add_watch": errno.EOPNOTSUPP,
    "fanotify_mark": errno.EOPNOTSUPP,
    "name_to_handle_at": errno.EOPNOTSUPP,
    "file_getattr": errno.EOPNOTSUPP,
}
_NO_FOLLOW = {"lchown", "lsetxattr", "lremovexattr", "unlink", "rmdir", "unlinkat",
              "rename", "renameat", "renameat2", "symlink", "symlinkat"}


async def _probe(call: Call, path_arg: int, dirfd_arg: int, follow: bool) -> VirtualLocation | None:
    """The virtual object a path names, None if it is missing in a virtual directory."""
    dirfd = dirfd_arg if dirfd_arg >= 0 else None
    try:
        result = await resolve(call, path_arg, dirfd, follow=follow)
    except OSError as failure:
        if failure.errno == errno.ENOENT:
            return None
        raise
    if not isinstance(result.location, VirtualLocation):
        # A real object reached through a mount (a symlink out of it): not ours to change
        # yet; EXDEV is what a cross-file-system operation would say.
        raise error(errno.EXDEV)
    return result.location


def _make(kind: str) -> Handler:
    @kernel_unless_virtual
    async def handler(call: Call) -> Reply:
        rule = rule_for(call.nr)
        assert rule is not None
        name = call.name
        follow = name not in _NO_FOLLOW
        if name == "utimensat" and call.arg(1) == 0:
            from .common import virtual_fd

            virtual_fd(call, 0)  # utimensat(fd, NULL, ...) changes the fd's file
            raise error(errno.EROFS)
        if kind == "two":
            virtual = []
            for path_arg, dirfd_arg in rule.paths:
                try:
                    await _probe(call, path_arg, dirfd_arg, False)
                    virtual.append(True)
                except LetKernel:
                    virtual.append(False)
            if not any(virtual):
                return CONTINUE
            raise error(errno.EROFS if all(virtual) else errno.EXDEV)
        path_arg, dirfd_arg = rule.paths[-1] if kind == "create" else rule.paths[0]
        if kind == "unsupported" and name == "execveat" and call.int_arg(4) & AT_EMPTY_PATH:
            raise LetKernel
        location = await _probe(call, path_arg, dirfd_arg, follow and kind != "create")
        if kind == "unsupported":
            if location is None:
                raise error(errno.ENOENT)
            raise error(UNSUPPORTED[name])
        if kind == "create":
            raise error(errno.EEXIST if location is not None else errno.EROFS)
        if location is None:
            raise error(errno.ENOENT)
        if name in ("rmdir",) and not location.attrs.is_dir:
            raise error(errno.ENOTDIR)
        if name in ("unlink",) and location.attrs.is_dir:
            raise error(errno.EISDIR)
        raise error(errno.EROFS)

    return handler


def register(dispatcher: Dispatcher) -> None:
    """Route the modifying path syscalls."""
    dispatcher.register(CREATE, _make("create"))
    dispatcher.register(MODIFY, _make("modify"))
    dispatcher.register(TWO_PATHS, _make("two"))
    dispatcher.register(" ".join(UNSUPPORTED), _make("unsupported"))
