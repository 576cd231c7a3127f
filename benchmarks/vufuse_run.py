"""``vufuse run -- CMD`` that also prints the C core's counters: the vufuse-fuse backend's prefix.

``vufuse run`` prints nothing of its own (it must not: stdout is the command's), so there is no
way to read ``Tracer.stats()`` from outside a session. This script does exactly what
``vufuse.cli.run_command`` does (it calls it), remembering the ``Session`` it builds, and after
the session has ended prints one ``vufuse_stats_<counter>=<n>`` line per counter on stdout, where
the harness collects them into the measurement's details. It is run as a script (not
``-m benchmarks...``) by the interpreter of the ``vufuse`` console script, so it measures the
same installation, and it imports nothing from ``benchmarks``.

HOOK for the hypervisor engineer: if ``vufuse run`` gains a way to report its counters (an
option or an environment variable), the backend can call ``vufuse run`` itself again.
"""

from __future__ import annotations

import os
import sys
from typing import Any


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

    session_module.Session.__init__ = remembering_init  # type: ignore[method-assign]
    try:
        status = cli.run_command(argv)
    except KeyboardInterrupt:
        status = 130
    finally:
        session_module.Session.__init__ = original_init  # type: ignore[method-assign]
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
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
