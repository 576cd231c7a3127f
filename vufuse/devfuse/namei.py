"""Operations that change names (Linux fs/fuse/dir.c write side, with the VFS checks of
fs/namei.c in front): CREATE (or MKNOD + OPEN), MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR,
RENAME/RENAME2, TMPFILE.

As in the kernel: a name about to be created is looked up first, bypassing a fresh dentry
(LOOKUP_EXCL), so EEXIST comes from the cache only after the daemon confirmed it; the mode
loses the caller's umask here unless DONT_MASK was agreed (the daemon gets the umask anyway);
success invalidates the attributes of the directory (and its readdir cache) and of the inodes
whose link count or ctime changed; the dentry cache follows: rename moves the dentry, unlink
drops it and the cached nlink goes down.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module

from hypervisor.provider import Caller
from vufuse import protocol as p

from . import dir as fuse_dir
from . import writeback
from .file import KERNEL_O_LARGEFILE, FuseFile
from .inode import Inode, deadline, invalid_attr
from .permission import (
    MAY_WRITE,
    check_writable_mount,
    is_root,
    may_create,
    may_delete,
    permission,
    strip_sgid,
)
from .superblock import Superblock

F = p.InitFlag
FOPEN = p.OpenReplyFlag
RENAME_NOREPLACE = 1 << 0
RENAME_EXCHANGE = 1 << 1
RENAME_WHITEOUT = 1 << 2
_RENAME_FLAGS = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT
_FILE_FLAGS_STRIPPED = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC
TMPFILE_NAME = b"/"
"""vfs_tmpfile allocates its unhashed dentry with the name "/": that is what TMPFILE carries."""


def encode_rdev(rdev: int) -> int:
    """new_encode_dev: a host dev_t in the 32-bit form fuse_mknod_in carries."""
    major, minor = os.major(rdev), os.minor(rdev)
    return ((minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)) & 0xFFFFFFFF


def apply_umask(sb: Superblock, mode: int, umask: int) -> int:
    """Without DONT_MASK the kernel, not the daemon, applies the caller's umask."""
    if sb.connection.negotiated.has(F.DONT_MASK):
        return mode
    return mode & ~(umask & 0o777)


def dir_changed(sb: Superblock, directory: Inode) -> None:
    """fuse_dir_changed: the directory's attributes and readdir cache are stale."""
    sb.inodes.invalidate_attr(directory)
    directory.dir_cache = None


def entry_unlinked(sb: Superblock, inode: Inode) -> None:
    """fuse_entry_unlinked: one link fewer (none for a directory) and a new ctime."""
    nlink = 0 if inode.file_type == stat_module.S_IFDIR else max(inode.attr.nlink - 1, 0)
    inode.attr = inode.attr._replace(nlink=nlink)
    sb.inodes.invalidate_attr(inode)


async def lookup_for_create(
    sb: Superblock, parent: Inode, name: bytes, caller: Caller | None
) -> Inode | None:
    """The VFS lookup before a create (LOOKUP_CREATE|LOOKUP_EXCL): never trusts a cached
    entry, positive or negative; None when the name is free."""
    _check_name(name)
    sb.dentries.expire(parent.nodeid, name)
    try:
        return await fuse_dir.lookup(sb, parent, name, caller)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return None


def _check_name(name: bytes) -> None:
    if name in (b"", b".", b".."):
        raise OSError(errno.EEXIST, "not a name to create")
    if b"/" in name or b"\0" in name:
        raise OSError(errno.EINVAL, "bad name")


async def _new_name(sb: Superblock, parent: Inode, name: bytes, caller: Caller | None) -> None:
    """filename_create + may_create: EROFS, ENOTDIR, EEXIST, then permission."""
    check_writable_mount(sb)
    parent.check()
    if parent.file_type != stat_module.S_IFDIR:
        raise OSError(errno.ENOTDIR, "not a directory")
    if await lookup_for_create(sb, parent, name, caller) is not None:
        raise OSError(errno.EEXIST, "file exists")
    await may_create(sb, parent, caller)


