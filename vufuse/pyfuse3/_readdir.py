"""READDIRPLUS replies built entry by entry: `ReaddirToken` and `readdir_reply`.

pyfuse3 only implements readdirplus, so every directory entry carries full attributes and
each accepted entry (apart from "." and "..") costs the kernel one lookup count: that is why
the filesystem must count an entry only when `readdir_reply` returns True.
"""

from __future__ import annotations

from . import _wire
from ._data import EntryAttributes


class ReaddirToken:
    """The reply being filled for one READDIRPLUS request: a byte budget and the entries so far."""

    __slots__ = ("_space_left", "_entries")

    def __init__(self, size: int = 0) -> None:
        self._space_left = size
        self._entries: list[bytes] = []

    def payload(self) -> bytes:
        """The reply body: all accepted entries back to back."""
        return b"".join(self._entries)


def readdir_reply(token: ReaddirToken, name: bytes, attr: EntryAttributes, next_id: int) -> bool:
    """Add entry *name* to the reply; False (and nothing added) once the reply is full.

    *next_id* is the position after this entry: a later `readdir` may resume from it.
    """
    entry = _wire.encode_direntplus(name, attr, next_id)
    if len(entry) > token._space_left:
        return False
    token._space_left -= len(entry)
    token._entries.append(entry)
    return True
