"""A whole conversation through the public API, as docs/protocol.md shows it.

The kernel side encodes requests and decodes replies; the daemon side decodes
requests and encodes replies; bytes are all that pass between them.
"""

from __future__ import annotations

import errno
import stat
from typing import Any

import pytest

from vufuse import protocol as p

FILE = p.Attr(ino=2, size=5, mode=stat.S_IFREG | 0o644, nlink=1, blksize=4096)
ROOT = p.Attr(ino=1, mode=stat.S_IFDIR | 0o755, nlink=2)


class TinyDaemon:
    """A one-file filesystem written against the daemon half of the API."""

    def __init__(self, minor: int) -> None:
        self.minor = minor
        self.negotiated = p.LATEST

    def handle(self, message: bytes) -> bytes | None:
        request = p.decode_request(message, self.negotiated)
        unique = request.header.unique
        n = self.negotiated
        match request:
            case p.InitRequest(arg=arg):
                want = p.InitFlag.ASYNC_READ | p.InitFlag.DO_READDIRPLUS | p.InitFlag.MAX_PAGES
                answer = p.daemon_answer_init(arg, want, max_pages=64, minor=self.minor)
                self.negotiated = answer.negotiated
                return p.encode_reply(unique, p.Opcode.INIT, answer.reply, answer.negotiated)
            case p.LookupRequest(name=b"hello"):
                entry = p.EntryOut(nodeid=2, entry_valid=1, attr_valid=1, attr=FILE)
                return p.encode_reply(unique, p.Opcode.LOOKUP, entry, n)
            case p.LookupRequest():
                return p.encode_error(unique, errno.ENOENT)
            case p.GetattrRequest():
                attr = ROOT if request.header.nodeid == 1 else FILE
                return p.encode_reply(unique, p.Opcode.GETATTR, p.AttrOut(1, 0, 0, attr), n)
            case p.OpenRequest():
                reply = p.OpenOut(fh=7, open_flags=p.OpenReplyFlag.KEEP_CACHE)
                return p.encode_reply(unique, p.Opcode.OPEN, reply, n)
            case p.ReadRequest(arg=arg):
                data = b"world"[arg.offset : arg.offset + arg.size]
                return b"".join(p.encode_data_reply(unique, data))
            case p.ReaddirplusRequest(arg=arg):
                chunks = []
                used = 0
                names = [(b".", ROOT, 0), (b"..", ROOT, 0), (b"hello", FILE, 2)]
                for offset, (name, attr, nodeid) in enumerate(names[arg.offset :], arg.offset):
                    size = p.direntplus_size(len(name))
                    if used + size > arg.size:
                        break
                    entry = p.EntryOut(nodeid=nodeid, attr=attr)
                    dirent = p.Dirent(attr.ino, offset + 1, attr.mode >> 12, name)
                    chunks.append(p.encode_direntplus(p.DirentPlus(entry, dirent)))
                    used += size
                return p.encode_reply(unique, p.Opcode.READDIRPLUS, b"".join(chunks), n)
            case p.ReleaseRequest():
                return p.encode_reply(unique, p.Opcode.RELEASE, None, n)
            case p.StatfsRequest():
                st = p.Kstatfs(blocks=10, bsize=4096, namelen=255, frsize=4096)
                return p.encode_reply(unique, p.Opcode.STATFS, p.StatfsOut(st), n)
            case p.ForgetRequest() | p.BatchForgetRequest():
                return None
        return p.encode_error(unique, errno.ENOSYS)


class TinyKernel:
    """The kernel half: numbers requests, remembers them, checks each reply."""

    def __init__(self, daemon: TinyDaemon) -> None:
        self.daemon = daemon
        self.unique = 0
        self.negotiated = p.LATEST

    def call(self, request: Any) -> Any:
        self.unique += p.UNIQUE_STEP
        request = request._replace(header=request.header._replace(unique=self.unique))
        answer = self.daemon.handle(p.encode_request(request, self.negotiated))
        if p.request_opcode(request) in p.NO_REPLY_OPCODES:
            assert answer is None
            return None
        assert answer is not None
        header = p.decode_out_header(answer)
        assert header.unique == self.unique
        return p.decode_reply(answer, request, self.negotiated)

    def mount(self) -> None:
        flags = p.InitFlag.ASYNC_READ | p.InitFlag.DO_READDIRPLUS | p.InitFlag.MAX_PAGES
        offer = p.kernel_init_request(flags, 131072)
        reply = self.call(p.InitRequest(p.InHeader(), offer))
        assert reply.header.error == 0
        self.negotiated = p.kernel_accept_init(reply.body, offer)


@pytest.mark.parametrize("minor", [12, 19, 28, 31, 45])
def test_conversation(minor: int) -> None:
    daemon = TinyDaemon(minor)
    kernel = TinyKernel(daemon)
    kernel.mount()
    assert kernel.negotiated.minor == daemon.negotiated.minor == minor
    assert kernel.negotiated.has(p.InitFlag.ASYNC_READ)
    assert kernel.negotiated.max_pages == (64 if minor >= 28 else 32)

    header = p.InHeader(nodeid=1, uid=1000, gid=1000, pid=4242)
    entry = kernel.call(p.LookupRequest(header, b"hello")).body
    assert entry.nodeid == 2 and entry.attr.size == 5
    missing = kernel.call(p.LookupRequest(header, b"nope"))
    assert missing.header.error == -errno.ENOENT and missing.body is None

    file_header = header._replace(nodeid=2)
    assert kernel.call(p.GetattrRequest(file_header, p.GetattrIn())).body.attr.mode == FILE.mode
    opened = kernel.call(p.OpenRequest(file_header, p.OpenIn(flags=0))).body
    assert opened.fh == 7
    data = kernel.call(p.ReadRequest(file_header, p.ReadIn(fh=7, offset=1, size=3))).body
    assert data == b"orl"
    assert kernel.call(p.ReleaseRequest(file_header, p.ReleaseIn(fh=7))).body is None
    statfs = kernel.call(p.StatfsRequest(header)).body
    assert statfs.st.namelen == 255
    assert statfs.st.frsize == 4096  # 7.4+
    kernel.call(p.ForgetRequest(file_header, p.ForgetIn(1)))

    listing = p.ReaddirplusRequest(header, p.ReadIn(fh=1, size=400))
    if minor < 21:
        with pytest.raises(p.ProtocolError, match="READDIRPLUS needs 7.21"):
            kernel.call(listing)
    else:
        entries = kernel.call(listing).body
        assert [e.dirent.name for e in entries] == [b".", b".."]  # 400 bytes hold two
        rest = kernel.call(listing._replace(arg=p.ReadIn(fh=1, offset=2, size=400))).body
        assert rest[0].entry.nodeid == 2 and rest[0].dirent.name == b"hello"

    # a notification the other way
    note = p.InvalInodeNotification(p.NotifyInvalInodeOut(ino=2, off=0, len=-1))
    message = p.encode_notification(note, daemon.negotiated)
    assert p.decode_out_header(message).unique == 0
    assert p.decode_notification(message, kernel.negotiated) == note
