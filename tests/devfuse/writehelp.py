"""Helpers for the write-side tests: agreeing extra INIT flags, callers, mount options."""

from __future__ import annotations

from dataclasses import replace

from fusehelp import OPTIONS

from hypervisor.provider import Caller
from vufuse import protocol as p
from vufuse.devfuse import FuseProvider

PERMISSIONS = replace(OPTIONS, default_permissions=True, allow_other=True)
OWNER = Caller(pid=4242, uid=1000, gid=1000)
STRANGER = Caller(pid=4343, uid=2000, gid=2000)
GROUPIE = Caller(pid=4444, uid=3000, gid=3000, groups=[1000])
ROOT = Caller(pid=1, uid=0, gid=0)


def agree(fs: FuseProvider, *flags: p.InitFlag, minor: int | None = None) -> None:
    """Pretend INIT agreed ``flags`` too (we do not offer the write-side flags yet)."""
    negotiated = fs.connection.negotiated
    extra = 0
    for flag in flags:
        extra |= flag
    fs.connection.negotiated = replace(
        negotiated, flags=negotiated.flags | extra,
        minor=negotiated.minor if minor is None else minor,
    )  # fmt: skip
    fs.sb.apply_negotiated()
