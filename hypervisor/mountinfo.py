"""/proc/PID/mounts and /proc/PID/mountinfo with the virtual mounts in them.

findmnt, df, mount(8), umount(8), `os.path.ismount`'s callers and fusermount3 all read these
files; each virtual mount must appear in a line identical in form to the kernel's
(fs/proc_namespace.c show_vfsmnt / show_mountinfo).  An open of one of them (or of /etc/mtab,
/proc/mounts, which lead there) is answered with a memfd holding a snapshot: the kernel's own
text for the caller, then one line per virtual mount, in mount order.  Reads then run natively.
"""

from __future__ import annotations

import errno
import os
import re

from .mounts import Mount, MountTable

_PROC_FILE = re.compile(rb"^/proc/(\d+)(?:/task/(\d+))?/(mounts|mountinfo)$")
NAMES = (b"mounts", b"mountinfo", b"mtab")
"""Final components the C fast path must queue (/etc/mtab leads to /proc/self/mounts)."""

_SB_FLAG_WORDS = frozenset({"sync", "dirsync", "mand", "lazytime"})


def matches(path: bytes) -> bool:
    """True for /proc/PID[/task/TID]/mounts|mountinfo (canonical paths)."""
    return _PROC_FILE.match(path) is not None


def mangle(text: bytes) -> bytes:
    """seq_file's mangle(): space, tab, newline and backslash as octal escapes."""
    return (text.replace(b"\\", b"\\134").replace(b" ", b"\\040")
            .replace(b"\t", b"\\011").replace(b"\n", b"\\012"))


def unmangle(text: bytes) -> bytes:
    """The inverse of :func:`mangle`."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), text)


def _parent_id(mount: Mount, real_lines: list[bytes], table: MountTable) -> int:
    """Mount id of the mount the mountpoint lies in (the longest matching mountpoint)."""
    best, best_length = 0, -1
    for line in real_lines:
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        point = unmangle(fields[4])
        if _contains(point, mount.mountpoint) and len(point) > best_length:
            best, best_length = int(fields[0]), len(point)
    for other in table:
        point = other.mountpoint
        if other is not mount and other.mount_id < mount.mount_id and point != mount.mountpoint:
            if _contains(point, mount.mountpoint) and len(point) > best_length:
                best, best_length = other.mount_id, len(point)
    return best


def _contains(directory: bytes, path: bytes) -> bool:
    return directory == b"/" or path == directory or path.startswith(directory + b"/")


def mountinfo_line(mount: Mount, parent_id: int) -> bytes:
    """One mountinfo line (no optional fields: a private mount)."""
    major, minor = os.major(mount.dev), os.minor(mount.dev)
    return b"%d %d %d:%d / %s %s - %s %s %s\n" % (
        mount.mount_id, parent_id, major, minor, mangle(mount.mountpoint),
        mount.mount_options().encode(), mangle(mount.fstype), mangle(mount.source),
        mount.super_options.encode(),
    )


def mounts_line(mount: Mount) -> bytes:
    """One /proc/mounts line: show_vfsmnt's ro/rw, sb flags, mount flags, fs options, 0 0."""
    super_words = mount.super_options.split(",")
    per_mount = mount.mount_options().split(",")[1:]
    sb_words = [word for word in super_words[1:] if word in _SB_FLAG_WORDS]
    fs_words = [word for word in super_words[1:] if word not in _SB_FLAG_WORDS]
    options = ",".join([super_words[0], *sb_words, *per_mount, *fs_words])
    return b"%s %s %s %s 0 0\n" % (
        mangle(mount.source), mangle(mount.mountpoint), mangle(mount.fstype), options.encode()
    )


def render(path: bytes, table: MountTable) -> bytes:
    """The content of canonical `path` (one of :func:`matches`) with the virtual mounts."""
    found = _PROC_FILE.match(path)
    if found is None:
        raise OSError(errno.ENOENT, "not a mount table file")
    with open(path, "rb") as real:
        text = real.read()
    mounts = sorted(table, key=lambda mount: mount.mount_id)
    if found.group(3) == b"mounts":
        return text + b"".join(mounts_line(mount) for mount in mounts)
    real_lines = text.splitlines()
    return text + b"".join(
        mountinfo_line(mount, _parent_id(mount, real_lines, table)) for mount in mounts
    )


def snapshot_fd(content: bytes) -> int:
    """A memfd holding `content`, positioned at 0 (read-only use; the caller closes it)."""
    fd = os.memfd_create("vufuse-mounts", os.MFD_CLOEXEC)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
