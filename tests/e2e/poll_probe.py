"""Waits for mnt/queue (pollfs.py) to become readable with the syscall named by argv[1]
(poll, ppoll, select, pselect, epoll) while a thread queues a message once the daemon has
been asked to notify; prints what the wait returned and what a read then gives.

With ``nopoll`` as argv[2] (a daemon without poll) nothing is queued: the wait must return
at once (always ready).  Modes ``poll-signal`` and ``ppoll-mask`` queue nothing and end the
wait with a signal instead: a caught SIGALRM during poll, and a SIGUSR1 blocked by the thread
but let in by ppoll's own mask; each prints the errno the wait got."""

from __future__ import annotations

import ctypes
import os
import select
import struct
import sys
import threading
import time

mode = sys.argv[1]
no_poll = sys.argv[2:] == ["nopoll"]
LOG = os.environ["POLLFS_LOG"]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("mnt/queue", os.O_RDONLY)
while os.read(fd, 100):
    pass  # what an earlier probe left
print("fd in the virtual range", fd >= 512, flush=True)
print("before", select.select([fd], [], [], 0)[0] == [fd], flush=True)
woke = threading.Event()


def feed() -> None:
    for _ in range(3000):  # 30 s bounded
        with open(LOG) as log:
            if "schedule=1" in log.read():
                break
        time.sleep(0.01)
    else:
        print("the daemon was never asked to notify", flush=True)
    time.sleep(0.2)
    print("still waiting after the scheduled poll", not woke.is_set(), flush=True)
    writer = os.open("mnt/queue", os.O_WRONLY | os.O_APPEND)
    os.write(writer, b"hello")
    os.close(writer)


def wait() -> object:
    if mode == "poll":
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return poller.poll(30000)
    if mode == "ppoll":
        pollfd = ctypes.create_string_buffer(struct.pack("<ihh", fd, select.POLLIN, 0))
        timeout = ctypes.create_string_buffer(struct.pack("<qq", 30, 0))
        count = libc.ppoll(pollfd, 1, timeout, None)
        return count, struct.unpack("<ihh", pollfd.raw[:8])[2]
    if mode == "select":
        return select.select([fd], [], [], 30)[0] == [fd]
    if mode == "pselect":
        bits = bytearray(128)
        bits[fd // 8] |= 1 << (fd % 8)
        fdset = ctypes.create_string_buffer(bytes(bits), 128)
        timeout = ctypes.create_string_buffer(struct.pack("<qq", 30, 0))
        count = libc.pselect(fd + 1, fdset, None, None, timeout, None)
        return count, bool(fdset.raw[fd // 8] & (1 << (fd % 8)))
    epoll = select.epoll()
    epoll.register(fd, select.EPOLLIN)
    return epoll.poll(30)


if mode in ("poll-signal", "ppoll-mask"):
    import signal

    class Alarm(Exception):
        pass

    def ring(signum: int, frame: object) -> None:
        raise Alarm

    if mode == "poll-signal":
        signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            print("poll returned", poller.poll(30000), flush=True)
        except Alarm:
            print("poll interrupted by the handler", flush=True)
    else:
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        pollfd = ctypes.create_string_buffer(struct.pack("<ihh", fd, select.POLLIN, 0))
        timeout = ctypes.create_string_buffer(struct.pack("<qq", 30, 0))
        empty = ctypes.create_string_buffer(8)
        count = libc.ppoll(pollfd, 1, timeout, empty)
        print("ppoll", count, "errno", ctypes.get_errno() if count < 0 else 0, flush=True)
    sys.exit(0)
if not no_poll:
    feeder = threading.Thread(target=feed)
    feeder.start()
result = wait()
woke.set()
print("woke", result, flush=True)
print("read", os.read(fd, 100), flush=True)
if not no_poll:
    feeder.join()
