"""mount(2) data of fuse, fuse.SUBTYPE and fuseblk, parsed and shown like the kernel
(fs/fuse/inode.c fuse_parse_param / fuse_get_tree / fuse_show_options, fs/fs_context.c).

``fd=N,rootmode=O,user_id=U,group_id=G[,default_permissions][,allow_other][,max_read=N]
[,blksize=N][,subtype=S][,source=S]`` plus the generic superblock flags the VFS takes out of
the string first (ro, rw, sync, async, dirsync, mand, nomand, lazytime, nolazytime, posixacl,
silent).  Every error is EINVAL, as the kernel's ``invalfc``.
"""

from __future__ import annotations

import errno
import stat as stat_module
from dataclasses import dataclass

DEFAULT_MAX_READ = 0xFFFFFFFF
FUSE_DEFAULT_BLKSIZE = 512
PAGE_SIZE = 4096

_VALID_ROOT_TYPES = frozenset({
    stat_module.S_IFREG, stat_module.S_IFDIR, stat_module.S_IFLNK, stat_module.S_IFCHR,
    stat_module.S_IFBLK, stat_module.S_IFIFO, stat_module.S_IFSOCK,
})  # fmt: skip

# vfs_parse_sb_flag: generic flags set or cleared before the file system sees the option.
_SB_SET = {"dirsync": "dirsync", "lazytime": "lazytime", "mand": "mand",
           "posixacl": "posixacl", "ro": "ro", "sync": "sync"}  # fmt: skip
_SB_CLEAR = {"async": "sync", "nolazytime": "lazytime", "nomand": "mand", "rw": "ro"}
_FLAG_OPTIONS = frozenset({"default_permissions", "allow_other"})
_UINT_OPTIONS = frozenset({"fd", "rootmode", "user_id", "group_id", "max_read", "blksize"})
_STRING_OPTIONS = frozenset({"subtype", "source"})
# show_sb_opts order
_SHOWN_SB_FLAGS = (("sync", ",sync"), ("dirsync", ",dirsync"), ("mand", ",mand"),
                   ("lazytime", ",lazytime"))  # fmt: skip


@dataclass(frozen=True)
class MountOptions:
    """A parsed, validated FUSE mount (struct fuse_fs_context after fuse_get_tree's checks)."""

    fd: int = -1
    rootmode: int = stat_module.S_IFDIR | 0o755
    user_id: int = 0
    group_id: int = 0
    default_permissions: bool = False
    allow_other: bool = False
    max_read: int = DEFAULT_MAX_READ
    blksize: int = FUSE_DEFAULT_BLKSIZE
    is_bdev: bool = False
    subtype: str | None = None
    source: str | None = None
    sb_flags: frozenset[str] = frozenset()

    @property
    def readonly(self) -> bool:
        """Mounted read-only (``ro`` in the data or MS_RDONLY)."""
        return "ro" in self.sb_flags

    @property
    def effective_max_read(self) -> int:
        """fc->max_read: the option, but never below 4096."""
        return max(PAGE_SIZE, self.max_read)

    @property
    def fstype(self) -> str:
        """What /proc/self/mountinfo shows as the type: fuse, fuse.SUBTYPE, fuseblk..."""
        base = "fuseblk" if self.is_bdev else "fuse"
        return f"{base}.{self.subtype}" if self.subtype else base


def _invalid(why: str) -> OSError:
    return OSError(errno.EINVAL, why)


_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _parse_uint(key: str, value: str, base: int) -> int:
    """kstrtouint: base 0 takes 0x.. hex and 0.. octal; a leading '+' is fine, '-' is not."""
    text = value[1:] if value.startswith("+") else value
    if base == 0:
        if text[:2].lower() == "0x":
            base, text = 16, text[2:]
        elif text.startswith("0") and len(text) > 1:
            base, text = 8, text[1:]
        else:
            base = 10
    if not text or any(character not in _DIGITS[base] for character in text):
        raise _invalid(f"{key}: bad value {value!r}")
    number = int(text, base)
    if number > 0xFFFFFFFF:
        raise _invalid(f"{key}: {value!r} out of range")
    return number