async def create_new_entry(
    sb: Superblock, parent: Inode, name: bytes, request: p.Request, file_type: int,
    caller: Caller | None,
) -> Inode:  # fmt: skip
    """Send MKNOD/MKDIR/SYMLINK/LINK and enter the reply (create_new_entry in dir.c).

    EIO for a reply naming nodeid 0 or the root, invalid attributes or another file type;
    like the kernel, no FORGET is sent for such a reply.  EEXIST from the daemon drops our
    (stale) entry for the name.
    """
    try:
        body = await sb.connection.call(request)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            sb.dentries.invalidate(parent.nodeid, name)
            await sb.flush_forgets()
        raise
    entry: p.EntryOut = body
    if (
        entry.nodeid in (0, p.ROOT_ID)
        or invalid_attr(entry.attr)
        or stat_module.S_IFMT(entry.attr.mode) != file_type
    ):
        raise OSError(errno.EIO, "FUSE daemon created something else")
    inode = sb.inodes.iget(entry)
    sb.dentries.add(
        parent, name, inode, deadline(sb.clock(), entry.entry_valid, entry.entry_valid_nsec)
    )
    dir_changed(sb, parent)
    await sb.flush_forgets()
    return inode


async def mknod(
    sb: Superblock, parent: Inode, name: bytes, mode: int, rdev: int, umask: int,
    caller: Caller | None,
) -> Inode:  # fmt: skip
    """mknod(2): MKNOD (a mode without a type is a regular file, as vfs_mknod)."""
    file_type = stat_module.S_IFMT(mode) or stat_module.S_IFREG
    if file_type == stat_module.S_IFDIR:
        raise OSError(errno.EPERM, "mknod of a directory")
    if file_type not in (stat_module.S_IFREG, stat_module.S_IFCHR, stat_module.S_IFBLK,
                         stat_module.S_IFIFO, stat_module.S_IFSOCK):  # fmt: skip
        raise OSError(errno.EINVAL, "bad file type")
    await _new_name(sb, parent, name, caller)
    if file_type in (stat_module.S_IFCHR, stat_module.S_IFBLK) and not is_root(caller):
        raise OSError(errno.EPERM, "mknod of a device needs CAP_MKNOD")
    mode = strip_sgid(file_type | (mode & 0o7777), parent.attr, caller)
    return await _mknod(sb, parent, name, mode, rdev, umask, caller)


async def _mknod(
    sb: Superblock, parent: Inode, name: bytes, mode: int, rdev: int, umask: int,
    caller: Caller | None,
) -> Inode:  # fmt: skip
    arg = p.MknodIn(mode=apply_umask(sb, mode, umask), rdev=encode_rdev(rdev), umask=umask)
    request = p.MknodRequest(sb.header(parent.nodeid, caller), arg, name)
    return await create_new_entry(sb, parent, name, request, stat_module.S_IFMT(mode), caller)


async def mkdir(
    sb: Superblock, parent: Inode, name: bytes, mode: int, umask: int, caller: Caller | None
) -> Inode:
    """mkdir(2): MKDIR with the permission bits and the sticky bit only (vfs_mkdir)."""
    await _new_name(sb, parent, name, caller)
    mode = apply_umask(sb, mode & 0o1777, umask)
    arg = p.MkdirIn(mode=mode, umask=umask)
    request = p.MkdirRequest(sb.header(parent.nodeid, caller), arg, name)
    return await create_new_entry(sb, parent, name, request, stat_module.S_IFDIR, caller)


async def symlink(
    sb: Superblock, parent: Inode, name: bytes, target: bytes, caller: Caller | None
) -> Inode:
    """symlink(2): SYMLINK name then target."""
    if not target:
        raise OSError(errno.ENOENT, "empty symlink target")
    await _new_name(sb, parent, name, caller)
    request = p.SymlinkRequest(sb.header(parent.nodeid, caller), name, target)
    return await create_new_entry(sb, parent, name, request, stat_module.S_IFLNK, caller)


