"""The one exception the protocol package raises.

Every malformed message -- short buffers, lengths that disagree with a header,
unknown opcodes, names without their NUL, replies larger than the request
allowed -- surfaces as :class:`ProtocolError`.  Callers on the hot path then
need a single ``except ProtocolError`` to turn bad input into the errno the
kernel would use (usually ``EIO`` for a daemon reply, ``EINVAL`` for a write to
the device), and nothing else can escape a decoder.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """A FUSE message that does not follow the wire protocol.

    ``field`` names the part of the message at fault (``"in_header.len"``,
    ``"name"``, ``"opcode"`` ...), so a log line says where to look.  It
    subclasses :class:`ValueError` because a malformed message is a bad value,
    and code written against ``ValueError`` keeps working.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
