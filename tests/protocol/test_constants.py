"""Spot checks of the numbers against <linux/fuse.h> 7.45."""

from __future__ import annotations

from vufuse import protocol as p


def test_version() -> None:
    assert (p.KERNEL_VERSION, p.KERNEL_MINOR_VERSION) == (7, 45)


def test_opcodes_are_the_full_set() -> None:
    regular = {op.value for op in p.Opcode if op.value < 4096}
    # 7 (old GETDIR) and 19 are unused
    assert regular == set(range(1, 54)) - {7, 19}
    assert p.Opcode.CUSE_INIT == 4096
    assert p.Opcode.FUSE_INIT_BSWAP_RESERVED == p.Opcode.INIT << 24
    assert p.Opcode.CUSE_INIT_BSWAP_RESERVED == p.Opcode.CUSE_INIT << 8


def test_notify_codes() -> None:
    assert [code.value for code in p.NotifyCode] == list(range(1, 10))
    assert p.NotifyCode.PRUNE == 9 and p.NotifyCode.INC_EPOCH == 8 and p.NotifyCode.RESEND == 7


def test_init_flags_span_both_words() -> None:
    assert p.InitFlag.INIT_EXT == 1 << 30
    assert p.InitFlag.SECURITY_CTX == 1 << 32
    assert p.InitFlag.REQUEST_TIMEOUT == 1 << 42
    assert p.InitFlag.DIRECT_IO_RELAX is p.InitFlag.DIRECT_IO_ALLOW_MMAP


def test_small_flag_families() -> None:
    assert p.OpenReplyFlag.PASSTHROUGH == 1 << 7
    assert p.SetattrValid.KILL_SUIDGID == 1 << 11
    assert p.WriteFlag.KILL_PRIV is p.WriteFlag.KILL_SUIDGID
    assert p.ReadFlag.LOCKOWNER == 2
    assert p.IoctlFlag.COMPAT_X32 == 1 << 5
    assert p.ReleaseFlag.FLOCK_UNLOCK == 2
    assert p.FsyncFlag.FDATASYNC == 1 and p.PollFlag.SCHEDULE_NOTIFY == 1


def test_device_ioctl_numbers() -> None:
    assert p.DEV_IOC_CLONE == 0x8004E500
    assert p.DEV_IOC_BACKING_OPEN == 0x4010E501
    assert p.DEV_IOC_BACKING_CLOSE == 0x4004E502
    assert p.DEV_IOC_SYNC_INIT == 0xE503


def test_every_opcode_has_a_request_class() -> None:
    from vufuse.protocol.requests import REQUEST_CLASSES

    wanted = {op for op in p.Opcode if "BSWAP" not in op.name}
    assert set(REQUEST_CLASSES) == wanted
