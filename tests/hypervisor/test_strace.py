"""The strace-style lines of --debug (hypervisor/strace.py), formatted without a tracee."""

from __future__ import annotations

import errno

from hypervisor import strace
from hypervisor.dispatch import CONTINUE

STRINGS = {0x1000: b"/home/u/mnt/f", 0x2000: b'a "quoted"\nname', 0x3000: b"x" * 300}


def _read(address: int) -> bytes:
    if address not in STRINGS:
        raise OSError(errno.EFAULT, "bad address")
    return STRINGS[address]


def _args(name: str, *args: int, paths: tuple[int, ...] = ()) -> str:
    return strace.describe_arguments(name, list(args) + [0] * (6 - len(args)), paths, _read)


def test_openat_like_strace() -> None:
    flags = 0o2000000 | 0o100 | 0o1  # O_CLOEXEC|O_CREAT|O_WRONLY
    assert _args("openat", 2**64 - 100, 0x1000, flags, 0o644, paths=(1,)) == (
        'AT_FDCWD, "/home/u/mnt/f", O_WRONLY|O_CREAT|O_CLOEXEC, 0o644'
    )
    # without O_CREAT the mode is left out, as strace does
    assert _args("openat", 2**32 - 100, 0x1000, 0, 0, paths=(1,)) == (
        'AT_FDCWD, "/home/u/mnt/f", O_RDONLY'
    )


def test_strings_are_quoted_cut_and_unreadable_ones_hex() -> None:
    assert _args("getxattr", 0x1000, 0x2000, 0, 0, paths=(0,)) == (
        '"/home/u/mnt/f", "a \\"quoted\\"\\nname", NULL, 0'
    )
    assert _args("umount2", 0x3000, 2, paths=(0,)) == '"' + "x" * 256 + '"..., 2'
    assert _args("umount2", 0x9999, 0, paths=(0,)) == "0x9999, 0"


def test_at_flags_signed_fds_and_unknown_syscalls() -> None:
    assert _args("newfstatat", 512, 0x1000, 0x7FF0, 0x1100, paths=(1,)) == (
        '512, "/home/u/mnt/f", 0x7ff0, AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH'
    )
    assert _args("lseek", 512, 2**64 - 1, 1) == "512, -1, 1"
    assert strace.describe_arguments("no_such_call", [1, 0x1000], {1}, _read) == (
        '0x1, "/home/u/mnt/f"'
    )


def test_results() -> None:
    assert strace.describe_result(OSError(errno.ENOENT, "x")) == (
        "-1 ENOENT (No such file or directory)"
    )
    assert strace.describe_result(41) == "41"
    assert strace.describe_result(CONTINUE) == "CONTINUE"
