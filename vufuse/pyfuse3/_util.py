"""Small helpers pyfuse3 exports for filesystem authors: xattrs, listdir, syncfs, groups.

On Linux the standard library already has what libfuse-era pyfuse3 wrapped in C, so these are
thin, argument-checking shims; the checks mirror pyfuse3's so callers see the same TypeErrors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Literal

NamespaceT = Literal["system", "user"]


def _check_str(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"*{what}* argument must be of type str")


def _check_namespace(namespace: str) -> None:
    # The namespace matters only on the BSDs; Linux spells it in the name. Still validate it.
    if namespace not in ("system", "user"):
        raise ValueError(f'*namespace* parameter must be "system" or "user", not {namespace}')


def listdir(path: str) -> list[str]:
    """Names in directory *path* without "." and ".." (like os.listdir, str with surrogates)."""
    _check_str(path, "path")
    return os.listdir(path)


def syncfs(path: str) -> None:
    """Flush the filesystem that holds *path* to its storage (syncfs(2))."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(path, os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def setxattr(path: str, name: str, value: bytes, namespace: NamespaceT = "user") -> None:
    """Set extended attribute *name* of *path* to *value*."""
    _check_str(path, "path")
    _check_str(name, "name")
    _check_namespace(namespace)
    if not isinstance(value, bytes):
        raise TypeError("*value* argument must be of type bytes")
    os.setxattr(path, name, value)


def getxattr(path: str, name: str, size_guess: int = 128, namespace: NamespaceT = "user") -> bytes:
    """Return extended attribute *name* of *path* (*size_guess* is accepted and not needed)."""
    _check_str(path, "path")
    _check_str(name, "name")
    _check_namespace(namespace)
    return os.getxattr(path, name)


def get_sup_groups(pid: int) -> set[int]:
    """Supplementary group ids of process *pid*, read from /proc (for `access` handlers)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Groups:"):
                return {int(gid) for gid in line.split()[1:]}
    raise RuntimeError(f"Unable to parse /proc/{pid}/status")
