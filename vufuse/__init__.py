"""vufuse: FUSE with no kernel module.

The Python API (:class:`Session`, docs/api.md) is imported on first use, so that
``vufuse.pyfuse3`` and the daemon helpers load nothing they do not need.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Mount", "MountError", "OperationsClass", "Session", "SessionError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'vufuse' has no attribute {name!r}")
