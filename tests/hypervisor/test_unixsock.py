"""The table of unix sockets bound on mounts, and reading a sockaddr_un like the kernel."""

from __future__ import annotations

import errno
import os
import socket
import struct
from pathlib import Path

import pytest

from hypervisor.unixsock import UnixBindings, parse_unix_address


def _address(path: bytes, family: int = socket.AF_UNIX) -> bytes:
    return struct.pack("<H", family) + path


def test_parse_unix_address() -> None:
    assert parse_unix_address(_address(b"/mnt/sock\0junk")) == b"/mnt/sock"
    assert parse_unix_address(_address(b"rel")) == b"rel"  # no NUL: up to the length
    assert parse_unix_address(_address(b"\0abstract")) is None
    assert parse_unix_address(_address(b"")) is None  # unnamed (autobind)
    assert parse_unix_address(_address(b"/x", socket.AF_INET)) is None
    assert parse_unix_address(_address(b"a" * 200)) == b"a" * 108


def test_bindings_record_replace_and_forget(tmp_path: Path) -> None:
    bindings = UnixBindings(os.fsencode(tmp_path / "sock"))
    first = bindings.new_path()
    assert (tmp_path / "sock").stat().st_mode & 0o777 == 0o700
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(first)
    bindings.record(3, 42, first)
    assert bindings.lookup(3, 42) == first and bindings.lookup(4, 42) is None
    second = bindings.new_path()
    assert second != first
    bindings.record(3, 42, second)  # a new socket at a reused handle
    assert bindings.lookup(3, 42) == second and not os.path.exists(first)
    bindings.forget(3, 42)
    assert bindings.lookup(3, 42) is None and len(bindings) == 0
    server.close()


def test_a_runtime_directory_too_deep_for_sun_path(tmp_path: Path) -> None:
    bindings = UnixBindings(os.fsencode(tmp_path / ("d" * 110)))
    with pytest.raises(OSError) as info:
        bindings.new_path()
    assert info.value.errno == errno.ENAMETOOLONG