async def link(
    sb: Superblock, inode: Inode, parent: Inode, name: bytes, caller: Caller | None
) -> Inode:
    """link(2): LINK; the reply's attributes (the new link count) are taken as they come."""
    inode.check()
    if inode.file_type == stat_module.S_IFDIR:
        raise OSError(errno.EPERM, "hard link to a directory")
    await _new_name(sb, parent, name, caller)
    request = p.LinkRequest(sb.header(parent.nodeid, caller), p.LinkIn(oldnodeid=inode.nodeid),
                            name)  # fmt: skip
    try:
        linked = await create_new_entry(sb, parent, name, request, inode.file_type, caller)
    except OSError as exc:
        if exc.errno == errno.EINTR:
            sb.inodes.invalidate_attr(inode)
        raise
    await writeback.update_ctime(sb, linked)
    return linked


async def remove(
    sb: Superblock, parent: Inode, name: bytes, caller: Caller | None, *, directory: bool
) -> None:
    """unlink(2) (UNLINK) or rmdir(2) (RMDIR)."""
    if name in (b".", b".."):
        if not directory:
            raise OSError(errno.EISDIR, "is a directory")
        raise OSError(errno.EINVAL if name == b"." else errno.ENOTEMPTY, "bad name")
    check_writable_mount(sb)
    victim = await fuse_dir.lookup(sb, parent, name, caller)
    is_dir = victim.file_type == stat_module.S_IFDIR
    if directory and not is_dir:
        raise OSError(errno.ENOTDIR, "not a directory")
    if not directory and is_dir:
        raise OSError(errno.EISDIR, "is a directory")
    await may_delete(sb, parent, victim, caller)
    header = sb.header(parent.nodeid, caller)
    request = p.RmdirRequest(header, name) if directory else p.UnlinkRequest(header, name)
    try:
        await sb.connection.call(request)
    except OSError as exc:
        if exc.errno in (errno.EINTR, errno.ENOENT):
            sb.dentries.invalidate(parent.nodeid, name)
            await sb.flush_forgets()
        raise
    victim.holds += 1
    dir_changed(sb, parent)
    entry_unlinked(sb, victim)
    sb.dentries.invalidate(parent.nodeid, name)
    try:
        await writeback.update_ctime(sb, victim)
    finally:
        victim.holds -= 1
    sb.inodes.release_if_unused(victim)
    await sb.flush_forgets()


