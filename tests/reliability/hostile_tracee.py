"""A hostile or buggy program on a mount: bad pointers, huge lengths, invalid flags, paths
at and past PATH_MAX, 10,000 open fds, threads racing close against read, a fork bomb.

Usage: python3 hostile_tracee.py MOUNTPOINT (calls|fds|race|forkbomb)
Prints ``NAME RESULT`` lines (RESULT: ok VALUE or an errno name).  Raw syscalls through ctypes
so that nothing in Python's os module filters the arguments first.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS = {"read": 0, "write": 1, "fstat": 5, "lseek": 8, "pread64": 17, "fcntl": 72, "flock": 73,
       "readlinkat": 267, "renameat2": 316, "getdents64": 217, "newfstatat": 262,
       "utimensat": 280, "fallocate": 285, "statx": 332, "faccessat2": 439, "openat": 257,
       "getxattr": 191, "setxattr": 188, "linkat": 265}  # fmt: skip
AT_FDCWD = -100
BAD = ctypes.c_void_p(1)  # an address that is never mapped
DATA = b"0123456789"


def call(name: str, *arguments: object) -> str:
    result = libc.syscall(SYS[name], *arguments)
    if result == -1:
        code = ctypes.get_errno()
        return errno.errorcode.get(code, str(code))
    return f"ok {result}"


def report(label: str, outcome: str) -> None:
    print(label, outcome, flush=True)


def calls(mnt: str) -> None:
    path = f"{mnt}/file".encode()
    with open(path, "wb") as file:
        file.write(DATA)
    os.symlink("file", f"{mnt}/link")
    os.mkdir(f"{mnt}/dir")
    open(f"{mnt}/dir/entry", "wb").close()  # getdents has something to copy out
    os.setxattr(path, b"user.k", b"v")
    fd = os.open(path, os.O_RDWR)
    dirfd = os.open(f"{mnt}/dir", os.O_RDONLY | os.O_DIRECTORY)
    buffer = ctypes.create_string_buffer(4096)
    # Bad pointers: EFAULT, as the kernel.
    report("openat-bad-path", call("openat", AT_FDCWD, BAD, os.O_RDONLY))
    report("stat-bad-buffer", call("newfstatat", AT_FDCWD, path, BAD, 0))
    report("statx-bad-buffer", call("statx", AT_FDCWD, path, 0, 0x7FF, BAD))
    report("fstat-bad-buffer", call("fstat", fd, BAD))
    report("read-bad-buffer", call("read", fd, BAD, 10))
    report("pread-bad-buffer", call("pread64", fd, BAD, 10, ctypes.c_long(0)))
    report("write-bad-buffer", call("write", fd, BAD, 10))
    report("getdents-bad-buffer", call("getdents64", dirfd, BAD, 4096))
    report("readlink-bad-buffer", call("readlinkat", AT_FDCWD, f"{mnt}/link".encode(), BAD, 100))
    report("rename-bad-path", call("renameat2", AT_FDCWD, path, AT_FDCWD, BAD, 0))
    report("link-bad-path", call("linkat", AT_FDCWD, path, AT_FDCWD, BAD, 0))
    report("getdents-after-fault", call("getdents64", dirfd, buffer, 4096).split()[0])
    # Huge lengths: clamped as by the kernel, never allocated.
    report("read-huge", call("pread64", fd, buffer, ctypes.c_size_t(1 << 40), ctypes.c_long(0)))
    report("readlink-huge", call("readlinkat", AT_FDCWD, f"{mnt}/link".encode(), buffer,
                                 0x7FFFFFFF))  # fmt: skip
    report("getxattr-huge", call("getxattr", path, b"user.k", buffer, ctypes.c_size_t(1 << 40)))
    report("setxattr-huge", call("setxattr", path, b"user.big", buffer,
                                 ctypes.c_size_t(1 << 40), 0))  # fmt: skip
    report("lseek-far", call("lseek", fd, ctypes.c_long(1 << 62), os.SEEK_SET))
    report("read-past-end", call("read", fd, buffer, 4096))
    # Invalid flags: EINVAL/EOPNOTSUPP, as the kernel's VFS checks.
    report("renameat2-flags", call("renameat2", AT_FDCWD, path, AT_FDCWD,
                                   f"{mnt}/x".encode(), 0xFF))  # fmt: skip
    report("lseek-whence", call("lseek", fd, ctypes.c_long(0), 99))
    report("open-tmpfile-rdonly", call("openat", AT_FDCWD, f"{mnt}/dir".encode(),
                                       os.O_TMPFILE | os.O_RDONLY, 0o600))  # fmt: skip
    report("fcntl-cmd", call("fcntl", fd, 9999, 0))
    report("faccessat2-flags", call("faccessat2", AT_FDCWD, path, os.R_OK, 0x9999))
    report("statx-flags", call("statx", AT_FDCWD, path, 0x80000000, 0x7FF, buffer))
    times = (ctypes.c_long * 4)(0, 2_000_000_000, 0, 0)
    report("utimensat-nsec", call("utimensat", AT_FDCWD, path, times, 0))
    report("fallocate-mode", call("fallocate", fd, 0x4000, ctypes.c_long(0), ctypes.c_long(10)))
    report("flock-op", call("flock", fd, 0x99))
    report("setxattr-flags", call("setxattr", path, b"user.k", b"v", 1, 0x8))
    # Paths: 4095 bytes (PATH_MAX with its NUL) resolve, one more is ENAMETOOLONG.
    prefix = f"{mnt}/"
    padding = 4095 - len(prefix) - len("file")
    at_max = prefix + "./" * (padding // 2) + "/" * (padding % 2) + "file"
    assert len(at_max) == 4095
    report("path-4095", call("newfstatat", AT_FDCWD, at_max.encode(), buffer, 0).split()[0])
    report("path-4096", call("newfstatat", AT_FDCWD, ("/" + at_max).encode(), buffer, 0))
    report("name-256", call("newfstatat", AT_FDCWD, f"{mnt}/{'n' * 256}".encode(), buffer, 0))
    report("name-255", call("newfstatat", AT_FDCWD, f"{mnt}/{'n' * 255}".encode(), buffer, 0))
    report("still-reads", open(path, "rb").read().decode())


def many_fds(mnt: str) -> None:
    count = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    with open(f"{mnt}/file", "wb") as file:
        file.write(DATA)
    fds = [os.open(f"{mnt}/file", os.O_RDONLY) for _ in range(count)]
    report("opened", str(len(set(fds))))
    good = sum(os.pread(fd, 10, 0) == DATA for fd in fds[:: count // 100])
    report("read-sampled", str(good))
    for fd in fds:
        os.close(fd)
    report("after-close", open(f"{mnt}/file", "rb").read().decode())


def race(mnt: str) -> None:
    with open(f"{mnt}/file", "wb") as file:
        file.write(DATA)
    state = {"fd": os.open(f"{mnt}/file", os.O_RDONLY)}
    stop = time.monotonic() + 8
    counts = {"reads": 0, "ebadf": 0, "wrong": 0, "closes": 0}
    lock = threading.Lock()
    oddities: list[str] = []

    def reader() -> None:
        while time.monotonic() < stop:
            try:
                data = os.pread(state["fd"], 10, 0)
            except OSError as exc:
                with lock:
                    counts["ebadf" if exc.errno == errno.EBADF else "wrong"] += 1
                    if exc.errno != errno.EBADF and len(oddities) < 5:
                        oddities.append(repr(exc))
                continue
            with lock:
                counts["reads" if data == DATA else "wrong"] += 1
                if data != DATA and len(oddities) < 5:
                    oddities.append(repr(data))

    def closer() -> None:
        while time.monotonic() < stop:
            os.close(state["fd"])
            state["fd"] = os.open(f"{mnt}/file", os.O_RDONLY)
            with lock:
                counts["closes"] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    threads.append(threading.Thread(target=closer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a thread hung"
    for key, value in counts.items():
        report(key, str(value))
    for oddity in oddities:
        report("oddity", oddity)


def fork_bomb(mnt: str) -> None:
    with open(f"{mnt}/file", "wb") as file:
        file.write(DATA)
    uid = os.getuid()
    tasks = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    tasks += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                pass
    limit = tasks + 150
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    forked = refused = 0
    children = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            pid = os.fork()
        except BlockingIOError:
            refused += 1
            if refused >= 50:
                break
            continue
        if pid == 0:  # every child forks too, touches the mount, and lingers a little
            try:
                os.fork()
            except OSError:
                pass
            try:
                os.stat(f"{mnt}/file")
            except OSError:
                pass
            time.sleep(1)
            os._exit(0)
        forked += 1
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    report("forked", "many" if forked >= 50 else str(forked))
    report("refused", "EAGAIN" if refused else "never")
    report("after-bomb", open(f"{mnt}/file", "rb").read().decode())


if __name__ == "__main__":
    {"calls": calls, "fds": many_fds, "race": race, "forkbomb": fork_bomb}[sys.argv[2]](sys.argv[1])
