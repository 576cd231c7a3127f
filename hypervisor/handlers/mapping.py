"""mmap of a virtual file: the fd is swapped for a memfd holding the file, then the kernel
maps that (decisions D19).

User notification can't change mmap's fd argument, but ADDFD with SETFD can replace the
object behind the caller's fd number while the call waits; CONTINUE then maps the memfd.
The fd stays a memfd afterwards (reads on it run natively, as after `< f`):
- read-only or private mappings get a snapshot, shared between processes and calls while the
  file's size and mtime are unchanged (ld.so maps each library several times; git maps the
  same packs in many processes);
- MAP_SHARED with PROT_WRITE gets a stand-in written back to the daemon (lowfd.py), one per
  file, so that every process mapping the file shares its pages (sqlite's -shm); mapped
  writes are found by digest before any other access to the mount and when the last mapping
  and fd are gone (munmap + close).
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict

from ..abi import O_ACCMODE, O_RDONLY, O_RDWR, O_WRONLY
from ..dispatch import CONTINUE, Call, Dispatcher, Reply
from ..paths import VirtualLocation
from ..vfd import OpenFileDescription
from .common import LetKernel, error, kernel_unless_virtual, virtual_fd

MAP_SHARED, MAP_SHARED_VALIDATE, MAP_ANONYMOUS = 0x01, 0x03, 0x20
PROT_WRITE = 0x2
O_CLOEXEC_FDINFO = 0o2000000
SNAPSHOT_CACHE_BYTES = 512 << 20


class SnapshotCache:
    """memfds holding virtual files, by (mount id, node), valid while size and mtime hold."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[int, int], tuple[int, int, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[int, int], size: int, mtime_ns: int) -> int | None:
        """Our memfd for `key` if still current."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[:2] != (size, mtime_ns):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, key: tuple[int, int], size: int, mtime_ns: int, memfd: int) -> None:
        """Keep `memfd` (ours from now on)."""
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (size, mtime_ns, memfd)
        self._bytes += size
        while self._bytes > SNAPSHOT_CACHE_BYTES and len(self._entries) > 1:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[int, int]) -> None:
        size, _mtime, memfd = self._entries.pop(key)
        self._bytes -= size
        os.close(memfd)

    def close(self) -> None:
        """Session end."""
        for key in list(self._entries):
            self._drop(key)


def _cloexec(tid: int, fd: int) -> bool:
    with open(f"/proc/{tid}/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("flags:"):
                return bool(int(line.split()[1], 8) & O_CLOEXEC_FDINFO)
    return False


async def _mapping_size(call: Call, location: VirtualLocation) -> int:
    """The size a mapping of the file gets: the kernel maps by i_size as its own writes left
    it, without a GETATTR (a daemon that lags behind them — pyfuse3's tmpfs example under
    sqlite's one-byte-per-page growth of -shm — must not make the pages past its idea of the
    end SIGBUS)."""
    known = location.mount.provider.known_size(location.ino)
    if known is not None:
        return known
    return (await location.mount.provider.getattr(location.ino, caller=call.caller)).size


async def _snapshot(call: Call, description: OpenFileDescription) -> int:
    """Our memfd with the file's bytes (cached)."""
    from .descriptors import _read_whole

    location = description.location
    attrs = await location.mount.provider.getattr(location.ino, caller=call.caller)
    cache: SnapshotCache = call.session.snapshots
    key = (location.mount.mount_id, location.ino)
    memfd = cache.get(key, attrs.size, attrs.mtime_ns)
    if memfd is not None:
        return memfd
    async with description.lock:
        data = await _read_whole(call, description, attrs.size) if attrs.size else b""
    memfd = os.memfd_create("vufuse-map", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(memfd, view):]
    cache.put(key, attrs.size, attrs.mtime_ns, memfd)
    return memfd