async def rename(
    sb: Superblock, old_parent: Inode, old_name: bytes, new_parent: Inode, new_name: bytes,
    flags: int, caller: Caller | None,
) -> None:  # fmt: skip
    """renameat2(2): the VFS checks, then RENAME (flags 0) or RENAME2.

    RENAME2 needs protocol 7.23 and a daemon that knows it: otherwise, or after it answered
    ENOSYS (remembered), a rename with flags fails EINVAL, as fuse_rename2.
    """
    if flags & ~_RENAME_FLAGS or (
        flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)
    ):
        raise OSError(errno.EINVAL, "bad rename flags")
    if b"" in (old_name, new_name) or {old_name, new_name} & {b".", b".."}:
        raise OSError(errno.EBUSY, "cannot rename . or ..")
    check_writable_mount(sb)
    if flags & RENAME_WHITEOUT and not is_root(caller):
        raise OSError(errno.EPERM, "RENAME_WHITEOUT needs CAP_MKNOD")
    source = await fuse_dir.lookup(sb, old_parent, old_name, caller)
    target = await _lookup_target(sb, new_parent, new_name, caller)
    if flags & RENAME_EXCHANGE and target is None:
        raise OSError(errno.ENOENT, "nothing to exchange with")
    if flags & RENAME_NOREPLACE and target is not None:
        raise OSError(errno.EEXIST, "target exists")
    _check_rename_loop(old_parent, source, new_parent, target, flags)
    if source is target:
        return
    source_is_dir = source.file_type == stat_module.S_IFDIR
    target_is_dir = target is not None and target.file_type == stat_module.S_IFDIR
    if target is not None and not flags & RENAME_EXCHANGE:
        if source_is_dir and not target_is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        if target_is_dir and not source_is_dir:
            raise OSError(errno.EISDIR, "is a directory")
    await may_delete(sb, old_parent, source, caller)
    if target is None:
        await may_create(sb, new_parent, caller)
    else:
        await may_delete(sb, new_parent, target, caller)
    if old_parent is not new_parent:
        # A directory moving elsewhere gets a new "..": write permission on it.
        if source_is_dir:
            await permission(sb, source, MAY_WRITE, caller)
        if flags & RENAME_EXCHANGE and target_is_dir and target is not None:
            await permission(sb, target, MAY_WRITE, caller)
    await _send_rename(sb, old_parent, old_name, new_parent, new_name, flags, caller, target)
    _renamed(sb, source, target, flags)
    # under a writeback cache the new ctimes go out now, before d_move (as fuse_rename_common)
    await writeback.update_ctime(sb, source)
    if target is not None:
        await writeback.update_ctime(sb, target)
    dir_changed(sb, old_parent)
    if new_parent is not old_parent:
        dir_changed(sb, new_parent)
    _move_dentries(sb, old_parent, old_name, new_parent, new_name, exchange=bool(
        flags & RENAME_EXCHANGE))  # fmt: skip
    await sb.flush_forgets()


def _is_ancestor(ancestor: Inode, inode: Inode) -> bool:
    """``ancestor`` is ``inode`` or a directory above it, as the dentries' d_parent chain says
    (bounded: a daemon that reports a loop gets no infinite walk)."""
    seen: set[int] = set()
    node: Inode | None = inode
    while node is not None and id(node) not in seen:
        if node is ancestor or node.nodeid == ancestor.nodeid:
            return True
        if node.nodeid == p.ROOT_ID:
            return False
        seen.add(id(node))
        node = node.d_parent
    return False


def _check_rename_loop(
    old_parent: Inode, source: Inode, new_parent: Inode, target: Inode | None, flags: int
) -> None:
    """lock_rename's trap, checked before the daemon hears of the rename (do_renameat2).

    A directory moved into its own subtree is EINVAL; a target that is an ancestor of the
    source's directory is ENOTEMPTY (EINVAL for an exchange).  The daemon never sees either:
    high-level libfuse, for one, locks both paths and would wait for itself for ever.
    """
    if old_parent is new_parent:
        return
    if source.file_type == stat_module.S_IFDIR and _is_ancestor(source, new_parent):
        raise OSError(errno.EINVAL, "cannot move a directory into itself")
    if (
        target is not None
        and target.file_type == stat_module.S_IFDIR
        and _is_ancestor(target, old_parent)
    ):
        if flags & RENAME_EXCHANGE:
            raise OSError(errno.EINVAL, "cannot exchange a directory with its ancestor")
        raise OSError(errno.ENOTEMPTY, "target is an ancestor of the source")


async def _lookup_target(
    sb: Superblock, parent: Inode, name: bytes, caller: Caller | None
) -> Inode | None:
    """The rename target, looked up afresh (LOOKUP_RENAME_TARGET); None if absent."""
    sb.dentries.expire(parent.nodeid, name)
    try:
        return await fuse_dir.lookup(sb, parent, name, caller)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return None


