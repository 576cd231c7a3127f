"""strace-style lines for ``--debug``: one per syscall that reaches Python.

``[PID] openat(AT_FDCWD, "/home/u/mnt/f", O_RDONLY|O_CLOEXEC) = ANSWERED``.  Argument names,
types and counts come from python-ptrace's prototype table, and so do its formatters for the
flags it knows (open flags and modes, access modes, mmap protections, lseek/fcntl constants);
path arguments are read from the tracee and quoted as strace does.  Results: a value, an error
as ``-1 ENOENT (No such file or directory)``, ``CONTINUE`` (the kernel runs it) or
``ANSWERED`` (answered by the handler itself, e.g. with an injected fd).  Only built when
debug logging is on.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ptrace.syscall.linux_constants import SYSCALL_ARG_DICT
from ptrace.syscall.prototypes import SYSCALL_PROTOTYPES
from ptrace.syscall.syscall_argument import ARGUMENT_CALLBACK

AT_FDCWD = -100
O_CREAT, O_TMPFILE = 0o100, 0o20000000
AT_FLAGS = ((0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
            (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"))  # fmt: skip
"""AT_* flags of the *at calls (AT_REMOVEDIR is also faccessat's AT_EACCESS)."""
_AT_FLAG_CALLS = frozenset({"newfstatat", "statx", "unlinkat", "linkat", "fchownat",
                            "utimensat", "faccessat2", "fchmodat2", "execveat",
                            "name_to_handle_at", "open_tree"})  # fmt: skip
STRING_NAMES = frozenset({"filename", "pathname", "path", "oldname", "newname", "name",
                          "dev_name", "dir_name", "type", "specialfile", "target", "linkpath"})
"""Pointer arguments that hold a C string, by their name in the prototype table."""
EXTRA_PROTOTYPES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "umount2": ("long", (("const char *", "target"), ("int", "flags"))),
    "faccessat2": ("long", (("int", "dirfd"), ("const char *", "pathname"), ("int", "mode"),
                            ("int", "flags"))),
    "fchmodat2": ("long", (("int", "dirfd"), ("const char *", "pathname"), ("umode_t", "mode"),
                           ("int", "flags"))),
    "openat2": ("long", (("int", "dirfd"), ("const char *", "pathname"), ("void *", "how"),
                         ("size_t", "size"))),
    "close_range": ("long", (("unsigned int", "fd"), ("unsigned int", "max_fd"),
                             ("unsigned int", "flags"))),
}  # fmt: skip
"""Syscalls newer than python-ptrace's table."""
MAX_STRING = 256
"""Longer path strings are cut, as strace -s cuts (with "...")."""
_DIRFD_NAMES = frozenset({"dirfd", "dfd", "olddfd", "newdfd", "fromfd", "tofd"})
_SIGNED = frozenset({"int", "pid_t", "off_t", "loff_t", "long", "ssize_t", "key_t"})
_UNSIGNED = frozenset({"unsigned int", "size_t", "unsigned long", "umode_t", "uid_t",
                       "gid_t", "qid_t", "u32", "u64", "__u32", "__u64", "socklen_t",
                       "clockid_t"})  # fmt: skip


class _Argument:
    """What python-ptrace's formatters read: ``.value``."""

    def __init__(self, value: int) -> None:
        self.value = value


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _signed64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


def quote(data: bytes) -> str:
    """A C string literal as strace prints one."""
    cut = len(data) > MAX_STRING
    text = []
    for byte in data[:MAX_STRING]:
        char = chr(byte)
        if char in '"\\':
            text.append("\\" + char)
        elif char == "\n":
            text.append("\\n")
        elif char == "\t":
            text.append("\\t")
        elif 32 <= byte < 127:
            text.append(char)
        else:
            text.append(f"\\{byte:o}")
    return '"' + "".join(text) + '"' + ("..." if cut else "")


def _at_flags(value: int) -> str:
    names = [text for bit, text in AT_FLAGS if value & bit]
    rest = value & ~sum(bit for bit, _ in AT_FLAGS)
    if rest or not names:
        names.append(hex(rest) if names else str(value))
    return "|".join(names)


def _one(name: str, index: int, argtype: str, argname: str, value: int,
         paths: Collection[int], read_string: Callable[[int], bytes]) -> str:  # fmt: skip
    if index in paths or ("char *" in argtype and argname in STRING_NAMES):
        if value == 0:
            return "NULL"
        try:
            return quote(read_string(value))
        except OSError:
            return hex(value)
    callback = ARGUMENT_CALLBACK.get(name, {}).get(argname)
    if callback is not None:
        try:
            text = str(callback(_Argument(value & 0xFFFFFFFF)))
        except Exception:  # a formatter that doesn't know the value: show it raw
            return hex(value)
        return text.split(" (0o")[0] or "0"  # strace shows no octal twin
    names = SYSCALL_ARG_DICT.get(name, {}).get(argname)
    if names and value in names:
        return str(names[value])
    if argname in ("flag", "flags") and name in _AT_FLAG_CALLS:
        return _at_flags(value & 0xFFFFFFFF)
    if argname in _DIRFD_NAMES:
        fd = _signed32(value)
        return "AT_FDCWD" if fd == AT_FDCWD else str(fd)
    if "*" in argtype:
        return "NULL" if value == 0 else hex(value)
    if argtype in ("int", "pid_t"):
        return str(_signed32(value))
    if argtype in _SIGNED:
        return str(_signed64(value))
    if argtype in _UNSIGNED:
        return str(value)
    return hex(value)


def describe_arguments(name: str, args: Sequence[int], paths: Collection[int],
                       read_string: Callable[[int], bytes]) -> str:  # fmt: skip
    """``arg, ...`` of syscall `name`: as many as it takes, each formatted by its type.
    `paths` are the indices of path arguments, read with `read_string(address)`."""
    prototype = EXTRA_PROTOTYPES.get(name) or SYSCALL_PROTOTYPES.get(name)
    if prototype is None:  # not in python-ptrace's table: paths quoted, the rest in hex
        shown = [_one(name, i, "", "", v, paths, read_string) for i, v in enumerate(args)]
    else:
        shown = [
            _one(name, index, argtype, argname, args[index], paths, read_string)
            for index, (argtype, argname) in enumerate(prototype[1])
            if index < len(args)
        ]
        if name in ("open", "openat") and not args[len(shown) - 2] & (O_CREAT | O_TMPFILE):
            shown.pop()  # the mode means nothing without O_CREAT: strace leaves it out
    return ", ".join(shown)


def describe_result(reply: Any) -> str:
    """The part after ``=``."""
    if isinstance(reply, OSError):
        number = reply.errno or errno.EIO
        return f"-1 {errno.errorcode.get(number, number)} ({os.strerror(number)})"
    return str(reply)
