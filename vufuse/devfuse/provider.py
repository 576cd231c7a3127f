"""FuseProvider: the hypervisor's provider interface on top of a FUSE connection.

Translation only; the semantics live in dir.py, file.py, readdir.py, xattr.py.  Every method
takes the keyword ``caller`` (fsuid, fsgid, thread id for the request header); the hypervisor
always passes it for a tracee's request; without one the request goes out as the mount's
owner with pid 0.

Objects are named to the hypervisor by FUSE nodeid (``Attributes.handle``; the root is 1),
and stat shows the daemon's ``attr.ino`` (``Attributes.ino``), as the kernel does: they
differ for daemons whose nodeids are pointers (passthrough_ll, passthrough_hp).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

import trio

from hypervisor.provider import Attributes, Caller, DirEntry, OpenFile, Provider, StatFs
from vufuse import protocol as p

from . import dir as fuse_dir
from . import init as fuse_init
from . import poll as fuse_poll
from . import readdir as fuse_readdir
from . import writeback
from . import xattr as fuse_xattr
from .connection import Connection
from .file import FuseFile
from .inode import Inode
from .mountopts import MountOptions
from .provider_write import FileWriteMixin, ProviderWriteMixin
from .store import install as install_store_notifications
from .superblock import FUSE_SUPER_MAGIC, FUSEBLK_SUPER_MAGIC, Superblock


def decode_rdev(rdev: int) -> int:
    """fuse_attr.rdev is the kernel's new_encode_dev form; return a host dev_t."""
    major = (rdev & 0xFFF00) >> 8
    minor = (rdev & 0xFF) | ((rdev >> 12) & 0xFFF00)
    return os.makedev(major, minor)


def attributes(sb: Superblock, inode: Inode, attr: p.Attr, valid_until: float = 0.0) -> Attributes:
    """A fuse_attr as the hypervisor's Attributes: st_ino from the daemon, the nodeid as the
    handle (see module doc); `valid_until` in the superblock's clock."""
    if valid_until:
        now = sb.clock()
        if valid_until <= now:
            valid_until = 0.0
        elif sb.clock is not time.monotonic:
            valid_until = time.monotonic() + (valid_until - now)
    memo = inode.attributes_memo
    if memo is not None and memo[0] is attr and memo[1] == valid_until:
        return memo[2]  # the same answer as last time: no new object
    made = _make_attributes(sb, inode, attr, valid_until)
    inode.attributes_memo = (attr, valid_until, made)
    return made


def _make_attributes(sb: Superblock, inode: Inode, attr: p.Attr, valid_until: float) -> Attributes:
    default_blksize = sb.options.blksize if sb.options.is_bdev else 4096
    return Attributes(
        ino=attr.ino,
        handle=inode.nodeid,
        mode=attr.mode,
        nlink=attr.nlink,
        uid=attr.uid,
        gid=attr.gid,
        rdev=decode_rdev(attr.rdev),
        size=attr.size,
        blksize=attr.blksize or default_blksize,
        blocks=attr.blocks,
        atime_ns=attr.atime * 1_000_000_000 + attr.atimensec,
        mtime_ns=attr.mtime * 1_000_000_000 + attr.mtimensec,
        ctime_ns=attr.ctime * 1_000_000_000 + attr.ctimensec,
        valid_until=valid_until,
    )


class FuseOpenFile(FileWriteMixin, OpenFile):
    """An open FUSE file or directory (the provider's OpenFile)."""

    def __init__(self, provider: FuseProvider, file: FuseFile) -> None:
        self.provider = provider
        self.file = file

    @property
    def direct_io(self) -> bool:
        """The daemon asked for uncached I/O (FOPEN_DIRECT_IO) or the caller used O_DIRECT."""
        return self.file.direct_io

    @property
    def seekable(self) -> bool:
        """False for FOPEN_NONSEEKABLE/FOPEN_STREAM: lseek/pread must fail ESPIPE."""
        return self.file.seekable

    @property
    def open_flags(self) -> int:
        """The FOPEN_* flags of the daemon's OPEN reply."""
        return self.file.open_flags

    async def read(self, offset: int, size: int, *, caller: Caller | None = None) -> bytes:
        """READ (through the page cache unless direct_io)."""
        self.provider.sb.check_allowed(caller)
        return await self.file.read(offset, size, caller)

    async def readdir(
        self, offset: int, *, caller: Caller | None = None, size: int = 0
    ) -> list[DirEntry]:
        """One READDIR/READDIRPLUS worth of entries after ``offset`` (``size``: getdents'
        buffer, the request's size as the kernel sizes it)."""
        if not self.file.is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        self.provider.sb.check_allowed(caller)
        entries = await fuse_readdir.readdir(self.file, offset, caller, size)
        return [DirEntry(entry.name, entry.ino, entry.type, entry.off) for entry in entries]

    async def getattr(self, *, caller: Caller | None = None) -> Attributes:
        """fstat: GETATTR with this file's handle when the cached attributes are stale."""
        sb = self.provider.sb
        attr = await fuse_dir.getattr(sb, self.file.inode, caller, fh=self.file.fh)
        return attributes(sb, self.file.inode, attr)

    async def flush(self, lock_owner: int = 0, *, caller: Caller | None = None) -> None:
        """FLUSH: due at every close(2) of a descriptor of this open file."""
        await self.file.flush(lock_owner, caller)

    async def poll(
        self, events: int, waker: Callable[[], None] | None = None,
        *, caller: Caller | None = None,
    ) -> int:
        """POLL (poll.py): the daemon's mask, or always ready when it has no poll."""
        return await fuse_poll.poll(self.file, events, waker, caller)

    async def release(self) -> None:
        """RELEASE/RELEASEDIR: the last reference anywhere is gone."""
        with trio.CancelScope(shield=True):
            await self.file.release()