async def _send_rename(
    sb: Superblock, old_parent: Inode, old_name: bytes, new_parent: Inode, new_name: bytes,
    flags: int, caller: Caller | None, target: Inode | None,
) -> None:  # fmt: skip
    connection = sb.connection
    header = sb.header(old_parent.nodeid, caller)
    request: p.Request
    if flags:
        if connection.no_rename2 or connection.negotiated.minor < 23:
            raise OSError(errno.EINVAL, "FUSE daemon has no RENAME2")
        arg = p.Rename2In(newdir=new_parent.nodeid, flags=flags)
        request = p.Rename2Request(header, arg, old_name, new_name)
    else:
        request = p.RenameRequest(header, p.RenameIn(newdir=new_parent.nodeid), old_name,
                                  new_name)  # fmt: skip
    try:
        await connection.call(request)
    except OSError as exc:
        if exc.errno == errno.ENOSYS and flags:
            connection.no_rename2 = True
            raise OSError(errno.EINVAL, "FUSE daemon has no RENAME2") from None
        if exc.errno in (errno.EINTR, errno.ENOENT):
            sb.dentries.invalidate(old_parent.nodeid, old_name)
            if target is not None:
                sb.dentries.invalidate(new_parent.nodeid, new_name)
            await sb.flush_forgets()
        raise


def _renamed(sb: Superblock, source: Inode, target: Inode | None, flags: int) -> None:
    """fuse_rename_common's aftermath on the inodes: new ctimes, a replaced target unlinked."""
    sb.inodes.invalidate_attr(source)
    if target is None:
        return
    if flags & RENAME_EXCHANGE:
        sb.inodes.invalidate_attr(target)
    else:
        entry_unlinked(sb, target)


def _move_dentries(
    sb: Superblock, old_parent: Inode, old_name: bytes, new_parent: Inode, new_name: bytes,
    *, exchange: bool,
) -> None:  # fmt: skip
    """d_move / d_exchange: the dentries keep their timeouts under their new names."""
    dentries = sb.dentries
    moved = dentries.get(old_parent.nodeid, old_name)
    other = dentries.get(new_parent.nodeid, new_name)
    held = [inode for inode in (old_parent, new_parent) + tuple(
        d.inode for d in (moved, other) if d is not None and d.inode is not None)]  # fmt: skip
    for inode in held:
        inode.holds += 1
    if exchange:
        if moved is not None:
            dentries.add(new_parent, new_name, moved.inode, moved.deadline)
        if other is not None:
            dentries.add(old_parent, old_name, other.inode, other.deadline)
    else:
        dentries.invalidate(new_parent.nodeid, new_name)
        if moved is not None and moved.inode is not None:
            dentries.add(new_parent, new_name, moved.inode, moved.deadline)
        dentries.invalidate(old_parent.nodeid, old_name)
    for inode in held:
        inode.holds -= 1
        sb.inodes.release_if_unused(inode)


async def create(
    sb: Superblock, parent: Inode, name: bytes, mode: int, flags: int, umask: int,
    caller: Caller | None,
) -> tuple[Inode, FuseFile | None]:  # fmt: skip
    """open(2) with O_CREAT of a name (fuse_atomic_open).

    Looks the name up (unless the caller's walk just did, :meth:`Superblock.just_missed`);
    if it exists: EEXIST with O_EXCL, else ``(inode, None)`` and the
    caller opens it as usual.  If not: CREATE, or MKNOD then OPEN once the daemon answered
    CREATE with ENOSYS (remembered).  A new file is never truncated.
    """
    parent.check()
    if parent.file_type != stat_module.S_IFDIR:
        raise OSError(errno.ENOTDIR, "not a directory")
    if name in (b"", b".", b".."):
        raise OSError(errno.EISDIR, "is a directory")
    if sb.just_missed(caller, parent.nodeid, name):
        existing = None  # the walk of this open(2) just asked: atomic_open's one LOOKUP
    elif flags & os.O_EXCL:
        existing = await lookup_for_create(sb, parent, name, caller)
    else:
        try:
            existing = await fuse_dir.lookup(sb, parent, name, caller)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            existing = None
    if existing is not None:
        if flags & os.O_EXCL:
            raise OSError(errno.EEXIST, "file exists")
        if existing.file_type == stat_module.S_IFDIR:
            raise OSError(errno.EISDIR, "O_CREAT of a directory")
        return existing, None
    check_writable_mount(sb)
    await may_create(sb, parent, caller)
    mode = strip_sgid(stat_module.S_IFREG | (mode & 0o7777), parent.attr, caller)
    if not sb.connection.no_create:
        try:
            return await _create_open(sb, parent, name, mode, flags, umask, caller,
                                      p.Opcode.CREATE)  # fmt: skip
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            sb.connection.no_create = True
    inode = await _mknod(sb, parent, name, mode, 0, umask, caller)
    return inode, await FuseFile.open(sb, inode, flags & ~os.O_TRUNC, caller)


