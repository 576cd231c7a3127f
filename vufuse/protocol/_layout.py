"""Turn a typed NamedTuple into a wire layout, so each struct is written once.

A wire struct is declared as a ``NamedTuple`` whose annotations carry the C
type (``U32``, ``U64``, ``Bytes(24)``, or another struct for nesting).  From
that one declaration :class:`Layout` derives a precompiled
:class:`struct.Struct` in native byte order with no implicit padding (FUSE
structs are explicitly padded to 8 bytes), plus fast ``unpack``/``pack``.

NamedTuples because they are tuples: a flat struct packs with ``pack(*value)``
and unpacks with one ``tuple.__new__`` -- no per-field Python work and no class
created per message.  Every field defaults to 0, as a zeroed C struct.
"""

from __future__ import annotations

import struct
import typing
from typing import Annotated, Any, Generic, TypeVar

from .errors import ProtocolError


class _Scalar:
    __slots__ = ("code", "bits", "signed")

    def __init__(self, code: str, bits: int, signed: bool) -> None:
        self.code = code
        self.bits = bits
        self.signed = signed


class Bytes:
    """A fixed-size byte array field (``uint32_t spare[6]`` is ``Bytes(24)``)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


U8 = Annotated[int, _Scalar("B", 8, False)]
U16 = Annotated[int, _Scalar("H", 16, False)]
U32 = Annotated[int, _Scalar("I", 32, False)]
U64 = Annotated[int, _Scalar("Q", 64, False)]
S32 = Annotated[int, _Scalar("i", 32, True)]
S64 = Annotated[int, _Scalar("q", 64, True)]

T = TypeVar("T", bound=tuple[Any, ...])

_LAYOUTS: dict[type, Layout[Any]] = {}


class Layout(Generic[T]):
    """The wire form of one struct: its :class:`struct.Struct` and converters.

    ``size`` is ``sizeof`` of the C struct; ``unpack_prefix``/``pack_prefix``
    handle older minors, whose structs are always a prefix of today's.
    """

    __slots__ = ("cls", "name", "struct", "size", "_flat", "_segments", "_make", "_fields")

    def __init__(self, cls: type[T], name: str) -> None:
        self.cls = cls
        self.name = name
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
        fmt = "="
        flat_index = 0
        # (start, end, nested layout or None) over the flat tuple, per field.
        segments: list[tuple[int, int, Layout[Any] | None]] = []
        leaves: list[tuple[str, Any]] = []
        for field in fields:
            hint = hints[field]
            nested = _LAYOUTS.get(hint) if isinstance(hint, type) else None
            if nested is not None:
                fmt += nested.struct.format.lstrip("=")
                count = len(nested._fields)
                segments.append((flat_index, flat_index + count, nested))
                leaves.extend((f"{field}.{n}", k) for n, k in nested._fields)
                flat_index += count
                continue
            kind = typing.get_args(hint)[1] if typing.get_origin(hint) is Annotated else None
            if isinstance(kind, _Scalar):
                fmt += kind.code
            elif isinstance(kind, Bytes):
                fmt += f"{kind.size}s"
            else:
                raise TypeError(f"{cls.__name__}.{field}: no wire type in {hint!r}")
            segments.append((flat_index, flat_index + 1, None))
            leaves.append((field, kind))
            flat_index += 1
        self.struct: struct.Struct = struct.Struct(fmt)
        self.size = self.struct.size
        self._fields: list[tuple[str, Any]] = leaves
        self._flat = all(sub is None for _, _, sub in segments)
        self._segments = segments
        self._make = tuple.__new__
        _LAYOUTS[cls] = self

    def from_flat(self, flat: tuple[Any, ...]) -> T:
        """Build the value from the flat tuple ``struct`` produced."""
        if self._flat:
            return self._make(self.cls, flat)
        values: list[Any] = []
        for start, end, sub in self._segments:
            if sub is None:
                values.append(flat[start])
            else:
                values.append(sub.from_flat(flat[start:end]))
        return self._make(self.cls, values)

    def to_flat(self, value: T) -> tuple[Any, ...]:
        """The flat field tuple ``struct`` packs."""
        if self._flat:
            return value
        flat: list[Any] = []
        for (_, _, sub), item in zip(self._segments, value, strict=True):
            if sub is None:
                flat.append(item)
            else:
                flat.extend(sub.to_flat(item))
        return tuple(flat)

    def unpack(self, buffer: bytes | bytearray | memoryview, offset: int = 0) -> T:
        """Decode the struct at ``offset``; the caller has checked the length."""
        flat = self.struct.unpack_from(buffer, offset)
        if self._flat:
            return self._make(self.cls, flat)
        return self.from_flat(flat)

    def unpack_prefix(self, buffer: bytes | bytearray | memoryview, offset: int, size: int) -> T:
        """Decode an older, shorter form: the missing tail reads as zeros."""
        if size >= self.size:
            return self.unpack(buffer, offset)
        padded = bytes(buffer[offset : offset + size]) + bytes(self.size - size)
        return self.unpack(padded)

    def pack(self, value: T) -> bytes:
        """Encode ``value``; a field out of range raises :class:`ProtocolError`."""
        if not isinstance(value, self.cls):
            raise ProtocolError(
                self.name, f"expected {self.cls.__name__}, got {type(value).__name__}"
            )
        try:
            return self.struct.pack(*(value if self._flat else self.to_flat(value)))
        except (struct.error, TypeError) as exc:
            raise self._explain(value) from exc

    def pack_prefix(self, value: T, size: int) -> bytes:
        """Encode the first ``size`` bytes: the struct as an older minor has it."""
        packed = self.pack(value)
        return packed if size >= self.size else packed[:size]

    def _explain(self, value: T) -> ProtocolError:
        # Slow path only: find the field that struct refused.
        flat = self.to_flat(value) if not self._flat else value
        for (name, kind), item in zip(self._fields, flat, strict=True):
            field = f"{self.name}.{name}"
            if isinstance(kind, Bytes):
                if not isinstance(item, bytes | bytearray) or len(item) != kind.size:
                    return ProtocolError(field, f"must be {kind.size} bytes")
            elif not isinstance(item, int):
                return ProtocolError(field, f"must be an int, got {type(item).__name__}")
            else:
                low = -(1 << (kind.bits - 1)) if kind.signed else 0
                high = (1 << (kind.bits - 1)) - 1 if kind.signed else (1 << kind.bits) - 1
                if not low <= item <= high:
                    return ProtocolError(field, f"{item} out of range {low}..{high}")
        return ProtocolError(self.name, "cannot encode")


def layout_of(cls: type[T]) -> Layout[T]:
    """The layout declared for a struct class."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        raise TypeError(f"{cls.__name__} is not a wire struct")
    return layout


def is_struct(hint: object) -> bool:
    """Whether a type annotation names a wire struct (for nesting)."""
    return isinstance(hint, type) and hint in _LAYOUTS
