"""Mounting and unmounting the way libfuse does it, without libfuse.

Like libfuse, we first open /dev/fuse and call mount(2) ourselves with ``fd=N,rootmode=,
user_id=,group_id=``; when that is not permitted (an ordinary user on a real kernel) we run
``fusermount3 -o OPTS -- MOUNTPOINT`` with one end of a socketpair named in ``_FUSE_COMMFD``
and receive the opened /dev/fuse descriptor over it (SCM_RIGHTS). Under vufuse the direct road
is virtualized for every user, so a session needs no fusermount3 at all.

Options arrive as pyfuse3 takes them: a set of libfuse option strings. They split into flags
for mount(2) (ro, nosuid…), options for the kernel's FUSE superblock (allow_other,
default_permissions, max_read=…), the source/type names (fsname=, subtype=), and session
options that only change how we run (debug, and tuning knobs we accept and ignore).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import os
import re
import select
import shutil
import socket
import stat
import subprocess

# mount(2) flags, from <sys/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

#: option -> (flags to set, flags to clear)
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0),
    "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0),
    "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0),
    "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0),
    "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "noatime": (MS_NOATIME, 0),
    "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0),
    "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0),
    "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0),
    "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0),
    "nolazytime": (0, MS_LAZYTIME),
}

#: Options the kernel's FUSE superblock understands, passed through in the mount data.
_KERNEL_OPTIONS = ("allow_other", "default_permissions")
_KERNEL_VALUE_OPTIONS = ("max_read", "blksize")

#: Options for fusermount3 alone (it checks or implements them); as root they are ignored.
_FUSERMOUNT_OPTIONS = frozenset({"allow_root", "auto_unmount", "nonempty"})

#: libfuse session/tuning options: accepted like libfuse accepts them, with no effect here.
_IGNORED_OPTIONS = frozenset(
    {
        "big_writes", "no_remote_lock", "no_remote_flock", "no_remote_posix_lock",
        "splice_write", "no_splice_write", "splice_move", "no_splice_move", "splice_read",
        "no_splice_read", "async_read", "sync_read", "atomic_o_trunc", "auto_inval_data",
        "no_auto_inval_data", "async_dio", "no_async_dio", "writeback_cache",
        "no_writeback_cache", "clone_fd", "intr", "blkdev", "user",
    }
)  # fmt: skip
_IGNORED_VALUE_OPTIONS = frozenset(
    {
        "max_write", "max_readahead", "max_background", "congestion_threshold",
        "time_gran", "intr_signal", "readdirplus", "max_threads", "max_idle_threads",
        "context", "fscontext", "defcontext", "rootcontext",
    }
)  # fmt: skip


@dataclasses.dataclass
class MountOptions:
    """A pyfuse3 option set sorted into what each consumer needs."""

    flags: int = MS_NOSUID | MS_NODEV
    kernel_options: list[str] = dataclasses.field(default_factory=list)
    fsname: str | None = None
    subtype: str | None = None
    debug: bool = False
    #: option words as fusermount3 wants them (it adds fd/rootmode/user_id itself)
    fusermount_words: list[str] = dataclasses.field(default_factory=list)

    @property
    def source(self) -> str:
        """The "device" column of /proc/mounts, chosen like libfuse."""
        return self.fsname or self.subtype or "/dev/fuse"

    @property
    def fstype(self) -> str:
        """The type given to mount(2): fuse, or fuse.SUBTYPE."""
        return f"fuse.{self.subtype}" if self.subtype else "fuse"


def parse_options(options: set[str] | frozenset[str]) -> MountOptions:
    """Sort pyfuse3/libfuse option strings; an unknown option is an error as in libfuse."""
    parsed = MountOptions()
    for option in sorted(options):
        name, has_value, value = option.partition("=")
        if name in ("debug", "-d"):
            parsed.debug = True
        elif name in _FLAG_OPTIONS and not has_value:
            set_bits, clear_bits = _FLAG_OPTIONS[name]
            parsed.flags = (parsed.flags | set_bits) & ~clear_bits
            parsed.fusermount_words.append(name)
        elif name in _KERNEL_OPTIONS and not has_value:
            parsed.kernel_options.append(name)
            parsed.fusermount_words.append(name)
        elif name in _KERNEL_VALUE_OPTIONS and has_value:
            parsed.kernel_options.append(option)
            parsed.fusermount_words.append(option)
        elif name == "fsname" and has_value:
            parsed.fsname = value
            parsed.fusermount_words.append(option)
        elif name == "subtype" and has_value:
            parsed.subtype = value
            parsed.fusermount_words.append(option)
        elif name in _FUSERMOUNT_OPTIONS and not has_value:
            parsed.fusermount_words.append(name)
        elif name in _IGNORED_OPTIONS and not has_value:
            pass
        elif name in _IGNORED_VALUE_OPTIONS and has_value:
            pass
        else:
            raise RuntimeError(f"fuse: unknown option `{option}'")
    return parsed


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _raise_errno(what: str, path: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}", path)


def mount(mountpoint: str, options: MountOptions) -> tuple[int, socket.socket | None]:
    """Mount a FUSE filesystem at *mountpoint* and return (device fd, fusermount socket).

    The socket is kept only when fusermount3 stays to watch us (auto_unmount).
    """
    try:
        return _mount_directly(mountpoint, options), None
    except PermissionError:
        if os.geteuid() == 0:
            raise
    return _mount_with_fusermount(mountpoint, options)


def _mount_directly(mountpoint: str, options: MountOptions) -> int:
    rootmode = stat.S_IFMT(os.stat(mountpoint).st_mode)
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    data = ",".join(
        [f"fd={fd}", f"rootmode={rootmode:o}", f"user_id={os.getuid()}",
         f"group_id={os.getgid()}", *options.kernel_options]
    )  # fmt: skip
    libc = _libc()
    res = libc.mount(
        options.source.encode(), os.fsencode(mountpoint), options.fstype.encode(),
        ctypes.c_ulong(options.flags), data.encode(),
    )  # fmt: skip
    if res != 0 and ctypes.get_errno() == errno.ENODEV and options.subtype:
        # An old kernel without fuse.SUBTYPE support: fall back to plain "fuse", as libfuse does.
        res = libc.mount(
            options.source.encode(), os.fsencode(mountpoint), b"fuse",
            ctypes.c_ulong(options.flags), data.encode(),
        )  # fmt: skip
    if res != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"mount: {os.strerror(err)}", mountpoint)
    return fd


def fusermount_program() -> str:
    """Path of fusermount3 (or fusermount); RuntimeError if neither is installed."""
    for name in ("fusermount3", "fusermount"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("fusermount3 not found: install the fuse3 package")


def _mount_with_fusermount(
    mountpoint: str, options: MountOptions
) -> tuple[int, socket.socket | None]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    command = [fusermount_program()]
    if options.fusermount_words:
        command += ["-o", ",".join(options.fusermount_words)]
    command += ["--", mountpoint]
    env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
    try:
        helper = subprocess.Popen(command, env=env, pass_fds=[theirs.fileno()])
        theirs.close()
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
        auto_unmount = "auto_unmount" in options.fusermount_words
        if not auto_unmount:
            helper.wait()
    except BaseException:
        ours.close()
        raise
    if not fds:
        ours.close()
        raise RuntimeError(f"fusermount3 failed to mount {mountpoint}")
    os.set_inheritable(fds[0], False)
    if auto_unmount:
        return fds[0], ours
    ours.close()
    return fds[0], None


def connection_aborted(fd: int) -> bool:
    """True when the kernel side of *fd* is gone (already unmounted): poll shows POLLERR."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _unescape(field: bytes) -> bytes:
    """A mountinfo path field with its octal escapes (\\040 for a space...) undone."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), field)


def mount_id_at(mountpoint: str) -> int | None:
    """The id of the topmost mount at *mountpoint* (/proc/self/mountinfo), or None.

    Only the parent directory is resolved: looking at the mount root itself could wait for
    an INIT that this very process has yet to answer.
    """
    parent, name = os.path.split(os.path.abspath(mountpoint))
    target = os.fsencode(os.path.join(os.path.realpath(parent), name))
    found = None
    try:
        with open("/proc/self/mountinfo", "rb") as mountinfo:
            for line in mountinfo:
                fields = line.split(b" ", 5)
                if len(fields) > 4 and _unescape(fields[4]) == target:
                    found = int(fields[0])
    except (OSError, ValueError):
        return None
    return found


def unmount(mountpoint: str, fd: int | None, mount_id: int | None = None) -> None:
    """Lazily unmount *mountpoint* unless it is unmounted already: its connection *fd* shows
    POLLERR (the kernel), or the mount there is no longer *mount_id*, the one we made (under
    vufuse the device shows no POLLERR, docs/decisions.md D3).

    The check keeps us from unmounting whatever else now sits at that path.
    """
    if fd is not None and connection_aborted(fd):
        return
    if mount_id is not None and mount_id_at(mountpoint) != mount_id:
        return
    if _libc().umount2(os.fsencode(mountpoint), MNT_DETACH) == 0:
        return
    failure = ctypes.get_errno()
    if failure in (errno.EINVAL, errno.ENOENT):
        return
    if failure != errno.EPERM or os.geteuid() == 0:
        _raise_errno("umount2", mountpoint)
    subprocess.run(
        [fusermount_program(), "-u", "-q", "-z", "--", mountpoint],
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