async def tmpfile(
    sb: Superblock, parent: Inode, mode: int, flags: int, umask: int, caller: Caller | None
) -> tuple[Inode, FuseFile]:
    """open(2) with O_TMPFILE: TMPFILE (7.37); ENOSYS is remembered as EOPNOTSUPP."""
    check_writable_mount(sb)
    await may_create(sb, parent, caller)
    if sb.connection.no_tmpfile:
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no TMPFILE")
    mode = strip_sgid(stat_module.S_IFREG | (mode & 0o7777), parent.attr, caller)
    try:
        inode, file = await _create_open(sb, parent, TMPFILE_NAME, mode, flags, umask, caller,
                                         p.Opcode.TMPFILE)  # fmt: skip
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        sb.connection.no_tmpfile = True
        raise OSError(errno.EOPNOTSUPP, "FUSE daemon has no TMPFILE") from None
    return inode, file


async def _create_open(
    sb: Superblock, parent: Inode, name: bytes, mode: int, flags: int, umask: int,
    caller: Caller | None, opcode: int,
) -> tuple[Inode, FuseFile]:  # fmt: skip
    """fuse_create_open: one CREATE/TMPFILE; the reply is an entry and an open file."""
    wire_flags = (flags | KERNEL_O_LARGEFILE) & ~os.O_NOCTTY & 0xFFFFFFFF
    arg = p.CreateIn(flags=wire_flags, mode=apply_umask(sb, mode, umask), umask=umask)
    if (
        sb.connection.negotiated.has(F.HANDLE_KILLPRIV_V2)
        and flags & os.O_TRUNC
        and not flags & os.O_EXCL
        and not is_root(caller)
    ):
        arg = arg._replace(open_flags=int(p.OpenRequestFlag.KILL_SUIDGID))
    header = sb.header(parent.nodeid, caller)
    tmp = opcode == p.Opcode.TMPFILE
    request = p.TmpfileRequest(header, arg, name) if tmp else p.CreateRequest(header, arg, name)
    body = await sb.connection.call(request)
    out: p.CreateOut = body
    entry = out.entry
    if (
        not stat_module.S_ISREG(entry.attr.mode)
        or entry.nodeid in (0, p.ROOT_ID)
        or invalid_attr(entry.attr)
    ):
        raise OSError(errno.EIO, "FUSE daemon created something else")
    inode = sb.inodes.iget(entry)
    if not tmp:
        sb.dentries.add(
            parent, name, inode, deadline(sb.clock(), entry.entry_valid, entry.entry_valid_nsec)
        )
    dir_changed(sb, parent)
    open_flags = out.open.open_flags & ~FOPEN.PASSTHROUGH
    if not open_flags & FOPEN.KEEP_CACHE:
        inode.invalidate_pages()
    inode.opens += 1
    file_flags = (flags | KERNEL_O_LARGEFILE) & ~_FILE_FLAGS_STRIPPED & 0xFFFFFFFF
    await sb.flush_forgets()
    return inode, FuseFile(sb, inode, out.open.fh, open_flags, file_flags, release=True)
