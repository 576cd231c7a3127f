"""The x86_64 syscall table and what the seccomp filter does with each syscall.

This module is the single source of truth (STYLE.md, after PRoot's generated tables): the C core
never hard-codes a syscall number, it receives the tuples built by :func:`build_spec`.

The table follows the kernel's ``arch/x86/entry/syscalls/syscall_64.tbl`` as of Linux 6.18
(``common`` and ``64`` entries; the x32 numbers 512–547 are rejected by the filter anyway).
Numbers above :data:`MAX_NR` get ENOSYS from the filter, so a syscall newer than this table can
never slip past the hypervisor (DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Action codes of the C core (docs/tracer-core.md).  Repeated here so that this module, and the
# unit tests built on it, work without the compiled extension; `session.py` checks they agree.
ACTION_TRAP = 1
ACTION_TRAP_FD = 2
ACTION_ENOSYS = 3
ACTION_PYTHON = 4
ACTION_DUMPABLE = 5
ACTION_TRAP_CWD = 6
ACTION_TRAP_VIRTUAL = 7
ACTION_TRAP_SOCKADDR = 8
ACTION_TRAP_LOWFD = 9

FD_BASE = 512
"""First number of the reserved virtual fd range R = [FD_BASE, 2**31) (DESIGN §4)."""

# name → number, in table order.  Written from the kernel table, not copied from it.
_TABLE_TEXT = """
0 read 1 write 2 open 3 close 4 stat 5 fstat 6 lstat 7 poll 8 lseek 9 mmap 10 mprotect
11 munmap 12 brk 13 rt_sigaction 14 rt_sigprocmask 15 rt_sigreturn 16 ioctl 17 pread64
18 pwrite64 19 readv 20 writev 21 access 22 pipe 23 select 24 sched_yield 25 mremap 26 msync
27 mincore 28 madvise 29 shmget 30 shmat 31 shmctl 32 dup 33 dup2 34 pause 35 nanosleep
36 getitimer 37 alarm 38 setitimer 39 getpid 40 sendfile 41 socket 42 connect 43 accept
44 sendto 45 recvfrom 46 sendmsg 47 recvmsg 48 shutdown 49 bind 50 listen 51 getsockname
52 getpeername 53 socketpair 54 setsockopt 55 getsockopt 56 clone 57 fork 58 vfork 59 execve
60 exit 61 wait4 62 kill 63 uname 64 semget 65 semop 66 semctl 67 shmdt 68 msgget 69 msgsnd
70 msgrcv 71 msgctl 72 fcntl 73 flock 74 fsync 75 fdatasync 76 truncate 77 ftruncate
78 getdents 79 getcwd 80 chdir 81 fchdir 82 rename 83 mkdir 84 rmdir 85 creat 86 link
87 unlink 88 symlink 89 readlink 90 chmod 91 fchmod 92 chown 93 fchown 94 lchown 95 umask
96 gettimeofday 97 getrlimit 98 getrusage 99 sysinfo 100 times 101 ptrace 102 getuid
103 syslog 104 getgid 105 setuid 106 setgid 107 geteuid 108 getegid 109 setpgid 110 getppid
111 getpgrp 112 setsid 113 setreuid 114 setregid 115 getgroups 116 setgroups 117 setresuid
118 getresuid 119 setresgid 120 getresgid 121 getpgid 122 setfsuid 123 setfsgid 124 getsid
125 capget 126 capset 127 rt_sigpending 128 rt_sigtimedwait 129 rt_sigqueueinfo
130 rt_sigsuspend 131 sigaltstack 132 utime 133 mknod 134 uselib 135 personality 136 ustat
137 statfs 138 fstatfs 139 sysfs 140 getpriority 141 setpriority 142 sched_setparam
143 sched_getparam 144 sched_setscheduler 145 sched_getscheduler 146 sched_get_priority_max
147 sched_get_priority_min 148 sched_rr_get_interval 149 mlock 150 munlock 151 mlockall
152 munlockall 153 vhangup 154 modify_ldt 155 pivot_root 156 _sysctl 157 prctl 158 arch_prctl
159 adjtimex 160 setrlimit 161 chroot 162 sync 163 acct 164 settimeofday 165 mount 166 umount2
167 swapon 168 swapoff 169 reboot 170 sethostname 171 setdomainname 172 iopl 173 ioperm
174 create_module 175 init_module 176 delete_module 177 get_kernel_syms 178 query_module
179 quotactl 180 nfsservctl 181 getpmsg 182 putpmsg 183 afs_syscall 184 tuxcall 185 security
186 gettid 187 readahead 188 setxattr 189 lsetxattr 190 fsetxattr 191 getxattr 192 lgetxattr
193 fgetxattr 194 listxattr 195 llistxattr 196 flistxattr 197 removexattr 198 lremovexattr
199 fremovexattr 200 tkill 201 time 202 futex 203 sched_setaffinity 204 sched_getaffinity
205 set_thread_area 206 io_setup 207 io_destroy 208 io_getevents 209 io_submit 210 io_cancel
211 get_thread_area 212 lookup_dcookie 213 epoll_create 214 epoll_ctl_old 215 epoll_wait_old
216 remap_file_pages 217 getdents64 218 set_tid_address 219 restart_syscall 220 semtimedop
221 fadvise64 222 timer_create 223 timer_settime 224 timer_gettime 225 timer_getoverrun
226 timer_delete 227 clock_settime 228 clock_gettime 229 clock_getres 230 clock_nanosleep
231 exit_group 232 epoll_wait 233 epoll_ctl 234 tgkill 235 utimes 236 vserver 237 mbind
238 set_mempolicy 239 get_mempolicy 240 mq_open 241 mq_unlink 242 mq_timedsend
243 mq_timedreceive 244 mq_notify 245 mq_getsetattr 246 kexec_load 247 waitid 248 add_key
249 request_key 250 keyctl 251 ioprio_set 252 ioprio_get 253 inotify_init 254 inotify_add_watch
255 inotify_rm_watch 256 migrate_pages 257 openat 258 mkdirat 259 mknodat 260 fchownat
261 futimesat 262 newfstatat 263 unlinkat 264 renameat 265 linkat 266 symlinkat 267 readlinkat
268 fchmodat 269 faccessat 270 pselect6 271 ppoll 272 unshare 273 set_robust_list
274 get_robust_list 275 splice 276 tee 277 sync_file_range 278 vmsplice 279 move_pages
280 utimensat 281 epoll_pwait 282 signalfd 283 timerfd_create 284 eventfd 285 fallocate
286 timerfd_settime 287 timerfd_gettime 288 accept4 289 signalfd4 290 eventfd2
291 epoll_create1 292 dup3 293 pipe2 294 inotify_init1 295 preadv 296 pwritev
297 rt_tgsigqueueinfo 298 perf_event_open 299 recvmmsg 300 fanotify_init 301 fanotify_mark
302 prlimit64 303 name_to_handle_at 304 open_by_handle_at 305 clock_adjtime 306 syncfs
307 sendmmsg 308 setns 309 getcpu 310 process_vm_readv 311 process_vm_writev 312 kcmp
313 finit_module 314 sched_setattr 315 sched_getattr 316 renameat2 317 seccomp 318 getrandom
319 memfd_create 320 kexec_file_load 321 bpf 322 execveat 323 userfaultfd 324 membarrier
325 mlock2 326 copy_file_range 327 preadv2 328 pwritev2 329 pkey_mprotect 330 pkey_alloc
331 pkey_free 332 statx 333 io_pgetevents 334 rseq 335 uretprobe 336 uprobe
424 pidfd_send_signal 425 io_uring_setup 426 io_uring_enter 427 io_uring_register
428 open_tree 429 move_mount 430 fsopen 431 fsconfig 432 fsmount 433 fspick 434 pidfd_open
435 clone3 436 close_range 437 openat2 438 pidfd_getfd 439 faccessat2 440 process_madvise
441 epoll_pwait2 442 mount_setattr 443 quotactl_fd 444 landlock_create_ruleset
445 landlock_add_rule 446 landlock_restrict_self 447 memfd_secret 448 process_mrelease
449 futex_waitv 450 set_mempolicy_home_node 451 cachestat 452 fchmodat2 453 map_shadow_stack
454 futex_wake 455 futex_wait 456 futex_requeue 457 statmount 458 listmount
459 lsm_get_self_attr 460 lsm_set_self_attr 461 lsm_list_modules 462 mseal 463 setxattrat
464 getxattrat 465 listxattrat 466 removexattrat 467 open_tree_attr 468 file_getattr
469 file_setattr
"""


def _parse_table(text: str) -> dict[str, int]:
    words = text.split()
    table = {words[i + 1]: int(words[i]) for i in range(0, len(words), 2)}
    assert len(table) == len(words) // 2, "duplicate syscall name"
    return table


NUMBERS: dict[str, int] = _parse_table(_TABLE_TEXT)
"""Syscall name → x86_64 number, for every entry of the 6.18 table."""

NAMES: dict[int, str] = {nr: name for name, nr in NUMBERS.items()}
"""x86_64 number → syscall name."""

MAX_NR: int = max(NUMBERS.values())
"""Highest number known; the filter answers ENOSYS above it."""


def nr(name: str) -> int:
    """The number of syscall `name` (KeyError for a name the table does not know)."""
    return NUMBERS[name]


@dataclass(frozen=True)
class Rule:
    """What the filter does with one syscall, and where its fd and path arguments are.

    `paths` holds `(path_arg, dirfd_arg)` pairs; dirfd_arg is -1 for "relative to the cwd".
    `fd_args` lists every argument that is a file descriptor, dirfds included.
    """

    name: str
    action: int
    fd_args: tuple[int, ...] = ()
    paths: tuple[tuple[int, int], ...] = ()

    @property
    def nr(self) -> int:
        """The syscall number."""
        return NUMBERS[self.name]

    @property
    def fd_mask(self) -> int:
        """Bit i set ⇔ argument i is a file descriptor."""
        mask = 0
        for index in self.fd_args:
            mask |= 1 << index
        return mask

    def spec_tuple(self) -> tuple[int, int, int, int, int, int, int]:
        """The 7-tuple the C core takes (docs/tracer-core.md)."""
        (p1, d1), (p2, d2) = (list(self.paths) + [(-1, -1), (-1, -1)])[:2]
        return (self.nr, self.action, self.fd_mask, p1, d1, p2, d2)


def _path(names: str, path_arg: int = 0) -> list[Rule]:
    """Syscalls whose argument `path_arg` is a path relative to the cwd."""
    return [Rule(n, ACTION_TRAP, (), ((path_arg, -1),)) for n in names.split()]


def _at(names: str) -> list[Rule]:
    """*at syscalls shaped (dirfd, path, …)."""
    return [Rule(n, ACTION_TRAP, (0,), ((1, 0),)) for n in names.split()]


def _fd(names: str, *fd_args: int) -> list[Rule]:
    """Syscalls that matter only when one of `fd_args` lies in the virtual range."""
    return [Rule(n, ACTION_TRAP_FD, fd_args or (0,)) for n in names.split()]


def _action(names: str, action: int) -> list[Rule]:
    return [Rule(n, action) for n in names.split()]


RULES: tuple[Rule, ...] = tuple(
    # Paths relative to the cwd.  symlink's first argument is the link's *content*, not a path.
    _path(
        "open stat lstat access truncate chdir mkdir rmdir creat unlink readlink chmod chown"
        " lchown utime mknod uselib statfs chroot setxattr lsetxattr getxattr lgetxattr"
        " listxattr llistxattr removexattr lremovexattr utimes acct swapon swapoff"
    )
    + [
        Rule("rename", ACTION_TRAP, (), ((0, -1), (1, -1))),
        Rule("link", ACTION_TRAP, (), ((0, -1), (1, -1))),
        Rule("symlink", ACTION_TRAP, (), ((1, -1),)),
        Rule("pivot_root", ACTION_TRAP, (), ((0, -1), (1, -1))),
        Rule("inotify_add_watch", ACTION_TRAP, (), ((1, -1),)),
        Rule("quotactl", ACTION_TRAP, (), ((1, -1),)),
        Rule("fanotify_mark", ACTION_TRAP, (3,), ((4, 3),)),
        Rule("renameat", ACTION_TRAP, (0, 2), ((1, 0), (3, 2))),
        Rule("renameat2", ACTION_TRAP, (0, 2), ((1, 0), (3, 2))),
        Rule("linkat", ACTION_TRAP, (0, 2), ((1, 0), (3, 2))),
        Rule("symlinkat", ACTION_TRAP, (1,), ((2, 1),)),
    ]
    + _at(
        "openat mkdirat mknodat newfstatat unlinkat readlinkat fchmodat"
        " faccessat name_to_handle_at statx openat2 faccessat2"
        " setxattrat getxattrat listxattrat removexattrat file_getattr file_setattr"
    )
    # File descriptors (fd argument 0 unless said otherwise).
    + _fd(
        "read write close fstat lseek ioctl pread64 pwrite64 readv writev dup fcntl flock"
        " getdents getdents64 fchdir readahead"
        " fadvise64 sync_file_range vmsplice"
        " preadv pwritev syncfs preadv2 pwritev2 quotactl_fd open_by_handle_at"
        # Socket calls on a virtual fd: the kernel would say ENOTSOCK for a file.
        " accept sendto recvfrom recvmsg shutdown listen getsockname"
        " getpeername setsockopt getsockopt accept4 recvmmsg"
    )
    # Calls on the file itself also reach Python on a low-fd stand-in of a virtual file
    # (a memfd below FD_BASE, decisions D29): always notified, queued by the C core only
    # while stand-ins live and the fd is one (`touch` runs futimens(0, ...)).
    + [Rule(n, ACTION_TRAP_LOWFD, (0,)) for n in (
        "fsync fdatasync ftruncate fchmod fchown fstatfs fsetxattr fgetxattr flistxattr"
        " fremovexattr fallocate").split()]
    + [Rule(n, ACTION_TRAP_LOWFD, (0,), ((1, 0),))
       for n in "fchownat futimesat utimensat fchmodat2".split()]
    # bind/connect of a unix socket to a path on a mount (docs/decisions.md D12): the C core
    # reads the sockaddr_un (arguments 1, 2) and queues a watched path.
    + [Rule(n, ACTION_TRAP_SOCKADDR, (0,)) for n in ("bind", "connect")]
    + _fd("mmap", 4)
    + _fd("dup2 dup3 sendfile tee", 0, 1)
    + _fd("splice copy_file_range", 0, 2)
    + _fd("epoll_ctl", 2)
    # close_range(3, ~0U) is how closefrom() is spelled: its last argument is not in
    # [FD_BASE, 2**31), so the fd test would miss it.  Python sees every call (FLUSH, §4).
    + _action("close_range mount umount2 statmount listmount", ACTION_PYTHON)
    # A process's fd table goes at exit_group, its O_CLOEXEC fds at exec: FLUSH (§4).  Python
    # sees them while any virtual fd is open in the session; else exec is judged by its path.
    + _action("exit_group", ACTION_TRAP_VIRTUAL)
    # SCM_RIGHTS may carry a virtual fd on any socket: Python reads the message while a
    # virtual fd lives (docs/decisions.md D23); pidfd_getfd is rare, Python sees each.
    + [Rule("sendmsg", ACTION_TRAP_VIRTUAL, (0,)), Rule("sendmmsg", ACTION_TRAP_VIRTUAL, (0,))]
    # poll/select on a virtual fd ask its provider (decisions.md D26): the C core queues a
    # poll/ppoll whose array holds an fd in the range, a select/pselect6 whose nfds reaches
    # it (the filter already let smaller ones run), while a virtual fd lives.
    + _action("poll ppoll", ACTION_TRAP_VIRTUAL)
    # A child killed while holding virtual fds it inherited over fork owes their FLUSHes (D8):
    # Python finds it dead when its parent waits, while a virtual fd lives.  (fork itself is
    # not trapped: a signal during a notification fails it with EINTR, which fork never is.)
    + _action("wait4 waitid", ACTION_TRAP_VIRTUAL)
    + _fd("select pselect6", 0)
    + _action("pidfd_getfd", ACTION_PYTHON)
    + [Rule("execve", ACTION_TRAP_VIRTUAL, (), ((0, -1),)),
       Rule("execveat", ACTION_TRAP_VIRTUAL, (0,), ((1, 0),))]
    # getcwd reaches Python only when the real cwd is a stand-in (docs/decisions.md D2)
    + _action("getcwd", ACTION_TRAP_CWD)
    # The new mount API and io_uring bypass everything we could virtualize (DESIGN §3).
    + _action(
        "fsopen fsconfig fsmount fspick open_tree open_tree_attr move_mount mount_setattr"
        " io_uring_setup io_uring_enter io_uring_register",
        ACTION_ENOSYS,
    )
    + [Rule("prctl", ACTION_DUMPABLE)]
    # Trapped only for the identity watch of the answer cache (ROLES; the C core CONTINUEs).
    + _action(
        "setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid setgroups",
        ACTION_TRAP,
    )
)
"""Every syscall that is not plainly allowed, with its action and argument kinds."""

RULES_BY_NR: dict[int, Rule] = {rule.nr: rule for rule in RULES}
assert len(RULES_BY_NR) == len(RULES), "a syscall has two rules"


def build_spec(
    rules: Iterable[Rule] = RULES, trapped_ioctl: int | None = None
) -> list[tuple[int, ...]]:
    """The spec list for `Tracer(spec, fd_base=FD_BASE, max_nr=MAX_NR)`.

    `trapped_ioctl`: an ioctl request queued to Python whatever its fd (a device of ours
    read natively at a low fd, whose own ioctls the kernel would refuse: ENOTTY on a
    socket); the ioctl rule then carries ``(value_arg=1, value)`` (docs/tracer-core.md)."""
    spec: list[tuple[int, ...]] = []
    for rule in rules:
        entry: tuple[int, ...] = rule.spec_tuple()
        if trapped_ioctl is not None and rule.name == "ioctl":
            entry += (1, trapped_ioctl & 0xFFFFFFFF)
        spec.append(entry)
    return spec


def rule_for(number: int) -> Rule | None:
    """The rule of syscall `number`, or None when it is plainly allowed."""
    return RULES_BY_NR.get(number)


# Roles for the C core's answer cache (docs/tracer-core.md, "The answer cache").
ROLE_STAT = 1
ROLE_LSTAT = 2
ROLE_NEWFSTATAT = 3
ROLE_STATX = 4
ROLE_SET_UIDS = 5
ROLE_SET_GIDS = 6
ROLE_SETGROUPS = 7

ROLES: tuple[tuple[str, int, int], ...] = (
    ("stat", ROLE_STAT, 0),
    ("lstat", ROLE_LSTAT, 0),
    ("newfstatat", ROLE_NEWFSTATAT, 0),
    ("statx", ROLE_STATX, 0),
    ("setuid", ROLE_SET_UIDS, 1),
    ("setreuid", ROLE_SET_UIDS, 2),
    ("setresuid", ROLE_SET_UIDS, 3),
    ("setfsuid", ROLE_SET_UIDS, 1),
    ("setgid", ROLE_SET_GIDS, 1),
    ("setregid", ROLE_SET_GIDS, 2),
    ("setresgid", ROLE_SET_GIDS, 3),
    ("setfsgid", ROLE_SET_GIDS, 1),
    ("setgroups", ROLE_SETGROUPS, 0),
)
"""(name, role, number of id arguments): what `Tracer.set_syscall_roles` takes, by number."""


def build_roles() -> list[tuple[int, int, int]]:
    """The roles list for `Tracer.set_syscall_roles`."""
    return [(NUMBERS[name], role, count) for name, role, count in ROLES]
