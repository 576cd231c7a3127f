"""From a request read off the device to the reply written back: decode, call, encode.

One `Dispatcher` per session. `handle` never raises for anything a request or a handler does:
a malformed request is answered EINVAL (ENOSYS for an opcode we do not know), a handler that
raises `FUSEError` gets that errno, and any other exception gets EIO plus a logged traceback,
so a buggy filesystem keeps serving. The per-opcode methods translate between the wire (via
`vufuse.protocol`, through `_wire`) and pyfuse3's handler signatures and semantics, such as
emulating XATTR_CREATE/XATTR_REPLACE on top of getxattr, as pyfuse3 does.
"""

from __future__ import annotations

import errno
import logging
import stat
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from vufuse.protocol import requests as rq
from vufuse.protocol.constants import (
    NO_REPLY_OPCODES,
    FsyncFlag,
    InitFlag,
    Opcode,
    PollFlag,
    SetattrValid,
)
from vufuse.protocol.errors import ProtocolError
from vufuse.protocol.negotiate import LATEST, Negotiated, daemon_answer_init
from vufuse.protocol.replies import CreateOut
from vufuse.protocol.structs import (
    AttrOut,
    EntryOut,
    GetxattrOut,
    OpenOut,
    PollOut,
    StatfsOut,
    WriteOut,
)

from . import _wire
from ._data import (
    _NANOS_PER_SEC,
    EntryAttributes,
    FileInfo,
    FUSEError,
    RequestContext,
    SetattrFields,
    StatvfsData,
)
from ._notify import PollHandle
from ._operations import Operations
from ._readdir import ReaddirToken

log = logging.getLogger("pyfuse3")

#: Largest WRITE we accept, as libfuse: 32 pages.
MAX_WRITE = 128 * 1024
_XATTR_CREATE = 1
_XATTR_REPLACE = 2
_ENOATTR = errno.ENODATA

#: What we ask for at INIT, as libfuse 3 asks by default (readdirplus always, never "auto").
_BASE_WANT = (
    InitFlag.ASYNC_READ | InitFlag.PARALLEL_DIROPS | InitFlag.AUTO_INVAL_DATA
    | InitFlag.HANDLE_KILLPRIV | InitFlag.ASYNC_DIO | InitFlag.HAS_IOCTL_DIR
    | InitFlag.ATOMIC_O_TRUNC | InitFlag.DO_READDIRPLUS | InitFlag.BIG_WRITES
    | InitFlag.MAX_PAGES
)  # fmt: skip

#: A handler's result when the request takes no reply (FORGET, INTERRUPT...).
NO_REPLY: Any = object()

#: Each handler returns the reply body in vufuse.protocol's types (None: an empty reply).
Handler = Callable[[Any, RequestContext], Awaitable[Any]]
T = TypeVar("T")


def _expect(value: object, expected: type[T], handler: str) -> T:
    """*value*, checked to be what the handler had to return (else a TypeError: EIO)."""
    if not isinstance(value, expected):
        raise TypeError(f"{handler}() returned {type(value).__name__}, not {expected.__name__}")
    return value


