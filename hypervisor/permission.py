"""Permission checks on virtual objects, as the kernel's generic_permission does them.

Used for mounts with `default_permissions` (FUSE's option that lets the kernel, not the
daemon, check modes); without it the provider decides, as FUSE daemons do.
"""

from __future__ import annotations

import errno
import os

from .process import Credentials
from .provider import Attributes

MAY_EXEC = 1
MAY_WRITE = 2
MAY_READ = 4


def check(attrs: Attributes, creds: Credentials, mask: int, *, real_ids: bool = False) -> None:
    """Raise EACCES unless `creds` may access `attrs` with `mask` (MAY_* bits).

    `real_ids` checks with the real uid/gid, as access(2) does without AT_EACCESS.
    """
    if not mask:
        return
    uid = creds.uid if real_ids else creds.fsuid
    gid = creds.gid if real_ids else creds.fsgid
    if uid == 0:
        # CAP_DAC_OVERRIDE: read and write always; exec only if someone may exec, or a dir.
        if not mask & MAY_EXEC or attrs.is_dir or attrs.mode & 0o111:
            return
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))
    if attrs.uid == uid:
        granted = (attrs.mode >> 6) & 7
    elif attrs.gid == gid or attrs.gid in creds.groups:
        granted = (attrs.mode >> 3) & 7
    else:
        granted = attrs.mode & 7
    if mask & ~granted:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))
