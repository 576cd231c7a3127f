"""execve/execveat: exec of files on a mount, and FLUSH of O_CLOEXEC virtual fds at exec.

The kernel can't exec what only a provider knows, and user notification can't change exec's
arguments, so an exec that resolves through a mount is done by the ptrace injection of D2
(`cwd.run_syscall_in`): the hypervisor follows `#!` lines itself as binfmt_script does (up to
5 levels: the interpreter gets the path as the caller gave it), and then
- an ELF file on a mount is copied into a memfd, added to the caller with ADDFD (O_CLOEXEC)
  and run with execveat(memfd, "", argv, envp, AT_EMPTY_PATH) (/proc/self/exe then names the
  memfd);
- a real file reached through a mount (a venv's bin/python, a symlink out of the mount) is
  run by its canonical path;
with argv rewritten below the stack for scripts.  The injected exec traps again and runs
natively; its handler flushes the O_CLOEXEC virtual fds (decisions D8, D19).
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_module
import struct
from dataclasses import dataclass, field
from typing import Any

import trio

from .. import permission
from ..abi import AT_EMPTY_PATH, AT_FDCWD, O_RDONLY
from ..cwd import run_syscall_in
from ..dispatch import ANSWERED, CONTINUE, Call, Dispatcher, Reply
from ..mounts import MS_NOEXEC
from ..paths import ROOT, Location, RealLocation, VirtualLocation, WalkError
from ..syscalls import FD_BASE, nr
from ..vfd import lowest_free_fd
from .common import LetKernel, cwd_location, error, resolve
from .fdtable import flush_cloexec_at_exec

log = logging.getLogger("vufuse.hypervisor")

BINPRM_BUF_SIZE = 256
MAX_INTERPRETER_DEPTH = 5
MAX_ARGS = 1 << 16
_POINTER = struct.Struct("<Q")


# --- exec of real files: FLUSH of O_CLOEXEC virtual fds ---------------------------------------
def _real_target(call: Call) -> str | None:
    """The file a real exec names, as vufuse can reach it (None: can't tell)."""
    try:
        if call.name == "execveat":
            dirfd, path, flags = call.int_arg(0), call.read_path(1), call.int_arg(4)
            if not path and flags & AT_EMPTY_PATH:
                return f"/proc/{call.tid}/fd/{dirfd}"
            if not path.startswith(b"/"):
                where = "cwd" if dirfd == AT_FDCWD else f"fd/{dirfd}"
                return f"/proc/{call.tid}/{where}/" + os.fsdecode(path)
        else:
            path = call.read_path(0)
            if not path.startswith(b"/"):
                return f"/proc/{call.tid}/cwd/" + os.fsdecode(path)
        return os.fsdecode(path)
    except OSError:
        return None


def _will_run(target: str | None) -> bool:
    """A regular file with an execute bit that we (the same user) may execute."""
    if target is None:
        return False
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return stat_module.S_ISREG(mode) and os.access(target, os.X_OK)


# --- exec through a mount -------------------------------------------------------------------
@dataclass
class _Plan:
    """What the injected exec runs."""

    real_path: bytes | None = None  # a real file, by its canonical path
    image: VirtualLocation | None = None  # an ELF on a mount
    head: list[bytes] = field(default_factory=list)  # replaces argv[0] (scripts), if any


def _check_executable(call: Call, location: VirtualLocation) -> None:
    attrs = location.attrs
    if location.mount.mount_flags & MS_NOEXEC:
        raise error(errno.EACCES)
    if not stat_module.S_ISREG(attrs.mode):
        raise error(errno.EACCES)
    if location.mount.options.get("default_permissions") is not None:
        permission.check(attrs, call.credentials, permission.MAY_EXEC)
    elif not attrs.mode & 0o111:
        raise error(errno.EACCES)


async def _read_file(call: Call, location: VirtualLocation, limit: int | None) -> bytes:
    provider = location.mount.provider
    handle = await provider.open(location.ino, O_RDONLY, caller=call.caller)
    data = bytearray()
    try:
        while limit is None or len(data) < limit:
            want = (1 << 20) if limit is None else limit - len(data)
            chunk = await handle.read(len(data), want, caller=call.caller)
            if not chunk:
                break
            data += chunk
    finally:
        await handle.flush(call.tgid, caller=call.caller)
        await handle.release()
    return bytes(data)


def _shebang(header: bytes) -> tuple[bytes, bytes | None]:
    """binfmt_script: the interpreter and its one optional argument."""
    line = header[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise error(errno.ENOEXEC)
    interpreter, _, argument = line.replace(b"\t", b" ").partition(b" ")
    argument = argument.strip(b" \t")
    return interpreter, argument or None


async def _locate(call: Call, path: bytes) -> Location:
    base = ROOT if path.startswith(b"/") else await cwd_location(call)
    try:
        found = await call.session.resolver.resolve(
            path, base, follow=True, self_ids=(call.tgid, call.tid), requester=call.caller
        )
    except WalkError as failure:
        raise error(failure.errno or errno.ENOENT) from None
    return found.location


async def _plan(call: Call, location: Location, filename: bytes) -> _Plan:
    plan = _Plan()
    current, name = location, filename
    for _ in range(MAX_INTERPRETER_DEPTH):
        if isinstance(current, RealLocation):
            plan.real_path = current.path
            return plan
        assert isinstance(current, VirtualLocation)
        _check_executable(call, current)
        header = await _read_file(call, current, BINPRM_BUF_SIZE)
        if header.startswith(b"\x7fELF"):
            plan.image = current
            return plan
        if not header.startswith(b"#!"):
            raise error(errno.ENOEXEC)
        interpreter, argument = _shebang(header)
        head = [interpreter] + ([argument] if argument is not None else []) + [name]
        plan.head = head + plan.head[1:] if plan.head else head
        current, name = await _locate(call, interpreter), interpreter
    raise error(errno.ELOOP)


def _argv_tail(call: Call, argv: int) -> list[int]:
    """Pointers argv[1:] of the caller's array (EFAULT on a bad one)."""
    if not argv:
        return []
    pointers = []
    index = 0
    while index < MAX_ARGS:
        (pointer,) = _POINTER.unpack(call.read_memory(argv + 8 * index, 8))
        if not pointer:
            break
        if index:
            pointers.append(pointer)
        index += 1
    else:
        raise error(errno.E2BIG)
    return pointers


def _argv_blob(head: list[bytes], tail: list[int]) -> tuple[int, int, Any]:
    """Size, offset of the pointer array and builder of [strings of head][pointer array]
    for the injected exec."""
    strings = b"".join(item + b"\0" for item in head)
    offset = (len(strings) + 7) & ~7
    size = offset + 8 * (len(head) + len(tail) + 1)

    def build(base: int) -> bytes:
        pointers, position = [], 0
        for item in head:
            pointers.append(base + position)
            position += len(item) + 1
        pointers += tail
        pointers.append(0)
        return strings.ljust(offset, b"\0") + b"".join(_POINTER.pack(p) for p in pointers)

    return size, offset, build


async def _exec_through_mount(call: Call, location: Location, filename: bytes) -> Reply:
    plan = await _plan(call, location, filename)
    argv, envp = (call.arg(2), call.arg(3)) if call.name == "execveat" else (call.arg(1),
                                                                             call.arg(2))
    size, array, build = 0, 0, None
    if plan.head:
        size, array, build = _argv_blob(plan.head, _argv_tail(call, argv))
    path_blob = b"" if plan.image is not None else (plan.real_path or b"") + b"\0"
    total = size + len(path_blob) + 8
    session, tracer = call.session, call.session.tracer
    memfd_number = -1
    if plan.image is not None:
        data = await _read_file(call, plan.image, None)
        number = len(session.exec_images)
        memfd = os.memfd_create(f"vufuse-exec:{number}", os.MFD_CLOEXEC)
        session.exec_images[b"/memfd:vufuse-exec:%d (deleted)" % number] = plan.image.path
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(memfd, view):]
            memfd_number = tracer.addfd(call.notification.id, memfd,
                                        newfd=lowest_free_fd(call.tid, FD_BASE), cloexec=True)
        finally:
            os.close(memfd)

    def blob_at(base: int) -> bytes:
        arguments = build(base) if build is not None else b""
        return arguments + path_blob + b"\0" * (total - size - len(path_blob))

    def setup(registers: Any, base: int) -> None:
        new_argv = base + array if build is not None else argv
        if plan.image is not None:
            registers.orig_rax = registers.rax = nr("execveat")
            registers.rdi = memfd_number
            registers.rsi = base + size + len(path_blob)  # an empty string
            registers.rdx, registers.r10, registers.r8 = new_argv, envp, AT_EMPTY_PATH
        else:
            registers.orig_rax = registers.rax = nr("execve")
            registers.rdi = base + size
            registers.rsi, registers.rdx = new_argv, envp

    answered = False

    def answer() -> None:
        nonlocal answered
        answered = True
        tracer.respond(call.notification.id, value=0)

    try:
        await trio.to_thread.run_sync(
            run_syscall_in, call.tid, nr("execve"), total, blob_at, setup, answer,
            session.tracer.write_mem, True,
        )
    except OSError as failure:
        if answered:
            log.debug("exec injection failed after the answer", exc_info=True)
            return ANSWERED
        log.warning("vufuse: can't exec from a mount in %d: %s", call.tid, failure)
        raise error(failure.errno or errno.EIO) from None
    return ANSWERED


async def handle_execve(call: Call) -> Reply:
    """execve(path, argv, envp), execveat(dirfd, path, argv, envp, flags)."""
    is_at = call.name == "execveat"
    empty = is_at and call.int_arg(4) & AT_EMPTY_PATH
    if empty:
        description = call.session.vfds.lookup_fd(call.tid, call.int_arg(0))  # EBADF
        if description is not None:  # fexecve of a virtual fd
            call.touched_virtual = True
            return await _exec_through_mount(call, description.location,
                                             b"/dev/fd/%d" % call.int_arg(0))
    elif len(call.session.mounts):
        path_arg, dirfd_arg = (1, 0) if is_at else (0, None)
        try:
            result = await resolve(call, path_arg, dirfd_arg)
        except LetKernel:
            pass
        else:
            return await _exec_through_mount(call, result.location, call.read_path(path_arg))
    if _will_run(_real_target(call)):
        await flush_cloexec_at_exec(call)
    return CONTINUE


def register(dispatcher: Dispatcher) -> None:
    """Route execve and execveat."""
    dispatcher.register("execve execveat", handle_execve)
