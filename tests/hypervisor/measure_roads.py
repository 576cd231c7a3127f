"""Measurements behind docs/decisions.md (not a test): `python measure_roads.py`.

1. Costs of the user-notification road as built: a virtual stat, a trapped getcwd in a real
   cwd (always sent to Python), a chdir into a mount (the narrow ptrace injection).
2. What ptrace-seizing every tracee (road b) would add: a stop per delivered signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time

import trio

sys.path.insert(0, os.path.dirname(__file__))
from memprovider import MemProvider, sample_tree  # noqa: E402
from sessionhelp import PYTHON, run_session  # noqa: E402

from hypervisor.mounts import MountTable  # noqa: E402

LOOP = r"""
import os, sys, time
mnt, real, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def per_call(f):
    f(); t = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t) / n * 1e6
print("stat-real-us", round(per_call(lambda: os.stat(real)), 2))
print("stat-virtual-us", round(per_call(lambda: os.stat(mnt + "/hello.txt")), 2))
print("getcwd-real-cwd-us", round(per_call(os.getcwd), 2))
def chdir_pair():
    os.chdir(mnt + "/dir"); os.chdir(real)
print("chdir-virtual+real-pair-us", round(per_call(chdir_pair), 2))
os.chdir(mnt + "/dir")
print("getcwd-virtual-cwd-us", round(per_call(os.getcwd), 2))
print("stat-relative-in-virtual-cwd-us", round(per_call(lambda: os.stat("a")), 2))
"""

SIGNALS = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static void on(int s) { (void)s; }
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    signal(SIGUSR1, on);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) kill(getpid(), SIGUSR1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1e3);
    return 0;
}
"""


async def session_costs() -> None:
    with tempfile.TemporaryDirectory() as root:
        mnt = os.path.join(root, "mnt")
        os.mkdir(mnt)
        provider = MemProvider()
        sample_tree(provider)
        mounts = MountTable()
        mounts.add(os.fsencode(mnt), provider)
        real = os.path.join(root, "real")
        os.makedirs(real + "/dir")
        for name in ("hello.txt", "dir/a"):
            with open(os.path.join(real, name), "w") as f:
                f.write("x")
        native = subprocess.run([PYTHON, "-c", LOOP, real, root, "2000"], capture_output=True,
                                text=True)
        print("native:\n" + native.stdout + native.stderr)
        got = await run_session([PYTHON, "-c", LOOP, mnt, root, "2000"], mounts, cwd=root)
        print("session:\n" + got.stdout + got.stderr)


def signal_costs() -> None:
    with tempfile.TemporaryDirectory() as root:
        source, binary = os.path.join(root, "s.c"), os.path.join(root, "s")
        with open(source, "w") as f:
            f.write(SIGNALS)
        subprocess.run(["gcc", "-O2", "-o", binary, source], check=True)
        n = "20000"
        print("signal-native-us", subprocess.run([binary, n], capture_output=True,
                                                 text=True).stdout.strip())
        # Road (b): the same program seized; every delivered signal stops it once and the
        # tracer (here Python, as hypervisor/ would be) re-injects it with PTRACE_CONT.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.dup2(write_end, 1)
            os.kill(os.getpid(), signal.SIGSTOP)
            os.execv(binary, [binary, n])
        os.close(write_end)
        os.waitpid(pid, os.WUNTRACED)
        assert libc.ptrace(0x4206, pid, None, None) == 0  # PTRACE_SEIZE
        os.kill(pid, signal.SIGCONT)
        start = time.perf_counter()
        stops = 0
        while True:
            _, status = os.waitpid(pid, 0x40000000)
            if os.WIFEXITED(status):
                break
            sig = os.WSTOPSIG(status)
            deliver = sig if status >> 16 == 0 and sig != signal.SIGTRAP else 0
            stops += 1
            libc.ptrace(7, pid, None, deliver)  # PTRACE_CONT
        elapsed = time.perf_counter() - start
        print("signal-seized-us", os.read(read_end, 100).decode().strip(),
              f"({stops} stops in {elapsed:.2f}s)")


if __name__ == "__main__":
    trio.run(session_costs)
    signal_costs()
