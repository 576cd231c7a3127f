"""Unit tests that need no tracing: mounts, ABI layouts, vfd bookkeeping, dispatch, handlers
driven through a same-process fake tracer, the CLI parser."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from memprovider import MemProvider, sample_tree

from hypervisor import abi, permission, syscalls
from hypervisor.dispatch import CONTINUE, Call, Dispatcher
from hypervisor.mounts import MountTable
from hypervisor.process import Credentials, credentials
from hypervisor.provider import Attributes, DirEntry
from hypervisor.session import CHAIN_YIELD_EVERY, Session, exit_code
from hypervisor.vfd import VirtualFdTable, lowest_free_fd, socket_inode

# --- mounts ----------------------------------------------------------------------------------


def test_mount_table_longest_prefix_and_devices() -> None:
    table = MountTable()
    seen: list[list[bytes]] = []
    table.on_change(seen.append)
    outer = table.add(b"/a/b", MemProvider())
    inner = table.add(b"/a/b/c/", MemProvider())
    assert table.resolve(b"/a/b/c/d") == (inner, (b"d",))
    assert table.resolve(b"/a/b/cd") == (outer, (b"cd",))
    assert table.resolve(b"/a/bc") is None
    assert table.at(b"/a/b/c") is inner and table.at(b"/a") is None
    assert outer.dev != inner.dev and os.major(outer.dev) == 0
    assert outer.mount_id != inner.mount_id
    assert seen[-1] == [b"/a/b", b"/a/b/c"]
    table.remove(outer)
    assert seen[-1] == [b"/a/b/c"] and table.resolve(b"/a/b/x") is None
    with pytest.raises(ValueError):
        table.add(b"relative", MemProvider())


# --- ABI layouts, pinned against the host kernel ---------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def test_struct_stat_matches_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    buffer = ctypes.create_string_buffer(abi.STAT_SIZE)
    assert _libc.syscall(syscalls.nr("stat"), bytes(path), buffer) == 0
    result = os.stat(path)
    packed = abi.pack_stat(abi.attributes_from_stat(result), result.st_dev)
    assert packed == buffer.raw
    assert abi.unpack_stat(packed)["size"] == 5000


def test_struct_statx_matches_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"y" * 10)
    buffer = ctypes.create_string_buffer(abi.STATX_SIZE)
    assert _libc.syscall(syscalls.nr("statx"), -100, bytes(path), 0, 0xFFF, buffer) == 0
    kernel = abi.unpack_statx(buffer.raw)
    result = os.stat(path)
    ours = abi.unpack_statx(abi.pack_statx(abi.attributes_from_stat(result), result.st_dev,
                                           kernel["mnt_id"], False))
    for field in ("blksize", "nlink", "uid", "gid", "mode", "ino", "size", "blocks", "mtime",
                  "mtime_nsec", "ctime", "ctime_nsec", "atime", "atime_nsec", "dev_major",
                  "dev_minor", "mnt_id"):
        assert ours[field] == kernel[field], field


def test_dirent_layouts() -> None:
    assert abi.dirent64_size(b"a") == 24 and abi.dirent64_size(b"abcd") == 24
    assert abi.dirent64_size(b"abcde") == 32
    record = abi.pack_dirent64(DirEntry(b"name", 7, 8, 3))
    assert len(record) == 24 and record[19:23] == b"name" and record[18] == 8
    old = abi.pack_dirent(DirEntry(b"n", 7, 4, 3))
    assert len(old) == 24 and old[-1] == 4 and old[18:19] == b"n"
    assert abi.signed32(0xFFFFFF9C) == abi.AT_FDCWD and abi.signed64(2**64 - 1) == -1


def test_statfs_layout() -> None:
    from hypervisor.provider import StatFs

    packed = abi.pack_statfs(StatFs(blocks=10, namelen=255))
    assert len(packed) == abi.STATFS_SIZE == 120
    assert int.from_bytes(packed[:8], "little") == 0x65735546


# --- permissions -----------------------------------------------------------------------------
def test_permission_checks() -> None:
    user = Credentials(1000, 1000, 1000, 1000, 1000, 1000, (5,))
    root = Credentials(0, 0, 0, 0, 0, 0)
    mine = Attributes(ino=2, mode=stat_module.S_IFREG | 0o640, uid=1000, gid=5)
    other = Attributes(ino=3, mode=stat_module.S_IFREG | 0o604, uid=1, gid=5)
    permission.check(mine, user, permission.MAY_READ | permission.MAY_WRITE)
    with pytest.raises(OSError) as info:
        permission.check(mine, user, permission.MAY_EXEC)
    assert info.value.errno == errno.EACCES
    with pytest.raises(OSError):
        permission.check(other, user, permission.MAY_READ)  # group bits win, and say no
    permission.check(other, root, permission.MAY_READ | permission.MAY_WRITE)
    with pytest.raises(OSError):
        permission.check(other, root, permission.MAY_EXEC)


def test_credentials_of_self() -> None:
    mine = credentials(os.getpid())
    assert (mine.uid, mine.euid, mine.fsuid) == (os.getuid(), os.geteuid(), os.geteuid())
    assert mine.umask == os.umask(mine.umask)


def test_exit_codes() -> None:
    assert exit_code(7 << 8) == 7
    assert exit_code(15) == 143
    assert exit_code(9 | 0x80) == 137


# --- vfd ---------------------------------------------------------------------------------------
def test_socket_inode_and_lowest_free_fd() -> None:
    assert socket_inode("socket:[1234]") == 1234
    assert socket_inode(b"/etc/passwd") is None and socket_inode("pipe:[5]") is None
    holder = os.open("/dev/null", os.O_RDONLY)
    try:
        first = lowest_free_fd(os.getpid())
        assert first >= syscalls.FD_BASE
        os.dup2(holder, first)
        assert lowest_free_fd(os.getpid()) == first + 1
        assert lowest_free_fd(os.getpid(), 3) < syscalls.FD_BASE
        os.close(first)
    finally:
        os.close(holder)


async def test_release_on_last_close(tmp_path: Path) -> None:
    added: list[int] = []
    removed: list[int] = []
    table = VirtualFdTable(added.append, removed.append)
    provider = MemProvider()
    sample_tree(provider)
    mounts = MountTable()
    mount = mounts.add(os.fsencode(tmp_path), provider)
    from hypervisor.paths import PathResolver

    location = (await PathResolver(mounts).resolve(
        os.fsencode(tmp_path / "hello.txt"))).location
    assert location.is_virtual and location.mount is mount
    async with trio.open_nursery() as nursery:
        table.attach(nursery)
        handle = await provider.open(location.ino, 0)  # type: ignore[union-attr]
        description, theirs = table.create(location, 0, handle)  # type: ignore[arg-type]
        copy = theirs.dup()
        assert added == [description.inode] and table.get(description.inode) is description
        theirs.close()
        await trio.sleep(0.05)
        assert not description.released  # a copy is still open somewhere
        copy.close()
        with trio.fail_after(2):
            while not description.released:
                await trio.sleep(0.01)
    assert removed == added and provider.released == [location.ino]  # type: ignore[union-attr]
    assert len(table) == 0


# --- dispatch --------------------------------------------------------------------------------
@dataclass
class FakeNotification:
    """A notification as `_tracer` gives it; the "tracee" is this very process."""

    nr: int
    args: tuple[int, int, int, int, int, int]
    id: int = 1
    pid: int = os.getpid()
    reason: int = 0
    fd: int = -1
    inode: int = 0


class SelfTracer:
    """The Tracer API over this process: memory through /proc/self/mem, ADDFD as dup2."""

    def __init__(self, spec: object, fd_base: int, max_nr: int) -> None:
        self.answers: list[tuple[int, int, int, bool]] = []
        self.prefixes: list[bytes] = []
        self.inodes: set[int] = set()

    def respond(self, id: int, value: int = 0, error: int = 0, continue_: bool = False) -> None:
        self.answers.append((id, value, error, continue_))

    def addfd(self, id: int, srcfd: int, newfd: int = -1, cloexec: bool = False,
              send: bool = False) -> int:
        number = os.dup2(srcfd, newfd, inheritable=not cloexec) if newfd >= 0 else os.dup(srcfd)
        if send:
            self.answers.append((id, number, 0, False))
        return number

    def read_mem(self, pid: int, addr: int, size: int) -> bytes:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            try:
                memory.seek(addr)
                return memory.read(size)
            except (OSError, OverflowError, ValueError):
                raise OSError(errno.EFAULT, "bad address") from None

    def read_string(self, pid: int, addr: int, limit: int = 4097) -> bytes:
        data = self.read_mem(pid, addr, limit) if addr else b""
        if not addr:
            raise OSError(errno.EFAULT, "bad address")
        if b"\0" not in data:
            raise OSError(errno.ENAMETOOLONG, "too long")
        return data.split(b"\0", 1)[0]

    def write_mem(self, pid: int, addr: int, data: bytes) -> None:
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as memory:
            try:
                memory.seek(addr)
                memory.write(data)
            except (OSError, OverflowError, ValueError):
                raise OSError(errno.EFAULT, "bad address") from None

    def set_prefixes(self, prefixes: list[bytes]) -> None:
        self.prefixes = prefixes

    def add_virtual_inode(self, inode: int) -> None:
        self.inodes.add(inode)

    def remove_virtual_inode(self, inode: int) -> None:
        self.inodes.discard(inode)


@pytest.fixture
def self_session(tmp_path: Path) -> tuple[Session, SelfTracer, Path, MemProvider]:
    provider = MemProvider()
    sample_tree(provider)
    mounts = MountTable()
    mnt = tmp_path.resolve() / "mnt"
    mnt.mkdir()
    mounts.add(os.fsencode(mnt), provider)
    session = Session(mounts, tracer_factory=SelfTracer, runtime_dir=str(tmp_path / "rt"))
    return session, session.tracer, mnt, provider


def _buffer(data: bytes | int) -> tuple[ctypes.Array[ctypes.c_char], int]:
    buffer = ctypes.create_string_buffer(data)
    return buffer, ctypes.addressof(buffer)


async def test_a_handler_task_goes_on_with_what_was_queued_meanwhile(
    self_session,  # noqa: ANN001
) -> None:
    session, tracer, mnt, provider = self_session
    path, path_address = _buffer(os.fsencode(mnt / "dir/a"))
    out, out_address = _buffer(abi.STAT_SIZE)

    def stat(number: int) -> FakeNotification:
        return FakeNotification(syscalls.nr("stat"), (path_address, out_address, 0, 0, 0, 0),
                                id=number)  # fmt: skip

    queued = [[stat(2), stat(3)], [], [], []]
    tracer.take = lambda: queued.pop(0) if queued else []
    async with trio.open_nursery() as nursery:
        session._serving = nursery
        await session._handle_in_turn(stat(1))
        # 2, the first one queued, was handled by this very task; 3 got a task of its own.
        assert [answer[0] for answer in tracer.answers][:2] == [1, 2]
    session._serving = None
    assert sorted(answer[0] for answer in tracer.answers) == [1, 2, 3]
    assert all(answer[1:] == (0, 0, False) for answer in tracer.answers)


async def test_a_long_chain_of_calls_lets_the_other_tasks_run(
    self_session,  # noqa: ANN001
) -> None:
    """A tracee whose every call is answered with no checkpoint must not starve the rest."""
    session, tracer, mnt, provider = self_session
    path, path_address = _buffer(os.fsencode(mnt / "dir/a"))
    out, out_address = _buffer(abi.STAT_SIZE)
    calls = 5 * CHAIN_YIELD_EVERY

    def stat(number: int) -> FakeNotification:
        return FakeNotification(syscalls.nr("stat"), (path_address, out_address, 0, 0, 0, 0),
                                id=number)  # fmt: skip

    queued = [[stat(number)] for number in range(2, calls + 1)]
    tracer.take = lambda: queued.pop(0) if queued else []
    seen: list[int] = []

    async def other() -> None:
        seen.append(len(tracer.answers))

    async with trio.open_nursery() as nursery:
        session._serving = nursery
        nursery.start_soon(other)
        await session._handle_in_turn(stat(1))
    session._serving = None
    assert len(tracer.answers) == calls
    assert seen and seen[0] < calls


async def test_stat_through_the_dispatcher(self_session) -> None:  # noqa: ANN001
    session, tracer, mnt, provider = self_session
    assert tracer.prefixes[:2] == [os.fsencode(mnt), session.stand_ins.root]
    path, path_address = _buffer(os.fsencode(mnt / "dir/a"))
    out, out_address = _buffer(abi.STAT_SIZE)
    await session.handle(FakeNotification(syscalls.nr("stat"), (path_address, out_address, 0,
                                                                  0, 0, 0)))
    assert tracer.answers[-1] == (1, 0, 0, False)
    fields = abi.unpack_stat(out.raw)
    assert fields["size"] == 10000 and stat_module.S_ISREG(fields["mode"])
    assert fields["dev"] == session.mounts.at(os.fsencode(mnt)).dev  # type: ignore[union-attr]
    real, real_address = _buffer(b"/etc")
    await session.handle(FakeNotification(syscalls.nr("stat"), (real_address, out_address, 0,
                                                                  0, 0, 0)))
    assert tracer.answers[-1] == (1, 0, 0, True)  # not virtual: CONTINUE
    missing, missing_address = _buffer(os.fsencode(mnt / "nope"))
    await session.handle(FakeNotification(syscalls.nr("lstat"), (missing_address, out_address,
                                                                   0, 0, 0, 0)))
    assert tracer.answers[-1] == (1, 0, errno.ENOENT, False)
    await session.handle(FakeNotification(syscalls.nr("stat"), (path_address, 8, 0, 0, 0, 0)))
    assert tracer.answers[-1] == (1, 0, errno.EFAULT, False)


async def test_open_getdents_lseek_readlink(self_session) -> None:  # noqa: ANN001
    session, tracer, mnt, provider = self_session
    path, path_address = _buffer(os.fsencode(mnt / "dir"))
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    async with trio.open_nursery() as nursery:
        session.vfds.attach(nursery)
        await session.handle(FakeNotification(syscalls.nr("open"), (path_address, flags, 0, 0,
                                                                      0, 0)))
        fd = tracer.answers[-1][1]
        assert fd >= syscalls.FD_BASE
        small, small_address = _buffer(10)
        await session.handle(FakeNotification(syscalls.nr("getdents64"),
                                              (fd, small_address, 10, 0, 0, 0)))
        assert tracer.answers[-1][2] == errno.EINVAL
        big, big_address = _buffer(4096)
        await session.handle(FakeNotification(syscalls.nr("getdents64"),
                                              (fd, big_address, 48, 0, 0, 0)))
        assert tracer.answers[-1][1] == 48  # "." and ".." fit, 24 bytes each
        await session.handle(FakeNotification(syscalls.nr("lseek"), (fd, 0, 1, 0, 0, 0)))
        assert tracer.answers[-1][1] == 2  # the cookie after ".."
        await session.handle(FakeNotification(syscalls.nr("getdents64"),
                                              (fd, big_address, 4096, 0, 0, 0)))
        names = []
        raw, offset = big.raw[: tracer.answers[-1][1]], 0
        while offset < len(raw):
            length = int.from_bytes(raw[offset + 16: offset + 18], "little")
            names.append(raw[offset + 19: offset + length].rstrip(b"\0"))
            offset += length
        assert names == [b"a", b"empty", b"sub"]
        link, link_address = _buffer(os.fsencode(mnt / "link"))
        target, target_address = _buffer(64)
        await session.handle(FakeNotification(syscalls.nr("readlink"),
                                              (link_address, target_address, 4, 0, 0, 0)))
        assert tracer.answers[-1][1] == 4 and target.raw[:4] == b"hell"
        await session.handle(FakeNotification(syscalls.nr("readlink"),
                                              (path_address, target_address, 64, 0, 0, 0)))
        assert tracer.answers[-1][2] == errno.EINVAL  # not a symlink
        os.close(fd)
        with trio.fail_after(2):
            while len(session.vfds):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert provider.released


async def test_getdents_asks_the_provider_once_with_the_callers_size(
    self_session, monkeypatch  # noqa: ANN001
) -> None:
    """As the kernel's readdir: one request per getdents, sized by its count (so what the
    caller does with the entries, e.g. stat them, comes before the next request)."""
    from memprovider import MemFile

    session, tracer, mnt, provider = self_session
    asked: list[tuple[int, int]] = []
    original = MemFile.readdir

    async def counting(self, offset, *, caller=None, size=0):  # noqa: ANN001, ANN202
        asked.append((offset, size))
        return await original(self, offset, caller=caller, size=size)

    monkeypatch.setattr(MemFile, "readdir", counting)
    path, path_address = _buffer(os.fsencode(mnt / "dir"))
    async with trio.open_nursery() as nursery:
        session.vfds.attach(nursery)
        await session.handle(FakeNotification(syscalls.nr("open"), (
            path_address, os.O_RDONLY | os.O_DIRECTORY, 0, 0, 0, 0)))
        fd = tracer.answers[-1][1]
        big, big_address = _buffer(32768)
        await session.handle(FakeNotification(syscalls.nr("getdents64"),
                                              (fd, big_address, 32768, 0, 0, 0)))
        assert tracer.answers[-1][1] > 0 and asked == [(0, 32768)]
        await session.handle(FakeNotification(syscalls.nr("getdents64"),
                                              (fd, big_address, 32768, 0, 0, 0)))
        assert tracer.answers[-1][1] == 0 and len(asked) == 2  # the end: a second request
        os.close(fd)
        nursery.cancel_scope.cancel()


async def test_open_creat_walks_the_path_once(self_session, monkeypatch) -> None:  # noqa: ANN001
    """open(O_CREAT) of a missing name creates in the directory its walk reached: every name
    of the path is looked up once, the missing one included, then CREATE."""
    session, tracer, mnt, provider = self_session
    looked_up: list[bytes] = []
    original = MemProvider.lookup

    async def counting(self, parent, name, *, caller=None):  # noqa: ANN001, ANN202
        looked_up.append(name)
        return await original(self, parent, name, caller=caller)

    monkeypatch.setattr(MemProvider, "lookup", counting)
    path, path_address = _buffer(os.fsencode(mnt / "dir/sub/new"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    async with trio.open_nursery() as nursery:
        session.vfds.attach(nursery)
        await session.handle(FakeNotification(syscalls.nr("open"), (path_address, flags, 0o644,
                                                                      0, 0, 0)))
        fd = tracer.answers[-1][1]
        assert fd >= syscalls.FD_BASE
        assert looked_up == [b"dir", b"sub", b"new"]
        os.close(fd)
        nursery.cancel_scope.cancel()


async def test_lseek_uses_the_providers_own(self_session, monkeypatch) -> None:  # noqa: ANN001
    """A provider with its own lseek (FUSE: LSEEK for SEEK_DATA/SEEK_HOLE) answers it."""
    from memprovider import MemFile

    session, tracer, mnt, provider = self_session
    asked: list[tuple[int, int, int]] = []

    async def own(self, offset, whence, position, *, caller=None):  # noqa: ANN001, ANN202
        asked.append((offset, whence, position))
        return 4242

    monkeypatch.setattr(MemFile, "lseek", own, raising=False)
    path, path_address = _buffer(os.fsencode(mnt / "dir/a"))
    async with trio.open_nursery() as nursery:
        session.vfds.attach(nursery)
        await session.handle(FakeNotification(syscalls.nr("open"), (path_address, os.O_RDONLY,
                                                                      0, 0, 0, 0)))
        fd = tracer.answers[-1][1]
        await session.handle(FakeNotification(syscalls.nr("lseek"), (fd, 7, 1, 0, 0, 0)))
        await session.handle(FakeNotification(syscalls.nr("lseek"), (fd, 3, 3, 0, 0, 0)))
        assert [answer[1] for answer in tracer.answers[-2:]] == [4242, 4242]
        assert asked == [(7, 1, 0), (3, 3, 4242)]  # SEEK_CUR from 0, then SEEK_DATA
        os.close(fd)
        nursery.cancel_scope.cancel()


async def test_handler_bugs_never_kill_the_session(self_session) -> None:  # noqa: ANN001
    session, tracer, mnt, provider = self_session
    dispatcher = Dispatcher()

    async def buggy(call: Call) -> int:
        raise ValueError("bug")

    async def buggy_virtual(call: Call) -> int:
        call.touched_virtual = True
        raise KeyError("bug")

    dispatcher.register("getpid", buggy)
    dispatcher.register("gettid", buggy_virtual)
    session.dispatcher = dispatcher
    await session.handle(FakeNotification(syscalls.nr("getpid"), (0,) * 6))
    await session.handle(FakeNotification(syscalls.nr("gettid"), (0,) * 6))
    await session.handle(FakeNotification(syscalls.nr("getppid"), (0,) * 6))
    assert tracer.answers == [(1, 0, 0, True), (1, 0, errno.EIO, False), (1, 0, 0, True)]
    assert await dispatcher.handle(Call(FakeNotification(39, (0,) * 6), session)) is CONTINUE


async def test_getcwd_through_a_stand_in(self_session, tmp_path: Path) -> None:  # noqa: ANN001
    session, tracer, mnt, provider = self_session
    location = (await session.resolver.resolve(os.fsencode(mnt / "dir/sub"))).location
    stand_in = session.stand_ins.stand_in_for(location)  # type: ignore[arg-type]
    assert session.stand_ins.location_of(stand_in) == location
    previous = os.getcwd()
    os.chdir(stand_in)
    try:
        out, out_address = _buffer(256)
        await session.handle(FakeNotification(syscalls.nr("getcwd"), (out_address, 256, 0, 0,
                                                                        0, 0)))
        expected = os.fsencode(mnt / "dir/sub") + b"\0"
        assert tracer.answers[-1] == (1, len(expected), 0, False)
        assert out.raw[: len(expected)] == expected
        await session.handle(FakeNotification(syscalls.nr("getcwd"), (out_address, 5, 0, 0,
                                                                        0, 0)))
        assert tracer.answers[-1][2] == errno.ERANGE
        rel, rel_address = _buffer(b"../../hello.txt")
        stat_out, stat_address = _buffer(abi.STAT_SIZE)
        await session.handle(FakeNotification(syscalls.nr("stat"), (rel_address, stat_address,
                                                                      0, 0, 0, 0)))
        assert tracer.answers[-1] == (1, 0, 0, False)
        assert abi.unpack_stat(stat_out.raw)["size"] == len(b"hello, world\n")
    finally:
        os.chdir(previous)


# --- cli -------------------------------------------------------------------------------------
def test_cli_usage(capsys: pytest.CaptureFixture[str]) -> None:
    from vufuse.cli import main

    for argv in ([], ["run"], ["run", "--"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("vufuse: ") and err.count("\n") == 1


def test_socketpair_is_seqpacket() -> None:
    table = VirtualFdTable(lambda inode: None, lambda inode: None)
    assert table.get(1) is None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    assert ours.type == socket.SOCK_SEQPACKET
    ours.close()
    theirs.close()


def test_lowest_free_fd_hint() -> None:
    """The per-process hint gives the same numbers as a full listing, and heals when stale."""
    from hypervisor.vfd import FD_BASE, _free_from, fd_closed, lowest_free_fd

    pid, table = os.getpid(), -12345
    _free_from.pop(table, None)
    opened = []
    try:
        for _ in range(5):
            number = lowest_free_fd(pid, table=table)
            assert number == lowest_free_fd(pid)  # the listing agrees
            os.dup2(0, number)
            opened.append(number)
        assert opened == sorted(opened) and opened[0] >= FD_BASE
        os.close(opened[1])
        fd_closed(table, opened[1])
        assert lowest_free_fd(pid, table=table) == opened[1]
        os.dup2(0, opened[1])
        os.close(opened[-1])  # closed behind the hint's back: the hint is stale
        os.close(opened[2])
        assert lowest_free_fd(pid, table=table) == opened[2]
    finally:
        for number in opened:
            try:
                os.close(number)
            except OSError:
                pass
        _free_from.pop(table, None)


async def test_description_lock_takes_a_free_lock_without_yielding() -> None:
    from hypervisor.vfd import DescriptionLock

    lock, order = DescriptionLock(), []

    async def other() -> None:
        order.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        async with lock:  # free: taken at once, the other task has not run yet
            order.append("locked")
        assert order == ["locked"]
        await lock.acquire()

        async def waiter() -> None:
            async with lock:
                order.append("waiter")

        nursery.start_soon(waiter)
        await trio.sleep(0.01)
        assert "waiter" not in order and lock.locked()
        lock.release()
    assert order[-1] == "waiter"
