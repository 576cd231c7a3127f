"""Processes around mounts (issue 6): poll/select on a virtual fd answer as for a file on a
real directory when the daemon has no poll, epoll accepts it as kernel FUSE does; threads in
virtual syscalls at once, and a close by one thread while another holds the fd; inotify on a
mount fails with a documented errno (EOPNOTSUPP, docs/hypervisor.md); FIFOs made on a mount
carry data between processes as the kernel's local pipe does; a mount whose source lies in
another mount; `vufuse run` inside a session runs its command in that session.
"""

from __future__ import annotations

import sys

import pytest
from e2ehelp import Sessions, libfuse_example

pytestmark = pytest.mark.e2e

PROBE = r"""
import ctypes, os, select, sys, threading
for where in ("ref", "mnt"):
    fd = os.open(where + "/f", os.O_RDONLY)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLOUT | select.POLLPRI)
    readable, writable, special = select.select([fd], [fd], [fd], 0)
    try:
        select.epoll().register(fd, select.EPOLLIN)
        epoll = "ok"
    except OSError as error:
        epoll = error.errno
    events = [event for _, event in poller.poll(0)]
    print(where, "poll", events, "select", bool(readable), bool(writable), bool(special),
          "epoll", epoll)
    os.close(fd)
results = []
def reader():
    for _ in range(50):
        with open("mnt/f") as file:
            results.append(file.read())
threads = [threading.Thread(target=reader) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("threads", len(results), sorted(set(results)))
fd = os.open("mnt/f", os.O_RDONLY)
closer = threading.Thread(target=os.close, args=(fd,))
closer.start(); closer.join()
try:
    os.read(fd, 10)
except OSError as error:
    print("read after another thread closed it", error.errno)
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_add_watch(libc.inotify_init1(0), b"mnt/f", 2)
print("inotify", watch, ctypes.get_errno())
"""

SCRIPT = r"""
mkdir -p src mnt stacked ref
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
echo data > mnt/f; echo data > ref/f; mkdir mnt/inner
python3 probe.py
for where in ref mnt; do
    mkfifo $where/pipe && echo "$where fifo: $(stat -c %F $where/pipe)"
    echo "through the $where fifo" > $where/pipe & writer=$!
    cat $where/pipe; wait $writer
    exec 7<> $where/pipe; echo "rdwr open of the $where fifo" >&7; read -r line <&7; echo "$line"
    exec 7>&-
done
"$LIBFUSE/passthrough_ll" -f -o source="$PWD/mnt/inner" "$PWD/stacked" 2>stacked.err &
inner=$!
wait_mounted "$PWD/stacked" || { cat stacked.err; exit 1; }
echo through-two-daemons > stacked/g
echo "lower sees: $(cat mnt/inner/g)"; echo "backing has: $(cat src/inner/g)"
fusermount3 -u "$PWD/stacked"; wait $inner; echo "inner daemon rc=$?"
@VUFUSE@ run cat mnt/f; echo "nested rc=$?"
@VUFUSE@ run sh -c 'exit 3'; echo "nested rc=$?"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""


def test_around_mounts(sessions: Sessions) -> None:
    libfuse_example("passthrough_ll")
    (sessions.root / "probe.py").write_text(PROBE)
    run = sessions.run(SCRIPT.replace("@VUFUSE@", f"{sys.executable} -m vufuse.cli"))
    assert run.status == 0, run.output
    lines = run.lines()
    ref = next(line for line in lines if line.startswith("ref poll"))
    mnt = next(line for line in lines if line.startswith("mnt poll"))
    # poll and select as on a local file (a daemon without poll is always ready); epoll_ctl
    # accepts a FUSE file (fuse_file_poll exists) where a local file gives EPERM.
    assert ref.endswith("epoll 1") and mnt.endswith("epoll ok"), run.output
    assert mnt.replace("mnt", "ref", 1).replace("epoll ok", "epoll 1") == ref, run.output
    for line in ("mnt fifo: fifo", "through the mnt fifo", "rdwr open of the mnt fifo",
                 "threads 200 ['data\\n']", "read after another thread closed it 9",
                 "inotify -1 95", "lower sees: through-two-daemons",
                 "backing has: through-two-daemons", "inner daemon rc=0", "data",
                 "nested rc=0", "nested rc=3", "unmount rc=0", "daemon rc=0"):
        assert line in lines, run.output