class Dispatcher:
    """Serves the requests of one session by calling an `Operations` instance."""

    def __init__(self, operations: Operations, fd: int, debug: bool = False) -> None:
        self.operations = operations
        self.fd = fd
        self.debug = debug
        self.negotiated: Negotiated = LATEST
        self.destroyed = False
        ops = Opcode
        self._handlers: dict[int, Handler] = {
            ops.INIT: self._init, ops.DESTROY: self._destroy,
            ops.LOOKUP: self._lookup, ops.FORGET: self._forget,
            ops.BATCH_FORGET: self._batch_forget, ops.GETATTR: self._getattr,
            ops.SETATTR: self._setattr, ops.READLINK: self._readlink, ops.MKNOD: self._mknod,
            ops.MKDIR: self._mkdir, ops.UNLINK: self._unlink, ops.RMDIR: self._rmdir,
            ops.SYMLINK: self._symlink, ops.RENAME: self._rename, ops.RENAME2: self._rename,
            ops.LINK: self._link, ops.OPEN: self._open, ops.READ: self._read,
            ops.WRITE: self._write, ops.FLUSH: self._flush, ops.RELEASE: self._release,
            ops.FSYNC: self._fsync, ops.OPENDIR: self._opendir,
            ops.READDIRPLUS: self._readdirplus, ops.RELEASEDIR: self._releasedir,
            ops.FSYNCDIR: self._fsyncdir, ops.STATFS: self._statfs,
            ops.SETXATTR: self._setxattr, ops.GETXATTR: self._getxattr,
            ops.LISTXATTR: self._listxattr, ops.REMOVEXATTR: self._removexattr,
            ops.ACCESS: self._access, ops.CREATE: self._create, ops.POLL: self._poll,
            ops.INTERRUPT: self._no_reply, ops.NOTIFY_REPLY: self._no_reply,
        }  # fmt: skip

    # ---------------------------------------------------------------- the frame

    async def handle(self, message: bytes) -> None:
        """Serve one request message; every outcome but "no reply due" writes a reply."""
        try:
            request = _wire.decode_request(message, self.negotiated)
        except ProtocolError as exc:
            self._reject(message, exc)
            return
        header = request.header
        if self.debug:
            log.debug(
                "unique: %d, opcode: %s (%d), nodeid: %d, insize: %d, pid: %d",
                header.unique, _opcode_name(header.opcode), header.opcode, header.nodeid,
                header.len, header.pid,
            )  # fmt: skip
        handler = self._handlers.get(header.opcode)
        ctx = RequestContext(header.uid, header.gid, header.pid, _umask_of(request))
        try:
            if handler is None:
                raise FUSEError(errno.ENOSYS)
            body = await handler(request, ctx)
            if body is NO_REPLY:
                return
            parts = _wire.encode_reply(header.unique, header.opcode, body, self.negotiated)
        except FUSEError as exc:
            self._send(_wire.encode_error(header.unique, exc.errno))
            return
        except Exception:
            log.exception(
                "Exception in %s handler; replying EIO", _opcode_name(header.opcode).lower()
            )
            self._send(_wire.encode_error(header.unique, errno.EIO))
            return
        self._send(*parts)

    def _reject(self, message: bytes, exc: ProtocolError) -> None:
        header = _wire.peek_header(message)
        log.debug("malformed request (%s)", exc)
        if header is None or header.opcode in NO_REPLY_OPCODES or header.opcode == Opcode.INTERRUPT:
            return  # nobody waits for an answer (or we cannot tell whom to answer)
        error = errno.ENOSYS if exc.field == "in_header.opcode" else errno.EINVAL
        self._send(_wire.encode_error(header.unique, error))

    def _send(self, *parts: bytes) -> None:
        if self.debug:
            log.debug("   reply: %s", _wire.describe_reply(parts[0]))
        try:
            _wire.write_message(self.fd, *parts)
        except OSError as exc:
            # ENOENT: the request was interrupted and is gone; ENODEV: unmounted meanwhile.
            if exc.errno in (errno.ENOENT, errno.ENODEV):
                log.debug("reply not delivered: %s", exc)
            else:
                log.error("writing reply to FUSE device failed: %s", exc)

    # ---------------------------------------------------------------- session

    async def _init(self, request: rq.InitRequest, ctx: RequestContext) -> Any:
        offered = request.arg.flags | (
            request.arg.flags2 << 32 if request.arg.flags & InitFlag.INIT_EXT else 0
        )
        if not offered & InitFlag.DO_READDIRPLUS:
            log.error("Kernel too old: pyfuse3 needs READDIRPLUS (Linux 3.9 or newer)")
            raise FUSEError(errno.EPROTO)
        ops = self.operations
        want = _BASE_WANT
        if ops.supports_dot_lookup:
            want |= InitFlag.EXPORT_SUPPORT
        if ops.enable_writeback_cache:
            want |= InitFlag.WRITEBACK_CACHE
        if ops.enable_acl:
            want |= InitFlag.POSIX_ACL
        answer = daemon_answer_init(
            request.arg, int(want), max_write=MAX_WRITE, max_pages=MAX_WRITE // 4096
        )
        if answer.error:
            raise FUSEError(answer.error)
        assert answer.reply is not None
        if not answer.reinit_expected:
            self.negotiated = answer.negotiated
        try:
            ops.init()
        except Exception:
            log.exception("Operations.init() raised")
        return answer.reply

    async def _destroy(self, request: rq.DestroyRequest, ctx: RequestContext) -> None:
        self.destroyed = True

    async def _no_reply(self, request: Any, ctx: RequestContext) -> Any:
        return NO_REPLY

    # ---------------------------------------------------------------- inodes and names

    async def _lookup(self, request: rq.LookupRequest, ctx: RequestContext) -> EntryOut:
        entry = await self.operations.lookup(request.header.nodeid, request.name, ctx)
        return self._entry(entry, "lookup")

    def _entry(self, entry: object, handler: str) -> EntryOut:
        return _wire.entry_out(_expect(entry, EntryAttributes, handler))

    async def _forget(self, request: rq.ForgetRequest, ctx: RequestContext) -> Any:
        await self._call_forget([(request.header.nodeid, request.arg.nlookup)])
        return NO_REPLY

    async def _batch_forget(self, request: rq.BatchForgetRequest, ctx: RequestContext) -> Any:
        await self._call_forget([(one.nodeid, one.nlookup) for one in request.forgets])
        return NO_REPLY

    async def _call_forget(self, inode_list: list[tuple[int, int]]) -> None:
        # No reply is due, so an error can only be logged.
        try:
            await self.operations.forget(inode_list)
        except Exception:
            log.exception("Exception in forget handler")

    async def _getattr(self, request: rq.GetattrRequest, ctx: RequestContext) -> AttrOut:
        entry = await self.operations.getattr(request.header.nodeid, ctx)
        return _wire.attr_out(_expect(entry, EntryAttributes, "getattr"))

    async def _setattr(self, request: rq.SetattrRequest, ctx: RequestContext) -> AttrOut:
        arg = request.arg
        valid = arg.valid
        attr = EntryAttributes()
        fields = SetattrFields()
        attr.st_mode = arg.mode
        attr.st_uid = arg.uid
        attr.st_gid = arg.gid
        attr.st_size = arg.size
        attr.st_atime_ns = arg.atime * _NANOS_PER_SEC + arg.atimensec
        attr.st_mtime_ns = arg.mtime * _NANOS_PER_SEC + arg.mtimensec
        attr.st_ctime_ns = arg.ctime * _NANOS_PER_SEC + arg.ctimensec
        now = time.time_ns()
        if valid & (SetattrValid.ATIME | SetattrValid.ATIME_NOW):
            fields.update_atime = True
            if not valid & SetattrValid.ATIME:
                attr.st_atime_ns = now
        if valid & (SetattrValid.MTIME | SetattrValid.MTIME_NOW):
            fields.update_mtime = True
            if not valid & SetattrValid.MTIME:
                attr.st_mtime_ns = now
        fields.update_ctime = bool(valid & SetattrValid.CTIME)
        fields.update_mode = bool(valid & SetattrValid.MODE)
        fields.update_uid = bool(valid & SetattrValid.UID)
        fields.update_gid = bool(valid & SetattrValid.GID)
        fields.update_size = bool(valid & SetattrValid.SIZE)
        fh = arg.fh if valid & SetattrValid.FH else None
        entry = await self.operations.setattr(request.header.nodeid, attr, fields, fh, ctx)
        return _wire.attr_out(_expect(entry, EntryAttributes, "setattr"))

    async def _readlink(self, request: rq.ReadlinkRequest, ctx: RequestContext) -> bytes:
        target = await self.operations.readlink(request.header.nodeid, ctx)
        return _expect(target, bytes, "readlink")

    async def _mknod(self, request: rq.MknodRequest, ctx: RequestContext) -> EntryOut:
        entry = await self.operations.mknod(
            request.header.nodeid, request.name, request.arg.mode, request.arg.rdev, ctx
        )
        return self._entry(entry, "mknod")

    async def _mkdir(self, request: rq.MkdirRequest, ctx: RequestContext) -> EntryOut:
        mode = (request.arg.mode & ~stat.S_IFMT(request.arg.mode)) | stat.S_IFDIR
        entry = await self.operations.mkdir(request.header.nodeid, request.name, mode, ctx)
        return self._entry(entry, "mkdir")

    async def _unlink(self, request: rq.UnlinkRequest, ctx: RequestContext) -> None:
        await self.operations.unlink(request.header.nodeid, request.name, ctx)

    async def _rmdir(self, request: rq.RmdirRequest, ctx: RequestContext) -> None:
        await self.operations.rmdir(request.header.nodeid, request.name, ctx)

    async def _symlink(self, request: rq.SymlinkRequest, ctx: RequestContext) -> EntryOut:
        entry = await self.operations.symlink(
            request.header.nodeid, request.name, request.target, ctx
        )
        return self._entry(entry, "symlink")

    async def _rename(
        self, request: rq.RenameRequest | rq.Rename2Request, ctx: RequestContext
    ) -> None:
        flags = request.arg.flags if isinstance(request, rq.Rename2Request) else 0
        await self.operations.rename(
            request.header.nodeid, request.old_name, request.arg.newdir, request.new_name,
            flags, ctx,
        )  # fmt: skip

    async def _link(self, request: rq.LinkRequest, ctx: RequestContext) -> EntryOut:
        entry = await self.operations.link(
            request.arg.oldnodeid, request.header.nodeid, request.name, ctx
        )
        return self._entry(entry, "link")

    # ---------------------------------------------------------------- open files

    async def _open(self, request: rq.OpenRequest, ctx: RequestContext) -> OpenOut:
        info = await self.operations.open(request.header.nodeid, request.arg.flags, ctx)
        return _wire.open_out(_expect(info, FileInfo, "open"))

    async def _create(self, request: rq.CreateRequest, ctx: RequestContext) -> CreateOut:
        result = await self.operations.create(
            request.header.nodeid, request.name, request.arg.mode, request.arg.flags, ctx
        )
        info, entry = result
        return CreateOut(
            _wire.entry_out(_expect(entry, EntryAttributes, "create")),
            _wire.open_out(_expect(info, FileInfo, "create")),
        )

    async def _read(self, request: rq.ReadRequest, ctx: RequestContext) -> bytes:
        data = await self.operations.read(request.arg.fh, request.arg.offset, request.arg.size)
        return bytes(memoryview(data)[: request.arg.size])

    async def _write(self, request: rq.WriteRequest, ctx: RequestContext) -> WriteOut:
        written = await self.operations.write(request.arg.fh, request.arg.offset, request.data)
        return WriteOut(size=int(written))

    async def _flush(self, request: rq.FlushRequest, ctx: RequestContext) -> None:
        await self.operations.flush(request.arg.fh)

    async def _release(self, request: rq.ReleaseRequest, ctx: RequestContext) -> None:
        await self.operations.release(request.arg.fh)

    async def _fsync(self, request: rq.FsyncRequest, ctx: RequestContext) -> None:
        datasync = bool(request.arg.fsync_flags & FsyncFlag.FDATASYNC)
        await self.operations.fsync(request.arg.fh, datasync)

    async def _poll(self, request: rq.PollRequest, ctx: RequestContext) -> PollOut:
        arg = request.arg
        handle = PollHandle._from_kernel(arg.kh) if arg.flags & PollFlag.SCHEDULE_NOTIFY else None
        revents = await self.operations.poll(request.header.nodeid, arg.fh, handle, ctx)
        return PollOut(revents=int(revents or 0))

    # ---------------------------------------------------------------- directories

    async def _opendir(self, request: rq.OpendirRequest, ctx: RequestContext) -> OpenOut:
        fh = await self.operations.opendir(request.header.nodeid, ctx)
        return OpenOut(fh=int(fh))

    async def _readdirplus(self, request: rq.ReaddirplusRequest, ctx: RequestContext) -> bytes:
        token = ReaddirToken(request.arg.size)
        await self.operations.readdir(request.arg.fh, request.arg.offset, token)
        return token.payload()

    async def _releasedir(self, request: rq.ReleasedirRequest, ctx: RequestContext) -> None:
        await self.operations.releasedir(request.arg.fh)

    async def _fsyncdir(self, request: rq.FsyncdirRequest, ctx: RequestContext) -> None:
        datasync = bool(request.arg.fsync_flags & FsyncFlag.FDATASYNC)
        await self.operations.fsyncdir(request.arg.fh, datasync)

    async def _statfs(self, request: rq.StatfsRequest, ctx: RequestContext) -> StatfsOut:
        stats = await self.operations.statfs(ctx)
        return _wire.statfs_out(_expect(stats, StatvfsData, "statfs"))

    async def _access(self, request: rq.AccessRequest, ctx: RequestContext) -> None:
        allowed = await self.operations.access(request.header.nodeid, request.arg.mask, ctx)
        if not allowed:
            raise FUSEError(errno.EACCES)

    # ---------------------------------------------------------------- extended attributes

    async def _setxattr(self, request: rq.SetxattrRequest, ctx: RequestContext) -> None:
        inode, name, flags = request.header.nodeid, request.name, request.arg.flags
        if flags & ~(_XATTR_CREATE | _XATTR_REPLACE):
            raise FUSEError(errno.EINVAL)
        ops = self.operations
        # pyfuse3's handlers have no flags argument: emulate them with a getxattr first.
        if flags & _XATTR_CREATE:
            try:
                await ops.getxattr(inode, name, ctx)
            except FUSEError as exc:
                if exc.errno != _ENOATTR:
                    raise
            else:
                raise FUSEError(errno.EEXIST)
        elif flags & _XATTR_REPLACE:
            await ops.getxattr(inode, name, ctx)
        await ops.setxattr(inode, name, request.value, ctx)

    async def _getxattr(self, request: rq.GetxattrRequest, ctx: RequestContext) -> Any:
        value = await self.operations.getxattr(request.header.nodeid, request.name, ctx)
        return _sized_reply(_expect(value, bytes, "getxattr"), request.arg.size)

    async def _listxattr(self, request: rq.ListxattrRequest, ctx: RequestContext) -> Any:
        names = await self.operations.listxattr(request.header.nodeid, ctx)
        listing = b"".join(bytes(name) + b"\0" for name in names)
        return _sized_reply(listing, request.arg.size)

    async def _removexattr(self, request: rq.RemovexattrRequest, ctx: RequestContext) -> None:
        await self.operations.removexattr(request.header.nodeid, request.name, ctx)


def _sized_reply(value: bytes, size: int) -> bytes | GetxattrOut:
    """GETXATTR/LISTXATTR: size 0 asks how big; too small a buffer is ERANGE."""
    if size == 0:
        return GetxattrOut(size=len(value))
    if len(value) > size:
        raise FUSEError(errno.ERANGE)
    return value


def _umask_of(request: Any) -> int:
    """The caller's umask travels only in requests that create something."""
    arg = getattr(request, "arg", None)
    return getattr(arg, "umask", 0) if arg is not None else 0


def _opcode_name(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"UNKNOWN_{opcode}"


__all__ = ["Dispatcher", "MAX_WRITE"]
