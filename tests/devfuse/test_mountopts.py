"""mount(2) data parsing and the mountinfo super options, as fs/fuse/inode.c does them."""

from __future__ import annotations

import errno
import stat as stat_module

import pytest

from vufuse.devfuse.mountopts import parse_mount_data, show_super_options

BASE = "fd=5,rootmode=40000,user_id=1000,group_id=1000"


def test_minimal() -> None:
    options = parse_mount_data("fuse", BASE)
    assert options.fd == 5
    assert options.rootmode == stat_module.S_IFDIR
    assert (options.user_id, options.group_id) == (1000, 1000)
    assert not options.allow_other and not options.default_permissions
    assert show_super_options(options) == "rw,user_id=1000,group_id=1000"
    assert options.fstype == "fuse"


def test_everything_shown_in_kernel_order() -> None:
    data = f"allow_other,{BASE},max_read=131072,default_permissions"
    options = parse_mount_data(b"fuse.sshfs", data.encode())
    assert options.fstype == "fuse.sshfs"
    assert show_super_options(options) == (
        "rw,user_id=1000,group_id=1000,default_permissions,allow_other,max_read=131072"
    )


def test_max_read_is_shown_as_stored() -> None:
    options = parse_mount_data("fuse", BASE + ",max_read=100")
    assert show_super_options(options).endswith(",max_read=4096")
    assert options.effective_max_read == 4096


def test_blksize_only_for_fuseblk() -> None:
    with pytest.raises(OSError) as caught:
        parse_mount_data("fuse", BASE + ",blksize=4096")
    assert caught.value.errno == errno.EINVAL
    options = parse_mount_data("fuseblk", BASE + ",blksize=4096")
    assert show_super_options(options) == "rw,user_id=1000,group_id=1000,blksize=4096"
    default = parse_mount_data("fuseblk", BASE)
    assert show_super_options(default) == "rw,user_id=1000,group_id=1000"
    assert default.fstype == "fuseblk"
    with pytest.raises(OSError):
        parse_mount_data("fuseblk", BASE + ",blksize=1000")


def test_generic_flags() -> None:
    options = parse_mount_data("fuse", BASE + ",ro,sync,dirsync,lazytime")
    assert show_super_options(options) == ("ro,sync,dirsync,lazytime,user_id=1000,group_id=1000")
    assert parse_mount_data("fuse", BASE, readonly=True).readonly
    assert not parse_mount_data("fuse", BASE + ",ro,rw").readonly


def test_numbers_like_kstrtouint() -> None:
    options = parse_mount_data("fuse", "fd=0x10,rootmode=100644,user_id=010,group_id=+7")
    assert options.fd == 16
    assert options.rootmode == stat_module.S_IFREG | 0o644
    assert options.user_id == 8
    assert options.group_id == 7


@pytest.mark.parametrize(
    "data",
    [
        "rootmode=40000,user_id=0,group_id=0",  # no fd
        "fd=3,user_id=0,group_id=0",  # no rootmode
        "fd=3,rootmode=40000,group_id=0",  # no user_id
        "fd=3,rootmode=40000,user_id=0",  # no group_id
        BASE + ",bogus",  # unknown option
        BASE + ",bogus=1",
        BASE + ",allow_other=1",  # flag with a value
        BASE + ",max_read",  # number without a value
        "fd=-1,rootmode=40000,user_id=0,group_id=0",
        "fd=3x,rootmode=40000,user_id=0,group_id=0",
        "fd=3,rootmode=40008,user_id=0,group_id=0",  # not octal
        "fd=3,rootmode=170000,user_id=0,group_id=0",  # not a file type
        "fd=3,rootmode=40000,user_id=4294967295,group_id=0",  # invalid uid
        "fd=3,rootmode=40000,user_id=4294967296,group_id=0",  # out of range
        BASE + ",subtype=a,subtype=b",
        "",
    ],
)
def test_invalid(data: str) -> None:
    with pytest.raises(OSError) as caught:
        parse_mount_data("fuse", data)
    assert caught.value.errno == errno.EINVAL


def test_subtype_twice_and_empty() -> None:
    with pytest.raises(OSError) as caught:
        parse_mount_data("fuse.sshfs", BASE + ",subtype=x")
    assert caught.value.errno == errno.EINVAL
    with pytest.raises(OSError):
        parse_mount_data("fuse.", BASE)
    assert parse_mount_data("fuse", BASE + ",subtype=x").fstype == "fuse.x"


def test_empty_options_are_skipped() -> None:
    assert parse_mount_data("fuse", "," + BASE + ",,").fd == 5


def test_unknown_type() -> None:
    with pytest.raises(OSError) as caught:
        parse_mount_data("ext4", BASE)
    assert caught.value.errno == errno.ENODEV