class FuseProvider(ProviderWriteMixin, Provider):
    """A mounted FUSE file system, served by the daemon at the other end of ``connection``."""

    name_max = p.NAME_MAX  # FUSE_NAME_MAX: fuse_lookup refuses longer names

    def __init__(
        self,
        connection: Connection,
        options: MountOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        dentry_limit: int = 32768,
    ) -> None:
        self.sb = Superblock(connection, options, clock=clock, dentry_limit=dentry_limit)
        install_store_notifications(self.sb)  # STORE/RETRIEVE: provider_write's page cache
        self.connection = connection
        self.options = options

    # ------------------------------------------------------------------ lifecycle

    async def wait_initialized(self, timeout: float | None = None) -> bool:
        """Wait for INIT (``vufuse mount`` does; mount(2) does not); False on timeout/failure."""
        return await self.connection.wait_initialized(timeout)

    async def unmount(self) -> None:
        """Unmount: DESTROY for fuseblk only (fuse_conn_destroy), then abort; no FORGETs."""
        connection = self.connection
        if self.options.is_bdev and connection.initialized and connection.connected:
            with trio.move_on_after(5), trio.CancelScope(shield=True):
                try:
                    await connection.call(p.DestroyRequest(p.InHeader(nodeid=0)))
                except OSError:
                    pass
        connection.abort()

    def abort(self) -> None:
        """Fail every pending and later request (fusectl's abort)."""
        self.connection.abort()

    async def forget_unused(self) -> int:
        """Evict every unused dentry and inode now (drop_caches); FORGETs are sent."""
        evicted = self.sb.dentries.drop_all_unused()
        await self.sb.flush_forgets()
        return evicted

    def hold(self, ino: int) -> None:
        """Pin an inode the hypervisor keeps (a cwd, a root): never evicted while held."""
        self.sb.inodes.get(ino).holds += 1

    async def unhold(self, ino: int) -> None:
        """Drop a :meth:`hold`; the inode may be evicted (FORGET) if nothing else holds it."""
        inode = self.sb.inodes.find(ino)
        if inode is not None and inode.holds:
            inode.holds -= 1
            self.sb.inodes.release_if_unused(inode)
            await self.sb.flush_forgets()

    # ------------------------------------------------------------------ Provider

    async def lookup(self, parent: int, name: bytes, *, caller: Caller | None = None) -> Attributes:
        """LOOKUP (or the dentry cache)."""
        self.sb.check_allowed(caller)
        inode = await fuse_dir.lookup(self.sb, self.sb.inodes.get(parent), name, caller)
        dentry = self.sb.dentries.get(parent, name)
        valid_until = 0.0
        if dentry is not None and dentry.inode is inode and not inode.inval_mask:
            # (a field the kernel must fetch again, atime after a READ: not an answer to
            # stand for a getattr, however valid the rest is)
            valid_until = min(dentry.deadline, inode.attr_deadline)
        return attributes(self.sb, inode, inode.attr, valid_until)

    def known_size(self, ino: int) -> int | None:
        """i_size: the cached attributes' size as writes keep it, stale or not."""
        inode = self.sb.inodes.find(ino)
        return None if inode is None else int(inode.attr.size)

    async def getattr(self, ino: int, *, caller: Caller | None = None) -> Attributes:
        """GETATTR (or the attribute cache)."""
        self.sb.check_allowed(caller)
        inode = self.sb.inodes.get(ino)
        attr = await fuse_dir.getattr(self.sb, inode, caller)
        valid_until = inode.attr_deadline if inode.attr is attr and not inode.inval_mask else 0.0
        return attributes(self.sb, inode, attr, valid_until)

    def watch_changes(self, callback: Callable[[], None]) -> bool:
        """The inode and dentry caches report every invalidation and change (the kernel's
        own caches would drop or refresh the same entries)."""
        self.sb.inodes.on_change = callback
        return True

    async def readlink(self, ino: int, *, caller: Caller | None = None) -> bytes:
        """READLINK."""
        self.sb.check_allowed(caller)
        return await fuse_dir.readlink(self.sb, self.sb.inodes.get(ino), caller)

    async def open(self, ino: int, flags: int, *, caller: Caller | None = None) -> FuseOpenFile:
        """OPEN or OPENDIR (O_TRUNC: then SETATTR(size 0), see provider_write)."""
        self.sb.check_allowed(caller)
        inode = self.sb.inodes.get(ino)
        if flags & os.O_TRUNC:
            return await self.open_inode(inode, flags, caller=caller)
        return FuseOpenFile(self, await FuseFile.open(self.sb, inode, flags, caller))

    async def statfs(self, ino: int, *, caller: Caller | None = None) -> StatFs:
        """STATFS, reported with FUSE_SUPER_MAGIC (fusermount3 and df check it)."""
        st = await self.sb.statfs(self.sb.inodes.get(ino), caller)
        return StatFs(
            blocks=st.blocks, bfree=st.bfree, bavail=st.bavail, files=st.files, ffree=st.ffree,
            bsize=st.bsize, namelen=st.namelen, frsize=st.frsize,
            type=FUSEBLK_SUPER_MAGIC if self.options.is_bdev else FUSE_SUPER_MAGIC,
        )  # fmt: skip

    async def access(self, ino: int, mode: int, *, caller: Caller | None = None) -> None:
        """ACCESS (nothing to ask once the daemon said ENOSYS)."""
        self.sb.check_allowed(caller)
        await fuse_dir.access(self.sb, self.sb.inodes.get(ino), mode, caller)

    async def getxattr(self, ino: int, name: bytes, *, caller: Caller | None = None) -> bytes:
        """The whole value of ``name`` (size probe, then the value)."""
        self.sb.check_allowed(caller)
        return await fuse_xattr.whole_value(self.sb, self.sb.inodes.get(ino), name, caller)

    async def getxattr_sized(
        self, ino: int, name: bytes, size: int, *, caller: Caller | None = None
    ) -> int | bytes:
        """getxattr(2) exactly: ``size`` 0 → the length; else the value or ERANGE."""
        self.sb.check_allowed(caller)
        return await fuse_xattr.getxattr(self.sb, self.sb.inodes.get(ino), name, size, caller)

    async def listxattr(self, ino: int, *, caller: Caller | None = None) -> list[bytes]:
        """All extended attribute names."""
        self.sb.check_allowed(caller)
        return await fuse_xattr.whole_list(self.sb, self.sb.inodes.get(ino), caller)

    async def listxattr_sized(
        self, ino: int, size: int, *, caller: Caller | None = None
    ) -> int | bytes:
        """listxattr(2) exactly: ``size`` 0 → the length; else the NUL-separated names."""
        self.sb.check_allowed(caller)
        return await fuse_xattr.listxattr(self.sb, self.sb.inodes.get(ino), size, caller)


async def start_fuse(
    nursery: trio.Nursery,
    sock: trio.socket.SocketType,
    options: MountOptions,
    *,
    default_request_timeout: int = 0,
    max_request_timeout: int = 0,
    **provider_options: object,
) -> FuseProvider:
    """Mount: start the receive loop and INIT in ``nursery``; returns before INIT completes.

    Requests made before the daemon answers INIT wait for it (or fail when it dies).  The
    request timeouts are the kernel's sysctls of those names, in seconds, for this mount.
    """
    connection = Connection(
        sock,
        default_request_timeout=default_request_timeout,
        max_request_timeout=max_request_timeout,
    )
    provider = FuseProvider(connection, options, **provider_options)  # type: ignore[arg-type]
    flusher = trio.CancelScope()

    async def receive() -> None:
        try:
            await connection.receive_loop()
        finally:
            flusher.cancel()  # the periodic writeback ends with the connection

    async def negotiate() -> None:
        if await fuse_init.negotiate(connection) is not None:
            provider.sb.apply_negotiated()
            if writeback.enabled(provider.sb):
                with flusher:
                    await writeback.periodic(provider.sb)

    nursery.start_soon(receive)

    nursery.start_soon(negotiate)
    return provider
