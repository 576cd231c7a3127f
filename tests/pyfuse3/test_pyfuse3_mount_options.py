"""libfuse-style options sorted into mount(2) flags, superblock options, fusermount3 words."""

from __future__ import annotations

import pytest

from vufuse import pyfuse3
from vufuse.pyfuse3._mount import MS_NODEV, MS_NOSUID, MS_RDONLY, parse_options


def test_defaults_are_libfuse_defaults() -> None:
    parsed = parse_options(pyfuse3.default_options)
    assert parsed.flags == MS_NOSUID | MS_NODEV
    assert parsed.kernel_options == ["default_permissions"]
    assert (parsed.source, parsed.fstype, parsed.debug) == ("/dev/fuse", "fuse", False)


def test_names_flags_and_kernel_options() -> None:
    parsed = parse_options(
        {"fsname=memfs", "subtype=mem", "ro", "suid", "allow_other", "max_read=65536", "debug"}
    )
    assert parsed.flags == MS_RDONLY | MS_NODEV
    assert sorted(parsed.kernel_options) == ["allow_other", "max_read=65536"]
    assert (parsed.source, parsed.fstype, parsed.debug) == ("memfs", "fuse.mem", True)
    assert sorted(parsed.fusermount_words) == sorted(
        ["fsname=memfs", "subtype=mem", "ro", "suid", "allow_other", "max_read=65536"]
    )


def test_tuning_options_are_accepted_and_fusermount_ones_passed_on() -> None:
    parsed = parse_options({"max_write=4096", "splice_read", "auto_unmount", "async_read"})
    assert parsed.kernel_options == []
    assert parsed.fusermount_words == ["auto_unmount"]


@pytest.mark.parametrize("option", ["no_such_option", "ro=1", "fsname"])
def test_unknown_options_fail_like_libfuse(option: str) -> None:
    with pytest.raises(RuntimeError, match="unknown option"):
        parse_options({option})