def _swap(call: Call, fd: int, source: int, access: int, offset: int) -> None:
    """Replace the caller's fd `fd` by a new description of memfd `source`."""
    mode = {O_RDONLY: os.O_RDONLY, O_WRONLY: os.O_WRONLY}.get(access, os.O_RDWR)
    theirs = os.open(f"/proc/self/fd/{source}", mode | os.O_CLOEXEC)
    try:
        os.lseek(theirs, offset, os.SEEK_SET)
        call.session.tracer.addfd(call.notification.id, theirs, newfd=fd,
                                  cloexec=_cloexec(call.tid, fd), send=False)
    finally:
        os.close(theirs)


@kernel_unless_virtual
async def handle_mmap(call: Call) -> Reply:
    """mmap(addr, length, prot, flags, fd, offset) of a virtual file."""
    prot, flags = call.int_arg(2), call.int_arg(3)
    if flags & MAP_ANONYMOUS:
        raise LetKernel
    fd = call.int_arg(4)
    description = virtual_fd(call, 4)
    if description.path_only:
        raise error(errno.EBADF)
    if description.location.attrs.is_dir:
        raise error(errno.ENODEV)
    access = description.flags & O_ACCMODE
    if access == O_WRONLY:
        raise error(errno.EACCES)
    shared_write = flags & MAP_SHARED_VALIDATE in (MAP_SHARED, MAP_SHARED_VALIDATE) and bool(
        prot & PROT_WRITE)
    if shared_write and access != O_RDWR:
        raise error(errno.EACCES)
    await call.session.low_fds.settle(description.location.mount)
    if access == O_RDWR:
        await _swap_for_stand_in(call, description, fd)
    else:
        _swap(call, fd, await _snapshot(call, description), access, description.offset)
    return CONTINUE


async def _swap_for_stand_in(call: Call, description: OpenFileDescription, fd: int) -> None:
    """A file open read-write: a written-back stand-in, one per file for every process."""
    low_fds = call.session.low_fds
    location = description.location
    async with low_fds.mapping_lock(location.mount.mount_id, location.ino):
        await _swap_locked(call, description, fd)


async def _swap_locked(call: Call, description: OpenFileDescription, fd: int) -> None:
    from .descriptors import _pidfd_getfd, _read_whole

    low_fds = call.session.low_fds
    shared = low_fds.mapped_stand_in(description.location)
    if shared is None:
        location = description.location
        size = await _mapping_size(call, location)
        async with description.lock:
            contents = await _read_whole(call, description, size) if size else b""
        if len(contents) < size:
            # The page cache past what the daemon returned reads as zeros up to i_size.
            contents += bytes(size - len(contents))
        holder = _pidfd_getfd(call, fd)
        theirs = await low_fds.create(description, holder, contents, size, call.caller,
                                      call.tgid, mapped=True)
        try:
            call.session.tracer.addfd(call.notification.id, theirs, newfd=fd,
                                      cloexec=_cloexec(call.tid, fd), send=False)
        finally:
            os.close(theirs)
        return
    await _grow_to_file(call, description, shared)
    _swap(call, fd, shared, O_RDWR, description.offset)


async def _grow_to_file(call: Call, description: OpenFileDescription, memfd: int) -> None:
    """The file grew through a virtual fd since its stand-in was made (sqlite's other process
    extending -shm by writes at page ends, then mapping the new region): bring the stand-in up
    to i_size, or touching the new pages would SIGBUS where the kernel's page cache has them."""
    size = await _mapping_size(call, description.location)
    current = os.fstat(memfd).st_size
    if size <= current:
        return
    assert description.handle is not None
    tail = bytearray()
    async with description.lock:
        while len(tail) < size - current:
            chunk = await description.handle.read(current + len(tail), size - current - len(tail),
                                                  caller=call.caller)
            if not chunk:
                break
            tail += chunk
    tail += bytes(size - current - len(tail))  # zeros past a short daemon, up to i_size
    if os.fstat(memfd).st_size == current:  # unless a mapper grew it meanwhile (natively)
        os.pwrite(memfd, bytes(tail), current)


def register(dispatcher: Dispatcher) -> None:
    """Route mmap."""
    dispatcher.register("mmap", handle_mmap)
