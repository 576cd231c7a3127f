"""The `vufuse` command.

`vufuse run [--] CMD...` runs CMD in a traced session (DESIGN §1): stdin, stdout and the tty
pass through untouched, the exit status is CMD's (128+N when a signal N killed it), and
nothing of the session survives it.  Quiet by default; `--debug` logs each virtualized syscall.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (`vufuse: message`, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"vufuse: {message}\n")
        raise SystemExit(USAGE_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The command line of `vufuse`."""
    parser = _Parser(prog="vufuse", description="FUSE with no kernel module.")
    parser.add_argument("--debug", action="store_true", help="log every virtualized syscall")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run CMD in a traced session")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD", help="command and arguments")
    return parser


def run_command(argv: Sequence[str]) -> int:
    """Run `argv` in a fresh session; returns its exit status."""
    import trio

    from hypervisor.session import Session

    from .session_fuse import FuseMounting

    session = Session()
    FuseMounting(session)
    return trio.run(session.run, [os.fsencode(a) for a in argv])


def main(arguments: Sequence[str] | None = None) -> int:
    """Entry point of the `vufuse` console script."""
    parser = build_parser()
    options = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if options.debug else logging.ERROR,
        format="vufuse: %(message)s",
    )
    if options.command is None:
        parser.error("missing command (try: vufuse run -- CMD)")
    argv = list(options.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        parser.error("run: missing CMD")
    try:
        status = run_command(argv)
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