def parse_mount_data(
    fstype: str | bytes, data: str | bytes | None, *, readonly: bool = False
) -> MountOptions:
    """Parse mount(2)'s ``fstype`` and ``data`` as the kernel does; OSError(EINVAL) if bad.

    ``fstype`` is fuse, fuse.SUBTYPE, fuseblk or fuseblk.SUBTYPE; ``readonly`` is MS_RDONLY.
    """
    if isinstance(fstype, bytes):
        fstype = fstype.decode("utf-8", "surrogateescape")
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    base, dot, type_subtype = fstype.partition(".")
    if base not in ("fuse", "fuseblk"):
        raise OSError(errno.ENODEV, f"unknown file system type {fstype!r}")
    if dot and not type_subtype:
        raise _invalid("empty subtype")
    values: dict[str, object] = {"is_bdev": base == "fuseblk"}
    if base == "fuseblk":
        values["blksize"] = FUSE_DEFAULT_BLKSIZE
    sb_flags = {"ro"} if readonly else set()
    if type_subtype:
        values["subtype"] = type_subtype
    for option in (data or "").split(","):
        if not option:
            continue  # vfs_parse_monolithic_sep skips empty keys
        key, equals, value = option.partition("=")
        if key in _SB_SET or key in _SB_CLEAR or key == "silent":
            if equals:
                raise _invalid(f"{key} takes no value")
            if key in _SB_SET:
                sb_flags.add(_SB_SET[key])
            elif key in _SB_CLEAR:
                sb_flags.discard(_SB_CLEAR[key])
            continue
        if key in _FLAG_OPTIONS:
            if equals:
                raise _invalid(f"{key} takes no value")
            values[key] = True
        elif key in _UINT_OPTIONS:
            if not equals:
                raise _invalid(f"{key} needs a value")
            values[key] = _parse_option(key, value, values)
        elif key in _STRING_OPTIONS:
            if not equals:
                raise _invalid(f"{key} needs a value")
            if values.get(key) is not None:
                raise _invalid(f"multiple {key}s specified")
            values[key] = value
        else:
            raise _invalid(f"unknown parameter {key!r}")
    for required in ("fd", "rootmode", "user_id", "group_id"):
        if required not in values:
            raise _invalid(f"{required} missing")
    return MountOptions(sb_flags=frozenset(sb_flags), **values)  # type: ignore[arg-type]


def _parse_option(key: str, value: str, values: dict[str, object]) -> int:
    if key == "rootmode":
        mode = _parse_uint(key, value, 8)
        if stat_module.S_IFMT(mode) not in _VALID_ROOT_TYPES:
            raise _invalid("invalid rootmode")
        return mode
    number = _parse_uint(key, value, 0)
    if key == "fd" and number > 0x7FFFFFFF:
        raise _invalid("invalid fd")
    if key in ("user_id", "group_id") and number == 0xFFFFFFFF:
        raise _invalid(f"invalid {key}")
    if key == "blksize":
        if not values["is_bdev"]:
            raise _invalid("blksize only supported for fuseblk")
        if number < 512 or number > PAGE_SIZE or number & (number - 1):
            raise _invalid("invalid blksize")  # sb_set_blocksize fails in fill_super
    return number


def show_super_options(options: MountOptions) -> str:
    """The super-options field of a mountinfo line: ``rw,user_id=…,group_id=…[,…]``.

    show_sb_opts then fuse_show_options (legacy_opts_show): max_read only when set (shown
    as the kernel stores it, at least 4096), blksize only for fuseblk and only when it is not
    the default 512.
    """
    parts = ["ro" if options.readonly else "rw"]
    parts.extend(text for flag, text in _SHOWN_SB_FLAGS if flag in options.sb_flags)
    parts.append(f",user_id={options.user_id},group_id={options.group_id}")
    if options.default_permissions:
        parts.append(",default_permissions")
    if options.allow_other:
        parts.append(",allow_other")
    if options.max_read != DEFAULT_MAX_READ:
        parts.append(f",max_read={options.effective_max_read}")
    if options.is_bdev and options.blksize != FUSE_DEFAULT_BLKSIZE:
        parts.append(f",blksize={options.blksize}")
    return "".join(parts)
