"""``vufuse run -- CMD`` that also prints the C core's counters: the vufuse-fuse backend's prefix.

``vufuse run`` prints nothing of its own (it must not: stdout is the command's), so there is no
way to read ``Tracer.stats()`` from outside a session. This script does exactly what
``vufuse.cli.run_command`` does (it calls it), remembering the ``Session`` it builds, and after
the session has ended prints one ``vufuse_stats_<counter>=<n>`` line per counter on stdout, where
the harness collects them into the measurement's details. It is run as a script (not
``-m benchmarks...``) by the interpreter of the ``vufuse`` console script, so it measures the
same installation, and it imports nothing from ``benchmarks``.

It also measures where the time goes, cheaply: it wraps ``Session.handle`` (one queued
notification, from handler start to answer) to sum the handlers' wall time and, with the C
core's ``received_ns`` stamp (CLOCK_MONOTONIC when the listener thread read the notification),
each queued notification's trap-to-answer latency; and it reads the supervisor thread's CPU time
(``time.thread_time_ns``: the Python side; the C listener thread excluded) and the process's
around the session. Printed as ``vufuse_time_<name>=<n>`` (nanoseconds, or a count).

``vufuse run --stats`` now prints the counters on stderr in a human format; this script keeps
the machine-readable ``key=value`` lines on stdout the harness reads, and the timings above.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any


def _process_cpu_ns() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def main(argv: list[str]) -> int:
    """Run ``argv`` (after an optional ``--``) in a vufuse session; print the tracer's counters."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: vufuse_run.py -- CMD...", file=sys.stderr)
        return 2
    from hypervisor import session as session_module
    from vufuse import cli

    sessions: list[Any] = []
    original_init = session_module.Session.__init__

    def remembering_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        sessions.append(self)

    timings = {"handled": 0, "handler_ns": 0, "latency_count": 0, "latency_ns": 0}
    original_handle = session_module.Session.handle

    async def timed_handle(self: Any, notification: Any) -> None:
        started = time.monotonic_ns()
        try:
            await original_handle(self, notification)
        finally:
            ended = time.monotonic_ns()
            timings["handled"] += 1
            timings["handler_ns"] += ended - started
            received = getattr(notification, "received_ns", 0)
            if received:
                timings["latency_count"] += 1
                timings["latency_ns"] += ended - received

    session_module.Session.__init__ = remembering_init  # type: ignore[method-assign]
    session_module.Session.handle = timed_handle  # type: ignore[method-assign]
    cpu_started, process_started = time.thread_time_ns(), _process_cpu_ns()
    wall_started = time.monotonic_ns()
    try:
        status = cli.run_command(argv)
    except KeyboardInterrupt:
        status = 130
    finally:
        session_module.Session.__init__ = original_init  # type: ignore[method-assign]
        session_module.Session.handle = original_handle  # type: ignore[method-assign]
    timings["session_ns"] = time.monotonic_ns() - wall_started
    timings["python_cpu_ns"] = time.thread_time_ns() - cpu_started
    timings["process_cpu_ns"] = _process_cpu_ns() - process_started
    stats: dict[str, int] = {}
    for session in sessions:
        try:
            counters = session.tracer.stats()
        except Exception:  # noqa: BLE001 (counters are a bonus, never a failure)
            continue
        for name, value in counters.items():
            stats[name] = stats.get(name, 0) + int(value)
    sys.stdout.flush()
    for name, value in stats.items():
        os.write(1, f"vufuse_stats_{name}={value}\n".encode())
    for name, value in timings.items():
        os.write(1, f"vufuse_time_{name}={value}\n".encode())
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
