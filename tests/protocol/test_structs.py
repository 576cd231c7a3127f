"""Struct layouts: sizes equal sizeof() of the C structs, each declared once, round trips."""

from __future__ import annotations

import ast
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import struct_values

from vufuse import protocol as p
from vufuse.protocol import structs
from vufuse.protocol._layout import Layout

# sizeof() of each struct in <linux/fuse.h> 7.45 (x86_64 and every other Linux ABI:
# the header pads everything explicitly).
DOCUMENTED_SIZES = {
    "attr": 88, "sx_time": 16, "statx": 256, "kstatfs": 80, "file_lock": 24,
    "entry_out": 128, "forget_in": 8, "forget_one": 16, "batch_forget_in": 8,
    "getattr_in": 16, "attr_out": 104, "statx_in": 24, "statx_out": 288, "mknod_in": 16,
    "mkdir_in": 8, "rename_in": 8, "rename2_in": 16, "link_in": 8, "setattr_in": 88,
    "open_in": 8, "create_in": 16, "open_out": 16, "release_in": 24, "flush_in": 24,
    "read_in": 40, "write_in": 40, "write_out": 8, "statfs_out": 80, "fsync_in": 16,
    "setxattr_in": 16, "getxattr_in": 8, "getxattr_out": 8, "lk_in": 48, "lk_out": 24,
    "access_in": 8, "init_in": 64, "init_out": 64, "cuse_init_in": 16, "cuse_init_out": 72,
    "interrupt_in": 8, "bmap_in": 16, "bmap_out": 8, "ioctl_in": 32, "ioctl_iovec": 16,
    "ioctl_out": 16, "poll_in": 24, "poll_out": 8, "notify_poll_wakeup_out": 8,
    "fallocate_in": 32, "in_header": 40, "out_header": 16, "dirent": 24,
    "notify_inval_inode_out": 24, "notify_inval_entry_out": 16, "notify_delete_out": 24,
    "notify_store_out": 24, "notify_retrieve_out": 32, "notify_retrieve_in": 40,
    "notify_prune_out": 16, "backing_map": 16, "lseek_in": 24, "lseek_out": 8,
    "copy_file_range_in": 56, "copy_file_range_out": 8, "setupmapping_in": 40,
    "removemapping_in": 4, "removemapping_one": 16, "syncfs_in": 8, "secctx": 8,
    "secctx_header": 8, "ext_header": 8, "supp_groups": 4, "uring_ent_in_out": 32,
    "uring_cmd_req": 24,
}  # fmt: skip


def test_every_struct_has_its_documented_size() -> None:
    sizes = {layout.name: layout.size for layout in structs.ALL_LAYOUTS}
    assert sizes == DOCUMENTED_SIZES


def test_compat_sizes_are_prefixes_of_todays_structs() -> None:
    # The compat sizes cut at a field boundary of today's struct.
    assert p.COMPAT_ENTRY_OUT_SIZE == structs.ENTRY_OUT.size - 8  # attr without blksize/flags
    assert p.COMPAT_ATTR_OUT_SIZE == structs.ATTR_OUT.size - 8
    assert p.COMPAT_STATFS_SIZE == structs.STATFS_OUT.size - 32  # no frsize/padding/spare
    assert p.COMPAT_WRITE_IN_SIZE == 24 and p.COMPAT_MKNOD_IN_SIZE == 8
    assert p.COMPAT_INIT_OUT_SIZE == 8 and p.COMPAT_22_INIT_OUT_SIZE == 24


def test_each_layout_is_declared_once() -> None:
    # One Layout per struct class, and no struct format string written by hand
    # anywhere in the package.
    classes = [layout.cls for layout in structs.ALL_LAYOUTS]
    assert len(classes) == len(set(classes))
    names = [layout.name for layout in structs.ALL_LAYOUTS]
    assert len(names) == len(set(names))
    package = pathlib.Path(p.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Struct":
                if path.name == "_layout.py":
                    continue
                # a single scalar (arrays of node ids, gids) is the only other Struct allowed
                assert isinstance(node.args[0], ast.Constant)
                assert node.args[0].value in ("=Q", "=I")


@pytest.mark.parametrize("layout", structs.ALL_LAYOUTS, ids=lambda layout: layout.name)
@given(data=st.data())
def test_struct_round_trip(layout: Layout[Any], data: st.DataObject) -> None:
    value = data.draw(struct_values(layout.cls))
    packed = layout.pack(value)
    assert len(packed) == layout.size
    assert layout.unpack(packed) == value


@pytest.mark.parametrize("layout", structs.ALL_LAYOUTS, ids=lambda layout: layout.name)
@given(data=st.data())
def test_struct_prefix_reads_missing_tail_as_zero(layout: Layout[Any], data: st.DataObject) -> None:
    value = data.draw(struct_values(layout.cls))
    size = data.draw(st.integers(0, layout.size))
    prefix = layout.pack_prefix(value, size)
    assert len(prefix) == size
    again = layout.unpack_prefix(prefix, 0, size)
    assert layout.pack(again) == prefix + bytes(layout.size - size)


def test_out_of_range_field_is_named() -> None:
    with pytest.raises(p.ProtocolError) as caught:
        structs.ENTRY_OUT.pack(p.EntryOut(attr=p.Attr(mode=-1)))
    assert caught.value.field == "entry_out.attr.mode"
    with pytest.raises(p.ProtocolError, match="init_out.max_pages"):
        structs.INIT_OUT.pack(p.InitOut(max_pages=1 << 16))
    with pytest.raises(p.ProtocolError, match="expected Attr"):
        structs.ATTR.pack(p.EntryOut())  # type: ignore[arg-type]


def test_zero_defaults_like_a_zeroed_c_struct() -> None:
    assert structs.ENTRY_OUT.pack(p.EntryOut()) == bytes(128)
    assert structs.INIT_OUT.pack(p.InitOut()) == bytes(64)
