"""Measures the tracing core's overhead (not a test: run it by hand).

    python tests/tracer/bench_tracer.py [--spec test|full] [--iterations N]

Compiles a small C loop (getppid, never trapped; stat of a real file, trapped and answered
by the C fast path) and runs it natively and under a Tracer, with and without a watched
prefix, with everything pinned to CPU 0 and unpinned.  Prints ns per call.  Then getcwd:
always sent to Python (ACTION_PYTHON, a select loop CONTINUEs it) against ACTION_TRAP_CWD
(the C core CONTINUEs it unless the cwd is under a prefix).

    python tests/tracer/bench_tracer.py --only getcwd
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from hypervisor import _tracer  # noqa: E402

LOOP_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec;
}
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    struct stat st;
    double start = now();
    if (strcmp(argv[1], "getppid") == 0)
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
    else if (strcmp(argv[1], "tuxcall") == 0)
        for (long i = 0; i < n; i++) syscall(184);
    else if (strcmp(argv[1], "getcwd") == 0) {
        char cwd[4096];
        if (argc > 3 && chdir(argv[3]) < 0) return 1;
        start = now();
        for (long i = 0; i < n; i++) syscall(SYS_getcwd, cwd, sizeof(cwd));
    }
    else
        for (long i = 0; i < n; i++) stat(argv[3], &st);
    printf("%.1f\n", (now() - start) / n);
    return 0;
}
"""


def compile_loop(directory: str) -> str:
    source = os.path.join(directory, "loop.c")
    binary = os.path.join(directory, "loop")
    with open(source, "w") as f:
        f.write(LOOP_C)
    subprocess.run(["cc", "-O2", "-o", binary, source], check=True)
    return binary


def traced(spec, max_nr, argv, prefixes, slow_path_expected=False) -> float:
    tracer = _tracer.Tracer(spec, max_nr=max_nr)
    tracer.set_prefixes(prefixes)
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    shell = f"cd {os.path.dirname(argv[0])} && exec {' '.join(argv)} > /dev/fd/{write_end}"
    tracer.spawn([b"/bin/sh", b"-c", shell.encode()], [b"PATH=/usr/bin:/bin"])
    os.close(write_end)
    while tracer.wait_status() is None:
        select.select([tracer.fileno(), tracer.status_fd()], [], [], 1)
        for notification in tracer.take():
            try:
                if notification.nr == 184:
                    tracer.respond(notification.id, value=0)
                else:
                    tracer.respond(notification.id, continue_=True)
            except OSError:
                pass
    output = os.read(read_end, 100)
    os.close(read_end)
    stats = tracer.stats()
    tracer.kill_all()
    tracer.close()
    if slow_path_expected:
        pass
    elif stats["queued_path"] > 5 or stats["queued"] - stats["queued_always"] > 5:
        print("  (unexpected slow-path traffic:", stats, ")")
    return float(output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", choices=["test", "full"], default="full")
    parser.add_argument("--iterations", type=int, default=200000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["all", "getcwd"], default="all")
    options = parser.parse_args()
    if options.spec == "full":
        from hypervisor import syscalls

        spec, max_nr = syscalls.build_spec(), syscalls.MAX_NR
        # tuxcall (never implemented) answered by Python: the slow path's floor.
        spec = [entry for entry in spec if entry[0] != 184]
        spec.append((184, _tracer.ACTION_PYTHON, 0, -1, -1, -1, -1))
    else:
        from tests.tracer.conftest import TEST_SPEC

        spec, max_nr = TEST_SPEC, 450
    with tempfile.TemporaryDirectory() as directory:
        loop = compile_loop(directory)
        target = os.path.join(directory, "loop.c")
        watched = os.path.join(directory, "mnt")
        os.mkdir(watched)
        # Like hypervisor's stand-in root: a watched directory with real subdirectories, on
        # the same filesystem as the stat target (objects there are judged by name, cached).
        stand_ins = os.path.join(directory, "stand-ins")
        os.makedirs(os.path.join(stand_ins, "0"))
        n = str(options.iterations)
        stat_n = str(options.iterations // 10)
        if options.only == "getcwd":
            return getcwd_section(spec, max_nr, loop, options, watched, stand_ins)
        cases = [
            ("getppid", [loop, "getppid", n]),
            ("stat", [loop, "stat", stat_n, target]),
            ("stat-rel", [loop, "stat", stat_n, os.path.basename(target)]),
            ("tuxcall", [loop, "tuxcall", str(options.iterations // 50)]),
        ]
        for pinned in (True, False):
            if pinned:
                os.sched_setaffinity(0, {0})
            else:
                os.sched_setaffinity(0, set(range(os.cpu_count())))
            label = "pinned to CPU 0" if pinned else "unpinned"
            print(f"== {label} (best of {options.repeat}, ns/call)")
            for name, argv in cases:
                native = min(
                    float(
                        subprocess.run(argv, capture_output=True, text=True, cwd=directory).stdout
                    )
                    for _ in range(options.repeat)
                )
                plain = min(traced(spec, max_nr, argv, []) for _ in range(options.repeat))
                prefixed = min(traced(spec, max_nr, argv, [watched]) for _ in range(options.repeat))
                both = min(
                    traced(spec, max_nr, argv, [watched, stand_ins]) for _ in range(options.repeat)
                )
                print(f"{name:8} native {native:8.1f}")
                for label, value in (
                    ("traced, no prefix", plain),
                    ("traced, empty mountpoint prefix", prefixed),
                    ("traced, + stand-in root prefix", both),
                ):
                    print(
                        f"{'':8} {label:32} {value:8.1f} ({value / native:.2f}x, "
                        f"+{value - native:.0f})"
                    )
        getcwd_section(spec, max_nr, loop, options, watched, stand_ins)


def getcwd_section(spec, max_nr, loop, options, watched, stand_ins) -> None:
    """getcwd with the cwd outside every prefix: Python's CONTINUE against the C core's."""
    by_action = {}
    for action in (_tracer.ACTION_PYTHON, _tracer.ACTION_TRAP_CWD):
        by_action[action] = [entry for entry in spec if entry[0] != 79]
        by_action[action].append((79, action, 0, -1, -1, -1, -1))
    n = str(options.iterations // 20)
    inside = os.path.join(stand_ins, "0")
    os.sched_setaffinity(0, set(range(os.cpu_count())))
    print(f"== getcwd, unpinned (best of {options.repeat}, ns/call)")
    native = min(
        float(subprocess.run([loop, "getcwd", n], capture_output=True, text=True).stdout)
        for _ in range(options.repeat)
    )
    print(f"{'native':44} {native:8.1f}")
    prefixes = [watched, stand_ins]
    for label, action, argv in (
        ("ACTION_PYTHON (Python CONTINUEs)", _tracer.ACTION_PYTHON, [loop, "getcwd", n]),
        ("ACTION_TRAP_CWD, cwd outside", _tracer.ACTION_TRAP_CWD, [loop, "getcwd", n]),
        (
            "ACTION_TRAP_CWD, cwd in a stand-in",
            _tracer.ACTION_TRAP_CWD,
            [loop, "getcwd", n, inside],
        ),
    ):
        value = min(
            traced(by_action[action], max_nr, argv, prefixes, slow_path_expected=len(argv) > 3)
            for _ in range(options.repeat)
        )
        print(f"{label:44} {value:8.1f} (+{value - native:.0f})")


if __name__ == "__main__":
    main()
