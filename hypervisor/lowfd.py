"""Virtual regular files at fds below FD_BASE: memfd stand-ins written back (decisions D7).

Reads and writes on fds below FD_BASE run natively (DESIGN §4), so when a virtual fd is
dup2'ed there (shell redirection `> f`, `>> f`, `<> f`, `dd of=`), the low number gets a
memfd holding the file instead, with the description's access mode, O_APPEND and offset.
The hypervisor watches it with inotify: IN_MODIFY marks it dirty, and the last close of the
tracee's description (IN_CLOSE_* once every IN_OPEN is matched) ends it.  Dirty contents are
written back through the virtual description's provider handle:

- with O_APPEND, the bytes past what was already sent, in order (the provider appends);
- otherwise the chunks whose digest changed, then a truncation if the memfd shrank.

Write-back happens in the background (shortly after a write), before any other access to the
same mount (`settle`, called by path resolution, reads and fstat on virtual fds: what a
process does after another wrote is seen as on the kernel), at the last close (then FLUSH,
and our copy of the virtual fd goes, so RELEASE follows) and before the session ends.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from .abi import O_ACCMODE, O_APPEND, O_RDONLY, O_WRONLY
from .mounts import Mount
from .provider import Caller, OpenFile, SetattrChanges
from .vfd import OpenFileDescription

log = logging.getLogger("vufuse.hypervisor")

IN_MODIFY, IN_CLOSE_WRITE, IN_CLOSE_NOWRITE, IN_OPEN = 0x2, 0x8, 0x10, 0x20
IN_IGNORED, IN_Q_OVERFLOW = 0x8000, 0x4000
_EVENT = struct.Struct("iIII")
CHUNK = 1 << 16
"""Granularity of change detection without O_APPEND."""
BACKGROUND_DELAY = 0.05
"""Seconds a background write-back waits after a write, so a stream is sent in pieces."""
READ_CHUNK = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _chunk_digests(size: int, chunk: Callable[[int], bytes]) -> dict[int, bytes]:
    """The digest of each CHUNK of `size` bytes, by index (`chunk(index)` gives its bytes):
    what the daemon is known to hold."""
    return {index: _digest(chunk(index)) for index in range((size + CHUNK - 1) // CHUNK)}


@dataclass(eq=False)
class LowFdStandIn:
    """One memfd standing in for one virtual description at a low fd."""

    description: OpenFileDescription
    handle: OpenFile
    memfd: int  # ours, O_RDWR, watched
    holder: int  # our copy of the tracee's virtual socket: keeps the description open
    watch: int
    caller: Caller
    lock_owner: int
    append: bool
    sent_size: int  # size of the file as last written back
    digests: dict[int, bytes] = field(default_factory=dict)
    mapped: bool = False  # MAP_SHARED writes change it without IN_MODIFY
    identity: tuple[int, int] = (0, 0)  # the memfd's (st_dev, st_ino)
    opens: int = 0
    dirty: bool = False
    closed: bool = False
    lock: trio.Lock = field(default_factory=trio.Lock)
    finished: trio.Event = field(default_factory=trio.Event)  # FLUSHed, our copies closed

    @property
    def mount(self) -> Mount:
        """The mount the file lives on."""
        return self.description.location.mount


class LowFdStandIns:
    """The session's memfd stand-ins and their one inotify instance."""

    def __init__(self) -> None:
        self._inotify = -1
        self._by_watch: dict[int, LowFdStandIn] = {}
        self._finishing: set[LowFdStandIn] = set()  # out of _by_watch, FLUSH still on its way
        #: Called when a stand-in appears (the session forgets its cached stat answers).
        self.on_create: Callable[[], None] = lambda: None
        #: Tell the C core which memfd inodes are stand-ins (decisions D29): added, removed.
        self.on_inode: Callable[[int, bool], None] = lambda _ino, _live: None
        self._by_identity: dict[tuple[int, int], LowFdStandIn] = {}
        self._nursery: trio.Nursery | None = None
        self._map_locks: dict[tuple[int, int], trio.Lock] = {}

    def attach(self, nursery: trio.Nursery) -> None:
        """Run the inotify reader and background write-backs in `nursery`."""
        self._nursery = nursery

    def __len__(self) -> int:
        return len(self._by_watch)

    @property
    def finishing(self) -> bool:
        """A stand-in is being written back and closed (out of the count above)."""
        return bool(self._finishing)

    def _ensure_inotify(self) -> int:
        if self._inotify < 0:
            fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            self._inotify = fd
            if self._nursery is not None:
                self._nursery.start_soon(self._read_events)
        return self._inotify

    # --- creation ----------------------------------------------------------------------------
    async def create(
        self, description: OpenFileDescription, holder: int, contents: bytes | None,
        size: int, caller: Caller, lock_owner: int, mapped: bool = False,
    ) -> int:
        """The fd to inject for `description` (the caller closes it after ADDFD).

        `contents`: the file's bytes (None for a write-only O_APPEND description: only its
        `size` matters then).  `holder` (ours from then on) is a copy of the tracee's virtual
        socket.  The description's offset is the memfd's.
        """
        assert description.handle is not None
        inotify = self._ensure_inotify()
        memfd = os.memfd_create("vufuse-redirect", os.MFD_CLOEXEC)
        try:
            append = bool(description.flags & O_APPEND)
            digests: dict[int, bytes] = {}
            if contents is None:
                os.ftruncate(memfd, size)
            else:
                _write_all(memfd, contents)
                digests = _chunk_digests(
                    len(contents), lambda index: contents[index * CHUNK : (index + 1) * CHUNK]
                )
                size = len(contents)
            watch = _libc.inotify_add_watch(
                inotify, f"/proc/self/fd/{memfd}".encode(),
                IN_MODIFY | IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE,
            )
            if watch < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
        except BaseException:
            os.close(memfd)
            os.close(holder)
            raise
        stand_in = LowFdStandIn(
            description, description.handle, memfd, holder, watch, caller, lock_owner,
            append, size, digests, mapped,
        )
        self._by_watch[watch] = stand_in
        self.on_create()
        info = os.fstat(memfd)
        stand_in.identity = (info.st_dev, info.st_ino)
        self._by_identity[stand_in.identity] = stand_in
        self.on_inode(info.st_ino, True)
        mode = {O_WRONLY: os.O_WRONLY, O_RDONLY: os.O_RDONLY}.get(
            description.flags & O_ACCMODE, os.O_RDWR
        ) | os.O_CLOEXEC | (os.O_APPEND if append else 0)
        try:
            theirs = os.open(f"/proc/self/fd/{memfd}", mode)
            os.lseek(theirs, min(description.offset, size), os.SEEK_SET)
        except BaseException:
            await self._finish(stand_in)
            raise
        return theirs

    def mapping_lock(self, mount_id: int, ino: int) -> trio.Lock:
        """Held while a mapped stand-in of one file is looked up or made (one per file)."""
        return self._map_locks.setdefault((mount_id, ino), trio.Lock())

    def mapped_stand_in(self, location: object) -> int | None:
        """Our memfd of the mapped stand-in of the file at `location`, if there is one."""
        for stand_in in self._by_watch.values():
            here = stand_in.description.location
            if (stand_in.mapped and not stand_in.closed and here.mount is getattr(
                    location, "mount", None) and here.ino == getattr(location, "ino", None)):
                return stand_in.memfd
        return None

    def lookup_fd(self, tid: int, fd: int) -> LowFdStandIn | None:
        """The live stand-in that fd `fd` of thread `tid` is a description of, if any."""
        if not self._by_identity or fd < 0:
            return None
        try:
            info = os.stat(f"/proc/{tid}/fd/{fd}")
        except OSError:
            return None
        stand_in = self._by_identity.get((info.st_dev, info.st_ino))
        return None if stand_in is None or stand_in.memfd < 0 else stand_in

    async def resized(self, stand_in: LowFdStandIn, change: Callable[[int], None]) -> None:
        """`change(memfd)` (ftruncate, fallocate) already done on the file by the provider:
        do it on the memfd too and take the result as written back (no WRITE follows)."""
        async with stand_in.lock:
            if stand_in.memfd < 0:
                return
            try:
                change(stand_in.memfd)
            except OSError:
                log.debug("stand-in change failed", exc_info=True)
            size = os.fstat(stand_in.memfd).st_size
            memfd = stand_in.memfd
            stand_in.digests = _chunk_digests(
                size, lambda index: os.pread(memfd, min(CHUNK, size - index * CHUNK),
                                             index * CHUNK),
            )  # fmt: skip
            stand_in.sent_size = size
            self._drain()
            stand_in.dirty = False

    # --- events ------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Read every queued inotify event and update the stand-ins' state."""
        if self._inotify < 0:
            return
        while True:
            try:
                data = os.read(self._inotify, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                watch, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:  # opens and closes lost: only session end finishes
                    for each in self._by_watch.values():
                        each.dirty = True
                    continue
                stand_in = self._by_watch.get(watch)
                if stand_in is None:
                    continue
                if mask & IN_MODIFY:
                    stand_in.dirty = True
                if mask & IN_OPEN:
                    stand_in.opens += 1
                if mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE):
                    stand_in.opens -= 1
                    if stand_in.opens <= 0:
                        stand_in.closed = True
                        stand_in.dirty = True

    async def _read_events(self) -> None:
        while True:
            await trio.lowlevel.wait_readable(self._inotify)
            self._drain()
            assert self._nursery is not None
            for stand_in in list(self._by_watch.values()):
                if stand_in.closed:
                    self._nursery.start_soon(self._finish, stand_in)
                elif stand_in.dirty:
                    self._nursery.start_soon(self._background_sync, stand_in)

    async def _background_sync(self, stand_in: LowFdStandIn) -> None:
        await trio.sleep(BACKGROUND_DELAY)
        await self._sync(stand_in)

    # --- write-back --------------------------------------------------------------------------
    async def settle(self, mount: Mount | None = None) -> bool:
        """Write back every dirty stand-in (on `mount`, or all): called before any other
        access to the mount, so that what was written is seen.  True if anything was sent."""
        sent = False
        if self._by_watch:
            self._drain()
            for stand_in in list(self._by_watch.values()):
                if mount is None or stand_in.mount is mount:
                    if stand_in.closed:
                        sent = await self._finish(stand_in) or sent
                    elif stand_in.dirty or stand_in.mapped:
                        stand_in.dirty = True
                        sent = await self._sync(stand_in) or sent
        # A finish already under way in the background: wait until it has FLUSHed and let go
        # of the file, so that what follows (an unmount's busy check) sees it closed.
        for stand_in in list(self._finishing):
            if mount is None or stand_in.mount is mount:
                await stand_in.finished.wait()
        return sent

    async def _sync(self, stand_in: LowFdStandIn) -> bool:
        async with stand_in.lock:
            if not stand_in.dirty or stand_in.memfd < 0:
                return False
            stand_in.dirty = False
            try:
                return await self._write_back(stand_in)
            except OSError as failure:
                # The kernel would report it at a later fsync/close of the writer; nobody is
                # left to tell here (the writer's write(2) already succeeded).
                log.warning("vufuse: write-back of %s failed: %s",
                            stand_in.description.location.path.decode(errors="replace"),
                            failure)
                return True

    async def _write_back(self, stand_in: LowFdStandIn) -> bool:
        """Send what changed; True if anything was."""
        size = os.fstat(stand_in.memfd).st_size
        handle, caller = stand_in.handle, stand_in.caller
        sent = False
        if stand_in.append:
            position = stand_in.sent_size
            while position < size:
                data = os.pread(stand_in.memfd, min(READ_CHUNK, size - position), position)
                if not data:
                    break
                await _write_fully(handle, position, data, caller)
                position += len(data)
                sent = True
        else:
            chunks = (size + CHUNK - 1) // CHUNK
            for index in range(chunks):
                start = index * CHUNK
                data = os.pread(stand_in.memfd, min(CHUNK, size - start), start)
                digest = _digest(data)
                if stand_in.digests.get(index) != digest or start + len(data) > stand_in.sent_size:
                    await _write_fully(handle, start, data, caller)
                    stand_in.digests[index] = digest
                    sent = True
            for index in [i for i in stand_in.digests if i >= chunks]:
                del stand_in.digests[index]
        if size < stand_in.sent_size:  # ftruncate(2) on the stand-in
            await handle.setattr(SetattrChanges(size=size), lock_owner=stand_in.lock_owner,
                                 caller=caller)
            sent = True
        stand_in.sent_size = size
        return sent

    async def _finish(self, stand_in: LowFdStandIn) -> bool:
        """The last close of the stand-in: write back, FLUSH, drop our copy of the fd."""
        if self._by_watch.get(stand_in.watch) is not stand_in:
            return False
        stand_in.dirty = True
        sent = await self._sync(stand_in)
        if self._by_watch.pop(stand_in.watch, None) is None:
            return sent
        self._finishing.add(stand_in)
        if self._by_identity.pop(stand_in.identity, None) is not None:
            self.on_inode(stand_in.identity[1], False)
        try:
            _libc.inotify_rm_watch(self._inotify, stand_in.watch)
            try:
                await stand_in.handle.flush(stand_in.lock_owner, caller=stand_in.caller)
            except OSError:
                log.debug("flush after a low-fd stand-in failed", exc_info=True)
        finally:
            os.close(stand_in.memfd)
            stand_in.memfd = -1
            os.close(stand_in.holder)  # the hang-up of the last copy sends RELEASE
            stand_in.holder = -1
            self._finishing.discard(stand_in)
            stand_in.finished.set()
        return True

    async def finish_all(self) -> None:
        """Session end: write everything back while the providers still run."""
        self._drain()
        for stand_in in list(self._by_watch.values()):
            await self._finish(stand_in)

    def close(self) -> None:
        """Forget everything (after finish_all)."""
        for stand_in in list(self._by_watch.values()):
            for fd in (stand_in.memfd, stand_in.holder):
                if fd >= 0:
                    os.close(fd)
        self._by_watch.clear()
        self._by_identity.clear()
        if self._inotify >= 0:
            os.close(self._inotify)
            self._inotify = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.lseek(fd, 0, os.SEEK_SET)


async def _write_fully(handle: OpenFile, offset: int, data: bytes, caller: Caller) -> None:
    view = memoryview(data)
    while view:
        written = await handle.write(offset, bytes(view[:READ_CHUNK]), caller=caller)
        if written <= 0:
            raise OSError(errno.EIO, "short write-back")
        view = view[written:]
        offset += written
