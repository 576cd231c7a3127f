"""The mount-table files' lines, the extension registry and Mount's flag rendering."""

from __future__ import annotations

import os

from memprovider import MemProvider

from hypervisor import mountinfo
from hypervisor.extensions import Extensions
from hypervisor.mounts import MS_NOEXEC, MS_NOSUID, MS_RDONLY, MountTable


def _table() -> MountTable:
    table = MountTable()
    table.add(b"/tmp/a b", MemProvider(), fstype=b"fuse.hello", source=b"hello",
              super_options="rw,user_id=1000,group_id=1000,default_permissions")
    table.add(b"/tmp/a b/inner", MemProvider(), fstype=b"fuse", source=b"x",
              mount_flags=MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              super_options="ro,sync,user_id=0,group_id=0")
    return table


def test_lines_as_the_kernel_writes_them() -> None:
    outer, inner = sorted(_table(), key=lambda mount: mount.mount_id)
    assert mountinfo.mounts_line(outer) == (
        b"hello /tmp/a\\040b fuse.hello rw,nosuid,nodev,relatime,user_id=1000,group_id=1000,"
        b"default_permissions 0 0\n"
    )
    assert mountinfo.mounts_line(inner) == (
        b"x /tmp/a\\040b/inner fuse ro,sync,nosuid,noexec,relatime,user_id=0,group_id=0 0 0\n"
    )
    line = mountinfo.mountinfo_line(outer, 27).decode()
    fields = line.split()
    assert fields[1:] == ["27", f"0:{os.minor(outer.dev)}", "/", "/tmp/a\\040b",
                          "rw,nosuid,nodev,relatime", "-", "fuse.hello", "hello",
                          "rw,user_id=1000,group_id=1000,default_permissions"]
    assert outer.statfs_flags() == 0x2 | 0x4 | 0x1000
    assert inner.statfs_flags() == 0x1 | 0x2 | 0x8 | 0x1000


def test_render_appends_to_the_real_file() -> None:
    table = _table()
    path = f"/proc/{os.getpid()}/mountinfo".encode()
    assert mountinfo.matches(path) and mountinfo.matches(b"/proc/1/task/2/mounts")
    assert not mountinfo.matches(b"/proc/self/mountinfo")  # the walk makes it /proc/PID
    with open(path, "rb") as real:
        before = real.read()
    text = mountinfo.render(path, table)
    assert text.startswith(before)
    added = text[len(before):].splitlines()
    outer, inner = sorted(table, key=lambda mount: mount.mount_id)
    assert int(added[1].split()[1]) == outer.mount_id  # the inner mount's parent
    assert mountinfo.unmangle(mountinfo.mangle(b"a b\\c\td\ne")) == b"a b\\c\td\ne"


def test_extensions_route_by_name_and_predicate() -> None:
    pushed: list[list[bytes]] = []
    extensions = Extensions(pushed.append)

    async def opener(call: object, path: bytes, flags: int) -> int:
        return -1

    async def handler(call: object, request: object) -> int:
        return 0

    extensions.add_device(b"/dev/fuse", opener)  # type: ignore[arg-type]
    extensions.add_mount_type(lambda fstype: fstype.startswith(b"fuse"), handler)  # type: ignore[arg-type]
    assert pushed[-1] == [b"fuse"]
    assert extensions.special_file(b"/dev/fuse") is opener
    assert extensions.special_file(b"/tmp/fuse") is None
    assert extensions.mount_handler(b"fuse.sshfs") is handler
    assert extensions.mount_handler(b"tmpfs") is None
