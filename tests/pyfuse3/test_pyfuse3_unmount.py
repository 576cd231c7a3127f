"""pyfuse3's unmount at close leaves alone a mount that is not the one it made."""

from __future__ import annotations

from pathlib import Path

import pytest

from vufuse.pyfuse3 import _mount


def _proc_mount_id() -> int:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/proc":
            return int(fields[0])
    raise AssertionError("no /proc in mountinfo")


def test_mount_id_at_reads_mountinfo() -> None:
    assert _mount.mount_id_at("/proc") == _proc_mount_id()
    assert _mount.mount_id_at("/proc/../proc") == _proc_mount_id()
    assert _mount.mount_id_at("/no/such/mountpoint") is None
    assert _mount._unescape(rb"/tmp/a\040b\011c") == b"/tmp/a b\tc"


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int]] = []

    def umount2(self, path: bytes, flags: int) -> int:
        self.calls.append((path, flags))
        return 0


def test_unmount_only_the_mount_we_made(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(_mount, "_libc", lambda: recorder)
    ours = _proc_mount_id()
    _mount.unmount("/proc", None, ours + 1)  # someone else's mount sits there now
    assert recorder.calls == []
    _mount.unmount("/proc", None, ours)
    assert recorder.calls == [(b"/proc", _mount.MNT_DETACH)]
    _mount.unmount("/proc", None, None)  # unknown: as before, unmount
    assert len(recorder.calls) == 2
