"""A scripted, misbehaving FUSE daemon: a real process on /dev/fuse (vufuse's or the kernel's).

Usage: python3 hostile_daemon.py MOUNTPOINT LOGFILE

It opens /dev/fuse, calls mount(2) itself and serves, single-threaded, a small tree in which
each name misbehaves in one way (below).  Every request is logged to LOGFILE as
``OPCODE NODEID`` (one line, flushed), so tests can check what reached the daemon and in
which order.  It runs unchanged on the real kernel (as root), which is how the expected
errnos were checked.

LOOKUP of these names in the root answers:

- ``good``: a regular file, "good data\\n" (nodeid 2);
- ``hang*``: nothing, ever (a hung daemon; the request stays in flight);
- ``bad-unique``: first a reply under another unique, then the right one (``good``'s entry);
- ``short`` / ``oversized``: entry_out 8 bytes short / 64 bytes long (lengths agree);
- ``lie-long`` / ``lie-short``: a header ``len`` 100 bytes over / 8 bytes under what is sent;
- ``err-range`` / ``err-positive``: error -600 / +5 in the header;
- ``bad-mode`` / ``huge-size``: attributes with file type bits 0o17 / size 2**63 + 5;
- ``zero-nodeid``: nodeid 0 (a negative entry, ENOENT);
- ``flip``: a regular file whose GETATTR says directory;
- ``slashdir`` / ``nuldir``: directories listing a name with '/' / with a NUL;
- ``wfile``, ``flushfail``, ``fsyncfail``: writable files; FLUSH of flushfail fails ENOSPC,
  FSYNC of fsyncfail fails EDQUOT; written bytes are kept.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from vufuse import protocol as p  # noqa: E402

O = p.Opcode  # noqa: E741
HEADER = struct.Struct("<IiQ")
FILE, DIRECTORY = stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755
NODES = {  # nodeid: (name, mode)
    1: (b"", DIRECTORY),
    2: (b"good", FILE),
    3: (b"flip", FILE),
    4: (b"slashdir", DIRECTORY),
    5: (b"nuldir", DIRECTORY),
    6: (b"wfile", FILE),
    7: (b"flushfail", FILE),
    8: (b"fsyncfail", FILE),
}
BY_NAME = {name: nodeid for nodeid, (name, _) in NODES.items() if nodeid != 1}
LISTING = {4: b"a/b", 5: b"a\0b"}


class Daemon:
    """The state of the one daemon: file contents and the agreed protocol."""

    def __init__(self, fd: int, log: int) -> None:
        self.fd = fd
        self.log = log
        self.negotiated: p.Negotiated = p.LATEST
        self.data = {2: bytearray(b"good data\n"), 3: bytearray(b"flip\n")}

    def attr(self, nodeid: int, **changes: int) -> p.Attr:
        mode = NODES[nodeid][1]
        size = len(self.data.get(nodeid, b""))
        fields = dict(ino=nodeid, size=size, mode=mode, nlink=2 if stat.S_ISDIR(mode) else 1,
                      uid=os.getuid(), gid=os.getgid(), blksize=4096,
                      mtime=1_700_000_000, ctime=1_700_000_000, atime=1_700_000_000)  # fmt: skip
        fields.update(changes)
        return p.Attr(**fields)

    def entry(self, nodeid: int, **changes: int) -> p.EntryOut:
        return p.EntryOut(nodeid=nodeid, attr=self.attr(nodeid, **changes))

    def send(self, message: bytes) -> None:
        try:
            os.write(self.fd, message)
        except OSError as exc:  # the kernel refuses what it cannot match (ENOENT, EINVAL)
            self.note(f"write-refused {errno.errorcode.get(exc.errno or 0, exc.errno)}")

    def note(self, line: str) -> None:
        os.write(self.log, (line + "\n").encode())

    def reply(self, unique: int, opcode: int, body: object = None) -> None:
        self.send(p.encode_reply(unique, opcode, body, self.negotiated))

    def raw(self, unique: int, payload: bytes, *, error: int = 0, delta: int = 0) -> None:
        self.send(HEADER.pack(HEADER.size + len(payload) + delta, error, unique) + payload)

    def serve(self) -> None:
        while True:
            try:
                message = os.read(self.fd, 1 << 20)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self.note(f"read {errno.errorcode.get(exc.errno or 0)}")
                return  # ENODEV: unmounted
            if not message:
                self.note("read EOF")
                return
            request = p.decode_request(message, self.negotiated)
            header = request[0]
            self.note(f"{O(header.opcode).name} {header.nodeid}")
            if header.opcode == O.DESTROY:
                self.reply(header.unique, O.DESTROY)
                return
            try:
                self.answer(request)
            except OSError as exc:
                self.send(p.encode_error(header.unique, exc.errno or errno.EIO))

    def answer(self, request: p.Request) -> None:  # noqa: C901 - one branch per opcode
        header = request[0]
        opcode, unique, nodeid = header.opcode, header.unique, header.nodeid
        if opcode == O.INIT:
            answer = p.daemon_answer_init(request.arg, 0, max_write=128 * 1024)  # type: ignore[union-attr]
            assert answer.reply is not None
            self.negotiated = answer.negotiated
            self.reply(unique, O.INIT, answer.reply)
        elif opcode in (O.FORGET, O.BATCH_FORGET, O.INTERRUPT):
            pass  # no reply; interrupts are ignored (a hung daemon ignores them too)
        elif opcode == O.LOOKUP:
            self.lookup(unique, nodeid, request.name)  # type: ignore[union-attr]
        elif opcode == O.GETATTR:
            changes = {"mode": DIRECTORY} if nodeid == 3 else {}
            self.reply(unique, O.GETATTR, p.AttrOut(attr=self.attr(nodeid, **changes)))
        elif opcode in (O.OPEN, O.OPENDIR):
            self.reply(unique, opcode, p.OpenOut(fh=nodeid))
        elif opcode == O.READ:
            arg = request.arg  # type: ignore[union-attr]
            data = bytes(self.data.get(nodeid, b""))
            self.reply(unique, O.READ, data[arg.offset : arg.offset + arg.size])
        elif opcode == O.WRITE:
            arg, data = request.arg, request.data  # type: ignore[union-attr]
            content = self.data.setdefault(nodeid, bytearray())
            if len(content) < arg.offset:
                content.extend(bytes(arg.offset - len(content)))
            content[arg.offset : arg.offset + len(data)] = data
            self.reply(unique, O.WRITE, p.WriteOut(size=len(data)))
        elif opcode == O.SETATTR:
            arg = request.arg  # type: ignore[union-attr]
            if arg.valid & p.SetattrValid.SIZE:
                content = self.data.setdefault(nodeid, bytearray())
                del content[arg.size :]
                content.extend(bytes(arg.size - len(content)))
            self.reply(unique, O.SETATTR, p.AttrOut(attr=self.attr(nodeid)))
        elif opcode == O.FLUSH:
            self.send(p.encode_error(unique, errno.ENOSPC if nodeid == 7 else 0))
        elif opcode == O.FSYNC:
            self.send(p.encode_error(unique, errno.EDQUOT if nodeid == 8 else 0))
        elif opcode in (O.RELEASE, O.RELEASEDIR):
            self.send(p.encode_error(unique, 0))
        elif opcode == O.READDIR:
            self.readdir(unique, nodeid, request.arg.offset)  # type: ignore[union-attr]
        elif opcode == O.STATFS:
            self.reply(unique, O.STATFS, p.StatfsOut(p.Kstatfs(bsize=4096, namelen=255)))
        else:
            raise OSError(errno.ENOSYS, "not implemented")

    def lookup(self, unique: int, parent: int, name: bytes) -> None:
        if parent != 1:
            raise OSError(errno.ENOENT, "flat tree")
        if name in BY_NAME:
            self.reply(unique, O.LOOKUP, self.entry(BY_NAME[name]))
            return
        good = p.encode_reply_payload(O.LOOKUP, self.entry(2), self.negotiated)
        if name.startswith(b"hang"):
            return
        if name == b"bad-unique":
            self.raw(unique + 1_000_000, good)
            self.raw(unique, good)
        elif name == b"short":
            self.raw(unique, good[:-8])
        elif name == b"oversized":
            self.raw(unique, good + bytes(64))
        elif name == b"lie-long":
            self.raw(unique, good, delta=100)
        elif name == b"lie-short":
            self.raw(unique, good, delta=-8)
        elif name == b"err-range":
            self.raw(unique, b"", error=-600)
        elif name == b"err-positive":
            self.raw(unique, b"", error=5)
        elif name == b"bad-mode":
            self.reply(unique, O.LOOKUP, self.entry(2, mode=0o170644))
        elif name == b"huge-size":
            self.reply(unique, O.LOOKUP, self.entry(2, size=2**63 + 5))
        elif name == b"zero-nodeid":
            self.reply(unique, O.LOOKUP, p.EntryOut(nodeid=0, entry_valid=1))
        else:
            raise OSError(errno.ENOENT, "no such name")

    def readdir(self, unique: int, nodeid: int, offset: int) -> None:
        names = [(1, b"."), (1, b".."), (9, LISTING.get(nodeid, b"x"))]
        if nodeid == 1:
            names = [(1, b"."), (1, b"..")] + [(n, NODES[n][0]) for n in sorted(NODES) if n > 1]
        payload = b""
        for index, (ino, name) in enumerate(names[offset:], start=offset + 1):
            record = struct.pack("<QQII", ino, index, len(name), 0) + name
            payload += record + bytes(-len(record) % 8)
        self.raw(unique, payload)


def main() -> None:
    mountpoint, logfile = sys.argv[1], sys.argv[2]
    log = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    data = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
    if libc.mount(b"hostile", os.fsencode(mountpoint), b"fuse.hostile", 0, data.encode()) != 0:
        print(f"hostile: mount: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        sys.exit(1)
    os.write(log, b"mounted\n")
    Daemon(fd, log).serve()


if __name__ == "__main__":
    main()
