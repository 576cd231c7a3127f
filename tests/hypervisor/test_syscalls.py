"""The syscall table and the classification the C core receives."""

from hypervisor import syscalls
from hypervisor.syscalls import (
    ACTION_DUMPABLE,
    ACTION_ENOSYS,
    ACTION_PYTHON,
    ACTION_TRAP,
    ACTION_TRAP_CWD,
    ACTION_TRAP_FD,
    ACTION_TRAP_LOWFD,
    ACTION_TRAP_SOCKADDR,
    ACTION_TRAP_VIRTUAL,
    NUMBERS,
    build_spec,
    rule_for,
)


def test_numbers_pinned() -> None:
    expected = {
        "read": 0, "open": 2, "stat": 4, "mmap": 9, "ioctl": 16, "dup2": 33, "execve": 59,
        "fcntl": 72, "getcwd": 79, "chdir": 80, "fchdir": 81, "readlink": 89, "prctl": 157,
        "mount": 165, "umount2": 166, "getxattr": 191, "getdents64": 217, "exit_group": 231,
        "openat": 257, "newfstatat": 262, "readlinkat": 267, "faccessat": 269, "dup3": 292,
        "statx": 332, "rseq": 334, "uretprobe": 335, "uprobe": 336, "pidfd_send_signal": 424,
        "io_uring_setup": 425, "open_tree": 428, "clone3": 435, "close_range": 436,
        "openat2": 437, "faccessat2": 439, "mount_setattr": 442, "fchmodat2": 452,
        "statmount": 457, "listmount": 458, "mseal": 462, "setxattrat": 463,
        "getxattrat": 464, "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467,
        "file_getattr": 468, "file_setattr": 469,
    }
    for name, number in expected.items():
        assert NUMBERS[name] == number, name
    assert syscalls.MAX_NR == 469
    assert set(range(337, 424)).isdisjoint(NUMBERS.values())
    assert len(NUMBERS) == 337 + (469 - 424 + 1)


def test_path_syscalls_trap_with_their_path_arguments() -> None:
    assert rule_for(NUMBERS["open"]).spec_tuple() == (2, ACTION_TRAP, 0, 0, -1, -1, -1)
    assert rule_for(NUMBERS["openat"]).spec_tuple() == (257, ACTION_TRAP, 1, 1, 0, -1, -1)
    assert rule_for(NUMBERS["renameat2"]).spec_tuple() == (316, ACTION_TRAP, 0b101, 1, 0, 3, 2)
    assert rule_for(NUMBERS["symlinkat"]).spec_tuple() == (266, ACTION_TRAP, 0b10, 2, 1, -1, -1)
    assert rule_for(NUMBERS["symlink"]).spec_tuple() == (88, ACTION_TRAP, 0, 1, -1, -1, -1)
    for name in ("statx", "faccessat2", "getxattrat", "file_getattr"):
        rule = rule_for(NUMBERS[name])
        assert rule is not None and rule.action == ACTION_TRAP and rule.paths == ((1, 0),)
    # exec flushes O_CLOEXEC virtual fds (FLUSH, DESIGN §4): Python sees every one.
    assert rule_for(NUMBERS["execve"]).spec_tuple() == (59, ACTION_TRAP_VIRTUAL, 0, 0, -1, -1, -1)
    assert rule_for(NUMBERS["execveat"]).spec_tuple() == (
        322, ACTION_TRAP_VIRTUAL, 1, 1, 0, -1, -1)


def test_fd_syscalls_trap_on_their_fd_arguments() -> None:
    assert rule_for(NUMBERS["read"]).spec_tuple() == (0, ACTION_TRAP_FD, 1, -1, -1, -1, -1)
    assert rule_for(NUMBERS["mmap"]).fd_mask == 1 << 4
    assert rule_for(NUMBERS["dup2"]).fd_mask == 0b11
    assert rule_for(NUMBERS["splice"]).fd_mask == 0b101
    assert rule_for(NUMBERS["epoll_ctl"]).fd_mask == 0b100
    for name in ("fstat", "getdents64", "lseek", "close", "fchdir"):
        assert rule_for(NUMBERS[name]).action == ACTION_TRAP_FD


def test_calls_on_the_file_itself_trap_on_low_fds_too() -> None:
    """A low-fd stand-in's file (decisions D29): always notified, the C core decides."""
    for name in ("fchmod", "fchown", "ftruncate", "fallocate", "fsync", "fdatasync",
                 "fstatfs", "fgetxattr", "fsetxattr", "flistxattr", "fremovexattr"):
        assert rule_for(NUMBERS[name]).spec_tuple()[:3] == (NUMBERS[name], ACTION_TRAP_LOWFD, 1)
    for name in ("utimensat", "futimesat", "fchownat", "fchmodat2"):
        rule = rule_for(NUMBERS[name])
        assert rule is not None and rule.action == ACTION_TRAP_LOWFD and rule.paths == ((1, 0),)
    # Hot fd calls stay in the filter's fd test: below FD_BASE they never notify.
    for name in ("read", "write", "fstat", "lseek", "close", "fcntl"):
        assert rule_for(NUMBERS[name]).action == ACTION_TRAP_FD


def test_special_actions() -> None:
    for name in ("mount", "umount2", "close_range"):
        assert rule_for(NUMBERS[name]).action == ACTION_PYTHON
    assert rule_for(NUMBERS["exit_group"]).action == ACTION_TRAP_VIRTUAL
    for name in ("fsopen", "fsmount", "open_tree", "open_tree_attr", "move_mount",
                 "mount_setattr", "fspick", "fsconfig", "io_uring_setup", "io_uring_enter"):
        assert rule_for(NUMBERS[name]).action == ACTION_ENOSYS
    assert rule_for(NUMBERS["prctl"]).action == ACTION_DUMPABLE
    assert rule_for(NUMBERS["getcwd"]).action == ACTION_TRAP_CWD
    for name in ("bind", "connect"):  # a unix path on a mount, or a virtual fd
        assert rule_for(NUMBERS[name]).spec_tuple()[:3] == (NUMBERS[name], ACTION_TRAP_SOCKADDR, 1)
    # Hot syscalls that never concern a virtual object stay out of the filter.
    for name in ("getpid", "futex", "clock_gettime", "uretprobe", "rseq", "exit"):
        assert rule_for(NUMBERS[name]) is None


def test_spec_is_well_formed() -> None:
    spec = build_spec()
    assert len({entry[0] for entry in spec}) == len(spec)
    for number, action, fd_mask, p1, d1, p2, d2 in spec:
        assert 0 <= number <= syscalls.MAX_NR and action in range(1, 10)
        assert 0 <= fd_mask < 64
        for path, dirfd in ((p1, d1), (p2, d2)):
            assert -1 <= path < 6 and -1 <= dirfd < 6
            if dirfd >= 0:
                assert fd_mask & (1 << dirfd) and path >= 0
